"""POST /v1/predictions/upload: multipart parts, files stored like data URIs, its own
body limit, and the same 201 as POST /v1/predictions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from genyard.domain.accounts import Scope

from .support import DIAGNOSTIC, PICTURES, Api, ApiFactory
from .test_file_inputs import (
    GIF,
    PNG_URI,
    data_uri,
    fetch,
    field_errors,
    key_of,
    stored_objects,
)
from .test_files import PNG, assert_error, path_of

UPLOAD = "/v1/predictions/upload"
WAIT = {"Prefer": "wait=10"}
File = tuple[str, tuple[str, bytes, str]]


def image(name: str = "cat.png", data: bytes = PNG, content_type: str = "image/png") -> File:
    return ("file:input_images", (name, data, content_type))


async def upload(
    api: Api,
    data: dict[str, str],
    files: list[File],
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await api.client.post(UPLOAD, data=data, files=files, headers=headers or {})


async def created(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_uploaded_files_are_appended_to_the_input_and_run(api: Api) -> None:
    r = await upload(
        api,
        {"model": DIAGNOSTIC, "input": f'{{"mode": "files", "input_images": ["{PNG_URI}"]}}'},
        [image("first.gif", GIF, "image/gif"), image("../../my cat.PNG", PNG[:100])],
        headers=WAIT,
    )
    job = await created(r)
    assert r.headers["location"].endswith(f"/v1/predictions/{job['id']}")
    assert r.headers["preference-applied"] == "wait=10"
    assert job["status"] == "succeeded", job
    inputs = job["input"]["input_images"]
    assert len(inputs) == 3
    # the URL from input first, then the files in the order sent, names sanitised
    assert [key_of(u).rsplit("/", 1)[1] for u in inputs] == ["file.png", "first.gif", "my_cat.png"]
    assert all(key_of(u).startswith("inputs/") for u in inputs)
    outputs = [await fetch(api, url) for url in job["output"]]
    assert [o.content for o in outputs] == [PNG, GIF, PNG[:100]]
    assert [o.headers["content-type"] for o in outputs] == ["image/png", "image/gif", "image/png"]
    assert [key_of(u).rsplit("/", 1)[1] for u in job["output"]] == [
        "file.png",
        "first.gif",
        "my_cat.png",
    ]


async def test_the_type_comes_from_the_part_else_from_the_file_name(api: Api) -> None:
    r = await upload(
        api,
        {"model": PICTURES},
        [
            image("a.png", PNG[:50], "application/octet-stream"),
            image("b.gif", GIF[:40], "image/gif"),
            ("file:mask", ("mask.png", PNG[:60], "image/png")),
        ],
        headers=WAIT,
    )
    job = await created(r)
    assert job["status"] == "succeeded", job
    got = [await fetch(api, url) for url in job["output"]]
    assert [g.headers["content-type"] for g in got] == ["image/png", "image/gif"]
    mask = await fetch(api, job["input"]["mask"])
    assert (mask.content, mask.headers["content-type"]) == (PNG[:60], "image/png")


async def test_other_fields_come_as_parts(api: Api) -> None:
    r = await upload(
        api,
        {
            "model": DIAGNOSTIC,
            "input": '{"mode": "files"}',
            "is_public": "true",
            "output_folder": "uploads/today",
            "webhook_url": "https://example.com/hook",
            "webhook_events": "completed, failed,start",
        },
        [image()],
        headers=WAIT,
    )
    job = await created(r)
    assert job["is_public"] is True
    assert job["output_folder"] == "uploads/today"
    assert job["webhook"] == "https://example.com/hook"
    assert job["webhook_events"] == ["completed", "failed", "start"]
    (url,) = job["output"]
    assert key_of(url).startswith("uploads/today/") and "?" not in url  # public: permanent
    assert (await api.anon.get(path_of(url))).content == PNG
    r = await upload(
        api,
        {"model": DIAGNOSTIC, "webhook_events": '["completed"]', "is_public": "0"},
        [image()],
    )
    job = await created(r)
    assert (job["webhook_events"], job["is_public"]) == (["completed"], False)


async def test_bad_parts_are_each_named(api: Api) -> None:
    r = await upload(
        api,
        {"model": DIAGNOSTIC, "input": '{"mode": "files",', "colour": "red", "is_public": "maybe"},
        [image()],
    )
    assert_error(r, 400, "invalid_request")
    errors = field_errors(r)
    assert set(errors) == {"input", "colour", "is_public"}
    assert "not valid JSON" in errors["input"]
    r = await upload(api, {"model": DIAGNOSTIC, "input": "[1, 2]"}, [image()])
    assert field_errors(r) == {"input": "must be a JSON object"}
    r = await upload(api, {"input": "{}"}, [image()])
    assert set(field_errors(r)) == {"model"}
    r = await upload(api, {"model": DIAGNOSTIC, "webhook_events": "[1]"}, [image()])
    assert set(field_errors(r)) == {"webhook_events"}
    r = await upload(api, {"model": DIAGNOSTIC, "webhook_events": "finished"}, [image()])
    assert set(field_errors(r)) == {"webhook_events"}
    r = await upload(api, {"model": "nobody/nothing"}, [image()])
    assert set(field_errors(r)) == {"model"}


async def test_file_parts_must_name_file_fields(api: Api) -> None:
    r = await upload(
        api,
        {"model": DIAGNOSTIC},
        [
            ("file:prompt", ("a.txt", b"hi", "text/plain")),
            ("file:nope", ("b.txt", b"x", "text/plain")),
        ],
    )
    assert_error(r, 400, "invalid_request")
    errors = field_errors(r)
    assert set(errors) == {"file:prompt", "file:nope"}
    assert "'prompt' is not a file field of genyard/diagnostic" in errors["file:prompt"]
    assert "input_images" in errors["file:prompt"]  # names the fields that are
    assert "file:prompt" in r.json()["error"]["message"]
    # a single-file field takes one file, and not one in input as well
    two_masks = [("file:mask", (f"{n}.png", PNG[:10], "image/png")) for n in "ab"]
    r = await upload(api, {"model": PICTURES}, two_masks)
    assert field_errors(r) == {"file:mask": "takes one file; 2 were sent"}
    small = data_uri(PNG[:10])
    r = await upload(api, {"model": PICTURES, "input": f'{{"mask": "{small}"}}'}, two_masks[:1])
    assert field_errors(r) == {"file:mask": "input.mask is given too; send one of them"}
    # a text part where a file belongs
    r = await upload(api, {"model": DIAGNOSTIC, "file:input_images": "not a file"}, [image()])
    assert field_errors(r) == {"file:input_images": "must be a file (a part with a filename)"}
    # uploads are checked like data URIs: type and size
    r = await upload(
        api, {"model": PICTURES}, [("file:mask", ("m.gif", GIF[:10], "image/gif")), image(data=PNG)]
    )
    errors = field_errors(r)
    assert set(errors) == {"input.mask", "input.input_images[0]"}
    assert "this field accepts image/png" in errors["input.mask"]
    assert "at most 64" in errors["input.input_images[0]"]
    assert stored_objects(api) == []


async def test_upload_has_its_own_body_limit(make_api: ApiFactory) -> None:
    async with make_api(max_upload_bytes=4096, max_body_bytes=1024) as api:
        # larger than GENYARD_MAX_BODY_BYTES is fine here ...
        r = await upload(api, {"model": DIAGNOSTIC}, [image(data=PNG * 8)], headers=WAIT)
        job = await created(r)
        assert (await fetch(api, job["input"]["input_images"][0])).content == PNG * 8
        # ... larger than GENYARD_MAX_UPLOAD_BYTES is not
        r = await upload(api, {"model": DIAGNOSTIC}, [image(data=b"x" * 5000)])
        assert_error(r, 413, "payload_too_large")
        assert r.json()["error"]["details"] == {"limit": 4096}
        # nor streamed without a Content-Length
        boundary = "genyardtestboundary"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\n'
            f"{DIAGNOSTIC}\r\n--{boundary}\r\nContent-Disposition: form-data; "
            f'name="file:input_images"; filename="big.png"\r\nContent-Type: image/png\r\n\r\n'
        ).encode()

        async def chunks() -> AsyncIterator[bytes]:
            yield head
            for _ in range(6):
                yield b"x" * 1024
            yield f"\r\n--{boundary}--\r\n".encode()

        r = await api.client.post(
            UPLOAD,
            content=chunks(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert "content-length" not in r.request.headers
        assert_error(r, 413, "payload_too_large")
        assert r.json()["error"]["details"] == {"limit": 4096}
        # the JSON route keeps GENYARD_MAX_BODY_BYTES
        r = await api.client.post(
            "/v1/predictions", json={"model": DIAGNOSTIC, "input": {"payload": "x" * 2000}}
        )
        assert_error(r, 413, "payload_too_large")
        assert r.json()["error"]["details"] == {"limit": 1024}


async def test_idempotency_key_covers_the_files(api: Api) -> None:
    headers = {"Idempotency-Key": "upload-1"}
    first = await created(await upload(api, {"model": DIAGNOSTIC}, [image()], headers=headers))
    objects = stored_objects(api)
    r = await upload(api, {"model": DIAGNOSTIC}, [image()], headers=headers)
    again = await created(r)
    assert r.headers["idempotent-replayed"] == "true"
    assert again["id"] == first["id"]
    assert stored_objects(api) == objects  # the replay's copy was not kept
    r = await upload(api, {"model": DIAGNOSTIC}, [image(data=GIF)], headers=headers)
    assert_error(r, 409, "conflict")
    assert stored_objects(api) == objects


async def test_upload_needs_multipart_and_the_generate_scope(api: Api) -> None:
    r = await api.client.post(UPLOAD, json={"model": DIAGNOSTIC, "input": {}})
    assert_error(r, 415, "unsupported_media_type")
    reader = await api.new_user("reader", frozenset({Scope.READ}))
    r = await api.client.post(
        UPLOAD, data={"model": DIAGNOSTIC}, files=[image()], headers=Api.auth(reader)
    )
    assert_error(r, 403, "forbidden")
    r = await api.anon.post(UPLOAD, data={"model": DIAGNOSTIC}, files=[image()])
    assert_error(r, 401, "unauthorized")
