"""Helpers of the hardening battery: raw exchanges, provider-shaped error checks, a recording
TCP tap between the gateway and the fake, and database consistency checks."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from schema.models import Interception, TokenUsage

IID = "x-aibridge-interception-id"
MESSAGES = "/api/v2/aibridge/anthropic/v1/messages"
CHAT = "/api/v2/aibridge/openai/v1/chat/completions"


# -- raw HTTP/1.1 ----------------------------------------------------------------------------


@dataclass
class Reply:
    """One response read off a raw socket: what the client really got."""

    status: int
    headers: dict[str, str]
    body: bytes
    complete: bool
    """False when the connection ended (or was reset) before the framed end of the body."""
    raw: bytes = b""

    def json(self) -> Any:
        return orjson.loads(self.body)


def parse_response(data: bytes, *, eof: bool = True) -> Reply:
    """Parse an HTTP/1.1 response: Content-Length, chunked or close-delimited body."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return Reply(0, {}, b"", False, data)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ")
    status = int(parts[1]) if status_line.startswith("HTTP/") and len(parts) > 1 else 0
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body, complete = dechunk(rest)
    elif "content-length" in headers:
        size = int(headers["content-length"])
        body, complete = rest[:size], len(rest) >= size
    else:
        body, complete = rest, eof
    return Reply(status, headers, body, complete, data)


def dechunk(data: bytes) -> tuple[bytes, bool]:
    """The body of a chunked message, and whether its last chunk arrived."""
    out = bytearray()
    pos = 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return bytes(out), False
        size = int(data[pos:end].split(b";")[0] or b"0", 16)
        if size == 0:
            return bytes(out), True
        chunk = data[end + 2 : end + 2 + size]
        out += chunk
        if len(chunk) < size:
            return bytes(out), False
        pos = end + 2 + size + 2


def exchange(port: int, data: bytes, *, timeout: float = 15.0) -> Reply:
    """Send raw bytes, read until the server closes (or resets) the connection."""
    received = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
                received += chunk
            else:
                raise TimeoutError(
                    f"no end of response within {timeout}s: {bytes(received[:300])!r}"
                )
        except ConnectionResetError:
            pass
    return parse_response(bytes(received))


def request_bytes(
    method: str,
    path: str,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    *,
    close: bool = True,
    length: bool = True,
) -> bytes:
    """A request as a hostile client would write it (no validation at all)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if close:
        lines.append("Connection: close")
    lines += [f"{k}: {v}" for k, v in headers]
    if length and body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


# -- error shapes ----------------------------------------------------------------------------


def anthropic_error(reply: Reply, status: int, err_type: str) -> str:
    """The message of an Anthropic-shaped error; asserts status, content type and shape."""
    assert reply.status == status, (reply.status, reply.body[:300])
    assert reply.headers.get("content-type", "").startswith("application/json"), reply.headers
    body = reply.json()
    assert body["type"] == "error" and body["error"]["type"] == err_type, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return str(body["error"]["message"])


def openai_error(reply: Reply, status: int, code: str | None = None) -> str:
    assert reply.status == status, (reply.status, reply.body[:300])
    assert reply.headers.get("content-type", "").startswith("application/json"), reply.headers
    body = reply.json()
    assert set(body["error"]) >= {"message", "type", "code"}, body
    if code is not None:
        assert body["error"]["code"] == code, body
    return str(body["error"]["message"])


def error_page(reply: Reply, status: int) -> str:
    """mitmproxy's protocol-error page, replaced by ours: JSON both SDKs parse."""
    assert reply.status == status, (reply.status, reply.body[:300])
    body = reply.json()
    assert body["type"] == "error" and body["error"]["message"].startswith("aibridge: "), body
    return str(body["error"]["message"])


# -- database ----------------------------------------------------------------------------------


def interceptions(engine: Engine) -> list[Interception]:
    with Session(engine) as s:
        return list(s.execute(select(Interception)).scalars())


def count_rows(engine: Engine, model: Any = Interception) -> int:
    with Session(engine) as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def usages_of(engine: Engine, iid: str | uuid.UUID) -> list[TokenUsage]:
    key = uuid.UUID(str(iid))
    with Session(engine) as s:
        stmt = select(TokenUsage).where(TokenUsage.interception_id == key)
        return list(s.execute(stmt).scalars())


def wait_closed(
    engine: Engine, ids: Iterable[str], *, timeout: float = 30.0
) -> dict[str, Interception]:
    """Wait until every interception in `ids` is in the database and closed."""
    want = {str(i) for i in ids}
    deadline = time.monotonic() + timeout
    while True:
        rows = {str(r.id): r for r in interceptions(engine)}
        missing = want - rows.keys()
        still_open = [i for i in want & rows.keys() if rows[i].ended_at is None]
        if not missing and not still_open:
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(
                f"missing {sorted(missing)[:5]} ({len(missing)}), "
                f"open {still_open[:5]} ({len(still_open)})"
            )
        time.sleep(0.1)


def assert_consistent(
    engine: Engine, answered: Iterable[str], *, extra_allowed: int = 0, timeout: float = 30.0
) -> dict[str, Interception]:
    """Every answered request has exactly one closed interception; at most `extra_allowed`
    other rows (requests cut in flight), all closed too."""
    answered = list(answered)
    assert len(answered) == len(set(answered)), "an interception id was handed out twice"
    rows = wait_closed(engine, answered, timeout=timeout)
    deadline = time.monotonic() + timeout
    while any(r.ended_at is None for r in rows.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
        rows = {str(r.id): r for r in interceptions(engine)}
    extra = set(rows) - set(answered)
    assert len(extra) <= extra_allowed, (len(extra), extra_allowed)
    open_ = [i for i, r in rows.items() if r.ended_at is None]
    assert not open_, f"open interceptions: {open_[:5]}"
    assert len(rows) == count_rows(engine)
    return rows


# -- a recording tap between the gateway and the fake -----------------------------------------


@dataclass
class Tapped:
    """One upstream connection seen by the tap: bytes each way, in order."""

    to_upstream: bytearray = field(default_factory=bytearray)
    from_upstream: bytearray = field(default_factory=bytearray)


class Wiretap:
    """A loopback TCP forwarder that keeps every byte the upstream sent (per connection)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.connections: list[Tapped] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def start(self) -> Wiretap:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tapped = Tapped()
        self.connections.append(tapped)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return

        async def pipe(
            src: asyncio.StreamReader, dst: asyncio.StreamWriter, log: bytearray
        ) -> None:
            try:
                while data := await src.read(1 << 20):
                    log += data
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                dst.transport.abort()  # pass a reset on as a reset
                return
            with contextlib.suppress(OSError):
                dst.write_eof()

        await asyncio.gather(
            pipe(reader, up_writer, tapped.to_upstream),
            pipe(up_reader, writer, tapped.from_upstream),
        )
        for w in (writer, up_writer):
            w.close()

    def clear(self) -> None:
        self.connections.clear()

    def upstream_bodies(self) -> list[Reply]:
        """Every response the upstream sent, parsed (one per connection in these tests)."""
        return [parse_response(bytes(c.from_upstream)) for c in self.connections if c.from_upstream]

    def stop(self) -> None:
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@contextlib.contextmanager
def wiretap(target_port: int) -> Iterator[Wiretap]:
    tap = Wiretap(target_port).start()
    try:
        yield tap
    finally:
        tap.stop()


# -- process ---------------------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (Linux /proc)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def hwm_bytes(pid: int) -> int:
    """Peak resident memory of a process (VmHWM)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for {pid}")
