"""OpenAI Chat Completions wire format: blocking JSON and `data: {chunk}` streams.

The chunk layout follows the recorded gpt-4o streams (openai-python/*.sse): a role chunk,
content or tool_call deltas (tool call arguments split across chunks, one index per call), a
finish chunk with an empty delta, the usage chunk with `choices: []` only when
`stream_options.include_usage` is true, then `data: [DONE]`.
"""

import time
from types import MappingProxyType

import orjson

from .scenario import (
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

NAME = "chat"
PROMPT_KEYS = ("messages", "tools")
REQUEST_ID_HEADER = "x-request-id"
FINGERPRINT = "fp_fake"
DONE = b"data: [DONE]\n\n"


def scenario(request: Json, knobs: Knobs) -> Scenario:
    """Parse a chat request: triggers from the last user message, "Done." after a tool."""
    messages = request.get("messages")
    user = last_with_role(messages, "user")
    text = text_of_parts(user.get("content") if user else None, ("text",), last_only=False)
    triggers = parse_triggers(text)
    last = messages[-1] if isinstance(messages, list) and messages else None
    done_turn = isinstance(last, dict) and last.get("role") in ("tool", "function")
    plan = build_plan(
        triggers,
        done_turn=done_turn,
        tool_names=tool_names(request.get("tools"), kinds=("function",), nested="function"),
        think=triggers.think or request.get("reasoning_effort") is not None,
        knobs=knobs,
    )
    model = request.get("model")
    return Scenario(
        request=request,
        triggers=triggers,
        plan=plan,
        usage=usage(request, plan),
        stream=request.get("stream") is True,
        model=model if isinstance(model, str) else "gpt-fake",
    )


def usage(request: Json, plan: Plan) -> Json:
    prompt = prompt_tokens(prompt_json(request, PROMPT_KEYS))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": plan.output_tokens,
        "total_tokens": prompt + plan.output_tokens,
        "prompt_tokens_details": {"cached_tokens": prompt // 4, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": plan.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _call_ids(plan: Plan, ids: Ids) -> list[str]:
    return [ids.next("call_fake_") for _ in plan.tool_calls]


def blocking(scen: Scenario, ids: Ids) -> Json:
    plan = scen.plan
    message: Json = {
        "role": "assistant",
        "content": plan.text if not plan.tool_calls else None,
        "refusal": None,
        "annotations": [],
    }
    if plan.tool_calls:
        message["tool_calls"] = [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            }
            for call_id, c in zip(_call_ids(plan, ids), plan.tool_calls, strict=True)
        ]
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": "tool_calls" if plan.tool_calls else "stop",
    }
    return {
        "id": ids.next("chatcmpl-fake-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": scen.model,
        "choices": [choice],
        "usage": scen.usage,
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }


def _choice(delta: Json, finish_reason: str | None = None) -> list[Json]:
    return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]


def _tool_deltas(plan: Plan, call_ids: list[str]) -> list[Json]:
    deltas: list[Json] = []
    for index, (call_id, call) in enumerate(zip(call_ids, plan.tool_calls, strict=True)):
        function = {"name": call.name, "arguments": ""}
        head = {"index": index, "id": call_id, "type": "function", "function": function}
        deltas.append({"tool_calls": [head]})
        for piece in split_text(call.arguments, 4):
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    return deltas


def stream(scen: Scenario, ids: Ids, request_id: str) -> StreamPlan:
    plan = scen.plan
    call_ids = _call_ids(plan, ids)
    prefix = b'data: {"id":"%s","object":"chat.completion.chunk","created":%d,"model":%s' % (
        ids.next("chatcmpl-fake-").encode(),
        int(time.time()),
        orjson.dumps(scen.model),
    )
    prefix += b',"system_fingerprint":"%s","choices":' % FINGERPRINT.encode()

    def chunk(choices: list[Json], usage_obj: Json | None = None) -> bytes:
        tail = b',"usage":' + orjson.dumps(usage_obj) if usage_obj is not None else b""
        return prefix + orjson.dumps(choices) + tail + b"}\n\n"

    if plan.tool_calls:
        deltas = [{"role": "assistant", "content": None}, *_tool_deltas(plan, call_ids)]
    else:
        deltas = [{"role": "assistant", "content": "", "refusal": None}]
        deltas.extend({"content": piece} for piece in plan.text_pieces)
    events = [chunk(_choice(delta)) for delta in deltas]
    events.append(chunk(_choice({}, "tool_calls" if plan.tool_calls else "stop")))
    options = scen.request.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage") is True:
        events.append(chunk([], scen.usage))
    events.append(DONE)
    error = {
        "error": error_object("server", "The server had an error while processing your request.")
    }
    return StreamPlan(events, 2, b"data: " + orjson.dumps(error) + b"\n\n")


ERROR_KINDS = MappingProxyType(
    {
        "auth": ("invalid_request_error", "invalid_api_key"),
        "not_found": ("invalid_request_error", None),
        "invalid_request": ("invalid_request_error", None),
        "rate_limit": ("requests", "rate_limit_exceeded"),
        "server": ("server_error", None),
        "overloaded": ("server_error", "overloaded"),
    }
)


def error_object(kind: str, message: str) -> Json:
    error_type, code = ERROR_KINDS.get(kind, ("server_error", None))
    return {"message": message, "type": error_type, "param": None, "code": code}


def error_body(kind: str, message: str, request_id: str) -> bytes:
    """OpenAI error shape: {"error": {"message", "type", "param", "code"}}."""
    return orjson.dumps({"error": error_object(kind, message)})


MODELS = (
    ("gpt-4.1", 1744316542),
    ("gpt-4o", 1715367049),
    ("gpt-5", 1754425777),
    ("gpt-5.1-codex", 1762988221),
)


def model_object(model_id: str) -> Json:
    created = next((ts for known, ts in MODELS if known == model_id), 1700000000)
    return {"id": model_id, "object": "model", "created": created, "owned_by": "openai"}


def models_list() -> Json:
    return {"object": "list", "data": [model_object(model_id) for model_id, _ in MODELS]}
