"""The faces' suites run real servers with the end-to-end suite's fixtures
(``make_server``, ``module_server_factory``; helpers in ``e2e_support``) and talk to
them with the vendors' official SDKs."""

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
