"""Upstream safety at connect time: the provider's host is resolved and checked again right
before the connection is made (base URLs are also checked when saved), so a name that later
resolves to loopback, private, link-local or metadata addresses (DNS rebinding) is refused.
The connection is pinned to the address that was checked; TLS still verifies the host name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from mitmproxy.proxy import server_hooks

from addons.state import Gateway
from gateway import netpolicy


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class UpstreamGuard:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> object:
        if self.gateway.loaded is None or self.gateway.settings.allow_private_upstreams:
            return None
        if data.server.address is None or data.server.error:
            return None
        host, port = data.server.address[0], data.server.address[1]
        if _is_ip(host):
            self._check(data, host, [host])
            return None
        return self._resolve_and_check(data, host, port)

    async def _resolve_and_check(self, data: server_hooks.ServerConnectionHookData, host: str,
                                 port: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            data.server.error = f"cannot resolve {host}: {exc}"
            return
        addresses = [str(info[4][0]) for info in infos]
        if self._check(data, host, addresses):
            if data.server.sni is None and data.server.tls:
                data.server.sni = host
            data.server.address = (addresses[0], port)

    @staticmethod
    def _check(
        data: server_hooks.ServerConnectionHookData, host: str, addresses: list[str]
    ) -> bool:
        try:
            netpolicy.check_addresses(host, addresses)
        except netpolicy.UpstreamRefused as exc:
            data.server.error = f"refused: {exc}"
            return False
        return True
