"""Logs: API keys never reach them, every line is JSON, access lines carry the request id.

Keys travel in every place a client may put them (both auth headers, valid, unknown,
malformed and revoked, query strings, paths, bodies, a request-id header) and come
back in POST /v1/keys responses; the only full key the server ever writes is the
admin key in the bootstrap banner of its first start.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from e2e_support import DIAGNOSTIC, FULL_KEY, Server, wait_status

pytestmark = pytest.mark.e2e


class Recorder:
    """Every response the tests got: method, path, status and X-Request-Id."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def __call__(self, response: httpx.Response) -> None:
        self.seen.append(
            {
                "method": response.request.method,
                "path": response.request.url.path,
                "status": response.status_code,
                "request_id": response.headers.get("x-request-id"),
                "sent_request_id": response.request.headers.get("x-request-id"),
            }
        )


@pytest.fixture(scope="module")
def server(module_server_factory: Callable[..., Server]) -> Server:
    return module_server_factory()


@pytest.fixture(scope="module")
def recorder(server: Server) -> Recorder:
    """One per server: the ``[sqlite]`` and ``[postgres]`` runs each start their own."""
    return Recorder()


@pytest.fixture(scope="module")
def client(server: Server, recorder: Recorder) -> Iterator[Callable[..., httpx.Client]]:
    clients: list[httpx.Client] = []

    def make(headers: dict[str, str] | None = None) -> httpx.Client:
        http = httpx.Client(
            base_url=server.url,
            headers=headers or {},
            timeout=30,
            event_hooks={"response": [recorder]},
        )
        clients.append(http)
        return http

    yield make
    for http in clients:
        http.close()


@pytest.fixture(scope="module")
def used_keys(server: Server, client: Callable[..., httpx.Client]) -> set[str]:
    """Send the traffic below once per module; the full keys it used."""
    keys: set[str] = set()
    send_keys_everywhere(server, client, keys)
    return keys


def send_keys_everywhere(
    server: Server, client: Callable[..., httpx.Client], used_keys: set[str]
) -> None:
    admin_key = server.admin_key
    used_keys.add(admin_key)
    admin = client({"X-API-Key": admin_key})
    assert admin.get("/v1/account").status_code == 200
    assert client({"Authorization": f"Bearer {admin_key}"}).get("/v1/keys").status_code == 200

    created = {}
    for name, scopes in (("full", []), ("reader", ["read"]), ("doomed", [])):
        response = admin.post("/v1/keys", json={"name": name, "scopes": scopes})
        assert response.status_code == 201, response.text
        created[name] = response.json()
        assert FULL_KEY.fullmatch(created[name]["key"])
        used_keys.add(created[name]["key"])
    full, reader, doomed = (created[n]["key"] for n in ("full", "reader", "doomed"))

    # Valid keys, both headers, on several routes.
    for headers in ({"X-API-Key": full}, {"Authorization": f"Bearer {full}"}):
        http = client(headers)
        job = http.post(
            "/v1/predictions",
            json={"model": DIAGNOSTIC, "input": {"mode": "echo", "payload": {"k": full}}},
            headers={"Prefer": "wait=10"},
        )
        assert job.status_code == 201, job.text
        assert job.json()["output"] == {"k": full}  # the key in a body goes back, not to logs
        assert http.get(f"/v1/predictions/{job.json()['id']}").status_code == 200
        assert http.get("/v1/predictions", params={"limit": 5}).status_code == 200
        sleeper = http.post(
            "/v1/predictions",
            json={"model": DIAGNOSTIC, "input": {"mode": "sleep", "seconds": 10}},
        ).json()
        wait_status(http, sleeper["id"], "processing")
        assert http.delete(f"/v1/predictions/{sleeper['id']}").status_code == 200
    reader_http = client({"Authorization": f"Bearer {reader}"})
    assert reader_http.get("/v1/account").status_code == 200
    assert reader_http.post("/v1/keys", json={"name": "nope"}).status_code == 403

    # A key in a field the server echoes in an error, in a path, in a query string.
    bad_model = admin.post(
        "/v1/predictions", json={"model": f"x/{full}", "input": {"mode": "echo"}}
    )
    assert bad_model.status_code == 400
    assert admin.get(f"/v1/predictions/{full}").status_code == 404
    assert admin.get(f"/nowhere/{full}").status_code == 404
    assert client().get("/v1/account", params={"api_key": full}).status_code == 401
    # A key sent as a request id (a confused client or proxy) is replaced by our own id.
    odd = admin.get("/v1/account", headers={"X-Request-Id": full})
    assert odd.status_code == 200
    assert odd.headers["x-request-id"].startswith("req_")

    # Unknown, malformed and revoked keys.
    unknown = "gy_live_" + secrets.token_hex(20)
    used_keys.add(unknown)
    for key in (unknown, "gy_live_" + "z" * 40, unknown.upper(), unknown + "00"):
        for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
            response = client(headers).get("/v1/account")
            assert response.status_code == 401, (key, response.text)
            assert key not in response.text
    assert client({"Authorization": f"Basic {full}"}).get("/v1/account").status_code == 401
    assert admin.delete(f"/v1/keys/{created['doomed']['id']}").status_code == 200
    for headers in ({"X-API-Key": doomed}, {"Authorization": f"Bearer {doomed}"}):
        assert client(headers).get("/v1/account").status_code == 401
        assert client(headers).post("/v1/predictions", json={}).status_code == 401


def test_no_key_reaches_the_logs_but_the_admin_banner(server: Server, used_keys: set[str]) -> None:
    assert len(used_keys) == 5
    admin_key = server.admin_key
    output = server.all_output()

    assert FULL_KEY.findall(output) == [admin_key]
    stderr = server.stderr(1)
    banner = (
        "\ngenyard: created the admin user. Admin API key (shown once, also in "
        f"{server.data_dir / 'admin-key'}):\n{admin_key}\n\n"
    )
    assert stderr.count(banner) == 1, stderr[:2000]
    rest = output.replace(banner, "\n", 1)
    for key in used_keys:
        secret_part = key[len("gy_live_") + 6 :]  # beyond what a masked prefix shows
        assert secret_part not in rest, f"part of {key[:14]}… is in the logs"


def banner_free_lines(server: Server) -> list[str]:
    text = server.stderr(1)
    admin_key = server.admin_key
    lines = [line for line in text.splitlines() if line.strip()]
    banner = [i for i, line in enumerate(lines) if line.startswith("genyard: created the admin")]
    assert len(banner) == 1
    assert lines[banner[0] + 1] == admin_key
    return lines[: banner[0]] + lines[banner[0] + 2 :]


def test_every_log_line_is_json_and_access_lines_carry_the_request_id(
    server: Server,
    recorder: Recorder,
    client: Callable[..., httpx.Client],
    used_keys: set[str],
) -> None:
    admin = client({"X-API-Key": server.admin_key})
    mine = admin.get("/v1/account", headers={"X-Request-Id": "client-chosen.id:42"})
    assert mine.headers["x-request-id"] == "client-chosen.id:42"
    assert admin.get("/healthz").status_code == 200
    assert len(recorder.seen) > 30
    # The access line is written once the response has gone out: let the last ones land.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        output = server.stderr(1) + server.stdout(1)
        if all(seen["request_id"] in output for seen in recorder.seen):
            break
        time.sleep(0.05)

    records = []
    for line in banner_free_lines(server) + server.stdout(1).splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            pytest.fail(f"not a JSON log line: {line!r}")
        assert isinstance(record, dict), line
        assert {"ts", "level", "logger", "msg"} <= record.keys(), line
        records.append(record)

    access = [r for r in records if r["logger"] == "genyard.access"]
    by_id: dict[str, list[dict[str, Any]]] = {}
    for record in access:
        assert record.get("request_id"), record
        by_id.setdefault(record["request_id"], []).append(record)
    for seen in recorder.seen:
        request_id = seen["request_id"]
        assert request_id, seen
        sent = seen["sent_request_id"]
        if sent and FULL_KEY.fullmatch(sent):
            assert request_id.startswith("req_"), seen  # a key is never echoed or kept
        elif sent:
            assert request_id == sent
        assert len(by_id.get(request_id, [])) == 1, (seen, by_id.get(request_id))
        (line,) = by_id[request_id]
        assert (line["method"], line["status"]) == (seen["method"], seen["status"]), line

    routes = {(r["method"], r["route"]) for r in access}
    assert ("GET", "/v1/predictions/{prediction_id}") in routes, sorted(routes)
    assert ("DELETE", "/v1/keys/{key_id}") in routes
    assert ("POST", "/v1/predictions") in routes
    assert ("GET", "/healthz") in routes
    assert ("GET", "unmatched") in routes
