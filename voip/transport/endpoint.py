"""One side of a hop: a transport, an IP address and a port (RFC 3261 §18).

Connections are looked up by the remote ``Endpoint``, so two spellings of one address
must not differ: hosts are IP literals as the socket API writes them (IPv6 without
brackets, compressed), which is what :func:`endpoint_of` produces from a socket address.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

UDP = "udp"
TCP = "tcp"
TLS = "tls"
# SIP over WebSocket (RFC 7118), plain and over TLS.
WS = "ws"
WSS = "wss"
WEBSOCKETS = (WS, WSS)
TRANSPORTS = (UDP, TCP, TLS, WS, WSS)

# RFC 3261 §19.1.2: 5060 for sip over UDP and TCP, 5061 for TLS; WebSocket's own
# ports for ws:// and wss:// (RFC 6455 §3), which RFC 7118 leaves in place.
DEFAULT_PORTS = {UDP: 5060, TCP: 5060, TLS: 5061, WS: 80, WSS: 443}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """``transport`` is ``"udp"``, ``"tcp"``, ``"tls"``, ``"ws"`` or ``"wss"``; ``host``
    an IP literal."""

    transport: str
    host: str
    port: int

    @property
    def family(self) -> socket.AddressFamily:
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET

    @property
    def address(self) -> tuple[str, int]:
        """The address as the socket API takes it."""
        return self.host, self.port

    @property
    def via_transport(self) -> str:
        """The transport token of a Via sent-protocol (§20.42): ``UDP``, ``TCP``, ``TLS``,
        and ``WS``, ``WSS`` (RFC 7118 §5.2)."""
        return self.transport.upper()

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}:{host}:{self.port}"


def endpoint_of(transport: str, address: Any) -> Endpoint:
    """The endpoint of a socket address: ``(host, port)`` or IPv6 ``(host, port, flow, scope)``."""
    return Endpoint(transport, address[0], address[1])


def unbracket(host: str) -> str:
    """An IPv6 reference as written in SIP (``[::1]``, RFC 5118 §4.3) as a bare literal."""
    return host[1:-1] if host[:1] == "[" else host


def is_wildcard(host: str) -> bool:
    """The unspecified address: a socket bound to it listens on every interface."""
    return host in ("0.0.0.0", "::", "")
