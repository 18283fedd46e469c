"""Planted secrets never leak.

Unique fake secrets go into every auth header, a `?key=` query, a JSON body field, BYOK keys
and provider keys (several providers, several keys, a rotation). Requests are driven into
errors (401, 404, 413, 431, ERR429, ERR500, ERRMID, RESET, RESETMID, an unreachable upstream)
with structured logging on, JSON and human logs to files and API dumps on, through `aibridge
server` (SQLite and PostgreSQL) and through `mitmdump -s addons/aibridge.py` saving a flow file.
Then every artifact is searched for any 6-character piece of any planted secret: logs, dumps,
the bodies and headers the clients got, /healthz, /metrics, admin API answers, the flow file, and the raw
database (SQLite file and WAL; PostgreSQL rows as text). Only the masked hint (first 4 and last
4 characters around "...") may show.

What the user writes is the user's data: a secret in the prompt text is recorded as the prompt
(database, admin API, the structured `prompt_usage` log record, dumps, the flow file) and
nowhere else. A secret in another body field is forwarded and shown in dumps and the flow file
(which hold the request as sent); it is never logged or stored in the database, and neither
ever shows in an error body or a response header.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import create_engine, text

from gateway.crypto import Keyring, generate_key
from gateway.db import make_engine, prepare_database
from tests.hardening.conftest import hardening_env
from tests.hardening.support import Reply, exchange, request_bytes
from tests.harness import AIBRIDGE, BIN, REPO, Admin, free_port, postgres_schema, start_gateway

AUTH_HEADERS = (
    "Authorization",
    "X-Api-Key",
    "X-AIBridge-Token",
    "Cookie",
    "Proxy-Authorization",
    "X-Goog-Api-Key",
    "Api-Key",
    "X-Auth-Token",
)
WINDOW = 6


# No hex letters: a 6-character piece of a random hex secret would turn up by chance in the
# artifacts' UUIDs and hashes; mixed case keeps it apart from words in logs.
ALPHABET = "GHJKLMNPQRSTUVWXYZghjkmnpqrstuvwxyz23456789"


def _plant(prefix: str = "sk-plant") -> str:
    """`sk-plant-` and 32 random characters (the brief's `<32 hex>`, without hex letters)."""
    return f"{prefix}-" + "".join(secrets.choice(ALPHABET) for _ in range(32))


@dataclass
class Plant:
    """Every planted value, by where it went."""

    provider_keys: dict[str, list[str]] = field(default_factory=dict)
    rotated: str = field(default_factory=_plant)
    headers: dict[str, str] = field(default_factory=lambda: {h: _plant() for h in AUTH_HEADERS})
    query: list[str] = field(default_factory=lambda: [_plant(), _plant()])
    byok: str = field(default_factory=_plant)
    body: str = field(default_factory=lambda: _plant("bb-body"))
    prompt: str = field(default_factory=lambda: _plant("pp-prompt"))
    admin_422: str = field(default_factory=_plant)
    tokens: list[str] = field(default_factory=list)
    """Gateway tokens (the user's and the admin's): only their hint may show."""

    def credentials(self) -> list[str]:
        keys = [k for ks in self.provider_keys.values() for k in ks]
        return [
            *keys,
            self.rotated,
            *self.headers.values(),
            *self.query,
            self.byok,
            self.admin_422,
            *self.tokens,
        ]


def leaks(data: bytes, planted: list[str]) -> list[str]:
    """The planted values of which some 6-character piece occurs in `data`."""
    found = []
    for secret in planted:
        for i in range(len(secret) - WINDOW + 1):
            if secret[i : i + WINDOW].encode() in data:
                found.append(f"{secret} (piece {secret[i : i + WINDOW]!r})")
                break
    return found


@dataclass
class Run:
    """A gateway under test: where its artifacts are and how to reach it."""

    port: int
    workdir: Path
    db_url: str
    admin: Admin
    files: dict[str, Path]
    replies: list[tuple[str, Reply]] = field(default_factory=list)
    admin_answers: list[tuple[str, bytes]] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


# -- the request battery -------------------------------------------------------------------------


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def setup_providers(run: Run, plant: Plant, fake: Any, admin_token: str) -> None:
    """Providers through the admin API (keys in request bodies), one rotated by PATCH."""
    plant.provider_keys = {
        "sec-anthropic": [_plant(), _plant()],
        "sec-openai": [_plant(), _plant()],
        "sec-compat": [_plant()],
        "sec-dead": [_plant()],
    }
    bases = {
        "sec-anthropic": fake.base_url,
        "sec-openai": f"{fake.base_url}/v1",
        "sec-compat": f"{fake.base_url}/v1",
        "sec-dead": f"http://127.0.0.1:{_dead_port()}",
    }
    types = {
        "sec-anthropic": "anthropic",
        "sec-openai": "openai",
        "sec-compat": "openai-compat",
        "sec-dead": "anthropic",
    }
    auth = {"authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=run.base, headers=auth, timeout=15) as client:
        for name, keys in plant.provider_keys.items():
            r = client.post(
                "/api/v2/ai/providers",
                json={"type": types[name], "name": name, "base_url": bases[name], "api_keys": keys},
            )
            assert r.status_code == 201, r.text
            run.admin_answers.append((f"POST {name}", r.content))
        # a rejected create that carries a key: the 422 must not echo it
        r = client.post(
            "/api/v2/ai/providers",
            json={"type": "anthropic", "name": "Bad Name!", "api_keys": [plant.admin_422]},
        )
        assert r.status_code in (400, 422), r.text
        run.admin_answers.append(("POST invalid", r.content))
        r = client.post(
            "/api/v2/ai/providers",
            json={"type": "anthropic", "name": "sec-x", "api_keys": [plant.admin_422 + " x"]},
        )
        assert r.status_code in (400, 422), r.text
        run.admin_answers.append(("POST invalid key", r.content))
        # rotation: keep the first key of sec-openai, replace the second
        current = client.get("/api/v2/ai/providers/sec-openai").json()
        r = client.patch(
            "/api/v2/ai/providers/sec-openai",
            json={"api_keys": [{"id": current["api_keys"][0]["id"]}, {"api_key": plant.rotated}]},
        )
        assert r.status_code == 200, r.text
        run.admin_answers.append(("PATCH rotate", r.content))
    plant.provider_keys["sec-openai"].append(plant.rotated)


def battery(run: Run, plant: Plant, token: str) -> None:
    """The requests: authenticated and not, every error path; replies kept for the scan."""
    h = plant.headers
    query = f"?key={plant.query[0]}&api_key={plant.query[1]}&alt=sse"
    extra = [
        (name, h[name])
        for name in ("Cookie", "Proxy-Authorization", "X-Goog-Api-Key", "Api-Key", "X-Auth-Token")
    ]
    extra[0] = ("Cookie", f"session={h['Cookie']}; other=1")
    extra[1] = ("Proxy-Authorization", f"Basic {h['Proxy-Authorization']}")
    byok = [("X-AIBridge-Token", token), ("Authorization", f"Bearer {plant.byok}")]
    central = [("Authorization", f"Bearer {token}")]
    unauth = [("Authorization", f"Bearer {h['Authorization']}"), ("X-Api-Key", h["X-Api-Key"])]
    unknown = [("X-AIBridge-Token", h["X-AIBridge-Token"])]

    def body(api: str, trigger: str, stream: bool) -> bytes:
        content = f"{trigger} please keep {plant.prompt} safe"
        if api == "messages":
            doc: dict[str, Any] = {
                "model": "m",
                "max_tokens": 5,
                "stream": stream,
                "metadata": {"user_id": plant.body},
                "messages": [{"role": "user", "content": content}],
            }
        elif api == "chat":
            doc = {
                "model": "m",
                "stream": stream,
                "user": plant.body,
                "messages": [{"role": "user", "content": content}],
            }
        else:
            doc = {
                "model": "m",
                "stream": stream,
                "input": content,
                "metadata": {"secret": plant.body},
            }
        return json.dumps(doc).encode()

    paths = {
        "messages": ("sec-anthropic", "/v1/messages"),
        "chat": ("sec-openai", "/v1/chat/completions"),
        "responses": ("sec-compat", "/v1/responses"),
    }
    jobs: list[tuple[str, str, list[tuple[str, str]], bytes]] = []
    for api, (provider, sub) in paths.items():
        url = f"/api/v2/aibridge/{provider}{sub}{query}"
        for trigger in ("hello", "ERR429", "ERR500", "ERRMID", "RESET", "RESETMID", "TOOL THINK"):
            for stream in (True, False):
                for auth in (central, byok):
                    jobs.append(
                        (
                            f"{api} {trigger} {stream}",
                            url,
                            [*auth, *extra],
                            body(api, trigger, stream),
                        )
                    )
        jobs.append((f"{api} 401", url, [*unauth, *extra], body(api, "hi", False)))
        jobs.append((f"{api} 401 unknown", url, [*unknown, *extra], body(api, "hi", False)))
        jobs.append(
            (
                f"{api} 404",
                f"/api/v2/aibridge/{provider}/v1/nope{query}",
                [*central, *extra],
                body(api, "hi", False),
            )
        )
        jobs.append((f"{api} 413", url, [*central, *extra], b"x" * (9 * 1024 * 1024)))
        jobs.append(
            (f"{api} 431", url, [*central, *extra, ("X-Big", "b" * 40_000)], body(api, "hi", False))
        )
    dead = f"/api/v2/aibridge/sec-dead/v1/messages{query}"
    jobs.append(("unreachable", dead, [*central, *extra], body("messages", "hi", True)))
    jobs.append(("unreachable byok", dead, [*byok, *extra], body("messages", "hi", False)))
    for name, path, headers, data in jobs:
        reply = exchange(
            run.port,
            request_bytes(
                "POST",
                path,
                [
                    ("Content-Type", "application/json"),
                    ("anthropic-version", "2023-06-01"),
                    *headers,
                ],
                data,
            ),
            timeout=60,
        )
        assert reply.status in (200, 400, 401, 404, 413, 429, 431, 500, 502), (
            name,
            reply.raw[:300],
        )
        run.replies.append((name, reply))
    assert {r.status for _, r in run.replies} >= {200, 401, 404, 413, 429, 431, 500, 502}


def read_admin(run: Run, admin_token: str) -> None:
    auth = {"authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=run.base, headers=auth, timeout=15) as client:
        paths = [
            "/healthz",
            "/metrics",
            "/api/v2/ai/providers",
            "/api/v2/users",
            "/api/v2/audit?limit=200",
            "/api/v2/aibridge/usage?group_by=user",
            "/api/v2/aibridge/usage?group_by=day",
            "/api/v2/users/alice/tokens",
            "/api/v2/users/root/tokens",
        ]
        paths += [
            f"/api/v2/ai/providers/{n}"
            for n in ("sec-anthropic", "sec-openai", "sec-compat", "sec-dead")
        ]
        page = client.get("/api/v2/aibridge/interceptions?limit=200")
        assert page.status_code == 200, page.text
        run.admin_answers.append(("interceptions", page.content))
        items = page.json()["items"] if "items" in page.json() else page.json()["data"]
        assert len(items) > 20
        paths += [f"/api/v2/aibridge/interceptions/{i['id']}" for i in items]
        for path in paths:
            r = client.get(path)
            assert r.status_code == 200, (path, r.text)
            run.admin_answers.append((path, r.content))
        r = client.get("/dashboard", headers={"cookie": "x=1"})
        run.admin_answers.append(("/dashboard", r.content))


# -- artifacts -----------------------------------------------------------------------------------


def database_bytes(url: str) -> dict[str, bytes]:
    """The raw database: SQLite file + WAL (before and after a checkpoint), or PostgreSQL rows
    as text."""
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        out = {f"db:{p.name}": p.read_bytes() for p in path.parent.glob(path.name + "*")}
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        out["db:checkpointed"] = path.read_bytes()
        return out
    schema = url.rsplit("search_path%3D", 1)[1]
    engine = create_engine(url.split("?")[0])
    out = {}
    with engine.connect() as conn:
        tables = (
            conn.execute(
                text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"),
                {"s": schema},
            )
            .scalars()
            .all()
        )
        assert "interception" in tables or any("intercept" in t for t in tables), tables
        for table in tables:
            rows = conn.execute(text(f'SELECT t::text FROM "{schema}"."{table}" t')).scalars()
            out[f"pg:{table}"] = "\n".join(rows).encode()
    engine.dispose()
    return out


def collect(run: Run) -> dict[str, bytes]:
    """Everything to search, by name."""
    out: dict[str, bytes] = {}
    for name, path in run.files.items():
        if path.is_dir():
            for f in sorted(path.rglob("*")):
                if f.is_file():
                    out[f"{name}:{f.relative_to(path)}"] = f.read_bytes()
        elif path.exists():
            out[name] = path.read_bytes()
    for name, reply in run.replies:
        head = reply.raw.partition(b"\r\n\r\n")[0]
        out[f"reply-head:{name}"] = head
        if reply.status >= 400:
            out[f"error-body:{name}"] = reply.body
        else:
            out[f"reply-body:{name}"] = reply.body
    for name, data in run.admin_answers:
        out[f"admin:{name}"] = data
    return out


def is_prompt_record(line: bytes) -> bool:
    return b"prompt_usage" in line and (
        b'"record_type":"prompt_usage"' in line or b"record_type=prompt_usage" in line
    )


def check(artifacts: dict[str, bytes], plant: Plant) -> list[str]:
    """Every leak found, as readable lines (empty when clean)."""
    found: list[str] = []
    creds = plant.credentials()
    assert len(creds) >= 20
    for name, data in artifacts.items():
        for leak in leaks(data, creds):
            found.append(f"{name}: credential {leak}")
        kind = name.split(":", 1)[0]
        user_data_shown = kind in ("dump", "flows", "reply-body") or name.startswith(
            "admin:/api/v2/aibridge/interceptions/"
        )
        if not user_data_shown:
            if kind in ("db", "pg"):
                body_allowed, prompt_allowed = False, True
            else:
                body_allowed = False
                prompt_allowed = name.startswith("admin:interceptions")
            if not body_allowed and leaks(data, [plant.body]):
                found.append(f"{name}: body field secret")
            if not prompt_allowed:
                lines = data.splitlines() if kind in ("log-json", "log-human", "stdout") else [data]
                for line in lines:
                    if not is_prompt_record(line) and leaks(line, [plant.prompt]):
                        found.append(
                            f"{name}: prompt secret outside the prompt record: {line[:200]!r}"
                        )
                        break
    return found


def expect_seen(artifacts: dict[str, bytes], plant: Plant) -> None:
    """The scan looked at real data: the prompt is recorded, the masked hints are there."""
    db = b"".join(v for k, v in artifacts.items() if k.split(":")[0] in ("db", "pg"))
    assert plant.prompt.encode() in db, "the prompt was not recorded"
    logs = b"".join(v for k, v in artifacts.items() if k.startswith("log-json"))
    assert b'"record_type":"prompt_usage"' in logs
    assert any(k.startswith("dump:") for k in artifacts), "no dumps written"
    key = plant.provider_keys["sec-anthropic"][0]
    hint = f"{key[:4]}...{key[-4:]}".encode()
    assert any(hint in v for k, v in artifacts.items() if k.startswith("admin:"))


# -- the runs ------------------------------------------------------------------------------------


def _users(admin: Admin, plant: Plant) -> tuple[str, str]:
    admin.add_user("alice")
    token = admin.token("alice")
    admin.add_user("root", role="admin")
    admin_token = admin.token("root")
    plant.tokens += [token, admin_token]
    return token, admin_token


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_no_secret_leaks_through_aibridge_server(kind: str, tmp_path: Path, fake: Any) -> None:
    with _database(kind, tmp_path) as url:
        files = {
            "log-json": tmp_path / "json.log",
            "log-human": tmp_path / "human.log",
            "dump": tmp_path / "dumps",
        }
        env = hardening_env(
            tmp_path,
            url,
            AI_GATEWAY_STRUCTURED_LOGGING="true",
            AI_GATEWAY_LOG_JSON=str(files["log-json"]),
            AI_GATEWAY_LOG_HUMAN=str(files["log-human"]),
            AI_GATEWAY_DUMP_DIR=str(files["dump"]),
            AI_GATEWAY_LOG_LEVEL="debug",
        )
        gw = start_gateway(tmp_path, url, env=env)
        run = Run(gw.port, tmp_path, url, gw.admin, files)
        plant = Plant()
        try:
            token, admin_token = _users(gw.admin, plant)
            gw.sync()
            setup_providers(run, plant, fake, admin_token)
            gw.sync()
            battery(run, plant, token)
            time.sleep(0.5)
            read_admin(run, admin_token)
        finally:
            assert gw.stop() == 0
        run.files["stdout"] = gw.log_path
        artifacts = collect(run) | database_bytes(url)
        expect_seen(artifacts, plant)
        found = check(artifacts, plant)
        assert found == [], "\n".join(found[:30])


def test_no_secret_leaks_through_mitmdump_and_its_flow_file(tmp_path: Path, fake: Any) -> None:
    url = f"sqlite:///{tmp_path / 'md.db'}"
    key = generate_key()
    data_dir = tmp_path / "data"
    files = {
        "log-json": tmp_path / "json.log",
        "dump": tmp_path / "dumps",
        "flows": tmp_path / "flows.mitm",
        "stdout": tmp_path / "mitmdump.out",
    }
    port = free_port()
    engine = make_engine(url)
    prepare_database(engine)
    admin = Admin(engine, Keyring.from_text(key))
    plant = Plant()
    token, admin_token = _users(admin, plant)
    sets = {
        "connection_strategy": "lazy",
        "save_stream_file": str(files["flows"]),
        "ai_gateway_allow_private_upstreams": "true",
        "ai_gateway_data_dir": str(data_dir),
        "ai_gateway_database_url": url,
        "ai_gateway_encryption_keys": key,
        "ai_gateway_structured_logging": "true",
        "ai_gateway_log_json": str(files["log-json"]),
        "ai_gateway_dump_dir": str(files["dump"]),
        "ai_gateway_reload_interval": "200ms",
        "ai_gateway_max_request_body": "8MiB",
    }
    cmd = [
        str(BIN / "mitmdump"),
        "-s",
        str(REPO / "addons" / "aibridge.py"),
        "--mode",
        f"reverse:http://localhost:1@127.0.0.1:{port}",
        "--flow-detail",
        "2",
    ]
    for name, value in sets.items():
        cmd += ["--set", f"{name}={value}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_GATEWAY_")}
    with open(files["stdout"], "wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=out, stderr=out)
    run = Run(port, tmp_path, url, admin, files)
    try:
        _wait_healthy(run.base, proc, files["stdout"])
        setup_providers(run, plant, fake, admin_token)
        time.sleep(0.6)  # the reload interval: the new providers are routed
        battery(run, plant, token)
        time.sleep(0.5)
        read_admin(run, admin_token)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    assert files["flows"].stat().st_size > 10_000
    artifacts = collect(run) | database_bytes(url)
    expect_seen(artifacts, plant)
    found = check(artifacts, plant)
    assert found == [], "\n".join(found[:30])


def _wait_healthy(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(log.read_text(errors="replace")[-3000:])


@contextlib.contextmanager
def _database(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'secrets.db'}"
    else:
        with postgres_schema() as url:
            yield url


def test_leak_detector_finds_a_piece_and_ignores_the_hint() -> None:
    secret = _plant()
    assert leaks(f"x {secret[10:16]} y".encode(), [secret])
    assert leaks(secret.encode(), [secret])
    assert not leaks(f"key {secret[:4]}...{secret[-4:]}".encode(), [secret])
    assert orjson.loads(orjson.dumps({"m": f"{secret[:4]}...{secret[-4:]}"}))
    assert AIBRIDGE.exists()
