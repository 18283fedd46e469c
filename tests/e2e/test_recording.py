"""Official SDKs through the real gateway: the rows in the database are exactly the expected
records (usage by the fake's documented formula, prompts, tool calls, thoughts)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.conftest import Setup
from tests.e2e.recorded import Recorded, wait_recorded
from tests.fakeprovider import load_fake_provider

IID = "x-aibridge-interception-id"
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "weather",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}},
}
CHAT_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
    },
}
RESP_TOOL = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
}


def _stream_iid(stream: Any) -> str:
    """The interception id header of a streaming response, from any SDK stream helper."""
    response = getattr(stream, "response", None) or stream._raw_stream.response
    return str(response.headers[IID])


def anthropic_expected(setup: Setup) -> tuple[int, int, int, int]:
    u = load_fake_provider().expected_usage("anthropic", setup.fake.requests[-1].json())
    return (
        u["input_tokens"],
        u["output_tokens"],
        u["cache_read_input_tokens"],
        u["cache_creation_input_tokens"],
    )


def chat_expected(setup: Setup) -> tuple[int, int, int, int]:
    u = load_fake_provider().expected_usage("chat", setup.fake.requests[-1].json())
    cached = u["prompt_tokens_details"]["cached_tokens"]
    return (u["prompt_tokens"] - cached, u["completion_tokens"], cached, 0)


def responses_expected(setup: Setup) -> tuple[int, int, int, int]:
    u = load_fake_provider().expected_usage("responses", setup.fake.requests[-1].json())
    cached = u["input_tokens_details"]["cached_tokens"]
    return (u["input_tokens"] - cached, u["output_tokens"], cached, 0)


def _common(
    rec: Recorded, setup: Setup, provider: str, model: str, streamed: bool, prompt: str | None
) -> None:
    i = rec.interception
    assert i.status == "completed", i.error_message
    assert (i.provider_name, i.model, i.streamed, i.parsed) == (provider, model, streamed, True)
    assert i.ended_at is not None and i.ended_at >= i.started_at
    assert i.credential_kind == "centralized"
    assert i.credential_hint and setup.anthropic_key not in i.credential_hint
    assert [p.prompt for p in rec.prompts] == ([prompt] if prompt else [])


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_thinking_and_tool(setup_any_db: Setup, stream: bool) -> None:
    setup = setup_any_db
    kwargs: dict[str, Any] = dict(
        model="claude-sonnet-4-5",
        max_tokens=2048,
        tools=[WEATHER_TOOL],
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "context", "cache_control": {"type": "ephemeral"}},
                    {"type": "text", "text": "TOOL please"},
                ],
            }
        ],
    )
    with setup.claude() as client:
        if stream:
            with client.messages.stream(**kwargs) as s:
                final = s.get_final_message()
                iid = _stream_iid(s)
        else:
            raw = client.messages.with_raw_response.create(**kwargs)
            final, iid = raw.parse(), raw.headers[IID]
    rec = wait_recorded(setup.gw.admin.engine, iid)
    _common(rec, setup, "anthropic", "claude-sonnet-4-5", stream, "TOOL please")
    assert rec.usage == anthropic_expected(setup)
    assert rec.usage[2:] == (7, 3)
    assert rec.usages[0].provider_response_id == final.id
    tool_block = next(b for b in final.content if b.type == "tool_use")
    assert [(t.tool, t.tool_call_id, json.loads(t.input)) for t in rec.tools] == [
        ("get_weather", tool_block.id, {"location": "Paris"})
    ]
    thinking = next(b for b in final.content if b.type == "thinking")
    assert [(t.content, t.metadata_["source"]) for t in rec.thoughts] == [
        (thinking.thinking, "thinking")
    ]  # type: ignore[union-attr]


@pytest.mark.parametrize("stream", [False, True])
def test_chat_parallel_tools(setup_any_db: Setup, stream: bool) -> None:
    setup = setup_any_db
    kwargs: dict[str, Any] = dict(
        model="gpt-4.1",
        tools=[CHAT_TOOL],
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "TOOL2 now"},
        ],
    )
    with setup.oai() as client:
        if stream:
            with client.chat.completions.stream(
                stream_options={"include_usage": True}, **kwargs
            ) as s:
                final = s.get_final_completion()
                iid = _stream_iid(s)
        else:
            raw = client.chat.completions.with_raw_response.create(**kwargs)
            final, iid = raw.parse(), raw.headers[IID]
    rec = wait_recorded(setup.gw.admin.engine, iid)
    _common(rec, setup, "openai", "gpt-4.1", stream, "TOOL2 now")
    assert rec.usage == chat_expected(setup)
    calls = final.choices[0].message.tool_calls or []
    assert len(calls) == 2
    assert sorted((t.tool_call_id, t.tool, t.input) for t in rec.tools) == sorted(
        (c.id, c.function.name, c.function.arguments) for c in calls
    )  # type: ignore[union-attr]


def test_chat_stream_without_usage_chunk_records_no_usage(setup: Setup) -> None:
    with setup.oai() as client:
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4.1", stream=True, messages=[{"role": "user", "content": "hi"}]
        )
        iid = raw.headers[IID]
        list(raw.parse())
    rec = wait_recorded(setup.gw.admin.engine, iid)
    assert rec.interception.status == "completed" and rec.usages == []


@pytest.mark.parametrize("stream", [False, True])
def test_responses_reasoning_and_function_call(setup_any_db: Setup, stream: bool) -> None:
    setup = setup_any_db
    kwargs: dict[str, Any] = dict(
        model="gpt-5",
        tools=[RESP_TOOL],
        reasoning={"effort": "low", "summary": "auto"},
        input=[{"role": "user", "content": [{"type": "input_text", "text": "TOOL THINK"}]}],
    )
    with setup.oai() as client:
        if stream:
            with client.responses.stream(**kwargs) as s:
                final = s.get_final_response()
                iid = s._raw_stream.response.headers[IID]
        else:
            raw = client.responses.with_raw_response.create(**kwargs)
            final, iid = raw.parse(), raw.headers[IID]
    rec = wait_recorded(setup.gw.admin.engine, iid)
    _common(rec, setup, "openai", "gpt-5", stream, "TOOL THINK")
    assert rec.usage == responses_expected(setup)
    assert rec.usages[0].provider_response_id == final.id
    assert rec.usages[0].metadata_.get("output_tokens_details.reasoning_tokens") == 8
    call = next(o for o in final.output if o.type == "function_call")
    assert [(t.tool_call_id, t.tool, t.input) for t in rec.tools] == [
        (call.call_id, call.name, call.arguments)
    ]  # type: ignore[union-attr]
    summary = next(o for o in final.output if o.type == "reasoning")
    assert [t.content for t in rec.thoughts] == [s.text for s in summary.summary]  # type: ignore[union-attr]
    assert all(t.metadata_["source"] == "reasoning_summary" for t in rec.thoughts)


def test_tool_result_turn_correlates(setup: Setup) -> None:
    with setup.claude() as client:
        raw = client.messages.with_raw_response.create(
            model="m",
            max_tokens=64,
            tools=[WEATHER_TOOL],
            messages=[
                {"role": "user", "content": "TOOL please"},
                {
                    "role": "assistant",
                    "content": [
                        {
                            "type": "tool_use",
                            "id": "toolu_01",
                            "name": "get_weather",
                            "input": {"location": "Paris"},
                        }
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_01", "content": "sunny"}
                    ],
                },
            ],
        )
        iid = raw.headers[IID]
    rec = wait_recorded(setup.gw.admin.engine, iid)
    assert rec.interception.correlating_tool_call_id == "toolu_01"
    assert rec.prompts == [] and rec.tools == []


def test_upstream_error_is_recorded(setup: Setup) -> None:
    import anthropic

    with setup.claude() as client, pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "ERR429"}]
        )
    rec = wait_recorded(setup.gw.admin.engine, info.value.response.headers[IID])
    assert rec.interception.status == "upstream_error"
    assert rec.interception.upstream_status == 429
    assert "rate" in (rec.interception.error_message or "").lower()


def test_mid_stream_error_event_is_recorded(setup: Setup) -> None:
    import anthropic

    with setup.claude() as client, pytest.raises(anthropic.APIStatusError):
        with client.messages.stream(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "ERRMID"}]
        ) as s:
            iid = _stream_iid(s)
            for _ in s:
                pass
    rec = wait_recorded(setup.gw.admin.engine, iid)
    assert rec.interception.status == "upstream_error"
    assert rec.interception.error_message
    assert len(rec.usages) == 1  # the usage seen before the error is kept


def test_gzip_encoded_stream_is_recorded(setup: Setup) -> None:
    with setup.claude() as client:
        with client.messages.stream(
            model="m", max_tokens=64, messages=[{"role": "user", "content": "GZIP hi"}]
        ) as s:
            final = s.get_final_message()
            iid = _stream_iid(s)
    rec = wait_recorded(setup.gw.admin.engine, iid)
    assert rec.interception.status == "completed" and rec.interception.parsed
    assert rec.usage == anthropic_expected(setup)
    assert rec.usages[0].provider_response_id == final.id


def test_client_detection_and_session(setup: Setup) -> None:
    with setup.claude(
        default_headers={
            "User-Agent": "claude-cli/2.1.197 (external, sdk-cli)",
            "X-Claude-Code-Session-Id": "sess-42",
        }
    ) as client:
        raw = client.messages.with_raw_response.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    rec = wait_recorded(setup.gw.admin.engine, raw.headers[IID])
    assert (rec.interception.client, rec.interception.client_session_id) == (
        "Claude Code",
        "sess-42",
    )
