"""Estimates: the cost and time of a call before it runs, for every face.

:meth:`EstimateService.estimate` checks a call exactly as submit does (the model, its
availability, the input schema with defaults filled in, file values by form) and then
writes nothing: no job, no hold, no stored file, no fetch. The cost is the pricing
function's worst case, the same number a hold takes; the time comes from the model's
recent succeeded runs (:mod:`genyard.domain.estimates`).
"""

from __future__ import annotations

from typing import Any

from genyard.db import jobs_repo
from genyard.db.engine import Database
from genyard.domain.catalog import ModelEntry
from genyard.domain.estimates import (
    RECENT_RUNS,
    SCAN_RUNS,
    Estimate,
    TimeEstimate,
    priced_fields,
    sample_fields,
    time_estimate,
)
from genyard.domain.pricing import estimate as price
from genyard.domain.validation import validate_input
from genyard.services.files import FileService
from genyard.services.predictions import PredictionService, invalid


class EstimateService:
    def __init__(self, db: Database, predictions: PredictionService, files: FileService) -> None:
        self.db = db
        self.predictions = predictions
        self.files = files

    async def estimate(self, model: str, input: dict[str, Any]) -> Estimate:
        """What a call of ``model`` with ``input`` would cost and take; 400 (naming the
        fields) for a call submit would refuse."""
        entry = self.predictions.available_model(model)
        filled, errors = validate_input(entry.input_schema, input)
        # Checks file values as submit does; nothing is stored (store_inputs is not
        # called) and no URL is fetched (URLs are checked by form at submit, too).
        prepared = await self.files.prepare_inputs(entry, filled)
        errors += prepared.errors
        if errors:
            raise invalid(errors)
        applied = prepared.input
        quote = price(entry.pricing, applied)
        return Estimate(entry.id, quote, await self.time(entry, applied), applied)

    async def time(self, entry: ModelEntry, input: dict[str, Any]) -> TimeEstimate:
        """How long a run of ``entry`` with ``input`` (checked, defaults filled in) takes,
        from the model's recent succeeded runs."""
        # Runs with the call's priced parameters are looked for among more of the latest.
        scan = SCAN_RUNS if priced_fields(entry.pricing) else RECENT_RUNS
        async with self.db.read() as conn:
            runs = await jobs_repo.recent_runs(
                conn, entry.id, sample_fields(entry.pricing), limit=scan
            )
        return time_estimate(entry.pricing, input, runs, expected_seconds=entry.expected_seconds)
