"""In-flight accounting, so a graceful stop can wait for requests to finish."""

from __future__ import annotations

import asyncio

from mitmproxy import http

from addons.state import Gateway


class Lifecycle:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        self.gateway.live.add(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        self.gateway.live.discard(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self.gateway.live.discard(flow)



async def drain(gateway: Gateway, timeout: float) -> int:
    """Wait until no request is in flight (or `timeout`); returns how many are left."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while gateway.live and loop.time() < deadline:
        await asyncio.sleep(0.05)
    return len(gateway.live)
