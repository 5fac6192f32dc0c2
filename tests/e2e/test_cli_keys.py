"""The CLI and the server share one data dir: keys made by either work over HTTP,
scopes hold, and a revoked key stops working at once."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from e2e_support import E5, FULL_KEY, Server, submit, table_rows

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(module_server_factory: Callable[..., Server]) -> Server:
    return module_server_factory()


def cli_key(server: Server, user: str, scopes: str) -> tuple[str, str]:
    """``genyard keys create``: (key id, key). The key is alone on the last stdout line."""
    result = server.cli("keys", "create", "--user", user, "--scopes", scopes, "--name", scopes)
    key = result.stdout.strip().splitlines()[-1]
    assert FULL_KEY.fullmatch(key), result.stdout
    rows = [r for r in table_rows(server.cli("keys", "list", "--user", user).stdout)]
    matching = [r for r in rows if r[3] == key[:14] + "…"]
    assert len(matching) == 1, rows
    key_id, owner, _name, _prefix, shown_scopes, state = matching[0]
    assert owner == user
    assert state == "active"
    assert shown_scopes == ",".join(sorted(scopes.split(",")))
    return key_id, key


def test_cli_made_keys_work_over_http_with_their_scopes(server: Server) -> None:
    created = server.cli("users", "create", "alice", "--tier", "free")
    assert "\talice\t" in created.stdout
    key_id, key = cli_key(server, "alice", "read,generate")
    # The key was shown once; the listing only has its prefix.
    assert key not in server.cli("keys", "list").stdout

    with server.client(key) as http:
        account = http.get("/v1/account")
        assert account.status_code == 200, account.text
        assert account.json()["user"]["name"] == "alice"
        assert account.json()["user"]["tier"] == "free"
        assert account.json()["key"] == {"id": key_id, "scopes": ["generate", "read"]}

        job = submit(http, {"text": "안녕하세요, 반갑습니다"}, model=E5, wait=60)
        assert job["status"] == "succeeded", job
        vector = job["output"]["embeddings"][0]
        assert job["output"]["dimensions"] == 384
        assert len(vector) == 384
        assert math.isclose(math.fsum(v * v for v in vector), 1.0, rel_tol=1e-3)

        # read,generate lacks write: it cannot mint keys.
        denied = http.post("/v1/keys", json={"name": "more"})
        assert denied.status_code == 403, denied.text
        assert denied.json()["error"]["details"]["required_scope"] == "write"

    # A read-only key can look but not generate.
    _, read_key = cli_key(server, "alice", "read")
    with server.client(read_key, bearer=True) as http:
        assert http.get("/v1/account").status_code == 200
        listed = http.get("/v1/predictions")
        assert listed.status_code == 200
        assert [p["id"] for p in listed.json()["data"]] == [job["id"]]
        forbidden = http.post("/v1/predictions", json={"model": E5, "input": {"text": "no"}})
        assert forbidden.status_code == 403, forbidden.text
        assert forbidden.json()["error"]["code"] == "forbidden"
    with server.client(key) as http:
        # The refused submit left nothing behind.
        assert len(http.get("/v1/predictions").json()["data"]) == 1

    # Revoke through the CLI while the server runs: the next request is refused.
    revoked = server.cli("keys", "revoke", key_id)
    assert key_id in revoked.stdout
    with server.client(key) as http:
        gone = http.get("/v1/account")
        assert gone.status_code == 401, gone.text
        assert gone.json()["error"]["code"] == "unauthorized"
        assert http.post("/v1/predictions", json={}).status_code == 401
    states = {r[0]: r[5] for r in table_rows(server.cli("keys", "list").stdout)}
    assert states[key_id] == "revoked"
    again = server.cli("keys", "revoke", key_id, check=False)
    assert again.returncode != 0


def test_key_created_over_http_works(server: Server) -> None:
    with server.client(server.admin_key) as admin:
        created = admin.post("/v1/keys", json={"name": "reader", "scopes": ["read"]})
        assert created.status_code == 201, created.text
        body = created.json()
        new_key = body["key"]
        assert FULL_KEY.fullmatch(new_key)
        assert body["scopes"] == ["read"]
        assert body["prefix"] == new_key[:14]
        listed = admin.get("/v1/keys").json()["data"]
        assert body["id"] in {k["id"] for k in listed}
        assert all("key" not in k for k in listed)

    with server.client(new_key, bearer=True) as http:
        me = http.get("/v1/account")
        assert me.status_code == 200, me.text
        assert me.json()["user"]["name"] == "admin"
        assert me.json()["key"]["id"] == body["id"]
        assert http.post("/v1/keys", json={"name": "x"}).status_code == 403
        denied = http.post("/v1/predictions", json={"model": E5, "input": {"text": "x"}})
        assert denied.status_code == 403

    # The CLI sees the HTTP-made key too.
    rows = table_rows(server.cli("keys", "list", "--user", "admin").stdout)
    assert body["id"] in {r[0] for r in rows}

    with server.client(server.admin_key) as admin:
        assert admin.delete(f"/v1/keys/{body['id']}").status_code == 200
    with server.client(new_key) as http:
        assert http.get("/v1/account").status_code == 401
