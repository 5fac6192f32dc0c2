"""Live streams when the API and the worker are separate processes (PostgreSQL).

The worker's output deltas reach a client of the API process as they are made: the
worker commits them and rings PostgreSQL's NOTIFY; the API hears it (LISTEN) and reads
them back from the database. A client that reconnects with ``Last-Event-ID`` gets
exactly what it had not seen, and a client that goes away does not stop the job.
"""

from __future__ import annotations

import itertools
import time

import httpx
import orjson
import pytest
from e2e_support import Cluster, submit, wait_status

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
WORDS = "one two three four five six seven eight nine ten"


def _events(response: httpx.Response, stop_after_deltas: int | None = None) -> list[tuple]:
    """(arrival time, event, data, id) of each event, until the stream ends (or after
    ``stop_after_deltas`` deltas, when the caller hangs up)."""
    events: list[tuple] = []
    event, event_id = None, None
    deltas = 0
    for line in response.iter_lines():
        if line.startswith("id: "):
            event_id = line[len("id: ") :]
        elif line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: "):
            events.append((time.monotonic(), event, orjson.loads(line[6:]), event_id))
            deltas += event == "delta"
            event, event_id = None, None
            if stop_after_deltas is not None and deltas == stop_after_deltas:
                break
    return events


@pytest.fixture
def split(cluster: Cluster) -> Cluster:
    cluster.start_api()
    cluster.start_worker("worker")
    return cluster


def test_deltas_cross_processes_as_they_are_made(split: Cluster) -> None:
    with split.client() as client:
        job = submit(client, {"mode": "stream", "prompt": WORDS, "seconds": 2.0})
        with client.stream("GET", f"/v1/predictions/{job['id']}/stream") as response:
            events = _events(response)
    deltas = [(at, data) for at, event, data, _ in events if event == "delta"]
    assert "".join(piece for _, piece in deltas) == WORDS
    assert [e[1] for e in events][-2:] == ["output", "done"]
    # Ten pieces 0.2 s apart. The stream re-reads the job every second regardless of
    # bells, so without the cross-process doorbell they would come in two or three
    # bursts; with it, most come on their own.
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(deltas)]
    assert sum(gap > 0.1 for gap in gaps) >= 6, gaps


def test_a_reconnect_misses_nothing_and_a_hang_up_does_not_stop_the_job(
    split: Cluster,
) -> None:
    with split.client() as client:
        job = submit(client, {"mode": "stream", "prompt": WORDS, "seconds": 2.0})
        url = f"/v1/predictions/{job['id']}/stream"
        with client.stream("GET", url) as response:
            first = _events(response, stop_after_deltas=3)  # then hang up mid-stream
        time.sleep(0.5)  # the job goes on without a reader
        last_id = [e[3] for e in first if e[1] == "delta"][-1]
        with client.stream("GET", url, headers={"Last-Event-ID": last_id}) as response:
            rest = _events(response)
        done = wait_status(client, job["id"], "succeeded", "failed", "canceled")
    pieces = [e[2] for e in first + rest if e[1] == "delta"]
    assert "".join(pieces) == WORDS  # each piece once, in order
    assert done["status"] == "succeeded"
    assert rest[-1][1] == "done" and rest[-1][2] == {"status": "succeeded"}
