"""structlog configuration, in one place, for every ``tstore`` process.

Credentials never reach a log line: ``Redactor`` masks the secrets it was given (the API
token, passwords) wherever they appear, and anything shaped like a password in a URL, a
bearer token or a value quoted by a pydantic error, whoever logged it.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO, cast

import structlog

MASK = "***"
_HANDLER = "tstore"
"""Our handler on the root logger, replaced when logging is configured again; others (a
test runner's) are left alone."""
_SHAPES = (
    re.compile(r"(?<=://)([^:/@\s]*):([^@\s]+)@"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(input_value=)[^\n]*?(?=, input_type=)"),
)
"""A password in a URL, a bearer token, and the values a pydantic error quotes: a check of
several settings quotes all of them, the API token included, before any secret is known."""


class _CurrentStderr:
    """Whatever ``sys.stderr`` is when a line is written, not when logging was configured:
    test runners and embedding programs swap it, and a closed stream must not break logging."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class Redactor:
    """A structlog processor: every string in an event, nested ones included, with secrets
    masked."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        text = _SHAPES[0].sub(rf"\1:{MASK}@", text)
        text = _SHAPES[1].sub(rf"\1{MASK}", text)
        return _SHAPES[2].sub(rf"\1{MASK}", text)

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, dict):
            return {self._clean(k): self._clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._clean(v) for v in value)
        if isinstance(value, BaseException):
            return self.mask(str(value))
        return value

    def __call__(
        self, _logger: Any, _name: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        return {key: self._clean(value) for key, value in event.items()}


class _Repeats(logging.Filter):
    """aiokafka logs every failed attempt, some 80 lines a second while a broker is down. One
    line per message and ``every_s`` says as much; the next one tells how many were held back."""

    def __init__(self, every_s: float = 30.0) -> None:
        super().__init__()
        self.every_s = every_s
        self._shown: dict[tuple[str, object], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiokafka"):
            return True
        key, now = (record.name, record.msg), time.monotonic()
        shown, held = self._shown.get(key, (-self.every_s, 0))
        if now - shown < self.every_s:
            self._shown[key] = (shown, held + 1)
            return False
        self._shown[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} ({held} more like it in the last {self.every_s:.0f} s)"
        return True


_SAID_BY_THE_CALLER = (
    ("aiokafka", "Unable connect"),
    ("urllib3.connectionpool", "Retrying"),
    ("clickhouse_connect", "Unexpected Http Driver Exception"),
)
"""(logger, message) of the libraries' lines about a failed connection: aiokafka's to Kafka,
and the ClickHouse client's (urllib3 retrying, then the client giving up) to a server."""


def _said_by_the_caller(record: logging.LogRecord) -> bool:
    """Each component here that uses these libraries reports a failed connection itself, with
    its cause and what to do (a command in one line: ``cannot open the store: ClickHouse at
    ... is unreachable``); the library's lines only double it, and before it."""
    message = str(record.msg)
    return not any(
        record.name.startswith(name) and message.startswith(start)
        for name, start in _SAID_BY_THE_CALLER
    )


def configure_logging(
    fmt: str = "console", level: int = logging.INFO, secrets: Iterable[str] = ()
) -> None:
    """structlog for this project's lines, and the same rendering (and redaction) for the
    standard library's: aiokafka, uvicorn and the ClickHouse client log through it."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    redact = Redactor(secrets)
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, redact, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, _CurrentStderr())),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(cast(TextIO, _CurrentStderr()))
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact,
                renderer,
            ],
        )
    )
    handler.set_name(_HANDLER)
    handler.addFilter(_said_by_the_caller)
    handler.addFilter(_Repeats())
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != _HANDLER] + [handler]
    root.setLevel(logging.WARNING)
