"""One interception's recording, from request to end. Plain Python: the addon feeds it bytes.

The session never touches what the client receives: it reads copies (the stream tap returns
chunks unchanged), decodes content-encoding only for parsing, and a parser failure only marks
the interception as unparsed.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
import zlib
from collections.abc import Callable

import brotli
import zstandard

from gateway.metrics import Metrics
from gateway.providers.base import StreamParser, WireFormat
from gateway.providers.records import (
    ModelThought,
    PromptUsage,
    Record,
    RequestSummary,
    TokenUsage,
    ToolUsage,
    UpstreamError,
)
from gateway.recorder import (
    STATUS_CLIENT_DISCONNECTED,
    STATUS_COMPLETED,
    STATUS_FAILED,
    STATUS_UPSTREAM_ERROR,
    InterceptionEnd,
    InterceptionStart,
    Recorder,
)
from gateway.redaction import SecretScrubber
from schema.types import utcnow

log = logging.getLogger(__name__)

MAX_ERROR_TEXT = 2000


class BodyDecoder:
    """Incremental content-encoding decoder (gzip, deflate, br, zstd), used only for parsing."""

    def __init__(self, content_encoding: str) -> None:
        enc = content_encoding.strip().lower()
        self._flush: Callable[[], bytes] | None = None
        if enc in ("gzip", "x-gzip", "deflate"):
            obj = zlib.decompressobj(16 + zlib.MAX_WBITS if enc != "deflate" else zlib.MAX_WBITS)
            self._decode: Callable[[bytes], bytes] = obj.decompress
            self._flush = obj.flush
        elif enc == "br":
            self._decode = brotli.Decompressor().process
        elif enc == "zstd":
            zobj = zstandard.ZstdDecompressor().decompressobj()
            self._decode = zobj.decompress
            self._flush = zobj.flush
        else:
            raise ValueError(f"unsupported content-encoding {content_encoding!r}")

    @staticmethod
    def for_encoding(content_encoding: str) -> BodyDecoder | None:
        """None for identity; ValueError for an encoding we cannot decode."""
        if content_encoding.strip().lower() in ("", "identity"):
            return None
        return BodyDecoder(content_encoding)

    def decode(self, chunk: bytes) -> bytes:
        """Decoded bytes of `chunk`; b"" flushes the tail."""
        if chunk:
            return self._decode(chunk)
        return self._flush() if self._flush is not None else b""


def decode_body(raw: bytes, content_encoding: str, limit: int) -> bytes | None:
    """A whole body decoded, or None when it is corrupt, unsupported or decodes to more than
    `limit` bytes (a compression bomb stops there instead of filling memory)."""
    enc = content_encoding.strip().lower()
    if enc in ("", "identity"):
        return raw
    try:
        if enc in ("gzip", "x-gzip", "deflate"):
            obj = zlib.decompressobj(zlib.MAX_WBITS if enc == "deflate" else 16 + zlib.MAX_WBITS)
            out = obj.decompress(raw, limit + 1)
        elif enc == "zstd":
            out = zstandard.ZstdDecompressor().decompressobj().decompress(raw)
        elif enc == "br":
            out = brotli.Decompressor().process(raw)
        else:
            return None
    except (zlib.error, zstandard.ZstdError, brotli.error):
        return None
    return out if len(out) <= limit else None


class InterceptionSession:
    def __init__(
        self,
        *,
        recorder: Recorder,
        wire: WireFormat,
        start: InterceptionStart,
        summary: RequestSummary,
        scrubber: SecretScrubber,
        max_prompt_chars: int = 0,
        metrics: Metrics | None = None,
    ) -> None:
        self.id: uuid.UUID = start.id
        self._metrics = metrics
        self._recorder = recorder
        self._wire = wire
        self._start = start
        # The prompt is cut to what will be recorded at once: the whole last message (a 20 MB
        # body is one) must not stay alive for as long as the response takes.
        self._prompt = self._cut(summary.prompt, max_prompt_chars)
        self._summary = dataclasses.replace(summary, prompt=None) if summary.prompt else summary
        self._scrubber = scrubber
        self._parser: StreamParser | None = None
        self._decoder: BodyDecoder | None = None
        self._upstream_status: int | None = None
        self._upstream_error: str | None = None
        self._parsed = summary.parsed
        self._streamed = False
        self.ended = False

    def begin(self) -> None:
        """Record the start (and the prompt): one journal append, before anything goes upstream."""
        with self._recorder.batch():
            self._recorder.record_interception_start(self._start)
            # A turn that hands tool results back repeats the earlier prompt (Chat,
            # Responses): only a new user turn records one.
            if self._prompt and self._summary.correlating_tool_call_id is None:
                self._recorder.record_prompt_usage(self.id, PromptUsage(self._prompt))

    @staticmethod
    def _cut(prompt: str | None, cap: int) -> str | None:
        if prompt and cap and len(prompt) > cap:
            return f"{prompt[:cap]}\n…[aibridge: prompt cut, {len(prompt)} characters in all]"
        return prompt

    # -- response -----------------------------------------------------------------------------

    def response_headers(self, status: int, content_type: str, content_encoding: str) -> bool:
        """Called when upstream headers arrive. Returns True when the body should be tapped as
        a stream (SSE), False when it will be handed over whole."""
        self._upstream_status = status
        self._streamed = content_type.split(";", 1)[0].strip().lower() == "text/event-stream"
        if not self._streamed:
            return False
        try:
            self._decoder = BodyDecoder.for_encoding(content_encoding)
        except ValueError:
            self._parsed = False
            return True
        self._parser = self._wire.stream_parser()
        return True

    def feed(self, chunk: bytes) -> None:
        """The stream tap: a copy of each chunk the client receives; b"" ends the stream."""
        parser = self._parser
        if parser is None:
            return
        try:
            if self._decoder is not None:
                data = self._decoder.decode(chunk)
                if data:
                    self._apply(parser.feed(data))
                if not chunk:
                    self._apply(parser.feed(b""))
            else:
                self._apply(parser.feed(chunk))
        except Exception:
            log.exception("stream parser failed; interception %s left unparsed", self.id)
            self._parser = None
            self._parsed = False

    def blocking_body(self, body: bytes) -> None:
        """A complete, already-decoded response body."""
        if self._upstream_status is not None and self._upstream_status >= 400:
            self._upstream_error = self._error_text(body)
            return
        try:
            records = self._wire.parse_response(body)
        except Exception:
            log.exception("response parser failed for interception %s", self.id)
            records = []
        if not records:
            self._parsed = False
        self._apply(records)

    def upstream_error_body(self, body: bytes) -> None:
        self._upstream_error = self._error_text(body)

    def _error_text(self, body: bytes) -> str:
        text = body[:MAX_ERROR_TEXT].decode("utf-8", "replace")
        return self._scrubber.scrub(text) or f"upstream answered {self._upstream_status}"

    def _apply(self, records: list[Record]) -> None:
        for rec in records:
            if isinstance(rec, TokenUsage):
                self._recorder.record_token_usage(self.id, rec)
                if self._metrics is not None:
                    self._metrics.token_usage(self._start.provider_name, rec)
            elif isinstance(rec, ToolUsage):
                self._recorder.record_tool_usage(self.id, rec)
                if self._metrics is not None:
                    self._metrics.tool_call(self._start.provider_name)
            elif isinstance(rec, ModelThought):
                self._recorder.record_model_thought(self.id, rec)
            elif isinstance(rec, UpstreamError):
                self._upstream_error = self._scrubber.scrub(rec.message)[:MAX_ERROR_TEXT]

    # -- end ----------------------------------------------------------------------------------

    def finish(self, *, client_disconnected: bool = False, error: str | None = None) -> None:
        """Close the interception once (later calls do nothing). Usage seen so far is kept."""
        if self.ended:
            return
        with self._recorder.batch():
            self._finish(client_disconnected, error)

    def complete(self, body: bytes | None) -> None:
        """The response is done: parse a blocking body (when given) and close, in one append."""
        if self.ended:
            return
        with self._recorder.batch():
            if body is not None:
                self.blocking_body(body)
            self._finish(False, None)

    def _finish(self, client_disconnected: bool, error: str | None) -> None:
        if self._parser is not None:
            self.feed(b"")
        self.ended = True
        if client_disconnected:
            status, message = STATUS_CLIENT_DISCONNECTED, error or "client disconnected"
        elif error is not None:
            status, message = STATUS_UPSTREAM_ERROR, error
        elif self._upstream_error is not None or (self._upstream_status or 0) >= 400:
            status = STATUS_UPSTREAM_ERROR
            message = self._upstream_error or f"upstream answered {self._upstream_status}"
        else:
            status, message = STATUS_COMPLETED, None
        self._end(status, message)

    def fail(self, message: str) -> None:
        if self.ended:
            return
        self.ended = True
        self._end(STATUS_FAILED, message)

    def _end(self, status: str, message: str | None) -> None:
        if self._metrics is not None:
            self._metrics.interception_closed(self._start.provider_name, status)
        self._recorder.record_interception_end(
            InterceptionEnd(
                id=self.id,
                ended_at=utcnow(),
                status=status,
                upstream_status=self._upstream_status,
                error_message=self._scrubber.scrub(message) if message else None,
                streamed=self._streamed,
                parsed=self._parsed,
            )
        )
