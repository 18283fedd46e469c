"""Every rejection of the request path, through the real gateway: status, provider-shaped
body, and nothing forwarded upstream."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Setup
from tests.harness import raw_request

MSG = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


def _anthropic_error(r: httpx.Response, status: int, err_type: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == err_type, body
    assert r.headers.get("x-aibridge-interception-id")
    return str(body["error"]["message"])


def _openai_error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body["error"]) >= {"message", "type", "code"}, body
    return str(body["error"]["message"])


@pytest.fixture
def s(shared: Setup) -> Setup:
    shared.fake.clear()
    return shared


def _post(
    s: Setup, provider: str, path: str, headers: dict[str, str] | None = None, **kw: object
) -> httpx.Response:
    return httpx.post(s.gw.url(provider, path), headers=headers or {}, timeout=10, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "headers,fragment",
    [
        ([], "missing gateway token"),
        ([("Authorization", "Bearer ")], "empty"),
        ([("Authorization", "Bearer")], "Bearer"),
        ([("Authorization", "Basic dXNlcjpwYXNz")], "Bearer scheme"),
        ([("Authorization", "Bearer aib_unknown")], "invalid gateway token"),
        ([("X-Api-Key", "x" * 10240)], "invalid gateway token"),
        ([("X-Api-Key", "' OR 1=1 --")], "invalid gateway token"),
        ([("X-Api-Key", "tök€n-ünïcode")], "invalid gateway token"),
        ([("Authorization", "Bearer a"), ("Authorization", "Bearer b")], "more than one"),
    ],
)
def test_bad_tokens_are_401_in_anthropic_shape(
    s: Setup, headers: list[tuple[str, str]], fragment: str
) -> None:
    r = raw_request(
        s.gw.port,
        "POST",
        "/api/v2/aibridge/anthropic/v1/messages",
        [*headers, ("Content-Type", "application/json")],
        json.dumps(MSG).encode(),
    )
    assert r.status == 401, r.body
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
    assert fragment in body["error"]["message"]
    assert s.fake.requests == []


def test_bad_token_is_401_in_openai_shape(s: Setup) -> None:
    r = _post(s, "openai", "/v1/chat/completions", {"authorization": "Bearer nope"}, json={})
    assert "invalid gateway token" in _openai_error(r, 401)
    assert s.fake.requests == []


def test_conflicting_auth_headers(s: Setup) -> None:
    r = _post(
        s,
        "anthropic",
        "/v1/messages",
        {"authorization": f"Bearer {s.token}", "x-api-key": "other"},
        json=MSG,
    )
    assert "different" in _anthropic_error(r, 401, "authentication_error")


def test_expired_revoked_and_disabled(s: Setup) -> None:
    admin = s.gw.admin
    admin.add_user("bob")
    expired = admin.token("bob", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    revoked_token = admin.token("bob", name="rev")
    from sqlmodel import Session

    from gateway.store import SYSTEM_ACTOR
    from gateway.store import users as ustore

    with Session(admin.engine) as ses:
        for row, _ in ustore.list_tokens(ses, user=ustore.get_user(ses, username="bob")):
            if row.name == "rev":
                ustore.revoke_token(ses, token=row, actor=SYSTEM_ACTOR)
        ses.commit()
    admin.add_user("carol")
    carol = admin.token("carol")
    with Session(admin.engine) as ses:
        ustore.update_user(
            ses, user=ustore.get_user(ses, username="carol"), actor=SYSTEM_ACTOR, disabled=True
        )
        ses.commit()
    s.gw.sync()
    for token, fragment in ((expired, "expired"), (revoked_token, "revoked"), (carol, "disabled")):
        r = _post(s, "anthropic", "/v1/messages", {"x-api-key": token}, json=MSG)
        assert fragment in _anthropic_error(r, 401, "authentication_error")
    assert s.fake.requests == []


def _auth(s: Setup) -> dict[str, str]:
    return {"authorization": f"Bearer {s.token}"}


def test_unknown_provider_404(s: Setup) -> None:
    r = _post(s, "nope", "/v1/messages", _auth(s), json=MSG)
    assert "unknown provider" in _anthropic_error(r, 404, "not_found_error")


@pytest.mark.parametrize(
    "raw_path",
    [
        "/api/v2/aibridge/../anthropic/v1/messages",
        "/api/v2/aibridge/%2e%2e/v1/messages",
        "/api/v2/aibridge/Anthropic/v1/messages",
        "/api/v2/aibridge//v1/messages",
        "/api/v2/aibridge/anthropic%2fx/v1/messages",
        "/api/v2/aibridge/anthropic/v1/%2e%2e/v1/messages",
        "/api/v2/aibridge/anthropic/v1//messages",
        "/api/v2/aibridge/%EF%BC%8E%EF%BC%8E/v1/messages",
        "/api/v2/aibridge/anthropic;x/v1/messages",
        "/api/v2/aibridge/" + "a" * 200 + "/v1/messages",
    ],
)
def test_bad_paths_404(s: Setup, raw_path: str) -> None:
    body = b'{"model":"m","max_tokens":5,"messages":[]}'
    head = (
        f"POST {raw_path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {s.token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", s.gw.port), timeout=10) as sock:
        sock.sendall(head.encode() + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 404"), data[:200]
    assert s.fake.requests == []


@pytest.mark.parametrize(
    "method,path",
    [
        ("POST", "/v1/complete"),
        ("GET", "/v1/messages"),
        ("DELETE", "/v1/models/x"),
        ("POST", "/v1/messages/batches"),
        ("GET", "/v1/models/a/b"),
    ],
)
def test_unsupported_routes_404(s: Setup, method: str, path: str) -> None:
    r = httpx.request(method, s.gw.url("anthropic", path), headers=_auth(s), timeout=10)
    assert f"route not supported: {method} {path}" in _anthropic_error(r, 404, "not_found_error")
    assert s.fake.requests == []


def test_disabled_provider_403_then_enabled(s: Setup) -> None:
    from gateway.models import ProviderUpdate

    s.gw.admin.update_provider("anthropic", ProviderUpdate(enabled=False))
    s.gw.sync()
    try:
        r = _post(s, "anthropic", "/v1/messages", _auth(s), json=MSG)
        assert "disabled" in _anthropic_error(r, 403, "permission_error")
        assert s.fake.requests == []
    finally:
        s.gw.admin.update_provider("anthropic", ProviderUpdate(enabled=True))
        s.gw.sync()
    assert _post(s, "anthropic", "/v1/messages", _auth(s), json=MSG).status_code == 200


def test_head_preflight_without_auth(s: Setup) -> None:
    for path in ("", "/"):
        r = httpx.head(s.gw.url("anthropic", path), timeout=5)
        assert r.status_code == 200
    assert s.fake.requests == []


def test_websocket_upgrade_gets_clear_non_101(s: Setup) -> None:
    r = httpx.get(
        s.gw.url("openai", "/v1/responses"),
        timeout=5,
        headers={
            **_auth(s),
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "nupp3Ohxp7FFPj+OiLvrUg==",
        },
    )
    assert r.status_code == 426
    assert "WebSocket is not supported" in _openai_error(r, 426)
    assert s.fake.requests == []


def test_oversized_body_413_before_upstream(s: Setup) -> None:
    big = b"x" * (32 * 1024 * 1024 + 1)
    r = _post(
        s,
        "anthropic",
        "/v1/messages",
        {**_auth(s), "content-type": "application/json"},
        content=big,
    )
    assert "exceeds the gateway limit" in _anthropic_error(r, 413, "request_too_large")
    assert s.fake.requests == []


def test_upstream_unreachable_502_json(s: Setup) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    s.gw.admin.add_provider("dead", "anthropic", f"http://127.0.0.1:{dead_port}")
    s.gw.sync()
    r = _post(s, "dead", "/v1/messages", _auth(s), json=MSG)
    assert r.status_code == 502
    body = r.json()
    assert body["type"] == "error" and "upstream unreachable" in body["error"]["message"]


def test_reset_before_headers_is_502(s: Setup) -> None:
    r = _post(
        s,
        "anthropic",
        "/v1/messages",
        _auth(s),
        json={**MSG, "messages": [{"role": "user", "content": "RESET"}]},
    )
    assert r.status_code == 502
    assert r.json()["type"] == "error"


def test_private_upstream_refused_again_when_connecting(tmp_path: Path, fake: Any) -> None:
    """A provider saved while private upstreams were allowed (or whose name now resolves to a
    loopback address) is refused at connect time once they are not."""
    from tests.harness import gateway_env, start_gateway

    db = f"sqlite:///{tmp_path / 'g.db'}"
    env = gateway_env(tmp_path / "data", db, {"AI_GATEWAY_ALLOW_PRIVATE_UPSTREAMS": "false"})
    gw = start_gateway(tmp_path, db, env=env)
    try:
        port = fake.base_url.rsplit(":", 1)[1]
        gw.admin.add_provider("by-ip", "anthropic", fake.base_url)  # the store check is skipped
        gw.admin.add_provider("by-name", "anthropic", f"http://localhost:{port}")
        gw.admin.add_user("u")
        token = gw.admin.token("u")
        gw.sync()
        for name in ("by-ip", "by-name"):
            r = httpx.post(gw.url(name, "/v1/messages"), json=MSG, timeout=10,
                           headers={"x-api-key": token})
            assert r.status_code == 502, r.text
            assert "loopback, private" in r.json()["error"]["message"]
        assert fake.requests == []
    finally:
        gw.stop()
