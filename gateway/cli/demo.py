"""aibridge demo: the fake provider, a gateway on a temporary SQLite database, a few requests,
and what was recorded — a one-minute tour that needs no provider account."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import httpx
import typer
from sqlmodel import Session

from gateway.cli import output
from gateway.crypto import Keyring, generate_key
from gateway.db import make_engine, prepare_database
from gateway.models import ProviderCreate
from gateway.store import SYSTEM_ACTOR
from gateway.store import providers as pstore
from gateway.store import users as ustore
from gateway.store.interceptions import InterceptionFilter, list_interceptions

FAKE = Path(__file__).resolve().parents[2] / "scripts" / "fake_provider.py"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[bytes], what: str, *, ready: int | None = None) -> None:
    """Until `url` answers (with status `ready`, when given)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output.fail(f"{what} exited with {proc.returncode}")
        try:
            status = httpx.get(url, timeout=1).status_code
        except httpx.HTTPError:
            status = None
        if status is not None and ready in (None, status):
            return
        time.sleep(0.1)
    output.fail(f"{what} did not start")


@contextlib.contextmanager
def _process(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as f:
        proc = subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _setup(db_url: str, keys: str, fake_url: str) -> str:
    engine = make_engine(db_url)
    prepare_database(engine)
    keyring = Keyring.from_text(keys)
    with Session(engine) as s:
        for ptype, name, base in (
            ("anthropic", "anthropic", fake_url),
            ("openai", "openai", f"{fake_url}/v1"),
        ):
            pstore.create_provider(
                s,
                data=ProviderCreate(
                    type=ptype,  # type: ignore[arg-type]
                    name=name,
                    base_url=base,
                    api_keys=[f"sk-demo-{name}-key"],
                ),
                keyring=keyring,
                actor=SYSTEM_ACTOR,
            )
        user = ustore.create_user(s, username="demo", role="member", actor=SYSTEM_ACTOR)
        token = ustore.create_token(s, user=user, name="demo", expires_at=None, actor=SYSTEM_ACTOR)
        s.commit()
    engine.dispose()
    return token.token


def _requests(base: str, token: str) -> None:
    h = {"authorization": f"Bearer {token}"}
    msgs = [{"role": "user", "content": "THINK then call a TOOL"}]
    calls = [
        (
            "anthropic",
            "/v1/messages",
            {
                "model": "claude-sonnet-4-5",
                "max_tokens": 256,
                "messages": msgs,
                "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
            },
        ),
        (
            "anthropic",
            "/v1/messages",
            {
                "model": "claude-sonnet-4-5",
                "max_tokens": 64,
                "stream": True,
                "messages": [{"role": "user", "content": "hello"}],
            },
        ),
        (
            "openai",
            "/v1/chat/completions",
            {
                "model": "gpt-4.1",
                "stream": True,
                "stream_options": {"include_usage": True},
                "messages": [{"role": "user", "content": "hello"}],
            },
        ),
        (
            "openai",
            "/v1/responses",
            {"model": "gpt-5", "input": "THINK hello", "reasoning": {"summary": "auto"}},
        ),
    ]
    with httpx.Client(timeout=30) as client:
        for provider, path, body in calls:
            r = client.post(f"{base}/api/v2/aibridge/{provider}{path}", json=body, headers=h)
            output.say(
                f"POST /api/v2/aibridge/{provider}{path} -> {r.status_code} "
                f"({len(r.content)} bytes, interception "
                f"{r.headers.get('x-aibridge-interception-id')})"
            )


def demo(
    keep: Annotated[bool, typer.Option("--keep", help="Keep the demo data directory.")] = False,
) -> None:
    """Start the fake provider and a gateway, send a few requests, show what was recorded."""
    work = Path(tempfile.mkdtemp(prefix="aibridge-demo-"))
    db_url = f"sqlite:///{work / 'demo.db'}"
    keys = generate_key()
    env = {
        **os.environ,
        "AI_GATEWAY_DATA_DIR": str(work / "data"),
        "AI_GATEWAY_DATABASE_URL": db_url,
        "AI_GATEWAY_ENCRYPTION_KEYS": keys,
        "AI_GATEWAY_ALLOW_PRIVATE_UPSTREAMS": "true",
        "AI_GATEWAY_RELOAD_INTERVAL": "200ms",
    }
    fake_port, gw_port = _port(), _port()
    try:
        with _process(
            [sys.executable, str(FAKE), "--port", str(fake_port)], env, work / "fake.log"
        ) as fake:
            _wait(f"http://127.0.0.1:{fake_port}/v1/models", fake, "the fake provider")
            token = _setup(db_url, keys, f"http://127.0.0.1:{fake_port}")
            cmd = [
                str(Path(sys.executable).parent / "aibridge"),
                "server",
                "--listen",
                f"127.0.0.1:{gw_port}",
            ]
            with _process(cmd, env, work / "gateway.log") as gw:
                base = f"http://127.0.0.1:{gw_port}"
                _wait(f"{base}/healthz", gw, "the gateway", ready=200)
                output.info(f"gateway on {base}, fake provider on 127.0.0.1:{fake_port}")
                _requests(base, token)
                time.sleep(0.5)
        _show(db_url)
    finally:
        if keep:
            output.info(f"demo data kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _show(db_url: str) -> None:
    engine = make_engine(db_url)
    with Session(engine) as s:
        page = list_interceptions(s, filters=InterceptionFilter(), limit=20)
    engine.dispose()
    output.print_table(
        "recorded interceptions",
        ["provider", "model", "client", "status", "in", "out", "cache r/w", "prompt"],
        [
            (
                i.provider_name,
                i.model,
                i.client,
                i.status,
                i.input_tokens,
                i.output_tokens,
                f"{i.cache_read_input_tokens}/{i.cache_write_input_tokens}",
                i.prompt,
            )
            for i in reversed(page.items)
        ],
    )
