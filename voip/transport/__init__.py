"""SIP transports on asyncio (UDP, TCP, TLS, WebSocket) and server location (RFC 3263)."""

from voip.transport.counters import TransportCounters
from voip.transport.endpoint import DEFAULT_PORTS, TCP, TLS, TRANSPORTS, UDP, WS, WSS, Endpoint
from voip.transport.layer import TransportLayer
from voip.transport.limits import StreamLimits
from voip.transport.stream import StreamConnection
from voip.transport.tls import client_context, server_context
from voip.transport.via import reflexive_endpoint, response_destination, stamp_received
from voip.transport.websocket import WebSocketConnection

__all__ = [
    "DEFAULT_PORTS",
    "TCP",
    "TLS",
    "TRANSPORTS",
    "UDP",
    "WS",
    "WSS",
    "Endpoint",
    "StreamConnection",
    "StreamLimits",
    "TransportCounters",
    "TransportLayer",
    "WebSocketConnection",
    "client_context",
    "reflexive_endpoint",
    "response_destination",
    "server_context",
    "stamp_received",
]
