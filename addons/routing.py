"""Provider-name routing: pick the provider from the path, check its state and the route
allow-list, and point the flow at the provider's base URL."""

from __future__ import annotations

from mitmproxy import http
from mitmproxy.net.http import url

from addons.errors import reject
from addons.state import Gateway
from gateway import errors
from gateway.providers.base import match_route


class Routing:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        fctx = self.gateway.context(flow)
        if fctx is None or fctx.rejected or flow.response or flow.error or not flow.live:
            return
        assert fctx.snapshot is not None
        method = flow.request.method
        provider = fctx.snapshot.providers.get(fctx.provider_name)
        fctx.rejected = True
        if provider is None:
            reject(
                flow,
                fctx.guessed_type,
                errors.NOT_FOUND,
                f"unknown provider {fctx.provider_name!r}",
            )
            return
        fctx.provider = provider
        if not provider.enabled:
            reject(
                flow,
                provider.type,
                errors.FORBIDDEN,
                f"provider {provider.name!r} is disabled by an administrator",
            )
            return
        if flow.request.headers.get("upgrade"):
            reject(
                flow,
                provider.type,
                errors.UPGRADE_REQUIRED,
                "WebSocket is not supported by aibridge: use HTTP streaming "
                "(Codex: supports_websockets = false)",
            )
            return
        route = match_route(provider.type, method, fctx.subpath)
        if route is None:
            reject(
                flow,
                provider.type,
                errors.NOT_FOUND,
                f"route not supported: {method} {fctx.subpath or '/'}",
            )
            return
        if fctx.byok_key is None and not provider.api_key:
            reject(
                flow,
                provider.type,
                errors.FORBIDDEN,
                f"provider {provider.name!r} has no API key configured",
            )
            return
        fctx.route = route
        fctx.rejected = False
        up = provider.upstream
        flow.request.scheme = up.scheme
        flow.request.port = up.port
        flow.request.host = up.host
        flow.request.host_header = url.hostport(up.scheme, up.host, up.port)
        target = up.join(fctx.raw_subpath)
        flow.request.path = f"{target}?{fctx.query}" if fctx.query else target
