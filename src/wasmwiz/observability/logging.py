"""Stdlib logging set up once: JSON lines in production, readable lines in development."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

# Attributes every LogRecord has; anything else was passed through `extra=` and is data.
# color_message is uvicorn's ANSI-coloured copy of the message, not data.
_STANDARD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "color_message",
}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    extras = {
        name: value
        for name, value in vars(record).items()
        if name not in _STANDARD_ATTRIBUTES and not name.startswith("_")
    }
    # The trace and span the line was written in (formatting runs in the logging call's
    # own context): none when tracing is off, or on a thread no span was carried to.
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        extras["trace_id"] = f"{span_context.trace_id:032x}"
        extras["span_id"] = f"{span_context.span_id:016x}"
    return extras


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_extras(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class ReadableFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = _extras(record)
        if extras:
            line += " " + " ".join(f"{name}={value}" for name, value in extras.items())
        return line


def configure_logging(level: str, *, json_lines: bool) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if json_lines else ReadableFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's own access log would duplicate ours.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
