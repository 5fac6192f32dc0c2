"""Structured logs: one JSON object per line, carrying the request id.

API keys never reach the logs: the access log names the route, never headers or
bodies, and a filter masks anything shaped like a genyard key as a last line of
defence (tests/e2e/test_logs.py proves it on a real server).
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time

import orjson

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "genyard_request_id", default=None
)
_KEY_PATTERN = re.compile(r"gy_live_[0-9a-f]{6,}")


def mask_keys(text: str) -> str:
    return _KEY_PATTERN.sub(lambda m: m.group(0)[:14] + "…", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": mask_keys(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            # A client chooses its request id: it may have sent a key there.
            entry["request_id"] = mask_keys(request_id)
        for key in ("method", "route", "status", "duration_ms", "client"):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = mask_keys(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exc"] = mask_keys(self.formatException(record.exc_info))
        return orjson.dumps(entry).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        rid = request_id_var.get()
        line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if rid:
            line += f" [{rid}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return mask_keys(line)


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    logging.captureWarnings(True)  # warnings become JSON lines too
