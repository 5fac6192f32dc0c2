"""Blob storage: key rules, file name sanitising, the local store and signed URLs."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from genyard.storage import (
    BlobNotFound,
    BlobStore,
    InvalidKey,
    InvalidSignature,
    LocalBlobStore,
    OwnerTags,
    StoredObject,
    UrlSigner,
    make_key,
    sanitize_filename,
    validate_key,
)
from genyard.storage.keys import MAX_FILENAME_LENGTH, MAX_FOLDER_LENGTH, InvalidContentType
from genyard.storage.sweeper import FileSweeper

# -- keys ------------------------------------------------------------------------------


def test_make_key_is_folder_random_id_and_safe_name() -> None:
    key = make_key("outputs/2026", "photo.png")
    assert re.fullmatch(r"outputs/2026/[a-z0-9]{20}/photo\.png", key), key
    assert re.fullmatch(r"[a-z0-9]{20}/photo\.png", make_key(None, "photo.png"))


def test_make_key_never_collides() -> None:
    assert len({make_key("f", "same.txt") for _ in range(200)}) == 200


def test_folder_of_256_characters_is_allowed_and_257_is_not() -> None:
    folder = "a" * MAX_FOLDER_LENGTH
    assert MAX_FOLDER_LENGTH == 256
    assert make_key(folder, "x.txt").startswith(folder + "/")
    with pytest.raises(InvalidKey, match="at most 256"):
        make_key(folder + "a", "x.txt")
    segments = "/".join(["ab"] * 85) + "/a"  # 256 with slashes
    assert len(segments) == 256
    make_key(segments, "x")
    with pytest.raises(InvalidKey):
        make_key(segments + "b", "x")


@pytest.mark.parametrize(
    "folder",
    [
        "..",
        "../etc",
        "a/..",
        "a/../b",
        "a/b/../../..",
        ".",
        "./a",
        "a/./b",
        "/etc",
        "/",
        "//server/share",
        "a\\b",
        "..\\..\\windows",
        "C:\\Windows",
        "a\x00b",
        "a\nb",
        "a\rb",
        "a\tb",
        "a\x1fb",
        "a\x7fb",
        "a//b",
        "a/",
        "/a",
        "",
    ],
)
def test_bad_folders_are_refused(folder: str) -> None:
    with pytest.raises(InvalidKey):
        make_key(folder, "x.txt")


@pytest.mark.parametrize(
    "key",
    ["..", "../x", "a/..", "a/../b", "/etc/passwd", "a\\b", "a\x00", "a//b", "a/", "", "."],
)
def test_bad_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidKey):
        validate_key(key)


def test_invalid_key_is_a_value_error_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match=r"'\.' or '\.\.' segments"):
        validate_key("a/../b")
    with pytest.raises(InvalidKey, match="absolute"):
        validate_key("/etc")
    with pytest.raises(InvalidKey, match="backslash"):
        validate_key("a\\b")
    with pytest.raises(InvalidKey, match="control"):
        validate_key("a\x00b")
    with pytest.raises(InvalidKey, match="empty segments"):
        validate_key("a//b")


def test_dotted_names_that_are_not_dot_segments_are_fine() -> None:
    assert validate_key("a/...b/c..d/.e") == "a/...b/c..d/.e"


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\cmd.exe", "cmd.exe"),
        ("/abs/path/report.PDF", "report.pdf"),
        ("my photo (1).jpeg", "my_photo_1.jpeg"),
        ("résumé.pdf", "resume.pdf"),
        ("数据.csv", "file.csv"),
        ("😀", "file"),
        ("", "file"),
        (".", "file"),
        ("..", "file"),
        ("...", "file"),
        (".bashrc", "bashrc"),
        ("a\x00b.txt", "a_b.txt"),
        ("archive.tar.gz", "archive.tar.gz"),
        ("name.", "name"),
        ("x.<script>", "x.script"),
    ],
)
def test_filenames_are_sanitised(raw: str, safe: str) -> None:
    assert sanitize_filename(raw) == safe


def test_long_filenames_are_cut_keeping_the_extension() -> None:
    name = sanitize_filename("x" * 1000 + ".png")
    assert len(name) == MAX_FILENAME_LENGTH
    assert name.endswith(".png")
    assert len(sanitize_filename("y" * 1000)) == MAX_FILENAME_LENGTH
    assert len(sanitize_filename("z." + "e" * 100)) <= MAX_FILENAME_LENGTH


def test_sanitised_names_make_valid_keys() -> None:
    for raw in ["../../etc/passwd", "", "..", "a/b/c", "\x00", "ok.txt"]:
        key = make_key(None, raw)
        assert validate_key(key) == key
        assert key.rsplit("/", 1)[1] not in ("", ".", "..")


# -- the local store -------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "files")


async def test_put_get_exists_delete_round_trip(store: LocalBlobStore) -> None:
    assert isinstance(store, BlobStore)
    key = make_key("outputs", "hello.txt")
    assert not await store.exists(key)
    stored = await store.put(key, b"hello, world", "text/plain; charset=utf-8")
    assert stored == StoredObject(key, 12, "text/plain; charset=utf-8", public=False)
    assert await store.exists(key)
    data, meta = await store.get(key)
    assert data == b"hello, world"
    assert meta == stored
    assert await store.delete(key) is True
    assert not await store.exists(key)
    assert await store.delete(key) is False
    with pytest.raises(BlobNotFound):
        await store.get(key)


async def test_put_overwrites_atomically_and_leaves_no_temp_files(store: LocalBlobStore) -> None:
    key = make_key(None, "a.bin")
    await store.put(key, b"one", "application/octet-stream")
    await store.put(key, b"two!", "image/png", public=True)
    data, meta = await store.get(key)
    assert (data, meta.size, meta.content_type, meta.public) == (b"two!", 4, "image/png", True)
    assert list((store.root / "tmp").iterdir()) == []


async def test_empty_content_type_defaults_and_bad_ones_are_refused(
    store: LocalBlobStore,
) -> None:
    key = make_key(None, "a")
    assert (await store.put(key, b"", "")).content_type == "application/octet-stream"
    for bad in ["text/html\r\nX-Evil: 1", "nonsense", "a/b c"]:
        with pytest.raises(InvalidContentType):
            await store.put(key, b"", bad)


async def test_get_of_unknown_key_raises_blob_not_found(store: LocalBlobStore) -> None:
    with pytest.raises(BlobNotFound):
        await store.get("nope/never.txt")
    assert not await store.exists("nope/never.txt")


@pytest.mark.parametrize("key", ["../outside", "a/../../x", "/etc/passwd", "..", "a\\..\\b"])
async def test_keys_that_would_leave_the_root_are_refused(store: LocalBlobStore, key: str) -> None:
    with pytest.raises(InvalidKey):
        await store.put(key, b"x", "text/plain")
    with pytest.raises(InvalidKey):
        await store.get(key)
    with pytest.raises(InvalidKey):
        store.object_path(key)
    assert not (store.root.parent / "outside").exists()


async def test_a_symlink_out_of_the_root_is_refused(store: LocalBlobStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (store.root / "objects").mkdir(parents=True)
    os.symlink(outside, store.root / "objects" / "link")
    with pytest.raises(InvalidKey, match="outside"):
        await store.put("link/x.txt", b"x", "text/plain")
    with pytest.raises(InvalidKey):
        store.object_path("link/x.txt")
    assert list(outside.iterdir()) == []


async def test_stat_gives_the_metadata_without_the_bytes(store: LocalBlobStore) -> None:
    key = make_key("outputs", "a.png")
    await store.put(key, b"12345", "image/png", public=True)
    assert await store.stat(key) == StoredObject(key, 5, "image/png", public=True)
    with pytest.raises(BlobNotFound):
        await store.stat(make_key("outputs", "b.png"))


def age(store: LocalBlobStore, key: str, seconds: float) -> None:
    """Make ``key`` look stored ``seconds`` ago."""
    then = time.time() - seconds
    os.utime(store.meta_path(key), (then, then))


async def test_delete_older_than_removes_only_old_objects(store: LocalBlobStore) -> None:
    old = [make_key("outputs/2026", "old.png"), make_key(None, "old2.txt")]
    new = [make_key("outputs/2026", "new.png"), make_key("inputs", "x.json")]
    for key in old + new:
        await store.put(key, key.encode(), "text/plain")
    for key in old:
        age(store, key, 3 * 86400)
    age(store, new[1], 86400 - 60)  # just under a day: kept
    cutoff = time.time() - 86400
    assert await store.delete_older_than(cutoff) == 2
    for key in old:
        assert not await store.exists(key)
        assert not store.object_path(key).exists()
    for key in new:
        assert (await store.get(key))[0] == key.encode()
    assert await store.delete_older_than(cutoff) == 0


async def test_delete_older_than_clears_old_empty_folders_and_temp_files(
    store: LocalBlobStore,
) -> None:
    key = make_key("deep/folder", "a.txt")
    await store.put(key, b"a", "text/plain")
    age(store, key, 7200)
    assert await store.delete_older_than(time.time() - 3600) == 1
    stale = store.root / "tmp" / "put-stale"
    stale.write_bytes(b"half a file")
    then = time.time() - 7200
    os.utime(stale, (then, then))
    for directory in [p for p in store.root.rglob("*") if p.is_dir()]:
        os.utime(directory, (then, then))
    await store.delete_older_than(time.time() - 3600)
    for area in ("objects", "meta"):
        assert list((store.root / area).iterdir()) == [], area
    assert not stale.exists()
    # a folder just made (a write in progress) is left alone
    fresh = store.root / "objects" / "fresh"
    fresh.mkdir()
    await store.delete_older_than(time.time() - 3600)
    assert fresh.is_dir()


async def test_the_sweeper_deletes_what_is_past_retention(store: LocalBlobStore) -> None:
    keep, drop = make_key(None, "keep.txt"), make_key(None, "drop.txt")
    for key in (keep, drop):
        await store.put(key, b"x", "text/plain")
    age(store, keep, 1.9 * 86400)
    age(store, drop, 2.1 * 86400)
    sweeper = FileSweeper(store, retention_days=2, interval=3600)
    assert await sweeper.sweep() == 1
    assert await store.exists(keep) and not await store.exists(drop)
    # a later pass, as the clock moves on
    assert await sweeper.sweep(now=time.time() + 0.2 * 86400) == 1
    assert not await store.exists(keep)


def test_the_store_creates_nothing_until_written(tmp_path: Path) -> None:
    LocalBlobStore(tmp_path / "files")
    assert not (tmp_path / "files").exists()


# -- signing ---------------------------------------------------------------------------

NOW = 1_800_000_000


@pytest.fixture
def signer() -> UrlSigner:
    return UrlSigner("s3cret")


def test_a_valid_signature_verifies(signer: UrlSigner) -> None:
    sig = signer.sign("a/b.txt", NOW + 60)
    assert re.fullmatch(r"[0-9a-f]{64}", sig)
    signer.verify("a/b.txt", str(NOW + 60), sig, now=NOW)
    signer.verify("a/b.txt", NOW + 60, sig.upper(), now=NOW)


def test_an_expired_signature_fails(signer: UrlSigner) -> None:
    sig = signer.sign("a/b.txt", NOW)
    with pytest.raises(InvalidSignature, match="expired"):
        signer.verify("a/b.txt", str(NOW), sig, now=NOW)
    with pytest.raises(InvalidSignature, match="expired"):
        signer.verify("a/b.txt", str(NOW), sig, now=NOW + 1)


def test_a_tampered_key_fails(signer: UrlSigner) -> None:
    sig = signer.sign("a/b.txt", NOW + 60)
    for key in ["a/c.txt", "a/b.txt2", "b.txt"]:
        with pytest.raises(InvalidSignature, match="does not match"):
            signer.verify(key, str(NOW + 60), sig, now=NOW)


def test_tampered_expires_fails(signer: UrlSigner) -> None:
    sig = signer.sign("a/b.txt", NOW + 60)
    for expires in [str(NOW + 61), str(NOW + 600000), "0" + str(NOW + 60), "soon", ""]:
        with pytest.raises(InvalidSignature):
            signer.verify("a/b.txt", expires, sig, now=NOW)


def test_a_tampered_signature_fails(signer: UrlSigner) -> None:
    sig = signer.sign("a/b.txt", NOW + 60)
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    for bad in [flipped, sig[:-1], sig + "0", "", "zz", "é" * 64]:
        with pytest.raises(InvalidSignature):
            signer.verify("a/b.txt", str(NOW + 60), bad, now=NOW)


def test_another_secret_signs_differently() -> None:
    sig = UrlSigner("other").sign("a/b.txt", NOW + 60)
    with pytest.raises(InvalidSignature):
        UrlSigner("s3cret").verify("a/b.txt", str(NOW + 60), sig, now=NOW)


def test_signed_url_shape(signer: UrlSigner) -> None:
    url = signer.signed_url("http://h:1/", "a b/x.txt", NOW + 5)
    sig = signer.sign("a b/x.txt", NOW + 5)
    assert url == f"http://h:1/v1/files/a%20b/x.txt?expires={NOW + 5}&signature={sig}"


# -- owner tags --------------------------------------------------------------------------


def test_owner_tags_tell_which_account_a_key_was_made_for() -> None:
    tags = OwnerTags("s3cret")
    key_id = tags.new_id("acct_a")
    assert re.fullmatch(r"[a-z0-9]{20}", key_id)
    key = make_key("outputs", "x.png", key_id)
    assert key == f"outputs/{key_id}/x.png"
    assert tags.owns(key, "acct_a")
    assert tags.owns(key_id + "/x.png", "acct_a")
    assert not tags.owns(key, "acct_b")
    assert not OwnerTags("other secret").owns(key, "acct_a")
    assert not tags.owns(make_key("outputs", "x.png"), "acct_a")  # an untagged key
    assert not tags.owns("x.png", "acct_a")
    # changing any character of the id breaks the tag
    flipped = key_id[:3] + ("a" if key_id[3] != "a" else "b") + key_id[4:]
    assert not tags.owns(f"outputs/{flipped}/x.png", "acct_a")
    assert len({tags.new_id("acct_a") for _ in range(100)}) == 100
