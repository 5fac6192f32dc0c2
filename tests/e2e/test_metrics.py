"""/metrics after known traffic on a fresh server: request counts by route template, job
counts by status, run-time histogram, queue depth."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from e2e_support import DIAGNOSTIC, Server, get, submit, wait_all_terminal, wait_status
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.e2e


def scrape(http: httpx.Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_routes_jobs_and_run_times(make_server: Callable[..., Server]) -> None:
    server = make_server().start()
    with server.client(server.admin_key) as http:
        echoes = [submit(http, {"mode": "echo", "payload": n}, wait=10) for n in range(5)]
        sleeper = submit(http, {"mode": "sleep", "seconds": 0.6, "payload": "zz"})
        failed = submit(http, {"mode": "fail", "message": "no"}, wait=10)
        canceled = submit(http, {"mode": "sleep", "seconds": 30})
        wait_status(http, canceled["id"], "processing")
        assert http.delete(f"/v1/predictions/{canceled['id']}").status_code == 200
        wait_all_terminal(http, [sleeper["id"]])
        for job in echoes:
            get(http, job["id"])
        ids = [j["id"] for j in (*echoes, sleeper, failed, canceled)]
        run_times = [get(http, i)["metrics"]["run_time"] for i in ids]
        assert http.get("/v1/predictions/pred_nope").status_code == 404
        assert http.get("/not/a/route").status_code == 404
        samples = scrape(http)

    requests = "genyard_http_requests_total"
    one = "/v1/predictions/{prediction_id}"
    assert value(samples, requests, route=one, method="GET", status="200") >= 5
    assert value(samples, requests, route=one, method="GET", status="404") == 1
    assert value(samples, requests, route=one, method="DELETE", status="200") == 1
    assert value(samples, requests, route="/v1/predictions", method="POST", status="201") == 8
    assert value(samples, requests, route="unmatched", method="GET", status="404") == 1
    routes = {dict(labels)["route"] for name, labels in samples if name == requests}
    assert all(r.startswith(("/v1/", "/healthz", "/metrics")) or r == "unmatched" for r in routes)

    jobs = "genyard_jobs_total"
    assert value(samples, jobs, model=DIAGNOSTIC, status="pending") == 8
    assert value(samples, jobs, model=DIAGNOSTIC, status="processing") == 8
    assert value(samples, jobs, model=DIAGNOSTIC, status="succeeded") == 6
    assert value(samples, jobs, model=DIAGNOSTIC, status="failed") == 1
    assert value(samples, jobs, model=DIAGNOSTIC, status="canceled") == 1

    hist = "genyard_job_run_seconds"
    assert value(samples, f"{hist}_count", model=DIAGNOSTIC) == 8
    # Each run in its bucket: the 0.6 s sleep above half a second, the echoes below.
    assert run_times[5] > 0.5
    assert max(run_times[:5]) < 0.25
    short = sum(t <= 0.5 for t in run_times)
    assert value(samples, f"{hist}_bucket", model=DIAGNOSTIC, le="0.5") == short
    assert value(samples, f"{hist}_bucket", model=DIAGNOSTIC, le="0.25") >= 5
    assert value(samples, f"{hist}_bucket", model=DIAGNOSTIC, le="+Inf") == 8
    total = value(samples, f"{hist}_sum", model=DIAGNOSTIC)
    assert total == pytest.approx(sum(run_times), abs=0.01)

    assert value(samples, "genyard_queue_depth", model=DIAGNOSTIC) == 0
    assert failed["status"] == "failed"
