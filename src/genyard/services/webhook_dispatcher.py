"""The webhook dispatcher: delivers the outbox (runs in `genyard serve` and `genyard worker`).

A loop claims due deliveries (``next_attempt_at`` <= now; several dispatchers share the
outbox through row locks on PostgreSQL), and sends each in a task of its own:

- the body is the prediction as ``GET /v1/predictions/{id}`` returns it, rendered at the
  first attempt and stored, so retries and redeliveries send the same bytes under the
  same ``webhook-id``;
- Standard Webhooks headers, signed with the account's secret(s) at each attempt;
- the URL goes through the URL guard every time (resolved, checked and pinned); a
  refused URL fails the delivery at once, it is not retried;
- a 2xx answer delivers; anything else (or a timeout, a network error, a redirect,
  which is not followed) is retried after the configured delays, then fails.

A job made by the tasks face (``task_id`` set) gets *task callbacks* from the same
outbox: the body is the task object as ``GET /v1/tasks/{id}`` returns it (``render``
sees the job's ``task_id``), and the seed's timeout and retry schedule
(``TASK_CALLBACK_TIMEOUT``, ``TASK_CALLBACK_DELAYS``) replace the webhook settings.

Claiming pushes ``next_attempt_at`` past the attempt's time limit, so a delivery whose
dispatcher died mid-attempt is tried again later (at least once, never lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from genyard.config import Settings
from genyard.db import jobs_repo, webhooks_repo
from genyard.db.engine import Database
from genyard.domain.jobs import Job
from genyard.domain.webhooks import (
    TASK_CALLBACK_DELAYS,
    TASK_CALLBACK_TIMEOUT,
    DeliveryStatus,
    parse_delays,
    signature_header,
)
from genyard.metrics import Metrics
from genyard.net import FetchFailed, UrlGuard, UrlRefused
from genyard.services.webhooks import WebhookSecrets

log = logging.getLogger(__name__)
MAX_IN_FLIGHT = 32
#: A claimed delivery is not due again before its attempt's time limit plus this.
CLAIM_MARGIN_SECONDS = 5.0
USER_AGENT = "genyard-webhooks"


class WebhookDispatcher:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        guard: UrlGuard,
        secrets: WebhookSecrets,
        render: Callable[[Job], bytes],
        metrics: Metrics,
    ) -> None:
        self.db = db
        self.guard = guard
        self.secrets = secrets
        self.render = render
        self.metrics = metrics
        self.delays = parse_delays(settings.webhook_retry_delays)
        self.timeout = settings.webhook_timeout
        self.poll_interval = settings.poll_interval
        self._bell = asyncio.Event()
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """New deliveries are due (rung after the transaction that queued them)."""
        self._bell.set()

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop(), name="genyard-webhooks")

    async def stop(self, grace: float) -> None:
        """Stop claiming; give attempts under way ``grace`` seconds, then abandon them
        (their deliveries come due again after the claim hold)."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        if self._in_flight:
            await asyncio.wait(list(self._in_flight), timeout=grace)
        for task in list(self._in_flight):
            task.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            self._bell.clear()
            try:
                claimed = await self._claim()
            except Exception:
                log.exception("webhook dispatcher could not claim deliveries")
                claimed = []
            for due in claimed:
                task = asyncio.create_task(self._attempt(due))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
            if claimed and not self._slots.locked():
                continue  # there may be more due
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await self._bell.wait()

    async def _claim(self) -> list[webhooks_repo.DueDelivery]:
        free = 0
        while free < MAX_IN_FLIGHT and not self._slots.locked():
            await self._slots.acquire()
            free += 1
        if free == 0:
            return []
        now = time.time()
        try:
            async with self.db.write() as conn:
                claimed = await webhooks_repo.claim_due(
                    conn,
                    now,
                    free,
                    now + max(self.timeout, TASK_CALLBACK_TIMEOUT) + CLAIM_MARGIN_SECONDS,
                    skip_locked=not self.db.is_sqlite,
                )
        except BaseException:
            for _ in range(free):
                self._slots.release()
            raise
        for _ in range(free - len(claimed)):
            self._slots.release()
        return claimed

    async def _attempt(self, due: webhooks_repo.DueDelivery) -> None:
        try:
            await self._deliver(due)
        except Exception:
            log.exception("webhook delivery %s failed unexpectedly", due.id)
        finally:
            self._slots.release()

    async def _body(self, due: webhooks_repo.DueDelivery) -> str | None:
        if due.body is not None:
            return due.body
        async with self.db.read() as conn:
            job = await jobs_repo.get_job_with_logs(conn, due.prediction_id, due.account_id)
        return None if job is None else self.render(job).decode()

    async def _deliver(self, due: webhooks_repo.DueDelivery) -> None:
        delays = TASK_CALLBACK_DELAYS if due.task else self.delays
        time_limit = TASK_CALLBACK_TIMEOUT if due.task else self.timeout
        body = await self._body(due)
        started = time.time()
        status_code: int | None = None
        final = False
        if body is None:
            error: str | None = "the prediction no longer exists"
            final = True
            body = ""
        else:
            content = body.encode()
            timestamp = int(started)
            secrets = await self.secrets.signing(due.account_id, started)
            headers = {
                "content-type": "application/json",
                "user-agent": USER_AGENT,
                "webhook-id": due.id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": signature_header(secrets, due.id, timestamp, content),
            }
            try:
                response = await self.guard.post(
                    due.url, content=content, headers=headers, time_limit=time_limit
                )
                status_code = response.status_code
                error = None if 200 <= status_code < 300 else _answer_error(status_code)
            except UrlRefused as exc:
                error, final = f"refused: {exc.reason}", True
            except FetchFailed as exc:
                error = exc.reason
        finished = time.time()
        attempts = due.attempts + 1
        if error is None:
            status, next_at, outcome = DeliveryStatus.DELIVERED, None, "delivered"
        elif final or attempts > len(delays):
            status, next_at, outcome = DeliveryStatus.FAILED, None, "failed"
        else:
            delay = delays[attempts - 1]
            status, next_at, outcome = DeliveryStatus.PENDING, finished + delay, "retry"
        attempt = webhooks_repo.Attempt(
            started, round((finished - started) * 1000), status_code, error
        )
        async with self.db.write() as conn:
            await webhooks_repo.record_attempt(
                conn, due.id, attempt, status=status, attempts=attempts,
                next_attempt_at=next_at, body=body,
            )  # fmt: skip
        self.metrics.webhook_attempts.labels(outcome).inc()
        log.info(
            "webhook %s (%s of %s) attempt %d: %s",
            due.id, due.event, due.prediction_id, attempts, error or f"HTTP {status_code}",
        )  # fmt: skip
        if next_at is not None:
            asyncio.get_running_loop().call_later(next_at - time.time(), self._bell.set)


def _answer_error(status_code: int) -> str:
    if 300 <= status_code < 400:
        return f"answered HTTP {status_code}; redirects are not followed"
    return f"answered HTTP {status_code}"
