"""Cancel in every state against a real server, and predictions stay within their account."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from e2e_support import (
    E5,
    FULL_KEY,
    Server,
    get,
    long_texts,
    submit,
    succeeded_lines,
    wait_status,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(module_server_factory: Callable[..., Server]) -> Server:
    # One core for engines: e5 runs one call at a time, so a second e5 job really waits
    # in the queue while a long one runs.
    return module_server_factory(GENYARD_WORKER_CONCURRENCY="1")


@pytest.fixture
def admin(server: Server) -> Iterator[httpx.Client]:
    with server.client(server.admin_key) as http:
        yield http


def assert_canceled(response: httpx.Response) -> dict[str, object]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "canceled"
    assert body["error"]["code"] == "canceled"
    assert body["completed_at"] is not None
    assert body["message"] == "Prediction canceled successfully"
    return body


def test_cancel_pending_job_never_runs(admin: httpx.Client) -> None:
    blocker = submit(admin, {"text": long_texts(30)}, model=E5)
    wait_status(admin, blocker["id"], "processing")
    queued = submit(admin, {"text": "waiting behind the long one"}, model=E5)
    time.sleep(0.5)
    queued = get(admin, queued["id"])
    assert queued["status"] == "pending", queued
    assert queued["queue_position"] == 1
    assert get(admin, blocker["id"])["status"] == "processing"

    canceled = assert_canceled(admin.delete(f"/v1/predictions/{queued['id']}"))
    assert canceled["started_at"] is None

    # Free the engine: cancel the running job too; it stops between two texts.
    assert_canceled(admin.delete(f"/v1/predictions/{blocker['id']}"))
    after = submit(admin, {"text": "the engine is free again"}, model=E5, wait=60)
    assert after["status"] == "succeeded", after
    assert len(after["output"]["embeddings"][0]) == 384

    queued = get(admin, queued["id"])
    assert queued["status"] == "canceled"
    assert queued["started_at"] is None  # never claimed
    assert queued["output"] is None
    assert queued["logs"] == ""
    blocker_now = get(admin, blocker["id"])
    assert blocker_now["status"] == "canceled"
    assert blocker_now["output"] is None
    assert succeeded_lines(blocker_now) == []


def test_cancel_processing_job_stays_canceled(admin: httpx.Client) -> None:
    started = time.monotonic()
    job = submit(admin, {"mode": "sleep", "seconds": 3, "payload": "never"})
    wait_status(admin, job["id"], "processing")
    canceled = assert_canceled(admin.delete(f"/v1/predictions/{job['id']}"))
    assert canceled["started_at"] is not None

    # Past the moment the sleep would have ended: the late result was refused.
    time.sleep(max(0.0, 3.5 - (time.monotonic() - started)))
    later = get(admin, job["id"])
    assert later["status"] == "canceled"
    assert later["output"] is None
    assert later["completed_at"] == canceled["completed_at"]
    assert succeeded_lines(later) == []
    assert "failed on attempt" not in later["logs"]


def test_cancel_terminal_job_is_a_conflict(admin: httpx.Client) -> None:
    done = submit(admin, {"mode": "echo", "payload": 1}, wait=10)
    failed = submit(admin, {"mode": "fail", "message": "boom"}, wait=10)
    assert (done["status"], failed["status"]) == ("succeeded", "failed")
    assert failed["error"] == {"code": "provider_error", "message": "boom"}
    canceled = submit(admin, {"mode": "sleep", "seconds": 30})
    assert_canceled(admin.delete(f"/v1/predictions/{canceled['id']}"))

    for job, status in ((done, "succeeded"), (failed, "failed"), (canceled, "canceled")):
        response = admin.delete(f"/v1/predictions/{job['id']}")
        assert response.status_code == 409, response.text
        error = response.json()["error"]
        assert error["code"] == "conflict"
        assert error["details"] == {"status": status}
        assert get(admin, job["id"])["status"] == status
    assert get(admin, done["id"])["output"] == 1


def test_other_accounts_predictions_are_not_found(server: Server, admin: httpx.Client) -> None:
    server.cli("users", "create", "bob")
    bob_key = server.cli("keys", "create", "--user", "bob").stdout.strip().splitlines()[-1]
    assert FULL_KEY.fullmatch(bob_key)

    running = submit(admin, {"mode": "sleep", "seconds": 30, "payload": "a"})
    finished = submit(admin, {"mode": "echo", "payload": "mine"}, wait=10)
    with server.client(bob_key) as bob:
        mine = submit(bob, {"mode": "echo", "payload": "bob's"}, wait=10)
        missing = bob.get("/v1/predictions/pred_doesnotexist000000000000")
        assert missing.status_code == 404
        for job in (running, finished):
            for response in (
                bob.get(f"/v1/predictions/{job['id']}"),
                bob.delete(f"/v1/predictions/{job['id']}"),
            ):
                assert response.status_code == 404, response.text
                error = response.json()["error"]
                assert error["code"] == "not_found"
                # Indistinguishable from an id that does not exist at all.
                assert error["message"] == missing.json()["error"]["message"].replace(
                    "pred_doesnotexist000000000000", job["id"]
                )
                assert "mine" not in response.text
        listed = bob.get("/v1/predictions").json()["data"]
        assert [p["id"] for p in listed] == [mine["id"]]

        # And the other way round.
        assert admin.get(f"/v1/predictions/{mine['id']}").status_code == 404
        assert admin.delete(f"/v1/predictions/{mine['id']}").status_code == 404
        assert get(bob, mine["id"])["status"] == "succeeded"

    # Bob's DELETE did not touch the admin's running job.
    assert get(admin, running["id"])["status"] == "processing"
    assert get(admin, finished["id"])["output"] == "mine"
    assert_canceled(admin.delete(f"/v1/predictions/{running['id']}"))
