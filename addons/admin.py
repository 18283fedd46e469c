"""The admin API and dashboard on the gateway's own listener (no second port).

Paths served here: `/`, `/dashboard...`, and `/api/v2/...` except the gateway routes
`/api/v2/aibridge/<provider>/...` (which belong to Paths and the addons after it); the
admin's own `/api/v2/aibridge/interceptions` and `/api/v2/aibridge/usage` are the names
addons.paths.RESERVED keeps out of the gateway. The FastAPI app runs on mitmproxy's event loop
through `mitmproxy.addons.asgiapp.serve`; its endpoints are sync, so database work runs in the
threadpool.
"""

from __future__ import annotations

from collections.abc import Awaitable

from mitmproxy import http
from mitmproxy.addons.asgiapp import serve

from addons.paths import RESERVED, split_gateway_path
from addons.state import Gateway
from gateway.admin import create_app

API_PREFIX = "/api/v2/"


def is_admin_path(path: str) -> bool:
    """True for the admin app's paths; never for a gateway route."""
    target = path.partition("?")[0]
    if target in ("/", "/dashboard") or target.startswith("/dashboard/"):
        return True
    if not target.startswith(API_PREFIX):
        return False
    parts = split_gateway_path(path)
    if parts is None:
        return True
    return parts[0] in RESERVED


class Admin:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.app = create_app(lambda: self.gateway.runtime)

    def request(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        """Sync for every other path (no coroutine per gateway request); the ASGI app's
        coroutine for admin paths, which mitmproxy (or the chain) awaits."""
        if flow.response or flow.error or not flow.live:
            return None
        if not is_admin_path(flow.request.path):
            return None
        return serve(self.app, flow)
