"""A minimal HTTP/1.1 keep-alive load generator on asyncio streams.

One connection per concurrent worker; each worker sends the same prepared request bytes,
reads the whole answer (Content-Length or chunked), and records its latency, and for streams
the time to the first body byte and the number of SSE events. At the deadline workers stop
issuing but finish the request in flight, so every answer the target sent is counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field

READ_LIMIT = 1 << 22
GRACE_SECONDS = 15.0
Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]
NET_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
              ValueError, IndexError)


@dataclass(frozen=True)
class Load:
    port: int
    payload: bytes
    concurrency: int
    duration: float
    max_requests: int | None = None
    timeout: float = 60.0
    stagger: float = 0.0  # worker i starts i * stagger seconds late (streams: no lockstep)


@dataclass
class Tally:
    """What the workers saw; latencies in seconds."""

    ok: int = 0
    non2xx: int = 0
    errors: int = 0
    cut: int = 0
    issued: int = 0
    events: int = 0
    latencies: list[float] = field(default_factory=list)
    ttfb: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    started: float = 0.0
    finished: float = 0.0

    @property
    def answered(self) -> int:
        return self.ok + self.non2xx

    @property
    def elapsed(self) -> float:
        return max(self.finished - self.started, 1e-9)

    def record(self, status: int, latency: float, ttfb: float | None, events: int) -> None:
        if 200 <= status < 300:
            self.ok += 1
        else:
            self.non2xx += 1
            self.statuses[str(status)] += 1
        self.latencies.append(latency)
        if ttfb is not None:
            self.ttfb.append(ttfb)
        self.events += events
        self.finished = time.perf_counter()

    def failed(self, exc: BaseException) -> None:
        self.errors += 1
        self.statuses[type(exc).__name__] += 1
        self.finished = time.perf_counter()


async def connect(port: int) -> Conn:
    return await asyncio.open_connection("127.0.0.1", port, limit=READ_LIMIT)


def close(conn: Conn | None) -> None:
    if conn is not None:
        conn[1].close()


def _content_length(lower: bytes) -> int | None:
    at = lower.find(b"\r\ncontent-length:")
    if at < 0:
        return None
    end = lower.find(b"\r\n", at + 2)
    return int(lower[at + 17:end])


async def _read_chunked(reader: asyncio.StreamReader) -> tuple[float, int]:
    """Read a chunked body: (time of the first chunk, SSE events seen)."""
    first = 0.0
    events = 0
    newline_before = False
    while True:
        line = await reader.readuntil(b"\r\n")
        if not first:
            first = time.perf_counter()
        size = int(line.split(b";", 1)[0], 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass
            return first, events
        data = await reader.readexactly(size + 2)
        events += data.count(b"\n\n", 0, size)
        if newline_before and data[:1] == b"\n":
            events += 1
        newline_before = data[size - 1:size] == b"\n"


async def exchange(conn: Conn, payload: bytes) -> tuple[int, bool, float, int, bytes]:
    """Send one request, read the whole answer: (status, keep-alive, first body byte time,
    SSE events, body when not chunked)."""
    reader, writer = conn
    writer.write(payload)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    keep = b"\r\nconnection: close" not in lower
    if b"\r\ntransfer-encoding: chunked" in lower:
        first, events = await _read_chunked(reader)
        return status, keep, first, events, b""
    first = time.perf_counter()
    length = _content_length(lower)
    if length is None:
        body = await reader.read()
        keep = False
    else:
        body = await reader.readexactly(length) if length else b""
    return status, keep, first, body.count(b"\n\n"), body


def _capped(tally: Tally, load: Load) -> bool:
    return load.max_requests is not None and tally.issued >= load.max_requests


async def _worker(load: Load, tally: Tally, conn: Conn | None, deadline: float,
                  delay: float) -> None:
    try:
        if delay:
            await asyncio.sleep(delay)
        while time.perf_counter() < deadline and not _capped(tally, load):
            if conn is None:
                try:
                    conn = await connect(load.port)
                except OSError as exc:
                    tally.failed(exc)
                    await asyncio.sleep(0.05)
                    continue
            tally.issued += 1
            started = time.perf_counter()
            try:
                async with asyncio.timeout(load.timeout):
                    status, keep, first, events, _ = await exchange(conn, load.payload)
            except NET_ERRORS as exc:
                tally.failed(exc)
                close(conn)
                conn = None
                continue
            tally.record(status, time.perf_counter() - started, first - started, events)
            if not keep:
                close(conn)
                conn = None
    finally:
        close(conn)


async def _open_all(load: Load, tally: Tally) -> list[Conn | None]:
    results = await asyncio.gather(*(connect(load.port) for _ in range(load.concurrency)),
                                   return_exceptions=True)
    conns: list[Conn | None] = []
    for result in results:
        if isinstance(result, BaseException):
            tally.failed(result)
            conns.append(None)
        else:
            conns.append(result)
    return conns


async def run_load(load: Load) -> Tally:
    """Drive `load.concurrency` keep-alive connections for `load.duration` seconds."""
    tally = Tally()
    conns = await _open_all(load, tally)
    tally.started = tally.finished = time.perf_counter()
    deadline = tally.started + load.duration
    tasks = [asyncio.ensure_future(_worker(load, tally, conn, deadline, i * load.stagger))
             for i, conn in enumerate(conns)]
    _done, pending = await asyncio.wait(tasks, timeout=load.duration + GRACE_SECONDS)
    for task in pending:
        task.cancel()
        tally.cut += 1
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*tasks, return_exceptions=True)
    return tally


async def one_request(port: int, payload: bytes, timeout: float = 30.0) -> tuple[int, bytes]:
    """One request on a fresh connection: (status, body when not chunked)."""
    conn = await connect(port)
    try:
        async with asyncio.timeout(timeout):
            status, _keep, _first, _events, body = await exchange(conn, payload)
    finally:
        close(conn)
    return status, body
