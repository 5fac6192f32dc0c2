"""POST /v1/estimate: the pricing function's worst case and a time estimate from history,
read-only (on SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from genyard.db.tables import metadata
from genyard.domain.accounts import Scope
from genyard.domain.estimates import DEFAULT_EXPECTED_SECONDS
from genyard.domain.pricing import estimate

from .support import ABSENT, DIAGNOSTIC, Api, write_test_catalog

PRICED = "genyard/priced"
EXPECTED_SECONDS = 2.5
WAIT = {"Prefer": "wait=20"}
# One item of a run: sleep this long per item (the tolerance covers the worker's own time).
ITEM_SECONDS = 0.3
TOLERANCE = 0.2
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


@pytest.fixture
def catalog_dir(tmp_path: Path) -> Path:
    """The test catalog plus a diagnostic-run model priced per item, by quality."""
    directory = write_test_catalog(tmp_path / "catalog")
    (directory / "priced.toml").write_text(
        f"""
[model]
id = "{PRICED}"
type = "image"
provider = "diagnostic"
expected_seconds = {EXPECTED_SECONDS}

[model.pricing]
rule = "per_item"
price = 1.5
count_fields = ["count"]
multipliers = {{ quality = {{ low = 1, high = 2 }} }}
discount = {{}}

[model.input_schema]
type = "object"
additionalProperties = false

[model.input_schema.properties]
mode = {{ type = "string", enum = ["echo", "sleep"], default = "echo" }}
seconds = {{ type = "number", minimum = 0, maximum = 10, default = 0 }}
quality = {{ type = "string", enum = ["low", "high"], default = "low" }}
count = {{ type = "integer", minimum = 1, maximum = 10, default = 1 }}

[model.input_schema.properties.input_images]
type = "array"
items = {{ type = "string", format = "uri", "x-genyard-file" = {{ accept = ["image/*"] }} }}
"""
    )
    return directory


async def post_estimate(api: Api, model: str, input: dict[str, Any]) -> dict[str, Any]:
    r = await api.client.post("/v1/estimate", json={"model": model, "input": input})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def run_items(api: Api, counts: list[int], quality: str) -> None:
    """Run one sleeping job per count, ITEM_SECONDS per item, one after another (jobs
    claimed together run as one batch and all end with its slowest)."""
    for n in counts:
        job = await api.predict(
            PRICED,
            {"mode": "sleep", "seconds": ITEM_SECONDS * n, "count": n, "quality": quality},
            headers=WAIT,
        )
        assert job["status"] == "succeeded", job


async def test_fallback_until_three_runs_then_the_mean_of_history(api: Api) -> None:
    first = await post_estimate(api, PRICED, {"quality": "high", "count": 4})
    assert first["model"] == PRICED
    assert first["time_estimate"] == {
        "seconds": EXPECTED_SECONDS * 4,
        "per_item": EXPECTED_SECONDS,
        "min_seconds": EXPECTED_SECONDS,
        "max_seconds": EXPECTED_SECONDS,
        "sample_count": 0,
        "has_historical": False,
        "source": "fallback",
        "matched_parameters": False,
    }

    await run_items(api, [1, 2], "high")
    await api.predict(PRICED, {"mode": "echo"}, headers=WAIT)  # low quality, not counted
    two = (await post_estimate(api, PRICED, {"quality": "high", "count": 4}))["time_estimate"]
    # 3 runs of the model, but one is low quality: fewer than 3 matching, so all 3 count
    assert two["source"] == "historical" and two["sample_count"] == 3
    assert two["matched_parameters"] is False

    await run_items(api, [3], "high")
    est = (await post_estimate(api, PRICED, {"quality": "high", "count": 4}))["time_estimate"]
    assert est["source"] == "historical" and est["has_historical"] is True
    assert est["sample_count"] == 3 and est["matched_parameters"] is True
    assert ITEM_SECONDS <= est["per_item"] < ITEM_SECONDS + TOLERANCE
    assert est["seconds"] == round(est["per_item"] * 4, 3)
    assert ITEM_SECONDS <= est["min_seconds"] <= est["per_item"] <= est["max_seconds"]
    assert est["max_seconds"] < ITEM_SECONDS + TOLERANCE

    # low quality has one run (the echo): the model's 4 runs overall are averaged
    low = (await post_estimate(api, PRICED, {"count": 2}))["time_estimate"]
    assert low["sample_count"] == 4 and low["matched_parameters"] is False
    assert low["min_seconds"] < ITEM_SECONDS <= low["max_seconds"]


async def test_a_model_without_expected_seconds_falls_back_to_the_default(api: Api) -> None:
    body = await post_estimate(api, DIAGNOSTIC, {"mode": "sleep", "seconds": 5})
    assert body["time_estimate"]["source"] == "fallback"
    assert body["time_estimate"]["seconds"] == DEFAULT_EXPECTED_SECONDS
    assert body["credit_cost"]["total_micro"] == 10_000  # 0.01 credits a call
    assert body["applied_input"] == {"mode": "sleep", "seconds": 5, "steps": 5}


async def test_credit_cost_is_the_pricing_functions_estimate(api: Api) -> None:
    body = await post_estimate(api, PRICED, {"quality": "high", "count": 4})
    applied = body["applied_input"]
    assert applied == {"mode": "echo", "seconds": 0, "quality": "high", "count": 4}
    entry = api.services.catalog.get(PRICED)
    assert entry is not None
    quote = estimate(entry.pricing, applied)
    assert body["credit_cost"] == quote.to_dict()
    # 4 items at 1.5 credits, doubled for high quality, 4 percent off
    assert body["credit_cost"]["total_micro"] == 11_520_000
    assert body["credit_cost"]["kind"] == "estimate"
    assert body["credit_cost"]["discount_percent"] == 4


async def test_refusals_name_the_fields_as_submit_does(api: Api) -> None:
    async def refused(body: Any) -> dict[str, Any]:
        r = await api.client.post("/v1/estimate", json=body)
        assert r.status_code == 400, r.text
        error: dict[str, Any] = r.json()["error"]
        assert error["code"] == "invalid_request"
        return error

    error = await refused({"model": "acme/nothing", "input": {}})
    assert error["message"].startswith("model: unknown model 'acme/nothing'")
    assert error["details"]["errors"] == [{"field": "model", "message": "unknown model"}]

    error = await refused({"model": ABSENT, "input": {}})
    assert error["details"]["field"] == "model"
    assert "unavailable here" in error["message"]

    error = await refused({"model": PRICED, "input": {"quality": "ultra", "count": 0, "bogus": 1}})
    fields = [e["field"] for e in error["details"]["errors"]]
    assert fields == ["input.bogus", "input.count", "input.quality"]
    # the same input on submit is refused with the same fields
    r = await api.client.post(
        "/v1/predictions",
        json={"model": PRICED, "input": {"quality": "ultra", "count": 0, "bogus": 1}},
    )
    assert r.status_code == 400
    assert r.json()["error"]["details"]["errors"] == error["details"]["errors"]

    error = await refused({"model": PRICED, "input": {"input_images": ["ftp://x/y.png"]}})
    assert [e["field"] for e in error["details"]["errors"]] == ["input.input_images[0]"]

    error = await refused({"model": PRICED})
    assert [e["field"] for e in error["details"]["errors"]] == ["input"]
    error = await refused({"model": PRICED, "input": {}, "webhook": "https://example.com"})
    assert [e["field"] for e in error["details"]["errors"]] == ["webhook"]


async def count_rows(api: Api) -> dict[str, int]:
    async with api.services.db.read() as conn:
        return {
            table.name: int(
                (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()
            )
            for table in metadata.sorted_tables
        }


def stored_files(api: Api) -> list[Path]:
    root = api.services.blobs.root
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def test_nothing_is_written_stored_or_fetched(api: Api) -> None:
    await api.predict(PRICED, {"mode": "echo"}, headers=WAIT)  # a history to read
    rows, files = await count_rows(api), stored_files(api)
    # A data URI (stored at submit) and a URL nobody serves (fetched at run time only).
    body = await post_estimate(
        api, PRICED, {"input_images": [PNG, "https://files.invalid/cat.png"], "count": 2}
    )
    assert body["applied_input"]["input_images"] == [PNG, "https://files.invalid/cat.png"]
    assert body["credit_cost"]["total_micro"] == 2_940_000  # 2 items, 2 percent off
    for _ in range(3):
        await post_estimate(api, DIAGNOSTIC, {})
    assert await count_rows(api) == rows
    assert rows["predictions"] == 1
    assert stored_files(api) == files


async def test_scope_is_read(api: Api) -> None:
    reader = await api.new_user("reader", frozenset({Scope.READ}))
    generator = await api.new_user("generator", frozenset({Scope.GENERATE}))
    body = {"model": DIAGNOSTIC, "input": {}}
    r = await api.client.post("/v1/estimate", json=body, headers=api.auth(reader))
    assert r.status_code == 200, r.text
    r = await api.client.post("/v1/estimate", json=body, headers=api.auth(generator))
    assert r.status_code == 403
    assert r.json()["error"]["details"] == {"required_scope": "read"}
    r = await api.anon.post("/v1/estimate", json=body)
    assert r.status_code == 401
