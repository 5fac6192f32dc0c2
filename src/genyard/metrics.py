"""Prometheus metrics, one registry per app (nothing global, so tests can build many)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

RUN_TIME_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "genyard_http_requests",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.jobs = Counter(
            "genyard_jobs",
            "Jobs that reached a status, by model and status.",
            ["model", "status"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "genyard_queue_depth",
            "Pending jobs by model (read from the database at scrape time).",
            ["model"],
            registry=self.registry,
        )
        self.run_seconds = Histogram(
            "genyard_job_run_seconds",
            "Time from a job's start to its end, by model.",
            ["model"],
            buckets=RUN_TIME_BUCKETS,
            registry=self.registry,
        )
        self.workers_busy = Gauge(
            "genyard_worker_slots_busy",
            "Worker slots running a job, by provider.",
            ["provider"],
            registry=self.registry,
        )
        self.webhook_attempts = Counter(
            "genyard_webhook_attempts",
            "Webhook delivery attempts by outcome (delivered, retry, failed).",
            ["outcome"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
