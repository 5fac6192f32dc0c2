"""The diagnostic model, for tests and benchmarks (``GENYARD_DIAGNOSTIC_MODELS=1``).

Modes (``input.mode``, default ``echo``):

- ``echo``: returns ``input.payload`` at once (batches of up to 32 in one call);
- ``files``: returns a list of copies of ``input.input_images`` (same bytes, type and
  name) as output files, which the worker stores; ``input.prompt`` is accepted and
  ignored in every mode (so image models' example calls run here);
- ``sleep``: sleeps ``input.seconds``, watching the cancel flag;
- ``progress``: reports progress and a log line in ``input.steps`` steps over ``input.seconds``;
- ``fail``: fails with ``provider_error`` and ``input.message``;
- ``crash``: kills the worker process at once (SIGKILL), as a segfaulting engine would.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from genyard.domain.catalog import ModelEntry
from genyard.errors import JobError, ProviderError
from genyard.providers.base import (
    Availability,
    InputFile,
    OutputFile,
    ProviderResult,
    RunContext,
    SlotPlan,
)

#: Modes that finish at once: a batch of them runs inline, without a thread per job.
INSTANT_MODES = frozenset({"echo", "files"})


class DiagnosticProvider:
    def availability(self) -> Availability:
        return Availability(True)

    def slot_plan(self, cores: int) -> SlotPlan:
        return SlotPlan(threads_per_call=0, parallel_calls=32, max_batch=32, cpu_bound=False)

    def run(self, model: ModelEntry, input: dict[str, Any], ctx: RunContext) -> ProviderResult:
        mode = input.get("mode", "echo")
        ctx.log(f"diagnostic {mode} attempt={ctx.attempt}")
        if mode == "echo":
            return ProviderResult(output=input.get("payload"), usage={"items": 1})
        if mode == "files":
            files: list[InputFile] = input.get("input_images") or []
            copies = [OutputFile(f.data, f.content_type, f.filename) for f in files]
            return ProviderResult(output=copies, usage={"items": len(copies)})
        if mode == "fail":
            raise ProviderError(str(input.get("message") or "diagnostic failure"))
        if mode == "crash":
            os.kill(os.getpid(), signal.SIGKILL)
        if mode == "stream":
            prompt, seconds = str(input.get("prompt") or ""), float(input.get("seconds", 1.0))
            return self._stream(prompt, seconds, ctx)
        seconds = float(input.get("seconds", 1.0))
        steps = max(1, int(input.get("steps", 1))) if mode == "progress" else 1
        for step in range(steps):
            if ctx.cancel_event.wait(seconds / steps):
                raise ProviderError("stopped: the job was canceled or timed out")
            if mode == "progress":
                ctx.progress(100 * (step + 1) / steps)
                ctx.log(f"step {step + 1}/{steps}")
        return ProviderResult(output=input.get("payload"), usage={"seconds": seconds})

    def _stream(self, text: str, seconds: float, ctx: RunContext) -> ProviderResult:
        """Emit ``text`` word by word over ``seconds``, as a chat model streams tokens."""
        pieces = [word + " " for word in text.split(" ")] if text else []
        if pieces:
            pieces[-1] = pieces[-1][:-1]
        for piece in pieces:
            if ctx.cancel_event.wait(seconds / max(1, len(pieces))):
                raise ProviderError("stopped: the job was canceled or timed out")
            ctx.emit(piece)
        return ProviderResult(output={"text": text}, usage={"items": 1})

    def run_batch(
        self,
        model: ModelEntry,
        inputs: Sequence[dict[str, Any]],
        ctxs: Sequence[RunContext],
    ) -> list[ProviderResult | JobError]:
        # Echoes run inline; sleeping modes get a thread each so a batch never
        # serialises work that would have run in parallel.
        def one(pair: tuple[dict[str, Any], RunContext]) -> ProviderResult | JobError:
            try:
                return self.run(model, pair[0], pair[1])
            except JobError as exc:
                return exc

        pairs = list(zip(inputs, ctxs, strict=True))
        if all(item.get("mode", "echo") in INSTANT_MODES for item in inputs):
            return [one(pair) for pair in pairs]
        with ThreadPoolExecutor(max_workers=len(pairs)) as pool:
            return list(pool.map(one, pairs))
