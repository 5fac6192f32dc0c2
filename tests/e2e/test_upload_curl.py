"""The seed's upload example (core-today-model-gpt-image-2.txt), run by the real curl
against a real ``genyard serve``: only the base URL, the key and the model differ."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from e2e_support import DIAGNOSTIC, Server, wait_status

pytestmark = pytest.mark.e2e

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40

# As the seed writes it, with {base}, {key} and {model} in place of its values.
SEED_UPLOAD = """curl -X POST "{base}/v1/predictions/upload" \\
-H "X-API-Key: {key}" \\
-F "model={model}" \\
-F 'input={{"prompt":"your prompt here"}}' \\
-F "file:input_images=@your_file.png"
"""


@pytest.mark.skipif(shutil.which("curl") is None, reason="the curl binary is not installed")
def test_the_seed_upload_command_runs_as_written(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = make_server().start()
    workdir = tmp_path / "client"
    workdir.mkdir()
    (workdir / "your_file.png").write_bytes(PNG)
    command = SEED_UPLOAD.format(base=server.url, key=server.admin_key, model=DIAGNOSTIC)
    done = subprocess.run(
        ["sh", "-c", command], cwd=workdir, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    assert created["model"] == DIAGNOSTIC
    assert created["status"] in ("pending", "processing", "succeeded"), created

    with server.client(server.admin_key) as client:
        job = wait_status(client, created["id"], "succeeded")
    assert job["input"]["prompt"] == "your prompt here"
    assert job["input"]["mode"] == "echo"  # the default: the seed's call runs as written
    (url,) = job["input"]["input_images"]
    path = urlsplit(url).path
    assert path.startswith("/v1/files/inputs/") and path.endswith("/your_file.png"), url
    # the stored input serves the same bytes, to anyone holding the signed URL
    r = httpx.get(url, timeout=10)
    assert r.status_code == 200, r.text
    assert r.content == PNG
    assert r.headers["content-type"] == "image/png"  # curl names the part's type
    # and not without the signature
    assert httpx.get(url.split("?")[0], timeout=10).status_code == 401
