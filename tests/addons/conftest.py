"""Addon tests: real addons on a real (SQLite) runtime, driven with mitmproxy's taddons/tflow."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mitmproxy import http
from mitmproxy.test import tflow

from addons.state import Gateway
from gateway.crypto import generate_key
from gateway.runtime import Runtime
from gateway.settings import load_settings
from tests.harness import Admin


@dataclass
class World:
    gateway: Gateway
    runtime: Runtime
    admin: Admin
    token: str
    key: str

    def reload(self) -> None:
        assert self.runtime.config is not None
        self.runtime.config.reload()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    env = {
        "AI_GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "AI_GATEWAY_ENCRYPTION_KEYS": generate_key(),
        "AI_GATEWAY_ALLOW_PRIVATE_UPSTREAMS": "true",
    }
    loaded = load_settings(environ=env)
    runtime = Runtime(loaded.settings)
    runtime.start()
    assert runtime.engine is not None and runtime.keyring is not None
    admin = Admin(runtime.engine, runtime.keyring)
    key = "sk-ant-upstream-0123456789"
    admin.add_provider("anthropic", "anthropic", "http://127.0.0.1:9", [key])
    admin.add_provider("openai", "openai", "https://api.example.com/v1", ["sk-oai-abcdef123456"])
    admin.add_user("alice")
    token = admin.token("alice")
    gateway = Gateway()
    gateway.loaded = loaded
    gateway.runtime = runtime
    w = World(gateway, runtime, admin, token, key)
    w.reload()
    yield w
    runtime.stop()


def gateway_flow(
    path: str, method: str = "POST", headers: dict[str, str] | None = None, body: bytes = b""
) -> http.HTTPFlow:
    f = tflow.tflow()
    f.request = http.Request.make(method, f"http://localhost:1{path}", body, headers or {})
    return f
