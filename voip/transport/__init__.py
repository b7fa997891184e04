"""SIP transports on asyncio (UDP, TCP, TLS) and server location (RFC 3263)."""

from voip.transport.counters import TransportCounters
from voip.transport.endpoint import DEFAULT_PORTS, TCP, TLS, TRANSPORTS, UDP, Endpoint
from voip.transport.layer import TransportLayer
from voip.transport.limits import StreamLimits
from voip.transport.stream import StreamConnection
from voip.transport.tls import client_context, server_context
from voip.transport.via import reflexive_endpoint, response_destination, stamp_received

__all__ = [
    "DEFAULT_PORTS",
    "TCP",
    "TLS",
    "TRANSPORTS",
    "UDP",
    "Endpoint",
    "StreamConnection",
    "StreamLimits",
    "TransportCounters",
    "TransportLayer",
    "client_context",
    "reflexive_endpoint",
    "response_destination",
    "server_context",
    "stamp_received",
]
