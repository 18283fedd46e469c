"""Incremental Server-Sent-Events decoding (WHATWG `text/event-stream`), bytes in, events out.

`SSEDecoder.feed(chunk)` accepts bytes split at any boundary and returns the events completed
so far; `feed(b"")` marks the end of input and flushes a final event that was not followed by a
blank line. Lines are found with C-level `bytes.find`/`splitlines` on whole buffers, and only
complete lines are decoded, so a multi-byte character or a CRLF split across chunks is safe.

`EventStreamParser` is the shared driver of the wire formats' stream parsers: it feeds an
`SSEDecoder` and hands each event to a subclass hook that appends records.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.providers.records import Record

DEFAULT_MAX_EVENT_SIZE = 64 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: a block of field lines ended by a blank line (or end of input)."""

    event: str | None = None
    """The `event:` field, or None when the event had none (the spec's default "message")."""
    data: str = ""
    """The `data:` lines joined with "\\n"."""
    id: str | None = None
    """The last event id seen on the stream so far (it persists across events, as specified)."""
    retry: int | None = None
    """A valid `retry:` field of this event, in milliseconds."""
    truncated: bool = False
    """True when the event outgrew the decoder's limit and its data was dropped."""


class SSEDecoder:
    """Turns a byte stream into `SSEEvent`s; never raises on any input.

    An event is dispatched when its block had at least one `data`, `event`, `id` or `retry`
    field (comment-only and empty blocks dispatch nothing). At most one partial line is
    buffered: a line or event growing past `max_event_size` bytes is dropped as it arrives and
    the event is dispatched with empty data and `truncated=True`.
    """

    __slots__ = (
        "_bom_checked",
        "_data",
        "_discarding",
        "_event",
        "_last_id",
        "_max",
        "_partial",
        "_retry",
        "_seen",
        "_size",
        "_skip_lf",
        "_truncated",
    )

    def __init__(self, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        self._max = max_event_size
        self._partial = bytearray()
        self._bom_checked = False
        self._skip_lf = False
        self._discarding = False
        self._last_id: str | None = None
        self._reset_event()

    def _reset_event(self) -> None:
        self._event: str | None = None
        self._data: list[str] = []
        self._retry: int | None = None
        self._seen = False
        self._size = 0
        self._truncated = False

    def feed(self, data: bytes) -> list[SSEEvent]:
        out: list[SSEEvent] = []
        if not data:
            self._finish(out)
            return out
        if not self._bom_checked:
            data = self._strip_bom(data)
        if self._skip_lf and data:
            self._skip_lf = False
            if data[0] == 0x0A:
                data = data[1:]
        if self._discarding and data:
            data = self._skip_overlong(data)
        if data:
            self._feed_lines(data, out)
        return out

    def _strip_bom(self, data: bytes) -> bytes:
        head = bytes(self._partial) + data
        if len(head) < len(_BOM) and _BOM.startswith(head):
            self._partial = bytearray(head)
            return b""
        self._bom_checked = True
        self._partial.clear()
        return head[len(_BOM) :] if head.startswith(_BOM) else head

    def _skip_overlong(self, data: bytes) -> bytes:
        """Drop the rest of a line that outgrew the limit; return what follows its end."""
        ends = [pos for pos in (data.find(b"\n"), data.find(b"\r")) if pos >= 0]
        if not ends:
            return b""
        pos = min(ends)
        self._discarding = False
        if data[pos] == 0x0D:
            if pos + 1 == len(data):
                self._skip_lf = True
            elif data[pos + 1] == 0x0A:
                pos += 1
        return data[pos + 1 :]

    def _feed_lines(self, data: bytes, out: list[SSEEvent]) -> None:
        if data.find(b"\n") < 0 and data.find(b"\r") < 0:
            self._partial += data
            self._check_partial()
            return
        buf = bytes(self._partial) + data if self._partial else data
        self._partial.clear()
        lines = buf.splitlines()
        last = buf[-1]
        tail = None
        if last == 0x0D:
            self._skip_lf = True
        elif last != 0x0A:
            tail = lines.pop()
        for line in lines:
            self._line(line, out)
        if tail is not None:
            self._partial += tail
            self._check_partial()

    def _check_partial(self) -> None:
        if self._size + len(self._partial) > self._max:
            self._partial.clear()
            self._discarding = True
            self._drop_data()

    def _drop_data(self) -> None:
        self._data = []
        self._truncated = True
        self._seen = True

    def _line(self, line: bytes, out: list[SSEEvent]) -> None:
        if not line:
            self._dispatch(out)
            return
        size = self._size + len(line)
        if size > self._max:
            self._drop_data()  # the same test `_check_partial` applies to an unfinished line
            return
        if line.startswith(b"data:"):  # the common case first
            self._seen = True
            if not self._truncated:
                self._size = size
                raw = line[6:] if line[5:6] == b" " else line[5:]
                self._data.append(raw.decode("utf-8", "replace"))
            return
        if line[0] == 0x3A:  # ":" starts a comment
            return
        name, sep, raw = line.partition(b":")
        if sep and raw[:1] == b" ":
            raw = raw[1:]
        if name == b"data":  # "data" without a colon: an empty data line
            self._seen = True
            if not self._truncated:
                self._size = size
                self._data.append("")
        elif name == b"event":
            self._seen = True
            self._event = raw.decode("utf-8", "replace") or None
        elif name == b"id":
            self._seen = True
            if b"\x00" not in raw:
                self._last_id = raw.decode("utf-8", "replace")
        elif name == b"retry":
            self._seen = True
            if raw.isdigit() and len(raw) < 16:
                self._retry = int(raw)

    def _dispatch(self, out: list[SSEEvent]) -> None:
        if self._seen:
            out.append(
                SSEEvent(
                    event=self._event,
                    data="\n".join(self._data),
                    id=self._last_id,
                    retry=self._retry,
                    truncated=self._truncated,
                )
            )
        self._reset_event()

    def _finish(self, out: list[SSEEvent]) -> None:
        if self._partial and not self._discarding:
            self._line(bytes(self._partial), out)
        self._partial.clear()
        self._discarding = False
        self._skip_lf = False
        self._bom_checked = False
        self._dispatch(out)
        self._last_id = None


class EventStreamParser:
    """Base of the SSE-based stream parsers: implements `StreamParser.feed`.

    Subclasses implement `on_event` (and optionally `on_end`, called once at end of input);
    both append the records they complete to `out`. After the end of input, feed returns [].
    """

    __slots__ = ("_decoder", "_ended")

    def __init__(self, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        self._decoder = SSEDecoder(max_event_size=max_event_size)
        self._ended = False

    def feed(self, data: bytes) -> list[Record]:
        if self._ended:
            return []
        out: list[Record] = []
        for event in self._decoder.feed(data):
            self.on_event(event, out)
        if not data:
            self._ended = True
            self.on_end(out)
        return out

    def on_event(self, event: SSEEvent, out: list[Record]) -> None:
        raise NotImplementedError

    def on_end(self, out: list[Record]) -> None:
        """End of input: flush whatever is known."""
