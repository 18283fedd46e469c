"""OpenAI Responses API (`POST /v1/responses`): requests, blocking and streamed responses.

Streams are typed SSE events (`event: response.created`, `data: {"type": ...}`). Completed
output items arrive whole in `response.output_item.done` (authoritative) and the usage in the
final response object of response.completed / incomplete / failed. Delta events are skipped
unparsed, except tool-argument deltas, which are kept to flush a call cut short mid-stream.
"""

from __future__ import annotations

from typing import Any

from gateway.providers.jsonutil import (
    UsageKeys,
    as_dict,
    as_list,
    as_str,
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
    UpstreamError,
)
from gateway.providers.sse import DEFAULT_MAX_EVENT_SIZE, EventStreamParser, SSEEvent

USAGE_KEYS = UsageKeys(
    input="input_tokens",
    output="output_tokens",
    cache_read="input_tokens_details.cached_tokens",
    input_includes_cache_read=True,
    ignored=frozenset({"total_tokens"}),
)
TOOL_CALL_TYPES = frozenset({"function_call", "custom_tool_call", "mcp_call"})
TOOL_OUTPUT_TYPES = frozenset({"function_call_output", "custom_tool_call_output"})
FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
START_EVENTS = frozenset({"response.created", "response.in_progress", "response.queued"})
ARGUMENT_DELTAS = frozenset(
    {"response.function_call_arguments.delta", "response.custom_tool_call_input.delta"}
)


class ResponsesWire:
    """The `WireFormat` of OpenAI's Responses API."""

    name = "openai.responses"

    def parse_request(self, body: bytes) -> RequestSummary:
        obj = load_object(body)
        if obj is None:
            return RequestSummary(parsed=False)
        given = obj.get("input")
        prompt: str | None = given if isinstance(given, str) else None
        call_id: str | None = None
        if prompt is None:
            prompt, call_id = _scan_input(as_list(given))
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
        if isinstance(obj.get("error"), dict) and "output" not in obj:
            return [upstream_error(obj)]
        response_id = as_str(obj.get("id"))
        out: list[Record] = [ResponseMeta(response_id, as_str(obj.get("model")))]
        for item in as_list(obj.get("output")):
            out.extend(item_records(response_id, as_dict(item)))
        _append_outcome(response_id, obj, out)
        return out

    def stream_parser(
        self, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE
    ) -> ResponsesStreamParser:
        return ResponsesStreamParser(max_event_size=max_event_size)


def _user_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    texts = [
        part["text"]
        for part in map(as_dict, as_list(content))
        if part.get("type") == "input_text" and isinstance(part.get("text"), str)
    ]
    return "\n".join(texts) if texts else None


def _scan_input(items: list[Any]) -> tuple[str | None, str | None]:
    """(prompt of the last user message, call_id of a tool output after it)."""
    prompt: str | None = None
    call_id: str | None = None
    for raw in items:
        item = as_dict(raw)
        kind = item.get("type")
        if item.get("role") == "user" and kind in (None, "message"):
            prompt = _user_text(item.get("content"))
            call_id = None
        elif kind in TOOL_OUTPUT_TYPES:
            call_id = as_str(item.get("call_id")) or call_id
    return prompt, call_id


def _text_arg(value: Any) -> str:
    if isinstance(value, str):
        return value
    return "" if value is None else dumps(value)


def _tool(response_id: str | None, item: dict[str, Any], arguments: str) -> ToolUsage:
    call_id = as_str(item.get("call_id")) or as_str(item.get("id"))
    return ToolUsage(response_id, call_id, as_str(item.get("name")) or "", arguments)


def item_records(response_id: str | None, item: dict[str, Any]) -> list[Record]:
    """Records of one complete output item (tool calls, reasoning summaries, commentary)."""
    kind = item.get("type")
    if kind == "custom_tool_call":
        return [_tool(response_id, item, _text_arg(item.get("input")))]
    if kind in TOOL_CALL_TYPES:
        return [_tool(response_id, item, _text_arg(item.get("arguments")))]
    if kind == "reasoning":
        texts = (as_str(as_dict(part).get("text")) for part in as_list(item.get("summary")))
        return [ModelThought(response_id, t, {"source": "reasoning_summary"}) for t in texts if t]
    if kind == "message" and item.get("phase") == "commentary":
        text = "".join(
            as_str(part.get("text")) or ""
            for part in map(as_dict, as_list(item.get("content")))
            if part.get("type") == "output_text"
        )
        return [ModelThought(response_id, text, {"source": "commentary"})] if text else []
    return []


def _append_outcome(
    response_id: str | None, response: dict[str, Any], out: list[Record], *, failed: bool = False
) -> None:
    """A final response object's error (if any, or if `failed`) and usage (if any)."""
    if isinstance(response.get("error"), dict):
        out.append(upstream_error(response, ("code", "type")))
    elif failed or response.get("status") == "failed":
        out.append(UpstreamError(message="response failed", type=None))
    usage = response.get("usage")
    if isinstance(usage, dict):
        out.append(token_usage(response_id, flatten_numbers(usage), USAGE_KEYS))


def _item_key(item: dict[str, Any]) -> str:
    return as_str(item.get("id")) or as_str(item.get("call_id")) or dumps(item)


class _PendingCall:
    """A tool call item whose arguments are still streaming."""

    __slots__ = ("item", "parts")

    def __init__(self, item: dict[str, Any]) -> None:
        self.item = item
        self.parts: list[str] = []

    def records(self, response_id: str | None) -> list[Record]:
        key = "input" if self.item.get("type") == "custom_tool_call" else "arguments"
        arguments = "".join(self.parts) or _text_arg(self.item.get(key))
        return [_tool(response_id, self.item, arguments)]


class ResponsesStreamParser(EventStreamParser):
    """Records of one streamed response (see `StreamParser`)."""

    __slots__ = ("_done", "_meta", "_pending", "_response_id", "_seen")

    def __init__(self, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        super().__init__(max_event_size=max_event_size)
        self._pending: dict[str, _PendingCall] = {}
        self._seen: set[str] = set()
        self._response_id: str | None = None
        self._meta = False
        self._done = False

    def on_event(self, event: SSEEvent, out: list[Record]) -> None:
        name = event.event
        if self._done:
            return
        if name is not None and name.endswith(".delta") and name not in ARGUMENT_DELTAS:
            return  # text, reasoning and audio deltas: the done events carry the whole value
        obj = load_object(event.data)
        if obj is None:
            return
        kind = as_str(obj.get("type")) or name
        if kind in ARGUMENT_DELTAS:
            pending = self._pending.get(as_str(obj.get("item_id")) or "")
            delta = obj.get("delta")
            if pending is not None and isinstance(delta, str):
                pending.parts.append(delta)
        elif kind == "response.output_item.added":
            item = as_dict(obj.get("item"))
            if item.get("type") in TOOL_CALL_TYPES:
                self._pending[_item_key(item)] = _PendingCall(item)
        elif kind == "response.output_item.done":
            self._item_done(as_dict(obj.get("item")), out)
        elif kind in START_EVENTS:
            self._start(obj.get("response"), out)
        elif kind in FINAL_EVENTS:
            self._finish(as_dict(obj.get("response")), out, failed=kind == "response.failed")
        elif kind == "error":
            nested = isinstance(obj.get("error"), dict)
            out.append(upstream_error(obj) if nested else upstream_error(obj, ("code",)))

    def on_end(self, out: list[Record]) -> None:
        self._close(out)

    def _start(self, response: Any, out: list[Record]) -> None:
        if not self._meta and isinstance(response, dict):
            self._meta = True
            self._response_id = as_str(response.get("id"))
            out.append(ResponseMeta(self._response_id, as_str(response.get("model"))))

    def _item_done(self, item: dict[str, Any], out: list[Record]) -> None:
        key = _item_key(item)
        self._pending.pop(key, None)
        if key not in self._seen:
            self._seen.add(key)
            out.extend(item_records(self._response_id, item))

    def _finish(self, response: dict[str, Any], out: list[Record], *, failed: bool) -> None:
        """The final response object: unseen items, then its error and usage."""
        self._start(response, out)
        for item in as_list(response.get("output")):
            self._item_done(as_dict(item), out)
        self._close(out)
        _append_outcome(self._response_id, response, out, failed=failed)

    def _close(self, out: list[Record]) -> None:
        """Flush tool calls cut short (their arguments so far); nothing is emitted after."""
        if self._done:
            return
        self._done = True
        for pending in self._pending.values():
            out.extend(pending.records(self._response_id))
        self._pending.clear()
