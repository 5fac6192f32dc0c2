"""Fixtures for the faces' tests: the e2e suite's real servers (``make_server``,
``module_server_factory``, server logs on failure) and its helpers (``e2e_support``),
so each face is tested against a real ``genyard serve`` process."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_E2E = Path(__file__).resolve().parent.parent / "e2e"
if str(_E2E) not in sys.path:
    sys.path.insert(0, str(_E2E))

_spec = importlib.util.spec_from_file_location("e2e_fixtures", _E2E / "conftest.py")
assert _spec is not None and _spec.loader is not None
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

make_server = _fixtures.make_server
module_server_factory = _fixtures.module_server_factory
_server_logs_on_failure = _fixtures._server_logs_on_failure
pytest_runtest_makereport = _fixtures.pytest_runtest_makereport
