"""mitmproxy addons of aibridge: the only package that imports mitmproxy.

`default_addons()` returns them in registration order; mitmproxy runs each hook in this order.
"""

from __future__ import annotations

from typing import Any

from addons.chain import AIBridge
from addons.state import Gateway


def default_addons(gateway: Gateway) -> list[Any]:
    from addons.admin import Admin
    from addons.auth import Auth
    from addons.credentials import Credentials
    from addons.dumps import Dumps
    from addons.flowview import FlowView
    from addons.health import Health
    from addons.lifecycle import Lifecycle
    from addons.limits import BodyLimit
    from addons.metrics import Metrics
    from addons.netguard import UpstreamGuard
    from addons.options import Options
    from addons.paths import Paths
    from addons.recording import Recording
    from addons.routing import Routing
    from addons.timeouts import UpstreamTimeout

    flow_view = FlowView(gateway)
    return [
        Options(gateway),  # settings <-> mitmproxy options; the runtime's start and stop
        Lifecycle(gateway),  # in-flight accounting for graceful stops
        flow_view.unmask,  # mitmweb: real credentials back in `request` (before Admin reads them)
        Health(gateway),  # GET /healthz
        Metrics(gateway),  # GET /metrics (Prometheus); counts every gateway-route answer
        Admin(gateway),  # admin API and dashboard: /dashboard, /api/v2/... (not gateway routes)
        Paths(gateway),  # /api/v2/aibridge/<name>/...: recognise, validate, HEAD preflight
        BodyLimit(gateway),  # 413 before anything is forwarded
        Auth(gateway),  # user token -> principal, 401 otherwise
        Routing(gateway),  # provider name -> upstream, allow-listed routes only
        Credentials(gateway),  # strip client auth and hop-by-hop headers, inject the key
        Recording(gateway),  # interceptions, usage, prompts, tools, thoughts
        Dumps(gateway),  # API dumps (dump_dir): after Recording, wraps its stream tap
        flow_view,  # mitmweb/mitmdump only: comment, error mark, masked secrets, flow limit
        UpstreamTimeout(gateway),  # 504 when the upstream sends no headers in time
        UpstreamGuard(gateway),  # re-check the upstream address when connecting
    ]


def aibridge_addon(gateway: Gateway) -> AIBridge:
    """All of the above as one entry in mitmproxy's addon chain (see addons/chain.py)."""
    return AIBridge(default_addons(gateway))
