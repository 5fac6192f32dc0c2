"""`genyard models list` and `genyard models warm`, run as the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from e2e_support import Server

pytestmark = pytest.mark.e2e

ABSENT = """
[model]
id = "acme/absent"
type = "text"
provider = "absent-engine"
input_schema = { type = "object" }
"""


def genyard(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    catalog = tmp_path / "catalog"
    catalog.mkdir(exist_ok=True)
    (catalog / "absent.toml").write_text(ABSENT)
    env = {
        **os.environ,
        "GENYARD_DATA_DIR": str(tmp_path / "data"),
        "GENYARD_CATALOG_DIR": str(catalog),
    }
    return subprocess.run(
        [sys.executable, "-m", "genyard", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_models_list_says_what_runs_and_how_to_fix_what_does_not(tmp_path: Path) -> None:
    result = genyard(tmp_path, "models", "list")
    assert result.returncode == 0, result.stderr
    rows = {line.split("\t")[0]: line.split("\t") for line in result.stdout.splitlines()}
    assert rows["id"] == ["id", "type", "available", "reason", "fix"]
    assert rows["intfloat/multilingual-e5-small"][1:3] == ["embedding", "yes"]
    absent = rows["acme/absent"]
    assert absent[2] == "no"
    assert "absent-engine" in absent[3] and "absent-engine" in absent[4]


def test_models_warm_loads_a_model_and_refuses_unknown_or_unavailable_ones(
    tmp_path: Path,
) -> None:
    result = genyard(tmp_path, "models", "warm", "intfloat/multilingual-e5-small")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("intfloat/multilingual-e5-small: loaded in ")
    bad = genyard(tmp_path, "models", "warm", "acme/nope", "acme/absent")
    assert bad.returncode == 1
    assert "acme/nope: unknown model" in bad.stderr
    assert "acme/absent: failed to load" in bad.stderr and "fix:" in bad.stderr


def test_a_server_loads_its_warm_models_when_it_starts(
    make_server: Callable[..., Server],
) -> None:
    server = make_server(GENYARD_WARM_MODELS="intfloat/multilingual-e5-small,acme/nope").start()
    deadline = time.monotonic() + 60
    while "warmed intfloat/multilingual-e5-small" not in server.all_output():
        assert time.monotonic() < deadline, server.tail()
        time.sleep(0.2)
    assert "GENYARD_WARM_MODELS names 'acme/nope'" in server.all_output()
