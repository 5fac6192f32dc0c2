"""The provider of catalog entries that no engine here can serve (yet).

Some modalities have no model whose weights ship inside a package and that runs on a
CPU (zero-shot voice cloning, text-conditioned image generation). Their entries are
still listed, with their input schema, so clients see the model, why it cannot run
and what would make it run; a submit is refused with that reason. The reason and the
fix come from the entry's settings::

    provider = "unavailable"

    [model.settings]
    reason = "no bundled zero-shot voice-cloning model runs here"
    fix = "configure a remote provider for voice cloning (not available yet)"
"""

from __future__ import annotations

from typing import Any

from genyard.domain.catalog import ModelEntry
from genyard.errors import ProviderUnavailable
from genyard.providers.base import Availability, ProviderResult, RunContext, SlotPlan

REASON = "no engine here serves this model"
FIX = "configure a remote provider for it"


class UnavailableProvider:
    def availability(self) -> Availability:
        return Availability(False, REASON, FIX)

    def model_availability(self, model: ModelEntry) -> Availability:
        return Availability(
            False,
            str(model.settings.get("reason") or REASON),
            str(model.settings.get("fix") or FIX),
        )

    def slot_plan(self, cores: int) -> SlotPlan:
        return SlotPlan(threads_per_call=0, cpu_bound=False)

    def run(self, model: ModelEntry, input: dict[str, Any], ctx: RunContext) -> ProviderResult:
        raise ProviderUnavailable(self.model_availability(model).reason or REASON)
