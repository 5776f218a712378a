"""Where a webhook may point. A URL a user registers is fetched by our servers, so a
target inside our own network (loopback, private, link-local such as the cloud metadata
address 169.254.169.254, multicast, reserved) would let them reach what only we should:
server-side request forgery. Every address the host resolves to must be public, checked
at registration and again at each delivery, and the delivery connects to the address
that was checked, so a DNS answer that changes in between (rebinding) gains nothing.
Pure: the standard library only."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit


class TargetRefused(ValueError):
    """A URL no webhook may have; the message says why, for a 400."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written, for the Host header and TLS
    port: int
    path: str  # path and query
    address: str  # the checked IP address to connect to


def _forbidden(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    # The most telling name first: 0.0.0.0 and 169.254.x.x are "private" to ipaddress too.
    for what, flag in (("loopback", ip.is_loopback), ("unspecified", ip.is_unspecified),
                       ("link-local", ip.is_link_local), ("multicast", ip.is_multicast),
                       ("private", ip.is_private), ("reserved", ip.is_reserved)):
        if flag:
            return what
    return None


def parse(url: str) -> tuple[str, str, int, str]:
    if not isinstance(url, str) or not url.strip():
        raise TargetRefused("Enter the receiver's URL.")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        given = f"{parts.scheme}://" if parts.scheme else repr(url)
        raise TargetRefused(f"The URL must be http:// or https://, not {given}.")
    if not parts.hostname:
        raise TargetRefused("The URL has no host.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise TargetRefused(f"The URL's port is not a number from 1 to 65535 ({exc}).") from exc
    path = parts.path or "/"
    return parts.scheme, parts.hostname, port, path + (f"?{parts.query}" if parts.query else "")


def resolve(url: str, allow_private: bool, resolver=socket.getaddrinfo) -> Target:
    """The target to connect to; TargetRefused when the URL is malformed, the host does
    not resolve, or any of its addresses is not public (unless allowed)."""
    scheme, host, port, path = parse(url)
    try:
        infos = resolver(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"The host {host!r} does not resolve ({exc}).") from exc
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise TargetRefused(f"The host {host!r} has no address.")
    if not allow_private:
        for address in addresses:
            why = _forbidden(ipaddress.ip_address(address.split("%", 1)[0]))
            if why:
                raise TargetRefused(
                    f"{host} resolves to {address}, a {why} address: webhooks may only reach public addresses "
                    f"(WEBHOOK_ALLOW_PRIVATE_NETWORKS=true allows others, for development).")
    return Target(scheme, host, port, path, addresses[0])
