"""Bounds on what a peer can make this process hold or wait for.

A slow or hostile peer must not grow memory without bound (RFC 3261 §18.3 leaves
stream message sizes open; RFC 5626 §4.4.1 sets the keep-alive pong wait). Per
connection, at most ``max_header_bytes + max_body_bytes`` are held while a message is
being read and ``max_write_buffer`` while the peer is slow to read; across the layer,
``max_connections`` bounds the number of connections.
"""

from __future__ import annotations

from dataclasses import dataclass

from voip.sip.parser import MAX_BODY_BYTES, MAX_HEADER_BYTES


@dataclass(frozen=True, slots=True)
class StreamLimits:
    # StreamParser limits: a header section or body over these closes the connection.
    max_header_bytes: int = MAX_HEADER_BYTES
    max_body_bytes: int = MAX_BODY_BYTES
    # Octets written but not yet taken by the peer; beyond this the peer is not reading
    # and is disconnected (reported through on_error).
    max_write_buffer: int = 2 * MAX_BODY_BYTES
    # Octets queued for a connection that is still being opened.
    max_pending_bytes: int = 2 * MAX_BODY_BYTES
    # Incoming and outgoing TCP/TLS connections together.
    max_connections: int = 1024
    # Opening a connection: TCP connect and TLS handshake, each.
    connect_timeout: float = 10.0
    # RFC 5626 §4.4.1: a pong not back within 10 s means the flow has failed.
    pong_timeout: float = 10.0
    # A connection with no octet in either direction for this long is closed.
    idle_timeout: float | None = 600.0
    # A message begun but not finished within this long closes the connection, so a
    # peer cannot hold a buffer by sending one octet at a time (64·T1, RFC 3261 §17).
    message_timeout: float = 32.0
    # After a close, how long unsent octets may still drain before the socket is dropped.
    close_linger: float = 2.0
    # Kernel buffers asked for on UDP sockets (the kernel grants at most its rmem_max /
    # wmem_max); bursts of hundreds of datagrams are lost with the defaults under load.
    # At a thousand calls a second about 3,500 datagrams arrive each second: 4 MiB holds
    # about one second of them (a datagram costs about twice its size in the buffer).
    udp_socket_buffer: int = 1 << 22
