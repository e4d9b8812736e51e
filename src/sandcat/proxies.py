"""Which address a request comes from, behind trusted reverse proxies.

``server.trusted_proxies`` lists the proxies (addresses or CIDR networks)
whose ``X-Forwarded-For`` or ``Forwarded`` (RFC 7239) headers are believed;
it is empty by default, and then the socket's peer is the client. When the
peer is trusted, the client is the rightmost address of the forwarding chain
that is not itself a trusted proxy: each proxy appends the address it saw,
so everything left of the last untrusted hop may be written by the client
and is ignored. ``X-Forwarded-For`` is read when present (what nginx,
HAProxy and most load balancers append); ``Forwarded`` only without it. A
chain entry that is not an address (``unknown``, an obfuscated name) ends
the walk at the hop that reported it.

The HTTP API gets the answer through ``ForwardedClient``, an ASGI wrapper
that rewrites the request scope's ``client`` before Quart sees it, so rate
limits, recorded session addresses and logs all use it; the WebSocket
listener asks ``TrustedProxies.client`` at the upgrade.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from typing import Any

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Headers = Iterable[tuple[bytes, bytes]]

#: Entries of a forwarding chain looked at, at most (a header can be long).
MAX_HOPS = 32


def parse_networks(entries: Sequence[str]) -> tuple[Network, ...]:
    """Addresses and CIDRs as networks; ``ValueError`` naming a bad entry."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not an address or a CIDR network") from exc
    return tuple(networks)


class TrustedProxies:
    def __init__(self, entries: Sequence[str] = ()) -> None:
        self._networks = parse_networks(entries)

    def trusts(self, address: Address) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self._networks)

    def trusts_peer(self, peer: str) -> bool:
        """Is the socket peer ``peer`` (an address string) one of the trusted proxies?"""
        if not self._networks:
            return False
        hop = _address(peer)
        return hop is not None and self.trusts(hop)

    def client(self, peer: str, headers: Headers) -> str:
        """The client's address: ``peer``, or what the trusted proxies in front say."""
        if not self._networks:
            return peer
        hop = _address(peer)
        if hop is None or not self.trusts(hop):
            return peer
        chain = _chain(headers)
        for entry in reversed(chain[-MAX_HOPS:]):
            found = _address(entry)
            if found is None:
                break
            hop = found
            if not self.trusts(hop):
                break
        return str(hop)


def _chain(headers: Headers) -> list[str]:
    forwarded_for: list[str] = []
    forwarded: list[str] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"x-forwarded-for":
            forwarded_for.extend(value.decode("latin-1").split(","))
        elif lowered == b"forwarded":
            forwarded.extend(_forwarded_for(value.decode("latin-1")))
    return [entry.strip() for entry in (forwarded_for or forwarded)]


def _forwarded_for(value: str) -> list[str]:
    """The ``for=`` of each element of an RFC 7239 ``Forwarded`` value ("" if none)."""
    found = []
    for element in value.split(","):
        target = ""
        for pair in element.split(";"):
            key, _, raw = pair.partition("=")
            if key.strip().lower() == "for":
                target = raw.strip().strip('"')
        found.append(target)
    return found


def _address(entry: str) -> Address | None:
    """An address from a chain entry (``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``, ``::1``)."""
    text = entry.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class ForwardedClient:
    """ASGI wrapper: the scope's ``client`` becomes ``TrustedProxies.client``."""

    def __init__(self, app: App, proxies: TrustedProxies) -> None:
        self._app = app
        self._proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope.get("type") in ("http", "websocket") and client:
            address = self._proxies.client(str(client[0]), scope.get("headers", ()))
            if address != client[0]:
                scope = {**scope, "client": (address, 0)}
        await self._app(scope, receive, send)
