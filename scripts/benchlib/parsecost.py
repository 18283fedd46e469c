"""What parsing a stream costs aibridge, next to the CPU the proxy spends per stream.

The fake provider's 50-event answers (Chat Completions and Anthropic Messages, as aibridge
routes them) are fetched once, chunk by chunk as they arrive, then fed through the same
incremental parsers the gateway taps the stream with, in this process, many times over.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from gateway.providers.base import WireFormat
from gateway.providers.chat import ChatWire
from gateway.providers.messages import MessagesWire

from .workloads import STREAM_50, Endpoints, Workload, knob_headers, request_body

REPEAT = 300


@dataclass(frozen=True)
class ParseCost:
    api: str
    events_bytes: int
    chunks: int
    us_per_stream: float

    def to_json(self) -> dict[str, Any]:
        return {"api": self.api, "bytes": self.events_bytes, "chunks": self.chunks,
                "us_per_stream": round(self.us_per_stream, 1)}


def _fetch(port: int, endpoints: Endpoints, workload: Workload, delay: float) -> list[bytes]:
    route = endpoints.route(workload.api)
    headers = dict(route.headers) | dict(knob_headers(workload, delay))
    headers["content-type"] = "application/json"
    with httpx.Client(timeout=30) as client, client.stream(
        "POST", f"http://127.0.0.1:{port}{route.path}", content=request_body(workload),
        headers=headers,
    ) as r:
        r.raise_for_status()
        return [c for c in r.iter_raw() if c]


def _time(wire: WireFormat, chunks: list[bytes]) -> float:
    start = time.perf_counter()
    for _ in range(REPEAT):
        parser = wire.stream_parser()
        for chunk in chunks:
            parser.feed(chunk)
        parser.feed(b"")
    return (time.perf_counter() - start) / REPEAT * 1e6


def measure(fake_port: int, endpoints: Endpoints, delay: float) -> list[ParseCost]:
    out = []
    for api, wire in (("chat", ChatWire()), ("messages", MessagesWire())):
        workload = Workload(f"stream-50-{api}", api, STREAM_50.body_bytes, stream=True)
        chunks = _fetch(fake_port, endpoints, workload, delay)
        records = []
        parser = wire.stream_parser()
        for chunk in chunks:
            records += parser.feed(chunk)
        records += parser.feed(b"")
        if not records:
            raise RuntimeError(f"the {api} parser found nothing in the fake's stream")
        out.append(ParseCost(api, sum(map(len, chunks)), len(chunks), _time(wire, chunks)))
    return out
