"""What is sent: workloads (API, body size, streaming), cells (workload x concurrency), the
request bodies, and the raw HTTP/1.1 bytes for one target's endpoint."""

from __future__ import annotations

import json
from dataclasses import dataclass

CHAT_MODEL = "gpt-4o-mini"
MESSAGES_MODEL = "claude-sonnet-4-5"
STREAM_EVENTS = 50
# Lower-case on purpose: upper-case words in the prompt are the fake provider's triggers.
FILLER = ("the quick brown fox jumps over the lazy dog while the gateway forwards every byte "
          "of this prompt to the provider and records who asked what. ")


@dataclass(frozen=True)
class Route:
    """Where one API lives on a target, and the headers that authenticate there."""

    path: str
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Endpoints:
    chat: Route
    messages: Route

    def route(self, api: str) -> Route:
        return self.chat if api == "chat" else self.messages


@dataclass(frozen=True)
class Workload:
    name: str
    api: str  # "chat" (OpenAI Chat Completions) or "messages" (Anthropic Messages)
    body_bytes: int
    stream: bool = False

    @property
    def label(self) -> str:
        kind = "stream" if self.stream else "blocking"
        api = "Chat Completions" if self.api == "chat" else "Anthropic messages"
        return f"{kind} {api}, {self.body_bytes // 1024} KB body"


@dataclass(frozen=True)
class Cell:
    workload: Workload
    concurrency: int

    @property
    def key(self) -> str:
        return f"{self.workload.name}/c{self.concurrency}"


CHAT_8K = Workload("chat-8k", "chat", 8 * 1024)
CHAT_200K = Workload("chat-200k", "chat", 200 * 1024)
MESSAGES_8K = Workload("messages-8k", "messages", 8 * 1024)
STREAM_50 = Workload("stream-50", "chat", 8 * 1024, stream=True)
BIG_20M = Workload("chat-20m", "chat", 20 * 1024 * 1024)


def plan_cells(quick: bool) -> tuple[Cell, ...]:
    if quick:
        return (Cell(CHAT_8K, 1), Cell(CHAT_8K, 16), Cell(STREAM_50, 16))
    blocking = tuple(Cell(w, c) for w in (CHAT_8K, CHAT_200K, MESSAGES_8K) for c in (1, 16, 64))
    return (*blocking, *(Cell(STREAM_50, c) for c in (16, 64, 256)))


def _padded(skeleton: dict[str, object], slot: list[dict[str, str]], size: int) -> bytes:
    """`skeleton` serialised with the last message's content grown to make `size` bytes."""
    empty = len(json.dumps(skeleton, separators=(",", ":")))
    want = max(0, size - empty)
    text = (FILLER * (want // len(FILLER) + 1))[:want]
    slot[-1]["content"] = text
    return json.dumps(skeleton, separators=(",", ":")).encode()


def request_body(workload: Workload) -> bytes:
    messages = [{"role": "user", "content": ""}]
    if workload.api == "messages":
        body: dict[str, object] = {"model": MESSAGES_MODEL, "max_tokens": 256,
                                   "system": "You are a benchmark.", "messages": messages}
    else:
        messages.insert(0, {"role": "system", "content": "You are a benchmark."})
        body = {"model": CHAT_MODEL, "max_tokens": 256, "messages": messages}
    if workload.stream:
        body["stream"] = True
        if workload.api == "chat":
            body["stream_options"] = {"include_usage": True}
    return _padded(body, messages, workload.body_bytes)


def knob_headers(workload: Workload, stream_delay: float) -> tuple[tuple[str, str], ...]:
    if not workload.stream:
        return ()
    return (("x-fake-events", str(STREAM_EVENTS)), ("x-fake-delay", f"{stream_delay:g}"))


def raw_request(port: int, route: Route, body: bytes,
                extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    lines = [f"POST {route.path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
             "Content-Type: application/json", f"Content-Length: {len(body)}",
             "User-Agent: aibridge-bench/1"]
    lines += [f"{k}: {v}" for k, v in (*route.headers, *extra)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def provider_endpoints(openai_key: str, anthropic_key: str, prefix: str = "") -> Endpoints:
    """The provider's own paths (direct, bare mitmdump, LiteLLM), or aibridge's under `prefix`."""
    chat_prefix = f"{prefix}/openai" if prefix else ""
    messages_prefix = f"{prefix}/anthropic" if prefix else ""
    return Endpoints(
        chat=Route(f"{chat_prefix}/v1/chat/completions",
                   (("Authorization", f"Bearer {openai_key}"),)),
        messages=Route(f"{messages_prefix}/v1/messages",
                       (("x-api-key", anthropic_key), ("anthropic-version", "2023-06-01"))),
    )
