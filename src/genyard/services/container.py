"""Services: everything a running genyard needs, built from settings by one factory.

Nothing is created at import. ``start()`` migrates, creates the first admin on an
empty database, returns orphaned jobs to the queue (SQLite: one process owns it, so
every lease left from before belongs to a dead process), and starts workers and the
reaper. ``stop()`` is the graceful shutdown.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import orjson

from genyard.api import render
from genyard.api.tasks import render as task_render
from genyard.config import Settings
from genyard.db.engine import Database
from genyard.db.migrate import migrate
from genyard.domain.billing import LedgerType, to_micro
from genyard.domain.catalog import BUNDLED_CATALOG_DIR, Catalog
from genyard.domain.jobs import Job, JobStatus
from genyard.errors import Conflict
from genyard.events.base import EventBus
from genyard.events.memory import InProcessEventBus
from genyard.events.postgres import PostgresEventBus
from genyard.metrics import Metrics
from genyard.net import UrlGuard
from genyard.providers import runtime
from genyard.providers.registry import ProviderRegistry
from genyard.queue.lifecycle import Moved
from genyard.queue.reaper import Reaper
from genyard.queue.worker import WorkerPool
from genyard.services.accounts import AccountService
from genyard.services.credits import CreditService
from genyard.services.estimates import EstimateService
from genyard.services.file_links import FileLinks
from genyard.services.files import FileService
from genyard.services.predictions import PredictionService
from genyard.services.ratelimit import RateLimiter
from genyard.services.webhook_dispatcher import WebhookDispatcher
from genyard.services.webhooks import WebhookSecrets, WebhookService
from genyard.storage.local import LocalBlobStore
from genyard.storage.sweeper import FileSweeper

log = logging.getLogger(__name__)
ADMIN_KEY_FILE = "admin-key"
LOCK_FILE = "serve.lock"
SECRET_KEY_FILE = "secret-key"  # noqa: S105 (a file name)


def resolve_secret_key(settings: Settings) -> str:
    """The configured secret, or (SQLite only) one generated once and kept in the data dir."""
    if settings.secret_key:
        return settings.secret_key
    if not settings.is_sqlite:
        raise SystemExit("GENYARD_SECRET_KEY must be set when the database is not SQLite")
    path = settings.data_dir / SECRET_KEY_FILE
    if path.exists():
        return path.read_text().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    return secret


class DataDirInUse(RuntimeError):
    """Another process already runs workers on this SQLite data dir."""


def lock_data_dir(data_dir: Path) -> IO[str]:
    """Hold ``<data dir>/serve.lock`` for as long as the returned file stays open.

    Two servers on one SQLite queue would each take the other's jobs for orphans."""
    handle = (data_dir / LOCK_FILE).open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DataDirInUse(
            f"another genyard server is already running workers on {data_dir}; "
            "stop it first (SQLite allows one such process per data dir)"
        ) from None
    return handle


@dataclass
class Services:
    settings: Settings
    db: Database
    catalog: Catalog
    providers: ProviderRegistry
    bus: EventBus
    metrics: Metrics
    accounts: AccountService
    predictions: PredictionService
    estimates: EstimateService
    secret_key: str
    blobs: LocalBlobStore
    url_guard: UrlGuard
    files: FileService
    webhooks: WebhookService
    credits: CreditService
    limiter: RateLimiter
    run_workers: bool = True
    bootstrap: bool = True
    worker_models: set[str] | None = None
    workers: WorkerPool | None = None
    reaper: Reaper | None = None
    dispatcher: WebhookDispatcher | None = None
    sweeper: FileSweeper | None = None
    admin_key_created: str | None = field(default=None, repr=False)
    _data_dir_lock: IO[str] | None = field(default=None, repr=False)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        providers: ProviderRegistry | None = None,
        run_workers: bool = True,
        bootstrap: bool = True,
        worker_models: set[str] | None = None,
    ) -> Services:
        """``run_workers``: run workers and the reaper here; ``bootstrap``: create the
        first admin on an empty database (API processes); ``worker_models``: the only
        models this process's workers serve (default: all)."""
        db = Database(settings.resolved_database_url)
        dirs = [BUNDLED_CATALOG_DIR]
        if settings.catalog_dir:
            dirs.append(settings.catalog_dir)
        catalog = Catalog.load(dirs, include_diagnostic=settings.diagnostic_models)
        registry = providers or ProviderRegistry.from_entry_points()
        runtime.configure(settings.model_memory_mb)
        bus: EventBus = InProcessEventBus() if db.is_sqlite else PostgresEventBus(db.url)
        metrics = Metrics()
        secret_key = resolve_secret_key(settings)
        blobs = LocalBlobStore(settings.resolved_files_dir)
        url_guard = UrlGuard.from_settings(settings)
        links = FileLinks.from_settings(settings, secret_key, catalog)
        files = FileService(settings, blobs, links, url_guard)
        predictions = PredictionService(
            settings,
            db,
            catalog,
            registry,
            bus,
            url_guard,
            files,
            on_moved=lambda m: services.on_moved(m),
        )
        services = cls(
            settings=settings,
            db=db,
            catalog=catalog,
            providers=registry,
            bus=bus,
            metrics=metrics,
            accounts=AccountService.from_settings(db, settings),
            predictions=predictions,
            estimates=EstimateService(db, predictions, files),
            secret_key=secret_key,
            blobs=blobs,
            url_guard=url_guard,
            files=files,
            webhooks=WebhookService(
                db, WebhookSecrets(db, secret_key), wake=lambda: services.wake_dispatcher()
            ),
            credits=CreditService.from_settings(db, settings),
            limiter=RateLimiter(settings),
            run_workers=run_workers,
            bootstrap=bootstrap,
            worker_models=worker_models,
        )
        return services

    def on_moved(self, moved: Moved) -> None:
        """After a transition commits: count it, ring its bell, stop a canceled run."""
        self.metrics.jobs.labels(moved.model, moved.status.value).inc()
        if moved.status.is_terminal() and moved.started_at and moved.completed_at:
            self.metrics.run_seconds.labels(moved.model).observe(
                moved.completed_at - moved.started_at
            )
        if moved.status is JobStatus.CANCELED:
            self.bus.job_canceled(moved.job_id)
        if moved.status is JobStatus.PENDING or (
            moved.status.is_terminal() and moved.started_at is not None and self._capped(moved)
        ):
            # Work for the model: a job back in the queue, or a capped model's slot freed
            # (workers its cap turned away are waiting for this bell, in any process).
            self.bus.work_available(moved.model)
        self.bus.job_changed(moved.job_id, terminal=moved.status.is_terminal())
        if moved.webhooks:
            self.wake_dispatcher()

    def _capped(self, moved: Moved) -> bool:
        entry = self.catalog.get(moved.model)
        return entry is not None and entry.limits.max_running is not None

    def wake_dispatcher(self) -> None:
        """Deliveries were queued: a dispatcher in this process sends them now (others
        find them at their next poll)."""
        if self.dispatcher is not None:
            self.dispatcher.wake()

    def render_webhook_body(self, job: Job) -> bytes:
        """A webhook's body: the prediction as ``GET /v1/predictions/{id}`` returns it;
        for a job of the tasks face (a task callback, sent when it has ended), the task
        as ``GET /v1/tasks/{id}`` returns it."""
        if job.task_id is not None:
            entry = self.catalog.get(job.model)
            return orjson.dumps(task_render.task(job, entry, self.files.links, now=time.time()))
        return orjson.dumps(render.prediction(job, self.files.links))

    async def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.blobs.root.mkdir(parents=True, exist_ok=True)
        if self.db.is_sqlite and self.run_workers:
            # One process owns a SQLite queue: every lease left is a dead process's.
            self._data_dir_lock = lock_data_dir(self.settings.data_dir)
        await migrate(self.db)
        await self.bus.start()
        await self.limiter.start()
        if (
            self.bootstrap
            and self.limiter.enabled
            and not self.limiter.shared
            and not self.db.is_sqlite
        ):
            log.warning(
                "rate limits are counted in each process's memory: with several API "
                "processes each allows the full limit; set GENYARD_REDIS_URL to share them"
            )
        if self.bootstrap:
            await self.bootstrap_admin()
        if not self.run_workers:
            return
        self.reaper = Reaper(
            self.db,
            max_attempts=self.settings.max_attempts,
            interval=self.settings.reaper_interval,
            on_moved=self.on_moved,
        )
        if self.db.is_sqlite:
            await self.reaper.reap(expired_before=float("inf"))
        self.dispatcher = WebhookDispatcher(
            self.settings, self.db, self.url_guard, self.webhooks.secrets,
            self.render_webhook_body, self.metrics,
        )  # fmt: skip
        self.workers = WorkerPool(
            self.settings, self.db, self.catalog, self.providers, self.bus, self.metrics,
            on_moved=self.on_moved, on_webhooks=self.wake_dispatcher, models=self.worker_models,
            files=self.files,
        )  # fmt: skip
        self.workers.start()
        self.reaper.start()
        self.dispatcher.start()
        if self.settings.files_retention_days > 0:
            self.sweeper = FileSweeper(
                self.blobs,
                retention_days=self.settings.files_retention_days,
                interval=self.settings.files_sweep_interval,
            )
            self.sweeper.start()

    async def stop(self) -> None:
        if self.sweeper:
            await self.sweeper.stop()
        if self.reaper:
            await self.reaper.stop()
        if self.workers:
            await self.workers.stop(self.settings.shutdown_grace)
        if self.dispatcher:
            await self.dispatcher.stop(self.settings.shutdown_grace)
        if self._data_dir_lock is not None:
            self._data_dir_lock.close()
            self._data_dir_lock = None
        await self.limiter.stop()
        await self.bus.stop()
        await self.db.dispose()

    async def bootstrap_admin(self) -> None:
        """On an empty database: create the admin, print its key once, keep it in a file."""
        if await self.accounts.has_users():
            return
        try:
            user = await self.accounts.create_user("admin", tier="enterprise", admin=True)
        except Conflict:
            return  # another API process bootstrapped first
        issued = await self.accounts.create_key(user, name="admin")
        initial = to_micro(self.settings.admin_initial_credits, allow_zero=True)
        if initial:
            await self.credits.grant(user.name, initial, LedgerType.PURCHASE, "initial admin grant")
        path: Path = self.settings.data_dir / ADMIN_KEY_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(issued.secret + "\n")
        os.chmod(path, 0o600)
        self.admin_key_created = issued.secret
        # Printed once, to the terminal only: never through the logger.
        print(
            f"\ngenyard: created the admin user. Admin API key (shown once, also in {path}):\n"
            f"{issued.secret}\n",
            file=sys.stderr,
            flush=True,
        )
