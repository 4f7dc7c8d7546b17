"""Where a webhook may be sent: http(s) URLs whose host resolves only to public addresses.

A URL is checked when an endpoint is registered (or a job names a callback) and again at
each attempt, on the addresses that attempt connects to: the name is resolved once, every
address it gives is checked, and the connection goes to a checked address (the Host header
and TLS's SNI keep the name). A name that resolved to a public address at registration
and to 127.0.0.1 later (DNS rebinding) is refused at connect time; there is no second
lookup for it to win.

Refused always: unspecified, multicast, link-local and reserved addresses, and the cloud
metadata services' (169.254.169.254, fd00:ec2::254, ...). Refused unless
WEBHOOK_ALLOW_PRIVATE_TARGETS: loopback, private (RFC 1918, ULA) and shared (100.64/10)
addresses. An IPv6 address that carries an IPv4 one (mapped, 6to4, NAT64) is judged by
the IPv4 address it carries. Any port may be called: nothing private is reachable.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx

MAX_URL_LENGTH = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> the addresses the name resolves to (the seam tests replace).
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

# The instance metadata services of the clouds: refused even where private targets are
# allowed, since a credential is one GET away there.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean...
        "169.254.170.2",  # AWS ECS task credentials
        "169.254.169.123",  # AWS time sync
        "fd00:ec2::254",  # AWS over IPv6
        "fd00:ec2::23",
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
    )
)
_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class TargetRefused(Exception):
    """A URL the service will not call; the message says why, for its owner."""


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL, taken apart: what to connect to is decided per attempt."""

    url: httpx.URL
    host: str
    port: int

    @property
    def is_https(self) -> bool:
        return self.url.scheme == "https"


def parse_target(url: str) -> Target:
    """The URL's parts, or TargetRefused for one that is not an http(s) URL we call."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise TargetRefused("That is not a URL.") from None
    if parsed.scheme not in ("http", "https"):
        raise TargetRefused("The URL must start with http:// or https://.")
    if not parsed.host:
        raise TargetRefused("The URL has no host.")
    if parsed.userinfo:
        raise TargetRefused("The URL may not carry a user name or password.")
    if parsed.fragment:
        raise TargetRefused("The URL may not have a #fragment.")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return Target(url=parsed, host=parsed.host, port=port)


def address_refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why the service may not connect to `address`, or None if it may."""
    if isinstance(address, ipaddress.IPv6Address):
        carried = _carried_ipv4(address)
        if carried is not None:
            return address_refusal(carried, allow_private=allow_private)
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_loopback or any(address in network for network in _PRIVATE_NETWORKS):
        return None if allow_private else "a loopback or private address"
    if not address.is_global:
        return "a reserved address"
    return None


def _carried_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


async def system_resolver(host: str, port: int) -> Sequence[str]:
    """The system's resolver (getaddrinfo), off the event loop."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class TargetPolicy:
    """Resolves a target once and checks every address it gives (ALLOW_PRIVATE_TARGETS)."""

    def __init__(self, *, allow_private: bool, resolver: Resolver = system_resolver) -> None:
        self.allow_private = allow_private
        self._resolver = resolver

    async def addresses(self, target: Target) -> list[IPAddress]:
        """The target's addresses, every one allowed; TargetRefused if any is not, or if
        the name does not resolve."""
        literal = _literal(target.host)
        if literal is not None:
            found = [literal]
        else:
            try:
                names = await self._resolver(target.host, target.port)
            except (OSError, UnicodeError):
                raise TargetRefused(f"The host {target.host} does not resolve.") from None
            found = []
            for name in names:
                address = _literal(name.split("%", 1)[0])
                if address is not None and address not in found:
                    found.append(address)
            if not found:
                raise TargetRefused(f"The host {target.host} does not resolve.")
        for address in found:
            reason = address_refusal(address, allow_private=self.allow_private)
            if reason is not None:
                where = "is" if literal is not None else f"resolves to {address},"
                raise TargetRefused(f"The host {target.host} {where} {reason}: not called.")
        return found

    async def check(self, url: str) -> Target:
        """Parse and resolve `url`; TargetRefused if the service may not call it."""
        target = parse_target(url)
        await self.addresses(target)
        return target


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
