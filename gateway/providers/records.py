"""Provider-neutral records that the wire-format parsers emit.

Parsers turn bytes into these frozen values; the recorder turns them into rows and log lines.
Nothing here knows about HTTP, mitmproxy or SQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class RequestSummary:
    """What the gateway needs to know about a client request, read leniently from its body."""

    model: str | None = None
    stream: bool = False
    prompt: str | None = None
    """Text of the last user message, or None when the request carries none."""
    parsed: bool = True
    """False when the body was not the JSON the wire format expects (it is still forwarded)."""
    correlating_tool_call_id: str | None = None
    """The id of the tool call whose result this request sends back, if any (the last one)."""


@dataclass(frozen=True, slots=True)
class ResponseMeta:
    """Identity of the provider's response (a message id, chat completion id or response id)."""

    response_id: str | None
    model: str | None = None


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Billed token counts for one provider response. `input` never includes cache reads/writes."""

    response_id: str | None
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PromptUsage:
    prompt: str


@dataclass(frozen=True, slots=True)
class ToolUsage:
    """A tool call the model made. `arguments` is JSON text exactly as the model produced it."""

    response_id: str | None
    tool_call_id: str | None
    name: str
    arguments: str
    injected: bool = False
    server_url: str | None = None


@dataclass(frozen=True, slots=True)
class ModelThought:
    response_id: str | None
    content: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """At least {"source": ...}: "thinking", "reasoning_summary" or "commentary"."""


@dataclass(frozen=True, slots=True)
class UpstreamError:
    """An error the provider reported inside a response (e.g. an SSE `error` event)."""

    message: str
    type: str | None = None


Record = ResponseMeta | TokenUsage | ToolUsage | ModelThought | UpstreamError
