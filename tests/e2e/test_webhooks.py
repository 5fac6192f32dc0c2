"""Webhooks survive a crash: the outbox is in the database, so a delivery that was
still being retried when the server was killed -9 is delivered after the restart,
under the same ``webhook-id`` and with the same body."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from e2e_support import Server, wait_status

from receivers import Answer, ThreadedReceiver

pytestmark = pytest.mark.e2e


def test_a_pending_delivery_is_sent_after_kill_9_and_restart(
    make_server: Callable[..., Server], database: str
) -> None:
    server = make_server(
        GENYARD_OUTBOUND_ALLOWLIST="127.0.0.1/32", GENYARD_WEBHOOK_RETRY_DELAYS="3"
    ).start()
    receiver_thread = ThreadedReceiver()
    with receiver_thread as receiver:
        receiver.answer = lambda request: Answer(500) if len(receiver.requests) == 1 else Answer()
        with server.client(server.admin_key) as http:
            response = http.post(
                "/v1/predictions",
                json={"model": "genyard/diagnostic", "input": {"mode": "echo", "payload": 5},
                      "webhook": receiver.url()},
            )  # fmt: skip
            assert response.status_code == 201, response.text
            job_id = response.json()["id"]
            [first] = receiver_thread.wait_for(1)
            deadline = time.monotonic() + 10
            while server.db_rows("SELECT count(*) FROM webhook_attempts") != [(1,)]:
                assert time.monotonic() < deadline, "the 500 was never recorded"
                time.sleep(0.02)
            server.kill()  # the retry is due in 3 s: only the database remembers it
        assert len(receiver.requests) == 1
        server.start()
        first, second = receiver_thread.wait_for(2, timeout=20)
        with server.client(server.admin_key) as http:
            assert wait_status(http, job_id, "succeeded")["output"] == 5
            deliveries = http.get(f"/v1/predictions/{job_id}/webhooks").json()["data"]
    assert second.headers["webhook-id"] == first.headers["webhook-id"]
    assert second.body == first.body
    [delivery] = deliveries
    assert delivery["status"] == "delivered"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 200]
