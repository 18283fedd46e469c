"""The `anthropic` provider type: Anthropic's Messages API."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from gateway.errors import ErrorKind
from gateway.providers.base import Route
from gateway.providers.messages import MessagesWire

_GET = frozenset({"GET"})
_POST = frozenset({"POST"})


@dataclass(frozen=True, slots=True)
class AnthropicType:
    name: str = "anthropic"
    default_base_url: str | None = "https://api.anthropic.com"
    routes: tuple[Route, ...] = (
        Route(_POST, "/v1/messages", MessagesWire()),
        Route(_POST, "/v1/messages/count_tokens"),
        Route(_GET, "/v1/models"),
        Route(_GET, "/v1/models/*"),
    )

    def credential_headers(self, api_key: str) -> list[tuple[str, str]]:
        return [("x-api-key", api_key)]

    def error_body(self, kind: ErrorKind, message: str) -> bytes:
        return orjson.dumps(
            {"type": "error", "error": {"type": kind.anthropic_type, "message": message}}
        )
