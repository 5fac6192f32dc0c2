"""Webhooks delivered to real receivers on loopback: events, signatures checked by an
independent Standard Webhooks implementation, retries on the schedule, the delivery
log, redelivery, secret rotation, HTTPS with a private CA, and refusals at delivery."""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
import trustme
from standardwebhooks import Webhook, WebhookVerificationError

from genyard.domain.accounts import Scope
from receivers import Answer, Receiver, Request, receiver_on, tls_context

from .support import DIAGNOSTIC, Api, ApiFactory

LOOPBACK = "127.0.0.1/32"
ALL_EVENTS = ["start", "output", "logs", "completed", "failed"]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiver_on("127.0.0.1") as r:
        yield r


@pytest.fixture
async def hook_api(make_api: ApiFactory) -> AsyncIterator[Api]:
    """An app whose URL guard lets loopback through, with a quick retry schedule."""
    async with make_api(outbound_allowlist=LOOPBACK, webhook_retry_delays="0.2,0.4") as api:
        yield api


async def secret(api: Api, key: str | None = None) -> str:
    r = await api.client.get("/v1/webhooks/secret", headers=api.auth(key) if key else {})
    assert r.status_code == 200, r.text
    value: str = r.json()["key"]
    return value


def verify(secret_key: str, request: Request) -> Any:
    """Check the signature with the standardwebhooks package; return the parsed body."""
    return Webhook(secret_key).verify(request.body, request.headers)


async def deliveries(api: Api, job_id: str) -> list[dict[str, Any]]:
    r = await api.client.get(f"/v1/predictions/{job_id}/webhooks")
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


async def settled(api: Api, job_id: str, count: int, timeout: float = 15) -> list[dict[str, Any]]:
    """The job's deliveries once ``count`` of them are no longer pending."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = await deliveries(api, job_id)
        if len([d for d in found if d["status"] != "pending"]) >= count:
            return found
        assert loop.time() < deadline, f"deliveries never settled: {found}"
        await asyncio.sleep(0.05)


async def test_completed_event_is_signed_and_carries_the_prediction(
    hook_api: Api, receiver: Receiver
) -> None:
    job = await hook_api.predict(
        DIAGNOSTIC, {"mode": "echo", "payload": {"n": 7}}, webhook=receiver.url()
    )
    [request] = await receiver.wait_for(1)
    assert request.method == "POST" and request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"].startswith("msg_")
    assert request.headers["webhook-signature"].startswith("v1,")
    body = verify(await secret(hook_api), request)
    current = await hook_api.get(job["id"])
    assert body == current  # the prediction exactly as GET returns it
    assert body["status"] == "succeeded" and body["output"] == {"n": 7}
    [delivery] = await settled(hook_api, job["id"], 1)
    assert delivery["id"] == request.headers["webhook-id"]
    assert delivery["event"] == "completed" and delivery["status"] == "delivered"
    assert [a["status_code"] for a in delivery["attempts"]] == [200]
    # one byte changed, or another account's secret: the independent check refuses it
    with pytest.raises(WebhookVerificationError):
        Webhook(await secret(hook_api)).verify(request.body + b" ", request.headers)
    other = await secret(hook_api, await hook_api.new_user("other"))
    with pytest.raises(WebhookVerificationError):
        verify(other, request)


async def test_every_event_in_order_when_asked_for(hook_api: Api, receiver: Receiver) -> None:
    job = await hook_api.predict(
        DIAGNOSTIC,
        {"mode": "progress", "seconds": 1.2, "steps": 3, "payload": "done"},
        webhook=receiver.url(),
        webhook_events=ALL_EVENTS,
    )
    await hook_api.wait_until(job["id"])
    found = await settled(hook_api, job["id"], 4)
    events = [d["event"] for d in found]
    assert events[0] == "start"
    assert events[-2:] == ["output", "completed"]
    assert "logs" in events[1:-2]
    # logs events are throttled: at most one per webhook_logs_interval, not one per line
    assert events.count("logs") <= 1.2 / hook_api.settings.webhook_logs_interval + 1
    requests = await receiver.wait_for(len(found))
    key = await secret(hook_api)
    bodies = {r.headers["webhook-id"]: verify(key, r) for r in requests}
    by_event = {d["event"]: bodies[d["id"]] for d in found}
    assert by_event["start"]["status"] == "processing"
    assert by_event["completed"]["status"] == "succeeded"
    assert by_event["completed"]["output"] == "done"
    assert "step 1/3" in by_event["logs"]["logs"]


async def test_default_events_are_completed_and_failed(hook_api: Api, receiver: Receiver) -> None:
    ok = await hook_api.predict(
        DIAGNOSTIC, {"mode": "progress", "seconds": 0.3}, webhook=receiver.url()
    )
    bad = await hook_api.predict(
        DIAGNOSTIC, {"mode": "fail", "message": "boom"}, webhook=receiver.url()
    )
    await settled(hook_api, ok["id"], 1)
    await settled(hook_api, bad["id"], 1)
    assert [d["event"] for d in await deliveries(hook_api, ok["id"])] == ["completed"]
    [failed] = await deliveries(hook_api, bad["id"])
    assert failed["event"] == "failed"
    bodies = [orjson.loads(r.body) for r in await receiver.wait_for(2)]
    assert {(b["id"], b["status"]) for b in bodies} == {
        (ok["id"], "succeeded"),
        (bad["id"], "failed"),
    }


async def test_cancel_sends_a_failed_event(hook_api: Api, receiver: Receiver) -> None:
    job = await hook_api.predict(
        DIAGNOSTIC, {"mode": "sleep", "seconds": 30}, webhook=receiver.url()
    )
    await hook_api.wait_until(job["id"], lambda j: j["status"] == "processing")
    r = await hook_api.client.delete(f"/v1/predictions/{job['id']}")
    assert r.status_code == 200
    [request] = await receiver.wait_for(1)
    body = orjson.loads(request.body)
    assert body["status"] == "canceled" and body["error"]["code"] == "canceled"
    assert [d["event"] for d in await deliveries(hook_api, job["id"])] == ["failed"]


async def test_filtered_events_send_nothing_else(hook_api: Api, receiver: Receiver) -> None:
    job = await hook_api.predict(
        DIAGNOSTIC, {"mode": "echo"}, webhook=receiver.url(), webhook_events=["failed"]
    )
    await hook_api.wait_until(job["id"])
    await asyncio.sleep(0.5)
    assert receiver.requests == []
    assert await deliveries(hook_api, job["id"]) == []


async def test_retries_follow_the_default_schedule_then_fail(
    make_api: ApiFactory, receiver: Receiver
) -> None:
    receiver.answer = lambda request: Answer(500, body=b"down")
    async with make_api(outbound_allowlist=LOOPBACK) as api:
        assert api.settings.webhook_retry_delays == "1,2,4"
        job = await api.predict(DIAGNOSTIC, {"mode": "echo"}, webhook=receiver.url())
        requests = await receiver.wait_for(4, timeout=15)
        [delivery] = await settled(api, job["id"], 1)
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(requests)]
    for gap, delay in zip(gaps, (1, 2, 4), strict=True):
        assert delay - 0.05 <= gap < delay + 0.8, gaps
    assert len({r.headers["webhook-id"] for r in requests}) == 1  # one message, retried
    assert len({r.body for r in requests}) == 1
    assert delivery["status"] == "failed"
    assert [a["status_code"] for a in delivery["attempts"]] == [500] * 4
    assert delivery["attempts"][0]["error"] == "answered HTTP 500"
    await asyncio.sleep(1)
    assert len(receiver.requests) == 4  # nothing after the schedule ran out


async def test_a_slow_receiver_times_out_and_is_retried(
    make_api: ApiFactory, receiver: Receiver
) -> None:
    receiver.answer = lambda request: Answer(delay=3) if len(receiver.requests) == 1 else Answer()
    async with make_api(
        outbound_allowlist=LOOPBACK, webhook_timeout=0.5, webhook_retry_delays="0.5"
    ) as api:
        job = await api.predict(DIAGNOSTIC, {"mode": "echo"}, webhook=receiver.url())
        first, second = await receiver.wait_for(2)
        [delivery] = await settled(api, job["id"], 1)
    assert 0.9 <= second.at - first.at < 0.5 + 0.5 + 0.8
    assert delivery["status"] == "delivered"
    timed_out, delivered = delivery["attempts"]
    assert timed_out["status_code"] is None
    assert timed_out["error"] == "took longer than 0.5 s"
    assert 450 <= timed_out["duration_ms"] < 1500
    assert delivered["status_code"] == 200


async def test_redirects_are_not_followed(make_api: ApiFactory, receiver: Receiver) -> None:
    async with receiver_on("127.0.0.2") as decoy:
        receiver.answer = lambda request: Answer(307, {"Location": decoy.url()})
        async with make_api(outbound_allowlist=LOOPBACK, webhook_retry_delays="") as api:
            job = await api.predict(DIAGNOSTIC, {"mode": "echo"}, webhook=receiver.url())
            [delivery] = await settled(api, job["id"], 1)
        assert decoy.requests == []
    assert len(receiver.requests) == 1
    assert delivery["status"] == "failed"
    assert delivery["attempts"][0]["error"] == "answered HTTP 307; redirects are not followed"


async def test_a_name_resolving_to_a_private_address_is_refused_at_delivery(
    make_api: ApiFactory, receiver: Receiver
) -> None:
    async with make_api() as api:  # no allow-list: loopback is refused
        job = await api.predict(
            DIAGNOSTIC, {"mode": "echo"}, webhook=receiver.url(host="localhost")
        )
        [delivery] = await settled(api, job["id"], 1)
    assert receiver.requests == []
    assert delivery["status"] == "failed"
    [attempt] = delivery["attempts"]  # a refusal is final: no retries
    assert attempt["status_code"] is None
    assert attempt["error"].startswith("refused: ")
    assert "GENYARD_OUTBOUND_ALLOWLIST" in attempt["error"]


async def test_a_literal_private_webhook_is_refused_at_submit(api: Api) -> None:
    r = await api.client.post(
        "/v1/predictions",
        json={"model": DIAGNOSTIC, "input": {"mode": "echo"}, "webhook": "http://10.0.0.1/h"},
    )
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["details"]["errors"][0]["field"] == "webhook"
    assert "GENYARD_OUTBOUND_ALLOWLIST" in error["message"]


async def test_https_receiver_with_a_private_ca(make_api: ApiFactory, tmp_path: Path) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    async with receiver_on("127.0.0.1", tls_context(ca, "127.0.0.1")) as tls:
        async with make_api(outbound_allowlist=LOOPBACK, outbound_ca_file=ca_file) as api:
            job = await api.predict(DIAGNOSTIC, {"mode": "echo"}, webhook=tls.url())
            [request] = await tls.wait_for(1)
            assert verify(await secret(api), request)["id"] == job["id"]
        # without the CA file the same receiver is not trusted
        async with make_api(outbound_allowlist=LOOPBACK, webhook_retry_delays="") as api:
            job = await api.predict(DIAGNOSTIC, {"mode": "echo"}, webhook=tls.url())
            [delivery] = await settled(api, job["id"], 1)
            assert "CERTIFICATE_VERIFY_FAILED" in delivery["attempts"][0]["error"]


async def test_redelivery_sends_the_same_message_again(hook_api: Api, receiver: Receiver) -> None:
    job = await hook_api.predict(DIAGNOSTIC, {"mode": "echo"}, webhook=receiver.url())
    [first] = await receiver.wait_for(1)
    [delivery] = await settled(hook_api, job["id"], 1)
    path = f"/v1/predictions/{job['id']}/webhooks/{delivery['id']}/redeliver"
    r = await hook_api.client.post(path)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "pending"
    _, again = await receiver.wait_for(2)
    assert again.headers["webhook-id"] == first.headers["webhook-id"]
    assert again.body == first.body
    [delivery] = await settled(hook_api, job["id"], 1)
    assert len(delivery["attempts"]) == 2
    missing = await hook_api.client.post(f"/v1/predictions/{job['id']}/webhooks/msg_nope/redeliver")
    assert missing.status_code == 404
    other = await hook_api.new_user("stranger")
    r = await hook_api.client.get(
        f"/v1/predictions/{job['id']}/webhooks", headers=hook_api.auth(other)
    )
    assert r.status_code == 404
    r = await hook_api.client.post(path, headers=hook_api.auth(other))
    assert r.status_code == 404


async def test_redelivering_a_pending_delivery_is_a_conflict(
    make_api: ApiFactory, receiver: Receiver
) -> None:
    receiver.answer = lambda request: Answer(503)
    async with make_api(outbound_allowlist=LOOPBACK, webhook_retry_delays="30") as api:
        job = await api.predict(DIAGNOSTIC, {"mode": "echo"}, webhook=receiver.url())
        await receiver.wait_for(1)
        await asyncio.sleep(0.2)
        [delivery] = await deliveries(api, job["id"])
        assert delivery["status"] == "pending" and delivery["next_attempt_at"]
        r = await api.client.post(
            f"/v1/predictions/{job['id']}/webhooks/{delivery['id']}/redeliver"
        )
        assert r.status_code == 409
        assert r.json()["error"]["code"] == "conflict"


async def test_rotation_signs_with_both_secrets_for_a_while(
    hook_api: Api, receiver: Receiver
) -> None:
    old = await secret(hook_api)
    assert old.startswith("whsec_")
    assert await secret(hook_api) == old  # stable until rotated
    r = await hook_api.client.post("/v1/webhooks/secret/rotate")
    assert r.status_code == 200
    new = r.json()["key"]
    assert new.startswith("whsec_") and new != old
    assert r.json()["previous_key_valid_until"]
    assert await secret(hook_api) == new
    await hook_api.predict(DIAGNOSTIC, {"mode": "echo"}, webhook=receiver.url())
    [request] = await receiver.wait_for(1)
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    verify(new, request)
    verify(old, request)


async def test_the_secret_needs_the_write_scope(hook_api: Api) -> None:
    reader = await hook_api.new_user("reader", frozenset({Scope.READ, Scope.GENERATE}))
    r = await hook_api.client.get("/v1/webhooks/secret", headers=hook_api.auth(reader))
    assert r.status_code == 403
    r = await hook_api.client.post("/v1/webhooks/secret/rotate", headers=hook_api.auth(reader))
    assert r.status_code == 403


async def test_file_urls_in_a_webhook_body_are_signed_and_serve_the_bytes(
    hook_api: Api, receiver: Receiver
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    job = await hook_api.predict(
        DIAGNOSTIC, {"mode": "files", "input_images": [uri]}, webhook=receiver.url()
    )
    [request] = await receiver.wait_for(1)
    body = verify(await secret(hook_api), request)
    assert body["id"] == job["id"] and body["status"] == "succeeded"
    [output_url] = body["output"]
    [input_url] = body["input"]["input_images"]
    for url in (output_url, input_url):
        assert "signature=" in url
        parts = urlsplit(url)
        served = await hook_api.anon.get(f"{parts.path}?{parts.query}")
        assert served.status_code == 200, served.text
        assert served.content == png
