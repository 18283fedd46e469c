"""Streams pass through chunk by chunk as they arrive (no buffering) and byte for byte."""

from __future__ import annotations

import time

import httpx

from tests.e2e.conftest import Setup

BODY = {"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": True,
        "messages": [{"role": "user", "content": "THINK and TOOL please"}],
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]}


def _stream(url: str, headers: dict[str, str]) -> tuple[bytes, float, float]:
    started = time.monotonic()
    first = None
    data = b""
    with httpx.Client(timeout=30) as client, client.stream("POST", url, json=BODY,
                                                           headers=headers) as r:
        assert r.status_code == 200
        for chunk in r.iter_raw():
            if first is None:
                first = time.monotonic() - started
            data += chunk
    assert first is not None
    return data, first, time.monotonic() - started


def test_byte_for_byte_and_not_buffered(shared: Setup) -> None:
    slow = {"x-fake-delay": "0.3", "x-fake-events": "8", "anthropic-version": "2023-06-01"}
    direct, _, _ = _stream(f"{shared.fake.base_url}/v1/messages",
                           {**slow, "x-api-key": "sk-ant-direct"})
    via, first, total = _stream(shared.gw.url("anthropic", "/v1/messages"),
                                {**slow, "authorization": f"Bearer {shared.token}"})
    # Same deterministic answer from the fake: only its id counters (msg_, toolu_) differ.
    import re

    normalise = lambda b: re.sub(rb"_fake_\d+", b"_fake_N", b)  # noqa: E731
    assert normalise(via) == normalise(direct)
    assert total > 2.0, "the fake should have taken a while"
    assert first < total / 3, f"first bytes after {first:.2f}s of {total:.2f}s: buffered"
