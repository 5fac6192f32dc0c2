"""What a provider is: one small Protocol, plus the context a run gets.

A provider turns a validated input into an output. ``run`` is called in a worker
thread (the local engines release the GIL), with a :class:`RunContext` for progress,
logs and the cancel flag. File fields of the input arrive as :class:`InputFile`
(already read); files in the output are returned as :class:`OutputFile`. A provider
that can serve several inputs in one call also implements ``run_batch``. Vendor
exceptions are translated at this edge: ``raise ProviderError("...") from exc``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from genyard.domain.catalog import ModelEntry
from genyard.errors import InvalidInput, JobError


@dataclass(frozen=True, slots=True)
class Availability:
    """Whether a provider can run here; when not, why and how to fix it."""

    available: bool
    reason: str | None = None
    fix: str | None = None


@dataclass(frozen=True, slots=True)
class SlotPlan:
    """How a provider uses the CPU: ``threads_per_call`` x ``parallel_calls`` <= cores.

    ``cpu_bound=False`` (sleeping or remote providers) keeps the provider outside the
    core budget. ``max_batch`` > 1 lets a worker claim that many jobs of one model and
    hand them to ``run_batch`` together.
    """

    threads_per_call: int = 1
    parallel_calls: int = 1
    max_batch: int = 1
    cpu_bound: bool = True


@dataclass(slots=True)
class ProviderResult:
    """A run's output (JSON values, :class:`OutputFile` anywhere in it) and usage."""

    output: Any
    usage: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InputFile:
    """A file input, read before the run: file fields hold these instead of URLs.

    ``url`` is what the input said (a genyard file URL or the user's URL)."""

    data: bytes
    content_type: str
    filename: str
    url: str


def input_file(input: Mapping[str, Any], field: str, what: str) -> InputFile:
    """The file in ``input[field]``; :class:`InvalidInput` naming the field (``what``
    says what it must be, e.g. "an audio file") when there is none."""
    value = input.get(field)
    if not isinstance(value, InputFile):
        raise InvalidInput(f"input.{field} must be {what}")
    return value


@dataclass(frozen=True, slots=True)
class OutputFile:
    """A file a provider returns: put it anywhere in the output (top level, in lists or
    dict values). The worker stores it and puts the file's URL in its place."""

    data: bytes
    content_type: str
    filename: str


class RunContext:
    """Handed to a provider run. Thread-safe: providers call it from worker threads."""

    def __init__(self, job_id: str, attempt: int) -> None:
        self.job_id = job_id
        self.attempt = attempt
        self.cancel_event = threading.Event()
        self._lock = threading.Lock()
        self._logs: list[tuple[float, str]] = []
        self._progress: int | None = None
        self._deltas: list[str] = []
        #: Whether the run ever emitted a piece (the worker then orders its last
        #: pieces before the job's end).
        self.streamed = False

    @property
    def canceled(self) -> bool:
        """True once the job was canceled, timed out or lost its lease: stop early."""
        return self.cancel_event.is_set()

    def log(self, line: str) -> None:
        with self._lock:
            self._logs.append((time.time(), line))

    def progress(self, percent: float) -> None:
        with self._lock:
            self._progress = max(0, min(100, int(percent)))

    def emit(self, text: str) -> None:
        """Stream a piece of the output as it is made (a chat model's tokens): clients
        of the prediction's stream get it as a ``delta`` event at once. The run's
        returned output stays the whole result."""
        if text:
            with self._lock:
                self._deltas.append(text)
                self.streamed = True

    def drain_deltas(self) -> list[str]:
        """Output pieces emitted since the last call (for the worker to store)."""
        with self._lock:
            deltas, self._deltas = self._deltas, []
        return deltas

    @property
    def has_deltas(self) -> bool:
        return bool(self._deltas)

    def drain(self) -> tuple[list[tuple[float, str]], int | None]:
        """Logs and progress reported since the last drain (for the worker to store)."""
        with self._lock:
            logs, self._logs = self._logs, []
            progress, self._progress = self._progress, None
        return logs, progress


@runtime_checkable
class Provider(Protocol):
    """A backend that runs models of the catalog entries naming it."""

    def availability(self) -> Availability: ...

    def slot_plan(self, cores: int) -> SlotPlan: ...

    def run(self, model: ModelEntry, input: dict[str, Any], ctx: RunContext) -> ProviderResult: ...


@runtime_checkable
class BatchProvider(Provider, Protocol):
    """A provider that runs several inputs of one model in one call.

    Returns one result per input, in order: a ``ProviderResult`` or the ``JobError``
    that input failed with.
    """

    def run_batch(
        self,
        model: ModelEntry,
        inputs: Sequence[dict[str, Any]],
        ctxs: Sequence[RunContext],
    ) -> list[ProviderResult | JobError]: ...


@runtime_checkable
class ModelAvailabilityProvider(Provider, Protocol):
    """A provider whose availability differs per model (e.g. the ``unavailable``
    provider, whose entries each state their own reason and fix in their settings).
    :meth:`ProviderRegistry.availability` asks it when given the model."""

    def model_availability(self, model: ModelEntry) -> Availability: ...
