"""Graceful shutdown: SIGTERM lets running jobs finish or hands them back to the queue;
no job is lost or left in ``processing``."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest
from e2e_support import Server, get, submit, succeeded_lines, wait_status

pytestmark = pytest.mark.e2e
# uvicorn re-raises the SIGTERM it handled once shutdown is complete, so a clean stop
# reads as "killed by SIGTERM" (exit status 143 in a shell); an unclean one is anything else.
CLEAN_EXITS = (0, -signal.SIGTERM)


def rows_after_exit(server: Server, job_id: str) -> tuple[str, int]:
    ((status, leases),) = server.db_rows(
        "SELECT status, (SELECT count(*) FROM job_leases) FROM predictions WHERE id = ?", job_id
    )
    return status, leases


def test_sigterm_lets_a_running_job_finish(make_server: Callable[..., Server]) -> None:
    server = make_server().start()
    with server.client(server.admin_key) as http:
        job = submit(http, {"mode": "sleep", "seconds": 2, "payload": {"done": True}})
        wait_status(http, job["id"], "processing")
    assert server.proc is not None
    stopped_at = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    code = server.wait_exit(20)
    took = time.monotonic() - stopped_at
    assert code in CLEAN_EXITS, server.tail()
    assert took < 20
    assert "Application shutdown complete" in server.stderr()
    assert "Traceback" not in server.stderr()

    # Straight from the database the process left behind: nothing mid-run.
    status, leases = rows_after_exit(server, job["id"])
    assert status in ("succeeded", "pending")
    assert leases == 0

    server.start()
    with server.client(server.admin_key) as http:
        final = wait_status(http, job["id"], "succeeded", "failed", "canceled", timeout=20)
    assert final["status"] == "succeeded", final
    assert final["output"] == {"done": True}
    assert len(succeeded_lines(final)) == 1
    if status == "succeeded":  # it finished inside the grace period, before the exit
        assert took >= 0.5


def test_sigterm_hands_a_long_job_back_to_the_queue(
    make_server: Callable[..., Server], database: str
) -> None:
    """A job longer than the shutdown grace period (the default 10 s; 2 s in the
    PostgreSQL variant, which need not wait out the default twice more) goes back to
    pending, then runs from the start after the restart, without the interrupted run
    counting as an attempt."""
    env, seconds = ({}, 11) if database == "sqlite" else ({"GENYARD_SHUTDOWN_GRACE": "2"}, 4)
    server = make_server(**env).start()
    with server.client(server.admin_key) as http:
        job = submit(http, {"mode": "sleep", "seconds": seconds, "payload": "long"})
        wait_status(http, job["id"], "processing")
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    assert server.wait_exit(25) in CLEAN_EXITS, server.tail()
    assert f"job {job['id']} returned to the queue at shutdown" in server.stderr()
    status, leases = rows_after_exit(server, job["id"])
    assert (status, leases) == ("pending", 0)
    ((attempts,),) = server.db_rows("SELECT attempts FROM predictions WHERE id = ?", job["id"])
    assert attempts == 0

    server.start()
    with server.client(server.admin_key) as http:
        running = wait_status(http, job["id"], "processing", "succeeded", timeout=10)
        assert running["status"] == "processing"
        final = wait_status(http, job["id"], "succeeded", "failed", "canceled", timeout=30)
        assert final["status"] == "succeeded", final
        assert final["output"] == "long"
        assert succeeded_lines(final) == ["succeeded on attempt 1"]
        assert get(http, job["id"])["status"] == "succeeded"
