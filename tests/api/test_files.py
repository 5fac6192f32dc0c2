"""/v1/files: signed, expiring URLs and permanent public URLs for stored objects."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import httpx

from genyard.storage import UrlSigner, make_key

from .support import Api

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def assert_error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)


async def stored(api: Api, *, public: bool = False, content_type: str = "image/png") -> str:
    key = make_key("tests", "picture.png")
    await api.services.blobs.put(key, PNG, content_type, public=public)
    return key


async def test_signed_url_serves_the_exact_bytes_without_an_api_key(api: Api) -> None:
    key = await stored(api)
    url = api.services.files.links.url(key)
    assert url.startswith(api.settings.resolved_public_url + f"/v1/files/{key}?expires=")
    r = await api.anon.get(path_of(url))
    assert r.status_code == 200, r.text
    assert r.content == PNG
    assert r.headers["content-type"] == "image/png"
    assert r.headers["cache-control"].startswith("private")
    assert r.headers["x-content-type-options"] == "nosniff"
    expires = int(parse_qs(urlsplit(url).query)["expires"][0])
    assert abs(expires - (time.time() + api.settings.signed_url_seconds)) < 60


async def test_stored_content_type_is_served_as_is(api: Api) -> None:
    key = await stored(api, content_type="text/plain; charset=latin-1")
    r = await api.anon.get(path_of(api.services.files.links.url(key)))
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; charset=latin-1"


async def test_missing_signature_is_401(api: Api) -> None:
    key = await stored(api)
    assert_error(await api.anon.get(f"/v1/files/{key}"), 401, "unauthorized")
    assert_error(await api.anon.get(f"/v1/files/{key}?expires=9999999999"), 401, "unauthorized")
    assert_error(await api.anon.get(f"/v1/files/{key}?signature=ab"), 401, "unauthorized")
    # an API key does not stand in for the signature
    assert_error(await api.client.get(f"/v1/files/{key}"), 401, "unauthorized")


async def test_tampered_urls_are_403(api: Api) -> None:
    key = await stored(api)
    other = await stored(api)
    url = path_of(api.services.files.links.url(key))
    path, query = url.split("?")
    params = parse_qs(query)
    expires, sig = params["expires"][0], params["signature"][0]
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    for bad in [
        f"{path}?expires={int(expires) + 1}&signature={sig}",
        f"{path}?expires={expires}&signature={flipped}",
        f"{path}?expires={expires}&signature={sig[:-2]}",
        f"{path}?expires=later&signature={sig}",
        f"/v1/files/{other}?expires={expires}&signature={sig}",
    ]:
        assert_error(await api.anon.get(bad), 403, "forbidden")
    assert (await api.anon.get(url)).status_code == 200


async def test_expired_url_is_403(api: Api) -> None:
    key = await stored(api)
    past = int(time.time()) - 10
    sig = UrlSigner(api.services.secret_key).sign(key, past)
    r = await api.anon.get(f"/v1/files/{key}?expires={past}&signature={sig}")
    assert_error(r, 403, "forbidden")
    assert "expired" in r.json()["error"]["message"]
    expired = api.services.files.links.url(key, expires_in=-1)
    assert_error(await api.anon.get(path_of(expired)), 403, "forbidden")


async def test_public_url_serves_only_public_objects(api: Api) -> None:
    public_key = await stored(api, public=True)
    private_key = await stored(api)
    url = api.services.files.links.url(public_key, public=True)
    assert url == f"{api.settings.resolved_public_url}/v1/files/{public_key}"
    r = await api.anon.get(path_of(url))
    assert r.status_code == 200
    assert r.content == PNG
    assert r.headers["content-type"] == "image/png"
    assert r.headers["x-content-type-options"] == "nosniff"
    r = await api.anon.get(path_of(api.services.files.links.url(private_key, public=True)))
    assert_error(r, 401, "unauthorized")  # a private object needs its signed URL
    # the private one is still served by its signed URL
    assert (
        await api.anon.get(path_of(api.services.files.links.url(private_key)))
    ).status_code == 200


async def test_unknown_keys_are_404(api: Api) -> None:
    missing = make_key("tests", "missing.png")
    assert_error(
        await api.anon.get(path_of(api.services.files.links.url(missing))), 404, "not_found"
    )
    # without a signature, a missing object looks like a private one: nothing revealed
    assert_error(await api.anon.get(f"/v1/files/{missing}"), 401, "unauthorized")
    key = await stored(api, public=True)
    await api.services.blobs.delete(key)
    assert_error(await api.anon.get(f"/v1/files/{key}"), 401, "unauthorized")


async def test_traversal_keys_never_reach_the_disk(api: Api) -> None:
    secret_file = api.settings.data_dir / "admin-key"
    assert secret_file.exists()
    for path in [
        "/v1/files/..%2F..%2Fadmin-key",
        "/v1/files/%2e%2e/%2e%2e/admin-key",
        "/v1/files/objects/..%2F..%2F..%2Fadmin-key",
    ]:
        r = await api.anon.get(path)
        assert r.status_code in (401, 404), (path, r.text)
        assert secret_file.read_bytes() not in r.content
    # a traversal key never verifies, whatever the signature
    expires = int(time.time()) + 60
    sig = UrlSigner(api.services.secret_key).sign("a", expires)
    r = await api.anon.get(f"/v1/files/..%2F..%2Fadmin-key?expires={expires}&signature={sig}")
    assert r.status_code in (403, 404), r.text
