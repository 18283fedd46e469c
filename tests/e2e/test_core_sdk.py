"""The request path end to end: official SDKs -> real gateway process -> fake provider."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.e2e.conftest import Setup

INTERCEPTION = "x-aibridge-interception-id"


def _assert_injected(setup: Setup, key_header: str, expected: str) -> None:
    req = setup.fake.requests[-1]
    got = req.header(key_header)
    assert got == expected, f"{key_header}={got!r}"
    wire = repr(req.headers) + req.body.decode(errors="replace")
    assert setup.token not in wire, "the gateway token reached the upstream"


def test_anthropic_blocking(setup_any_db: Setup) -> None:
    setup = setup_any_db
    with setup.claude() as client:
        raw = client.messages.with_raw_response.create(
            model="claude-sonnet-4-5",
            max_tokens=64,
            messages=[{"role": "user", "content": "hi"}],
        )
        msg = raw.parse()
    assert msg.content[0].text == "Hello from the fake provider."  # type: ignore[union-attr]
    assert raw.headers.get(INTERCEPTION)
    _assert_injected(setup, "x-api-key", setup.anthropic_key)
    assert setup.fake.requests[-1].path == "/v1/messages"
    assert setup.fake.requests[-1].header("authorization") is None


def test_anthropic_stream_with_thinking_and_tool(setup: Setup) -> None:
    with (
        setup.claude() as client,
        client.messages.stream(
            model="claude-sonnet-4-5",
            max_tokens=2048,
            thinking={"type": "enabled", "budget_tokens": 1024},
            tools=[
                {
                    "name": "get_weather",
                    "description": "w",
                    "input_schema": {
                        "type": "object",
                        "properties": {"location": {"type": "string"}},
                    },
                }
            ],
            messages=[{"role": "user", "content": "TOOL please"}],
        ) as stream,
    ):
        events = [e.type for e in stream]
        final = stream.get_final_message()
    assert "content_block_delta" in events
    kinds = [b.type for b in final.content]
    assert kinds[0] == "thinking" and "tool_use" in kinds
    tool = next(b for b in final.content if b.type == "tool_use")
    assert tool.input == {"location": "Paris"}  # type: ignore[union-attr]
    _assert_injected(setup, "x-api-key", setup.anthropic_key)


def test_anthropic_beta_query_string_and_headers_pass(setup: Setup) -> None:
    # Claude Code's shape: ?beta=true, anthropic-beta flags, its session header.
    with setup.claude(
        default_headers={"X-Claude-Code-Session-Id": "sess-1"}, default_query={"beta": "true"}
    ) as client:
        client.beta.messages.create(
            model="m",
            max_tokens=5,
            messages=[{"role": "user", "content": "hi"}],
            betas=["interleaved-thinking-2025-05-14"],
        )
    req = setup.fake.requests[-1]
    assert req.query == "beta=true"
    assert "interleaved-thinking-2025-05-14" in (req.header("anthropic-beta") or "")
    assert req.header("x-claude-code-session-id") == "sess-1"
    assert req.header("anthropic-version")


def test_anthropic_count_tokens_and_models_passthrough(setup: Setup) -> None:
    with setup.claude() as client:
        count = client.messages.count_tokens(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )
        models = client.models.list()
    assert count.input_tokens > 0
    assert len(models.data) >= 1
    _assert_injected(setup, "x-api-key", setup.anthropic_key)


def test_anthropic_upstream_error_passes_through(setup: Setup) -> None:
    with setup.claude() as client, pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "ERR429"}]
        )
    err = info.value
    assert err.status_code == 429
    assert err.response.headers.get("retry-after") == "7"
    assert err.response.headers.get("request-id")
    assert err.response.headers.get(INTERCEPTION)


def test_openai_chat_blocking_and_stream(setup_any_db: Setup) -> None:
    setup = setup_any_db
    with setup.oai() as client:
        done = client.chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "hi"}]
        )
        assert done.choices[0].message.content
        _assert_injected(setup, "authorization", f"Bearer {setup.openai_key}")
        assert setup.fake.requests[-1].path == "/v1/chat/completions"
        chunks = list(
            client.chat.completions.create(
                model="gpt-4.1",
                stream=True,
                stream_options={"include_usage": True},
                messages=[{"role": "user", "content": "hi"}],
            )
        )
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == done.choices[0].message.content


def test_openai_chat_parallel_tools_stream(setup: Setup) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
            },
        }
    ]
    with (
        setup.oai() as client,
        client.chat.completions.stream(
            model="gpt-4.1",
            tools=tools,
            messages=[{"role": "user", "content": "TOOL2 now"}],
            stream_options={"include_usage": True},
        ) as stream,
    ):
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert len(calls) == 2


def test_openai_responses_blocking_and_stream(setup: Setup) -> None:
    with setup.oai() as client:
        resp = client.responses.create(
            model="gpt-5", input="THINK hello", reasoning={"effort": "low", "summary": "auto"}
        )
        assert resp.output_text
        with client.responses.stream(model="gpt-5", input="hello") as stream:
            final = stream.get_final_response()
        assert final.output_text
        again = client.responses.retrieve(final.id)
    assert again.id == final.id
    _assert_injected(setup, "authorization", f"Bearer {setup.openai_key}")


def test_openai_models_passthrough(setup: Setup) -> None:
    with setup.oai() as client:
        assert len(client.models.list().data) >= 1


def test_openai_upstream_error_passes_through(setup: Setup) -> None:
    with setup.oai() as client, pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "ERR429"}])
    assert info.value.response.headers.get("retry-after") == "7"


def test_x_api_key_auth_like_old_sdks(setup: Setup) -> None:
    import httpx

    r = httpx.post(
        setup.gw.url("anthropic", "/v1/messages"),
        headers={"x-api-key": setup.token, "anthropic-version": "2023-06-01"},
        json={"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert r.status_code == 200
    _assert_injected(setup, "x-api-key", setup.anthropic_key)
