"""What every provider type declares: its routes, how credentials are sent, how errors look.

A provider *type* (anthropic, openai, openai-compat) is a `ProviderType`; each intercepted
route names a `WireFormat` that parses its request and response bodies. Code outside
`gateway/providers/` only ever talks to these interfaces, never to a concrete provider.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from gateway.errors import ErrorKind
from gateway.providers.records import Record, RequestSummary


class StreamParser(Protocol):
    """Incremental parser of one streamed response body.

    `feed(chunk)` accepts bytes split at arbitrary boundaries and returns the records completed
    so far; `feed(b"")` marks the end of input and flushes whatever is buffered (including the
    token usage seen so far when the stream was cut short).
    """

    def feed(self, data: bytes) -> list[Record]: ...


class WireFormat(Protocol):
    """One API's wire format (Anthropic messages, Chat Completions, Responses)."""

    name: str

    def parse_request(self, body: bytes) -> RequestSummary: ...

    def parse_response(self, body: bytes) -> list[Record]:
        """Parse a complete (blocking) JSON response body."""
        ...

    def stream_parser(self) -> StreamParser: ...


@dataclass(frozen=True, slots=True)
class Route:
    """A method and path (after `/api/v2/aibridge/<name>`) the gateway accepts for a type.

    In `pattern`, `*` stands for exactly one non-empty path segment (no `/`); no query string.
    `wire` is set for intercepted routes (recorded), None for plain passthrough.
    """

    methods: frozenset[str]
    pattern: str
    wire: WireFormat | None = None
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = (re.escape(p) for p in self.pattern.split("*"))
        object.__setattr__(self, "_regex", re.compile("[^/]+".join(parts)))

    def matches(self, method: str, path: str) -> bool:
        return method in self.methods and self._regex.fullmatch(path) is not None


class ProviderType(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def default_base_url(self) -> str | None: ...

    @property
    def routes(self) -> Sequence[Route]: ...

    def credential_headers(self, api_key: str) -> list[tuple[str, str]]:
        """Headers that carry the provider credential upstream."""
        ...

    def error_body(self, kind: ErrorKind, message: str) -> bytes:
        """A JSON error body shaped like the provider's own errors."""
        ...


def match_route(ptype: ProviderType, method: str, path: str) -> Route | None:
    for route in ptype.routes:
        if route.matches(method, path):
            return route
    return None
