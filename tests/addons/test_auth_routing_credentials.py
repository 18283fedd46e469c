"""Auth -> Routing -> Credentials on real flows, in registration order."""

from __future__ import annotations

from mitmproxy import http

from addons.auth import Auth
from addons.credentials import Credentials, strip_client_headers
from addons.paths import Paths
from addons.routing import Routing
from tests.addons.conftest import World, gateway_flow


def run(world: World, f: http.HTTPFlow) -> None:
    for addon in (
        Paths(world.gateway),
        Auth(world.gateway),
        Routing(world.gateway),
        Credentials(world.gateway),
    ):
        addon.requestheaders(f)


def test_valid_request_is_rewritten_and_key_injected(world: World) -> None:
    f = gateway_flow(
        "/api/v2/aibridge/anthropic/v1/messages?beta=true",
        headers={
            "authorization": f"Bearer {world.token}",
            "anthropic-beta": "x",
            "connection": "keep-alive, x-drop-me",
            "x-drop-me": "1",
            "host": "evil.example",
        },
    )
    run(world, f)
    assert f.response is None
    r = f.request
    assert (r.scheme, r.host, r.port, r.path) == ("http", "127.0.0.1", 9, "/v1/messages?beta=true")
    assert r.headers["host"] == "127.0.0.1:9"
    assert r.headers["x-api-key"] == world.key
    assert "authorization" not in r.headers and "x-drop-me" not in r.headers
    assert "connection" not in r.headers
    assert r.headers["anthropic-beta"] == "x"


def test_openai_base_path_not_doubled(world: World) -> None:
    f = gateway_flow(
        "/api/v2/aibridge/openai/v1/chat/completions", headers={"x-api-key": world.token}
    )
    run(world, f)
    assert f.response is None
    assert (f.request.scheme, f.request.host, f.request.port) == ("https", "api.example.com", 443)
    assert f.request.path == "/v1/chat/completions"
    assert f.request.headers["authorization"] == "Bearer sk-oai-abcdef123456"
    assert "x-api-key" not in f.request.headers


def test_missing_token_401_and_nothing_rewritten(world: World) -> None:
    f = gateway_flow("/api/v2/aibridge/anthropic/v1/messages")
    run(world, f)
    assert f.response is not None and f.response.status_code == 401
    assert f.request.host == "localhost"


def test_unknown_provider_needs_auth_first(world: World) -> None:
    f = gateway_flow("/api/v2/aibridge/secret-provider/v1/messages")
    run(world, f)
    assert f.response is not None and f.response.status_code == 401


def test_byok_keeps_client_key(world: World) -> None:
    f = gateway_flow(
        "/api/v2/aibridge/anthropic/v1/messages",
        headers={"x-aibridge-token": world.token, "x-api-key": "sk-ant-users-own-key"},
    )
    run(world, f)
    assert f.response is None
    assert f.request.headers["x-api-key"] == "sk-ant-users-own-key"
    assert "x-aibridge-token" not in f.request.headers
    fctx = world.gateway.context(f)
    assert fctx is not None and fctx.byok_key == "sk-ant-users-own-key"


def test_connection_header_cannot_strip_framing() -> None:
    h = http.Headers(
        connection="content-length, transfer-encoding, host", **{"content-length": "3", "host": "x"}
    )
    strip_client_headers(h)
    assert h["content-length"] == "3" and h["host"] == "x"


def test_route_allow_list(world: World) -> None:
    for method, path, status in (
        ("GET", "/v1/models", None),
        ("GET", "/v1/models/x", None),
        ("POST", "/v1/messages/count_tokens", None),
        ("GET", "/v1/messages", 404),
        ("POST", "/v1/files", 404),
    ):
        f = gateway_flow(
            f"/api/v2/aibridge/anthropic{path}", method, headers={"x-api-key": world.token}
        )
        run(world, f)
        got = f.response.status_code if f.response else None
        assert got == status, (method, path, got)
