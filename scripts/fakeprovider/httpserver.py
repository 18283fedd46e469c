"""A minimal HTTP/1.1 server side on asyncio streams: read one request, write one response.

Supports keep-alive, Content-Length and chunked request bodies, ``Expect: 100-continue``,
chunked (or close-delimited for HTTP/1.0) streamed responses, gzip, and fault injection
(abort with RST). Pipelined requests are answered in order, one at a time.
"""

import asyncio
import gzip
import logging
import socket
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from types import MappingProxyType
from typing import Any

import orjson

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 1 << 20
RESET_GRACE_SECONDS = 0.05

_REASONS = MappingProxyType({s.value: s.phrase.encode() for s in HTTPStatus})
_LINGER_RST = struct.pack("ii", 1, 0)

Headers = Sequence[tuple[str, str]]


class HttpError(Exception):
    """A malformed request: answered with `status` and the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """One request as it arrived: headers in wire order with their original case."""

    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    http_version: str = "HTTP/1.1"

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first header called `name` (case-insensitive)."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return default

    def header_names(self) -> list[str]:
        return [key for key, _ in self.headers]

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass(frozen=True, slots=True)
class Incoming:
    """A parsed request plus what the server needs: lower-cased headers and keep-alive."""

    record: ReceivedRequest
    lower: dict[str, str]
    http11: bool
    keep_alive: bool


def _split_target(target: str) -> tuple[str, str]:
    if target.startswith(("http://", "https://")):
        slash = target.find("/", target.find("//") + 2)
        target = target[slash:] if slash >= 0 else "/"
    path, _, query = target.partition("?")
    return path, query


def parse_head(head: bytes) -> tuple[str, str, str, list[tuple[str, str]], dict[str, str]]:
    """Parse a request head (without the final blank line) into its parts."""
    lines = head.lstrip(b"\r\n").split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[1]:
        raise HttpError(400, "malformed request line")
    method, target, version = (part.decode("latin-1") for part in parts)
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise HttpError(505, "only HTTP/1.0 and HTTP/1.1 are supported")
    headers: list[tuple[str, str]] = []
    lower: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name[-1:] in (b" ", b"\t"):
            raise HttpError(400, "malformed header line")
        key = name.decode("latin-1")
        text = value.strip(b" \t").decode("latin-1")
        headers.append((key, text))
        low = key.lower()
        lower[low] = f"{lower[low]}, {text}" if low in lower else text
    return method, target, version, headers, lower


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size_text = size_line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise HttpError(400, "malformed chunk size") from None
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                continue  # skip trailer fields
            return bytes(body)
        chunk = await reader.readexactly(size + 2)
        if chunk[-2:] != b"\r\n":
            raise HttpError(400, "chunk not terminated by CRLF")
        body += chunk[:-2]


async def read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> Incoming | None:
    """Read one request; None on a clean end of the connection between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise HttpError(400, "connection closed inside the request head") from None
        return None
    except asyncio.LimitOverrunError:
        raise HttpError(431, "request head too large") from None
    method, target, version, headers, lower = parse_head(head[:-4])
    http11 = version == "HTTP/1.1"
    body = await _read_body(reader, writer, lower, http11)
    connection = lower.get("connection", "").lower()
    keep_alive = "close" not in connection if http11 else "keep-alive" in connection
    path, query = _split_target(target)
    record = ReceivedRequest(method, path, query, headers, body, version)
    return Incoming(record, lower, http11, keep_alive)


async def _read_body(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    lower: dict[str, str],
    http11: bool,
) -> bytes:
    encoding = lower.get("transfer-encoding")
    length = lower.get("content-length")
    if encoding is not None:
        if encoding.lower().rsplit(",", 1)[-1].strip() != "chunked":
            raise HttpError(501, "unsupported transfer-encoding")
        _continue(writer, lower, http11)
        return await _read_chunked(reader)
    if length is None:
        return b""
    if not length.isdigit():
        raise HttpError(400, "malformed content-length")
    size = int(length)
    if size == 0:
        return b""
    _continue(writer, lower, http11)
    return await reader.readexactly(size)


def _continue(writer: asyncio.StreamWriter, lower: dict[str, str], http11: bool) -> None:
    if http11 and lower.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")


def render_head(status: int, headers: Headers) -> bytes:
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))]
    lines.extend(f"{name}: {value}\r\n".encode("latin-1") for name, value in headers)
    lines.append(b"\r\n")
    return b"".join(lines)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class Responder:
    """Writes the answer to one request on its connection."""

    __slots__ = ("_reader", "_writer", "http11", "keep_alive")

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, incoming: Incoming
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.http11 = incoming.http11
        self.keep_alive = incoming.keep_alive

    def _connection_header(self, keep: bool) -> tuple[str, str]:
        return ("connection", "keep-alive" if keep else "close")

    async def send(
        self,
        status: int,
        body: bytes,
        *,
        headers: Headers = (),
        content_type: str | None = "application/json",
        compress: bool = False,
        close: bool = False,
    ) -> bool:
        """Send a complete response; returns whether the connection stays open."""
        if compress:
            body = gzip.compress(body, compresslevel=6, mtime=0)
        keep = self.keep_alive and not close
        fields: list[tuple[str, str]] = []
        if content_type is not None:
            fields.append(("content-type", content_type))
        if compress:
            fields.append(("content-encoding", "gzip"))
        fields.append(("content-length", str(len(body))))
        fields.extend(headers)
        fields.append(self._connection_header(keep))
        self._writer.write(render_head(status, fields) + body)
        await self._writer.drain()
        return keep

    async def send_partial(self, status: int, body: bytes, *, headers: Headers = ()) -> bool:
        """Announce the full body length, send half of it, then reset the connection."""
        fields = [("content-type", "application/json"), ("content-length", str(len(body)))]
        fields.extend(headers)
        self._writer.write(render_head(status, fields) + body[: len(body) // 2])
        await self._writer.drain()
        await asyncio.sleep(RESET_GRACE_SECONDS)
        self.reset()
        return False

    async def stream(
        self,
        events: Sequence[bytes],
        *,
        headers: Headers = (),
        delay: float = 0.0,
        compress: bool = False,
        abort_after: int | None = None,
        close: bool = False,
    ) -> bool:
        """Stream SSE `events` (already framed). With `delay`, each event is flushed and
        followed by a pause; without, the whole stream goes out in one write. `abort_after`
        sends that many events and then resets the connection."""
        chunked = self.http11
        keep = self.keep_alive and chunked and not close and abort_after is None
        fields = [
            ("content-type", "text/event-stream; charset=utf-8"),
            ("cache-control", "no-cache"),
        ]
        if chunked:
            fields.append(("transfer-encoding", "chunked"))
        if compress:
            fields.append(("content-encoding", "gzip"))
        fields.extend(headers)
        fields.append(self._connection_header(keep))
        frame = _chunk if chunked else bytes
        packer = zlib.compressobj(6, zlib.DEFLATED, 31) if compress else None
        pending = [render_head(200, fields)]
        count = len(events) if abort_after is None else min(abort_after, len(events))
        for index in range(count):
            if delay > 0 and index:
                await self._flush(pending)
                await asyncio.sleep(delay)
            data = events[index]
            if packer is not None:
                data = packer.compress(data) + packer.flush(zlib.Z_SYNC_FLUSH)
            pending.append(frame(data))
        if abort_after is not None:
            await self._flush(pending)
            await asyncio.sleep(RESET_GRACE_SECONDS)
            self.reset()
            return False
        if packer is not None:
            pending.append(frame(packer.flush()))
        if chunked:
            pending.append(b"0\r\n\r\n")
        await self._flush(pending)
        return keep

    async def drip(
        self,
        status: int,
        body: bytes,
        *,
        headers: Headers = (),
        content_type: str = "application/json",
        delay: float = 0.002,
    ) -> bool:
        """Send `body` one byte per write (chunked on HTTP/1.1), `delay` seconds apart."""
        chunked = self.http11
        fields = [("content-type", content_type)]
        length = ("content-length", str(len(body)))
        fields.append(("transfer-encoding", "chunked") if chunked else length)
        fields.extend(headers)
        keep = self.keep_alive and chunked
        fields.append(self._connection_header(keep))
        self._writer.write(render_head(status, fields))
        await self._writer.drain()
        for index in range(len(body)):
            byte = body[index : index + 1]
            self._writer.write(_chunk(byte) if chunked else byte)
            await self._writer.drain()
            await asyncio.sleep(delay)
        if chunked:
            self._writer.write(b"0\r\n\r\n")
            await self._writer.drain()
        return keep

    async def _flush(self, pending: list[bytes]) -> None:
        self._writer.write(b"".join(pending))
        pending.clear()
        await self._writer.drain()

    def reset(self) -> None:
        """Abort the connection with a TCP RST, discarding anything not yet sent."""
        sock = self._writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
            except OSError as exc:
                log.debug("could not set SO_LINGER before reset: %s", exc)
        self._writer.transport.abort()

    async def wait_disconnect(self) -> bool:
        """Never answer: read and drop input until the client goes away."""
        try:
            while await self._reader.read(65536):
                continue
        except ConnectionError as exc:
            log.debug("client went away while hanging: %s", exc)
        return False


async def send_http_error(writer: asyncio.StreamWriter, error: HttpError) -> None:
    body = orjson.dumps({"error": {"type": "http_error", "message": error.message}})
    fields = [
        ("content-type", "application/json"),
        ("content-length", str(len(body))),
        ("connection", "close"),
    ]
    writer.write(render_head(error.status, fields) + body)
    await writer.drain()
