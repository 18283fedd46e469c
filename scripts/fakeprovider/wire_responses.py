"""OpenAI Responses API wire format: the response object and its typed SSE event stream.

Every event's JSON has `type` and `sequence_number` (0, 1, 2, ...) and its SSE `event:` line
equals the type. Output items: an optional reasoning item (summary streamed through
reasoning_summary_part/text events), then either a message (output_text deltas) or function
calls (function_call_arguments deltas). Codex input items of any type are tolerated.
"""

import time
from typing import Any

import orjson

from .scenario import (
    SUMMARY_TEXT,
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
from .wire_chat import error_body as error_body
from .wire_chat import error_object
from .wire_chat import model_object as model_object
from .wire_chat import models_list as models_list

NAME = "responses"
PROMPT_KEYS = ("instructions", "input", "tools")
REQUEST_ID_HEADER = "x-request-id"
ENCRYPTED_REASONING = "ZmFrZS1lbmNyeXB0ZWQtcmVhc29uaW5n"  # base64("fake-encrypted-reasoning")


def _prompt_text(items: Any) -> str:
    if isinstance(items, str):
        return items
    user = last_with_role(items, "user")
    content = user.get("content") if user else None
    return text_of_parts(content, ("input_text", "text"), last_only=False)


def _is_tool_output_turn(items: Any) -> bool:
    if not isinstance(items, list) or not items or not isinstance(items[-1], dict):
        return False
    kind = items[-1].get("type")
    return isinstance(kind, str) and kind.endswith("_call_output")


def scenario(request: Json, knobs: Knobs) -> Scenario:
    """Parse a Responses request: triggers from `input` (string or last user message)."""
    items = request.get("input")
    triggers = parse_triggers(_prompt_text(items))
    reasoning = request.get("reasoning")
    think = triggers.think or (isinstance(reasoning, dict) and bool(reasoning.get("summary")))
    plan = build_plan(
        triggers,
        done_turn=_is_tool_output_turn(items),
        tool_names=tool_names(request.get("tools"), kinds=("function",)),
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
        model=model if isinstance(model, str) else "gpt-fake",
    )


def usage(request: Json, plan: Plan) -> Json:
    prompt = prompt_tokens(prompt_json(request, PROMPT_KEYS))
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": prompt // 4},
        "output_tokens": plan.output_tokens,
        "output_tokens_details": {"reasoning_tokens": plan.reasoning_tokens},
        "total_tokens": prompt + plan.output_tokens,
    }


def response_object(scen: Scenario, resp_id: str, created_at: int, status: str) -> Json:
    """The response envelope, echoing the request's settings; output/usage filled by caller."""
    req = scen.request
    reasoning = req.get("reasoning")
    if not isinstance(reasoning, dict):
        reasoning = {}
    return {
        "id": resp_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": req.get("instructions"),
        "max_output_tokens": req.get("max_output_tokens"),
        "model": scen.model,
        "output": [],
        "parallel_tool_calls": req.get("parallel_tool_calls", True),
        "previous_response_id": req.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": req.get("store", True),
        "temperature": req.get("temperature", 1.0),
        "text": req.get("text") or {"format": {"type": "text"}},
        "tool_choice": req.get("tool_choice", "auto"),
        "tools": req.get("tools") or [],
        "top_p": req.get("top_p", 1.0),
        "truncation": req.get("truncation", "disabled"),
        "usage": None,
        "user": None,
        "metadata": req.get("metadata") or {},
    }


def _wants_encrypted(request: Json) -> bool:
    include = request.get("include")
    return isinstance(include, list) and "reasoning.encrypted_content" in include


def _items(scen: Scenario, ids: Ids) -> list[Json]:
    """The final output items, in order."""
    plan = scen.plan
    items: list[Json] = []
    if plan.thinking:
        summary = [{"type": "summary_text", "text": SUMMARY_TEXT}]
        item: Json = {"id": ids.next("rs_fake_"), "type": "reasoning", "summary": summary}
        if _wants_encrypted(scen.request):
            item["encrypted_content"] = ENCRYPTED_REASONING
        items.append(item)
    for call in plan.tool_calls:
        items.append(
            {
                "id": ids.next("fc_fake_"),
                "type": "function_call",
                "status": "completed",
                "arguments": call.arguments,
                "call_id": ids.next("call_fake_"),
                "name": call.name,
            }
        )
    if not plan.tool_calls:
        part = {"type": "output_text", "text": plan.text, "annotations": [], "logprobs": []}
        items.append(
            {
                "id": ids.next("msg_fake_"),
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [part],
            }
        )
    return items


def blocking(scen: Scenario, ids: Ids) -> Json:
    response = response_object(scen, ids.next("resp_fake_"), int(time.time()), "completed")
    response["output"] = _items(scen, ids)
    response["usage"] = scen.usage
    return response


def _frame(kind: str, fields: Json, sequence_number: int) -> bytes:
    payload = {"type": kind, **fields, "sequence_number": sequence_number}
    return b"event: %s\ndata: %s\n\n" % (kind.encode(), orjson.dumps(payload))


class _Events:
    """Collects framed events with a running sequence_number (= position in the stream)."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.first_delta: int | None = None

    def add(self, kind: str, **fields: Any) -> None:
        self.frames.append(_frame(kind, fields, len(self.frames)))
        if self.first_delta is None and kind.endswith(".delta"):
            self.first_delta = len(self.frames)


def _reasoning_events(out: _Events, index: int, item: Json) -> None:
    added = {"id": item["id"], "type": "reasoning", "summary": []}
    out.add("response.output_item.added", output_index=index, item=added)
    where = {"item_id": item["id"], "output_index": index, "summary_index": 0}
    out.add(
        "response.reasoning_summary_part.added", **where, part={"type": "summary_text", "text": ""}
    )
    for piece in split_text(SUMMARY_TEXT, 3):
        out.add("response.reasoning_summary_text.delta", **where, delta=piece)
    out.add("response.reasoning_summary_text.done", **where, text=SUMMARY_TEXT)
    part = {"type": "summary_text", "text": SUMMARY_TEXT}
    out.add("response.reasoning_summary_part.done", **where, part=part)
    out.add("response.output_item.done", output_index=index, item=item)


def _message_events(out: _Events, index: int, item: Json, pieces: tuple[str, ...]) -> None:
    added = dict(item, status="in_progress", content=[])
    out.add("response.output_item.added", output_index=index, item=added)
    where = {"item_id": item["id"], "output_index": index, "content_index": 0}
    empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    out.add("response.content_part.added", **where, part=empty)
    for piece in pieces:
        out.add("response.output_text.delta", **where, delta=piece, logprobs=[])
    text = item["content"][0]["text"]
    out.add("response.output_text.done", **where, text=text, logprobs=[])
    out.add("response.content_part.done", **where, part=item["content"][0])
    out.add("response.output_item.done", output_index=index, item=item)


def _call_events(out: _Events, index: int, item: Json) -> None:
    added = dict(item, status="in_progress", arguments="")
    out.add("response.output_item.added", output_index=index, item=added)
    where = {"item_id": item["id"], "output_index": index}
    for piece in split_text(item["arguments"], 4):
        out.add("response.function_call_arguments.delta", **where, delta=piece)
    out.add("response.function_call_arguments.done", **where, arguments=item["arguments"])
    out.add("response.output_item.done", output_index=index, item=item)


def stream(scen: Scenario, ids: Ids, request_id: str) -> StreamPlan:
    response = response_object(scen, ids.next("resp_fake_"), int(time.time()), "in_progress")
    out = _Events()
    out.add("response.created", response=response)
    out.add("response.in_progress", response=response)
    items = _items(scen, ids)
    for index, item in enumerate(items):
        if item["type"] == "reasoning":
            _reasoning_events(out, index, item)
        elif item["type"] == "function_call":
            _call_events(out, index, item)
        else:
            _message_events(out, index, item, scen.plan.text_pieces)
    final = dict(response, status="completed", output=items, usage=scen.usage)
    out.add("response.completed", response=final)
    mid = out.first_delta or 2
    error = error_object("server", "The server had an error while processing your request.")
    failed = dict(
        response, status="failed", error={"code": "server_error", "message": error["message"]}
    )
    error_event = _frame("response.failed", {"response": failed}, mid)
    return StreamPlan(out.frames, mid, error_event, final)
