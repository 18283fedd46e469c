"""The Dumps addon on real flows, after Paths -> Auth -> Routing -> Credentials -> Recording."""

from __future__ import annotations

import logging
import os
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest
from mitmproxy import http

from addons.auth import Auth
from addons.credentials import Credentials
from addons.dumps import Dumps, compose_tap
from addons.paths import Paths
from addons.recording import Recording
from addons.routing import Routing
from gateway.dumps import FILE_NAME, DumpWriter
from gateway.settings import load_settings
from tests.addons.conftest import World, gateway_flow

SSE = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1",'
    b'"model":"m","usage":{"input_tokens":7,"output_tokens":1}}}\n\n',
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"text","text":""}}\n\n',
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"Hi"}}\n\n',
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
    b'"usage":{"output_tokens":5}}\n\n',
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
)


def chain(world: World, dumps: Dumps) -> list[Any]:
    g = world.gateway
    return [Paths(g), Auth(g), Routing(g), Credentials(g), Recording(g), dumps]


def run(addons: Iterable[Any], hook: str, f: http.HTTPFlow) -> None:
    for addon in addons:
        if hasattr(addon, hook):
            getattr(addon, hook)(f)


def send(addons: list[Any], f: http.HTTPFlow) -> None:
    run(addons, "requestheaders", f)
    run(addons, "request", f)


def answer(
    addons: list[Any], f: http.HTTPFlow, resp: http.Response, chunks: Iterable[bytes] = ()
) -> list[Any]:
    """The upstream answers: headers hooks, the stream callable (if set), then `response`."""
    f.response = resp
    run(addons, "responseheaders", f)
    out = []
    if f.response.stream:
        tap = f.response.stream
        for chunk in [*chunks, b""]:
            out.append(tap(chunk) if callable(tap) else chunk)
    run(addons, "response", f)
    return out


HELLO = {"model": "claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


def messages_flow(world: World, body: dict[str, Any] | None = None) -> http.HTTPFlow:
    headers = {"authorization": f"Bearer {world.token}", "content-type": "application/json"}
    path = "/api/v2/aibridge/anthropic/v1/messages"
    return gateway_flow(path, headers=headers, body=orjson.dumps(body or HELLO))


@pytest.fixture
def dumps(world: World, tmp_path: Path) -> Dumps:
    addon = Dumps(world.gateway)
    addon.writer = DumpWriter(tmp_path / "dumps")
    return addon


def files(base: Path) -> list[Path]:
    return sorted(p for p in base.rglob("*") if p.is_file())


def pretty(body: bytes) -> bytes:
    return orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2) + b"\n"


def test_blocking_layout_and_wire_format(world: World, dumps: Dumps, tmp_path: Path) -> None:
    addons = chain(world, dumps)
    f = messages_flow(world)
    send(addons, f)
    fctx = world.gateway.context(f)
    assert fctx is not None
    body = b'{"id":"msg_1","type":"message","usage":{"input_tokens":3,"output_tokens":4}}'
    answer(addons, f, http.Response.make(200, body, {"content-type": "application/json"}))
    base = tmp_path / "dumps"
    req, resp = files(base)
    assert req.parent == base / "anthropic" and resp.parent == base / "anthropic"
    iid = str(fctx.interception_id)
    m = FILE_NAME.fullmatch(req.name)
    assert m and m["id"] == iid and m["kind"] == "req"
    assert resp.name == req.name.replace(".req.http", ".resp.http")
    head, body_part = req.read_bytes().split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /v1/messages HTTP/1.1"
    assert "x-api-key: sk-a...6789" in lines
    assert world.key.encode() not in req.read_bytes()
    assert not any(line.lower().startswith("authorization") for line in lines)
    assert body_part == pretty(f.request.content or b"")
    rhead, rbody = resp.read_bytes().split(b"\r\n\r\n", 1)
    rlines = rhead.decode().split("\r\n")
    assert rlines[0] == "HTTP/1.1 200 OK"
    assert f"X-AIBridge-Interception-Id: {iid}" in rlines
    assert rbody == pretty(body)


def test_passthrough_goes_to_its_own_folder(world: World, dumps: Dumps, tmp_path: Path) -> None:
    addons = chain(world, dumps)
    f = gateway_flow(
        "/api/v2/aibridge/anthropic/v1/models", "GET", headers={"x-api-key": world.token}
    )
    send(addons, f)
    answer(addons, f, http.Response.make(200, b'{"data":[]}', {"content-type": "application/json"}))
    found = files(tmp_path / "dumps")
    assert [p.parent for p in found] == [tmp_path / "dumps" / "anthropic" / "passthrough"] * 2
    assert found[0].read_bytes().startswith(b"GET /v1/models HTTP/1.1\r\n")


def test_sse_written_as_it_arrives_and_recording_still_fed(
    world: World, dumps: Dumps, tmp_path: Path
) -> None:
    addons = chain(world, dumps)
    f = messages_flow(world, {**HELLO, "stream": True})
    send(addons, f)
    f.response = http.Response.make(200, b"", {"content-type": "text/event-stream"})
    run(addons, "responseheaders", f)
    tap = f.response.stream
    assert callable(tap)
    resp_file = next(p for p in files(tmp_path / "dumps") if p.name.endswith(".resp.http"))
    assert tap(SSE[0]) == SSE[0]
    assert resp_file.read_bytes().endswith(SSE[0])  # on disk before the next chunk arrives
    half = len(SSE[1]) // 2
    assert tap(SSE[1][:half]) == SSE[1][:half]
    assert tap(SSE[1][half:]) == SSE[1][half:]
    for chunk in SSE[2:]:
        assert tap(chunk) == chunk
    assert tap(b"") == b""
    run(addons, "response", f)
    assert resp_file.read_bytes().split(b"\r\n\r\n", 1)[1] == b"".join(SSE)
    fctx = world.gateway.context(f)
    assert fctx is not None and fctx.session is not None and fctx.session.ended
    assert world.runtime.flush(10)
    from sqlmodel import Session, select

    from schema.models import TokenUsage

    with Session(world.runtime.engine) as s:  # type: ignore[arg-type]
        usage = s.exec(
            select(TokenUsage).where(TokenUsage.interception_id == fctx.interception_id)
        ).all()
    assert [(u.input_tokens, u.output_tokens) for u in usage] == [(7, 5)]


def test_off_costs_nothing_and_keeps_recordings_tap(world: World, tmp_path: Path) -> None:
    dumps = Dumps(world.gateway)
    dumps.running()  # dump_dir is empty in this world
    assert dumps.writer is None
    addons = chain(world, dumps)
    f = messages_flow(world)
    send(addons, f)
    f.response = http.Response.make(200, b"", {"content-type": "text/event-stream"})
    run(addons[:-1], "responseheaders", f)
    recording_tap = f.response.stream
    dumps.responseheaders(f)
    assert f.response.stream is recording_tap
    assert not (tmp_path / "dumps").exists()


def test_running_reads_the_dump_dir_setting(world: World, tmp_path: Path) -> None:
    env = {"AI_GATEWAY_DATA_DIR": str(tmp_path / "data"), "AI_GATEWAY_DUMP_DIR": f"{tmp_path}/here"}
    world.gateway.loaded = load_settings(environ=env)
    dumps = Dumps(world.gateway)
    dumps.running()
    assert dumps.writer is not None and dumps.writer.base == tmp_path / "here"


def test_compose_tap_feeds_both_and_returns_inner_result() -> None:
    seen: list[bytes] = []
    tap = compose_tap(lambda c: c.upper(), seen.append)
    assert tap(b"ab") == b"AB" and seen == [b"ab"]
    plain = compose_tap(None, seen.append)
    assert plain(b"cd") == b"cd" and seen == [b"ab", b"cd"]


def test_permissions(world: World, dumps: Dumps, tmp_path: Path) -> None:
    addons = chain(world, dumps)
    for path in ("/v1/messages", "/v1/models"):
        f = (
            messages_flow(world)
            if path == "/v1/messages"
            else gateway_flow(
                f"/api/v2/aibridge/anthropic{path}", "GET", headers={"x-api-key": world.token}
            )
        )
        send(addons, f)
        answer(addons, f, http.Response.make(200, b"{}", {"content-type": "application/json"}))
    base = tmp_path / "dumps"
    dirs = [base, base / "anthropic", base / "anthropic" / "passthrough"]
    assert [stat.S_IMODE(d.stat().st_mode) for d in dirs] == [0o700] * 3
    found = files(base)
    assert len(found) == 4
    assert {stat.S_IMODE(p.stat().st_mode) for p in found} == {0o600}


def test_unwritable_dump_dir_never_fails_a_request(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    dumps = Dumps(world.gateway)
    dumps.writer = DumpWriter(blocker)
    addons = chain(world, dumps)
    caplog.set_level(logging.INFO, logger="gateway.dumps")
    for _ in range(3):
        f = messages_flow(world)
        send(addons, f)
        assert f.response is None  # forwarded upstream as usual
        out = answer(
            addons, f, http.Response.make(200, b"", {"content-type": "text/event-stream"}), SSE
        )
        assert out == [*SSE, b""]
    assert dumps.writer.failures == 3
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cannot be written" in warnings[0].getMessage()


def test_disk_full_mid_stream_is_counted_once(
    world: World, dumps: Dumps, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    addons = chain(world, dumps)
    f = messages_flow(world)
    send(addons, f)
    f.response = http.Response.make(200, b"", {"content-type": "text/event-stream"})
    run(addons, "responseheaders", f)
    tap = f.response.stream
    assert callable(tap)
    assert tap(SSE[0]) == SSE[0]
    dump = dumps._open[f]
    dump._resp.close()  # type: ignore[union-attr]
    dump._resp = open("/dev/full", "wb", buffering=0)  # every write: ENOSPC
    for chunk in SSE[1:]:
        assert tap(chunk) == chunk
    run(addons, "response", f)
    assert dumps.writer is not None and dumps.writer.failures == 1
    assert "No space left" in (dumps.writer.last_error or "")


def test_symlinked_provider_folder_is_refused(world: World, dumps: Dumps, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "dumps").mkdir(mode=0o700)
    os.symlink(outside, tmp_path / "dumps" / "anthropic")
    addons = chain(world, dumps)
    f = messages_flow(world)
    send(addons, f)
    answer(addons, f, http.Response.make(200, b"{}", {"content-type": "application/json"}))
    assert list(outside.iterdir()) == []
    assert dumps.writer is not None and dumps.writer.failures == 1


def test_symlinked_passthrough_folder_is_refused(
    world: World, dumps: Dumps, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "dumps" / "anthropic").mkdir(parents=True)
    os.symlink(outside, tmp_path / "dumps" / "anthropic" / "passthrough")
    addons = chain(world, dumps)
    f = gateway_flow(
        "/api/v2/aibridge/anthropic/v1/models", "GET", headers={"x-api-key": world.token}
    )
    send(addons, f)
    answer(addons, f, http.Response.make(200, b"{}", {"content-type": "application/json"}))
    assert list(outside.iterdir()) == []
    assert dumps.writer is not None and dumps.writer.failures == 1


def secret() -> str:
    """A unique secret whose 6-character pieces cannot occur by chance in a dump (no hex)."""
    alphabet = "ghjkmnpqrstuvwxyz"
    return "sk-secret-" + "".join(secrets.choice(alphabet) for _ in range(24))


def leaked(data: bytes, planted: Iterable[str]) -> list[str]:
    return [
        s[i : i + 6] for s in planted for i in range(len(s) - 5) if s[i : i + 6].encode() in data
    ]


PLANTED_HEADERS = (
    "api-key",
    "x-auth-token",
    "x-amz-security-token",
    "x-goog-api-key",
    "ocp-apim-subscription-key",
    "proxy-authorization",
)


def planted_exchange(
    world: World, addons: list[Any], auth: dict[str, str], own: str, secrets_: dict[str, str]
) -> None:
    """One streamed request with secrets everywhere, and an upstream answer echoing some."""
    key, cookie, q1, q2 = secrets_["key"], secrets_["cookie"], secrets_["q1"], secrets_["q2"]
    text = f"my keys: {key} {world.token} {own}"
    body = orjson.dumps(
        {"model": "m", "stream": True, "messages": [{"role": "user", "content": text}]}
    )
    headers = {**auth, **{h: secrets_[h] for h in PLANTED_HEADERS}, "cookie": f"a={cookie}; b=1"}
    path = f"/api/v2/aibridge/corp/v1/messages?key={q1}&api_key={q2}&beta=true"
    f = gateway_flow(path, headers={**headers, "content-type": "application/json"}, body=body)
    send(addons, f)
    assert f.response is None
    upstream = http.Response.make(
        200,
        b"",
        {
            "content-type": "text/event-stream",
            "set-cookie": f"s={cookie}; Path=/",
            "www-authenticate": f"Bearer {secrets_['api-key']}",
            "x-api-key": key,
        },
    )
    echo = f'data: {{"error":"bad key {key} or {own}"}}\n\n'.encode()
    cut = echo.index(key.encode()) + 10  # the secret is split across two chunks
    answer(addons, f, upstream, [SSE[0], echo[:cut], echo[cut:]])


def test_no_secret_survives_in_any_dump_byte(world: World, dumps: Dumps, tmp_path: Path) -> None:
    planted = {name: secret() for name in ("key", "byok", "cookie", "q1", "q2", *PLANTED_HEADERS)}
    world.admin.add_provider("corp", "anthropic", "http://127.0.0.1:9", [planted["key"]])
    world.reload()
    addons = chain(world, dumps)
    planted_exchange(world, addons, {"authorization": f"Bearer {world.token}"}, "", planted)
    # BYOK: the client's own key is known to the gateway in this request only.
    byok = planted["byok"]
    planted_exchange(
        world, addons, {"x-aibridge-token": world.token, "x-api-key": byok}, byok, planted
    )
    dumped = files(tmp_path / "dumps")
    assert len(dumped) == 4
    everything = b"".join(p.read_bytes() for p in dumped)
    assert leaked(everything, [world.token, *planted.values()]) == []
    assert b"beta=true" in everything and b"my keys:" in everything
    for line in everything.decode().split("\r\n"):
        name, _, value = line.partition(": ")
        if name.lower() in (*PLANTED_HEADERS, "x-api-key"):
            left, sep, right = value.removeprefix("Bearer ").partition("...")
            assert (sep and len(left) <= 4 and len(right) <= 4) or value == "***", line


def test_big_bodies_are_written_off_the_event_loop(
    world: World, dumps: Dumps, tmp_path: Path
) -> None:
    import asyncio

    big = {**HELLO, "messages": [{"role": "user", "content": "x" * 300_000}]}
    f = messages_flow(world, big)
    addons = chain(world, dumps)
    run(addons, "requestheaders", f)
    run(addons[:-1], "request", f)
    pending = dumps.request(f)
    assert pending is not None  # mitmproxy awaits it: the flow waits, the loop does not
    assert not list((tmp_path / "dumps" / "anthropic").glob("*.req.http"))
    asyncio.run(pending)  # type: ignore[arg-type]
    req_file = next((tmp_path / "dumps" / "anthropic").glob("*.req.http"))
    assert req_file.read_bytes().endswith(pretty(orjson.dumps(big)))
    f.response = http.Response.make(200, orjson.dumps(big), {"content-type": "application/json"})
    run(addons, "responseheaders", f)
    later = dumps.response(f)
    assert later is not None
    asyncio.run(later)  # type: ignore[arg-type]
    resp_file = req_file.with_name(req_file.name.replace(".req.", ".resp."))
    assert resp_file.read_bytes().split(b"\r\n\r\n", 1)[1] == pretty(orjson.dumps(big))
    assert dumps.request(messages_flow(world)) is None  # small: written inline
