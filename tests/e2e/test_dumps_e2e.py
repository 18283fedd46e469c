"""API dumps through the real gateway (`aibridge server --ai-gateway-dump-dir`) and the fake
provider: layout, wire format, streaming into the file, redaction of every secret, permissions,
and an unwritable dump folder that never fails a request."""

from __future__ import annotations

import secrets
import stat
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.dumps import FILE_NAME
from tests.e2e.conftest import Setup, make_setup
from tests.e2e.recorded import wait_recorded
from tests.harness import gateway_env, start_gateway

IID = "x-aibridge-interception-id"


@pytest.fixture
def dumped(tmp_path: Path, fake: Any) -> Iterator[tuple[Setup, Path]]:
    dump_dir = tmp_path / "dumps"
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    gw = start_gateway(
        tmp_path, db, env=gateway_env(tmp_path / "data", db, {"AI_GATEWAY_DUMP_DIR": str(dump_dir)})
    )
    try:
        yield make_setup(gw, fake), dump_dir
    finally:
        gw.stop()


def pair(
    base: Path, provider: str, iid: str, *, passthrough: bool = False, timeout: float = 10.0
) -> tuple[bytes, bytes]:
    """The request and response dump of interception `iid` (waits for the response file to be
    closed, i.e. complete)."""
    folder = base / provider / "passthrough" if passthrough else base / provider
    deadline = time.monotonic() + timeout
    while True:
        req = list(folder.glob(f"*-{iid}.req.http"))
        resp = list(folder.glob(f"*-{iid}.resp.http"))
        if req and resp and resp[0].stat().st_size > 0:
            time.sleep(0.05)
            return req[0].read_bytes(), resp[0].read_bytes()
        if time.monotonic() > deadline:
            raise AssertionError(f"no dump pair for {iid} in {folder}: {list(folder.glob('*'))}")
        time.sleep(0.02)


def split(data: bytes) -> tuple[list[str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    return head.decode().split("\r\n"), body


def pretty(body: bytes) -> bytes:
    return orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2) + b"\n"


def test_layout_and_wire_format(dumped: tuple[Setup, Path]) -> None:
    setup, base = dumped
    with setup.claude() as client:
        raw = client.messages.with_raw_response.create(
            model="claude-sonnet-4-5",
            max_tokens=64,
            messages=[{"role": "user", "content": "hello"}],
        )
    iid = raw.headers[IID]
    req, resp = pair(base, "anthropic", iid)
    names = sorted(p.name for p in (base / "anthropic").glob(f"*-{iid}.*"))
    assert len(names) == 2 and all(FILE_NAME.fullmatch(n) for n in names)
    assert names[0].endswith(".req.http") and names[1] == names[0].replace(".req.", ".resp.")
    lines, body = split(req)
    assert lines[0] == "POST /v1/messages HTTP/1.1"
    assert "x-api-key: sk-a...9d2b" in lines
    assert not any(line.lower().startswith("authorization:") for line in lines)
    assert body == pretty(body) and orjson.loads(body)["messages"][0]["content"] == "hello"
    rlines, rbody = split(resp)
    assert rlines[0] == "HTTP/1.1 200 OK"
    assert f"X-AIBridge-Interception-Id: {iid}".lower() in [x.lower() for x in rlines]
    assert rbody == pretty(raw.http_response.content)

    with setup.oai() as oai:
        stream = oai.chat.completions.with_raw_response.create(
            model="gpt-4.1", stream=True, messages=[{"role": "user", "content": "hi"}]
        )
        received = b"".join(stream.http_response.iter_bytes())
    oid = stream.headers[IID]
    oreq, oresp = pair(base, "openai", oid)
    assert split(oreq)[0][0] == "POST /v1/chat/completions HTTP/1.1"
    assert "authorization: Bearer sk-o...6e4a" in split(oreq)[0]
    assert split(oresp)[1] == received  # the SSE body exactly as the client got it

    models = httpx.get(
        setup.gw.url("anthropic", "/v1/models"), headers={"x-api-key": setup.token}, timeout=10
    )
    assert models.status_code == 200
    mreq, mresp = pair(base, "anthropic", models.headers[IID], passthrough=True)
    assert split(mreq)[0][0] == "GET /v1/models HTTP/1.1"
    assert split(mresp)[1] == pretty(models.content)
    wait_recorded(setup.gw.admin.engine, iid)


def test_sse_is_in_the_file_while_the_stream_is_open(dumped: tuple[Setup, Path]) -> None:
    setup, base = dumped
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    headers = {
        "authorization": f"Bearer {setup.token}",
        "anthropic-version": "2023-06-01",
        "x-fake-delay": "0.3",
        "x-fake-events": "10",
    }
    received = b""
    with (
        httpx.Client(timeout=30) as client,
        client.stream(
            "POST", setup.gw.url("anthropic", "/v1/messages"), json=body, headers=headers
        ) as r,
    ):
        iid = r.headers[IID]
        chunks = r.iter_raw()
        while b"message_start" not in received:
            received += next(chunks)
        resp_file = next((base / "anthropic").glob(f"*-{iid}.resp.http"))
        deadline = time.monotonic() + 5
        while b"message_start" not in resp_file.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.02)
        early = resp_file.read_bytes()
        assert b"event: message_start" in early
        assert b"message_stop" not in early  # the stream is still going
        for chunk in chunks:
            received += chunk
    _, dumped_body = split(pair(base, "anthropic", iid)[1])
    assert b"message_stop" in dumped_body and dumped_body == received


def secret() -> str:
    """Unique, and no 6-character piece of it can occur by chance in a dump (no hex digits)."""
    return "sk-secret-" + "".join(secrets.choice("ghjkmnpqrstuvwxyz") for _ in range(24))


def leaked(data: bytes, planted: Iterable[str]) -> list[str]:
    return [
        s[i : i + 6] for s in planted for i in range(len(s) - 5) if s[i : i + 6].encode() in data
    ]


SENSITIVE = (
    "api-key",
    "x-auth-token",
    "cookie",
    "set-cookie",
    "proxy-authorization",
    "proxy-authenticate",
    "www-authenticate",
    "x-amz-security-token",
    "x-goog-api-key",
    "ocp-apim-subscription-key",
)


def test_no_secret_in_any_dump_byte(dumped: tuple[Setup, Path]) -> None:
    setup, base = dumped
    key, byok = secret(), secret()
    setup.gw.admin.add_provider("corp", "anthropic", setup.fake.base_url, [key])
    setup.gw.sync()
    planted_headers = {h: secret() for h in SENSITIVE}
    q1, q2 = secret(), secret()
    planted = [key, byok, setup.token, q1, q2, *planted_headers.values()]
    url = setup.gw.url("corp", f"/v1/messages?key={q1}&api_key={q2}&beta=true")
    ids = []
    for auth, own in (
        ({"authorization": f"Bearer {setup.token}"}, ""),
        ({"x-aibridge-token": setup.token, "x-api-key": byok}, byok),
    ):
        setup.fake.clear()
        body = {
            "model": "claude-sonnet-4-5",
            "max_tokens": 64,
            "stream": True,
            "messages": [{"role": "user", "content": f"keys: {key} {setup.token} {own}"}],
        }
        headers = {**auth, **planted_headers, "anthropic-version": "2023-06-01"}
        r = httpx.post(url, json=body, headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        ids.append(r.headers[IID])
        upstream = dict((k.lower(), v) for k, v in setup.fake.requests[-1].headers)
        assert upstream["x-api-key"] == (own or key)  # the upstream got the real key
        assert "authorization" not in upstream and "x-aibridge-token" not in upstream
        assert setup.fake.requests[-1].query == f"key={q1}&api_key={q2}&beta=true"
    everything = b""
    for iid in ids:
        req, resp = pair(base, "corp", iid)
        everything += req + resp
    assert leaked(everything, planted) == []
    assert b"keys: sk-s..." in everything and b"beta=true" in everything
    for line in everything.decode("utf-8", "replace").split("\r\n"):
        name, _, value = line.partition(": ")
        if name.lower() in (*SENSITIVE, "x-api-key"):
            left, sep, right = value.removeprefix("Bearer ").partition("...")
            assert (sep and len(left) <= 4 and len(right) <= 4) or "***" in value, line


def test_permissions(dumped: tuple[Setup, Path]) -> None:
    setup, base = dumped
    with setup.claude() as client:
        raw = client.messages.with_raw_response.create(
            model="claude-sonnet-4-5",
            max_tokens=64,
            messages=[{"role": "user", "content": "hello"}],
        )
    httpx.get(setup.gw.url("anthropic", "/v1/models"), headers={"x-api-key": setup.token})
    pair(base, "anthropic", raw.headers[IID])
    folders = [base, base / "anthropic", base / "anthropic" / "passthrough"]
    assert [oct(stat.S_IMODE(p.stat().st_mode)) for p in folders] == [oct(0o700)] * 3
    files = [p for p in base.rglob("*") if p.is_file()]
    assert len(files) >= 4 and {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o600}


def test_unwritable_dump_dir_never_fails_a_request(tmp_path: Path, fake: Any) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    gw = start_gateway(
        tmp_path, db, env=gateway_env(tmp_path / "data", db, {"AI_GATEWAY_DUMP_DIR": str(blocker)})
    )
    try:
        setup = make_setup(gw, fake)
        with setup.claude() as client:
            for _ in range(3):
                text = client.messages.create(
                    model="claude-sonnet-4-5",
                    max_tokens=64,
                    messages=[{"role": "user", "content": "hi"}],
                )
                assert text.content
            with client.messages.stream(
                model="claude-sonnet-4-5",
                max_tokens=64,
                messages=[{"role": "user", "content": "hi"}],
            ) as s:
                assert s.get_final_text()
    finally:
        gw.stop()
    assert blocker.read_text() == "not a folder"
    assert gw.logs().count("API dumps cannot be written") == 1
