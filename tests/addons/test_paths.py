from __future__ import annotations

import pytest

from addons.paths import Paths, split_gateway_path
from tests.addons.conftest import World, gateway_flow


@pytest.mark.parametrize(
    "path,expected",
    [
        (
            "/api/v2/aibridge/anthropic/v1/messages?beta=true",
            ("anthropic", "/v1/messages", "/v1/messages", "beta=true"),
        ),
        ("/api/v2/aibridge/openai", ("openai", "", "", "")),
        ("/api/v2/aibridge/Anthropic/v1/messages", ("", "/v1/messages", "/v1/messages", "")),
        ("/api/v2/aibridge/%2e%2e/v1", ("", "/v1", "/v1", "")),
        ("/api/v2/aibridge/an%74hropic/v1", ("", "/v1", "/v1", "")),
        ("/api/v2/aibridge/a/v1/%2e%2e/x", ("a", "/v1/../x", "/v1/%2e%2e/x", "")),
        ("/v1/messages", None),
        ("/api/v2/aibridgex/a/v1", None),
    ],
)
def test_split(path: str, expected: tuple[str, str, str, str] | None) -> None:
    assert split_gateway_path(path) == expected


def test_non_gateway_paths_are_left_alone(world: World) -> None:
    f = gateway_flow("/v1/messages")
    Paths(world.gateway).requestheaders(f)
    assert f.response is None and world.gateway.context(f) is None


def test_head_preflight(world: World) -> None:
    f = gateway_flow("/api/v2/aibridge/anthropic", "HEAD")
    Paths(world.gateway).requestheaders(f)
    assert f.response is not None and f.response.status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api/v2/aibridge/BAD/v1/messages",
        "/api/v2/aibridge/a/v1/../v1/messages",
        "/api/v2/aibridge/a/v1//messages",
        "/api/v2/aibridge/a/v1/%00",
    ],
)
def test_invalid_is_404_with_error_body(world: World, path: str) -> None:
    f = gateway_flow(path)
    Paths(world.gateway).requestheaders(f)
    assert f.response is not None and f.response.status_code == 404
    body = f.response.json()
    if path.endswith("/v1/messages") and "/../" not in path:
        assert body["type"] == "error"  # Anthropic-looking path: Anthropic's shape
    assert body["error"]["message"]


def test_disabled_gateway(world: World) -> None:
    from gateway.settings import load_settings

    world.gateway.loaded = load_settings(
        {"enabled": False}, environ={"AI_GATEWAY_DATA_DIR": str(world.runtime.settings.data_dir)}
    )
    f = gateway_flow("/api/v2/aibridge/openai/v1/chat/completions")
    Paths(world.gateway).requestheaders(f)
    assert f.response is not None and f.response.status_code == 404
    assert "disabled" in f.response.json()["error"]["message"]
    assert f.response.json()["error"]["code"] == "gateway_disabled"


def test_not_ready_is_503(world: World) -> None:
    world.gateway.runtime = None
    f = gateway_flow("/api/v2/aibridge/anthropic/v1/messages")
    Paths(world.gateway).requestheaders(f)
    assert f.response is not None and f.response.status_code == 503
