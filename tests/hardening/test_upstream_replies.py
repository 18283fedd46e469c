"""Broken upstream replies (the fake's BADSSE, NODONE, BADUTF8, TRUNCJSON, WRONGCT, REDIRECT,
DRIP, BIGEVENT, RESET, RESETMID triggers). Each time: the client gets exactly the bytes the
upstream sent (compared with a tap on the upstream connection), or a 502 JSON when nothing came;
the interception is closed with a sensible status; and the next normal request succeeds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.conftest import Setup
from tests.hardening.support import (
    IID,
    Reply,
    Wiretap,
    exchange,
    interceptions,
    request_bytes,
    wait_closed,
    wiretap,
)

# (provider, sub-path, body builder): the tapped providers added below
APIS = {
    "messages": ("tap-anthropic", "/v1/messages"),
    "chat": ("tap-openai", "/v1/chat/completions"),
    "responses": ("tap-openai", "/v1/responses"),
}


def _body(api: str, text: str, stream: bool) -> dict[str, Any]:
    if api == "messages":
        return {
            "model": "m",
            "max_tokens": 5,
            "stream": stream,
            "messages": [{"role": "user", "content": text}],
        }
    if api == "chat":
        return {
            "model": "m",
            "stream": stream,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": text}],
        }
    return {"model": "m", "stream": stream, "input": text}


@dataclass
class Tapped:
    setup: Setup
    tap: Wiretap

    def send(
        self,
        api: str,
        text: str,
        stream: bool,
        headers: dict[str, str] | None = None,
        timeout: float = 60.0,
    ) -> Reply:
        provider, path = APIS[api]
        self.tap.clear()
        self.setup.fake.clear()
        hdrs = [
            ("Authorization", f"Bearer {self.setup.token}"),
            ("Content-Type", "application/json"),
            *(headers or {}).items(),
        ]
        body = json.dumps(_body(api, text, stream)).encode()
        data = request_bytes("POST", f"/api/v2/aibridge/{provider}{path}", hdrs, body)
        return exchange(self.setup.gw.port, data, timeout=timeout)

    def upstream(self) -> Reply:
        (reply,) = self.tap.upstream_bodies()
        return reply

    def record(self, reply: Reply) -> Any:
        iid = reply.headers[IID]
        return wait_closed(self.setup.gw.admin.engine, [iid])[iid]

    def still_serves(self, api: str) -> None:
        reply = self.send(api, "hello", stream=True)
        assert reply.status == 200 and reply.complete, reply.raw[:300]
        assert reply.body == self.upstream().body
        assert self.record(reply).status == "completed"


@pytest.fixture(scope="module")
def tapped_module(hard: Setup) -> Iterator[Tapped]:
    with wiretap(hard.fake.port) as tap:
        base = f"http://127.0.0.1:{tap.port}"
        hard.gw.admin.add_provider("tap-anthropic", "anthropic", base, ["sk-tap-anthropic-1"])
        hard.gw.admin.add_provider("tap-openai", "openai", f"{base}/v1", ["sk-tap-openai-1"])
        hard.gw.sync()
        yield Tapped(hard, tap)


@pytest.fixture
def t(tapped_module: Tapped) -> Tapped:
    tapped_module.tap.clear()
    tapped_module.setup.fake.clear()
    return tapped_module


CASES = [
    # trigger, stream, expected status, parsed, upstream status
    ("BADSSE", True, "completed", True, 200),
    ("NODONE", True, "completed", True, 200),
    ("BADUTF8", True, "completed", True, 200),
    ("GZIP BADUTF8", True, "completed", True, 200),
    ("TRUNCJSON", False, "completed", False, 200),
    ("WRONGCT", False, "completed", None, 200),
    ("WRONGCT", True, "completed", False, 200),
    ("REDIRECT", False, "completed", True, 307),
    ("REDIRECT", True, "completed", True, 307),
    ("ERR429", True, "upstream_error", True, 429),
    ("ERR500 GZIP", False, "upstream_error", True, 500),
    ("ERRMID", True, "upstream_error", True, 200),
]


@pytest.mark.parametrize("api", ["messages", "chat", "responses"])
@pytest.mark.parametrize(
    "trigger,stream,status,parsed,upstream_status",
    CASES,
    ids=[f"{c[0].replace(' ', '+')}-{'stream' if c[1] else 'block'}" for c in CASES],
)
def test_client_gets_the_upstream_bytes_and_the_record_is_closed(
    t: Tapped,
    api: str,
    trigger: str,
    stream: bool,
    status: str,
    parsed: bool | None,
    upstream_status: int,
) -> None:
    reply = t.send(api, trigger, stream)
    up = t.upstream()
    assert reply.status == up.status == upstream_status
    assert reply.complete and up.complete
    assert reply.body == up.body  # byte for byte (content-encoding untouched)
    for name in ("content-type", "content-encoding", "location", "retry-after"):
        assert reply.headers.get(name) == up.headers.get(name), name
    if trigger.startswith("REDIRECT"):
        # passed to the client, never followed: one upstream request, none to the Location
        assert len(t.setup.fake.requests) == 1
        assert reply.headers["location"].endswith("?redirected=1")
    rec = t.record(reply)
    assert rec.status == status and rec.upstream_status == upstream_status
    sse = stream and "WRONGCT" not in trigger and upstream_status < 300
    assert rec.streamed is sse
    if parsed is not None:
        assert rec.parsed is parsed
    if status == "upstream_error":
        assert rec.error_message
    t.still_serves(api)


@pytest.mark.parametrize("api", ["messages", "chat"])
def test_slow_drip_arrives_whole(t: Tapped, api: str) -> None:
    reply = t.send(api, "DRIP", True, {"x-fake-events": "3"})
    up = t.upstream()
    assert reply.status == 200 and reply.complete
    assert reply.body == up.body
    rec = t.record(reply)
    assert rec.status == "completed" and rec.parsed is True and rec.streamed is True
    if api == "messages":
        from tests.hardening.support import usages_of

        assert len(usages_of(t.setup.gw.admin.engine, rec.id)) == 1
    t.still_serves(api)


def test_slow_blocking_drip_arrives_whole(t: Tapped) -> None:
    reply = t.send("chat", "DRIP", False)
    assert reply.status == 200 and reply.complete
    assert reply.body == t.upstream().body
    assert t.record(reply).parsed is True


@pytest.mark.parametrize("api", ["messages", "chat"])
def test_50mb_event_passes_through(t: Tapped, api: str) -> None:
    reply = t.send(api, "BIGEVENT", True, {"x-fake-bigevent-mb": "50"}, timeout=120)
    up = t.upstream()
    assert reply.status == 200 and reply.complete
    assert len(reply.body) > 50 * 1024 * 1024
    assert reply.body == up.body
    rec = t.record(reply)
    assert rec.status == "completed" and rec.streamed is True
    t.still_serves(api)


@pytest.mark.parametrize("api", ["messages", "chat", "responses"])
@pytest.mark.parametrize("stream", [True, False])
def test_reset_before_headers_is_502_json(t: Tapped, api: str, stream: bool) -> None:
    before = {str(r.id) for r in interceptions(t.setup.gw.admin.engine)}
    reply = t.send(api, "RESET", stream)
    assert reply.status == 502, reply.raw[:300]
    body = reply.json()
    assert body["type"] == "error" and "upstream unreachable" in body["error"]["message"]
    assert t.tap.upstream_bodies() == []  # nothing came from the upstream
    # the interception is closed as an upstream error
    engine = t.setup.gw.admin.engine
    new = _new_rows(engine, before)
    assert len(new) == 1 and new[0].status == "upstream_error", new
    assert new[0].error_message and new[0].upstream_status is None
    t.still_serves(api)


def _new_rows(engine: Any, before: set[str], timeout: float = 10.0) -> list[Any]:
    import time

    deadline = time.monotonic() + timeout
    while True:
        rows = [r for r in interceptions(engine) if str(r.id) not in before]
        if rows and all(r.ended_at is not None for r in rows):
            return rows
        if time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


@pytest.mark.parametrize("api", ["messages", "chat", "responses"])
@pytest.mark.parametrize("stream", [True, False])
def test_reset_after_headers_cuts_the_client_after_the_same_bytes(
    t: Tapped, api: str, stream: bool
) -> None:
    before = {str(r.id) for r in interceptions(t.setup.gw.admin.engine)}
    reply = t.send(api, "RESETMID", stream)
    up = t.upstream()
    assert up.status == 200 and not up.complete
    if stream:
        assert reply.status == 200 and not reply.complete
        assert reply.body == up.body  # every byte that came, and no more
    else:
        # a blocking body is handed over whole or not at all: nothing reached the client yet
        assert reply.status == 502, reply.raw[:300]
        assert "peer closed connection" in reply.json()["error"]["message"]
    (rec,) = _new_rows(t.setup.gw.admin.engine, before)
    assert rec.status == "upstream_error" and rec.error_message and rec.ended_at
    t.still_serves(api)
