from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.providers.chat import ChatWire
from gateway.providers.records import (
    Record,
    RequestSummary,
    ResponseMeta,
    TokenUsage,
    ToolUsage,
    UpstreamError,
)
from tests.gateway.providers.conftest import json_documents

WIRE = ChatWire()
MODEL = "gpt-4o-2024-08-06"
Feed = Callable[[Callable[[], Any], bytes], list[Record]]
Split = Callable[[Callable[[], Any], bytes, Iterable[int]], list[Record]]


def recorded(rid: str, prompt: int, completion: int, *tools: ToolUsage) -> list[Record]:
    return [
        ResponseMeta(rid, MODEL),
        *tools,
        TokenUsage(rid, input=prompt, output=completion),
    ]


def tool(rid: str, call_id: str, name: str, arguments: str) -> ToolUsage:
    return ToolUsage(rid, call_id, name, arguments)


PARALLEL = "chatcmpl-ABfwAwrNePHUgBBezonVC6MX3zd63"
NON_STRICT = "chatcmpl-ABfwERreu9s99xXsVuOWtIB2UOx62"
PYDANTIC = "chatcmpl-ABfw8AOXnoa2kzy11vVTSjuQhHCQr"
STRICT = "chatcmpl-ABfwCgi41eStOcARjZq97ohCEGBPO"
EXPECTED: dict[str, list[Record]] = {
    "chat_stream_content_logprobs": recorded("chatcmpl-ABfw5EzoqmfXjnnsXY7Yd8OC6tb3c", 9, 2),
    "chat_stream_json_object_response_format": recorded(
        "chatcmpl-ABfwCjPMi0ubw56UyMIIeNfJzyogq", 19, 177),
    "chat_stream_json_schema_pydantic": recorded("chatcmpl-ABfw1e5abtU8OwGr15vOreYVb2MiF", 79, 14),
    "chat_stream_max_tokens_length": recorded("chatcmpl-ABfw3Oqj8RD0z6aJiiX37oTjV2HFh", 79, 1),
    "chat_stream_n3_multiple_choices": recorded("chatcmpl-ABfw2KKFuVXmEJgVwYfBvejMAdWtq", 79, 42),
    "chat_stream_parallel_tool_calls_2": recorded(PARALLEL, 149, 60,
        tool(PARALLEL, "call_JMW1whyEaYG438VE1OIflxA2", "GetWeatherArgs",
             '{"city": "Edinburgh", "country": "GB", "units": "c"}'),
        tool(PARALLEL, "call_DNYTawLBoN8fj3KN6qU9N1Ou", "get_stock_price",
             '{"ticker": "AAPL", "exchange": "NASDAQ"}')),
    "chat_stream_refusal": recorded("chatcmpl-ABfw4IfQfCCrcuybFm41wJyxjbkz7", 79, 11),
    "chat_stream_refusal_logprobs": recorded("chatcmpl-ABfw5GEVqPbLY576l46FZDQoNJ2KC", 79, 12),
    "chat_stream_text_parse_nothing": recorded("chatcmpl-ABfw031mOJeYCSHe4yI2ZjOA6kMJL", 14, 30),
    "chat_stream_tool_call_non_strict": recorded(NON_STRICT, 44, 16,
        tool(NON_STRICT, "call_4XzlGBLtUe9dy3GVNV4jhq7h", "get_weather",
             '{"city":"New York City"}')),
    "chat_stream_tool_call_pydantic": recorded(PYDANTIC, 76, 24,
        tool(PYDANTIC, "call_c91SqDXlYFuETYv8mUHzz6pp", "GetWeatherArgs",
             '{"city":"Edinburgh","country":"UK","units":"c"}')),
    "chat_stream_tool_call_strict": recorded(STRICT, 48, 19,
        tool(STRICT, "call_CTf1nWJLqSeRgDqaCG27xZ74", "get_weather",
             '{"city":"San Francisco","state":"CA"}')),
}  # fmt: skip


def fixture_bytes(fixtures_dir: Path, prefix: str) -> bytes:
    (path,) = (fixtures_dir / "openai-python").glob(f"{prefix}__*.sse")
    return path.read_bytes()


@pytest.mark.parametrize("prefix", sorted(EXPECTED))
def test_recorded_stream_gives_exact_records(
    prefix: str, fixtures_dir: Path, feed_all: Feed
) -> None:
    data = fixture_bytes(fixtures_dir, prefix)
    assert feed_all(WIRE.stream_parser, data) == EXPECTED[prefix]
    assert feed_all(WIRE.stream_parser, data.replace(b"\n", b"\r\n")) == EXPECTED[prefix]
    unspaced = data.replace(b"data: ", b"data:").replace(b"}\n", b"}   \n")
    assert feed_all(WIRE.stream_parser, unspaced) == EXPECTED[prefix]


@pytest.mark.parametrize("prefix", sorted(EXPECTED))
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(min_value=0, max_value=50_000), max_size=80))
def test_recorded_stream_in_random_splits(
    prefix: str, cuts: list[int], fixtures_dir: Path, feed_split: Split
) -> None:
    data = fixture_bytes(fixtures_dir, prefix)
    assert feed_split(WIRE.stream_parser, data, cuts) == EXPECTED[prefix]


RID = "chatcmpl-synthetic"


def chunk(choices: list[dict[str, Any]], usage: Any = None, **extra: Any) -> bytes:
    body = {
        "id": RID,
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-5",
        "choices": choices,
        "usage": usage,
        **extra,
    }
    return f"data: {json.dumps(body)}\n\n".encode()


def delta(index: int, finish: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"index": index, "delta": fields, "finish_reason": finish}


def call(
    index: int, call_id: str | None = None, name: str | None = None, args: str | None = None
) -> dict[str, Any]:
    function = {k: v for k, v in (("name", name), ("arguments", args)) if v is not None}
    item: dict[str, Any] = {"index": index, "function": function}
    if call_id:
        item.update(id=call_id, type="function")
    return item


DONE = b"data: [DONE]\n\n"
USAGE = {
    "prompt_tokens": 2006,
    "completion_tokens": 300,
    "total_tokens": 2306,
    "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 256,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 3,
        "rejected_prediction_tokens": 1,
    },
}
USAGE_RECORD = TokenUsage(
    RID,
    input=86,
    output=300,
    cache_read=1920,
    metadata={
        "completion_tokens_details.reasoning_tokens": 256,
        "completion_tokens_details.accepted_prediction_tokens": 3,
        "completion_tokens_details.rejected_prediction_tokens": 1,
    },
)


def test_n2_choices_have_their_own_tool_index_spaces(feed_all: Feed) -> None:
    data = b"".join(
        [
            chunk([delta(0, role="assistant", tool_calls=[call(0, "call_a", "lookup", "")])]),
            chunk([delta(1, role="assistant", tool_calls=[call(0, "call_b", "search", '{"q"')])]),
            chunk([delta(0, tool_calls=[call(0, args='{"k":'), call(1, "call_c", "other", "{}")])]),
            chunk([delta(1, tool_calls=[call(0, args=': "x"}')])]),
            chunk([delta(1, finish="tool_calls")]),
            chunk([delta(0, tool_calls=[call(0, args="1}")])]),
            chunk([delta(0, finish="tool_calls")]),
            chunk([], usage=USAGE),
            DONE,
        ]
    )
    assert feed_all(WIRE.stream_parser, data) == [
        ResponseMeta(RID, "gpt-5"),
        ToolUsage(RID, "call_b", "search", '{"q": "x"}'),
        ToolUsage(RID, "call_a", "lookup", '{"k":1}'),
        ToolUsage(RID, "call_c", "other", "{}"),
        USAGE_RECORD,
    ]


def test_usage_on_the_last_choice_chunk_is_counted_once(feed_all: Feed) -> None:
    data = chunk([delta(0, content="hi")]) + chunk([delta(0, finish="stop")], usage=USAGE)
    records = [ResponseMeta(RID, "gpt-5"), USAGE_RECORD]
    assert feed_all(WIRE.stream_parser, data) == records
    assert feed_all(WIRE.stream_parser, data + DONE) == records


def test_usage_repeated_on_every_chunk_takes_the_latest(feed_all: Feed) -> None:
    early = {"prompt_tokens": 2006, "completion_tokens": 1}
    data = (
        chunk([delta(0, content="a")], usage=early)
        + chunk([delta(0, finish="stop")], usage=USAGE)
        + DONE
    )
    assert feed_all(WIRE.stream_parser, data) == [ResponseMeta(RID, "gpt-5"), USAGE_RECORD]


def test_no_usage_means_no_token_usage(feed_all: Feed) -> None:
    data = chunk([delta(0, content="a")]) + chunk([delta(0, finish="stop")]) + DONE
    assert feed_all(WIRE.stream_parser, data) == [ResponseMeta(RID, "gpt-5")]


def test_error_mid_stream_then_cut_short(feed_all: Feed) -> None:
    error = {
        "error": {
            "message": "The server had an error",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    data = chunk([delta(0, tool_calls=[call(0, "call_x", "run", '{"cmd": "l')])]) + (
        f"data: {json.dumps(error)}\n\n".encode()
    )
    assert feed_all(WIRE.stream_parser, data) == [
        ResponseMeta(RID, "gpt-5"),
        UpstreamError("The server had an error", "server_error"),
        ToolUsage(RID, "call_x", "run", '{"cmd": "l'),
    ]


def test_named_error_event(feed_all: Feed) -> None:
    data = b'event: error\ndata: {"message": "overloaded", "code": "503"}\n\n'
    assert feed_all(WIRE.stream_parser, data) == [UpstreamError("overloaded", "503")]


def test_after_done_nothing_is_recorded(feed_all: Feed) -> None:
    data = (
        chunk([delta(0, content="a")])
        + DONE
        + chunk([delta(0, tool_calls=[call(0, "call_late", "x", "{}")])], usage=USAGE)
    )
    assert feed_all(WIRE.stream_parser, data) == [ResponseMeta(RID, "gpt-5")]


def test_calls_without_index_sent_whole_in_separate_chunks(feed_all: Feed) -> None:
    first = {"id": "call_1", "type": "function", "function": {"name": "a", "arguments": "{}"}}
    second = {"id": "call_2", "type": "function", "function": {"name": "b", "arguments": {"x": 1}}}
    data = (
        chunk([delta(0, tool_calls=[first])])
        + chunk([delta(0, tool_calls=[second])])
        + (chunk([delta(0, finish="tool_calls")]))
    )
    assert feed_all(WIRE.stream_parser, data) == [
        ResponseMeta(RID, "gpt-5"),
        ToolUsage(RID, "call_1", "a", "{}"),
        ToolUsage(RID, "call_2", "b", '{"x":1}'),
    ]


def test_custom_and_legacy_function_calls_in_a_stream(feed_all: Feed) -> None:
    custom = {
        "index": 0,
        "id": "call_p",
        "type": "custom",
        "custom": {"name": "apply_patch", "input": "*** Begin"},
    }
    data = b"".join(
        [
            chunk([delta(0, tool_calls=[custom])]),
            chunk([delta(0, tool_calls=[{"index": 0, "custom": {"input": " Patch"}}])]),
            chunk([delta(1, function_call={"name": "legacy", "arguments": '{"a"'})]),
            chunk([delta(1, function_call={"arguments": ": 2}"})]),
            DONE,
        ]
    )
    assert feed_all(WIRE.stream_parser, data) == [
        ResponseMeta(RID, "gpt-5"),
        ToolUsage(RID, "call_p", "apply_patch", "*** Begin Patch"),
        ToolUsage(RID, None, "legacy", '{"a": 2}'),
    ]


def test_invalid_utf8_and_json_in_the_stream(feed_all: Feed) -> None:
    data = b"data: {oops\n\n" + chunk([delta(0, tool_calls=[call(0, "c", "n", '"\xff"')])])
    data = data.replace(b'\\"\\u00ff\\"', b'\\"\xff\\"')
    assert feed_all(WIRE.stream_parser, data) == [
        ResponseMeta(RID, "gpt-5"),
        ToolUsage(RID, "c", "n", '"\ufffd"'),
    ]


# --- blocking responses ---------------------------------------------------------------------


def test_blocking_response_with_tool_calls_and_usage(local_fixtures: Path) -> None:
    body = (local_fixtures / "chat" / "tool_calls.json").read_bytes()
    audio = {"prompt_tokens_details.audio_tokens": 7}
    assert WIRE.parse_response(body) == [
        ResponseMeta("chatcmpl-b", "gpt-4.1"),
        ToolUsage("chatcmpl-b", "call_1", "get_weather", '{"city": "Paris"}'),
        ToolUsage("chatcmpl-b", "call_2", "apply_patch", "*** Begin Patch"),
        TokenUsage("chatcmpl-b", 86, 300, 1920, 0, {**USAGE_RECORD.metadata, **audio}),
    ]


def test_blocking_error_and_garbage() -> None:
    body = (
        b'{"error": {"message": "Rate limit reached", "type": "requests", "param": null,'
        b' "code": "rate_limit_exceeded"}}'
    )
    assert WIRE.parse_response(body) == [UpstreamError("Rate limit reached", "requests")]
    assert WIRE.parse_response(b"upstream connect error") == []
    assert WIRE.parse_response(b'{"choices": "nope", "usage": 5}') == [ResponseMeta(None, None)]


# --- requests -------------------------------------------------------------------------------

TOOL_TURN = (
    b'{"model": "gpt-4.1", "stream": true, "messages": [{"role": "system", "content": "brief"},'
    b' {"role": "user", "content": [{"type": "text", "text": "a"},'
    b'   {"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "weather?"}]},'
    b' {"role": "assistant", "tool_calls": [{"id": "call_1"}, {"id": "call_2"}]},'
    b' {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},'
    b' {"role": "tool", "tool_call_id": "call_2", "content": "warm"}'
)


def test_request_prompt_and_tool_correlation() -> None:
    assert WIRE.parse_request(TOOL_TURN + b"]}") == RequestSummary(
        model="gpt-4.1", stream=True, prompt="weather?", correlating_tool_call_id="call_2"
    )
    later = b', {"role": "assistant", "content": "Sunny."}, {"role": "user", "content": "ok"}]}'
    assert WIRE.parse_request(TOOL_TURN + later) == RequestSummary("gpt-4.1", True, "ok")


@pytest.mark.parametrize("body", [b"", b"[]", b"42", b"{", b"\xef\xbb\xbf[1]"])
def test_request_that_is_not_a_json_object(body: bytes) -> None:
    assert WIRE.parse_request(body) == RequestSummary(parsed=False)


def test_sdk_captured_requests(captures_dir: Path) -> None:
    rows = [json.loads(line) for line in (captures_dir / "sdk.jsonl").read_text().splitlines()]
    bodies = [json.dumps(r["body"]).encode() for r in rows if r["path"] == "/v1/chat/completions"]
    assert [WIRE.parse_request(b) for b in bodies[:3]] == [
        RequestSummary(model="gpt-4.1", prompt="TOOL now"),
        RequestSummary(model="gpt-4.1", stream=True, prompt="hi"),
        RequestSummary(model="gpt-4.1", stream=True, prompt="TOOL now"),
    ]


# --- never raise ----------------------------------------------------------------------------

KEYS = (
    "id model choices index delta tool_calls function custom name arguments input finish_reason "
    "usage prompt_tokens completion_tokens prompt_tokens_details cached_tokens error message "
    "function_call messages role content tool_call_id type text"
).split()
WORDS = "[DONE] stop tool_calls function custom user tool assistant text".split()


@settings(max_examples=200, deadline=None)
@given(
    docs=st.lists(json_documents(KEYS, WORDS), max_size=10),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=10),
)
def test_structured_garbage_never_raises(
    docs: list[Any], cuts: list[int], feed_split: Split
) -> None:
    data = b"".join(f"data: {json.dumps(doc)}\n\n".encode() for doc in docs)
    whole = feed_split(WIRE.stream_parser, data, [])
    assert feed_split(WIRE.stream_parser, data, cuts) == whole
    for doc in docs:
        WIRE.parse_response(json.dumps(doc).encode())
        WIRE.parse_request(json.dumps(doc).encode())


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=600))
def test_arbitrary_bytes_never_raise(data: bytes, feed_split: Split) -> None:
    feed_split(WIRE.stream_parser, data, [len(data) // 3])
    WIRE.parse_response(data)
    WIRE.parse_request(data)
