"""A live stream over real HTTP: output deltas reach the client while the job runs."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import orjson
import pytest
from e2e_support import Server, submit

pytestmark = pytest.mark.e2e


def test_deltas_arrive_while_the_job_runs(make_server: Callable[..., Server]) -> None:
    server = make_server().start()
    words = "one two three four five six seven eight nine ten"
    with server.client(server.admin_key) as client:
        job = submit(client, {"mode": "stream", "prompt": words, "seconds": 2.0})
        arrivals: list[tuple[float, str]] = []
        with client.stream("GET", f"/v1/predictions/{job['id']}/stream") as response:
            event = None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    event = line[len("event: ") :]
                elif line.startswith("data: ") and event == "delta":
                    arrivals.append((time.monotonic(), orjson.loads(line[len("data: ") :])))
    assert "".join(piece for _, piece in arrivals) == words
    # Ten pieces 0.2 s apart: they come spread over the run, not in one burst at the end.
    assert arrivals[-1][0] - arrivals[0][0] > 1.0
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(arrivals)]
    assert max(gaps) < 1.0
