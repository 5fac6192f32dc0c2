"""The request middleware is where unexpected errors end: 500 envelope, no trace."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI

from genyard.api.middleware import RequestContextMiddleware
from genyard.metrics import Metrics


def _app(metrics: Metrics) -> FastAPI:
    app = FastAPI()

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals: /etc/passwd line 42")

    @app.post("/echo")
    async def echo() -> dict[str, str]:
        return {"ok": "yes"}

    app.add_middleware(RequestContextMiddleware, metrics=metrics, max_body_bytes=2048)
    return app


async def test_unexpected_error_is_a_500_envelope_without_internals(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics()
    transport = httpx.ASGITransport(app=_app(metrics), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        with caplog.at_level(logging.ERROR):
            r = await client.get("/boom", headers={"X-Request-Id": "trace-me-1"})
    assert r.status_code == 500
    assert r.headers["x-request-id"] == "trace-me-1"
    body = r.json()
    assert body["error"]["code"] == "internal_error"
    assert "secret internals" not in r.text and "Traceback" not in r.text
    assert any("unhandled error" in rec.getMessage() for rec in caplog.records)
    text = metrics.render().decode()
    assert 'genyard_http_requests_total{method="GET",route="/boom",status="500"} 1.0' in text


async def test_body_over_the_cap_is_refused_before_the_app_reads_it() -> None:
    transport = httpx.ASGITransport(app=_app(Metrics()))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.post("/echo", content=b"x" * 4096)
        ok = await client.post("/echo", content=b"x" * 100)
    assert r.status_code == 413
    assert r.json()["error"] == {
        "code": "payload_too_large",
        "message": "request body exceeds 2048 bytes",
        "details": {"limit": 2048},
    }
    assert r.headers["x-request-id"].startswith("req_")
    assert ok.status_code == 200


async def test_unsafe_request_ids_are_replaced() -> None:
    transport = httpx.ASGITransport(app=_app(Metrics()))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.post("/echo", headers={"X-Request-Id": "bad id\twith spaces"})
    assert r.headers["x-request-id"].startswith("req_")
