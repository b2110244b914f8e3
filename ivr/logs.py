"""One logging setup for every command: text for people, JSON lines for log collectors.

In JSON each line is one object (`ts`, `level`, `logger`, `msg`, plus `call_id` on every line
logged while a call is being served, and `exc` for tracebacks). The call id comes from a
context variable the SIP worker sets in each call's task (`call_context`): asyncio copies the
context into tasks created from there, so every line of a call carries it without each log
call passing it. It is the call's own id (`call_uuid`: in its events, record and recording
names), so one grep finds a call's log lines, its row and its files.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

LogFormat = Literal["text", "json"]
_OURS = "_driveline_handler"

call_id_var: ContextVar[str | None] = ContextVar("driveline_call_id", default=None)

# LogRecord attributes that are not `extra` fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


@contextmanager
def call_context(call_id: str) -> Iterator[None]:
    """Lines logged inside (and in tasks started inside) carry `call_id`."""
    token = call_id_var.set(call_id)
    try:
        yield
    finally:
        call_id_var.reset(token)


class CallIdFilter(logging.Filter):
    """Puts the current call id on the record, so both formats can show it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "call_id", None) is None:
            record.call_id = call_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and value is not None:
                out[key] = value if isinstance(value, (str, int, float, bool)) else str(value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        call_id = getattr(record, "call_id", None)
        return f"{text} [call {call_id}]" if call_id else text


def setup_logging(
    log_format: LogFormat = "text", *, verbose: bool = False, stream: TextIO | None = None
) -> None:
    """One handler on stderr in `log_format` for the root logger. Like `logging.basicConfig`,
    it leaves a root logger that someone else configured alone (pytest's capture, an
    embedding application); a second call replaces the handler of the first."""
    root = logging.getLogger()
    if any(not getattr(h, _OURS, False) for h in root.handlers):
        return
    handler = logging.StreamHandler(stream or sys.stderr)
    setattr(handler, _OURS, True)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(CallIdFilter())
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
