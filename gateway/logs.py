"""Logging: human lines (`--log-human`, default stderr) and/or JSON lines (`--log-json PATH`).

Handlers run on a listener thread behind a queue, so the event loop only enqueues. Structured
interception records (`--ai-gateway-structured-logging`) go through the same outputs with the
message "interception log" and a `record_type` field. Known secrets (provider keys, tokens) are
scrubbed from every line before it is written.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any

import orjson

from gateway.redaction import SecretScrubber

STRUCTURED_LOGGER = "aibridge.interceptions"
POLL_SECONDS = 0.02
ScrubberSource = Callable[[], SecretScrubber]


def _open(path: str) -> IO[str]:
    if path in ("/dev/stderr", "-", "stderr"):
        return sys.stderr
    if path in ("/dev/stdout", "stdout"):
        return sys.stdout
    return open(path, "a", buffering=1, encoding="utf-8")


class _Scrubbing(logging.Formatter):
    def __init__(self, scrubber: ScrubberSource) -> None:
        super().__init__()
        self._scrubber = scrubber

    def render(self, record: logging.LogRecord) -> str:
        raise NotImplementedError

    def format(self, record: logging.LogRecord) -> str:
        return self._scrubber().scrub(self.render(record))


class HumanFormatter(_Scrubbing):
    def render(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        line = f"{ts} {record.levelname:<7} {record.name}: {record.getMessage()}"
        fields = getattr(record, "fields", None)
        if fields is not None:
            parts = [f"record_type={record.record_type}"]  # type: ignore[attr-defined]
            parts += [f"{k}={_human(v)}" for k, v in fields.items() if v is not None]
            line += " " + " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _human(value: Any) -> str:
    if isinstance(value, str):
        return value if value and " " not in value and len(value) < 80 else repr(value[:200])
    return orjson.dumps(value).decode() if isinstance(value, (dict, list)) else str(value)


class JSONFormatter(_Scrubbing):
    def render(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields is not None:
            out["record_type"] = record.record_type  # type: ignore[attr-defined]
            out.update(fields)
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class LogSetup:
    """Owns the queue listener; `stop()` flushes every pending line."""

    def __init__(
        self,
        listener: logging.handlers.QueueListener,
        handler: logging.Handler,
        handlers: list[logging.Handler],
    ) -> None:
        self._listener = listener
        self._queue_handler = handler
        self._handlers = handlers

    def stop(self) -> None:
        self._listener.stop()
        root = logging.getLogger()
        root.removeHandler(self._queue_handler)
        for h in self._handlers:
            h.flush()
            if isinstance(h, logging.StreamHandler) and h.stream not in (sys.stderr, sys.stdout):
                h.close()


class _QueueHandler(logging.handlers.QueueHandler):
    """Skips the stdlib's eager formatting and record copy when there is nothing to freeze
    (no %-args, no exception): the listener thread formats. This is most log lines, and every
    structured interception record."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        if record.args or record.exc_info or record.stack_info:
            return super().prepare(record)
        return record


class _PollingListener(logging.handlers.QueueListener):
    """Drains the queue every POLL_SECONDS instead of blocking on it: a blocked reader is woken
    by every record (four per request with structured logging), a thread switch each time on
    the event loop's core. Lines reach their files at most POLL_SECONDS later."""

    def dequeue(self, block: bool) -> logging.LogRecord:
        while True:
            try:
                record: logging.LogRecord = self.queue.get_nowait()  # type: ignore[attr-defined]
                return record
            except queue.Empty:
                if not block:
                    raise
                time.sleep(POLL_SECONDS)


def setup_logging(
    *, human: str, json_path: str, level: str, scrubber: ScrubberSource = SecretScrubber
) -> LogSetup:
    handlers: list[logging.Handler] = []
    if human:
        h = logging.StreamHandler(_open(human))
        h.setFormatter(HumanFormatter(scrubber))
        handlers.append(h)
    if json_path:
        j = logging.StreamHandler(_open(json_path))
        j.setFormatter(JSONFormatter(scrubber))
        handlers.append(j)
    # Nothing we print uses them; each costs a lookup per record on the event loop.
    logging.logMultiprocessing = False
    logging.logProcesses = False
    q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    qh = _QueueHandler(q)
    listener = _PollingListener(q, *handlers, respect_handler_level=False)
    root = logging.getLogger()
    for existing in list(root.handlers):
        if isinstance(existing, logging.handlers.QueueHandler):
            root.removeHandler(existing)
    root.addHandler(qh)
    root.setLevel(level.upper())
    # mitmproxy is chatty at info about every connection; keep its warnings and errors.
    logging.getLogger("mitmproxy").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
    listener.start()
    return LogSetup(listener, qh, handlers)


def structured_logger() -> logging.Logger:
    return logging.getLogger(STRUCTURED_LOGGER)
