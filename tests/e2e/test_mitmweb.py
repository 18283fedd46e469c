"""`mitmweb -s addons/aibridge.py` and `mitmdump -s addons/aibridge.py` as live inspectors:
flows carry a comment (user, provider, model, client, tokens), errors are marked, secrets are
masked in what mitmweb serves and in saved flow files, the upstream still gets the real key,
and `ai_gateway_flow_limit` bounds the view."""

from __future__ import annotations

import contextlib
import io
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from mitmproxy import io as mio
from mitmproxy.http import HTTPFlow

from gateway.crypto import Keyring
from gateway.db import make_engine, prepare_database
from tests.harness import BIN, REPO, Admin, free_port, gateway_env

SCRIPT = REPO / "addons" / "aibridge.py"
MODEL = "claude-sonnet-4-5"


@dataclass
class Inspector:
    proc: subprocess.Popen[bytes]
    port: int
    web_port: int
    password: str
    token: str
    key: str
    log: Path

    def client(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            base_url=f"http://127.0.0.1:{self.port}/api/v2/aibridge/anthropic",
            api_key=self.token,
            max_retries=0,
        )

    def web(self, path: str) -> httpx.Response:
        return httpx.get(
            f"http://127.0.0.1:{self.web_port}{path}",
            timeout=10,
            headers={"authorization": f"Bearer {self.password}"},
        )


def secret(prefix: str) -> str:
    return prefix + "".join(secrets.choice("ghjkmnpqrstuvwxyz") for _ in range(24))


def leaked(data: bytes, *planted: str) -> list[str]:
    return [
        s[i : i + 6] for s in planted for i in range(len(s) - 5) if s[i : i + 6].encode() in data
    ]


@contextlib.contextmanager
def inspector(tool: str, tmp_path: Path, fake: Any, *args: str) -> Iterator[Inspector]:
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    env = gateway_env(tmp_path / "data", db)
    engine = make_engine(db)
    prepare_database(engine)
    admin = Admin(engine, Keyring.from_text(env["AI_GATEWAY_ENCRYPTION_KEYS"]))
    key = secret("sk-ant-secret-")
    admin.add_provider("anthropic", "anthropic", fake.base_url, [key])
    admin.add_user("alice")
    token = admin.token("alice")
    port, web_port, password = free_port(), free_port(), secrets.token_hex(16)
    log = tmp_path / f"{tool}.log"
    cmd = [
        str(BIN / tool),
        "-s",
        str(SCRIPT),
        "--mode",
        f"reverse:http://localhost:1@127.0.0.1:{port}",
        "--set",
        "connection_strategy=lazy",
        "--set",
        "ai_gateway_bootstrap_admin=false",
        "--set",
        f"confdir={tmp_path / 'mitm'}",
        *args,
    ]
    if tool == "mitmweb":
        cmd += [
            "--set",
            "web_open_browser=false",
            "--set",
            f"web_port={web_port}",
            "--set",
            "web_host=127.0.0.1",
            "--set",
            f"web_password={password}",
        ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=out, stderr=out)
    ins = Inspector(proc, port, web_port, password, token, key, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield ins
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        engine.dispose()


def flows_from(data: bytes) -> list[HTTPFlow]:
    return [f for f in mio.FlowReader(io.BytesIO(data)).stream() if isinstance(f, HTTPFlow)]


def gateway_flows(flows: list[HTTPFlow]) -> list[HTTPFlow]:
    return [f for f in flows if f.request.path.startswith("/v1/messages")]


def test_mitmweb_comments_marks_and_masks(tmp_path: Path, fake: Any) -> None:
    with inspector("mitmweb", tmp_path, fake) as ins, ins.client() as client:
        blocking = client.messages.create(
            model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hello"}]
        )
        with client.messages.stream(
            model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        ) as s:
            streamed = s.get_final_message()
        with pytest.raises(anthropic.RateLimitError):
            client.messages.create(
                model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "ERR429"}]
            )
        upstream_keys = {
            dict((k.lower(), v) for k, v in r.headers).get("x-api-key")
            for r in fake.requests
            if r.path.startswith("/v1/messages")
        }
        assert upstream_keys == {ins.key}  # the real key went upstream
        time.sleep(0.3)
        dump = ins.web("/flows/dump")
        assert dump.status_code == 200
        listing = ins.web("/flows.json").text
    flows = gateway_flows(flows_from(dump.content))
    assert len(flows) == 3
    ok, stream, limited = flows
    usage = blocking.usage
    assert ok.comment == (
        f"user alice | provider anthropic | model {MODEL} | client Unknown | "
        f"tokens in {usage.input_tokens} out {usage.output_tokens} cache read "
        f"{usage.cache_read_input_tokens or 0} write "
        f"{usage.cache_creation_input_tokens or 0}"
    )
    assert f"out {streamed.usage.output_tokens} " in stream.comment
    assert ok.marked == "" and stream.marked == ""
    assert limited.marked == ":warning:" and limited.comment.endswith("| HTTP 429")
    assert ok.request.headers["x-api-key"].startswith("sk-a...")
    for data in (dump.content, listing.encode()):
        assert leaked(data, ins.key, ins.token) == []


def test_mitmweb_flow_limit(tmp_path: Path, fake: Any) -> None:
    with (
        inspector("mitmweb", tmp_path, fake, "--set", "ai_gateway_flow_limit=3") as ins,
        ins.client() as client,
    ):
        for i in range(6):
            client.messages.create(
                model=MODEL, max_tokens=16, messages=[{"role": "user", "content": f"n{i}"}]
            )
        time.sleep(0.3)
        listed = ins.web("/flows.json").json()
    assert len(listed) == 3
    assert all(f["request"]["path"] == "/v1/messages" for f in listed)


def test_mitmdump_saved_flow_file(tmp_path: Path, fake: Any) -> None:
    saved = tmp_path / "saved.flows"
    with (
        inspector("mitmdump", tmp_path, fake, "--set", f"save_stream_file={saved}") as ins,
        ins.client() as client,
    ):
        answer = client.messages.create(
            model=MODEL,
            max_tokens=64,
            messages=[{"role": "user", "content": f"my key is {ins.key}, token {ins.token}"}],
        )
        assert answer.content
        with client.messages.stream(
            model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        ) as s:
            s.get_final_text()
        sent = [r for r in fake.requests if r.path.startswith("/v1/messages")]
        assert {dict((k.lower(), v) for k, v in r.headers)["x-api-key"] for r in sent} == {ins.key}
        assert ins.key.encode() in sent[-2].body  # the upstream got the body as sent
    data = saved.read_bytes()
    assert leaked(data, ins.key, ins.token) == []
    flows = gateway_flows(flows_from(data))
    assert len(flows) == 2
    assert all(
        f.comment.startswith(f"user alice | provider anthropic | model {MODEL}") for f in flows
    )
    assert b"my key is sk-a..." in (flows[0].request.content or b"")
