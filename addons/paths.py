"""Recognise gateway routes: `/api/v2/aibridge/<provider-name>/<sub-path>`.

The provider name is validated strictly after percent-decoding: anything that is not a
lowercase hyphenated name (`..`, `%2e`, `%2f`, uppercase, fullwidth dots, NUL, empty) is 404.
So is a sub-path an upstream could read differently from our route check (dot segments, `//`,
an encoded `/`). Header values with CR, LF or NUL are 400, a request head over 32 KiB 431.
The upstream is never chosen from Host or any other header.
"""

from __future__ import annotations

from urllib.parse import unquote

from mitmproxy import http

from addons.errors import reject
from addons.state import FlowContext, Gateway
from gateway import errors
from gateway.errors import ErrorKind
from gateway.providers import get_provider_type
from gateway.providers.base import ProviderType
from gateway.validation import is_provider_name

PREFIX = "/api/v2/aibridge/"
# Paths under the prefix that belong to the admin API, not to a provider.
RESERVED = frozenset({"interceptions", "usage"})
PREFLIGHT = frozenset({"", "/", "/api/hello"})
# Request headers beyond this (names + values) are 431: Node's default limit is 16 KiB and
# common front ends allow 8-32 KiB, so no real client comes near it.
MAX_HEAD_BYTES = 32 * 1024


def guess_type(subpath: str) -> ProviderType:
    """Error shape before the provider is known: Anthropic's paths look like /v1/messages."""
    return get_provider_type("anthropic" if subpath.startswith("/v1/messages") else "openai")


def split_gateway_path(path: str) -> tuple[str, str, str, str] | None:
    """`/api/v2/aibridge/name/v1/x?q` -> ("name", "/v1/x", raw sub-path, "q"); None if not a
    gateway path. The name is "" when it is not a valid provider name (never decoded)."""
    target, _, query = path.partition("?")
    if not target.startswith(PREFIX):
        return None
    rest = target[len(PREFIX) :]
    raw_name, slash, sub = rest.partition("/")
    # Percent-encoding is never valid in a provider name: reject rather than decode.
    name = raw_name if is_provider_name(raw_name) else ""
    raw = slash + sub
    subpath = unquote(raw, errors="replace") if "%" in raw else raw
    return name, subpath, raw, query


class Paths:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        parts = split_gateway_path(flow.request.path)
        if parts is None:
            return
        name, subpath, raw_subpath, query = parts
        if name in RESERVED:
            return
        ptype = guess_type(subpath)
        fctx = FlowContext(
            provider_name=name,
            subpath=subpath,
            raw_subpath=raw_subpath,
            query=query,
            guessed_type=ptype,
        )
        self.gateway.flows[flow] = fctx
        fctx.rejected = True
        if not self.gateway.ready:
            reject(flow, ptype, errors.UNAVAILABLE, "aibridge is starting; retry shortly")
        elif not self.gateway.settings.enabled:
            reject(
                flow,
                ptype,
                errors.GATEWAY_DISABLED,
                "the AI gateway is disabled on this deployment (ai_gateway.enabled=false)",
            )
        elif not name:
            reject(flow, ptype, errors.NOT_FOUND, "invalid provider name in path")
        elif flow.request.method == "HEAD" and subpath in PREFLIGHT:
            # Claude Code preflights its base URL (and /api/hello) with HEAD, no credentials.
            flow.response = http.Response.make(200, b"", {"content-type": "text/plain"})
        elif _ambiguous(subpath, raw_subpath):
            reject(
                flow,
                ptype,
                errors.NOT_FOUND,
                f"route not supported: {flow.request.method} {subpath or '/'}",
            )
        elif (problem := _header_problem(flow.request.headers.fields)) is not None:
            kind, message = problem
            reject(flow, ptype, kind, message, headers={"connection": "close"})
        else:
            fctx.rejected = False


def _ambiguous(subpath: str, raw: str) -> bool:
    """A sub-path an upstream could read differently from our route check: dot segments,
    `//`, NUL or backslash, or an encoded `/`, `\\` or NUL (we check the decoded path but
    forward the raw one)."""
    if "//" in subpath or "\x00" in subpath or "\\" in subpath:
        return True
    segments = subpath.split("/")
    if ".." in segments or "." in segments:
        return True
    if "%" in raw:
        lowered = raw.lower()
        return "%2f" in lowered or "%5c" in lowered or "%00" in lowered
    return False


def _header_problem(fields: tuple[tuple[bytes, bytes], ...]) -> tuple[ErrorKind, str] | None:
    """Header bytes that must not be forwarded: a bare CR, LF or NUL inside a value (an
    upstream may split it into a second, smuggled header), or a head beyond MAX_HEAD_BYTES."""
    size = 0
    for name, value in fields:
        size += len(name) + len(value) + 4
        if b"\r" in value or b"\n" in value or b"\x00" in value:
            shown = name.decode("ascii", "replace")[:64]
            return errors.BAD_REQUEST, f"header {shown!r} has a CR, LF or NUL in its value"
    if size > MAX_HEAD_BYTES:
        return (
            errors.HEADERS_TOO_LARGE,
            f"request headers of {size} bytes exceed the gateway limit of {MAX_HEAD_BYTES}",
        )
    return None
