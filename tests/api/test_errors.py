"""One test that walks every error path of the native face: status, code, named field.

Every response also carries X-Request-Id (checked on every response by the client
hook in support.py). Bad requests must write nothing: the walk ends by counting the
predictions the account really has.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from genyard.domain.accounts import Scope

from .support import ABSENT, DIAGNOSTIC, E5, FAST, FAST_MAX_INPUT_BYTES, ApiFactory

MAX_BODY = 16 * 1024
PENDING_CAP = 6


def named_fields(details: dict[str, Any]) -> set[str]:
    names = {e["field"] for e in details.get("errors", [])}
    if "field" in details:
        names.add(details["field"])
    return names


def expect_error(
    r: httpx.Response, status: int, code: str, field: str | None = None
) -> dict[str, Any]:
    """Assert the native envelope ``{"error": {"code", "message", "details"}}``."""
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert list(body) == ["error"], body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["details"], dict)
    assert "Traceback" not in r.text
    if field is not None:
        assert field in named_fields(error["details"]), (field, error)
    return error


async def test_every_error_path_of_the_native_face(make_api: ApiFactory) -> None:
    async with make_api(
        workers=False, max_pending_per_account=PENDING_CAP, max_body_bytes=MAX_BODY
    ) as api:
        c, anon = api.client, api.anon
        created: list[str] = []

        async def post(body: Any, **kw: Any) -> httpx.Response:
            return await c.post("/v1/predictions", json=body, **kw)

        ok = {"model": DIAGNOSTIC, "input": {"mode": "echo"}}

        # --- the body itself -------------------------------------------------------------
        json_headers = {"Content-Type": "application/json"}
        r = await c.post("/v1/predictions", content=b'{"model": ', headers=json_headers)
        assert "position" in expect_error(r, 400, "invalid_request")["details"]
        r = await c.post(
            "/v1/predictions",
            content=b"model=genyard/diagnostic",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        err = expect_error(r, 415, "unsupported_media_type")
        assert err["details"] == {"content_type": "application/x-www-form-urlencoded"}
        r = await c.post("/v1/predictions", content=b'{"model": "x"}')  # no content type
        expect_error(r, 415, "unsupported_media_type")
        r = await c.post("/v1/predictions", content=b"", headers=json_headers)
        assert "empty" in expect_error(r, 400, "invalid_request")["message"]
        r = await post([ok])
        assert "JSON object" in expect_error(r, 400, "invalid_request")["message"]
        expect_error(await post({"input": {"mode": "echo"}}), 400, "invalid_request", "model")
        expect_error(await post({"model": DIAGNOSTIC}), 400, "invalid_request", "input")
        expect_error(await post({**ok, "colour": "red"}), 400, "invalid_request", "colour")
        expect_error(await post({**ok, "input": "echo"}), 400, "invalid_request", "input")
        expect_error(await post({**ok, "model": ""}), 400, "invalid_request", "model")

        # --- the model and its input -----------------------------------------------------
        r = await post({"model": "nobody/nothing", "input": {}})
        expect_error(r, 400, "invalid_request", "model")
        r = await post({"model": ABSENT, "input": {"prompt": "hi"}})
        err = expect_error(r, 400, "invalid_request", "model")
        assert "absent-engine" in err["details"]["reason"]
        assert err["details"]["fix"]
        r = await post({"model": DIAGNOSTIC, "input": {"mode": "dance", "seconds": -1, "bogus": 1}})
        err = expect_error(r, 400, "invalid_request")
        assert named_fields(err["details"]) == {"input.mode", "input.seconds", "input.bogus"}
        for name in ("input.mode", "input.seconds", "input.bogus"):
            assert name in err["message"]
        r = await post({"model": E5, "input": {}})
        err = expect_error(r, 400, "invalid_request", "input.text")
        assert err["details"]["errors"] == [{"field": "input.text", "message": "is required"}]

        # --- sizes -----------------------------------------------------------------------
        big = {"model": FAST, "input": {"mode": "echo", "payload": "x" * FAST_MAX_INPUT_BYTES}}
        err = expect_error(await post(big), 413, "payload_too_large", "input")
        assert err["details"]["limit"] == FAST_MAX_INPUT_BYTES
        assert err["details"]["size"] > FAST_MAX_INPUT_BYTES
        huge = {"model": DIAGNOSTIC, "input": {"mode": "echo", "payload": "x" * MAX_BODY}}
        err = expect_error(await post(huge), 413, "payload_too_large")
        assert err["details"] == {"limit": MAX_BODY}
        # the same body streamed without a Content-Length is cut off while it is read

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"model": "genyard/diagnostic", "input": {"mode": "echo", "payload": "'
            for _ in range(MAX_BODY // 1024 + 1):
                yield b"x" * 1024
            yield b'"}}'

        r = await c.post("/v1/predictions", content=chunks(), headers=json_headers)
        assert "content-length" not in r.request.headers
        assert expect_error(r, 413, "payload_too_large")["details"] == {"limit": MAX_BODY}

        # --- the other fields of a prediction ---------------------------------------------
        for folder in ("a" * 257, "out/../../etc", "/absolute", "back\\slash"):
            r = await post({**ok, "output_folder": folder})
            expect_error(r, 400, "invalid_request", "output_folder")
        for url in ("ftp://example.com/hook", "not a url", "https://"):
            r = await post({**ok, "webhook_url": url})
            expect_error(r, 400, "invalid_request", "webhook_url")
            r = await post({**ok, "webhook": url})
            expect_error(r, 400, "invalid_request", "webhook")
        # literal private/loopback addresses are refused at submit, without DNS
        for url in ("http://127.0.0.1:9/h", "http://[::ffff:10.0.0.1]/h", "http://0x7f.1/"):
            r = await post({**ok, "webhook": url})
            err = expect_error(r, 400, "invalid_request", "webhook")
            assert "GENYARD_OUTBOUND_ALLOWLIST" in err["message"], err
        r = await post(
            {**ok, "webhook": "https://a.example/h", "webhook_url": "https://b.example/h"}
        )
        expect_error(r, 400, "invalid_request", "webhook_url")
        r = await post({**ok, "webhook_events": ["completed", "started"]})
        err = expect_error(r, 400, "invalid_request", "webhook_events")
        assert "'started'" in err["message"]
        r = await post({**ok, "webhook_events": "completed"})
        expect_error(r, 400, "invalid_request", "webhook_events")
        r = await post(ok, headers={"Idempotency-Key": "k" * 201})
        expect_error(r, 400, "invalid_request", "Idempotency-Key")
        # several problems at once are all named
        r = await post(
            {
                "model": DIAGNOSTIC,
                "input": {"mode": "sleep", "steps": 0},
                "output_folder": "../x",
                "webhook_events": ["nope"],
            }
        )
        err = expect_error(r, 400, "invalid_request")
        assert named_fields(err["details"]) == {"input.steps", "output_folder", "webhook_events"}

        # --- authentication and scopes -----------------------------------------------------
        for path in ("/v1/predictions", "/v1/models", "/v1/account", "/v1/keys"):
            expect_error(await anon.get(path), 401, "unauthorized")
        expect_error(await anon.post("/v1/predictions", json=ok), 401, "unauthorized")
        wrong = "gy_live_" + "0" * 40
        for headers in (
            {"X-API-Key": wrong},
            {"Authorization": f"Bearer {wrong}"},
            {"X-API-Key": "not-a-key"},
            {"Authorization": "Bearer "},
            {"Authorization": f"Basic {wrong}"},
        ):
            expect_error(await anon.get("/v1/account", headers=headers), 401, "unauthorized")

        doomed = await api.new_user("doomed")
        assert (await anon.get("/v1/account", headers=api.auth(doomed))).status_code == 200
        keys = (await anon.get("/v1/keys", headers=api.auth(doomed))).json()["data"]
        r = await anon.delete(f"/v1/keys/{keys[0]['id']}", headers=api.auth(doomed))
        assert r.status_code == 200
        expect_error(await anon.get("/v1/account", headers=api.auth(doomed)), 401, "unauthorized")

        reader = await api.new_user("reader", frozenset({Scope.READ}))
        generator = await api.new_user("generator", frozenset({Scope.GENERATE}))
        r = await anon.post("/v1/predictions", json=ok, headers=api.auth(reader))
        assert expect_error(r, 403, "forbidden")["details"] == {"required_scope": "generate"}
        r = await anon.get("/v1/account", headers=api.auth(generator))
        assert expect_error(r, 403, "forbidden")["details"] == {"required_scope": "read"}
        r = await anon.post("/v1/keys", json={}, headers=api.auth(reader))
        assert expect_error(r, 403, "forbidden")["details"] == {"required_scope": "write"}

        # --- predictions that are not there, or not yours --------------------------------
        expect_error(await c.get("/v1/predictions/pred_nope"), 404, "not_found")
        expect_error(await c.delete("/v1/predictions/pred_nope"), 404, "not_found")
        mine = await api.predict(DIAGNOSTIC, {"mode": "echo"})
        created.append(mine["id"])
        stranger = await api.new_user("stranger")
        r = await anon.get(f"/v1/predictions/{mine['id']}", headers=api.auth(stranger))
        expect_error(r, 404, "not_found")
        r = await anon.delete(f"/v1/predictions/{mine['id']}", headers=api.auth(stranger))
        expect_error(r, 404, "not_found")
        assert (await api.get(mine["id"]))["status"] == "pending"  # untouched
        r = await anon.get("/v1/predictions", headers=api.auth(stranger))
        assert r.json()["data"] == []

        # --- conflicts -------------------------------------------------------------------
        assert (await c.delete(f"/v1/predictions/{mine['id']}")).status_code == 200
        r = await c.delete(f"/v1/predictions/{mine['id']}")
        assert expect_error(r, 409, "conflict")["details"] == {"status": "canceled"}
        first = await api.predict(DIAGNOSTIC, {"mode": "echo"}, headers={"Idempotency-Key": "k1"})
        created.append(first["id"])
        r = await post(
            {**ok, "input": {"mode": "echo", "payload": 2}}, headers={"Idempotency-Key": "k1"}
        )
        assert expect_error(r, 409, "conflict")["details"] == {"prediction_id": first["id"]}

        # --- the pending cap -------------------------------------------------------------
        while len(created) - 1 < PENDING_CAP:  # `mine` was canceled: it is not pending
            created.append((await api.predict(DIAGNOSTIC, {"mode": "echo"}))["id"])
        r = await post(ok)
        err = expect_error(r, 429, "rate_limit_exceeded")
        assert err["details"] == {"window": "pending", "pending": PENDING_CAP, "limit": PENDING_CAP}
        assert r.headers["retry-after"] == "5"
        # another account has its own cap; a replay is not a new prediction
        assert (
            await anon.post("/v1/predictions", json=ok, headers=api.auth(stranger))
        ).status_code == 201
        r = await post(ok, headers={"Idempotency-Key": "k1"})
        assert (r.status_code, r.json()["id"]) == (201, first["id"])

        # --- listing ---------------------------------------------------------------------
        expect_error(await c.get("/v1/predictions?cursor=bm9wZQ"), 400, "invalid_request", "cursor")
        for query, field in (
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=ten", "limit"),
            ("status=done", "status"),
        ):
            r = await c.get(f"/v1/predictions?{query}")
            expect_error(r, 400, "invalid_request", field)
        expect_error(await c.get("/v1/models?type=hologram"), 400, "invalid_request", "type")
        expect_error(await c.get("/v1/models/nobody/nothing"), 404, "not_found")

        # --- keys ------------------------------------------------------------------------
        r = await c.post("/v1/keys", json={"scopes": ["read", "admin"]})
        expect_error(r, 400, "invalid_request", "scopes")
        expect_error(await c.post("/v1/keys", json={"name": ""}), 400, "invalid_request", "name")
        expect_error(await c.post("/v1/keys", json={"nme": "x"}), 400, "invalid_request", "nme")
        limited = await api.new_user("limited", frozenset({Scope.READ, Scope.WRITE}))
        for scopes in ([], ["generate"], ["read", "generate"]):
            r = await anon.post("/v1/keys", json={"scopes": scopes}, headers=api.auth(limited))
            err = expect_error(r, 403, "forbidden", "scopes")
            assert err["details"]["missing"] == ["generate"]
        r = await anon.post("/v1/keys", json={"scopes": ["read"]}, headers=api.auth(limited))
        assert r.status_code == 201  # a subset of its own scopes is fine
        active = len([k for k in (await c.get("/v1/keys")).json()["data"] if k["active"]])
        for i in range(10 - active):
            assert (await c.post("/v1/keys", json={"name": f"k{i}"})).status_code == 201
        r = await c.post("/v1/keys", json={"name": "eleventh"})
        assert expect_error(r, 409, "conflict")["details"] == {"limit": 10}
        expect_error(await c.delete("/v1/keys/key_nope"), 404, "not_found")
        strangers_key = (await anon.get("/v1/keys", headers=api.auth(stranger))).json()["data"][0]
        expect_error(await c.delete(f"/v1/keys/{strangers_key['id']}"), 404, "not_found")
        expect_error(await c.delete(f"/v1/keys/{keys[0]['id']}"), 404, "not_found")  # doomed's
        r = await anon.delete(f"/v1/keys/{strangers_key['id']}", headers=api.auth(stranger))
        assert r.status_code == 200
        expect_error(await anon.get("/v1/keys", headers=api.auth(stranger)), 401, "unauthorized")

        # --- routes and methods ------------------------------------------------------------
        for path in ("/v1/nothing", "/nothing", "/v1/predictions/x/y/z"):
            expect_error(await anon.get(path), 404, "not_found")
        for method, path in (
            ("DELETE", "/v1/predictions"),
            ("PUT", "/v1/account"),
            ("POST", "/v1/models"),
            ("PATCH", "/v1/keys"),
        ):
            r = await c.request(method, path)
            expect_error(r, 405, "method_not_allowed")

        # --- nothing was written by the refused requests ------------------------------------
        r = await c.get("/v1/predictions?limit=100")
        assert sorted(j["id"] for j in r.json()["data"]) == sorted(created)
        statuses = [j["status"] for j in r.json()["data"]]
        assert statuses.count("pending") == PENDING_CAP
        assert statuses.count("canceled") == 1


async def test_an_unexpected_exception_is_a_500_envelope_without_the_trace(
    make_api: ApiFactory,
) -> None:
    async with make_api(workers=False) as api:

        async def explode() -> None:
            raise RuntimeError("secret internals")

        api.app.add_api_route("/v1/explode", explode)
        transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://genyard.test") as c:
            r = await c.get("/v1/explode")
        err = expect_error(r, 500, "internal_error")
        assert err["details"] == {}
        assert "secret internals" not in r.text
        assert r.headers["x-request-id"]
