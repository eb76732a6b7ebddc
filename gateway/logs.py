"""What ``nswgw serve`` logs and how: one line per record on stderr, JSON (the default) or text.

Every logger of the gateway is named under ``nswgw.`` (``nswgw.events``, ``nswgw.access``, ``nswgw.api``,
``nswgw.delivery``, ``nswgw.store``, ``nswgw.as4.inbound`` ...). :func:`configure_logging` installs one handler
on the root logger with the formatter of ``[gateway.logging] format``; ``level`` applies to the ``nswgw``
loggers, other libraries log at WARNING and above.

A JSON line is one object: ``ts`` (RFC 3339 UTC, microseconds), ``level``, ``logger``, ``message``, then every
structured field the record carries (``extra=``): for lifecycle events (:mod:`gateway.events`) ``event``,
``message_id`` (the gateway id), ``sender_message_id``, ``sender``, ``on_behalf_of``, ``destination``,
``document_type``, ``state``, ``attempt``, ``code``, ``field``, ``incident_id``, ``latency_seconds``; for the
access log (``nswgw.access``) ``method``, ``route``, ``path``, ``status``, ``party``, ``duration_seconds``. A
record with an exception adds ``exception`` (the formatted traceback). Grepping a gateway id follows its message
through every step.

A text line is ``TS LEVEL LOGGER MESSAGE key=value ...`` with the same fields.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

from gateway.config import LogSettings

__all__ = ["JsonFormatter", "TextFormatter", "configure_logging", "record_fields"]

_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields a record was logged with (``extra=``), JSON-ready (anything else as ``str``)."""
    out: dict[str, Any] = {}
    for key, value in record.__dict__.items():
        if key in _STANDARD or key.startswith("_"):
            continue
        out[key] = value if isinstance(value, str | int | float | bool | None) else str(value)
    return out


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record_fields(record).items():
            line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


def _text_value(value: object) -> str:
    """A field value of a text line: quoted (JSON) when it is empty or holds a space, a quote or a newline."""
    if isinstance(value, str) and (not value or any(c in value for c in ' "=\n')):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


class TextFormatter(logging.Formatter):
    """``TS LEVEL LOGGER MESSAGE key=value ...``, then the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(
            f"{key}={_text_value(value)}"
            for key, value in record_fields(record).items()
            if value is not None and key != "event"
        )
        line = f"{_timestamp(record)} {record.levelname} {record.name} {record.getMessage()}"
        if fields:
            line += " " + fields
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _Handler(logging.StreamHandler[IO[str]]):
    """The handler :func:`configure_logging` installs (recognised to replace it on a second call)."""


def configure_logging(settings: LogSettings, *, stream: IO[str] | None = None) -> logging.Handler:
    """Log to ``stream`` (stderr) in ``settings.format``: the ``nswgw`` loggers at ``settings.level``, every other
    logger at WARNING and above. Replaces the handler of an earlier call; returns the one installed."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    handler = _Handler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.format == "json" else TextFormatter())
    root.addHandler(handler)
    level = logging.getLevelName(settings.level)
    root.setLevel(max(level, logging.WARNING))
    logging.getLogger("nswgw").setLevel(level)
    logging.getLogger("nswgw.access").setLevel(level if settings.access else logging.CRITICAL + 1)
    logging.getLogger("aiohttp.access").setLevel(logging.CRITICAL + 1)
    return handler
