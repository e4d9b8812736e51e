"""Log output an operator can ship: text, or one JSON object a line (``log.format``).

A JSON line has ``time`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``,
``message``, then the context of the request or connection it was written in
(``request_id``, ``user_id``, ``device``, ``connection_id``, ``cid``: those that are
known), then the fields the call passed as ``extra=`` (an access line's ``method``,
``route``, ``status`` ...), and ``exception`` with the traceback if there is one.

The context lives in a context variable: ``open_context`` starts one for a request
or a connection (Trio tasks started inside it inherit it), ``add_context`` fills in
what becomes known later (the user, once authenticated) for every line written
under it from then on, the access line at the request's end included.

Nothing here decides what is secret: callers never pass a password, a token or a
code (tests/test_logs.py reads a whole session's log to hold them to it).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal

#: The context fields, in the order a JSON line shows them.
CONTEXT_FIELDS = ("request_id", "user_id", "device", "connection_id", "cid")

LogFormat = Literal["text", "json"]

_context: ContextVar[dict[str, str] | None] = ContextVar("sandcat_log_context", default=None)

#: The attributes every ``LogRecord`` has; anything else came from ``extra=``.
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextmanager
def open_context(**fields: str) -> Iterator[dict[str, str]]:
    """A new context for the block: the enclosing one's fields plus ``fields``."""
    merged = {**(_context.get() or {}), **{k: v for k, v in fields.items() if v}}
    token = _context.set(merged)
    try:
        yield merged
    finally:
        _context.reset(token)


def add_context(**fields: str) -> None:
    """Add ``fields`` to the current context (every task sharing it sees them);
    nothing outside a context."""
    current = _context.get()
    if current is not None:
        current.update({k: v for k, v in fields.items() if v})


def current_context() -> dict[str, str]:
    return dict(_context.get() or {})


class JsonFormatter(logging.Formatter):
    """One JSON object a line (see the module's docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = _context.get() or {}
        for name in CONTEXT_FIELDS:
            if name in context:
                line[name] = context[name]
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value if isinstance(value, int | float | bool | None) else str(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["exception"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


def announcement(message: str, fmt: LogFormat) -> str:
    """A line for stdout whatever the log level (``listening on ...``): as is, or in
    the JSON format, so that every line of a JSON-logging server parses."""
    if fmt == "text":
        return message
    record = logging.LogRecord("sandcat", logging.INFO, __file__, 0, message, None, None)
    return JsonFormatter().format(record)


def configure_logging(level: str, fmt: LogFormat) -> None:
    """Send every log line to stderr at ``level`` or above, in ``fmt``; again to
    change the format. Like ``logging.basicConfig``, it leaves a root logger that
    someone else configured (a test runner's capture) alone."""
    root = logging.getLogger()
    ours = [handler for handler in root.handlers if getattr(handler, "sandcat", False)]
    if len(ours) != len(root.handlers):
        return
    for old in ours:
        root.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler.sandcat = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
