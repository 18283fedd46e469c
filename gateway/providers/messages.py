"""Anthropic Messages API (`POST /v1/messages`): requests, blocking and streamed responses.

Streams are `event: X` / `data: {json}` SSE events: message_start, content_block_start /
delta / stop, message_delta (cumulative usage), message_stop, ping and error. Text deltas,
the bulk of a stream, are recognised by a substring check and never JSON-parsed.
"""

from __future__ import annotations

from typing import Any

from gateway.providers.jsonutil import (
    UsageKeys,
    as_dict,
    as_int,
    as_list,
    as_str,
    compact_or_raw,
    dumps,
    flatten_numbers,
    load_object,
    token_usage,
    upstream_error,
)
from gateway.providers.records import (
    ModelThought,
    Record,
    RequestSummary,
    ResponseMeta,
    ToolUsage,
)
from gateway.providers.sse import DEFAULT_MAX_EVENT_SIZE, EventStreamParser, SSEEvent

USAGE_KEYS = UsageKeys(
    input="input_tokens",
    output="output_tokens",
    cache_read="cache_read_input_tokens",
    cache_write="cache_creation_input_tokens",
)
TOOL_BLOCK_TYPES = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})
"""Content blocks that are tool calls the model made (client, server-side and MCP tools)."""


class MessagesWire:
    """The `WireFormat` of Anthropic's Messages API."""

    name = "anthropic.messages"

    def parse_request(self, body: bytes) -> RequestSummary:
        obj = load_object(body)
        if obj is None:
            return RequestSummary(parsed=False)
        prompt, call_id = _last_user_turn(as_list(obj.get("messages")))
        return RequestSummary(
            model=as_str(obj.get("model")),
            stream=obj.get("stream") is True,
            prompt=prompt,
            correlating_tool_call_id=call_id,
        )

    def parse_response(self, body: bytes) -> list[Record]:
        obj = load_object(body)
        if obj is None:
            return []
        if obj.get("type") == "error" or isinstance(obj.get("error"), dict):
            return [upstream_error(obj)]
        response_id = as_str(obj.get("id"))
        out: list[Record] = [ResponseMeta(response_id, as_str(obj.get("model")))]
        for raw in as_list(obj.get("content")):
            block = as_dict(raw)
            kind = block.get("type")
            if kind in TOOL_BLOCK_TYPES:
                out.append(_tool(response_id, block, _input_text(block)))
            elif kind == "thinking":
                thought = _thought(response_id, as_str(block.get("thinking")) or "")
                if thought is not None:
                    out.append(thought)
        usage = obj.get("usage")
        if isinstance(usage, dict):
            out.append(token_usage(response_id, flatten_numbers(usage), USAGE_KEYS))
        return out

    def stream_parser(
        self, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE
    ) -> MessagesStreamParser:
        return MessagesStreamParser(max_event_size=max_event_size)


def _last_user_turn(messages: list[Any]) -> tuple[str | None, str | None]:
    """(prompt, tool_use_id of the last tool_result) of the last user message."""
    for raw in reversed(messages):
        message = as_dict(raw)
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content, None
        prompt: str | None = None
        call_id: str | None = None
        for item in as_list(content):
            block = as_dict(item)
            kind = block.get("type")
            if kind == "text" and isinstance(block.get("text"), str):
                prompt = block["text"]
            elif kind == "tool_result":
                call_id = as_str(block.get("tool_use_id")) or call_id
        return prompt, call_id
    return None, None


def _input_text(block: dict[str, Any]) -> str:
    value = block.get("input")
    return dumps(value if value is not None else {})


def _tool(response_id: str | None, block: dict[str, Any], arguments: str) -> ToolUsage:
    return ToolUsage(
        response_id=response_id,
        tool_call_id=as_str(block.get("id")),
        name=as_str(block.get("name")) or "",
        arguments=arguments,
    )


def _thought(response_id: str | None, text: str) -> ModelThought | None:
    return ModelThought(response_id, text, {"source": "thinking"}) if text else None


class _Block:
    """A streamed tool_use or thinking block being assembled from its deltas."""

    __slots__ = ("parts", "start")

    def __init__(self, start: dict[str, Any]) -> None:
        self.start = start
        self.parts: list[str] = []

    def record(self, response_id: str | None) -> Record | None:
        text = "".join(self.parts)
        if self.start.get("type") == "thinking":
            return _thought(response_id, text or as_str(self.start.get("thinking")) or "")
        arguments = compact_or_raw(text) if text else _input_text(self.start)
        return _tool(response_id, self.start, arguments)


class MessagesStreamParser(EventStreamParser):
    """Records of one streamed Messages response (see `StreamParser`)."""

    __slots__ = ("_blocks", "_closed", "_model", "_response_id", "_started", "_usage")

    def __init__(self, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        super().__init__(max_event_size=max_event_size)
        self._blocks: dict[int, _Block] = {}
        self._usage: dict[str, int | float] = {}
        self._response_id: str | None = None
        self._model: str | None = None
        self._started = False
        self._closed = False

    def on_event(self, event: SSEEvent, out: list[Record]) -> None:
        name = event.event
        if self._closed or name == "ping":
            return
        if name == "content_block_delta" and '"text_delta"' in event.data:
            return  # a text block's delta: nothing to record
        obj = load_object(event.data)
        if obj is None:
            return
        kind = as_str(obj.get("type")) or name
        if kind == "content_block_delta":
            self._on_delta(obj)
        elif kind == "content_block_start":
            self._on_block_start(obj)
        elif kind == "content_block_stop":
            self._on_block_stop(obj, out)
        elif kind == "message_start":
            self._on_message_start(as_dict(obj.get("message")), out)
        elif kind == "message_delta":
            self._merge_usage(obj.get("usage"))
        elif kind == "message_stop":
            self._close(out)
        elif kind == "error":
            out.append(upstream_error(obj))

    def on_end(self, out: list[Record]) -> None:
        self._close(out)

    def _on_message_start(self, message: dict[str, Any], out: list[Record]) -> None:
        if not self._started:
            self._started = True
            self._response_id = as_str(message.get("id"))
            self._model = as_str(message.get("model"))
            out.append(ResponseMeta(self._response_id, self._model))
        self._merge_usage(message.get("usage"))

    def _merge_usage(self, usage: Any) -> None:
        """Usage counts are cumulative: the latest value of each field wins."""
        if isinstance(usage, dict):
            self._usage.update(flatten_numbers(usage))

    def _on_block_start(self, obj: dict[str, Any]) -> None:
        index = as_int(obj.get("index"))
        block = as_dict(obj.get("content_block"))
        kind = block.get("type")
        if index is not None and (kind in TOOL_BLOCK_TYPES or kind == "thinking"):
            self._blocks[index] = _Block(block)

    def _on_delta(self, obj: dict[str, Any]) -> None:
        index = as_int(obj.get("index"))
        block = self._blocks.get(index) if index is not None else None
        if block is None:
            return
        delta = as_dict(obj.get("delta"))
        kind = delta.get("type")
        if kind == "input_json_delta":
            piece = as_str(delta.get("partial_json"))
        elif kind == "thinking_delta":
            piece = as_str(delta.get("thinking"))
        else:
            return
        if piece:
            block.parts.append(piece)

    def _on_block_stop(self, obj: dict[str, Any], out: list[Record]) -> None:
        index = as_int(obj.get("index"))
        block = self._blocks.pop(index, None) if index is not None else None
        if block is not None:
            record = block.record(self._response_id)
            if record is not None:
                out.append(record)

    def _close(self, out: list[Record]) -> None:
        """message_stop or end of input: flush unfinished blocks, then the usage (once)."""
        if self._closed:
            return
        self._closed = True
        for index in sorted(self._blocks):
            record = self._blocks[index].record(self._response_id)
            if record is not None:
                out.append(record)
        self._blocks.clear()
        if self._started:
            out.append(token_usage(self._response_id, self._usage, USAGE_KEYS))
