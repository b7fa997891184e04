"""RTP port pairs from a configured range (RFC 3550 §11: RTP on an even port, RTCP on the
next odd one), allocated per stream and released when it ends, so that nothing leaks.

The allocator binds both sockets itself: a port is only handed out once it is really
bound, and a port some other program holds is skipped, not reported as free.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from voip.transport.udp import bind_datagram_socket

__all__ = ["PortAllocator", "PortsExhausted", "RtpPorts"]

BUFFER_SIZE = 1 << 18


class PortsExhausted(OSError):
    """No even port of the range could be bound (all in use)."""


@dataclass(eq=False, slots=True)
class RtpPorts:
    """A bound RTP socket (even port) and RTCP socket (the next port), until released."""

    host: str
    port: int
    rtp: socket.socket
    rtcp: socket.socket
    allocator: PortAllocator | None = field(default=None, repr=False)

    @property
    def rtcp_port(self) -> int:
        return self.port + 1

    @property
    def closed(self) -> bool:
        return self.rtp.fileno() < 0

    def release(self) -> None:
        """Close both sockets and give the port back (idempotent)."""
        self.rtp.close()
        self.rtcp.close()
        if self.allocator is not None:
            self.allocator.released(self)
            self.allocator = None


def _bind(host: str, port: int) -> socket.socket:
    return bind_datagram_socket(host, port, BUFFER_SIZE)


class PortAllocator:
    """Even ports from ``low`` to ``high`` (inclusive), handed out round-robin.

    Round-robin rather than lowest-free, so that a port just released is not reused at once
    and late packets of an ended call do not land in the next one.
    """

    __slots__ = ("_cursor", "high", "in_use", "low")

    def __init__(self, low: int = 40000, high: int = 59999) -> None:
        low += low % 2
        if not 0 < low < high <= 65535:
            raise ValueError(f"bad RTP port range {low}-{high}")
        self.low = low
        self.high = high
        self.in_use: set[int] = set()
        self._cursor = low

    @property
    def size(self) -> int:
        """How many pairs the range holds."""
        return (self.high - self.low + 1) // 2

    def allocate(self, host: str = "127.0.0.1") -> RtpPorts:
        """Bind the next free pair on ``host``; raises :class:`PortsExhausted`."""
        for _ in range(self.size):
            port = self._cursor
            self._cursor = port + 2 if port + 3 <= self.high else self.low
            if port in self.in_use:
                continue
            try:
                rtp = _bind(host, port)
            except OSError:
                continue  # someone else holds it
            try:
                rtcp = _bind(host, port + 1)
            except OSError:
                rtp.close()
                continue
            self.in_use.add(port)
            return RtpPorts(host, port, rtp, rtcp, self)
        raise PortsExhausted(f"no free RTP port pair in {self.low}-{self.high} on {host}")

    def released(self, ports: RtpPorts) -> None:
        self.in_use.discard(ports.port)
