from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.providers.messages import MessagesWire
from gateway.providers.records import (
    ModelThought,
    Record,
    RequestSummary,
    ResponseMeta,
    TokenUsage,
    ToolUsage,
    UpstreamError,
)
from tests.gateway.providers.conftest import json_documents

WIRE = MessagesWire()
Feed = Callable[[Callable[[], Any], bytes], list[Record]]
Split = Callable[[Callable[[], Any], bytes, Iterable[int]], list[Record]]


def sse(event: str, payload: Any, pad: str = "") -> bytes:
    return f"event: {event}\ndata: {json.dumps(payload, separators=(',', ':'))}{pad}\n\n".encode()


def usage(rid: str, inp: int, out: int, **kwargs: Any) -> TokenUsage:
    return TokenUsage(response_id=rid, input=inp, output=out, **kwargs)


def thought(rid: str, text: str) -> ModelThought:
    return ModelThought(rid, text, {"source": "thinking"})


def fixture_records() -> dict[str, list[Record]]:
    """Expected records of each recorded stream, read off the files by hand."""
    a, atool, b = "msg_fixture_a_0001", "msg_fixture_atool_0001", "msg_fixture_b_0001"
    basic, tool = "msg_4QpJur2dWWDjF6C758FbBw5vm12BaVipnK", "msg_019Q1hrJbZG26Fb9BQhrkHEr"
    partial, credit = "msg_01UdjYBBipA9omjYhicnevgq", "msg_01FallbackCreditUsage0000001"
    taxes = (
        '{"filename": "taxes.txt", "lines_of_text": [\n"# COMPREHENSIVE TAX GUIDE FOR '
        'INDIVIDUALS WITH MULTIPLE W-2s",\n"",\n"## INTRODUCTION",\n"",\n"Filing taxes'
    )
    meta = {
        "compaction_response.txt": ("msg_01CompactionEncryptedContent01", "claude-opus-4-7", 30, 8),
        "fallback_credit_response.txt": (credit, "claude-sonnet-4-5", 25, 8),
        "fallback_response.txt": ("msg_01FallbackModelRelabel000001", "claude-opus-4-7", 25, 8),
        "refusal_response.txt": ("msg_01RefusalTestMessage123456789", "claude-opus-4-7", 20, 0),
        "stream-b-fallback.sse": (b, "claude-opus-4-8", 31, 547),
        "basic_response.txt": (basic, "claude-3-opus-latest", 11, 6),
    }  # fmt: skip
    plain: dict[str, list[Record]] = {
        name: [ResponseMeta(rid, model), usage(rid, inp, out)]
        for name, (rid, model, inp, out) in meta.items()
    }
    thinking_tokens = {"output_tokens_details.thinking_tokens": 67}
    return plain | {
        "incomplete_partial_json_response.txt": [
            ResponseMeta(partial, "claude-3-7-sonnet-20250219"),
            ToolUsage(partial, "toolu_01EKqbqmZrGRXy18eN7m9kvY", "make_file", taxes),
            usage(partial, 450, 124),
        ],
        "stream-a-refusal.sse": [
            ResponseMeta(a, "claude-fable-5"),
            thought(
                a,
                "Simple educational question about what a solar eclipse is. This is benign "
                "general knowledge — definitions are fine. Also the user called me "
                '"claudius" — I\'m Claude. Minor correction or just roll with it politely.',
            ),
            usage(a, 28, 106, metadata=thinking_tokens),
        ],
        "stream-a-toolrefusal.sse": [
            ResponseMeta(atool, "claude-fable-5"),
            ToolUsage(
                atool,
                "srvtoolu_fixture_a_0001",
                "web_search",
                '{"query":"solar eclipse viewing safety news 2026"}',
            ),
            # message_delta repeats input_tokens (28 here, 612 at message_start): latest wins
            usage(atool, 28, 106, metadata=thinking_tokens),
        ],
        "tool_use_response.txt": [
            ResponseMeta(tool, "claude-sonnet-4-20250514"),
            ToolUsage(
                tool, "toolu_01NRLabsLyVHZPKxbKvkfSMn", "get_weather", '{"location":"Paris"}'
            ),
            usage(tool, 377, 65),
        ],
    }


EXPECTED = fixture_records()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recorded_stream_gives_exact_records(name: str, fixtures_dir: Path, feed_all: Feed) -> None:
    data = (fixtures_dir / "anthropic-sdk-python" / name).read_bytes()
    assert feed_all(WIRE.stream_parser, data) == EXPECTED[name]
    assert feed_all(WIRE.stream_parser, data.replace(b"\n", b"\r\n")) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=60))
def test_recorded_stream_in_random_splits(
    name: str, cuts: list[int], fixtures_dir: Path, feed_split: Split
) -> None:
    data = (fixtures_dir / "anthropic-sdk-python" / name).read_bytes()
    assert feed_split(WIRE.stream_parser, data, cuts) == EXPECTED[name]


RID = "msg_synthetic_0001"
START_USAGE = {"input_tokens": 12, "output_tokens": 1}
STARTED_USAGE = TokenUsage(
    RID, 12, 1, 30000, 2048, {"cache_creation.ephemeral_5m_input_tokens": 2048}
)
"""What message_start of thinking_tools_cache.sse alone says about usage."""
SYNTHETIC_RECORDS: list[Record] = [
    ResponseMeta(RID, "claude-opus-4-8"),
    thought(RID, "Let me check the file."),
    ToolUsage(RID, "toolu_read", "Read", '{"file_path":"/tmp/é.txt"}'),
    ToolUsage(RID, "toolu_nodelta", "Noop", '{"a":1}'),
    TokenUsage(RID, 12, 321, 30000, 2048, {
        "cache_creation.ephemeral_5m_input_tokens": 2048,
        "server_tool_use.web_search_requests": 2,
    }),
]  # fmt: skip


def local(local_fixtures: Path, name: str) -> bytes:
    return (local_fixtures / "messages" / name).read_bytes()


def message_start(rid: str = RID, usage: Any = START_USAGE) -> bytes:
    message = {"id": rid, "type": "message", "role": "assistant", "model": "claude-opus-4-8"}
    return sse("message_start", {"type": "message_start", "message": {**message, "usage": usage}})


def block(index: int, content_block: dict[str, Any], *deltas: str) -> bytes:
    """A content block; `deltas` are input_json_delta pieces."""
    start = {"type": "content_block_start", "index": index, "content_block": content_block}
    out = sse("content_block_start", start, pad="   ")
    for piece in deltas:
        delta = {"type": "input_json_delta", "partial_json": piece}
        out += sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                           "delta": delta}, pad=" " * index)  # fmt: skip
    return out + sse("content_block_stop", {"type": "content_block_stop", "index": index})


def tool_block(index: int, *deltas: str, tool_id: str = "t", name: str = "n") -> bytes:
    return block(index, {"type": "tool_use", "id": tool_id, "name": name, "input": {}}, *deltas)


def test_thinking_tools_cache_padding_and_unknown_events(
    local_fixtures: Path, feed_all: Feed
) -> None:
    data = local(local_fixtures, "thinking_tools_cache.sse")
    assert feed_all(WIRE.stream_parser, data) == SYNTHETIC_RECORDS
    assert feed_all(WIRE.stream_parser, data.replace(b"\n", b"\r\n")) == SYNTHETIC_RECORDS


def test_event_names_are_optional_the_data_type_is_enough(
    local_fixtures: Path, feed_all: Feed
) -> None:
    data = local(local_fixtures, "thinking_tools_cache.sse").replace(b"event: ", b"x-no: ")
    assert feed_all(WIRE.stream_parser, data) == SYNTHETIC_RECORDS


def test_blocking_message_gives_the_same_records_as_the_stream(local_fixtures: Path) -> None:
    body = local(local_fixtures, "thinking_tools_cache.json")
    assert WIRE.parse_response(body) == SYNTHETIC_RECORDS


def test_blocking_message_with_server_tools_and_null_counts(local_fixtures: Path) -> None:
    assert WIRE.parse_response(local(local_fixtures, "server_tools.json")) == [
        ResponseMeta("msg_b", "claude-sonnet-4-5"),
        ToolUsage("msg_b", "srvtoolu_1", "web_search", '{"query":"weather"}'),
        ToolUsage("msg_b", "mcptoolu_1", "lookup", '{"q":[1,2]}'),
        TokenUsage("msg_b", input=7, output=9, metadata={"server_tool_use.web_search_requests": 1}),
    ]


OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def test_blocking_error_body_and_garbage() -> None:
    body = json.dumps({**OVERLOADED, "request_id": "req_1"}).encode()
    assert WIRE.parse_response(body) == [UpstreamError("Overloaded", "overloaded_error")]
    for garbage in (b"<html>502</html>", b"[1, 2]", b""):
        assert WIRE.parse_response(garbage) == []


def test_error_event_mid_stream_then_end(local_fixtures: Path, feed_all: Feed) -> None:
    data = local(local_fixtures, "thinking_tools_cache.sse")
    data = data[: data.index(b"event: content_block_start")] + sse("error", OVERLOADED)
    assert feed_all(WIRE.stream_parser, data) == [
        ResponseMeta(RID, "claude-opus-4-8"),
        UpstreamError("Overloaded", "overloaded_error"),
        STARTED_USAGE,
    ]


def test_stream_cut_short_flushes_usage_so_far_and_the_unfinished_tool(
    local_fixtures: Path, feed_all: Feed
) -> None:
    data = local(local_fixtures, "thinking_tools_cache.sse")
    assert feed_all(WIRE.stream_parser, data[: data.index(b'"/tmp/')]) == [
        *SYNTHETIC_RECORDS[:2],
        ToolUsage(RID, "toolu_read", "Read", '{"file_path": '),
        STARTED_USAGE,
    ]


def test_cut_in_the_middle_of_an_event_ignores_the_half_event(fixtures_dir: Path) -> None:
    data = (fixtures_dir / "anthropic-sdk-python" / "tool_use_response.txt").read_bytes()
    cut = data[: data.index(b'"usage":{"output_tokens":65}') + 5]
    parser = WIRE.stream_parser()
    records = parser.feed(cut) + parser.feed(b"")
    assert records == [
        *EXPECTED["tool_use_response.txt"][:2],
        usage("msg_019Q1hrJbZG26Fb9BQhrkHEr", 377, 1),
    ]


def test_no_message_start_means_no_token_usage(feed_all: Feed) -> None:
    assert feed_all(WIRE.stream_parser, tool_block(0, "{}")) == [ToolUsage(None, "t", "n", "{}")]
    assert feed_all(WIRE.stream_parser, b"") == []


def test_cumulative_usage_takes_the_latest_value_of_each_field(feed_all: Feed) -> None:
    counts = {"output_tokens": 50, "input_tokens": None, "cache_read_input_tokens": 10}
    data = (
        message_start(usage={"input_tokens": 5, "output_tokens": 1})
        + sse("message_delta", {"type": "message_delta", "usage": counts})
        + sse("message_delta", {"type": "message_delta", "usage": {"output_tokens": 70}})
        + sse("message_stop", {})
    )
    assert feed_all(WIRE.stream_parser, data) == [
        ResponseMeta(RID, "claude-opus-4-8"),
        TokenUsage(RID, input=5, output=70, cache_read=10),
    ]


def test_events_after_message_stop_and_after_end_are_ignored() -> None:
    data = message_start() + sse("message_stop", {"type": "message_stop"})
    parser = WIRE.stream_parser()
    assert parser.feed(data) == [ResponseMeta(RID, "claude-opus-4-8"), usage(RID, 12, 1)]
    assert parser.feed(message_start("msg_other") + sse("error", OVERLOADED)) == []
    assert parser.feed(b"") == []
    assert parser.feed(data) == []


def test_invalid_utf8_and_invalid_json_do_not_break_the_stream(feed_all: Feed) -> None:
    tool = tool_block(1, '{"q": "a', 'b"}').replace(b'"a', b'"\xff\xfe')
    data = message_start() + b"event: content_block_delta\ndata: {not json\n\n" + tool
    assert feed_all(WIRE.stream_parser, data) == [
        ResponseMeta(RID, "claude-opus-4-8"),
        ToolUsage(RID, "t", "n", '{"q":"\ufffd\ufffdb"}'),
        usage(RID, 12, 1),
    ]


def test_oversized_event_is_dropped_not_buffered() -> None:
    huge = tool_block(0, '{"x": "' + "y" * 5000 + '"}')
    parser = WIRE.stream_parser(max_event_size=1024)
    records = parser.feed(message_start() + huge) + parser.feed(b"")
    assert records[1] == ToolUsage(RID, "t", "n", "{}")


# --- requests -------------------------------------------------------------------------------


def test_request_with_string_content_and_unknown_fields() -> None:
    body = (
        b'{"model": "claude-sonnet-4-5", "max_tokens": 5, "stream": true, "new": {"x": 1},'
        b' "messages": [{"role": "user", "content": "first"},'
        b' {"role": "assistant", "content": "ok"}, {"role": "user", "content": "hi"}]}'
    )
    assert WIRE.parse_request(body) == RequestSummary("claude-sonnet-4-5", True, "hi")


def test_request_tool_result_turn_has_no_prompt_but_correlates() -> None:
    body = (
        b'{"model": "m", "messages": [{"role": "user", "content": "read it"},'
        b' {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1"}]},'
        b' {"role": "user", "content": ['
        b'   {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a"},'
        b'   {"type": "tool_result", "tool_use_id": "toolu_2",'
        b'    "content": [{"type": "text", "text": "x"}]}]}]}'
    )
    assert WIRE.parse_request(body) == RequestSummary(
        model="m", prompt=None, correlating_tool_call_id="toolu_2"
    )


def test_request_prompt_is_the_last_text_block_and_stream_must_be_true() -> None:
    body = (
        b'{"model": "m", "stream": "yes", "messages": [{"role": "user", "content": ['
        b'   {"type": "text", "text": "<system-reminder>ctx</system-reminder>"},'
        b'   {"type": "image", "source": {}},'
        b'   {"type": "tool_result", "tool_use_id": "toolu_9", "content": "done"},'
        b'   {"type": "text", "text": "and now?"}]},'
        b' {"role": "system", "content": "agent types"}]}'
    )
    assert WIRE.parse_request(body) == RequestSummary(
        model="m", stream=False, prompt="and now?", correlating_tool_call_id="toolu_9"
    )


@pytest.mark.parametrize("body", [b"", b"null", b"[]", b'"str"', b"{bad", b"\xff\xfe"])
def test_request_that_is_not_a_json_object(body: bytes) -> None:
    assert WIRE.parse_request(body) == RequestSummary(parsed=False)


def captured_bodies(captures_dir: Path, name: str) -> list[bytes]:
    rows = [json.loads(line) for line in (captures_dir / name).read_text().splitlines()]
    return [
        json.dumps(r["body"]).encode()
        for r in rows
        if r["method"] == "POST" and r["path"].split("?")[0].endswith("/v1/messages")
    ]


def test_claude_code_captured_requests(captures_dir: Path) -> None:
    title, turn1, turn2 = captured_bodies(captures_dir, "claude-p-tool.jsonl")
    assert WIRE.parse_request(title) == RequestSummary(
        model="claude-opus-4-8",
        stream=True,
        prompt="<session>\nTOOL please read the hello file\n</session>\n\nWrite the title in "
        "the language the user wrote in, regardless of the language of the examples above.",
    )
    assert WIRE.parse_request(turn1) == RequestSummary(
        model="claude-opus-4-8", stream=True, prompt="TOOL please read the hello file"
    )
    assert WIRE.parse_request(turn2) == RequestSummary(
        model="claude-opus-4-8",
        stream=True,
        prompt=None,
        correlating_tool_call_id="toolu_01ae22914a2dd046c28f9245",
    )
    retried = captured_bodies(captures_dir, "claude-head404-errmid.jsonl")[-1]
    assert WIRE.parse_request(retried).prompt == "ERRMID please"


def test_sdk_captured_requests(captures_dir: Path) -> None:
    first, streamed = captured_bodies(captures_dir, "sdk.jsonl")[:2]
    assert WIRE.parse_request(first) == RequestSummary("claude-sonnet-4-5", False, "TOOL please")
    assert WIRE.parse_request(streamed) == RequestSummary("claude-sonnet-4-5", True, "TOOL please")


# --- never raise ----------------------------------------------------------------------------

EVENT_NAMES = (
    "message_start content_block_start content_block_delta content_block_stop message_delta "
    "message_stop error ping"
).split()
KEYS = (
    "type index message id model usage content_block delta partial_json thinking text input "
    "name input_tokens output_tokens cache_creation error content role tool_use_id messages stream"
).split()
WORDS = [
    *EVENT_NAMES,
    *"tool_use thinking text text_delta input_json_delta thinking_delta server_tool_use".split(),
    *"user tool_result".split(),
]


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(
        st.tuples(st.sampled_from(EVENT_NAMES), json_documents(KEYS, WORDS)), max_size=12
    ),
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
    feed_split(WIRE.stream_parser, data, [len(data) // 2])
    WIRE.parse_response(data)
    WIRE.parse_request(data)
