"""OpenAI Chat Completions (`POST /v1/chat/completions`): requests, blocking and streamed responses.

Streams are `data: {chunk}` SSE events ending with `data: [DONE]`. Tool calls arrive as deltas
keyed by `index` within each choice (every choice of an n>1 request has its own index space);
usage arrives in a final chunk with `choices: []`, or on the last choice chunk with some
providers: the latest usage object seen is recorded, once.
"""

from __future__ import annotations

from typing import Any

from gateway.providers.jsonutil import (
    UsageKeys,
    as_dict,
    as_int,
    as_list,
    as_str,
    dumps,
    flatten_numbers,
    load_object,
    token_usage,
    upstream_error,
)
from gateway.providers.records import Record, RequestSummary, ResponseMeta, ToolUsage
from gateway.providers.sse import DEFAULT_MAX_EVENT_SIZE, EventStreamParser, SSEEvent

USAGE_KEYS = UsageKeys(
    input="prompt_tokens",
    output="completion_tokens",
    cache_read="prompt_tokens_details.cached_tokens",
    input_includes_cache_read=True,
    ignored=frozenset({"total_tokens"}),
)
_LEGACY_CALL = -1
"""Index under which a deprecated `function_call` (no id) is assembled."""


class ChatWire:
    """The `WireFormat` of OpenAI's Chat Completions API (and its compatible servers)."""

    name = "openai.chat"

    def parse_request(self, body: bytes) -> RequestSummary:
        obj = load_object(body)
        if obj is None:
            return RequestSummary(parsed=False)
        prompt, call_id = _scan_messages(as_list(obj.get("messages")))
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
        if isinstance(obj.get("error"), dict) and "choices" not in obj:
            return [upstream_error(obj)]
        response_id = as_str(obj.get("id"))
        out: list[Record] = [ResponseMeta(response_id, as_str(obj.get("model")))]
        for choice in as_list(obj.get("choices")):
            message = as_dict(as_dict(choice).get("message"))
            for raw in as_list(message.get("tool_calls")):
                call = _Call()
                call.add(as_dict(raw))
                out.append(call.record(response_id))
            legacy = message.get("function_call")
            if isinstance(legacy, dict):
                call = _Call()
                call.add({"function": legacy})
                out.append(call.record(response_id))
        usage = obj.get("usage")
        if isinstance(usage, dict):
            out.append(token_usage(response_id, flatten_numbers(usage), USAGE_KEYS))
        return out

    def stream_parser(self, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> ChatStreamParser:
        return ChatStreamParser(max_event_size=max_event_size)


def _text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    text: str | None = None
    for raw in as_list(content):
        part = as_dict(raw)
        if part.get("type") == "text" and isinstance(part.get("text"), str):
            text = part["text"]
    return text


def _scan_messages(messages: list[Any]) -> tuple[str | None, str | None]:
    """(prompt of the last user message, tool_call_id of a tool reply after the last assistant)."""
    prompt: str | None = None
    call_id: str | None = None
    for raw in messages:
        message = as_dict(raw)
        role = message.get("role")
        if role == "user":
            prompt = _text(message.get("content"))
        elif role == "assistant":
            call_id = None
        elif role == "tool":
            call_id = as_str(message.get("tool_call_id")) or call_id
    return prompt, call_id


class _Call:
    """One tool call assembled from its deltas (or read whole from a blocking response)."""

    __slots__ = ("id", "name", "parts")

    def __init__(self) -> None:
        self.id: str | None = None
        self.name: str | None = None
        self.parts: list[str] = []

    def add(self, delta: dict[str, Any]) -> None:
        """Merge one `tool_calls[*]` item: `function` {name, arguments}, `custom` {name, input}."""
        self.id = self.id or as_str(delta.get("id"))
        body = as_dict(delta.get("function")) or as_dict(delta.get("custom"))
        self.name = self.name or as_str(body.get("name"))
        piece = body.get("arguments", body.get("input"))
        if isinstance(piece, str):
            self.parts.append(piece)
        elif isinstance(piece, dict):
            self.parts.append(dumps(piece))

    def record(self, response_id: str | None) -> ToolUsage:
        return ToolUsage(response_id, self.id, self.name or "", "".join(self.parts))


class ChatStreamParser(EventStreamParser):
    """Records of one streamed chat completion (see `StreamParser`)."""

    __slots__ = ("_calls", "_done", "_meta", "_response_id", "_usage")

    def __init__(self, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        super().__init__(max_event_size=max_event_size)
        self._calls: dict[tuple[int, int], _Call] = {}
        self._usage: dict[str, Any] | None = None
        self._response_id: str | None = None
        self._meta = False
        self._done = False

    def on_event(self, event: SSEEvent, out: list[Record]) -> None:
        data = event.data
        if self._done:
            return
        if len(data) < 16 and data.strip() == "[DONE]":
            self._close(out)
            return
        obj = load_object(data)
        if obj is None:
            return
        if event.event == "error" or (isinstance(obj.get("error"), dict) and "choices" not in obj):
            out.append(upstream_error(obj))
            return
        if not self._meta:
            self._meta = True
            self._response_id = as_str(obj.get("id"))
            out.append(ResponseMeta(self._response_id, as_str(obj.get("model"))))
        for choice in as_list(obj.get("choices")):
            self._on_choice(as_dict(choice), out)
        usage = obj.get("usage")
        if isinstance(usage, dict):
            self._usage = usage

    def on_end(self, out: list[Record]) -> None:
        self._close(out)

    def _on_choice(self, choice: dict[str, Any], out: list[Record]) -> None:
        number = as_int(choice.get("index")) or 0
        delta = as_dict(choice.get("delta"))
        for position, raw in enumerate(as_list(delta.get("tool_calls"))):
            item = as_dict(raw)
            index = as_int(item.get("index"))
            self._add(number, position if index is None else index, item, out)
        legacy = delta.get("function_call")
        if isinstance(legacy, dict):
            self._add(number, _LEGACY_CALL, {"function": legacy}, out)
        if choice.get("finish_reason"):
            self._flush(out, number)

    def _add(self, number: int, index: int, item: dict[str, Any], out: list[Record]) -> None:
        key = (number, index)
        call = self._calls.get(key)
        new_id = as_str(item.get("id"))
        if call is not None and new_id and call.id and new_id != call.id:
            # A new call at a used index: servers that send whole calls without an index.
            out.append(self._calls.pop(key).record(self._response_id))
            call = None
        if call is None:
            call = self._calls[key] = _Call()
        call.add(item)

    def _flush(self, out: list[Record], number: int | None = None) -> None:
        """Emit the open calls of one choice (or of all choices when `number` is None)."""
        for key in [k for k in self._calls if number is None or k[0] == number]:
            out.append(self._calls.pop(key).record(self._response_id))

    def _close(self, out: list[Record]) -> None:
        if self._done:
            return
        self._done = True
        self._flush(out)
        if self._usage is not None:
            out.append(token_usage(self._response_id, flatten_numbers(self._usage), USAGE_KEYS))
