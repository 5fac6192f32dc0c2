"""In-process workers: one pool per provider, claiming jobs of that provider's models.

A pool's state machine, per slot: idle -> claiming -> running -> finishing -> idle.
Runs happen in the pool's own threads (the engines release the GIL); a weighted CPU
budget keeps threads per call x parallel calls within the cores across all pools.
One ticker flushes progress and logs every half second (output deltas, a chat
model's tokens, within 50 ms) and renews leases every third of the lease time; a
lease found lost (reaped, canceled) sets the run's cancel flag, and the run's late
result is refused by the fencing token.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import orjson

from genyard.config import Settings
from genyard.db import billing_repo, jobs_repo, webhooks_repo
from genyard.db.engine import Database
from genyard.domain import pricing
from genyard.domain.catalog import Catalog, ModelEntry
from genyard.domain.jobs import JobStatus
from genyard.domain.webhooks import WebhookEvent, subscribed
from genyard.errors import JobError, JobErrorCode, RunTimedOut
from genyard.events.base import EventBus
from genyard.ids import new_id
from genyard.metrics import Metrics
from genyard.providers.base import BatchProvider, Provider, ProviderResult, RunContext, SlotPlan
from genyard.providers.registry import ProviderRegistry
from genyard.providers.runtime import warm_model
from genyard.queue import lifecycle
from genyard.queue.budget import CpuBudget
from genyard.services.files import FileService, has_files

log = logging.getLogger(__name__)
FLUSH_SECONDS = 0.5
#: How soon streamed output pieces (RunContext.emit) reach the database and streams.
DELTA_FLUSH_SECONDS = 0.05
_INTERNAL = "the model failed unexpectedly; see server logs"


@dataclass(slots=True)
class Running:
    job: lifecycle.ClaimedJob
    ctx: RunContext
    #: When this job's last ``logs`` webhook event was queued (they are throttled).
    logs_event_at: float = 0.0

    def wants_logs_events(self) -> bool:
        job = self.job
        return bool(job.webhook_url) and bool(subscribed([WebhookEvent.LOGS], job.webhook_events))


class ProviderPool:
    """Claims and runs the jobs of one provider's models."""

    def __init__(
        self,
        workers: WorkerPool,
        name: str,
        provider: Provider,
        models: dict[str, ModelEntry],
        plan: SlotPlan,
    ) -> None:
        self.workers = workers
        self.name = name
        self.provider = provider
        self.models = models
        self.plan = plan
        self.batch = plan.max_batch if isinstance(provider, BatchProvider) else 1
        self.slots = asyncio.Semaphore(plan.parallel_calls)
        self.executor = ThreadPoolExecutor(
            max_workers=plan.parallel_calls, thread_name_prefix=f"genyard-{name}"
        )
        self.signal = workers.bus.work_signal(frozenset(models))
        self.busy = 0
        #: Models with a running cap (``limits.max_running``): claim() keeps it.
        self.caps = {m: e.limits.max_running for m, e in models.items() if e.limits.max_running}

    @property
    def threads(self) -> int:
        return self.plan.threads_per_call if self.plan.cpu_bound else 0

    async def _take_slot(self, block: bool) -> bool:
        if block:
            await self.slots.acquire()
            await self.workers.cpu.acquire(self.threads)
            return True
        if self.slots.locked():
            return False
        if not self.workers.cpu.try_acquire(self.threads):
            return False
        await self.slots.acquire()
        return True

    async def _give_slot(self) -> None:
        self.slots.release()
        await self.workers.cpu.release(self.threads)

    async def loop(self) -> None:
        while not self.workers.stopping:
            await self._take_slot(block=True)
            held = 1
            while await self._take_slot(block=False):
                held += 1
            self.signal.clear()
            try:
                claimed = await self.workers.claim(list(self.models), held * self.batch, self.caps)
            except Exception:
                log.exception("claim failed for %s", self.name)
                claimed = []
            groups = self._batches(claimed)
            for _ in range(held - len(groups)):
                await self._give_slot()
            # Batches of several models can outnumber the slots held: the extra ones
            # wait for a slot of their own before they start (and before their timeout).
            for i, group in enumerate(groups):
                task = asyncio.create_task(self._run_and_release(group, has_slot=i < held))
                self.workers.tasks.add(task)
                task.add_done_callback(self.workers.tasks.discard)
            # A capped model at its cap claims nothing: the end of one of its jobs rings
            # the signal (Services.on_moved), in this process or another.
            if not claimed:
                try:
                    async with asyncio.timeout(self.workers.settings.poll_interval):
                        await self.signal.wait()
                except TimeoutError:
                    pass

    def _batches(self, claimed: list[lifecycle.ClaimedJob]) -> list[list[lifecycle.ClaimedJob]]:
        by_model: dict[str, list[lifecycle.ClaimedJob]] = defaultdict(list)
        for job in claimed:
            by_model[job.model].append(job)
        return [
            jobs[i : i + self.batch]
            for jobs in by_model.values()
            for i in range(0, len(jobs), self.batch)
        ]

    def _call(
        self, entry: ModelEntry, inputs: list[dict[str, Any]], ctxs: list[RunContext]
    ) -> list[ProviderResult | BaseException]:
        """In a pool thread: run one job or a batch; an exception becomes that job's result."""
        try:
            if len(inputs) == 1:
                return [self.provider.run(entry, inputs[0], ctxs[0])]
            assert isinstance(self.provider, BatchProvider)
            return list(self.provider.run_batch(entry, inputs, ctxs))
        except Exception as exc:
            return [exc] * len(inputs)

    async def _run_and_release(self, group: list[lifecycle.ClaimedJob], has_slot: bool) -> None:
        if not has_slot:
            await self._take_slot(block=True)
        self.busy += 1
        self.workers.metrics.workers_busy.labels(self.name).set(self.busy)
        try:
            await self._run(group)
        except Exception:
            log.exception("worker crashed running %s", [j.id for j in group])
        finally:
            self.busy -= 1
            self.workers.metrics.workers_busy.labels(self.name).set(self.busy)
            await self._give_slot()

    async def _open_inputs(
        self, entry: ModelEntry, running: list[Running]
    ) -> tuple[list[Running], list[dict[str, Any]]]:
        """Each job's input with its files read; a job whose files cannot be read ends
        here (``invalid_input``), alone: the others still run."""
        inputs: list[dict[str, Any]] = [orjson.loads(item.job.input) for item in running]
        if not any(has_files(entry, i) for i in inputs):
            return running, inputs
        opened = await asyncio.gather(
            *(self.workers.files.open_inputs(entry, i) for i in inputs), return_exceptions=True
        )
        failed = [
            (r, o) for r, o in zip(running, opened, strict=True) if isinstance(o, BaseException)
        ]
        if failed:
            await self.workers.finish(failed)
        ready = [(r, o) for r, o in zip(running, opened, strict=True) if isinstance(o, dict)]
        return [r for r, _ in ready], [o for _, o in ready]

    async def _store_outputs(
        self, running: list[Running], results: list[ProviderResult | BaseException]
    ) -> tuple[list[ProviderResult | BaseException], dict[str, list[str]]]:
        """Store the output files of successful runs; their URLs replace them."""
        stored: dict[str, list[str]] = {}
        for i, (item, result) in enumerate(zip(running, results, strict=True)):
            if not isinstance(result, ProviderResult):
                continue
            try:
                output, keys = await self.workers.files.store_outputs(item.job, result.output)
            except Exception as exc:
                results[i] = exc
                continue
            results[i] = ProviderResult(output, result.usage)
            stored[item.job.id] = keys
        return results, stored

    async def _run(self, group: list[lifecycle.ClaimedJob]) -> None:
        entry = self.models[group[0].model]
        running = [Running(job, RunContext(job.id, job.attempt)) for job in group]
        for item in running:
            self.workers.running[item.job.id] = item
        try:
            running, inputs = await self._open_inputs(entry, running)
            if running:
                await self._call_and_finish(entry, running, inputs)
        finally:
            for job in group:
                self.workers.running.pop(job.id, None)

    async def _call_and_finish(
        self, entry: ModelEntry, running: list[Running], inputs: list[dict[str, Any]]
    ) -> None:
        ctxs = [item.ctx for item in running]
        loop = asyncio.get_running_loop()
        call = loop.run_in_executor(self.executor, self._call, entry, inputs, ctxs)
        done, _ = await asyncio.wait({call}, timeout=entry.limits.timeout)
        if not done:
            for ctx in ctxs:
                ctx.cancel_event.set()
            error = RunTimedOut(f"the run exceeded the model's {entry.limits.timeout:g} s timeout")
            await self.workers.finish([(r, error) for r in running])
            await asyncio.gather(call, return_exceptions=True)  # wait for the thread
            return
        results, stored = await self._store_outputs(running, call.result())
        moved = await self.workers.finish(list(zip(running, results, strict=True)))
        # Files of a result the fence refused (canceled, reaped) belong to no job.
        await self.workers.files.discard(
            key for job_id, keys in stored.items() if job_id not in moved for key in keys
        )


def _outcome(
    item: Running, result: ProviderResult | BaseException, now: float
) -> tuple[JobStatus, dict[str, Any], list[tuple[float, str]]]:
    """The status a run ends in, the columns to write, and the log lines to append."""
    job = item.job
    changes: dict[str, Any]
    if isinstance(result, ProviderResult):
        try:
            output_json = jobs_repo.dumps(result.output)  # once, and a bad output fails here
            to, changes = JobStatus.SUCCEEDED, {"output_json": output_json, "usage": result.usage}
        except TypeError as exc:
            log.error("job %s: the output cannot be stored as JSON: %s", job.id, exc)
            to, changes = JobStatus.FAILED, {"error": (JobErrorCode.INTERNAL, _INTERNAL)}
    elif isinstance(result, JobError):
        to, changes = JobStatus.FAILED, {"error": (result.code, result.message)}
    else:
        log.error("provider raised %r for job %s", result, job.id, exc_info=result)
        to, changes = JobStatus.FAILED, {"error": (JobErrorCode.INTERNAL, _INTERNAL)}
    lines, _ = item.ctx.drain()
    lines.append((now, f"{to.value} on attempt {job.attempt}"))
    return to, changes, lines


class WorkerPool:
    """All provider pools of this process, the flush/heartbeat ticker, and cancel."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        catalog: Catalog,
        providers: ProviderRegistry,
        bus: EventBus,
        metrics: Metrics,
        on_moved: Callable[[lifecycle.Moved], None],
        on_webhooks: Callable[[], None] = lambda: None,
        models: set[str] | None = None,
        *,
        files: FileService,
    ) -> None:
        self.settings = settings
        self.files = files
        self.db = db
        self.catalog = catalog
        self.providers = providers
        self.bus = bus
        self.metrics = metrics
        self._on_moved = on_moved
        self._on_webhooks = on_webhooks
        self.only_models = models
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{new_id('w', 8)}"
        self.cpu = CpuBudget(settings.cores)
        self.pools: list[ProviderPool] = []
        self.running: dict[str, Running] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.stopping = False
        self._loops: list[asyncio.Task[None]] = []
        #: Held while output deltas are drained and written: the ticker's flush and the
        #: end of a job that streamed never interleave, so a job's last pieces are
        #: committed before (never after) the transaction that ends it.
        self._deltas_lock = asyncio.Lock()

    def build_pools(self) -> None:
        by_provider: dict[str, dict[str, ModelEntry]] = defaultdict(dict)
        for entry in self.catalog.all():
            if self.only_models is None or entry.id in self.only_models:
                by_provider[entry.provider][entry.id] = entry
        for name, models in sorted(by_provider.items()):
            provider = self.providers.get(name)
            if provider is None or not provider.availability().available:
                log.warning("provider %s unavailable; its models get no worker", name)
                continue
            plan = provider.slot_plan(self.settings.cores)
            self.pools.append(ProviderPool(self, name, provider, models, plan))

    def start(self) -> None:
        self.bus.on_cancel(self.cancel)
        self.build_pools()
        for pool in self.pools:
            self._loops.append(asyncio.create_task(pool.loop(), name=f"genyard-pool-{pool.name}"))
        self._loops.append(asyncio.create_task(self._ticker(), name="genyard-ticker"))
        wanted = {m.strip() for m in self.settings.warm_models.split(",") if m.strip()}
        if wanted:
            self._loops.append(asyncio.create_task(self._warm(wanted), name="genyard-warm"))

    async def _warm(self, wanted: set[str]) -> None:
        """Load GENYARD_WARM_MODELS served here, one at a time, in the pools' threads."""
        loop = asyncio.get_running_loop()
        for model_id in sorted(wanted):
            if self.catalog.get(model_id) is None:
                log.warning("GENYARD_WARM_MODELS names %r, which is not in the catalog", model_id)
        for pool in self.pools:
            for model_id in sorted(wanted & set(pool.models)):
                entry = pool.models[model_id]
                try:
                    seconds = await loop.run_in_executor(
                        pool.executor, warm_model, self.providers, entry
                    )
                except Exception:
                    log.exception("could not warm %s", model_id)
                    continue
                if seconds is not None:
                    log.info("warmed %s in %.2f s", model_id, seconds)

    async def claim(
        self, models: list[str], limit: int, caps: dict[str, int] | None = None
    ) -> list[lifecycle.ClaimedJob]:
        async with self.db.write() as conn:
            claimed = await lifecycle.claim(
                conn,
                models,
                limit,
                worker_id=self.worker_id,
                lease_seconds=self.settings.lease_seconds,
                now=time.time(),
                skip_locked=not self.db.is_sqlite,
                caps=caps,
                clock=time.time,
            )
        now = time.time()
        if claimed:
            log.debug("claimed %d jobs: %s", len(claimed), " ".join(j.id for j in claimed))
        starts = {d.prediction_id for d in lifecycle.start_deliveries(claimed)}
        for job in claimed:
            self._on_moved(
                lifecycle.Moved(
                    job.id, job.model, JobStatus.PROCESSING, now, None, int(job.id in starts)
                )
            )
        return claimed

    async def finish(
        self, ended: Sequence[tuple[Running, ProviderResult | BaseException]]
    ) -> set[str]:
        """Record how runs ended: one transaction for a batch, each job fenced by its token.
        Returns the ids of the jobs that moved (the others' results were refused)."""
        now = time.time()
        outcomes = [(item, *_outcome(item, result, now)) for item, result in ended]
        if self.settings.billing:
            for item, to, changes, _ in outcomes:
                if to is JobStatus.SUCCEEDED:
                    changes["charge"] = self._charge(item.job, changes.get("usage"))
        moved_jobs: list[lifecycle.Moved] = []
        charges: dict[str, int] = {}  # the holds of the batch, settled in one go
        logs: list[tuple[str, float, str]] = []
        deltas: list[tuple[str, float, str]] = []
        streamed = any(item.ctx.streamed for item, _ in ended)
        try:
            async with self._deltas_lock if streamed else nullcontext(), self.db.write() as conn:
                for item, to, changes, lines in outcomes:
                    moved = await lifecycle.transition(
                        conn, item.job.id, to, now=now, lease_token=item.job.token,
                        settle=False, **changes,
                    )  # fmt: skip
                    if moved is None:
                        log.info("job %s: result dropped, the lease was taken over", item.job.id)
                        continue
                    moved_jobs.append(moved)
                    charges[item.job.id] = changes.get("charge", 0)
                    logs.extend((item.job.id, ts, line) for ts, line in lines)
                    deltas.extend((item.job.id, now, d) for d in item.ctx.drain_deltas())
                await billing_repo.settle_holds(conn, charges, now)
                await jobs_repo.append_logs(conn, logs)
                await jobs_repo.append_deltas(conn, deltas)
        except Exception:
            log.exception("could not record the end of jobs %s", [i.job.id for i, *_ in outcomes])
            return set()
        for moved in moved_jobs:
            self._on_moved(moved)
        return {moved.job_id for moved in moved_jobs}

    def _charge(self, job: lifecycle.ClaimedJob, usage: dict[str, Any] | None) -> int:
        """What a successful run costs: the model's price of its input and usage (the
        transition caps it at the hold). A price that cannot be computed charges the
        hold, the price the user was shown."""
        entry = self.catalog.get(job.model)
        try:
            assert entry is not None
            return pricing.charge(entry.pricing, orjson.loads(job.input), usage).total
        except Exception:
            log.exception("job %s: could not price the run; charging its hold", job.id)
            return sys.maxsize

    def cancel(self, job_id: str) -> None:
        item = self.running.get(job_id)
        if item is not None:
            item.ctx.cancel_event.set()

    async def _ticker(self) -> None:
        renew_every = self.settings.lease_seconds / 3
        last_renew = last_flush = time.monotonic()
        while True:
            await asyncio.sleep(DELTA_FLUSH_SECONDS)
            try:
                if time.monotonic() - last_flush >= FLUSH_SECONDS:
                    last_flush = time.monotonic()
                    await self._flush()
                elif any(item.ctx.has_deltas for item in self.running.values()):
                    await self._flush(deltas_only=True)
                if time.monotonic() - last_renew >= renew_every:
                    last_renew = time.monotonic()
                    await self._renew()
            except Exception:
                log.exception("worker ticker failed")

    async def _flush(self, *, deltas_only: bool = False) -> None:
        """Store what running jobs reported since the last flush: logs and progress
        (unless ``deltas_only``) and output deltas, then ring their streams."""
        async with self._deltas_lock:
            await self._flush_locked(deltas_only)

    async def _flush_locked(self, deltas_only: bool) -> None:
        now = time.time()
        items = list(self.running.values())
        deltas = [(item.job.id, now, d) for item in items for d in item.ctx.drain_deltas()]
        reports = [] if deltas_only else [(item, *item.ctx.drain()) for item in items]
        reports = [r for r in reports if r[1] or r[2] is not None]
        if not reports and not deltas:
            return
        events = self._logs_events([item for item, logs, _ in reports if logs], now)
        async with self.db.write() as conn:
            await jobs_repo.append_deltas(conn, deltas)
            await jobs_repo.append_logs(
                conn, [(item.job.id, ts, line) for item, logs, _ in reports for ts, line in logs]
            )
            for item, _, progress in reports:
                if progress is not None:
                    await lifecycle.set_progress(conn, item.job.id, item.job.token, progress)
            await webhooks_repo.enqueue(conn, events, now)
        for job_id in {item.job.id for item, _, _ in reports} | {d[0] for d in deltas}:
            self.bus.job_changed(job_id)
        if events:
            self._on_webhooks()

    def _logs_events(self, logged: list[Running], now: float) -> list[webhooks_repo.NewDelivery]:
        """``logs`` webhook events for jobs that asked for them, at most one per job per
        ``webhook_logs_interval`` (lines in between go with the next one's body)."""
        events = []
        for item in logged:
            if not item.wants_logs_events():
                continue
            if now - item.logs_event_at < self.settings.webhook_logs_interval:
                continue
            item.logs_event_at = now
            job = item.job
            assert job.webhook_url is not None
            events.append(
                webhooks_repo.NewDelivery(
                    job.id, job.account_id, WebhookEvent.LOGS, job.webhook_url
                )
            )
        return events

    async def _renew(self) -> None:
        tokens = {job_id: item.job.token for job_id, item in self.running.items()}
        if not tokens:
            return
        async with self.db.write() as conn:
            lost = await lifecycle.renew_leases(
                conn, tokens, time.time() + self.settings.lease_seconds
            )
        for job_id in lost:
            log.warning("lost the lease of job %s; stopping its run", job_id)
            self.cancel(job_id)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming, let running jobs finish for ``grace`` seconds, then hand the
        rest back to the queue."""
        self.stopping = True
        for task in self._loops:
            if task.get_name() != "genyard-ticker":
                task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=grace)
        for item in list(self.running.values()):
            # Hand back first, then stop the run: its late result is then fenced out.
            async with self.db.write() as conn:
                moved = await lifecycle.transition(
                    conn, item.job.id, JobStatus.PENDING, now=time.time(),
                    lease_token=item.job.token,
                )  # fmt: skip
                if moved:
                    await lifecycle.refund_attempt(conn, item.job.id)
            item.ctx.cancel_event.set()
            if moved:
                log.info("job %s returned to the queue at shutdown", item.job.id)
                self._on_moved(moved)
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        for pool in self.pools:
            pool.executor.shutdown(wait=False, cancel_futures=True)
