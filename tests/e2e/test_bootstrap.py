"""First start: the admin user and its key are created once, shown once, kept 0600."""

from __future__ import annotations

import stat
import subprocess
import sys
from collections.abc import Callable

import pytest
from e2e_support import FULL_KEY, Server, table_rows

pytestmark = pytest.mark.e2e


def test_first_start_creates_one_admin_and_prints_its_key_once(
    make_server: Callable[..., Server],
) -> None:
    server = make_server().start()
    key_file = server.data_dir / "admin-key"
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = server.admin_key
    assert FULL_KEY.fullmatch(key), key

    first_err = server.stderr()
    assert first_err.count(key) == 1
    assert FULL_KEY.findall(first_err) == [key]
    assert key not in server.stdout()
    assert "created the admin user" in first_err

    with server.client(key) as http:
        account = http.get("/v1/account")
        assert account.status_code == 200, account.text
        body = account.json()
        assert body["user"]["name"] == "admin"
        assert body["user"]["is_admin"] is True
        first_account_id = body["id"]
        # The same key as a bearer token.
        bearer = http.get("/v1/account", headers={"Authorization": f"Bearer {key}"})
        assert bearer.status_code == 200

    server.stop()
    assert not server.running

    # Second start on the same data dir: no new admin, no key printed, file untouched.
    server.start()
    second_err = server.stderr()
    assert FULL_KEY.search(second_err) is None, second_err
    assert "created the admin user" not in second_err
    assert FULL_KEY.search(server.stdout()) is None
    assert server.admin_key == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    with server.client(key) as http:
        again = http.get("/v1/account")
        assert again.status_code == 200, again.text
        assert again.json()["id"] == first_account_id

    admins = server.db_rows("SELECT name FROM users WHERE is_admin")
    assert admins == [("admin",)]
    rows = table_rows(server.cli("users", "list").stdout)
    assert [(r[1], r[3], r[4]) for r in rows] == [("admin", "enterprise", "True")]


@pytest.mark.sqlite_only(
    reason="the serve.lock guards a SQLite data dir; on PostgreSQL many processes share a queue"
)
def test_a_second_server_on_the_same_data_dir_refuses_to_start(
    make_server: Callable[..., Server],
) -> None:
    server = make_server().start()
    with server.client(server.admin_key) as http:
        assert http.get("/v1/account").status_code == 200
        # Same data dir, another port: it must not start workers on the same queue.
        other = dict(server.env, GENYARD_PORT=str(server.port + 1))
        second = subprocess.run(
            [sys.executable, "-m", "genyard", "serve"],
            cwd=server.root,
            env=other,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode == 1, second.stderr
        assert "already running workers" in second.stderr
        assert "Traceback" not in second.stderr
        assert http.get("/v1/account").status_code == 200
