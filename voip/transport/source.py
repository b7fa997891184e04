"""The local address a packet to a given host leaves from.

Via sent-by and Contact must name an address the peer can reach us at (RFC 3261
§18.1.1, §8.1.1.8), never the unspecified address a wildcard socket is bound to. The
kernel's routing table knows which local address it would use: connecting a UDP socket
looks the route up without sending anything.
"""

from __future__ import annotations

import socket

from voip.transport.endpoint import Endpoint

_LOOPBACK = {socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"}


class SourceAddresses:
    """Routed source addresses, cached per destination host (bounded)."""

    __slots__ = ("_cache", "_limit")

    def __init__(self, limit: int = 4096) -> None:
        self._cache: dict[str, str] = {}
        self._limit = limit

    def toward(self, host: str) -> str:
        """The local IP address the kernel would send from to reach ``host``."""
        address = self._cache.get(host)
        if address is not None:
            return address
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect((host, 9))
                address = str(probe.getsockname()[0])
        except OSError:
            # No route: nothing sent there will arrive, so no address is right; the
            # loopback keeps the Via well-formed and is not cached.
            return _LOOPBACK[family]
        if len(self._cache) >= self._limit:
            self._cache.clear()
        self._cache[host] = address
        return address

    def local_for(self, bound: Endpoint, destination_host: str) -> Endpoint:
        """``bound`` with its wildcard address replaced by the routed one."""
        return Endpoint(bound.transport, self.toward(destination_host), bound.port)
