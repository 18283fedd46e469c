"""The `openai` and `openai-compat` provider types: Chat Completions and Responses."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from gateway.errors import ErrorKind
from gateway.providers.base import Route
from gateway.providers.chat import ChatWire
from gateway.providers.responses import ResponsesWire

_GET = frozenset({"GET"})
_POST = frozenset({"POST"})

_ROUTES = (
    Route(_POST, "/v1/chat/completions", ChatWire()),
    Route(_POST, "/v1/responses", ResponsesWire()),
    Route(_GET, "/v1/models"),
    Route(_GET, "/v1/models/*"),
    Route(_GET, "/v1/responses/*"),
)


def _error(kind: ErrorKind, message: str) -> bytes:
    error = {"message": message, "type": kind.openai_type, "param": None, "code": kind.code}
    return orjson.dumps({"error": error})


@dataclass(frozen=True, slots=True)
class OpenAIType:
    name: str = "openai"
    default_base_url: str | None = "https://api.openai.com/v1"
    routes: tuple[Route, ...] = _ROUTES

    def credential_headers(self, api_key: str) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {api_key}")]

    def error_body(self, kind: ErrorKind, message: str) -> bytes:
        return _error(kind, message)


@dataclass(frozen=True, slots=True)
class OpenAICompatType:
    """Any server speaking the OpenAI wire formats (vLLM, Ollama, LM Studio...): no default URL."""

    name: str = "openai-compat"
    default_base_url: str | None = None
    routes: tuple[Route, ...] = _ROUTES

    def credential_headers(self, api_key: str) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {api_key}")]

    def error_body(self, kind: ErrorKind, message: str) -> bytes:
        return _error(kind, message)
