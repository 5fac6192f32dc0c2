"""services/file_links: the one way URLs of stored objects are made, read and signed."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from genyard.domain.catalog import Catalog, ModelEntry
from genyard.domain.files import file_fields
from genyard.domain.jobs import Job, JobStatus
from genyard.services.file_links import FileLinks, OwnUrl
from genyard.storage import InvalidKey, UrlSigner, make_key

BASE = "https://gen.example.com"
SECRET = "s3cret"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "image": {"type": "string", "format": "uri", "x-genyard-file": {}},
        "images": {
            "type": "array",
            "items": {"type": "string", "format": "uri", "x-genyard-file": {}},
        },
        "note": {"type": "string"},
    },
}


@pytest.fixture
def links() -> FileLinks:
    entry = ModelEntry("a/files", "image", "p", SCHEMA, files=file_fields(SCHEMA))
    return FileLinks(BASE + "/", SECRET, 600, Catalog([entry], {}))


def job(input: dict[str, Any], output: Any, *, public: bool = False) -> Job:
    return Job(
        id="pred_x",
        account_id="acct_a",
        user_id="user_a",
        model="a/files",
        input=input,
        status=JobStatus.SUCCEEDED,
        created_at=time.time(),
        output=output,
        is_public=public,
    )


def is_signed_for(url: str, key: str) -> bool:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if parts.path != f"/v1/files/{key}" or set(query) != {"expires", "signature"}:
        return False
    UrlSigner(SECRET).verify(key, query["expires"][0], query["signature"][0], now=time.time())
    return abs(int(query["expires"][0]) - (time.time() + 600)) < 5


def test_urls_are_permanent_for_public_objects_and_signed_for_the_rest(links: FileLinks) -> None:
    key = make_key("out", "a b.png")
    assert links.canonical(key) == f"{BASE}/v1/files/{key}"
    assert links.url(key, public=True) == links.canonical(key)
    assert is_signed_for(links.url(key), key)
    expires = parse_qs(urlsplit(links.url(key, expires_in=5)).query)["expires"][0]
    assert abs(int(expires) - (time.time() + 5)) < 2


def test_parse_reads_own_urls_only(links: FileLinks) -> None:
    key = make_key("out", "x.png")
    assert links.parse(links.canonical(key)) == OwnUrl(key, None, None)
    signed = links.parse(links.url(key))
    assert signed is not None and signed.key == key and signed.expires and signed.signature
    assert links.parse(links.canonical(key) + "?a=1&expires=2") == OwnUrl(key, "2", None, ("a",))
    assert links.parse(f"{BASE}/v1/files/out%2Fid%2Fx.png") == OwnUrl("out/id/x.png", None, None)
    for other in (
        f"http://gen.example.com/v1/files/{key}",  # another scheme is another server
        f"{BASE}/v1/predictions/pred_x",
        f"https://evil.example/?u={BASE}/v1/files/{key}",
        "data:,x",
    ):
        assert links.parse(other) is None, other
    with pytest.raises(InvalidKey):
        links.parse(f"{BASE}/v1/files/a/..%2F..%2Fsecret")


def test_present_signs_file_fields_and_the_accounts_own_outputs(links: FileLinks) -> None:
    own = make_key("out", "mine.png", links.owners.new_id("acct_a"))
    foreign = make_key("out", "theirs.png", links.owners.new_id("acct_b"))
    untagged = make_key("inputs", "in.png")
    external = "https://example.com/cat.png"
    shown_input, shown_output = links.present(
        job(
            {
                "image": links.canonical(untagged),
                "images": [external, links.canonical(foreign)],
                "note": links.canonical(untagged),
            },
            {"files": [links.canonical(own), links.canonical(foreign)], "n": 1},
        )
    )
    # file fields: every own URL is signed (submit checked the caller could read it)
    assert is_signed_for(shown_input["image"], untagged)
    assert shown_input["images"][0] == external
    assert is_signed_for(shown_input["images"][1], foreign)
    # other input fields are shown as given
    assert shown_input["note"] == links.canonical(untagged)
    # outputs: only keys stored for the job's account
    assert is_signed_for(shown_output["files"][0], own)
    assert shown_output["files"][1] == links.canonical(foreign)
    assert shown_output["n"] == 1


def test_public_jobs_keep_their_permanent_output_urls(links: FileLinks) -> None:
    own = make_key(None, "mine.png", links.owners.new_id("acct_a"))
    shown_input, shown_output = links.present(job({}, [links.canonical(own)], public=True))
    assert shown_output == [links.canonical(own)]
    assert shown_input == {}


def test_present_leaves_the_job_untouched_and_outputs_without_urls_as_they_are(
    links: FileLinks,
) -> None:
    own = make_key(None, "mine.png", links.owners.new_id("acct_a"))
    stored = job({"image": links.canonical(own)}, {"embeddings": [[0.5, 0.25]]})
    shown_input, shown_output = links.present(stored)
    assert stored.input == {"image": links.canonical(own)}
    assert shown_output is stored.output
    assert is_signed_for(shown_input["image"], own)
    unknown_model = job({"image": links.canonical(own)}, None)
    unknown_model.model = "gone/model"
    assert links.present(unknown_model) == ({"image": links.canonical(own)}, None)
