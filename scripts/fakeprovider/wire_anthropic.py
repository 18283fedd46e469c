"""Anthropic Messages API wire format: blocking JSON, SSE stream, errors, models, count_tokens.

The stream layout follows the recorded fixtures (anthropic-sdk-python/*.txt): message_start,
content_block_start, one ping after the first block start, deltas, content_block_stop, ...,
message_delta with cumulative usage, message_stop.
"""

from types import MappingProxyType

import orjson

from .scenario import (
    CACHE_CREATION_TOKENS,
    CACHE_READ_TOKENS,
    SIGNATURE,
    THINKING_TEXT,
    Ids,
    Json,
    Knobs,
    Plan,
    Scenario,
    StreamPlan,
    build_plan,
    last_with_role,
    parse_triggers,
    prompt_json,
    prompt_tokens,
    split_text,
    text_of_parts,
    tool_names,
)

NAME = "anthropic"
PROMPT_KEYS = ("system", "messages", "tools")
REQUEST_ID_HEADER = "request-id"
PING = b'event: ping\ndata: {"type": "ping"}\n\n'
MODELS = (
    ("claude-opus-4-1-20250805", "Claude Opus 4.1", "2025-08-05T00:00:00Z"),
    ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", "2025-09-29T00:00:00Z"),
    ("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "2025-10-01T00:00:00Z"),
)
ERROR_TYPES = MappingProxyType(
    {
        "auth": "authentication_error",
        "not_found": "not_found_error",
        "invalid_request": "invalid_request_error",
        "rate_limit": "rate_limit_error",
        "server": "api_error",
        "overloaded": "overloaded_error",
    }
)
# Client tools have no `type` (or "custom"); server tools (web_search_2025...) are skipped.
CLIENT_TOOL_TYPES: tuple[str | None, ...] = (None, "custom")


def _is_tool_result_turn(message: Json | None) -> bool:
    content = message.get("content") if message else None
    return isinstance(content, list) and any(
        isinstance(block, dict) and block.get("type") == "tool_result" for block in content
    )


def scenario(request: Json, knobs: Knobs) -> Scenario:
    """Parse a Messages request: triggers come from the last `role: user` message."""
    user = last_with_role(request.get("messages"), "user")
    text = text_of_parts(user.get("content") if user else None, ("text",), last_only=True)
    triggers = parse_triggers(text)
    thinking = request.get("thinking")
    think = triggers.think or (
        isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")
    )
    plan = build_plan(
        triggers,
        done_turn=_is_tool_result_turn(user),
        tool_names=tool_names(request.get("tools"), kinds=CLIENT_TOOL_TYPES),
        think=think,
        knobs=knobs,
    )
    model = request.get("model")
    return Scenario(
        request=request,
        triggers=triggers,
        plan=plan,
        usage=usage(request, plan),
        stream=request.get("stream") is True,
        model=model if isinstance(model, str) else "claude-fake",
    )


def usage(request: Json, plan: Plan) -> Json:
    """The `usage` object of the final message (see the formula in scenario.py)."""
    parts = prompt_json(request, PROMPT_KEYS)
    cached = b'"cache_control":' in parts
    one_hour = cached and b'"ttl":"1h"' in parts
    creation = CACHE_CREATION_TOKENS if cached else 0
    return {
        "input_tokens": prompt_tokens(parts),
        "cache_creation_input_tokens": creation,
        "cache_read_input_tokens": CACHE_READ_TOKENS if cached else 0,
        "cache_creation": {
            "ephemeral_5m_input_tokens": 0 if one_hour else creation,
            "ephemeral_1h_input_tokens": creation if one_hour else 0,
        },
        "output_tokens": plan.output_tokens,
        "service_tier": "standard",
    }


def count_tokens(request: Json) -> Json:
    return {"input_tokens": prompt_tokens(prompt_json(request, PROMPT_KEYS))}


def _blocks(plan: Plan, ids: Ids) -> list[tuple[Json, tuple[str, ...]]]:
    """The content blocks, each with the pieces its stream deltas carry."""
    blocks: list[tuple[Json, tuple[str, ...]]] = []
    if plan.thinking:
        block = {"type": "thinking", "thinking": THINKING_TEXT, "signature": SIGNATURE}
        blocks.append((block, split_text(THINKING_TEXT, 3)))
    if plan.tool_calls:
        preamble = f"I'll use the {plan.tool_calls[0].name} tool."
        blocks.append(({"type": "text", "text": preamble}, split_text(preamble, 2)))
    elif plan.text_pieces:
        blocks.append(({"type": "text", "text": plan.text}, plan.text_pieces))
    for call in plan.tool_calls:
        tool_use: Json = {
            "type": "tool_use",
            "id": ids.next("toolu_fake_"),
            "name": call.name,
            "input": call.input,
        }
        blocks.append((tool_use, ("", *split_text(call.arguments, 4))))
    return blocks


def _stop_reason(plan: Plan) -> str:
    return "tool_use" if plan.tool_calls else "end_turn"


def blocking(scen: Scenario, ids: Ids) -> Json:
    return {
        "id": ids.next("msg_fake_"),
        "type": "message",
        "role": "assistant",
        "model": scen.model,
        "content": [block for block, _ in _blocks(scen.plan, ids)],
        "stop_reason": _stop_reason(scen.plan),
        "stop_sequence": None,
        "usage": scen.usage,
    }


def _sse(payload: Json) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (payload["type"].encode(), orjson.dumps(payload))


def _start_block(block: Json) -> Json:
    """The empty block a content_block_start carries."""
    kind = block["type"]
    if kind == "thinking":
        return {"type": "thinking", "thinking": "", "signature": ""}
    if kind == "tool_use":
        return {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
    return {"type": "text", "text": ""}


def _delta(block: Json, piece: str) -> Json:
    kind = block["type"]
    if kind == "thinking":
        return {"type": "thinking_delta", "thinking": piece}
    if kind == "tool_use":
        return {"type": "input_json_delta", "partial_json": piece}
    return {"type": "text_delta", "text": piece}


def _block_events(index: int, block: Json, pieces: tuple[str, ...]) -> list[bytes]:
    start = _start_block(block)
    events = [_sse({"type": "content_block_start", "index": index, "content_block": start})]
    for piece in pieces:
        delta = _delta(block, piece)
        events.append(_sse({"type": "content_block_delta", "index": index, "delta": delta}))
    if block["type"] == "thinking":
        delta = {"type": "signature_delta", "signature": block["signature"]}
        events.append(_sse({"type": "content_block_delta", "index": index, "delta": delta}))
    events.append(_sse({"type": "content_block_stop", "index": index}))
    return events


def stream(scen: Scenario, ids: Ids, request_id: str) -> StreamPlan:
    start_usage = dict(scen.usage, output_tokens=1)
    message: Json = {
        "id": ids.next("msg_fake_"),
        "type": "message",
        "role": "assistant",
        "model": scen.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    events = [_sse({"type": "message_start", "message": message})]
    mid = 0
    for index, (block, pieces) in enumerate(_blocks(scen.plan, ids)):
        block_events = _block_events(index, block, pieces)
        if index == 0:
            block_events.insert(1, PING)
            mid = len(events) + 3  # message_start, block start, ping, first delta
        events.extend(block_events)
    final_usage = {key: scen.usage[key] for key in _DELTA_USAGE_KEYS}
    delta = {"stop_reason": _stop_reason(scen.plan), "stop_sequence": None}
    events.append(_sse({"type": "message_delta", "delta": delta, "usage": final_usage}))
    events.append(_sse({"type": "message_stop"}))
    overloaded = error_payload("overloaded", "Overloaded", request_id)
    return StreamPlan(events, max(1, mid), _sse(overloaded))


_DELTA_USAGE_KEYS = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
)


def error_payload(kind: str, message: str, request_id: str) -> Json:
    error = {"type": ERROR_TYPES.get(kind, "api_error"), "message": message}
    return {"type": "error", "error": error, "request_id": request_id}


def error_body(kind: str, message: str, request_id: str) -> bytes:
    return orjson.dumps(error_payload(kind, message, request_id))


def model_object(model_id: str) -> Json:
    for known, display, created in MODELS:
        if known == model_id:
            return {"type": "model", "id": known, "display_name": display, "created_at": created}
    display = model_id.replace("-", " ").title()
    return {
        "type": "model",
        "id": model_id,
        "display_name": display,
        "created_at": "2025-01-01T00:00:00Z",
    }


def models_list() -> Json:
    data = [model_object(model_id) for model_id, _, _ in MODELS]
    return {
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"],
        "last_id": data[-1]["id"],
    }
