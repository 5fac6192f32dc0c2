"""GET /v1/predictions/{id}/stream: server-sent events rebuilt from the database."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import sqlalchemy as sa

from genyard.db.tables import prediction_output_deltas

from .support import DIAGNOSTIC, Api


def parse_sse(text: str) -> list[tuple[str, Any, str | None]]:
    """(event, decoded data, id) for each event in an SSE body."""
    events = []
    for block in text.strip().split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        if "event" in fields:
            events.append((fields["event"], orjson.loads(fields["data"]), fields.get("id")))
    return events


async def test_stream_reports_progress_logs_output_and_done(api: Api) -> None:
    # Steps 0.5 s apart: the worker flushes progress every 0.5 s, so at least one flush
    # falls between the first step and the end whatever its phase.
    job = await api.predict(
        DIAGNOSTIC, {"mode": "progress", "seconds": 1.5, "steps": 3, "payload": {"n": 7}}
    )
    r = await api.client.get(f"/v1/predictions/{job['id']}/stream")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(r.text)
    names = [e[0] for e in events]
    assert names[-2:] == ["output", "done"]
    assert events[-2][1] == {"n": 7}
    assert events[-1][1] == {"status": "succeeded"}
    logs = [e[1] for e in events if e[0] == "logs"]
    assert logs[:1] == ["diagnostic progress attempt=1"]
    assert "step 3/3" in logs and logs[-1] == "succeeded on attempt 1"
    progress = [e[1]["progress"] for e in events if e[0] == "status"]
    assert progress == sorted(progress) and progress[-1] == 100
    assert any(0 < p < 100 for p in progress), progress

    # Resuming after a log id replays only the lines after it.
    ids = [e[2] for e in events if e[0] == "logs" and e[2]]
    resumed = await api.client.get(
        f"/v1/predictions/{job['id']}/stream", headers={"Last-Event-ID": ids[-2]}
    )
    again = [e[1] for e in parse_sse(resumed.text) if e[0] == "logs"]
    assert again == ["succeeded on attempt 1"]


async def test_stream_of_a_failed_job_ends_with_its_error(api: Api) -> None:
    job = await api.predict(DIAGNOSTIC, {"mode": "fail", "message": "boom"})
    r = await api.client.get(f"/v1/predictions/{job['id']}/stream")
    events = parse_sse(r.text)
    assert events[-2] == ("error", {"code": "provider_error", "message": "boom"}, None)
    assert events[-1][1] == {"status": "failed"}


async def test_stream_of_another_accounts_job_is_404(api: Api) -> None:
    job = await api.predict(DIAGNOSTIC, {"mode": "echo", "payload": 1})
    other = await api.new_user("stream-stranger")
    r = await api.anon.get(f"/v1/predictions/{job['id']}/stream", headers=api.auth(other))
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


async def test_stream_sends_output_deltas_as_they_are_made_and_resumes_after_them(
    api: Api,
) -> None:
    words = "the quick brown fox jumps over the lazy dog"
    job = await api.predict(DIAGNOSTIC, {"mode": "stream", "prompt": words, "seconds": 1.0})
    events = parse_sse((await api.client.get(f"/v1/predictions/{job['id']}/stream")).text)
    deltas = [(data, event_id) for name, data, event_id in events if name == "delta"]
    assert "".join(d for d, _ in deltas) == words
    names = [name for name, _, _ in events]
    assert names.index("output") > max(i for i, n in enumerate(names) if n == "delta")
    assert events[-2][1] == {"text": words}
    # The pieces were stored while the job ran (0.11 s apart), not all at its end.
    # (This client buffers whole responses; tests/e2e reads a live stream.)
    async with api.services.db.read() as conn:
        stored = await conn.execute(
            sa.select(prediction_output_deltas.c.created_at).where(
                prediction_output_deltas.c.prediction_id == job["id"]
            )
        )
        times = sorted(row.created_at for row in stored)
    assert len(times) == len(deltas) and times[-1] - times[0] > 0.4

    # Resuming after the fifth delta replays only the ones after it.
    cursor = deltas[4][1]
    assert cursor is not None and "." in cursor
    resumed = await api.client.get(
        f"/v1/predictions/{job['id']}/stream", headers={"Last-Event-ID": cursor}
    )
    again = [data for name, data, _ in parse_sse(resumed.text) if name == "delta"]
    assert "".join(again) == "".join(d for d, _ in deltas[5:])


async def test_a_stream_open_while_the_job_runs_gets_every_delta_before_the_output(
    api: Api,
) -> None:
    # Pieces emitted up to the run's last instant: the ticker's flush and the end of the
    # job must not commit out of order, or a stream would see the end first and miss them.
    words = " ".join(f"w{i}" for i in range(300))

    async def one() -> None:
        job = await api.predict(DIAGNOSTIC, {"mode": "stream", "prompt": words, "seconds": 0.3})
        events = parse_sse((await api.client.get(f"/v1/predictions/{job['id']}/stream")).text)
        assert "".join(d for name, d, _ in events if name == "delta") == words
        assert events[-2][1] == {"text": words}

    await asyncio.gather(*(one() for _ in range(30)))
