"""Upstream timeout: no response headers within `upstream_timeout` -> 504 in the provider's
shape, and the upstream connection is dropped.

mitmproxy has no such timeout of its own. When it expires we hand the waiting HTTP stream a
complete 504 response as if the upstream had sent it (so every hook, the recorder included,
sees an ordinary response), then close the upstream connection. A connection that is still
being opened is cancelled instead (answered by the error page as a 504).
"""

from __future__ import annotations

import asyncio
import logging

from mitmproxy import ctx, http
from mitmproxy.connection import Connection, ConnectionState
from mitmproxy.proxy import events
from mitmproxy.proxy.server import ConnectionHandler

from addons.state import Gateway
from gateway import errors

log = logging.getLogger(__name__)
TIMEOUT_HEADER = "x-aibridge-timeout"


def synthesized_504(body: bytes, seconds: float) -> bytes:
    head = (
        "HTTP/1.1 504 Gateway Timeout\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n{TIMEOUT_HEADER}: {seconds:g}s\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


class UpstreamTimeout:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._timers: dict[http.HTTPFlow, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def request(self, flow: http.HTTPFlow) -> None:
        fctx = self.gateway.context(flow)
        if fctx is None or fctx.rejected or flow.response or flow.error or not flow.live:
            return
        seconds = self.gateway.settings.upstream_timeout_seconds
        if seconds > 0:
            loop = asyncio.get_running_loop()
            self._timers[flow] = loop.call_later(seconds, self._expire, flow, seconds)

    def _clear(self, flow: http.HTTPFlow) -> None:
        timer = self._timers.pop(flow, None)
        if timer is not None:
            timer.cancel()

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        self._clear(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._clear(flow)

    def _expire(self, flow: http.HTTPFlow, seconds: float) -> None:
        self._timers.pop(flow, None)
        fctx = self.gateway.context(flow)
        if fctx is None or flow.response or flow.error or not flow.live:
            return
        proxyserver = ctx.master.addons.get("proxyserver")
        handler = proxyserver.connections.get(flow.client_conn.id) if proxyserver else None
        conn = flow.server_conn
        if handler is None or conn not in handler.transports:
            return
        log.warning("upstream %s gave no response headers within %gs", conn.address, seconds)
        if conn.state & ConnectionState.CAN_READ and conn.state != ConnectionState.CLOSED:
            body = fctx.error_type.error_body(
                errors.GATEWAY_TIMEOUT, f"the upstream did not answer within {seconds:g}s"
            )
            task = asyncio.get_running_loop().create_task(
                self._answer(handler, conn, synthesized_504(body, seconds))
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            io = handler.transports[conn]
            if io.handler is not None:
                io.handler.cancel("upstream timeout")

    @staticmethod
    async def _answer(handler: ConnectionHandler, conn: Connection, data: bytes) -> None:
        await handler.server_event(events.DataReceived(conn, data))
        handler.close_connection(conn)
