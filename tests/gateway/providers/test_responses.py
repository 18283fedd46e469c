from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
import openai
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.responses import ResponseStreamEvent

from gateway.providers.records import (
    ModelThought,
    Record,
    RequestSummary,
    ResponseMeta,
    TokenUsage,
    ToolUsage,
    UpstreamError,
)
from gateway.providers.responses import ResponsesWire
from gateway.providers.sse import SSEDecoder
from tests.gateway.providers.conftest import json_documents

WIRE = ResponsesWire()
Feed = Callable[[Callable[[], Any], bytes], list[Record]]
Split = Callable[[Callable[[], Any], bytes, Iterable[int]], list[Record]]

TEXT = "resp_68d1f0c2a4e0819c9f3e2b7d5a1c0e4f"
CODEX = "resp_0a1b2c3d4e5f60718293a4b5c6d7e8f9"
EXEC_ARGS = (
    '{"cmd":"echo hi-from-fake","workdir":"/home/dev/demo/work-codex","yield_time_ms":10000}'
)
PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+hello from codex\n*** End Patch\n"


def summary(rid: str, text: str) -> ModelThought:
    return ModelThought(rid, text, {"source": "reasoning_summary"})


CODEX_ITEMS: list[Record] = [
    summary(CODEX, "**Planning the command**\n\nI need to run echo in the sandbox."),
    summary(CODEX, "**Preparing a patch**\n\nThen add a hello file."),
    ModelThought(
        CODEX, "I'll run `echo hi-from-fake`, then add hello.txt.", {"source": "commentary"}
    ),
    ToolUsage(CODEX, "call_Qx7mVb2Lr9sTn4Kd8Wf3Hj6P", "exec_command", EXEC_ARGS),
    ToolUsage(CODEX, "call_Zy3nTc8Mw1qRk5Lp7Xg2Js4V", "apply_patch", PATCH),
]
EXPECTED: dict[str, list[Record]] = {
    "reasoning_text.sse": [
        ResponseMeta(TEXT, "gpt-5-2025-08-07"),
        summary(
            TEXT,
            "**Greeting the user**\n\nThe user says hello, so a short friendly reply is enough.",
        ),
        TokenUsage(
            TEXT,
            input=240,
            output=96,
            cache_read=1280,
            metadata={
                "input_tokens_details.cache_write_tokens": 240,
                "output_tokens_details.reasoning_tokens": 64,
            },
        ),
    ],
    "codex_tool_calls.sse": [
        ResponseMeta(CODEX, "gpt-5.1-codex"),
        *CODEX_ITEMS,
        TokenUsage(
            CODEX,
            input=428,
            output=214,
            cache_read=9984,
            metadata={"output_tokens_details.reasoning_tokens": 128},
        ),
    ],
    "failed.sse": [
        ResponseMeta("resp_failed00000000000000000000001", "gpt-5-2025-08-07"),
        UpstreamError(
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
        ),
    ],
    "incomplete.sse": [
        ResponseMeta("resp_incomplete0000000000000000001", "gpt-4.1-2025-04-14"),
        TokenUsage("resp_incomplete0000000000000000001", input=12, output=3),
    ],
    "error_event.sse": [
        ResponseMeta("resp_errmid00000000000000000000001", "gpt-5-2025-08-07"),
        UpstreamError("An error occurred while processing your request.", "server_error"),
    ],
}


def stream_bytes(local_fixtures: Path, name: str) -> bytes:
    return (local_fixtures / "responses" / name).read_bytes()


def events_of(data: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    decoder = SSEDecoder()
    return [(e.event, json.loads(e.data)) for e in decoder.feed(data) + decoder.feed(b"")]


def sse(event: str, payload: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(payload)}\n\n".encode()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_stream_gives_exact_records(name: str, local_fixtures: Path, feed_all: Feed) -> None:
    data = stream_bytes(local_fixtures, name)
    assert feed_all(WIRE.stream_parser, data) == EXPECTED[name]
    assert feed_all(WIRE.stream_parser, data.replace(b"\n", b"\r\n")) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(min_value=0, max_value=20_000), max_size=80))
def test_stream_in_random_splits(
    name: str, cuts: list[int], local_fixtures: Path, feed_split: Split
) -> None:
    data = stream_bytes(local_fixtures, name)
    assert feed_split(WIRE.stream_parser, data, cuts) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hand_built_streams_are_valid_for_the_openai_sdk(name: str, local_fixtures: Path) -> None:
    data = stream_bytes(local_fixtures, name)
    adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(ResponseStreamEvent)
    for event, payload in events_of(data):
        assert adapter.validate_python(payload).type == event
    if not name.startswith(("reasoning", "codex")):
        return
    transport = httpx.MockTransport(
        lambda request: httpx.Response(
            200, content=data, headers={"content-type": "text/event-stream"}
        )
    )
    client = openai.OpenAI(
        api_key="sk-test",
        base_url="http://fake/v1",
        http_client=httpx.Client(transport=transport),  # type: ignore[arg-type]
    )
    with client.responses.stream(model="gpt-5", input="hi") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    meta, *_, usage = EXPECTED[name]
    assert isinstance(meta, ResponseMeta) and isinstance(usage, TokenUsage)
    assert (final.id, final.model) == (meta.response_id, meta.model)
    assert final.usage is not None
    assert final.usage.input_tokens == usage.input + usage.cache_read
    assert final.usage.output_tokens == usage.output


def test_stream_cut_mid_tool_call_flushes_it_without_usage(
    local_fixtures: Path, feed_all: Feed
) -> None:
    data = stream_bytes(local_fixtures, "codex_tool_calls.sse")
    cut = data[: data.index(b"response.function_call_arguments.done")]
    assert feed_all(WIRE.stream_parser, cut) == [
        ResponseMeta(CODEX, "gpt-5.1-codex"),
        *CODEX_ITEMS[:3],
        ToolUsage(CODEX, "call_Qx7mVb2Lr9sTn4Kd8Wf3Hj6P", "exec_command", EXEC_ARGS),
    ]
    cut = data[: data.index(b'"delta":"lo from cod"')]
    assert feed_all(WIRE.stream_parser, cut)[-1] == ToolUsage(
        CODEX, "call_Zy3nTc8Mw1qRk5Lp7Xg2Js4V", "apply_patch", PATCH[: PATCH.index("lo from cod")]
    )


def test_items_missing_from_done_events_come_from_the_final_response(
    local_fixtures: Path, feed_all: Feed
) -> None:
    data = stream_bytes(local_fixtures, "codex_tool_calls.sse")
    kept = [sse(e or "", p) for e, p in events_of(data) if e != "response.output_item.done"]
    assert feed_all(WIRE.stream_parser, b"".join(kept)) == EXPECTED["codex_tool_calls.sse"]


def test_unknown_events_comments_and_garbage_are_ignored(
    local_fixtures: Path, feed_all: Feed
) -> None:
    data = stream_bytes(local_fixtures, "reasoning_text.sse")
    noise = (
        b": keepalive\n\n"
        + sse("response.future_thing", {"type": "response.future_thing"})
        + b"event: response.output_item.done\ndata: {broken\n\n"
        + b"data: \xff\xfe\n\n"
    )
    head, tail = data.split(b"event: response.completed")
    mixed = noise + head + noise + b"event: response.completed" + tail
    assert feed_all(WIRE.stream_parser, mixed) == EXPECTED["reasoning_text.sse"]


def test_event_names_are_optional_the_data_type_is_enough(
    local_fixtures: Path, feed_all: Feed
) -> None:
    data = stream_bytes(local_fixtures, "codex_tool_calls.sse").replace(b"event: ", b"x: ")
    assert feed_all(WIRE.stream_parser, data) == EXPECTED["codex_tool_calls.sse"]


def final_response(local_fixtures: Path, name: str) -> dict[str, Any]:
    events = events_of(stream_bytes(local_fixtures, name))
    return next(p["response"] for e, p in events if e in ("response.completed", "response.failed"))


def test_blocking_response_gives_the_same_records_as_the_stream(local_fixtures: Path) -> None:
    for name in ("codex_tool_calls.sse", "reasoning_text.sse", "failed.sse"):
        body = json.dumps(final_response(local_fixtures, name)).encode()
        assert WIRE.parse_response(body) == EXPECTED[name]


def test_blocking_mcp_call_and_error_bodies() -> None:
    body = {
        "id": "resp_m",
        "object": "response",
        "model": "gpt-5",
        "status": "completed",
        "output": [
            {
                "type": "mcp_call",
                "id": "mcp_1",
                "server_label": "kb",
                "name": "find",
                "arguments": '{"q":1}',
                "output": "x",
            },
            {"type": "web_search_call", "id": "ws_1", "status": "completed"},
            {
                "type": "message",
                "phase": "final_answer",
                "content": [{"type": "output_text", "text": "answer"}],
            },
        ],
        "usage": None,
    }
    assert WIRE.parse_response(json.dumps(body).encode()) == [
        ResponseMeta("resp_m", "gpt-5"),
        ToolUsage("resp_m", "mcp_1", "find", '{"q":1}'),
    ]
    error = {
        "error": {
            "message": "The model `gpt-9` does not exist",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        }
    }
    assert WIRE.parse_response(json.dumps(error).encode()) == [
        UpstreamError("The model `gpt-9` does not exist", "invalid_request_error")
    ]
    assert WIRE.parse_response(b"Bad Gateway") == []


# --- requests -------------------------------------------------------------------------------


def test_request_input_string_and_messages() -> None:
    assert WIRE.parse_request(b'{"model": "gpt-5", "input": "hello", "stream": true}') == (
        RequestSummary(model="gpt-5", stream=True, prompt="hello")
    )
    body = {
        "model": "gpt-5",
        "input": [
            {"role": "user", "content": "first"},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "ok"}],
            },
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "line one"},
                    {"type": "input_image", "image_url": "u"},
                    {"type": "input_text", "text": "line two"},
                ],
            },
        ],
    }
    assert WIRE.parse_request(json.dumps(body).encode()) == RequestSummary(
        model="gpt-5", prompt="line one\nline two"
    )


def test_request_tool_output_after_the_last_user_message_correlates() -> None:
    items: list[dict[str, Any]] = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]},
        {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "a"},
        {"type": "custom_tool_call_output", "call_id": "call_2", "output": "b"},
        {"type": "reasoning", "summary": []},
    ]
    body = {"model": "m", "input": items}
    assert WIRE.parse_request(json.dumps(body).encode()) == RequestSummary(
        model="m", prompt="go", correlating_tool_call_id="call_2"
    )
    items.append({"role": "user", "content": [{"type": "image"}]})
    assert WIRE.parse_request(json.dumps(body).encode()) == RequestSummary(model="m")


@pytest.mark.parametrize("body", [b"", b"[]", b"true", b"{]", b"\x00"])
def test_request_that_is_not_a_json_object(body: bytes) -> None:
    assert WIRE.parse_request(body) == RequestSummary(parsed=False)


def captured(captures_dir: Path, name: str) -> list[bytes]:
    rows = [json.loads(line) for line in (captures_dir / name).read_text().splitlines()]
    return [
        json.dumps(r["body"]).encode()
        for r in rows
        if r["method"] == "POST" and r["path"] == "/v1/responses"
    ]


def test_codex_captured_requests(captures_dir: Path) -> None:
    first, second = captured(captures_dir, "codex-exec-tool.jsonl")
    assert WIRE.parse_request(first) == RequestSummary(
        model="gpt-5.1-codex", stream=True, prompt="TOOL THINK run echo"
    )
    assert WIRE.parse_request(second) == RequestSummary(
        model="gpt-5.1-codex",
        stream=True,
        prompt="TOOL THINK run echo",
        correlating_tool_call_id="call_ecc9379e9b2449a3a778bd35",
    )
    (hi,) = captured(captures_dir, "codex-exec-hi.jsonl")
    assert WIRE.parse_request(hi).prompt == "hi"


def test_sdk_captured_requests(captures_dir: Path) -> None:
    bodies = captured(captures_dir, "sdk.jsonl")
    assert [WIRE.parse_request(b) for b in bodies] == [
        RequestSummary(model="gpt-5", prompt="TOOL THINK"),
        RequestSummary(model="gpt-5", stream=True, prompt="THINK hello"),
        RequestSummary(model="gpt-5", stream=True, prompt="TOOL"),
        RequestSummary(model="gpt-5", stream=True, prompt="ERRMID"),
    ]


# --- never raise ----------------------------------------------------------------------------

EVENTS = [
    *"response.created response.output_item.added response.output_item.done".split(),
    "response.function_call_arguments.delta",
    "response.custom_tool_call_input.delta",
    *"response.completed response.failed response.incomplete error".split(),
    "response.output_text.delta",
]
KEYS = (
    "type response item item_id delta id call_id name arguments input output summary text "
    "content phase usage input_tokens output_tokens input_tokens_details cached_tokens error "
    "message code status role model"
).split()
WORDS = [
    *EVENTS,
    *"function_call custom_tool_call mcp_call reasoning message commentary output_text".split(),
    *"input_text user function_call_output".split(),
]


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(st.tuples(st.sampled_from(EVENTS), json_documents(KEYS, WORDS)), max_size=10),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=10),
)
def test_structured_garbage_never_raises(
    events: list[tuple[str, Any]], cuts: list[int], feed_split: Split
) -> None:
    data = b"".join(sse(name, doc) for name, doc in events)
    whole = feed_split(WIRE.stream_parser, data, [])
    assert feed_split(WIRE.stream_parser, data, cuts) == whole
    for _, doc in events:
        WIRE.parse_response(json.dumps(doc).encode())
        WIRE.parse_request(json.dumps(doc).encode())


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=600))
def test_arbitrary_bytes_never_raise(data: bytes, feed_split: Split) -> None:
    feed_split(WIRE.stream_parser, data, [1])
    WIRE.parse_response(data)
    WIRE.parse_request(data)
