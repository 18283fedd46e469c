"""`GET /healthz`: liveness and the configuration version this process routes with."""

from __future__ import annotations

import orjson
from mitmproxy import http

from addons.state import Gateway


class Health:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        if flow.request.path != "/healthz" or flow.request.method not in ("GET", "HEAD"):
            return
        runtime = self.gateway.runtime
        ready = self.gateway.ready and runtime is not None and runtime.config is not None
        body = {
            "status": "ok" if ready else "starting",
            "config_version": runtime.config.snapshot.version
            if ready and runtime and runtime.config
            else None,
            "instance": runtime.instance_id if runtime else None,
            "database_writes": "ok"
            if (runtime and runtime.writer and runtime.writer.healthy)
            else "failing",
            "journal_pending_bytes": runtime.journal.pending_bytes()
            if runtime and runtime.journal
            else None,
            "dump_failures": self.gateway.dump_writer.failures
            if self.gateway.dump_writer
            else None,
        }
        flow.response = http.Response.make(
            200 if ready else 503, orjson.dumps(body), {"content-type": "application/json"}
        )
