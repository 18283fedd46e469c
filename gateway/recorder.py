"""The recorder: a narrow interface (six methods) between the request path and storage.

It knows nothing of HTTP or mitmproxy. `JournalRecorder` turns records into rows, appends them
to the journal (durable at once), hands them to the database writer, and emits one structured
log record per event when structured logging is on.
"""

from __future__ import annotations

import logging
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from gateway.journal import Journal, JournalFull
from gateway.providers.records import ModelThought, PromptUsage, TokenUsage, ToolUsage
from gateway.writer import Entry, Writer, encode_entry
from schema.types import utcnow

log = logging.getLogger(__name__)

STATUS_COMPLETED = "completed"
STATUS_UPSTREAM_ERROR = "upstream_error"
STATUS_CLIENT_DISCONNECTED = "client_disconnected"
STATUS_FAILED = "failed"


@dataclass(frozen=True, slots=True)
class InterceptionStart:
    id: uuid.UUID
    initiator_id: uuid.UUID | None
    api_token_id: uuid.UUID | None
    provider_type: str
    provider_name: str
    provider_id: uuid.UUID | None
    api: str
    model: str | None
    client: str
    client_session_id: str | None
    user_agent: str | None
    credential_kind: str
    credential_hint: str | None
    started_at: datetime
    correlating_tool_call_id: str | None = None
    parsed: bool = True
    initiator_name: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InterceptionEnd:
    id: uuid.UUID
    ended_at: datetime
    status: str
    upstream_status: int | None = None
    error_message: str | None = None
    streamed: bool = False
    parsed: bool = True


class Recorder(Protocol):
    def record_interception_start(self, start: InterceptionStart) -> None: ...
    def record_interception_end(self, end: InterceptionEnd) -> None: ...
    def record_token_usage(self, interception_id: uuid.UUID, usage: TokenUsage) -> None: ...
    def record_prompt_usage(self, interception_id: uuid.UUID, prompt: PromptUsage) -> None: ...
    def record_tool_usage(self, interception_id: uuid.UUID, tool: ToolUsage) -> None: ...
    def record_model_thought(self, interception_id: uuid.UUID, thought: ModelThought) -> None: ...
    def batch(self) -> AbstractContextManager[None]:
        """Records made inside are written together (one journal append) when it exits."""
        ...


LOG_PROMPT_CHARS = 8192
"""The longest prompt text a structured log record carries (log pipelines split or drop long
lines; Docker's json-file driver at 16 KB). The database record keeps `max_prompt_chars`."""


class RecorderUnavailable(Exception):
    """The journal is at its cap: the gateway must stop taking new interceptions (503)."""


class JournalRecorder:
    def __init__(
        self,
        journal: Journal,
        writer: Writer,
        *,
        instance_id: str,
        structured_log: logging.Logger | None = None,
    ) -> None:
        self._journal = journal
        self._writer = writer
        self._instance_id = instance_id
        self._slog = structured_log
        self._pending: list[Entry] | None = None

    @property
    def accepting(self) -> bool:
        return self._journal.pending_bytes() < self._journal.max_pending

    def batch(self) -> JournalRecorder:
        """Used from one thread (the event loop); batches do not nest. The recorder is its own
        context manager: a generator-based one costs several µs per request."""
        return self

    def __enter__(self) -> None:
        self._pending = []

    def __exit__(self, *exc: object) -> None:
        entries, self._pending = self._pending, None
        if entries:
            self._write(entries)

    def _emit(self, entries: list[Entry]) -> None:
        if self._pending is not None:
            self._pending.extend(entries)
        else:
            self._write(entries)

    def _write(self, entries: list[Entry]) -> None:
        data = b"".join(encode_entry(e) for e in entries)
        # Only a new interception is refused at the cap: the records of one already under way
        # (usage, tools, its end) always go in, or it would never be closed.
        started = any(e.kind == "interception" for e in entries)
        try:
            path, offset = self._journal.append(data, over_cap=not started)
        except JournalFull as exc:
            if started:
                raise RecorderUnavailable(str(exc)) from exc
            # The disk refused the journal: keep the records in memory for the writer (not
            # crash-safe, but the interception is still closed when the database answers).
            log.warning("journal write failed, records kept in memory only: %s", exc)
            self._writer.submit(entries, None, 0)
            return
        self._writer.submit(entries, path, offset)

    def _log(self, record_type: str, **fields: Any) -> None:
        slog = self._slog
        if slog is None or not slog.isEnabledFor(logging.INFO):
            return
        # Built directly: Logger.info() would walk the stack for the caller's file and line,
        # which these records don't need (they run for every event of every interception).
        record = logging.LogRecord(slog.name, logging.INFO, "", 0, "interception log", None, None)
        record.record_type = record_type
        record.fields = fields
        slog.handle(record)

    def record_interception_start(self, start: InterceptionStart) -> None:
        row = {
            "id": start.id,
            "initiator_id": start.initiator_id,
            "api_token_id": start.api_token_id,
            "provider_type": start.provider_type,
            "provider_name": start.provider_name,
            "provider_id": start.provider_id,
            "api": start.api,
            "model": start.model,
            "client": start.client,
            "client_session_id": start.client_session_id,
            "user_agent": start.user_agent,
            "credential_kind": start.credential_kind,
            "credential_hint": start.credential_hint,
            "streamed": False,
            "parsed": start.parsed,
            "started_at": start.started_at,
            "ended_at": None,
            "status": None,
            "upstream_status": None,
            "error_message": None,
            "correlating_tool_call_id": start.correlating_tool_call_id,
            "instance_id": self._instance_id,
            "metadata": start.metadata,
        }
        entries = [Entry("interception", row)]
        if start.api_token_id is not None:
            entries.append(Entry("token_used", {"id": start.api_token_id, "at": start.started_at}))
        self._emit(entries)
        self._log(
            "interception_start",
            interception_id=start.id,  # a UUID: formatted on the log thread
            initiator_id=start.initiator_id,
            initiator=start.initiator_name,
            provider=start.provider_name,
            provider_type=start.provider_type,
            model=start.model,
            client=start.client,
            client_session_id=start.client_session_id,
            api=start.api,
            credential_kind=start.credential_kind,
            started_at=start.started_at.isoformat(),
        )

    def record_interception_end(self, end: InterceptionEnd) -> None:
        row: dict[str, Any] = {
            "id": end.id,
            "ended_at": end.ended_at,
            "status": end.status,
            "upstream_status": end.upstream_status,
            "error_message": end.error_message,
            "streamed": end.streamed,
            "parsed": end.parsed,
        }
        self._emit([Entry("end", row)])
        self._log(
            "interception_end",
            interception_id=end.id,  # a UUID: formatted on the log thread
            ended_at=end.ended_at.isoformat(),
            status=end.status,
            upstream_status=end.upstream_status,
            error=end.error_message,
        )

    def record_token_usage(self, interception_id: uuid.UUID, usage: TokenUsage) -> None:
        now = utcnow()
        row = {
            "id": uuid.uuid4(),
            "interception_id": interception_id,
            "provider_response_id": usage.response_id,
            "input_tokens": usage.input,
            "output_tokens": usage.output,
            "cache_read_input_tokens": usage.cache_read,
            "cache_write_input_tokens": usage.cache_write,
            "metadata": dict(usage.metadata),
            "created_at": now,
        }
        self._emit([Entry("token_usage", row)])
        self._log(
            "token_usage",
            interception_id=interception_id,  # a UUID: formatted on the log thread
            msg_id=usage.response_id,
            input_tokens=usage.input,
            output_tokens=usage.output,
            cache_read_input_tokens=usage.cache_read,
            cache_write_input_tokens=usage.cache_write,
            metadata=dict(usage.metadata),
            created_at=now.isoformat(),
        )

    def record_prompt_usage(self, interception_id: uuid.UUID, prompt: PromptUsage) -> None:
        now = utcnow()
        row = {
            "id": uuid.uuid4(),
            "interception_id": interception_id,
            "prompt": prompt.prompt,
            "created_at": now,
        }
        self._emit([Entry("prompt_usage", row)])
        text = prompt.prompt
        if len(text) > LOG_PROMPT_CHARS:  # the database has it whole; a log line stays short
            text = f"{text[:LOG_PROMPT_CHARS]}…[{len(prompt.prompt)} characters in all]"
        self._log(
            "prompt_usage",
            interception_id=interception_id,  # a UUID: formatted on the log thread
            prompt=text,
            prompt_chars=len(prompt.prompt),
            created_at=now.isoformat(),
        )

    def record_tool_usage(self, interception_id: uuid.UUID, tool: ToolUsage) -> None:
        now = utcnow()
        row: dict[str, Any] = {
            "id": uuid.uuid4(),
            "interception_id": interception_id,
            "provider_response_id": tool.response_id,
            "tool_call_id": tool.tool_call_id,
            "tool": tool.name,
            "input": tool.arguments,
            "injected": tool.injected,
            "server_url": tool.server_url,
            "invocation_error": None,
            "metadata": {},
            "created_at": now,
        }
        self._emit([Entry("tool_usage", row)])
        self._log(
            "tool_usage",
            interception_id=interception_id,  # a UUID: formatted on the log thread
            msg_id=tool.response_id,
            tool_call_id=tool.tool_call_id,
            tool=tool.name,
            input=tool.arguments,
            server_url=tool.server_url,
            injected=tool.injected,
            invocation_error=None,
            created_at=now.isoformat(),
        )

    def record_model_thought(self, interception_id: uuid.UUID, thought: ModelThought) -> None:
        now = utcnow()
        row = {
            "id": uuid.uuid4(),
            "interception_id": interception_id,
            "provider_response_id": thought.response_id,
            "content": thought.content,
            "metadata": dict(thought.metadata),
            "created_at": now,
        }
        self._emit([Entry("model_thought", row)])
        self._log(
            "model_thought",
            interception_id=interception_id,  # a UUID: formatted on the log thread
            msg_id=thought.response_id,
            content=thought.content,
            metadata=dict(thought.metadata),
            created_at=now.isoformat(),
        )
