"""What the transport tests share: a recording transport layer, messages, raw peers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from voip.sip import Request, Response, SipError
from voip.transport import Endpoint, TransportLayer

# A bound on waiting, never a measurement: loopback delivers in well under a second.
WAIT = 5.0

# Where a peer that does not listen "listens".
NOWHERE = Endpoint("udp", "", 0)

Received = tuple[Request | Response, Endpoint, Endpoint]
Malformed = tuple[bytes, SipError, Endpoint, Endpoint]


@dataclass
class Recorder:
    """Whatever a TransportLayer hands to its callbacks, in arrival order."""

    messages: asyncio.Queue[Received] = field(default_factory=asyncio.Queue)
    malformed: asyncio.Queue[Malformed] = field(default_factory=asyncio.Queue)
    errors: asyncio.Queue[tuple[Endpoint, Exception]] = field(default_factory=asyncio.Queue)

    def layer(self, **options: Any) -> TransportLayer:
        return TransportLayer(
            lambda *received: self.messages.put_nowait(received),
            on_malformed=lambda *malformed: self.malformed.put_nowait(malformed),
            on_error=lambda *error: self.errors.put_nowait(error),
            **options,
        )

    async def message(self) -> Received:
        return await asyncio.wait_for(self.messages.get(), WAIT)

    async def bad(self) -> Malformed:
        return await asyncio.wait_for(self.malformed.get(), WAIT)

    async def error(self) -> tuple[Endpoint, Exception]:
        return await asyncio.wait_for(self.errors.get(), WAIT)


@dataclass
class Peer:
    """A transport layer, what it received and where it listens (if it does)."""

    layer: TransportLayer
    inbox: Recorder
    at: Endpoint = NOWHERE


def hostport(endpoint: Endpoint) -> str:
    """``host:port`` as a Via sent-by writes it (IPv6 in brackets)."""
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
    return f"{host}:{endpoint.port}"


def request(
    method: str = "OPTIONS",
    *,
    transport: str = "UDP",
    sent_by: str = "192.0.2.10:5060",
    rport: bool = False,
    call_id: str = "c1",
    body: bytes = b"",
    via_params: str = "",
) -> bytes:
    """A well-formed request whose top Via names ``sent_by``."""
    return (
        f"{method} sip:bob@example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {sent_by};branch=z9hG4bK-{call_id}"
        f"{';rport' if rport else ''}{via_params}\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@example.com>;tag=a1\r\n"
        "To: <sip:bob@example.com>\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: 1 {method}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def response(call_id: str = "c1", sent_by: str = "192.0.2.10:5060") -> bytes:
    return (
        "SIP/2.0 200 OK\r\n"
        f"Via: SIP/2.0/TCP {sent_by};branch=z9hG4bK-{call_id}\r\n"
        "From: <sip:alice@example.com>;tag=a1\r\n"
        "To: <sip:bob@example.com>;tag=b1\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


@asynccontextmanager
async def never_reading_server(
    transport: str = "tcp", context: ssl.SSLContext | None = None
) -> AsyncIterator[Endpoint]:
    """A server on loopback that accepts connections (TLS with ``context``), holds them
    open and never reads: a peer that does not take what is written, or a TLS server
    that never answers the handshake."""
    held: list[asyncio.StreamWriter] = []
    server = await asyncio.start_server(
        lambda _, writer: held.append(writer), "127.0.0.1", 0, ssl=context
    )
    try:
        yield Endpoint(transport, "127.0.0.1", server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for writer in held:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()


async def flood(peer: Peer, target: Endpoint, bound: int) -> tuple[Endpoint, Exception]:
    """Send large messages to ``target`` until ``peer`` reports an error; check on the
    way that no more than ``bound`` octets (and the message being written) are held."""
    await peer.layer.connect(target)
    big = request(body=b"x" * 60000)
    async with asyncio.timeout(WAIT * 4):
        while peer.inbox.errors.empty():
            peer.layer.send(big, target)
            assert peer.layer.bytes_buffered <= bound + len(big)
            await asyncio.sleep(0)
    return await peer.inbox.error()


async def raw_connection(
    endpoint: Endpoint,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A plain TCP connection to ``endpoint``, for peers that misbehave."""
    return await asyncio.open_connection(endpoint.host, endpoint.port)


async def closed_by_peer(reader: asyncio.StreamReader) -> bytes:
    """Everything the other side sends until it closes the connection."""
    return await asyncio.wait_for(reader.read(), WAIT)


def udp_socket(host: str = "127.0.0.1") -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.settimeout(WAIT)
    return sock


def open_fds() -> int:
    import os

    return len(os.listdir("/proc/self/fd"))
