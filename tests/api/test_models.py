"""/v1/models: the catalog with availability, schemas and a working curl example."""

from __future__ import annotations

import json
import shlex

from genyard.domain.catalog import BUNDLED_CATALOG_DIR, Catalog

from .support import ABSENT, DIAGNOSTIC, E5, FAST, PICTURES, Api, ApiFactory

BUNDLED = {m.id for m in Catalog.load([BUNDLED_CATALOG_DIR]).all()}  # every model genyard ships


async def test_list_models_with_availability(api: Api) -> None:
    r = await api.client.get("/v1/models")
    assert r.status_code == 200
    models = {m["id"]: m for m in r.json()["data"]}
    assert set(models) == BUNDLED | {DIAGNOSTIC, FAST, PICTURES, ABSENT}
    e5 = models[E5]
    assert e5 == {
        "id": E5,
        "type": "embedding",
        "owner": "intfloat",
        "description": e5["description"],
        "languages": ["multilingual", "ko", "en", "ja", "zh"],
        "available": True,
    }
    absent = models[ABSENT]
    assert absent["available"] is False
    assert absent["reason"] == "no provider named 'absent-engine' is installed"
    assert "absent-engine" in absent["fix"]
    assert models[DIAGNOSTIC]["available"] is True
    assert r.json()["defaults"]["embedding"] == {"default": E5, "ko": E5, "en": E5}


async def test_list_models_by_type(api: Api) -> None:
    r = await api.client.get("/v1/models?type=embedding")
    assert [m["id"] for m in r.json()["data"]] == [E5]
    assert r.json()["defaults"] == {"embedding": {"default": E5, "ko": E5, "en": E5}}
    r = await api.client.get("/v1/models?type=diagnostic")
    assert sorted(m["id"] for m in r.json()["data"]) == [DIAGNOSTIC, FAST]
    assert r.json()["defaults"] == {}
    r = await api.client.get("/v1/models?type=video")
    assert (r.status_code, r.json()) == (200, {"data": [], "defaults": {}})


async def test_get_one_model_with_schema_limits_and_example(api: Api) -> None:
    r = await api.client.get(f"/v1/models/{E5}")
    assert r.status_code == 200
    model = r.json()
    entry = Catalog.load([BUNDLED_CATALOG_DIR]).get(E5)
    assert entry is not None
    assert model["input_schema"] == entry.input_schema
    assert model["input_schema"]["required"] == ["text"]
    assert model["capabilities"]["dimensions"] == 384
    assert model["limits"] == {
        "timeout": 120, "queue_timeout": 600, "max_input_bytes": 1048576, "max_running": None,
    }  # fmt: skip
    assert model["pricing"] == {
        "rule": "per_token",
        "input_price": 0.002,
        "output_price": 0.0,
        "per": 1000,
        "input_field": "text",
        "overhead_tokens": 8,
    }
    assert model["default_for"] == ["embedding"]
    assert model["available"] is True
    assert model["example"]["input"] == entry.example_input
    curl = model["example"]["curl"]
    assert curl.startswith("curl -X POST http://127.0.0.1:8000/v1/predictions")
    assert '-H "X-API-Key: $GENYARD_API_KEY"' in curl
    assert '-H "Prefer: wait=30"' in curl


async def test_the_curl_example_is_a_request_that_works(api: Api) -> None:
    model = (await api.client.get(f"/v1/models/{E5}")).json()
    argv = shlex.split(model["example"]["curl"].replace("\\\n", " "))
    body = json.loads(argv[argv.index("-d") + 1])
    assert body == {"model": E5, "input": model["example"]["input"]}
    r = await api.client.post("/v1/predictions", json=body, headers={"Prefer": "wait=30"})
    assert r.status_code == 201
    job = r.json()
    assert job["status"] == "succeeded", job
    assert len(job["output"]["embeddings"]) == len(body["input"]["text"])


async def test_unavailable_and_test_models_show_their_details(api: Api) -> None:
    absent = (await api.client.get(f"/v1/models/{ABSENT}")).json()
    assert absent["available"] is False and absent["reason"]
    assert absent["default_for"] == []
    fast = (await api.client.get(f"/v1/models/{FAST}")).json()
    assert fast["limits"] == {
        "timeout": 0.5, "queue_timeout": 1, "max_input_bytes": 2048, "max_running": None,
    }  # fmt: skip
    assert fast["input_schema"]["properties"]["mode"]["enum"] == [
        "echo",
        "files",
        "sleep",
        "progress",
        "stream",
        "fail",
        "crash",
    ]


async def test_diagnostic_models_are_hidden_unless_enabled(make_api: ApiFactory) -> None:
    async with make_api(diagnostic_models=False, catalog_dir=None) as api:
        r = await api.client.get("/v1/models")
        assert {m["id"] for m in r.json()["data"]} == BUNDLED
        r = await api.client.get(f"/v1/models/{DIAGNOSTIC}")
        assert r.status_code == 404
        r = await api.client.post(
            "/v1/predictions", json={"model": DIAGNOSTIC, "input": {"mode": "echo"}}
        )
        assert r.status_code == 400
        assert r.json()["error"]["details"]["errors"][0]["field"] == "model"
