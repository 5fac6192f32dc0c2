"""Predictions: submit (validate -> insert in one transaction), read, list, cancel, wait."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError

from genyard.config import Settings
from genyard.db import billing_repo, jobs_repo
from genyard.db.engine import Database, DbConnection
from genyard.domain import pricing
from genyard.domain.catalog import Catalog, ModelEntry
from genyard.domain.files import UploadedFile
from genyard.domain.jobs import DEFAULT_WEBHOOK_EVENTS, WEBHOOK_EVENTS, Job, JobStatus
from genyard.domain.pricing import credits
from genyard.domain.validation import FieldError, validate_input
from genyard.errors import (
    Conflict,
    GatewayTimeout,
    InsufficientCredits,
    InvalidRequest,
    JobErrorCode,
    NotFound,
    PayloadTooLarge,
    RateLimited,
)
from genyard.events.base import EventBus
from genyard.ids import new_id
from genyard.net import UrlGuard, UrlRefused
from genyard.providers.registry import ProviderRegistry
from genyard.queue import lifecycle
from genyard.services.files import FileService
from genyard.storage.keys import InvalidKey, validate_folder

MAX_OUTPUT_FOLDER = 256
MAX_IDEMPOTENCY_KEY = 200
# A waiter re-reads the row at least this often, in case a doorbell was missed.
WAIT_POLL_SECONDS = 1.0


@dataclass(slots=True)
class SubmitRequest:
    model: str
    input: dict[str, Any]
    is_public: bool = False
    output_folder: str | None = None
    webhook_url: str | None = None
    webhook_events: list[str] | None = None
    idempotency_key: str | None = None
    #: The body field the webhook URL came in (native: ``webhook`` or ``webhook_url``).
    webhook_field: str = "webhook_url"
    #: Files sent as multipart parts ``file:<field>`` (POST /v1/predictions/upload).
    uploads: list[UploadedFile] = field(default_factory=list)
    #: The tasks face's id for the job (stored with it, unique).
    task_id: str | None = None

    def fingerprint(self) -> str:
        body: dict[str, Any] = {
            "model": self.model,
            "input": self.input,
            "is_public": self.is_public,
            "output_folder": self.output_folder,
            "webhook_url": self.webhook_url,
            "webhook_events": self.webhook_events,
        }
        if self.uploads:
            body["uploads"] = [
                [u.field, hashlib.sha256(u.data).hexdigest(), u.content_type, u.filename]
                for u in self.uploads
            ]
        return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True, slots=True)
class Submitted:
    job: Job
    replayed: bool


def _check_output_folder(folder: str | None) -> list[FieldError]:
    if not folder:
        return []
    if len(folder) > MAX_OUTPUT_FOLDER:
        return [FieldError("output_folder", f"must be at most {MAX_OUTPUT_FOLDER} characters")]
    if ".." in folder:
        return [FieldError("output_folder", "must not contain '..'")]
    if folder.startswith("/") or "\\" in folder or "\x00" in folder:
        return [FieldError("output_folder", "must be a relative path with '/' separators")]
    try:
        validate_folder(folder)  # the rules outputs' keys are made by
    except InvalidKey as exc:
        return [FieldError("output_folder", str(exc))]
    return []


def _check_webhook(
    guard: UrlGuard, url: str | None, events: list[str] | None, field: str
) -> list[FieldError]:
    """Checks that need no DNS: form, and literal addresses (names are judged at delivery)."""
    errors = []
    if url is not None:
        try:
            guard.check_static(url)
        except UrlRefused as exc:
            errors.append(FieldError(field, exc.reason))
    for event in events or []:
        if event not in WEBHOOK_EVENTS:
            errors.append(
                FieldError(
                    "webhook_events",
                    f"unknown event {event!r}; expected some of "
                    + ", ".join(sorted(WEBHOOK_EVENTS)),
                )
            )
    return errors


def _not_cancelable(job: Job) -> Conflict:
    return Conflict(
        f"prediction {job.id} is already {job.status.value}; it cannot be canceled",
        {"status": job.status.value},
    )


def invalid(errors: list[FieldError]) -> InvalidRequest:
    message = "; ".join(f"{e.field}: {e.message}" for e in errors)
    return InvalidRequest(message, {"errors": [e.as_dict() for e in errors]})


class PredictionService:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        catalog: Catalog,
        providers: ProviderRegistry,
        bus: EventBus,
        url_guard: UrlGuard,
        files: FileService,
        on_moved: Callable[[lifecycle.Moved], None],
    ) -> None:
        self.settings = settings
        self.db = db
        self.catalog = catalog
        self.providers = providers
        self.bus = bus
        self._on_moved = on_moved
        # Webhook URLs are checked at submit without DNS; delivery resolves and pins.
        self.url_guard = url_guard
        self.files = files

    def model(self, model_id: str) -> ModelEntry:
        entry = self.catalog.get(model_id)
        if entry is None:
            raise InvalidRequest(
                f"model: unknown model {model_id!r}; GET /v1/models lists the models",
                {"errors": [{"field": "model", "message": "unknown model"}]},
            )
        return entry

    def available_model(self, model_id: str) -> ModelEntry:
        """The model, when it is in the catalog and its provider can run here; else a
        400 naming ``model``."""
        entry = self.model(model_id)
        availability = self.providers.availability(entry.provider, entry)
        if not availability.available:
            raise InvalidRequest(
                f"model: {entry.id} is unavailable here: {availability.reason}",
                {"field": "model", "reason": availability.reason, "fix": availability.fix},
            )
        return entry

    async def submit(
        self,
        account_id: str,
        user_id: str,
        api_key_id: str | None,
        req: SubmitRequest,
        *,
        wait: float | None = None,
    ) -> Submitted:
        """Validate and queue a job; with ``wait``, also wait up to that many seconds for
        it to end (a replayed job is returned as stored: wait on it with :meth:`wait`)."""
        if req.idempotency_key is not None:
            if not 0 < len(req.idempotency_key) <= MAX_IDEMPOTENCY_KEY:
                raise invalid(
                    [FieldError("Idempotency-Key", f"must be 1-{MAX_IDEMPOTENCY_KEY} characters")]
                )
            # A replay answers with the stored job, whatever has changed since.
            async with self.db.read() as conn:
                found = await jobs_repo.find_idempotent(conn, account_id, req.idempotency_key)
            if found is not None:
                return await self._replay(found, req.fingerprint(), account_id)
        entry = self.available_model(req.model)
        merged, uploads, errors = self.files.attach_uploads(entry, req.input, req.uploads)
        filled, input_errors = validate_input(entry.input_schema, merged)
        errors += input_errors
        errors += _check_output_folder(req.output_folder)
        errors += _check_webhook(
            self.url_guard, req.webhook_url, req.webhook_events, req.webhook_field
        )
        prepared = await self.files.prepare_inputs(entry, filled, uploads)
        errors += prepared.errors
        if errors:
            raise invalid(errors)
        # The worst case is held at insert (the same pure function prices the charge).
        held = pricing.estimate(entry.pricing, filled).total if self.settings.billing else None

        # Files are stored only once everything else checked out, and deleted again
        # should the job not be inserted after all (too large, the pending cap, a replay).
        input, stored = await self.files.store_inputs(prepared, account_id)
        try:
            job = self._new_job(account_id, user_id, req, entry, input)
            job.credits_held = held
            # Watch before the insert: a fast worker may finish the job before we wait.
            with self.bus.watch_job(job.id, ends_only=True) as rang:
                submitted = await self._insert(
                    job, req, api_key_id, job.created_at + entry.limits.queue_timeout
                )
                if submitted.replayed:
                    return submitted
                stored = []  # the job holds them now
                if wait is not None:
                    job = await self._wait(job.id, account_id, wait, rang, known=job)
                return Submitted(job, replayed=False)
        finally:
            await self.files.discard(stored)

    def _new_job(
        self,
        account_id: str,
        user_id: str,
        req: SubmitRequest,
        entry: ModelEntry,
        input: dict[str, Any],
    ) -> Job:
        """The job to insert; 413 when its input, as stored, is over the model's limit."""
        size = len(orjson.dumps(input))
        if size > entry.limits.max_input_bytes:
            raise PayloadTooLarge(
                f"input is {size} bytes; {entry.id} accepts at most {entry.limits.max_input_bytes}",
                {"field": "input", "limit": entry.limits.max_input_bytes, "size": size},
            )
        return Job(
            id=new_id("pred"),
            account_id=account_id,
            user_id=user_id,
            model=entry.id,
            input=input,
            status=JobStatus.PENDING,
            created_at=time.time(),
            is_public=req.is_public,
            output_folder=req.output_folder or None,
            webhook_url=req.webhook_url,
            webhook_events=list(req.webhook_events or DEFAULT_WEBHOOK_EVENTS),
            task_id=req.task_id,
        )

    async def _insert(
        self, job: Job, req: SubmitRequest, api_key_id: str | None, queue_deadline: float
    ) -> Submitted:
        account_id = job.account_id
        fingerprint = req.fingerprint()
        try:
            async with self.db.write() as conn:
                if req.idempotency_key:
                    found = await jobs_repo.find_idempotent(conn, account_id, req.idempotency_key)
                    if found is not None:
                        return await self._replay(found, fingerprint, account_id)
                cap = self.settings.max_pending_per_account
                inserted = await jobs_repo.insert_job(
                    conn,
                    job,
                    api_key_id=api_key_id,
                    idempotency_key=req.idempotency_key,
                    request_hash=fingerprint if req.idempotency_key else None,
                    queue_deadline=queue_deadline,
                    max_pending=cap,
                )
                if not inserted:
                    pending = await jobs_repo.count_pending(conn, account_id)
                    raise RateLimited(
                        f"this account has {pending} pending predictions; the limit is {cap}",
                        {"window": "pending", "pending": pending, "limit": cap},
                        retry_after=5,
                    )
                if job.credits_held:
                    await self._hold(conn, job)
        except IntegrityError:
            # Another request with the same idempotency key won the race.
            if not req.idempotency_key:
                raise
            async with self.db.read() as conn:
                found = await jobs_repo.find_idempotent(conn, account_id, req.idempotency_key)
            if found is None:
                raise
            return await self._replay(found, fingerprint, account_id)
        self._on_moved(lifecycle.Moved(job.id, job.model, JobStatus.PENDING, None, None))
        return Submitted(job, replayed=False)

    @staticmethod
    async def _hold(conn: DbConnection, job: Job) -> None:
        """Hold the job's estimated cost; 402 (and the insert rolled back) when short."""
        assert job.credits_held is not None
        if await billing_repo.hold(conn, job.account_id, job.id, job.credits_held, job.created_at):
            return
        available = (await billing_repo.balance(conn, job.account_id)).total
        raise InsufficientCredits(
            f"this prediction may cost {credits(job.credits_held):g} credits; "
            f"the account has {credits(available):g}",
            {"required": credits(job.credits_held), "available": credits(available)},
        )

    async def _replay(
        self, found: tuple[str, str | None], fingerprint: str, account_id: str
    ) -> Submitted:
        job_id, stored_hash = found
        if stored_hash != fingerprint:
            raise Conflict(
                "Idempotency-Key was already used with a different request body",
                {"prediction_id": job_id},
            )
        return Submitted(await self.get(job_id, account_id), replayed=True)

    async def get(self, job_id: str, account_id: str) -> Job:
        async with self.db.read() as conn:
            job = await jobs_repo.get_job_with_logs(conn, job_id, account_id)
            if job is None:
                raise NotFound(f"no prediction with id {job_id!r}")
            if job.status is JobStatus.PENDING:
                job.queue_position = await jobs_repo.queue_position(conn, job)
        return job

    async def get_task(self, task_id: str, account_id: str) -> Job:
        """The job the tasks face made as ``task_id``; 404 when the account has none."""
        async with self.db.read() as conn:
            job_id = await jobs_repo.find_task(conn, task_id, account_id)
        if job_id is None:
            raise NotFound(f"no task with id {task_id!r}", {"task_id": task_id})
        return await self.get(job_id, account_id)

    async def list(
        self,
        account_id: str,
        *,
        limit: int,
        before: tuple[float, str] | None,
        status: str | None,
        model: str | None,
    ) -> list[Job]:
        async with self.db.read() as conn:
            return await jobs_repo.list_jobs(
                conn, account_id, limit=limit, before=before, status=status, model=model
            )

    async def cancel(self, job_id: str, account_id: str) -> Job:
        """Cancel a pending job at once, a processing one through its run context."""
        job = await self.get(job_id, account_id)
        if job.status.is_terminal():
            raise _not_cancelable(job)
        if not await self._cancel(job_id, (JobErrorCode.CANCELED, "canceled by the user")):
            raise _not_cancelable(await self.get(job_id, account_id))  # it ended meanwhile
        return await self.get(job_id, account_id)

    async def _cancel(self, job_id: str, error: tuple[JobErrorCode, str]) -> bool:
        async with self.db.write() as conn:
            moved = await lifecycle.transition(
                conn, job_id, JobStatus.CANCELED, now=time.time(), error=error
            )
        if moved is None:
            return False
        self._on_moved(moved)
        return True

    async def run(
        self,
        account_id: str,
        user_id: str,
        api_key_id: str | None,
        req: SubmitRequest,
        *,
        limit_seconds: float,
    ) -> Job:
        """Submit and wait for the end, for faces that answer with the result itself: a
        job not done within ``limit_seconds`` is canceled (its hold released, error
        code ``timeout``) and this raises :class:`GatewayTimeout` (504) (DESIGN.md,
        "Sync waits"). The job returned has ended: succeeded, failed or canceled."""
        submitted = await self.submit(account_id, user_id, api_key_id, req, wait=limit_seconds)
        job = submitted.job
        if submitted.replayed:
            job = await self.wait(job.id, account_id, limit_seconds)
        if job.status.is_terminal():
            return job
        message = f"the prediction did not finish within {limit_seconds:g} s; it was canceled"
        if await self._cancel(job.id, (JobErrorCode.TIMEOUT, message)):
            raise GatewayTimeout(message, {"prediction_id": job.id, "timeout": limit_seconds})
        return await self.get(job.id, account_id)  # it ended just now

    async def wait(self, job_id: str, account_id: str, seconds: float) -> Job:
        """The job once it is terminal, or its current state after ``seconds``."""
        with self.bus.watch_job(job_id, ends_only=True) as rang:
            return await self._wait(job_id, account_id, seconds, rang)

    async def _wait(
        self,
        job_id: str,
        account_id: str,
        seconds: float,
        rang: asyncio.Event,
        known: Job | None = None,
    ) -> Job:
        """Re-read the job when its bell rings its end (and every second regardless)."""
        deadline = time.monotonic() + seconds
        job = known
        while True:
            if job is None:
                rang.clear()
                job = await self.get(job_id, account_id)
            remaining = deadline - time.monotonic()
            if job.status.is_terminal() or remaining <= 0:
                return job
            try:
                async with asyncio.timeout(min(remaining, WAIT_POLL_SECONDS)):
                    await rang.wait()
            except TimeoutError:
                pass
            job = None
