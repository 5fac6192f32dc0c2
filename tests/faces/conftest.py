"""The protocol faces' tests run the official SDKs against a real ``genyard serve``
(the e2e suite's servers and fixtures)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))

from e2e.conftest import (
    _server_logs_on_failure,
    make_server,
    module_server_factory,
    pytest_runtest_makereport,
)

__all__ = [
    "_server_logs_on_failure",
    "make_server",
    "module_server_factory",
    "pytest_runtest_makereport",
]
