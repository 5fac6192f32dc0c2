"""Helpers for the in-process API tests: the test catalog, the running app and clients.

:func:`running_api` builds the app with ``create_app(settings)``, runs its lifespan
(migrations, admin bootstrap, workers, reaper) on a real database (a SQLite file in the
data dir, or PostgreSQL when the settings name one) and hands back an
:class:`Api` with two clients: ``client`` sends the admin key, ``anon`` sends none.
Every response is checked for an ``X-Request-Id`` header by an httpx event hook, so
that contract is asserted on every request the API tests make.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from genyard.app import create_app
from genyard.config import Settings, load_settings
from genyard.domain.accounts import Scope
from genyard.domain.catalog import BUNDLED_CATALOG_DIR
from genyard.services.container import Services

DIAGNOSTIC = "genyard/diagnostic"
FAST = "genyard/diagnostic-fast"
PICTURES = "genyard/pictures"
PICTURES_MAX_BYTES = 64
ABSENT = "acme/absent"
E5 = "intfloat/multilingual-e5-small"
FAST_MAX_INPUT_BYTES = 2048
TERMINAL = ("succeeded", "failed", "canceled")


def write_test_catalog(directory: Path) -> Path:
    """A user catalog: a diagnostic copy with tiny limits, a diagnostic model with strict
    file fields, and a model nobody can run."""
    directory.mkdir(parents=True, exist_ok=True)
    bundled = (BUNDLED_CATALOG_DIR / "diagnostic.toml").read_text()
    fast = bundled.replace('id = "genyard/diagnostic"', f'id = "{FAST}"').replace(
        "timeout = 60\nqueue_timeout = 600\nmax_input_bytes = 1048576",
        f"timeout = 0.5\nqueue_timeout = 1\nmax_input_bytes = {FAST_MAX_INPUT_BYTES}",
    )
    assert FAST in fast and "timeout = 0.5" in fast, "diagnostic.toml changed shape"
    (directory / "diagnostic-fast.toml").write_text(fast)
    (directory / "pictures.toml").write_text(
        f"""
[model]
id = "{PICTURES}"
type = "image"
provider = "diagnostic"
description = "Strict file fields: one PNG mask, up to 3 images; {PICTURES_MAX_BYTES} bytes each."

[model.input_schema]
type = "object"
additionalProperties = false

[model.input_schema.properties.mode]
type = "string"
enum = ["echo", "files"]
default = "files"

[model.input_schema.properties.mask]
type = "string"
format = "uri"
"x-genyard-file" = {{ accept = ["image/png"], max_bytes = {PICTURES_MAX_BYTES} }}

[model.input_schema.properties.input_images]
type = "array"
maxItems = 3
[model.input_schema.properties.input_images.items]
type = "string"
format = "uri"
"x-genyard-file" = {{ accept = ["image/*"], max_bytes = {PICTURES_MAX_BYTES} }}
"""
    )
    (directory / "absent.toml").write_text(
        f"""
[model]
id = "{ABSENT}"
type = "text"
provider = "absent-engine"
description = "Served by a provider that is not installed."

[model.input_schema]
type = "object"
properties = {{ prompt = {{ type = "string" }} }}
"""
    )
    return directory


def check_request_id(response: httpx.Response) -> None:
    assert response.headers.get("x-request-id"), (
        f"{response.request.method} {response.request.url} answered without X-Request-Id"
    )


async def _check_request_id_hook(response: httpx.Response) -> None:
    check_request_id(response)


@dataclass
class Api:
    """A running app and clients for it."""

    app: Any
    services: Services
    settings: Settings
    admin_key: str
    client: httpx.AsyncClient
    anon: httpx.AsyncClient

    @staticmethod
    def auth(key: str) -> dict[str, str]:
        return {"X-API-Key": key}

    async def new_user(
        self, name: str, scopes: frozenset[Scope] = frozenset(), *, admin: bool = False
    ) -> str:
        """Create a user (with its own account) and return a key's secret."""
        user = await self.services.accounts.create_user(name, admin=admin)
        issued = await self.services.accounts.create_key(user, name="test", scopes=scopes)
        return issued.secret

    async def predict(
        self, model: str, input: dict[str, Any], *, key: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        """POST a prediction and return its body (asserting 201)."""
        headers = self.auth(key) if key else {}
        headers.update(extra.pop("headers", {}))
        r = await self.client.post(
            "/v1/predictions", json={"model": model, "input": input, **extra}, headers=headers
        )
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    async def get(self, job_id: str, *, key: str | None = None) -> dict[str, Any]:
        r = await self.client.get(
            f"/v1/predictions/{job_id}", headers=self.auth(key) if key else {}
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def wait_until(
        self,
        job_id: str,
        done: Callable[[dict[str, Any]], bool] = lambda j: j["status"] in TERMINAL,
        timeout: float = 10.0,
        *,
        key: str | None = None,
    ) -> dict[str, Any]:
        """Poll GET (as ``key``'s owner) until ``done(job)``; fail the test if it never
        happens."""
        deadline = time.monotonic() + timeout
        while True:
            job = await self.get(job_id, key=key)
            if done(job):
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} never got there; last seen: {job}")
            await asyncio.sleep(0.05)


@asynccontextmanager
async def running_api(
    data_dir: Path, catalog_dir: Path | None, *, workers: bool = True, **overrides: Any
) -> AsyncIterator[Api]:
    """Start the real app (lifespan included) on ``data_dir``; stop it on exit."""
    options: dict[str, Any] = {
        "data_dir": data_dir,
        "diagnostic_models": True,
        "catalog_dir": catalog_dir,
        "reaper_interval": 0.2,
        "poll_interval": 0.2,
        "worker_concurrency": 2,
        "log_level": "WARNING",
    }
    options.update(overrides)
    settings = load_settings(**options)
    services = Services.build(settings, run_workers=workers)
    app = create_app(settings, services)
    async with AsyncExitStack() as stack:
        manager = await stack.enter_async_context(
            LifespanManager(app, startup_timeout=30, shutdown_timeout=30)
        )
        admin_key = services.admin_key_created or (data_dir / "admin-key").read_text().strip()
        transport = httpx.ASGITransport(app=manager.app)
        hooks = {"response": [_check_request_id_hook]}
        client = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=transport,
                base_url="http://genyard.test",
                headers={"X-API-Key": admin_key},
                event_hooks=hooks,
                timeout=30,
            )
        )
        anon = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=transport, base_url="http://genyard.test", event_hooks=hooks, timeout=30
            )
        )
        yield Api(app, services, settings, admin_key, client, anon)


ApiFactory = Callable[..., AbstractAsyncContextManager[Api]]
