"""Helpers for the admin app's tests: a real Runtime (SQLite or PostgreSQL) behind
`create_app`, driven with FastAPI's TestClient, with users of every role.

Every response body the client receives is kept, so a test (and each fixture's teardown) can
check that no plaintext provider key ever left the app.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from gateway.admin import create_app
from gateway.crypto import generate_key
from gateway.runtime import Runtime
from gateway.settings import load_settings
from schema.models import Interception, ModelThought, PromptUsage, TokenUsage, ToolUsage
from tests.harness import Admin

ROLES = {"root": "admin", "audrey": "auditor", "mia": "member", "bob": "member"}
PUBLIC_URL = "https://1.1.1.1"
"""A public address given as a literal (no DNS lookup, which this machine can't do)."""


@dataclass
class Api:
    runtime: Runtime
    client: TestClient
    db: Admin
    tokens: dict[str, str]
    user_ids: dict[str, uuid.UUID]
    bodies: list[bytes] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def reload(self) -> None:
        assert self.runtime.config is not None
        self.runtime.config.reload()

    def leaked(self) -> list[str]:
        """Plaintext keys (registered in `secrets`) found in any response body so far."""
        return sorted(s for s in self.secrets for b in self.bodies if s.encode() in b)

    def new_client(self) -> TestClient:
        """Another client (own cookies) on the same app; its bodies are kept too."""
        client = TestClient(self.client.app, follow_redirects=False)

        def keep(response: Any) -> None:
            response.read()
            self.bodies.append(response.content)

        client.event_hooks = {"request": [], "response": [keep]}
        return client

    def browser(self, who: str | None) -> TestClient:
        """A dashboard client, signed in as `who` through the sign-in form (None: signed out)."""
        client = self.new_client()
        if who is None:
            return client
        page = client.get("/dashboard/login")
        form = {"token": self.tokens[who], "csrf": csrf_of(page.text), "next": "/dashboard"}
        r = client.post("/dashboard/login", data=form)
        assert r.status_code == 303, r.text
        return client

    def session(self) -> Session:
        assert self.runtime.engine is not None
        return Session(self.runtime.engine, expire_on_commit=False)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def settings_env(tmp_path: Path, db_url: str, *, allow_private: bool) -> dict[str, str]:
    return {
        "AI_GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "AI_GATEWAY_DATABASE_URL": db_url,
        "AI_GATEWAY_ENCRYPTION_KEYS": generate_key(),
        "AI_GATEWAY_ALLOW_PRIVATE_UPSTREAMS": "true" if allow_private else "false",
        "AI_GATEWAY_RELOAD_INTERVAL": "60s",
    }


@contextlib.contextmanager
def running_api(tmp_path: Path, db_url: str, *, allow_private: bool = False) -> Iterator[Api]:
    loaded = load_settings(environ=settings_env(tmp_path, db_url, allow_private=allow_private))
    runtime = Runtime(loaded.settings)
    runtime.start()
    try:
        assert runtime.engine is not None and runtime.keyring is not None
        db = Admin(runtime.engine, runtime.keyring)
        user_ids = {name: db.add_user(name, role) for name, role in ROLES.items()}
        tokens = {name: db.token(name) for name in ROLES}
        bodies: list[bytes] = []

        def keep(response: Any) -> None:
            response.read()
            bodies.append(response.content)

        client = TestClient(create_app(lambda: runtime))
        client.event_hooks = {"request": [], "response": [keep]}
        api = Api(runtime, client, db, tokens, user_ids, bodies)
        api.reload()
        with client:
            yield api
        assert api.leaked() == [], "a plaintext provider key was in a response"
    finally:
        runtime.stop()


def add_interception(api: Api, *, user: str | None, started_at: datetime,
                     provider: str = "anthropic", model: str = "claude-sonnet-4-5",
                     client: str = "Claude Code", status: str = "completed",
                     tokens: tuple[int, int, int, int] = (10, 5, 0, 0),
                     prompt: str | None = None, tools: list[tuple[str, str]] | None = None,
                     thoughts: list[str] | None = None) -> uuid.UUID:
    """One recorded interception (and its usage, prompt, tools, thoughts), written directly."""
    iid = uuid.uuid4()
    with api.session() as s:
        s.add(Interception(
            id=iid, initiator_id=api.user_ids[user] if user else None,
            provider_type="anthropic" if provider.startswith("anthropic") else "openai",
            provider_name=provider, api="messages", model=model, client=client,
            started_at=started_at, ended_at=started_at + timedelta(seconds=2), status=status,
            upstream_status=200, streamed=True,
        ))
        s.flush()
        s.add(TokenUsage(id=uuid.uuid4(), interception_id=iid,
                         provider_response_id=f"msg_{iid.hex[:8]}",
                         input_tokens=tokens[0], output_tokens=tokens[1],
                         cache_read_input_tokens=tokens[2], cache_write_input_tokens=tokens[3],
                         created_at=started_at))
        if prompt is not None:
            s.add(PromptUsage(id=uuid.uuid4(), interception_id=iid, prompt=prompt,
                              created_at=started_at))
        for i, (tool, tool_input) in enumerate(tools or []):
            s.add(ToolUsage(id=uuid.uuid4(), interception_id=iid, tool=tool, input=tool_input,
                            tool_call_id=f"toolu_{i}",
                            created_at=started_at + timedelta(milliseconds=i)))
        for i, content in enumerate(thoughts or []):
            s.add(ModelThought(id=uuid.uuid4(), interception_id=iid, content=content,
                               created_at=started_at + timedelta(milliseconds=i)))
        s.commit()
    return iid


def at(days_ago: int = 0, hour: int = 12, minute: int = 0, second: int = 0) -> datetime:
    """A UTC time `days_ago` days before today (at a fixed hour)."""
    today = datetime.now(UTC).replace(hour=hour, minute=minute, second=second, microsecond=0)
    return today - timedelta(days=days_ago)
