"""Background removal for photos of people: MediaPipe selfie segmentation.

The engine runs in a Python of its own (mediapipe 0.10.21 needs numpy<2): see
:mod:`genyard.providers.local.mediapipe_client` for the subprocess and
:mod:`genyard.providers.local.mediapipe_runner` for what runs inside it. The model
cache holds a :class:`RunnerPool` (one warm process per parallel call, started as
calls overlap) and closes its processes when it evicts the entry.

Selfie segmentation tells people from everything else: it keeps the people of a photo
and makes the rest transparent; it does not cut out objects, animals or products.
"""

from __future__ import annotations

import os
from pathlib import PurePath
from typing import Any

from genyard.domain.catalog import ModelEntry
from genyard.errors import InvalidInput, ProviderError
from genyard.providers.base import (
    Availability,
    OutputFile,
    ProviderResult,
    RunContext,
    SlotPlan,
    input_file,
)
from genyard.providers.local.mediapipe_client import (
    INSTALL_COMMAND,
    RunnerPool,
    runner_problem,
    runner_python,
)
from genyard.providers.runtime import model_cache

CACHE_KEY = "mediapipe-selfie"
MODEL_SELECTION = {"general": 0, "landscape": 1}
DEFAULT_MAX_PIXELS = 4096 * 4096
#: TFLite's XNNPACK delegate runs one thread per graph on Linux: one core per call.
THREADS_PER_CALL = 1


class MediapipeSelfieProvider:
    def __init__(self) -> None:
        self._parallel = max(1, min(2, os.cpu_count() or 1))

    def availability(self) -> Availability:
        problem = runner_problem(runner_python())
        if problem is not None:
            return Availability(False, problem, INSTALL_COMMAND)
        return Availability(True)

    def slot_plan(self, cores: int) -> SlotPlan:
        # One runner process per parallel call, each on one core.
        self._parallel = max(1, min(2, cores))
        return SlotPlan(threads_per_call=THREADS_PER_CALL, parallel_calls=self._parallel)

    def _load(self) -> RunnerPool:
        pool = RunnerPool(runner_python(), self._parallel)
        pool.warm()  # one process now; a second when two calls overlap
        return pool

    def warm(self, model: ModelEntry) -> None:
        model_cache().warm(
            CACHE_KEY, self._load, memory_mb=model.limits.memory_mb, close=RunnerPool.close
        )

    def run(self, model: ModelEntry, input: dict[str, Any], ctx: RunContext) -> ProviderResult:
        image = input_file(input, "image", "an image file (PNG, JPEG or WebP)")
        variant = str(input.get("variant", "general"))
        if variant not in MODEL_SELECTION:
            raise InvalidInput(f"input.variant must be one of {sorted(MODEL_SELECTION)}")
        request = {
            "op": "segment",
            "threshold": float(input.get("threshold", 0.5)),
            "soft_edges": bool(input.get("soft_edges", True)),
            "model_selection": MODEL_SELECTION[variant],
            "max_pixels": int(model.capabilities.get("max_pixels", DEFAULT_MAX_PIXELS)),
        }
        with model_cache().use(
            CACHE_KEY, self._load, memory_mb=model.limits.memory_mb, close=RunnerPool.close
        ) as pool:
            runner = pool.acquire()
            try:
                reply, png = runner.request(
                    request,
                    image.data,
                    timeout=float(model.limits.timeout),
                    canceled=lambda: ctx.canceled,
                )
            finally:
                pool.release(runner)
        if not reply.get("ok"):
            message = str(reply.get("message") or "no reason given")
            if reply.get("error") == "invalid_input":
                raise InvalidInput(f"input.image: {message}")
            raise ProviderError(f"mediapipe: {message}")
        ctx.log(
            f"{reply.get('width')}x{reply.get('height')} px, "
            f"person on {100 * float(reply.get('person', 0)):.1f}% of them ({variant} model)"
        )
        name = f"{PurePath(image.filename or 'image').stem or 'image'}-no-background.png"
        return ProviderResult(
            output={"image": OutputFile(png, "image/png", name)}, usage={"items": 1}
        )
