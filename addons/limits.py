"""Request body limit: 413 in the provider's shape, before the upstream is contacted."""

from __future__ import annotations

from mitmproxy import http

from addons.errors import reject
from addons.state import Gateway
from gateway import errors


class BodyLimit:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def _too_large(self, flow: http.HTTPFlow, size: int) -> None:
        fctx = self.gateway.context(flow)
        assert fctx is not None
        fctx.rejected = True
        limit = self.gateway.settings.max_request_body_bytes
        reject(
            flow,
            fctx.error_type,
            errors.TOO_LARGE,
            f"request body of {size} bytes exceeds the gateway limit of {limit} bytes",
            headers={"connection": "close"},
        )

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        fctx = self.gateway.context(flow)
        if fctx is None or fctx.rejected or flow.response or flow.error or not flow.live:
            return
        declared = flow.request.headers.get("content-length")
        if declared is not None and declared.strip().isdigit():
            size = int(declared)
            if size > self.gateway.settings.max_request_body_bytes:
                self._too_large(flow, size)

    def request(self, flow: http.HTTPFlow) -> None:
        """Bodies without Content-Length (chunked) are measured once complete."""
        fctx = self.gateway.context(flow)
        if fctx is None or fctx.rejected or flow.response or flow.error or not flow.live:
            return
        size = len(flow.request.raw_content or b"")
        if size > self.gateway.settings.max_request_body_bytes:
            self._too_large(flow, size)
