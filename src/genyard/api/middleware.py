"""ASGI middleware: request id, rate-limit headers, body size cap, access log and
request metrics."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genyard.api.errors import ErrorFormats
from genyard.domain.accounts import KEY_PREFIX
from genyard.domain.ratelimits import Decision
from genyard.errors import GenyardError, InternalError, PayloadTooLarge
from genyard.ids import new_id
from genyard.logs import request_id_var
from genyard.metrics import Metrics

log = logging.getLogger("genyard.access")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestContextMiddleware:
    """``body_limits``: paths whose bodies may be larger (or must be smaller) than
    ``max_body_bytes`` (the upload route). ``error_formats``: how each face renders the
    errors answered here (a body over the cap, an unexpected exception)."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        max_body_bytes: int,
        error_formats: ErrorFormats | None = None,
        body_limits: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.error_formats = error_formats or ErrorFormats()
        self.body_limits = dict(body_limits or {})

    async def _send_error(
        self, scope: Scope, receive: Receive, send: Send, error: GenyardError
    ) -> None:
        response = self.error_formats.for_path(scope["path"])(error)
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        # A client's own id is kept when it is short and plain (and not an API key).
        safe = _SAFE_ID.match(incoming) and not incoming.startswith(KEY_PREFIX)
        request_id = incoming if safe else new_id("req", 20)
        # Shared with the request (``request.state``): the auth dependency leaves the
        # rate-limit decision here, and every response, errors too, shows it.
        state: dict[str, Any] = scope.setdefault("state", {})
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        started_response = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status = message["status"]
                started_response = True
                message.setdefault("headers", [])
                extra = [(b"x-request-id", request_id.encode())]
                decision: Decision | None = state.get("rate_limit")
                if decision is not None:
                    extra += [(k.lower().encode(), v.encode()) for k, v in decision.headers()]
                message["headers"] = [*message["headers"], *extra]
            await send(message)

        try:
            length = headers.get(b"content-length")
            limit = self.body_limits.get(scope["path"], self.max_body_bytes)
            if length and length.isdigit() and int(length) > limit:
                too_large = PayloadTooLarge(f"request body exceeds {limit} bytes", {"limit": limit})
                await self._send_error(scope, receive, send_with_id, too_large)
            else:
                await self.app(scope, receive, send_with_id)
        except Exception:
            # The one place unexpected errors end: logged with the request id, answered
            # in the envelope, never with a stack trace.
            log.exception("unhandled error")
            if not started_response:
                error = InternalError("internal error; the request id names it in the server log")
                await self._send_error(scope, receive, send_with_id, error)
        finally:
            template = route_template(scope)
            self.metrics.requests.labels(template, scope["method"], str(status)).inc()
            log.info(
                "%s %s %s",
                scope["method"],
                template,
                status,
                extra={
                    "method": scope["method"],
                    "route": template,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            request_id_var.reset(token)


def route_template(scope: Scope) -> str:
    """The matched route's path template, e.g. ``/v1/predictions/{prediction_id}``."""
    route: Any = scope.get("route")
    template: str | None = getattr(route, "path", None)
    return template or "unmatched"
