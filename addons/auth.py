"""User authentication: the gateway token from `Authorization: Bearer` or `X-Api-Key`
(or `X-AIBridge-Token`, which leaves the other two for the user's own provider key, BYOK).

Fails closed: anything but a valid, live token of an enabled user is a 401 in the provider's
error shape, and nothing is forwarded.
"""

from __future__ import annotations

from mitmproxy import http

from addons.errors import reject
from addons.state import Gateway
from gateway import errors
from gateway.auth import AuthError, authenticate, extract
from schema.types import utcnow


class Auth:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        fctx = self.gateway.context(flow)
        if fctx is None or fctx.rejected or flow.response or flow.error or not flow.live:
            return
        runtime = self.gateway.runtime
        assert runtime is not None and runtime.config is not None
        snapshot = runtime.config.snapshot
        fctx.snapshot = snapshot
        provider = snapshot.providers.get(fctx.provider_name)
        ptype = provider.type if provider is not None else fctx.guessed_type
        presented = extract(flow.request.headers.get_all)
        if presented.problem or presented.token is None:
            fctx.rejected = True
            reject(
                flow, ptype, errors.UNAUTHENTICATED, presented.problem or "missing gateway token"
            )
            return
        try:
            fctx.principal = authenticate(snapshot.tokens, presented.token, utcnow())
        except AuthError as exc:
            fctx.rejected = True
            reject(flow, ptype, errors.UNAUTHENTICATED, exc.message)
            return
        if presented.byok_key is not None:
            if not self.gateway.settings.byok:
                fctx.rejected = True
                reject(
                    flow,
                    ptype,
                    errors.FORBIDDEN,
                    "bring-your-own-key is disabled: send only the gateway token",
                )
                return
            fctx.byok_key = presented.byok_key
