"""Test harness: run the real gateway (`aibridge server`) as a process on a loopback port,
next to the fake provider, and administer its database directly through the store."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine, text
from sqlmodel import Session

from gateway.crypto import Keyring, generate_key
from gateway.db import make_engine, prepare_database
from gateway.models import ProviderCreate, ProviderUpdate
from gateway.store import SYSTEM_ACTOR
from gateway.store import providers as pstore
from gateway.store import users as ustore

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
AIBRIDGE = BIN / "aibridge"
PG_BASE = os.environ.get("AIBRIDGE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_available() -> bool:
    try:
        with create_engine(PG_BASE).connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh schema in the test database; yields a URL whose search_path points at it."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


@dataclass
class Admin:
    """Direct, in-process administration of the gateway's database (what the CLI does)."""

    engine: Engine
    keyring: Keyring

    def add_provider(
        self,
        name: str,
        type_: str,
        base_url: str | None,
        keys: list[str] | None = None,
        enabled: bool = True,
    ) -> uuid.UUID:
        data = ProviderCreate(
            type=type_,
            name=name,
            base_url=base_url,  # type: ignore[arg-type]
            api_keys=keys or [f"sk-{name}-{secrets.token_hex(8)}"],
            enabled=enabled,
        )
        with Session(self.engine) as s:
            p = pstore.create_provider(s, data=data, keyring=self.keyring, actor=SYSTEM_ACTOR)
            s.commit()
            return p.id

    def update_provider(self, name: str, changes: ProviderUpdate) -> None:
        with Session(self.engine) as s:
            p = pstore.get_provider(s, ref=name)
            pstore.update_provider(
                s, provider=p, changes=changes, keyring=self.keyring, actor=SYSTEM_ACTOR
            )
            s.commit()

    def delete_provider(self, name: str) -> None:
        with Session(self.engine) as s:
            pstore.delete_provider(s, provider=pstore.get_provider(s, ref=name), actor=SYSTEM_ACTOR)
            s.commit()

    def add_user(self, username: str, role: str = "member") -> uuid.UUID:
        with Session(self.engine) as s:
            u = ustore.create_user(s, username=username, role=role, actor=SYSTEM_ACTOR)
            s.commit()
            return u.id

    def token(self, username: str, **kwargs: Any) -> str:
        with Session(self.engine) as s:
            user = ustore.get_user(s, username=username)
            created = ustore.create_token(
                s,
                user=user,
                name=kwargs.get("name", "test"),
                expires_at=kwargs.get("expires_at"),
                actor=SYSTEM_ACTOR,
            )
            s.commit()
            return created.token

    def version(self) -> int:
        from gateway.store.changes import current_version

        with Session(self.engine) as s:
            return current_version(s)


@dataclass
class GatewayProcess:
    port: int
    proc: subprocess.Popen[bytes]
    data_dir: Path
    env: dict[str, str]
    log_path: Path
    json_log: Path
    admin: Admin
    args: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, provider: str, path: str = "") -> str:
        return f"{self.base_url}/api/v2/aibridge/{provider}{path}"

    def health(self) -> dict[str, Any] | None:
        try:
            r = httpx.get(f"{self.base_url}/healthz", timeout=2)
        except httpx.HTTPError:
            return None
        return r.json() if r.status_code == 200 else None

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited {self.proc.returncode}:\n{self.logs()}")
            if self.health() is not None:
                return
            time.sleep(0.05)
        raise TimeoutError(f"gateway not ready in {timeout}s:\n{self.logs()}")

    def sync(self, timeout: float = 10.0) -> None:
        """Wait until the gateway routes with the database's current configuration."""
        want = self.admin.version()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            h = self.health()
            if h and h.get("config_version") is not None and h["config_version"] >= want:
                return
            time.sleep(0.02)
        raise TimeoutError(f"gateway did not reach config version {want}")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def cli(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(AIBRIDGE), *args],
            env=self.env,
            cwd=self.data_dir.parent,
            capture_output=True,
            text=True,
            input=input,
            timeout=120,
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def gateway_env(data_dir: Path, db_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_GATEWAY_")}
    env.update(
        {
            "AI_GATEWAY_DATA_DIR": str(data_dir),
            "AI_GATEWAY_DATABASE_URL": db_url,
            "AI_GATEWAY_ALLOW_PRIVATE_UPSTREAMS": "true",
            "AI_GATEWAY_RELOAD_INTERVAL": "200ms",
            "AI_GATEWAY_ENCRYPTION_KEYS": generate_key(),
            "AI_GATEWAY_LOG_LEVEL": "info",
        }
    )
    env.update(extra or {})
    return env


def start_gateway(
    workdir: Path,
    db_url: str,
    *,
    args: list[str] | None = None,
    env: dict[str, str] | None = None,
    port: int | None = None,
    wait: bool = True,
) -> GatewayProcess:
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    full_env = env if env is not None else gateway_env(data_dir, db_url)
    json_log = workdir / "gateway.jsonl"
    full_env.setdefault("AI_GATEWAY_LOG_JSON", str(json_log))
    port = port or free_port()
    engine = make_engine(db_url)
    prepare_database(engine)
    keyring = Keyring.from_text(full_env["AI_GATEWAY_ENCRYPTION_KEYS"])
    log_path = workdir / f"gateway-{port}.log"
    cmd = [str(AIBRIDGE), "server", "--listen", f"127.0.0.1:{port}", *(args or [])]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, env=full_env, cwd=workdir, stdout=log, stderr=log)
    gw = GatewayProcess(
        port, proc, data_dir, full_env, log_path, json_log, Admin(engine, keyring), cmd
    )
    if wait:
        gw.wait_ready()
    return gw


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        import orjson

        return orjson.loads(self.body)


def raw_request(
    port: int,
    method: str,
    path: str,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    *,
    timeout: float = 10.0,
) -> RawResponse:
    """Send bytes the way a broken or hostile client would (no client-side validation)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers or []]
    if body and not any(
        k.lower() in ("content-length", "transfer-encoding") for k, _ in headers or []
    ):
        lines.append(f"Content-Length: {len(body)}")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ")[1]) if status_line.startswith("HTTP/") else 0
    hdrs = {}
    for line in header_lines:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    if hdrs.get("transfer-encoding", "").lower() == "chunked":
        rest = _dechunk(rest)
    return RawResponse(status, hdrs, rest)


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return out
