"""scripts/fake_provider.py driven directly (no gateway): official SDKs, httpx and raw sockets."""

import asyncio
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
import zlib
from pathlib import Path
from types import ModuleType
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.fakeprovider import SCRIPT, running_fake_provider

A_TOOLS = [
    {
        "name": "lookup_city",
        "description": "Look a city up",
        "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}},
    },
    {"name": "get_time", "description": "Time", "input_schema": {"type": "object"}},
]
C_TOOLS = [
    {"type": "function", "function": {"name": "lookup_city", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
]
R_TOOLS = [{"type": "function", "name": "lookup_city", "parameters": {"type": "object"}}]
PARIS = {"location": "Paris"}
LONDON = {"location": "London"}


def parse_sse(data: bytes) -> list[tuple[str | None, str]]:
    """(event, data) pairs of an SSE body."""
    events = []
    for block in data.decode().split("\n\n"):
        if not block.strip():
            continue
        name = None
        lines = []
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            elif field == "data":
                lines.append(value)
        events.append((name, "\n".join(lines)))
    return events


def a_headers(**extra: str) -> dict[str, str]:
    return {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", **extra}


def o_headers(**extra: str) -> dict[str, str]:
    return {"authorization": "Bearer sk-test", **extra}


class Raw:
    """A raw HTTP/1.1 client connection for framing tests."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("server closed the connection")
        self.buf += chunk

    def read_until(self, sep: bytes) -> bytes:
        while sep not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(sep)
        return head

    def read_exact(self, size: int) -> bytes:
        while len(self.buf) < size:
            self._fill()
        data, self.buf = self.buf[:size], self.buf[size:]
        return data

    def read_response(self, *, head: bool = False) -> tuple[int, dict[str, str], bytes]:
        lines = self.read_until(b"\r\n\r\n").decode().split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if head:
            return status, headers, b""
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while size := int(self.read_until(b"\r\n"), 16):
                body += self.read_exact(size)
                assert self.read_exact(2) == b"\r\n"
            assert self.read_until(b"\r\n") == b""
            return status, headers, body
        return status, headers, self.read_exact(int(headers.get("content-length", "0")))

    def read_to_eof(self) -> bytes:
        while chunk := self.sock.recv(65536):
            self.buf += chunk
        data, self.buf = self.buf, b""
        return data

    def at_eof(self) -> bool:
        """True when the server closed; consumes a byte otherwise (use after a close)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


def post_bytes(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


CHAT_HI = json.dumps({"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}).encode()


# -- usage formula ------------------------------------------------------------------------


def test_expected_usage_formula_exact_numbers(fpm: ModuleType) -> None:
    hi = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    assert fpm.expected_usage("anthropic", hi) == {
        "input_tokens": 11,  # len('{"messages":[{"role":"user","content":"hi"}]}') = 45 // 4
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 12,
        "service_tier": "standard",
    }
    cached = dict(
        hi,
        system=[
            {
                "type": "text",
                "text": "be brief",
                "cache_control": {"type": "ephemeral", "ttl": "1h"},
            }
        ],
    )
    usage = fpm.expected_usage("anthropic", cached)
    assert (usage["input_tokens"], usage["cache_read_input_tokens"]) == (34, 7)
    assert usage["cache_creation"] == {
        "ephemeral_5m_input_tokens": 0,
        "ephemeral_1h_input_tokens": 3,
    }
    thinking = dict(hi, thinking={"type": "enabled", "budget_tokens": 1024})
    assert fpm.expected_usage("anthropic", thinking)["output_tokens"] == 20
    chat = {"model": "m", "messages": [{"role": "user", "content": "hi TOOL2 THINK"}]}
    assert fpm.expected_usage("chat", chat) == {
        "prompt_tokens": 14,
        "completion_tokens": 38,
        "total_tokens": 52,
        "prompt_tokens_details": {"cached_tokens": 3, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 8,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    assert fpm.expected_usage("responses", {"input": "hello"}) == {
        "input_tokens": 4,
        "input_tokens_details": {"cached_tokens": 1},
        "output_tokens": 12,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 16,
    }
    with pytest.raises(ValueError, match="unknown api"):
        fpm.expected_usage("gemini", hi)


def test_answer_text_and_split(fpm: ModuleType) -> None:
    assert fpm.answer_text(5) == "Hello from the fake provider."
    assert fpm.split_text(fpm.answer_text(5), 5) == (
        "Hello",
        " from",
        " the",
        " fake",
        " provider.",
    )
    assert len(fpm.split_text(fpm.answer_text(50), 50)) == 50
    assert "".join(fpm.split_text(fpm.answer_text(50), 50)) == fpm.answer_text(50)


def test_rejects_non_loopback_host(fpm: ModuleType) -> None:
    with pytest.raises(ValueError, match="loopback"):
        fpm.FakeProvider("0.0.0.0")


# -- Anthropic ----------------------------------------------------------------------------


def test_anthropic_blocking_text(
    claude: anthropic.Anthropic, provider: Any, fpm: ModuleType
) -> None:
    request = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
    }
    message = claude.messages.create(**request)
    assert message.id == "msg_fake_1"
    assert message.model == "claude-sonnet-4-5"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Hello from the fake provider."
    assert message.stop_reason == "end_turn"
    assert message.usage.model_dump(exclude_none=True) == fpm.expected_usage("anthropic", request)
    received = provider.requests[-1]
    assert (received.method, received.path, received.query) == ("POST", "/v1/messages", "")
    assert received.header("authorization") == "Bearer sk-ant-test"
    assert "Authorization" in received.header_names()  # original case kept
    assert received.json()["messages"] == request["messages"]


def test_anthropic_stream_text_layout(provider: Any) -> None:
    body = {
        "model": "m",
        "max_tokens": 5,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    response = httpx.post(f"{provider.base_url}/v1/messages", json=body, headers=a_headers())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["request-id"] == "req_fake_1"
    events = parse_sse(response.content)
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 5,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[2][1] == '{"type": "ping"}'
    for name, data in events:
        assert json.loads(data)["type"] == name
    start = json.loads(events[0][1])["message"]
    assert start["usage"] == {
        "input_tokens": 11,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 1,
        "service_tier": "standard",
    }
    texts = [json.loads(data)["delta"]["text"] for _, data in events[3:8]]
    assert texts == ["Hello", " from", " the", " fake", " provider."]
    delta = json.loads(events[-2][1])
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert delta["usage"] == {
        "input_tokens": 11,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 12,
    }


def test_anthropic_sdk_stream_thinking_and_tool_use(
    claude: anthropic.Anthropic, fpm: ModuleType
) -> None:
    request = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 2048,
        "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "TOOL please"}]}],
        "tools": A_TOOLS,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }
    with claude.messages.stream(**request) as stream:
        json_deltas = [event.partial_json for event in stream if event.type == "input_json"]
        final = stream.get_final_message()
    assert [block.type for block in final.content] == ["thinking", "text", "tool_use"]
    assert final.content[0].thinking == fpm.THINKING_TEXT
    assert final.content[0].signature == fpm.SIGNATURE
    tool = final.content[2]
    assert (tool.id, tool.name, tool.input) == ("toolu_fake_1", "lookup_city", PARIS)
    assert len([delta for delta in json_deltas if delta]) == 4  # input split across deltas
    assert final.stop_reason == "tool_use"
    usage = final.usage.model_dump(exclude_none=True)
    assert usage == fpm.expected_usage("anthropic", request)
    assert usage["cache_read_input_tokens"] == 7
    assert usage["cache_creation"] == {
        "ephemeral_5m_input_tokens": 3,
        "ephemeral_1h_input_tokens": 0,
    }
    assert usage["output_tokens"] == 15 + 8


def test_anthropic_think_word_and_adaptive(claude: anthropic.Anthropic) -> None:
    word = claude.messages.create(
        model="m", max_tokens=5, messages=[{"role": "user", "content": "THINK hard"}]
    )
    assert [block.type for block in word.content] == ["thinking", "text"]
    plain = claude.messages.create(
        model="m",
        max_tokens=5,
        messages=[{"role": "user", "content": "hi"}],
        thinking={"type": "disabled"},
    )
    assert [block.type for block in plain.content] == ["text"]


def test_anthropic_claude_code_turns(provider: Any, fpm: ModuleType) -> None:
    """Claude Code shape: ?beta=true, x-api-key, a role=system message after the user turn."""
    user = {
        "role": "user",
        "content": [
            {"type": "text", "text": "<system-reminder>context</system-reminder>"},
            {"type": "text", "text": "TOOL read the file", "cache_control": {"type": "ephemeral"}},
        ],
    }
    tools = [
        {"name": "Read", "input_schema": {"type": "object"}},
        {"name": "Bash", "input_schema": {}},
    ]
    turn1 = {
        "model": "claude-opus-4-8",
        "max_tokens": 64000,
        "stream": True,
        "thinking": {"type": "adaptive"},
        "metadata": {"user_id": '{"device_id":"d"}'},
        "tools": tools,
        "messages": [user, {"role": "system", "content": "agent types"}],
    }
    url = f"{provider.base_url}/v1/messages?beta=true"
    first = httpx.post(url, json=turn1, headers=a_headers(**{"anthropic-beta": "x"}))
    assert provider.requests[-1].query == "beta=true"
    starts = [
        json.loads(d)["content_block"]
        for n, d in parse_sse(first.content)
        if n == "content_block_start"
    ]
    assert [block["type"] for block in starts] == ["thinking", "text", "tool_use"]
    assert starts[2]["name"] == "Read"
    tool_id = starts[2]["id"]
    assistant = {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": tool_id, "name": "Read", "input": PARIS}],
    }
    result = {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": "1\thello"}],
    }
    turn2 = dict(turn1, stream=False, messages=[*turn1["messages"], assistant, result])
    second = httpx.post(url, json=turn2, headers=a_headers()).json()
    assert [block["type"] for block in second["content"]] == ["thinking", "text"]
    assert second["content"][1]["text"] == "Done."
    assert second["stop_reason"] == "end_turn"
    assert second["usage"] == fpm.expected_usage("anthropic", turn2)
    assert second["usage"]["output_tokens"] == 3 + 8


def test_anthropic_count_tokens_and_models(claude: anthropic.Anthropic, fpm: ModuleType) -> None:
    request = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]}
    counted = claude.messages.count_tokens(**request)
    assert counted.input_tokens == 11
    models = list(claude.models.list())
    assert [model.id for model in models][:2] == [
        "claude-opus-4-1-20250805",
        "claude-sonnet-4-5-20250929",
    ]
    assert all(model.type == "model" for model in models)
    one = claude.models.retrieve("claude-sonnet-4-5-20250929")
    assert (one.id, one.display_name) == ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5")


def test_anthropic_err429(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as caught:
        claude.messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "ERR429"}]
        )
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.response.headers["request-id"] == "req_fake_1"
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "Rate limited by the fake provider."},
        "request_id": "req_fake_1",
    }


def test_anthropic_err500(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.InternalServerError) as caught:
        claude.messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "ERR500"}]
        )
    assert caught.value.status_code == 500
    assert caught.value.body["error"]["type"] == "api_error"


def test_anthropic_errmid_raises_in_sdk(claude: anthropic.Anthropic) -> None:
    received = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        with claude.messages.stream(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "ERRMID"}]
        ) as stream:
            received.extend(stream.text_stream)
    assert received == ["Hello"]
    assert caught.value.body["error"] == {"type": "overloaded_error", "message": "Overloaded"}


def test_anthropic_errmid_blocking_answers_normally(claude: anthropic.Anthropic) -> None:
    """Claude Code retries a failed stream non-streaming: that retry must succeed."""
    message = claude.messages.create(
        model="m", max_tokens=5, messages=[{"role": "user", "content": "ERRMID"}]
    )
    assert message.content[0].text == "Hello from the fake provider."


def test_anthropic_auth_required(provider: Any) -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    missing = httpx.post(
        f"{provider.base_url}/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"}
    )
    assert missing.status_code == 401
    assert missing.json()["type"] == "error"
    assert missing.json()["error"]["type"] == "authentication_error"
    old_sdk = httpx.post(
        f"{provider.base_url}/v1/messages", json=body, headers={"X-Api-Key": "anything"}
    )
    assert old_sdk.status_code == 200
    assert ("X-Api-Key", "anything") in provider.requests[-1].headers


def test_anthropic_not_found_shape(provider: Any) -> None:
    response = httpx.get(f"{provider.base_url}/v1/messages/batches", headers=a_headers())
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"
    other = httpx.get(f"{provider.base_url}/v2/whatever", headers=a_headers())
    assert other.status_code == 404 and other.json()["type"] == "error"


# -- OpenAI Chat Completions --------------------------------------------------------------


def test_chat_blocking_text(oai: openai.OpenAI, provider: Any, fpm: ModuleType) -> None:
    request = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}
    completion = oai.chat.completions.create(**request)
    assert completion.id == "chatcmpl-fake-1"
    assert completion.choices[0].message.content == "Hello from the fake provider."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.model_dump(exclude_none=True) == fpm.expected_usage("chat", request)
    assert provider.requests[-1].header("Authorization") == "Bearer sk-test"


def test_chat_stream_with_and_without_usage(oai: openai.OpenAI, fpm: ModuleType) -> None:
    request = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}
    chunks = list(
        oai.chat.completions.create(**request, stream=True, stream_options={"include_usage": True})
    )
    assert [c.choices[0].delta.content for c in chunks[1:6]] == [
        "Hello",
        " from",
        " the",
        " fake",
        " provider.",
    ]
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.model_dump(exclude_none=True) == fpm.expected_usage("chat", request)
    plain = list(oai.chat.completions.create(**request, stream=True))
    assert len(plain) == 7
    assert all(chunk.usage is None and chunk.choices for chunk in plain)


def test_chat_stream_layout_matches_fixture(provider: Any) -> None:
    body = {
        "model": "gpt-4.1",
        "stream": True,
        "messages": [{"role": "user", "content": "TOOL2"}],
        "tools": C_TOOLS,
    }
    raw = httpx.post(
        f"{provider.base_url}/v1/chat/completions", json=body, headers=o_headers()
    ).content
    events = parse_sse(raw)
    assert all(name is None for name, _ in events)
    assert events[-1][1] == "[DONE]"
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert list(chunks[0]) == ["id", "object", "created", "model", "system_fingerprint", "choices"]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": None}
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks[1:-1]]
    assert [call["index"] for call in calls] == [0] * 5 + [1] * 5
    assert calls[0]["function"] == {"name": "lookup_city", "arguments": ""}
    assert calls[5]["function"] == {"name": "get_time", "arguments": ""}
    assert "".join(call["function"]["arguments"] for call in calls[:5]) == '{"location": "Paris"}'
    assert chunks[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "tool_calls",
    }


def test_chat_stream_helper_tool_calls(oai: openai.OpenAI, fpm: ModuleType) -> None:
    request = {
        "model": "gpt-4.1",
        "messages": [{"role": "user", "content": "TOOL now"}],
        "tools": C_TOOLS,
    }
    with oai.chat.completions.stream(**request, stream_options={"include_usage": True}) as stream:
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert final.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls is not None
    assert [
        (c.id, c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls
    ] == [("call_fake_1", "lookup_city", PARIS)]
    assert final.usage is not None
    assert final.usage.model_dump(exclude_none=True) == fpm.expected_usage("chat", request)


def test_chat_parallel_tool_calls_blocking_and_stream(oai: openai.OpenAI) -> None:
    request = {
        "model": "gpt-4.1",
        "messages": [{"role": "user", "content": "TOOL2 please"}],
        "tools": C_TOOLS,
    }
    blocking = oai.chat.completions.create(**request).choices[0].message.tool_calls
    assert blocking is not None
    assert [(c.function.name, json.loads(c.function.arguments)) for c in blocking] == [
        ("lookup_city", PARIS),
        ("get_time", LONDON),
    ]
    with oai.chat.completions.stream(**request) as stream:
        streamed = stream.get_final_completion().choices[0].message.tool_calls
    assert streamed is not None
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in streamed] == [
        ("call_fake_3", "lookup_city", PARIS),
        ("call_fake_4", "get_time", LONDON),
    ]


def test_chat_tool_result_turn_is_done(oai: openai.OpenAI) -> None:
    messages = [
        {"role": "user", "content": "TOOL now"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup_city", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    completion = oai.chat.completions.create(model="gpt-4.1", messages=messages, tools=C_TOOLS)
    assert completion.choices[0].message.content == "Done."
    assert completion.usage is not None and completion.usage.completion_tokens == 3


def test_chat_err429_and_err500(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as limited:
        oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "ERR429"}])
    assert limited.value.response.headers["retry-after"] == "7"
    assert limited.value.response.headers["x-request-id"] == "req_fake_1"
    assert limited.value.body == {
        "message": "Rate limited by the fake provider.",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    with pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "ERR500"}])


def test_chat_errmid_raises_in_sdk(oai: openai.OpenAI) -> None:
    received = []
    with pytest.raises(openai.APIError, match="server had an error"):
        for chunk in oai.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "ERRMID"}], stream=True
        ):
            received.append(chunk.choices[0].delta.content)
    assert received == ["", "Hello"]


def test_openai_auth_required(provider: Any) -> None:
    response = httpx.post(
        f"{provider.base_url}/v1/chat/completions", content=CHAT_HI, headers={"x-api-key": "k"}
    )
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert response.json()["error"]["code"] == "invalid_api_key"
    basic = httpx.post(
        f"{provider.base_url}/v1/responses",
        json={"input": "hi"},
        headers={"authorization": "Basic eA=="},
    )
    assert basic.status_code == 401


def test_openai_models_and_not_found(oai: openai.OpenAI, provider: Any) -> None:
    assert [model.id for model in oai.models.list()] == [
        "gpt-4.1",
        "gpt-4o",
        "gpt-5",
        "gpt-5.1-codex",
    ]
    model = oai.models.retrieve("gpt-5")
    assert (model.id, model.object, model.owned_by) == ("gpt-5", "model", "openai")
    missing = httpx.post(f"{provider.base_url}/v1/embeddings", json={}, headers=o_headers())
    assert missing.status_code == 404
    assert set(missing.json()["error"]) == {"message", "type", "param", "code"}


# -- OpenAI Responses ---------------------------------------------------------------------


def test_responses_blocking_tool_and_reasoning(oai: openai.OpenAI, fpm: ModuleType) -> None:
    request = {
        "model": "gpt-5",
        "input": "TOOL THINK",
        "reasoning": {"effort": "low", "summary": "auto"},
        "tools": R_TOOLS,
    }
    response = oai.responses.create(**request)
    assert response.id == "resp_fake_1"
    assert response.status == "completed"
    assert [item.type for item in response.output] == ["reasoning", "function_call"]
    assert response.output[0].summary[0].text == fpm.SUMMARY_TEXT
    call = response.output[1]
    assert (call.call_id, call.name, json.loads(call.arguments)) == (
        "call_fake_1",
        "lookup_city",
        PARIS,
    )
    assert response.usage is not None
    assert response.usage.model_dump(exclude_none=True) == fpm.expected_usage("responses", request)
    assert response.usage.output_tokens_details.reasoning_tokens == 8


def test_responses_stream_helper_text_and_summary(oai: openai.OpenAI, fpm: ModuleType) -> None:
    request = {
        "model": "gpt-5",
        "input": "THINK hello",
        "reasoning": {"effort": "low", "summary": "auto"},
    }
    with oai.responses.stream(**request) as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert deltas == ["Hello", " from", " the", " fake", " provider."]
    assert final.output_text == "Hello from the fake provider."
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.output[0].summary[0].text == fpm.SUMMARY_TEXT
    assert final.usage is not None
    assert final.usage.model_dump(exclude_none=True) == fpm.expected_usage("responses", request)
    stored = oai.responses.retrieve(final.id)
    assert stored.output_text == final.output_text
    assert stored.usage == final.usage


def test_responses_stream_layout(provider: Any) -> None:
    body = {
        "model": "gpt-5",
        "stream": True,
        "input": [{"role": "user", "content": "TOOL"}],
        "tools": R_TOOLS,
    }
    raw = httpx.post(f"{provider.base_url}/v1/responses", json=body, headers=o_headers()).content
    events = parse_sse(raw)
    payloads = [json.loads(data) for _, data in events]
    assert [name for name, _ in events] == [payload["type"] for payload in payloads]
    assert [payload["sequence_number"] for payload in payloads] == list(range(len(payloads)))
    assert [payload["type"] for payload in payloads] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        *["response.function_call_arguments.delta"] * 4,
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert payloads[0]["response"]["status"] == "in_progress"
    assert payloads[2]["item"]["arguments"] == ""
    assert payloads[-2]["item"]["call_id"] == "call_fake_1"
    assert (
        payloads[-1]["response"]["usage"]["total_tokens"]
        == payloads[-1]["response"]["usage"]["input_tokens"] + 15
    )


def test_responses_sdk_stream_true_function_call(oai: openai.OpenAI) -> None:
    events = list(oai.responses.create(model="gpt-5", input="TOOL", tools=R_TOOLS, stream=True))
    done = [event for event in events if event.type == "response.function_call_arguments.done"]
    assert [json.loads(event.arguments) for event in done] == [PARIS]
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.output[0].name == "lookup_city"


def test_responses_codex_turns(oai: openai.OpenAI, provider: Any) -> None:
    """Codex shape: many input item types, namespace/web_search tools, store false."""
    tools = [
        {"type": "namespace", "name": "multi_agent_v1", "tools": []},
        {"type": "function", "name": "exec_command", "parameters": {"type": "object"}},
        {"type": "web_search"},
    ]
    items: list[dict[str, Any]] = [
        {"type": "additional_tools", "role": "developer", "tools": tools},
        {
            "type": "message",
            "role": "developer",
            "content": [{"type": "input_text", "text": "You are Codex"}],
        },
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "<env/>"}]},
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "TOOL THINK run echo"}],
        },
    ]
    request = {
        "model": "gpt-5.1-codex",
        "input": items,
        "tools": tools,
        "reasoning": {"summary": "auto"},
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "thread",
    }
    with oai.responses.stream(**request) as stream:
        first = stream.get_final_response()
    reasoning, call = first.output
    assert reasoning.encrypted_content
    assert (call.type, call.name) == ("function_call", "exec_command")
    with pytest.raises(openai.NotFoundError):
        oai.responses.retrieve(first.id)  # store: false
    followup = [
        *items,
        reasoning.model_dump(exclude_none=True),
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "hi-from-fake\n"},
    ]
    with oai.responses.stream(**dict(request, input=followup)) as stream:
        second = stream.get_final_response()
    assert second.output_text == "Done."
    assert second.usage is not None and second.usage.output_tokens == 3 + 8


def test_responses_errmid_sends_response_failed(oai: openai.OpenAI) -> None:
    events = list(oai.responses.create(model="gpt-5", input="ERRMID", stream=True))
    assert [event.type for event in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.failed",
    ]
    assert events[-1].sequence_number == 5
    assert events[-1].response.error is not None
    assert events[-1].response.error.code == "server_error"


def test_responses_retrieve_unknown_and_websocket_404(oai: openai.OpenAI, provider: Any) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        oai.responses.retrieve("resp_nope")
    assert caught.value.body["message"] == "No response found with id 'resp_nope'."
    upgrade = httpx.get(
        f"{provider.base_url}/v1/responses",
        headers=o_headers(
            Connection="Upgrade", Upgrade="websocket", **{"Sec-WebSocket-Version": "13"}
        ),
    )
    assert upgrade.status_code == 404
    assert "error" in upgrade.json()


# -- knobs and triggers -------------------------------------------------------------------


def test_events_and_delay_knobs(provider: Any, fpm: ModuleType) -> None:
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    url = f"{provider.base_url}/v1/chat/completions"
    many = httpx.post(url, json=body, headers=o_headers(**{"x-fake-events": "50"})).content
    contents = [
        json.loads(d)["choices"][0]["delta"].get("content") for _, d in parse_sse(many)[1:-2]
    ]
    assert len(contents) == 50
    assert "".join(contents) == fpm.answer_text(50)
    started = time.perf_counter()
    httpx.post(url, json=body, headers=o_headers(**{"x-fake-delay": "0.05"}))
    assert time.perf_counter() - started >= 0.05 * 6  # 5 deltas + finish after the first chunk
    bad = httpx.post(url, json=body, headers=o_headers(**{"x-fake-events": "many"}))
    assert bad.status_code == 400


def test_constructor_knobs() -> None:
    with running_fake_provider(events=3, delay=0.0) as fp:
        body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        raw = httpx.post(f"{fp.base_url}/v1/messages", json=body, headers=a_headers()).content
        deltas = [n for n, _ in parse_sse(raw) if n == "content_block_delta"]
        assert len(deltas) == 3


def test_bigevent(claude: anthropic.Anthropic, provider: Any) -> None:
    with claude.messages.stream(
        model="m", max_tokens=5, messages=[{"role": "user", "content": "BIGEVENT"}]
    ) as stream:
        pieces = list(stream.text_stream)
    assert len(pieces) == 1
    assert len(pieces[0]) == 1024 * 1024
    body = {"model": "m", "messages": [{"role": "user", "content": "BIGEVENT"}]}
    half = httpx.post(
        f"{provider.base_url}/v1/chat/completions",
        json=body,
        headers=o_headers(**{"x-fake-bigevent-mb": "0.5"}),
    )
    assert len(half.json()["choices"][0]["message"]["content"]) == 512 * 1024


def test_gzip_blocking_and_stream(provider: Any) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "GZIP"}]}
    blocking = httpx.post(
        f"{provider.base_url}/v1/chat/completions", json=body, headers=o_headers()
    )
    assert blocking.headers["content-encoding"] == "gzip"
    assert blocking.json()["choices"][0]["message"]["content"] == "Hello from the fake provider."
    stream_body = dict(body, stream=True, max_tokens=5)
    headers = a_headers(**{"x-fake-delay": "0.02"})
    with httpx.stream(
        "POST", f"{provider.base_url}/v1/messages", json=stream_body, headers=headers
    ) as response:
        assert response.headers["content-encoding"] == "gzip"
        raw_chunks = list(response.iter_raw())
    decoder = zlib.decompressobj(wbits=31)
    first = decoder.decompress(raw_chunks[0])
    assert first.startswith(b"event: message_start\n") and first.endswith(
        b"\n\n"
    )  # flushed per event
    whole = gzip.decompress(b"".join(raw_chunks))
    names = [name for name, _ in parse_sse(whole)]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert names.count("content_block_delta") == 5


def test_slow(oai: openai.OpenAI) -> None:
    started = time.perf_counter()
    completion = oai.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "SLOW"}]
    )
    assert time.perf_counter() - started >= 1.9
    assert completion.choices[0].message.content == "Hello from the fake provider."


def test_hang_until_client_leaves(provider: Any) -> None:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "HANG"}]}).encode()
    raw = Raw(provider.port, timeout=0.3)
    raw.send(post_bytes("/v1/chat/completions", body, o_headers()))
    with pytest.raises(TimeoutError):
        raw.read_response()
    raw.close()
    assert provider.requests[-1].json()["messages"][0]["content"] == "HANG"


def test_reset_closes_without_answer(provider: Any) -> None:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "RESET"}]}).encode()
    raw = Raw(provider.port)
    raw.send(post_bytes("/v1/chat/completions", body, o_headers()))
    assert raw.at_eof()
    assert raw.buf == b""
    raw.close()


def test_resetmid_aborts_after_some_events(provider: Any) -> None:
    body = {
        "model": "m",
        "max_tokens": 5,
        "stream": True,
        "messages": [{"role": "user", "content": "RESETMID"}],
    }
    received = b""
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        with httpx.stream(
            "POST", f"{provider.base_url}/v1/messages", json=body, headers=a_headers()
        ) as response:
            assert response.status_code == 200
            for chunk in response.iter_bytes():
                received += chunk
    assert received.startswith(b"event: message_start\n")
    assert b"message_stop" not in received


# -- HTTP/1.1 framing ---------------------------------------------------------------------


def test_chunked_request_body(provider: Any) -> None:
    raw = Raw(provider.port)
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    parts = [CHAT_HI[:10], CHAT_HI[10:30], CHAT_HI[30:]]
    chunks = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(part), part) for part in parts)
    raw.send(head + chunks + b"0\r\nX-Trailer: t\r\n\r\n")
    status, _, body = raw.read_response()
    assert status == 200
    assert json.loads(body)["choices"][0]["message"]["content"] == "Hello from the fake provider."
    assert provider.requests[-1].body == CHAT_HI
    raw.close()


def test_keep_alive_two_requests_then_close(provider: Any) -> None:
    raw = Raw(provider.port)
    for _ in range(2):
        raw.send(post_bytes("/v1/chat/completions", CHAT_HI, o_headers()))
        status, headers, _ = raw.read_response()
        assert (status, headers["connection"]) == (200, "keep-alive")
    raw.send(post_bytes("/v1/chat/completions", CHAT_HI, o_headers(Connection="close")))
    status, headers, _ = raw.read_response()
    assert (status, headers["connection"]) == (200, "close")
    assert raw.at_eof()
    raw.close()
    assert len(provider.requests) == 3


def test_expect_100_continue(provider: Any) -> None:
    raw = Raw(provider.port)
    request = post_bytes("/v1/chat/completions", CHAT_HI, o_headers(Expect="100-continue"))
    head, body = request.split(b"\r\n\r\n", 1)
    raw.send(head + b"\r\n\r\n")
    assert raw.read_until(b"\r\n\r\n") == b"HTTP/1.1 100 Continue"
    raw.send(body)
    status, _, answer = raw.read_response()
    assert status == 200 and json.loads(answer)["object"] == "chat.completion"
    raw.close()


def test_head_anything_then_reuse(provider: Any) -> None:
    raw = Raw(provider.port)
    raw.send(b"HEAD / HTTP/1.1\r\nHost: x\r\nUser-Agent: claude-cli\r\n\r\n")
    status, headers, _ = raw.read_response(head=True)
    assert (status, headers["content-length"]) == (200, "0")
    raw.send(b"HEAD /api/v2/aibridge/anthropic HTTP/1.1\r\nHost: x\r\n\r\n")
    assert raw.read_response(head=True)[0] == 200
    raw.send(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nx-api-key: k\r\n\r\n")
    status, _, body = raw.read_response()
    assert status == 200 and json.loads(body)["has_more"] is False
    raw.close()


def test_headers_recorded_in_wire_order(provider: Any) -> None:
    raw = Raw(provider.port)
    raw.send(
        post_bytes(
            "/v1/chat/completions?x=1",
            CHAT_HI,
            {"X-Mixed-Case": "A b", "authorization": "Bearer k"},
        )
    )
    raw.read_response()
    raw.close()
    record = provider.requests[-1]
    assert record.headers == [
        ("Host", "127.0.0.1"),
        ("Content-Length", str(len(CHAT_HI))),
        ("X-Mixed-Case", "A b"),
        ("authorization", "Bearer k"),
    ]
    assert (record.path, record.query) == ("/v1/chat/completions", "x=1")
    provider.clear()
    assert provider.requests == []


def test_malformed_requests(provider: Any) -> None:
    raw = Raw(provider.port)
    raw.send(b"NONSENSE\r\n\r\n")
    assert raw.read_response()[0] == 400
    assert raw.at_eof()
    raw.close()
    bad_json = httpx.post(f"{provider.base_url}/v1/messages", content=b"{nope", headers=a_headers())
    assert bad_json.status_code == 400
    assert bad_json.json()["error"]["type"] == "invalid_request_error"


# -- CLI ----------------------------------------------------------------------------------


def test_cli_subprocess(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    process = subprocess.Popen(
        [
            sys.executable,
            str(SCRIPT),
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--events",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 10
        while not port_file.exists():
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.02)
        port = int(port_file.read_text())
        base = f"http://127.0.0.1:{port}"
        body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        raw = httpx.post(f"{base}/v1/chat/completions", json=body, headers=o_headers()).content
        assert len(parse_sse(raw)) == 1 + 2 + 1 + 1  # role, 2 deltas, finish, [DONE]
        recorded = httpx.get(f"{base}/_fake/requests").json()
        assert [(r["method"], r["path"]) for r in recorded] == [("POST", "/v1/chat/completions")]
        assert httpx.post(f"{base}/_fake/clear").status_code == 200
        assert httpx.get(f"{base}/_fake/requests").json() == []
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert stdout == f"listening on 127.0.0.1:{port}\n"


def test_http10_stream_is_close_delimited(provider: Any) -> None:
    body = json.dumps(
        {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    )
    raw = Raw(provider.port)
    request = post_bytes("/v1/chat/completions", body.encode(), o_headers())
    raw.send(request.replace(b"HTTP/1.1", b"HTTP/1.0", 1))
    status, headers, _ = raw.read_response(head=True)
    assert (status, headers["connection"]) == (200, "close")
    assert "transfer-encoding" not in headers
    events = parse_sse(raw.read_to_eof())
    assert [data for _, data in events][-1] == "[DONE]"
    assert json.loads(events[0][1])["choices"][0]["delta"]["role"] == "assistant"
    assert len(events) == 1 + 5 + 1 + 1
    raw.close()


# -- lifecycle ----------------------------------------------------------------------------


def test_async_start_stop(fpm: ModuleType) -> None:
    async def scenario() -> tuple[int, str]:
        async with fpm.FakeProvider(events=2) as fp:
            async with httpx.AsyncClient(base_url=fp.base_url) as client:
                response = await client.post(
                    "/v1/chat/completions", content=CHAT_HI, headers=o_headers()
                )
        return response.status_code, response.json()["choices"][0]["message"]["content"]

    assert asyncio.run(scenario()) == (200, "Hello from the fake provider.")


def test_port_in_use_raises(provider: Any, fpm: ModuleType) -> None:
    with pytest.raises(OSError):
        fpm.FakeProvider(port=provider.port).start_in_thread()
    with pytest.raises(RuntimeError, match="not started"):
        _ = fpm.FakeProvider().port
