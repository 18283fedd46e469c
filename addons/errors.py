"""Answering a flow ourselves: provider-shaped JSON errors, and mitmproxy's own error pages.

Hooks never raise to reject (mitmproxy would log and forward the flow): they call `reject()`,
which sets `flow.response`.
"""

from __future__ import annotations

from mitmproxy import http
from mitmproxy.proxy.layers.http import _http1

from gateway.errors import ErrorKind
from gateway.providers.base import ProviderType

INTERCEPTION_HEADER = "X-AIBridge-Interception-Id"


def reject(
    flow: http.HTTPFlow,
    ptype: ProviderType,
    kind: ErrorKind,
    message: str,
    *,
    interception_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    hdrs = {"content-type": "application/json", "cache-control": "no-store"}
    if interception_id:
        hdrs[INTERCEPTION_HEADER] = interception_id
    if headers:
        hdrs.update(headers)
    # A response to HEAD carries no body (RFC 9110 9.3.2); a body would corrupt keep-alive.
    body = b"" if flow.request.method == "HEAD" else ptype.error_body(kind, message)
    flow.response = http.Response.make(kind.status, body, hdrs)


def json_error(status: int, message: str) -> bytes:
    """An error body both Anthropic and OpenAI SDKs parse: `type`/`error.type` for Anthropic,
    `error.message`/`error.code` for OpenAI. Used where the provider is unknown."""
    import orjson

    kind = {
        400: "invalid_request_error",
        413: "request_too_large",
        502: "api_error",
        504: "timeout_error",
    }.get(status, "api_error")
    return orjson.dumps(
        {"type": "error", "error": {"type": kind, "message": message, "code": f"http_{status}"}}
    )


def _error_response(status_code: int, message: str = "") -> bytes:
    """Replacement for mitmproxy's HTML error page on protocol errors (malformed requests,
    upstream connect failures, oversized bodies): a JSON body instead."""
    text = f"aibridge: {message}" if message else "aibridge: request failed"
    if status_code == 502 and message == "connection cancelled":
        # our upstream timeout cancelled a connection attempt that never completed
        status_code, text = (
            504,
            "aibridge: upstream timeout: the connection was not established in time",
        )
    elif status_code == 502:
        text = f"aibridge: upstream unreachable: {message}"
    resp = http.Response.make(
        status_code,
        json_error(status_code, text),
        http.Headers(Connection="close", Content_Type="application/json"),
    )
    return _http1.http1.assemble_response(resp)


def install_error_pages() -> None:
    """mitmproxy renders protocol errors through `_http1.make_error_response`; point it at ours."""
    _http1.make_error_response = _error_response
