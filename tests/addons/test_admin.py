"""The Admin addon serves the admin app on the gateway's listener and leaves gateway routes
(`/api/v2/aibridge/<provider>/...`) to the addons after it."""

from __future__ import annotations

import orjson
import pytest
from mitmproxy import http
from mitmproxy.test import taddons

from addons.admin import Admin, is_admin_path
from addons.paths import Paths
from tests.addons.conftest import World, gateway_flow


def serve(world: World, flow: http.HTTPFlow) -> None:
    addon = Admin(world.gateway)
    with taddons.context(addon) as tctx:
        pending = addon.request(flow)  # None for paths it does not serve (no coroutine)
        if pending is not None:
            tctx.master.event_loop.run_until_complete(pending)


@pytest.fixture
def root_token(world: World) -> str:
    world.admin.add_user("root", "admin")
    token = world.admin.token("root")
    world.reload()
    return token


def test_serves_the_providers_api(world: World, root_token: str) -> None:
    f = gateway_flow("/api/v2/ai/providers", "GET", {"Authorization": f"Bearer {root_token}"})
    serve(world, f)
    assert f.response is not None and f.response.status_code == 200
    assert f.response.headers["content-type"] == "application/json"
    body = orjson.loads(f.response.content or b"")
    assert [p["name"] for p in body] == ["anthropic", "openai"]
    assert world.key not in (f.response.get_text() or ""), "a plaintext key left the app"


def test_serves_a_post_with_its_body(world: World, root_token: str) -> None:
    payload = orjson.dumps({"type": "openai-compat", "name": "local", "api_keys": ["sk-local-1234"],
                            "base_url": "http://127.0.0.1:11434/v1"})
    f = gateway_flow("/api/v2/ai/providers", "POST", {"Authorization": f"Bearer {root_token}",
                                                      "content-type": "application/json"}, payload)
    serve(world, f)
    assert f.response is not None
    assert f.response.status_code == 201, f.response.get_text()
    assert orjson.loads(f.response.content or b"")["name"] == "local"
    assert world.runtime.config is not None
    assert "local" in world.runtime.config.snapshot.providers


def test_admin_api_rejects_without_token(world: World) -> None:
    f = gateway_flow("/api/v2/ai/providers", "GET")
    serve(world, f)
    assert f.response is not None and f.response.status_code == 401
    assert orjson.loads(f.response.content or b"")["message"].startswith("missing gateway token")


@pytest.mark.parametrize("path", ["/api/v2/aibridge/anthropic/v1/messages",
                                  "/api/v2/aibridge/openai/v1/chat/completions?x=1",
                                  "/api/v2/aibridge/BAD/v1/messages",
                                  "/api/v2/aibridge/", "/healthz", "/v1/messages"])
def test_ignores_gateway_routes_and_other_paths(world: World, path: str) -> None:
    f = gateway_flow(path, "POST", {"Authorization": f"Bearer {world.token}"}, b"{}")
    serve(world, f)
    assert f.response is None
    assert not is_admin_path(path)


def test_gateway_route_still_reaches_paths_after_admin(world: World) -> None:
    f = gateway_flow("/api/v2/aibridge/anthropic/v1/messages", "POST",
                     {"Authorization": f"Bearer {world.token}"}, b"{}")
    Paths(world.gateway).requestheaders(f)
    serve(world, f)
    fctx = world.gateway.context(f)
    assert fctx is not None and fctx.provider_name == "anthropic" and not fctx.rejected
    assert f.response is None


@pytest.mark.parametrize("path", ["/", "/dashboard", "/dashboard/providers", "/api/v2/users",
                                  "/api/v2/openapi.json", "/api/v2/docs", "/api/v2/audit",
                                  "/api/v2/aibridge/interceptions",
                                  "/api/v2/aibridge/interceptions/abc?x=1",
                                  "/api/v2/aibridge/usage?group_by=day"])
def test_admin_paths(path: str) -> None:
    assert is_admin_path(path)


def test_reserved_admin_paths_are_served(world: World, root_token: str) -> None:
    f = gateway_flow("/api/v2/aibridge/usage?group_by=provider", "GET",
                     {"X-Api-Key": root_token})
    serve(world, f)
    assert f.response is not None and f.response.status_code == 200
    assert orjson.loads(f.response.content or b"") == {"group_by": "provider", "items": []}


def test_dashboard_redirects_to_sign_in(world: World) -> None:
    f = gateway_flow("/dashboard/providers", "GET")
    serve(world, f)
    assert f.response is not None and f.response.status_code == 303
    assert f.response.headers["location"] == "/dashboard/login?next=/dashboard/providers"


def test_leaves_answered_flows_alone(world: World) -> None:
    f = gateway_flow("/api/v2/ai/providers", "GET")
    f.response = http.Response.make(418, b"already")
    serve(world, f)
    assert f.response.status_code == 418


def test_starting_gateway_is_503(world: World) -> None:
    world.gateway.runtime = None
    f = gateway_flow("/api/v2/ai/providers", "GET", {"Authorization": "Bearer aib_x"})
    serve(world, f)
    assert f.response is not None and f.response.status_code == 503
