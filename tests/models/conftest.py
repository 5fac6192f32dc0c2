"""Model tests use the API tests' fixtures (``make_api``: a real app with in-process
workers on a fresh database) for their one prediction per model type through the API."""

from __future__ import annotations

from api.conftest import _no_genyard_env, catalog_dir, make_api

__all__ = ["_no_genyard_env", "catalog_dir", "make_api"]
