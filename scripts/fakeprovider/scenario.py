"""What the fake answers: triggers read from the prompt, the answer plan, and the usage numbers.

Everything here is a pure function of the request JSON (plus the per-request knobs), so a test
can compute the exact answer and usage the fake will produce (`expected_usage`).

Usage formula (identical for blocking and streaming answers):

* ``prompt_tokens = max(1, len(orjson.dumps(parts)) // 4)`` where ``parts`` is the dict of the
  prompt-bearing keys present in the request: Anthropic ``system, messages, tools``; Chat
  ``messages, tools``; Responses ``instructions, input, tools``. Whitespace in the wire body does
  not matter, only the JSON values.
* ``output_tokens`` = 12 for the default text answer, 3 for the "Done." answer after a tool
  result, 15 per tool call, plus 8 when the answer thinks/reasons (those 8 are also reported as
  ``reasoning_tokens`` by the OpenAI APIs). The size of the text (``--events``, BIGEVENT) does
  not change it.
* Anthropic: ``cache_read_input_tokens = 7`` and ``cache_creation_input_tokens = 3`` when any
  prompt part carries a ``cache_control`` key, else 0 and 0; the 3 are reported under
  ``cache_creation.ephemeral_1h_input_tokens`` when some ``cache_control`` has ``"ttl": "1h"``,
  else under ``ephemeral_5m_input_tokens``.
* OpenAI (chat and responses): ``cached_tokens = prompt_tokens // 4``;
  ``total_tokens = prompt_tokens + completion_tokens``.
"""

import itertools
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import orjson

Json = dict[str, Any]

BASE_TEXT = "Hello from the fake provider."
BASE_WORDS = 5  # words in BASE_TEXT
DONE_TEXT = "Done."
THINKING_TEXT = "Let me think about this request step by step."
SUMMARY_TEXT = "**Planning the answer**\n\nThe user wants a short reply from the fake provider."
SIGNATURE = "ZmFrZS1zaWduYXR1cmUtZm9yLXRlc3Rz"  # base64("fake-signature-for-tests")
DEFAULT_TOOL = "get_weather"
TOOL_INPUTS = ({"location": "Paris"}, {"location": "London"})
# TOOLRUN: the first of these tools in the request, called with a harmless command it accepts.
RUN_COMMAND = "echo hi-from-fake"
RUN_TOOL_INPUTS: Mapping[str, Json] = MappingProxyType(
    {
        "Bash": {"command": RUN_COMMAND, "description": "Print a greeting"},  # Claude Code
        "exec_command": {"cmd": RUN_COMMAND},  # Codex (unified exec)
        "shell": {"command": ["bash", "-lc", RUN_COMMAND]},  # older Codex
    }
)
# TOOLREAD:<path>: Claude Code's Read tool on <path>.
READ_TOOL = "Read"
_READ_RE = re.compile(r"TOOLREAD:(\S+)")

DEFAULT_EVENTS = 5
MAX_EVENTS = 100_000
DEFAULT_BIGEVENT_MB = 5.0
SLOW_SECONDS = 2.0
DRIP_DELAY = 0.002
# BADSSE: what a broken upstream may send before (or instead of) a valid event stream.
MALFORMED_SSE = (
    b"this line has no colon and is not a field\n"
    b"data: {not json at all\n\n"
    b": a comment\r\n"
    b"id: \x00nul-in-id\r"
    b"retry: soon\n\n"
    b"event: \xff\xfe\n"
    b"data: {\"type\": \"message_start\", \"message\": \n\n"
    b"data:[DONE\n\n"
)
# BADUTF8: an event whose JSON string holds bytes that are not UTF-8.
INVALID_UTF8_EVENT = b'data: {"type": "junk", "text": "\xff\xfe\xc3\x28 \xed\xa0\x80"}\n\n'

TEXT_TOKENS = 12
DONE_TOKENS = 3
TOOL_TOKENS = 15
THINKING_TOKENS = 8
CACHE_READ_TOKENS = 7
CACHE_CREATION_TOKENS = 3

_WORD_RE = re.compile(r"\s*\S+")


@dataclass(frozen=True, slots=True)
class Knobs:
    """Per-request answer shaping: delay between streamed events, text deltas, BIGEVENT size."""

    delay: float = 0.0
    events: int = DEFAULT_EVENTS
    bigevent_bytes: int = int(DEFAULT_BIGEVENT_MB * 1024 * 1024)


@dataclass(frozen=True, slots=True)
class Triggers:
    """Upper-case words found in the last user message text."""

    tool: bool = False
    tool2: bool = False
    think: bool = False
    err429: bool = False
    err500: bool = False
    errmid: bool = False
    slow: bool = False
    hang: bool = False
    reset: bool = False
    resetmid: bool = False
    gzip: bool = False
    bigevent: bool = False
    run: bool = False
    read_path: str | None = None
    badsse: bool = False
    nodone: bool = False
    badutf8: bool = False
    truncjson: bool = False
    wrongct: bool = False
    redirect: bool = False
    drip: bool = False


def parse_triggers(text: str) -> Triggers:
    """Find the trigger words in `text` (case-sensitive; RESETMID does not imply RESET)."""
    if not text:
        return Triggers()
    return Triggers(
        tool="TOOL" in text,
        tool2="TOOL2" in text,
        think="THINK" in text,
        err429="ERR429" in text,
        err500="ERR500" in text,
        errmid="ERRMID" in text,
        slow="SLOW" in text,
        hang="HANG" in text,
        reset="RESET" in text.replace("RESETMID", ""),
        resetmid="RESETMID" in text,
        gzip="GZIP" in text,
        bigevent="BIGEVENT" in text,
        run="TOOLRUN" in text,
        read_path=read.group(1) if (read := _READ_RE.search(text)) else None,
        badsse="BADSSE" in text,
        nodone="NODONE" in text,
        badutf8="BADUTF8" in text,
        truncjson="TRUNCJSON" in text,
        wrongct="WRONGCT" in text,
        redirect="REDIRECT" in text,
        drip="DRIP" in text,
    )


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    input: Json

    @property
    def arguments(self) -> str:
        """The input as an OpenAI-style JSON arguments string (`json.dumps` spacing)."""
        return json.dumps(self.input)


@dataclass(frozen=True, slots=True)
class Plan:
    """The answer, independent of wire format. `text_pieces` joined is the text answer."""

    text_pieces: tuple[str, ...]
    thinking: bool
    tool_calls: tuple[ToolCall, ...]
    output_tokens: int
    reasoning_tokens: int

    @property
    def text(self) -> str:
        return "".join(self.text_pieces)


@dataclass(frozen=True, slots=True)
class Scenario:
    """One parsed generation request: what to do and what to answer."""

    request: Json
    triggers: Triggers
    plan: Plan
    usage: Json
    stream: bool
    model: str


def answer_text(events: int = DEFAULT_EVENTS) -> str:
    """The default text answer: BASE_TEXT repeated until it has at least `events` words."""
    repeats = max(1, math.ceil(clamp_events(events) / BASE_WORDS))
    return " ".join([BASE_TEXT] * repeats)


def clamp_events(events: int) -> int:
    return max(1, min(MAX_EVENTS, events))


def split_text(text: str, pieces: int) -> tuple[str, ...]:
    """Split `text` into `pieces` non-empty parts on word boundaries (characters if too few)."""
    units: list[str] = _WORD_RE.findall(text)
    if pieces > len(units):
        units = list(text)
    count = max(1, min(pieces, len(units)))
    total = len(units)
    return tuple(
        "".join(units[i * total // count : (i + 1) * total // count]) for i in range(count)
    )


def big_text(size: int) -> str:
    """`size` characters of repeated BASE_TEXT (the BIGEVENT delta)."""
    unit = BASE_TEXT + " "
    return (unit * (size // len(unit) + 1))[:size]


def build_plan(
    triggers: Triggers,
    *,
    done_turn: bool,
    tool_names: list[str],
    think: bool,
    knobs: Knobs,
) -> Plan:
    """Decide the answer: "Done." after a tool result, tool calls on TOOLREAD/TOOLRUN/TOOL/TOOL2,
    else text."""
    calls: tuple[ToolCall, ...] = ()
    if done_turn:
        pieces: tuple[str, ...] = (DONE_TEXT,)
        tokens = DONE_TOKENS
    elif named := named_call(triggers, tool_names):
        calls = (named,)
        pieces = ()
        tokens = TOOL_TOKENS
    elif triggers.tool:
        first = tool_names[0] if tool_names else DEFAULT_TOOL
        second = tool_names[1] if len(tool_names) > 1 else first
        names = (first, second) if triggers.tool2 else (first,)
        calls = tuple(
            ToolCall(name, dict(args)) for name, args in zip(names, TOOL_INPUTS, strict=False)
        )
        pieces = ()
        tokens = TOOL_TOKENS * len(calls)
    elif triggers.bigevent:
        pieces = (big_text(knobs.bigevent_bytes),)
        tokens = TEXT_TOKENS
    else:
        pieces = split_text(answer_text(knobs.events), knobs.events)
        tokens = TEXT_TOKENS
    reasoning = THINKING_TOKENS if think else 0
    return Plan(pieces, think, calls, tokens + reasoning, reasoning)


def named_call(triggers: Triggers, tool_names: list[str]) -> ToolCall | None:
    """TOOLREAD:<path> / TOOLRUN: a call of a known agent tool, when the request offers it."""
    if triggers.read_path is not None and READ_TOOL in tool_names:
        return ToolCall(READ_TOOL, {"file_path": triggers.read_path})
    if triggers.run:
        for name in tool_names:
            if name in RUN_TOOL_INPUTS:
                return ToolCall(name, json.loads(json.dumps(RUN_TOOL_INPUTS[name])))
    return None


def prompt_json(request: Mapping[str, Any], keys: Iterable[str]) -> bytes:
    """The canonical JSON of the prompt-bearing keys (the base of every token count)."""
    return orjson.dumps({key: request[key] for key in keys if key in request})


def prompt_tokens(parts: bytes) -> int:
    return max(1, len(parts) // 4)


def text_of_parts(content: Any, part_types: tuple[str, ...], *, last_only: bool) -> str:
    """Text of a message content: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    texts = [
        part["text"]
        for part in content
        if isinstance(part, dict)
        and part.get("type") in part_types
        and isinstance(part.get("text"), str)
    ]
    if last_only:
        return texts[-1] if texts else ""
    return "\n".join(texts)


def last_with_role(items: Any, role: str) -> Json | None:
    """The last dict in `items` whose `role` is `role` (None when there is none)."""
    if not isinstance(items, list):
        return None
    for item in reversed(items):
        if isinstance(item, dict) and item.get("role") == role:
            return item
    return None


def tool_names(
    tools: Any, *, kinds: tuple[str | None, ...], nested: str | None = None
) -> list[str]:
    """Names of the tools whose `type` is in `kinds` (`nested` reads `tool[nested]["name"]`)."""
    if not isinstance(tools, list):
        return []
    names: list[str] = []
    for tool in tools:
        if not isinstance(tool, dict) or tool.get("type") not in kinds:
            continue
        holder = tool.get(nested) if nested else tool
        name = holder.get("name") if isinstance(holder, dict) else None
        if isinstance(name, str) and name:
            names.append(name)
    return names


class Ids:
    """Deterministic ids: `next("msg_fake_")` -> msg_fake_1, msg_fake_2, ... per prefix."""

    def __init__(self) -> None:
        self._counters: dict[str, itertools.count[int]] = {}

    def next(self, prefix: str) -> str:
        counter = self._counters.get(prefix)
        if counter is None:
            counter = self._counters[prefix] = itertools.count(1)
        return f"{prefix}{next(counter)}"


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """A streamed answer: framed SSE events, where ERRMID/RESETMID cut it, the error event."""

    events: list[bytes]
    mid: int
    error_event: bytes
    final: Json | None = None
