"""FlowView: comments, error marks, masked secrets and the flow limit, with mitmproxy's View."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Optional

import orjson
import pytest
from mitmproxy import flow as mflow
from mitmproxy import http
from mitmproxy.addons.view import View
from mitmproxy.test import taddons

from addons.auth import Auth
from addons.credentials import Credentials
from addons.flowview import FLOW_LIMIT_OPTION, MARK_ERROR, FlowView
from addons.paths import Paths
from addons.recording import Recording
from addons.routing import Routing
from tests.addons.conftest import World, gateway_flow
from tests.addons.test_dumps import SSE


class Rig:
    """Our addons in registration order, then mitmproxy's view (as in mitmweb)."""

    def __init__(self, world: World, tctx: Any, view: View | None) -> None:
        g = world.gateway
        self.world, self.view, self.tctx = world, view, tctx
        self.fv = FlowView(g)
        self.ours = [Paths(g), Auth(g), Routing(g), Credentials(g), Recording(g), self.fv]
        tctx.master.addons.add(self.fv)
        self.fv.running()

    def hook(self, name: str, f: http.HTTPFlow) -> None:
        for addon in self.ours:
            if hasattr(addon, name):
                getattr(addon, name)(f)
        if self.view is not None and hasattr(self.view, name):
            getattr(self.view, name)(f)

    def send(self, f: http.HTTPFlow) -> None:
        self.hook("requestheaders", f)
        self.hook("request", f)

    def answer(self, f: http.HTTPFlow, resp: http.Response, chunks: tuple[bytes, ...] = ()) -> None:
        f.response = resp
        self.hook("responseheaders", f)
        if callable(f.response.stream):
            for chunk in [*chunks, b""]:
                f.response.stream(chunk)
        self.hook("response", f)


@pytest.fixture
def rig(world: World) -> Iterator[Rig]:
    view = View()
    with taddons.context(view) as tctx:
        tctx.master.options.add_option(FLOW_LIMIT_OPTION, Optional[str], None, "")  # noqa: UP045
        yield Rig(world, tctx, view)


def chat(
    world: World,
    content: str = "hello",
    stream: bool = False,
    query: str = "",
    headers: dict[str, str] | None = None,
) -> http.HTTPFlow:
    body = {
        "model": "claude-x",
        "max_tokens": 5,
        "stream": stream,
        "messages": [{"role": "user", "content": content}],
    }
    return gateway_flow(
        f"/api/v2/aibridge/anthropic/v1/messages{query}",
        headers={
            "authorization": f"Bearer {world.token}",
            "content-type": "application/json",
            "user-agent": "claude-cli/2.0.1 (external, cli)",
            **(headers or {}),
        },
        body=orjson.dumps(body),
    )


JSON_OK = orjson.dumps(
    {
        "id": "msg_1",
        "type": "message",
        "model": "claude-x",
        "content": [{"type": "text", "text": "hi"}],
        "usage": {
            "input_tokens": 11,
            "output_tokens": 22,
            "cache_read_input_tokens": 3,
            "cache_creation_input_tokens": 4,
        },
    }
)


def test_inactive_without_a_view_save_or_dumper(world: World) -> None:
    with taddons.context():
        fv = FlowView(world.gateway)
        fv.running()
        assert fv.active is False
        f = chat(world)
        g = world.gateway
        for addon in (Paths(g), Auth(g), Routing(g), Credentials(g), fv):
            addon.requestheaders(f)
        assert f.request.headers["x-api-key"] == world.key
        fv.response(f)
        assert f.comment == ""


def test_key_masked_in_view_real_upstream_then_masked_for_good(rig: Rig) -> None:
    world = rig.world
    f = chat(world, query="?key=sk-query-secret-123456&beta=true")
    rig.hook("requestheaders", f)
    assert rig.view is not None and f in rig.view  # the view holds the flow from here on
    assert f.request.headers["x-api-key"] == "sk-a...6789"
    assert "sk-query-secret-123456" not in f.request.path
    rig.hook("request", f)
    assert f.request.headers["x-api-key"] == world.key  # what goes upstream
    assert f.request.path == "/v1/messages?key=sk-query-secret-123456&beta=true"
    rig.answer(f, http.Response.make(200, JSON_OK, {"content-type": "application/json"}))
    assert f.request.headers["x-api-key"] == "sk-a...6789"
    assert "sk-query-secret-123456" not in f.request.path and "beta=true" in f.request.path
    assert f.comment == (
        "user alice | provider anthropic | model claude-x | client Claude Code"
        " | tokens in 11 out 22 cache read 3 write 4"
    )
    assert f.marked == ""


def test_streamed_usage_in_comment_and_stream_unchanged(rig: Rig) -> None:
    f = chat(rig.world, stream=True)
    rig.send(f)
    f.response = http.Response.make(
        200,
        b"",
        {"content-type": "text/event-stream", "set-cookie": "cf=sk-cookie-secret-99887766"},
    )
    rig.hook("responseheaders", f)
    assert callable(f.response.stream)
    assert [f.response.stream(c) for c in SSE] == list(SSE)
    f.response.stream(b"")
    rig.hook("response", f)
    assert f.comment.endswith("tokens in 7 out 5 cache read 0 write 0")
    assert "sk-cookie-secret-99887766" not in f.response.headers["set-cookie"]
    fctx = rig.world.gateway.context(f)
    assert fctx is not None and fctx.session is not None and fctx.session.ended


def test_secrets_scrubbed_from_request_body_after_sending(rig: Rig) -> None:
    world = rig.world
    f = chat(world, content=f"leak {world.key} and {world.token}")
    rig.send(f)
    assert world.key.encode() in (f.request.content or b"")  # upstream gets the body as sent
    rig.answer(f, http.Response.make(200, JSON_OK, {"content-type": "application/json"}))
    body = f.request.content or b""
    assert world.key.encode() not in body and world.token.encode() not in body
    assert b"leak sk-a...6789 and aib_..." in body


def test_upstream_error_is_marked(rig: Rig) -> None:
    f = chat(rig.world)
    rig.send(f)
    rig.answer(
        f, http.Response.make(429, b'{"type":"error"}', {"content-type": "application/json"})
    )
    assert f.marked == MARK_ERROR
    assert f.comment.endswith("| HTTP 429")


def test_failed_flow_is_marked_and_masked(rig: Rig) -> None:
    world = rig.world
    f = chat(world)
    rig.send(f)
    f.error = mflow.Error("upstream connection reset")
    rig.hook("error", f)
    assert f.marked == MARK_ERROR
    assert "error: upstream connection reset" in f.comment
    assert f.request.headers["x-api-key"] == "sk-a...6789"


def test_rejected_request_keeps_the_token_masked(rig: Rig) -> None:
    f = gateway_flow(
        "/api/v2/aibridge/anthropic/v1/messages",
        headers={"authorization": "Bearer aib_not-a-valid-token-at-all-000000"},
    )
    rig.send(f)
    assert f.response is not None and f.response.status_code == 401
    rig.hook("response", f)
    assert "aib_not-a-valid" not in f.request.headers["authorization"]
    assert f.request.headers["authorization"].startswith("Bearer aib_...")
    assert f.marked == MARK_ERROR


def test_flow_limit_keeps_the_last_n(rig: Rig) -> None:
    assert rig.fv.limit == 1000  # the flow_limit setting's default
    rig.tctx.configure(rig.fv, **{FLOW_LIMIT_OPTION: "3"})
    assert rig.fv.limit == 3
    flows = []
    for _ in range(5):
        f = chat(rig.world)
        rig.send(f)
        rig.answer(f, http.Response.make(200, JSON_OK, {"content-type": "application/json"}))
        flows.append(f)
    assert rig.view is not None
    assert rig.view.store_count() == 3
    assert [rig.view.get_by_id(f.id) is not None for f in flows] == [False, False, True, True, True]


def test_flow_limit_zero_is_unlimited(rig: Rig) -> None:
    rig.tctx.configure(rig.fv, **{FLOW_LIMIT_OPTION: "0"})
    for _ in range(4):
        f = chat(rig.world)
        rig.send(f)
        rig.answer(f, http.Response.make(200, JSON_OK, {"content-type": "application/json"}))
    assert rig.view is not None and rig.view.store_count() == 4


def test_invalid_flow_limit_is_an_option_error(rig: Rig) -> None:
    from mitmproxy import exceptions

    with pytest.raises(exceptions.OptionsError):
        rig.tctx.configure(rig.fv, **{FLOW_LIMIT_OPTION: "-1"})


def test_non_gateway_flows_need_the_early_unmask(rig: Rig) -> None:
    admin_auth = "Bearer aib_admin-token-for-the-admin-api-0000"
    f = gateway_flow("/api/v2/users", "GET", headers={"authorization": admin_auth})
    rig.hook("requestheaders", f)
    assert f.request.headers["authorization"] == admin_auth  # nobody would put it back
    f.response = http.Response.make(200, b"[]", {"content-type": "application/json"})
    rig.hook("response", f)
    assert f.request.headers["authorization"] == "Bearer aib_...0000"


def test_early_unmask_restores_before_admin_and_upstream(world: World) -> None:
    view = View()
    with taddons.context(view) as tctx:
        rig = Rig(world, tctx, view)
        tctx.master.addons.add(rig.fv.unmask)
        assert rig.fv.early
        seen: list[str] = []

        class AdminLike:
            def request(self, f: http.HTTPFlow) -> None:
                if f.request.path.startswith("/api/v2/users"):
                    seen.append(f.request.headers["authorization"])

        # registration order: unmask first, then Admin, ..., FlowView last
        rig.ours = [rig.fv.unmask, AdminLike(), *rig.ours]
        admin_auth = "Bearer aib_admin-token-for-the-admin-api-0000"
        f = gateway_flow("/api/v2/users", "GET", headers={"authorization": admin_auth})
        rig.hook("requestheaders", f)
        assert f.request.headers["authorization"] == "Bearer aib_...0000"  # what the view gets
        rig.hook("request", f)
        assert seen == [admin_auth]
        f.response = http.Response.make(200, b"[]", {"content-type": "application/json"})
        rig.hook("response", f)
        assert f.request.headers["authorization"] == "Bearer aib_...0000"
        g = chat(world)
        rig.send(g)
        assert g.request.headers["x-api-key"] == world.key
