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
    """One pass over the raw header fields (this runs for every request).

    A name with `_` is compared with `_` read as `-`: servers that fold underscores (CGI-style)
    would read `X_Api_Key` as `X-Api-Key` and `Content_Length` as `Content-Length`, so such a
    variant of a credential, hop-by-hop or framing header never reaches the upstream.
    `Connection: close` survives: mitmproxy decides from these same headers whether to close
    the client's connection after the response (RFC 9112 9.6).
    """
    drop = _DROP
    listed = headers.get_all("connection")
    close = False
    if listed:
        extra = {
            h.strip().lower().replace("_", "-").encode() for v in listed for h in v.split(",")
            if h.strip()
        }
        drop = drop | (extra - _PROTECTED)
        close = b"close" in extra
    fields = headers.fields
    kept = tuple(f for f in fields if _kept(f[0].lower(), drop))
    if len(kept) != len(fields):
        headers.fields = kept
    if close:
        headers["connection"] = "close"


def _kept(name: bytes, drop: frozenset[bytes]) -> bool:
    if b"_" not in name:
        return name not in drop
    folded = name.replace(b"_", b"-")
    return folded not in drop and folded not in _PROTECTED


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
