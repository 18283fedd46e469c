"""`GET /metrics` (Prometheus text format) and the per-request counts behind it.

The endpoint needs an admin or auditor gateway token (Prometheus: `authorization:
{credentials: aib_...}`) unless `metrics` is `public`; `off` answers 404. The counts are
taken for every gateway-route request in `response` / `error`, whoever answered it.
"""

from __future__ import annotations

import orjson
from mitmproxy import http

from addons.state import FlowContext, Gateway
from addons.timeouts import TIMEOUT_HEADER
from gateway.auth import AuthError, authenticate, extract
from gateway.metrics import CONTENT_TYPE
from gateway.metrics import Metrics as Registry
from schema.types import utcnow

PATH = "/metrics"
READER_ROLES = ("admin", "auditor")
_COUNTED = "aibridge_metrics_counted"


def _json(status: int, message: str, headers: dict[str, str] | None = None) -> http.Response:
    return http.Response.make(
        status,
        orjson.dumps({"message": message}),
        {"content-type": "application/json", "cache-control": "no-store", **(headers or {})},
    )


class Metrics:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def _registry(self) -> Registry | None:
        runtime = self.gateway.runtime
        return runtime.metrics if runtime is not None else None

    # -- the endpoint -------------------------------------------------------------------------

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        if flow.request.path.split("?", 1)[0] != PATH:
            return
        mode = self.gateway.settings.metrics
        registry = self._registry()
        if mode == "off":
            flow.response = _json(404, "metrics are off (--ai-gateway-metrics)")
        elif flow.request.method not in ("GET", "HEAD"):
            flow.response = _json(405, "use GET", {"allow": "GET, HEAD"})
        elif registry is None or not self.gateway.ready:
            flow.response = _json(503, "the gateway is starting")
        elif mode != "public" and (problem := self._denied(flow)) is not None:
            flow.response = problem
        else:
            body = b"" if flow.request.method == "HEAD" else registry.render()
            flow.response = http.Response.make(
                200, body, {"content-type": CONTENT_TYPE, "cache-control": "no-store"}
            )

    def _denied(self, flow: http.HTTPFlow) -> http.Response | None:
        runtime = self.gateway.runtime
        assert runtime is not None and runtime.config is not None
        presented = extract(flow.request.headers.get_all)
        if presented.problem or presented.token is None:
            return _json(
                401, presented.problem or "missing gateway token", {"www-authenticate": "Bearer"}
            )
        try:
            principal = authenticate(runtime.config.snapshot.tokens, presented.token, utcnow())
        except AuthError as exc:
            return _json(401, exc.message, {"www-authenticate": "Bearer"})
        if principal.role not in READER_ROLES:
            return _json(403, f"metrics need the admin or auditor role (you are {principal.role})")
        return None

    # -- counting -----------------------------------------------------------------------------

    def _provider(self, fctx: FlowContext) -> str:
        # Only configured providers become labels: a client cannot mint new series. A request
        # rejected before routing (a bad token) still names its provider when it is one.
        if fctx.provider is not None:
            return fctx.provider.name
        runtime = self.gateway.runtime
        snapshot = runtime.config.snapshot if runtime and runtime.config else None
        if snapshot is not None and fctx.provider_name in snapshot.providers:
            return fctx.provider_name
        return "unknown"

    def response(self, flow: http.HTTPFlow) -> None:
        fctx = self.gateway.context(flow)
        registry = self._registry()
        if fctx is None or registry is None or flow.response is None:
            return
        if flow.metadata.get(_COUNTED):
            return
        flow.metadata[_COUNTED] = True
        resp, req = flow.response, flow.request
        by_gateway = fctx.rejected or TIMEOUT_HEADER in resp.headers
        ttfb = None
        if not by_gateway and resp.timestamp_start and req.timestamp_end:
            ttfb = resp.timestamp_start - req.timestamp_end
        end = resp.timestamp_end
        registry.answered(
            self._provider(fctx),
            resp.status_code,
            by_gateway=by_gateway,
            duration=end - req.timestamp_start if end else None,
            ttfb=ttfb,
        )

    def error(self, flow: http.HTTPFlow) -> None:
        fctx = self.gateway.context(flow)
        registry = self._registry()
        if fctx is None or registry is None or flow.metadata.get(_COUNTED):
            return
        if flow.response is not None:  # broken after the response headers: count that answer
            self.response(flow)
            return
        flow.metadata[_COUNTED] = True
        message = flow.error.msg.lower() if flow.error else ""
        if "client disconnected" in message:
            status = 499  # the client went away before an answer (nginx's convention)
        elif message == "connection cancelled":
            status = 504  # our upstream timeout cancelled a connection attempt
        else:
            status = 502
        registry.answered(self._provider(fctx), status, by_gateway=True, duration=None, ttfb=None)
