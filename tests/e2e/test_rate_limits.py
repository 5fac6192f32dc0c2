"""Rate limits hold across API processes: two real `genyard api` processes on one
PostgreSQL share one real Redis (``GENYARD_REDIS_URL``), and requests that alternate
between them, one after another or all at once, never get more than the limit
through in a window.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from test_processes import Cluster

from postgres_server import PostgresServer, free_port
from redis_server import RedisServer

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
PER_MINUTE = 10
TIERS = f"free={PER_MINUTE}/1000/10000;basic=60/2000/20000;pro=120/5000/50000;enterprise=1/1/1"
ANONYMOUS = 6


class TwoApis:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.urls: list[str] = []

    def start(self, name: str) -> None:
        port = free_port()
        self.cluster.spawn(name, "api", GENYARD_PORT=str(port))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert self.cluster.procs[name].poll() is None, self.cluster.log(name)
            assert time.monotonic() < deadline, f"{name} never answered:\n{self.cluster.log(name)}"
            time.sleep(0.1)
        self.urls.append(url)

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "genyard", *args],
            cwd=self.cluster.root, env=self.cluster.env, capture_output=True, text=True,
            timeout=60, check=True,
        )  # fmt: skip
        return result.stdout

    def new_key(self, user: str) -> str:
        self.cli("users", "create", user, "--tier", "free")
        return self.cli("keys", "create", "--user", user).strip().splitlines()[-1]

    def get(self, i: int, path: str, key: str | None = None) -> httpx.Response:
        """Request ``i`` goes to API process ``i % 2``."""
        headers = {"X-API-Key": key} if key else {}
        return httpx.get(self.urls[i % 2] + path, headers=headers, timeout=30)


@pytest.fixture
def apis(
    postgres_server: PostgresServer, redis_server: RedisServer, tmp_path: Path
) -> Iterator[TwoApis]:
    name = postgres_server.create_database()
    cluster = Cluster(
        tmp_path,
        postgres_server.url(name),
        GENYARD_REDIS_URL=redis_server.url,
        GENYARD_RATE_LIMIT_TIERS=TIERS,
        GENYARD_RATE_LIMIT_ANONYMOUS=str(ANONYMOUS),
    )
    two = TwoApis(cluster)
    try:
        two.start("api1")  # bootstraps the admin
        two.start("api2")
        yield two
    finally:
        cluster.stop()
        postgres_server.drop_database(name)


def test_two_api_processes_share_one_limit(apis: TwoApis) -> None:
    key = apis.new_key("ana")
    started = time.monotonic()
    # One after another, alternating: the count is shared, so "remaining" steps down
    # through both processes and the 11th request (whichever serves it) is refused.
    responses = [apis.get(i, "/v1/models", key) for i in range(3 * PER_MINUTE)]
    statuses = [r.status_code for r in responses]
    assert statuses == [200] * PER_MINUTE + [429] * (2 * PER_MINUTE), statuses
    remaining = [int(r.headers["x-ratelimit-remaining"]) for r in responses[:PER_MINUTE]]
    assert remaining == list(range(PER_MINUTE - 1, -1, -1))
    refused = responses[PER_MINUTE]
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert refused.json()["error"]["details"]["window"] == "minute"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    resets = {int(r.headers["x-ratelimit-reset"]) for r in responses}
    assert max(resets) - min(resets) <= 2  # one window, seen alike by both (TTL seconds)

    # All at once, from 16 threads, alternating between the processes: still exactly
    # the limit gets through.
    other = apis.new_key("bo")
    with ThreadPoolExecutor(16) as pool:
        burst = list(pool.map(lambda i: apis.get(i, "/v1/models", other), range(60)))
    assert sorted(r.status_code for r in burst) == [200] * PER_MINUTE + [429] * 50
    assert {r.url.port for r in burst if r.status_code == 200} <= {
        httpx.URL(u).port for u in apis.urls
    }
    # Calls without a key share one per-IP count too.
    anon = [apis.get(i, "/v1/models").status_code for i in range(2 * ANONYMOUS)]
    assert anon == [401] * ANONYMOUS + [429] * ANONYMOUS
    # None of this crossed a window boundary (a window starts at its first request).
    assert time.monotonic() - started < 50
