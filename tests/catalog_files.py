"""Catalog files tests add through ``GENYARD_CATALOG_DIR``, shared by the API and e2e suites."""

from __future__ import annotations

from pathlib import Path

from genyard.domain.catalog import BUNDLED_CATALOG_DIR


def write_capped_diagnostic(directory: Path, model_id: str, max_running: int) -> Path:
    """A copy of the diagnostic model under ``model_id`` whose ``limits.max_running`` is
    ``max_running``; returns ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    bundled = (BUNDLED_CATALOG_DIR / "diagnostic.toml").read_text()
    capped = bundled.replace('id = "genyard/diagnostic"', f'id = "{model_id}"').replace(
        "max_input_bytes = 1048576", f"max_input_bytes = 1048576\nmax_running = {max_running}"
    )
    assert model_id in capped and "max_running" in capped, "diagnostic.toml changed shape"
    (directory / f"{model_id.replace('/', '-')}.toml").write_text(capped)
    return directory
