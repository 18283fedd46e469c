"""Credential injection: the client's auth and hop-by-hop headers go, the provider's key comes.

Everything else the client sent passes untouched (`anthropic-beta`, `anthropic-version`,
session headers, `Accept-Encoding`, unknown headers).
"""

from __future__ import annotations

from mitmproxy import http

from addons.state import Gateway

CLIENT_AUTH = ("authorization", "x-api-key", "x-aibridge-token", "proxy-authorization")
HOP_BY_HOP = (
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "te",
    "trailer",
    "upgrade",
)
# Never removed because a client listed them in `Connection:` (framing and routing).
PROTECTED = frozenset({"content-length", "transfer-encoding", "host", "content-type"})
_PROTECTED = frozenset(name.encode() for name in PROTECTED)


_DROP = frozenset(name.encode() for name in (*CLIENT_AUTH, *HOP_BY_HOP))


def strip_client_headers(headers: http.Headers) -> None:
    """One pass over the raw header fields (this runs for every request)."""
    drop = _DROP
    listed = headers.get_all("connection")
    if listed:
        extra = {h.strip().lower().encode() for v in listed for h in v.split(",") if h.strip()}
        drop = drop | (extra - _PROTECTED)
    fields = headers.fields
    kept = tuple(f for f in fields if f[0].lower() not in drop)
    if len(kept) != len(fields):
        headers.fields = kept


class Credentials:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        fctx = self.gateway.context(flow)
        if fctx is None or fctx.rejected or flow.response or flow.error or not flow.live:
            return
        provider = fctx.provider
        assert provider is not None
        key = fctx.byok_key or provider.api_key
        assert key is not None
        strip_client_headers(flow.request.headers)
        for name, value in provider.type.credential_headers(key):
            flow.request.headers[name] = value
