"""Upstream safety: provider endpoints must not point at loopback, private, link-local or
cloud-metadata addresses unless the operator allows it (`--ai-gateway-allow-private-upstreams`)."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class UpstreamRefused(ValueError):
    pass


def is_forbidden_address(ip: str) -> bool:
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return (
        addr in _METADATA
        or addr.is_loopback
        or addr.is_private
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
    )


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UpstreamRefused(f"cannot resolve {host}: {exc.strerror}") from exc
    return sorted({str(info[4][0]) for info in infos})


def check_addresses(host: str, addresses: list[str]) -> None:
    bad = [a for a in addresses if is_forbidden_address(a)]
    if bad:
        raise UpstreamRefused(
            f"{host} resolves to a loopback, private, link-local or metadata address "
            f"({', '.join(bad)}); set --ai-gateway-allow-private-upstreams to allow it"
        )


def check_url(url: str, *, allow_private: bool) -> None:
    """Raise UpstreamRefused when `url`'s host is (or resolves to) a forbidden address."""
    if allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    check_addresses(host, resolve(host, port))
