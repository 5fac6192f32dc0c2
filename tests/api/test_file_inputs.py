"""File inputs and outputs on the real queue: data URIs, genyard's own file URLs, URLs
fetched from a real loopback server, output files in the blob store, and URLs signed
afresh at every rendering."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from genyard.queue.worker import WorkerPool
from receivers import file_server

from .support import DIAGNOSTIC, FAST, PICTURES, PICTURES_MAX_BYTES, Api, ApiFactory
from .test_files import PNG, assert_error, path_of

WAIT = {"Prefer": "wait=10"}
GIF = b"GIF89a" + bytes(range(40))
ALLOW = "GENYARD_OUTBOUND_ALLOWLIST"


def data_uri(data: bytes, content_type: str = "image/png") -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


def key_of(url: str) -> str:
    path = urlsplit(url).path
    assert path.startswith("/v1/files/"), url
    return path[len("/v1/files/") :]


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def stored_objects(api: Api) -> list[str]:
    objects = Path(api.settings.resolved_files_dir) / "objects"
    return sorted(p.relative_to(objects).as_posix() for p in objects.rglob("*") if p.is_file())


async def fetch(api: Api, url: str) -> httpx.Response:
    return await api.anon.get(path_of(url))


async def files_job(
    api: Api, images: list[str], *, wait: bool = True, **extra: Any
) -> dict[str, Any]:
    """A diagnostic ``files`` job (waited for unless ``wait=False``)."""
    headers = WAIT if wait else {}
    input = {"mode": "files", "input_images": images}
    return await api.predict(DIAGNOSTIC, input, headers=headers, **extra)


def field_errors(r: httpx.Response) -> dict[str, str]:
    return {e["field"]: e["message"] for e in r.json()["error"]["details"]["errors"]}


async def test_a_data_uri_goes_in_and_comes_back_out_as_the_same_bytes(api: Api) -> None:
    job = await files_job(api, [data_uri(PNG)])
    assert job["status"] == "succeeded", job
    assert job["usage"] == {"items": 1, "credits_held": 0.01, "credits_charged": 0.01}
    # the input shows a signed URL to the stored copy, under inputs/
    (input_url,) = job["input"]["input_images"]
    assert key_of(input_url).startswith("inputs/") and key_of(input_url).endswith("/file.png")
    assert set(query_of(input_url)) == {"expires", "signature"}
    # the output is a list of one signed URL to a new object with the same bytes
    (output_url,) = job["output"]
    assert key_of(output_url) != key_of(input_url)
    assert not key_of(output_url).startswith("inputs/")
    for url in (input_url, output_url):
        r = await fetch(api, url)
        assert r.status_code == 200, r.text
        assert r.content == PNG
        assert r.headers["content-type"] == "image/png"
    # stored, the job holds canonical URLs; unsigned they are refused (private files)
    stored = await api.services.predictions.get(job["id"], (await account(api)))
    canonical = f"{api.settings.resolved_public_url}/v1/files/{key_of(input_url)}"
    assert stored.input["input_images"] == [canonical]
    assert stored.output == [f"{api.settings.resolved_public_url}/v1/files/{key_of(output_url)}"]
    assert_error(await fetch(api, canonical), 401, "unauthorized")
    assert_error(await fetch(api, stored.output[0]), 401, "unauthorized")


async def account(api: Api) -> str:
    return (await api.client.get("/v1/account")).json()["id"]  # type: ignore[no-any-return]


async def test_output_folder_is_in_the_key_and_public_jobs_get_permanent_urls(api: Api) -> None:
    public = await files_job(api, [data_uri(PNG)], is_public=True, output_folder="renders/2026")
    assert public["status"] == "succeeded", public
    (url,) = public["output"]
    key = key_of(url)
    assert key.startswith("renders/2026/") and key.endswith("/file.png"), key
    assert url == f"{api.settings.resolved_public_url}/v1/files/{key}"  # no signature
    r = await fetch(api, url)
    assert (r.status_code, r.content) == (200, PNG)
    assert r.headers["cache-control"].startswith("public")
    # the job's inputs stay private, whatever is_public says
    (input_url,) = public["input"]["input_images"]
    assert "signature" in query_of(input_url)
    assert_error(await fetch(api, input_url.split("?")[0]), 401, "unauthorized")

    private = await files_job(api, [data_uri(GIF, "image/gif")], output_folder="renders/2026")
    (url,) = private["output"]
    assert key_of(url).startswith("renders/2026/") and key_of(url).endswith("/file.gif")
    assert set(query_of(url)) == {"expires", "signature"}
    assert_error(await fetch(api, url.split("?")[0]), 401, "unauthorized")
    r = await fetch(api, url)
    assert (r.status_code, r.content, r.headers["content-type"]) == (200, GIF, "image/gif")


async def test_every_get_signs_the_urls_afresh(api: Api) -> None:
    job = await files_job(api, [data_uri(PNG)])
    first = await api.get(job["id"])
    await asyncio.sleep(1.1)
    second = await api.get(job["id"])
    for field in ("input", "output"):
        a = first["input"]["input_images"][0] if field == "input" else first["output"][0]
        b = second["input"]["input_images"][0] if field == "input" else second["output"][0]
        assert key_of(a) == key_of(b)
        assert int(query_of(b)["expires"][0]) > int(query_of(a)["expires"][0])
        assert query_of(a)["signature"] != query_of(b)["signature"]
        for url in (a, b):
            r = await fetch(api, url)
            assert (r.status_code, r.content) == (200, PNG)
    # the list renders them signed too
    listed = (await api.client.get("/v1/predictions?limit=1")).json()["data"][0]
    assert listed["id"] == job["id"]
    assert (await fetch(api, listed["output"][0])).content == PNG


async def test_an_own_signed_url_is_a_valid_input(api: Api) -> None:
    made = await files_job(api, [data_uri(PNG)])
    signed = made["output"][0]
    job = await files_job(api, [signed])
    assert job["status"] == "succeeded", job
    stored = await api.services.predictions.get(job["id"], await account(api))
    assert stored.input["input_images"] == [signed.split("?")[0]]  # kept canonical
    assert (await fetch(api, job["output"][0])).content == PNG
    # a public object needs no signature
    public = await files_job(api, [data_uri(GIF, "image/gif")], is_public=True)
    job = await files_job(api, [public["output"][0]])
    assert job["status"] == "succeeded", job
    assert (await fetch(api, job["output"][0])).content == GIF


async def test_tampered_expired_unsigned_and_missing_own_urls_are_refused(api: Api) -> None:
    made = await files_job(api, [data_uri(PNG)])
    signed = made["output"][0]
    key = key_of(signed)
    sig = query_of(signed)["signature"][0]
    flipped = signed.replace(sig, ("0" if sig[0] != "0" else "1") + sig[1:])
    links = api.services.files.links
    missing = links.url(key.rsplit("/", 2)[0] + "/aaaaaaaaaaaaaaaaaaaa/gone.png")
    cases = {
        flipped: "signature does not match",
        links.url(key, expires_in=-5): "expired",
        signed.split("?")[0]: "needs its signed URL",
        signed + "&download=1": "only the query parameters",
        missing: "no longer exists",
    }
    before = stored_objects(api)
    for url, reason in cases.items():
        r = await api.client.post(
            "/v1/predictions",
            json={"model": DIAGNOSTIC, "input": {"mode": "files", "input_images": [PNG_URI, url]}},
        )
        assert_error(r, 400, "invalid_request")
        errors = field_errors(r)
        assert list(errors) == ["input.input_images[1]"], r.text
        assert reason in errors["input.input_images[1]"], (url, r.text)
    assert stored_objects(api) == before  # nothing stored for a refused submit


PNG_URI = data_uri(PNG)


async def test_file_values_that_are_not_files_are_named(api: Api) -> None:
    r = await api.client.post(
        "/v1/predictions",
        json={
            "model": PICTURES,
            "input": {
                "mask": data_uri(PNG[:32], "image/jpeg"),
                "input_images": [
                    "http://10.0.0.1/a.png",
                    "ftp://example.com/a.png",
                    "just text",
                ],
            },
        },
    )
    assert_error(r, 400, "invalid_request")
    errors = field_errors(r)
    assert set(errors) == {
        "input.mask",
        "input.input_images[0]",
        "input.input_images[1]",
        "input.input_images[2]",
    }
    assert "image/jpeg" in errors["input.mask"] and "image/png" in errors["input.mask"]
    assert ALLOW in errors["input.input_images[0]"]
    assert "10.0.0.1 is a private address" in errors["input.input_images[0]"]
    for name in ("input.input_images[1]", "input.input_images[2]"):
        assert errors[name] == "must be an http(s) URL, a data URI or an uploaded file"
    assert ALLOW in r.json()["error"]["message"]
    # sizes and malformed data URIs
    r = await api.client.post(
        "/v1/predictions",
        json={
            "model": PICTURES,
            "input": {
                "input_images": [
                    data_uri(b"x" * PICTURES_MAX_BYTES, "image/gif"),
                    data_uri(b"x" * (PICTURES_MAX_BYTES + 1), "image/gif"),
                    "data:image/png;base64,@@not base64@@",
                    "data:image/png;base64",
                ]
            },
        },
    )
    errors = field_errors(r)
    assert set(errors) == {
        "input.input_images",  # maxItems 3
        "input.input_images[1]",
        "input.input_images[2]",
        "input.input_images[3]",
    }
    assert str(PICTURES_MAX_BYTES) in errors["input.input_images[1]"]
    assert "base64" in errors["input.input_images[2]"]
    assert "comma" in errors["input.input_images[3]"]


async def test_files_stored_for_a_submit_that_fails_are_deleted(make_api: ApiFactory) -> None:
    async with make_api(workers=False, max_pending_per_account=1) as api:
        await api.predict(DIAGNOSTIC, {"mode": "echo"})
        assert stored_objects(api) == []
        r = await api.client.post(
            "/v1/predictions",
            json={"model": DIAGNOSTIC, "input": {"mode": "files", "input_images": [PNG_URI]}},
        )
        assert_error(r, 429, "rate_limit_exceeded")
        assert stored_objects(api) == []
    async with make_api(workers=False) as api:
        # stored first, then the input as stored is over the model's 2048 bytes: 413
        big = {"mode": "files", "input_images": [PNG_URI], "payload": "x" * 2100}
        r = await api.client.post("/v1/predictions", json={"model": FAST, "input": big})
        assert_error(r, 413, "payload_too_large")
        assert stored_objects(api) == []
        # the data URI itself does not count: the stored input holds a short URL
        small = {"mode": "files", "input_images": [data_uri(PNG * 7)]}
        assert len(str(small)) > 2048
        job = await api.predict(FAST, small)
        assert len(stored_objects(api)) == 1
        assert key_of(job["input"]["input_images"][0]).startswith("inputs/")


async def test_an_output_url_echoed_by_a_model_is_not_signed(api: Api) -> None:
    made = await files_job(api, [PNG_URI])
    canonical = made["output"][0].split("?")[0]
    other = await api.new_user("mallory")
    # another account's model run that merely repeats the URL gets no signature for it
    job = await api.predict(
        DIAGNOSTIC, {"mode": "echo", "payload": {"u": [canonical]}}, key=other, headers=WAIT
    )
    assert job["output"] == {"u": [canonical]}
    # a URL in an input field that is not a file field is shown as given; echoed into the
    # output of a job of the account the file was stored for, it is signed (its own file)
    job = await api.predict(DIAGNOSTIC, {"mode": "echo", "payload": canonical}, headers=WAIT)
    assert job["input"]["payload"] == canonical
    assert job["output"].startswith(canonical + "?expires=")


# -- URLs fetched at run time --------------------------------------------------------------


async def test_urls_are_fetched_through_the_guard_at_run_time(make_api: ApiFactory) -> None:
    small_png = PNG[:PICTURES_MAX_BYTES]
    files = {
        "/picture.png": ("image/png", PNG),
        "/small.png": ("image/png; charset=binary", small_png),
        "/big.png": ("image/png", PNG[: PICTURES_MAX_BYTES + 1]),
        "/page.html": ("text/html", b"<html>hello</html>"),
        "/photo.png": ("application/octet-stream", small_png),
        "/noheader.gif": (None, GIF[:PICTURES_MAX_BYTES]),
    }
    async with (
        file_server(files) as server,
        make_api(outbound_allowlist="127.0.0.1/32") as api,
    ):
        job = await files_job(api, [server.url("/picture.png")])
        assert job["status"] == "succeeded", job
        assert job["input"]["input_images"] == [server.url("/picture.png")]  # kept as given
        r = await fetch(api, job["output"][0])
        assert (r.status_code, r.content, r.headers["content-type"]) == (200, PNG, "image/png")
        assert key_of(job["output"][0]).endswith("/picture.png")

        ok = await api.predict(
            PICTURES,
            {
                "input_images": [
                    server.url(p) for p in ("/small.png", "/photo.png", "/noheader.gif")
                ]
            },
            headers=WAIT,
        )
        assert ok["status"] == "succeeded", ok
        got = [(await fetch(api, url)) for url in ok["output"]]
        assert [r.content for r in got] == [small_png, small_png, GIF[:PICTURES_MAX_BYTES]]
        # the type comes from the header, else from the name's extension
        assert [r.headers["content-type"] for r in got] == [
            "image/png; charset=binary",
            "image/png",
            "image/gif",
        ]

        for path, reason in (
            ("/big.png", f"the limit is {PICTURES_MAX_BYTES} bytes"),
            ("/page.html", "the file is text/html; this field accepts image/*"),
            ("/missing.png", "answered HTTP 404"),
        ):
            job = await api.predict(
                PICTURES, {"input_images": [server.url("/small.png"), server.url(path)]},
                headers=WAIT,
            )  # fmt: skip
            assert job["status"] == "failed", job
            assert job["error"]["code"] == "invalid_input"
            message = job["error"]["message"]
            assert message.startswith("input.input_images[1]: "), message
            assert server.url(path) in message
            assert reason in message, message
            assert "Traceback" not in message and 'File "' not in message
            assert job["logs"].splitlines()[-1] == "failed on attempt 1"
        assert [r.path for r in server.requests].count("/big.png") == 1


async def test_a_name_resolving_to_a_private_address_fails_at_run_time(api: Api) -> None:
    async with file_server({"/picture.png": ("image/png", PNG)}) as server:
        url = server.url("/picture.png", host="localhost")
        job = await files_job(api, [url])  # accepted at submit: names are not resolved then
        assert job["status"] == "failed", job
        assert job["error"]["code"] == "invalid_input"
        message = job["error"]["message"]
        assert message.startswith(f"input.input_images[0]: could not fetch {url}: ")
        assert ALLOW in message and "127.0.0.1" in message
        assert server.requests == []  # refused before any connection


@asynccontextmanager
async def started_workers(api: Api) -> AsyncIterator[list[int]]:
    """Workers for an app built without them; yields the sizes of their claims."""
    services = api.services
    workers = WorkerPool(
        api.settings, services.db, services.catalog, services.providers, services.bus,
        services.metrics, on_moved=services.on_moved, files=services.files,
    )  # fmt: skip
    claims: list[int] = []
    claim = workers.claim

    async def counting_claim(models: list[str], limit: int, caps: Any = None) -> Any:
        claimed = await claim(models, limit, caps)
        if claimed:
            claims.append(len(claimed))
        return claimed

    workers.claim = counting_claim  # type: ignore[method-assign]
    workers.start()
    try:
        yield claims
    finally:
        await workers.stop(1)


async def test_in_a_batch_a_job_whose_files_fail_ends_alone(make_api: ApiFactory) -> None:
    async with make_api(workers=False) as api:
        bad = await api.predict(
            DIAGNOSTIC, {"mode": "files", "input_images": ["http://localhost:9/x.png"]}
        )
        good = [await files_job(api, [PNG_URI], wait=False) for _ in range(2)]
        async with started_workers(api) as claims:
            ended = [await api.wait_until(j["id"]) for j in (bad, *good)]
        assert claims == [3]  # one claim, one batch of three
        assert ended[0]["status"] == "failed"
        assert ended[0]["error"]["code"] == "invalid_input"
        assert ended[0]["error"]["message"].startswith("input.input_images[0]: could not fetch")
        for job in ended[1:]:
            assert job["status"] == "succeeded", job
            assert (await fetch(api, job["output"][0])).content == PNG


async def test_a_stored_input_gone_before_the_run_fails_the_job(make_api: ApiFactory) -> None:
    async with make_api(workers=False) as api:
        job = await files_job(api, [PNG_URI], wait=False)
        assert await api.services.blobs.delete(key_of(job["input"]["input_images"][0]))
        async with started_workers(api):
            ended = await api.wait_until(job["id"])
        assert ended["status"] == "failed"
        assert ended["error"]["code"] == "invalid_input"
        assert ended["error"]["message"].startswith("input.input_images[0]: the stored file")
        assert ended["error"]["message"].endswith("no longer exists")


async def test_the_stream_signs_output_urls(api: Api) -> None:
    job = await files_job(api, [PNG_URI])
    async with api.client.stream("GET", f"/v1/predictions/{job['id']}/stream") as r:
        text = (await r.aread()).decode()
    output_line = text.split("event: output\ndata: ", 1)[1].split("\n", 1)[0]
    (url,) = json.loads(output_line)
    assert set(query_of(url)) == {"expires", "signature"}
    assert (await fetch(api, url)).content == PNG
