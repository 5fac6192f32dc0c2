"""Credits across processes and crashes: the CLI grants into the server's database, and
a server killed -9 mid-job strands no hold (the job is run again, charged once)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from e2e_support import FULL_KEY, Server, wait_status

pytestmark = pytest.mark.e2e


def test_a_kill_9_mid_job_leaves_no_hold_and_charges_once(
    make_server: Callable[..., Server], database: str
) -> None:
    server = make_server(
        GENYARD_LEASE_SECONDS="2", GENYARD_REAPER_INTERVAL="0.3", GENYARD_RATE_LIMITS="off"
    ).start()
    server.cli("users", "create", "ann")
    granted = server.cli("credits", "grant", "--user", "ann", "--amount", "2.5")
    assert granted.stdout.strip().split("\t")[1:] == ["purchase", "+2.5", "balance=12.5"]
    key = server.cli("keys", "create", "--user", "ann").stdout.strip().splitlines()[-1]
    assert FULL_KEY.fullmatch(key)
    with server.client(key) as http:
        r = http.post(
            "/v1/predictions",
            json={"model": "genyard/diagnostic", "input": {"mode": "sleep", "seconds": 2}},
        )
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        wait_status(http, job_id, "processing")
        assert http.get("/v1/credits/balance").json()["held"] == 0.01
    server.kill()
    server.start()
    with server.client(key) as http:
        done = wait_status(http, job_id, "succeeded", "failed", timeout=30)
        assert done["status"] == "succeeded", done
        assert done["usage"]["credits_charged"] == 0.01
        balance = http.get("/v1/credits/balance").json()
        rows = http.get("/v1/credits/transactions").json()["data"]
    assert balance["held"] == 0.0
    assert balance["total"] == 12.49
    assert [(r["type"], r["amount"]) for r in rows] == [
        ("spend", -0.01),
        ("purchase", 2.5),
        ("signup_bonus", 10.0),
    ]
