"""An impairing UDP relay for media tests: packets between a peer and the toolkit are
dropped at random (seeded) and delayed by a random amount, so they arrive late and out of
order, as over a lossy network with jitter.

:class:`RelayedPorts` is a :class:`voip.rtp.PortAllocator` whose streams announce the
relay's port pair in their SDP instead of their own: the peer sends RTP (and RTCP) to the
relay, which impairs and forwards it to the stream; the stream latches to the relay's
address (symmetric RTP, RFC 4961) and its packets go back through the relay, impaired too.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from dataclasses import dataclass

from voip.rtp import PortAllocator, RtpPorts

__all__ = ["Impairment", "RelayedPorts", "UdpRelay"]

Address = tuple[str, int]


@dataclass(slots=True)
class Impairment:
    """Drop a packet with probability ``loss``; delay the others by a uniform random time
    from 0 to ``jitter`` seconds. Counts what it did."""

    loss: float
    jitter: float
    rng: random.Random
    forwarded: int = 0
    dropped: int = 0

    def delay(self) -> float | None:
        """How long to hold the next packet; None to drop it."""
        if self.rng.random() < self.loss:
            self.dropped += 1
            return None
        self.forwarded += 1
        return self.rng.uniform(0.0, self.jitter)


class UdpRelay:
    """Forwards between a peer (whatever sends to ``outer``) and ``inner_target``.

    ``outer`` is bound on ``host:port``; packets arriving there go out of a second socket
    to ``inner_target`` after ``to_inner``'s delay; packets arriving on that second socket
    go back to the last peer address after ``to_outer``'s delay. ``None`` impairs nothing.
    """

    def __init__(
        self,
        host: str,
        port: int,
        inner_target: Address,
        *,
        to_inner: Impairment | None = None,
        to_outer: Impairment | None = None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.outer = _bind(host, port)
        self.inner = _bind(host, 0)
        self.inner_target = inner_target
        self.peer: Address | None = None
        self.to_inner, self.to_outer = to_inner, to_outer
        self.loop.add_reader(self.outer.fileno(), self._from_outer)
        self.loop.add_reader(self.inner.fileno(), self._from_inner)

    def _from_outer(self) -> None:
        for data, address in _received(self.outer):
            self.peer = address
            self._forward(self.inner, data, self.inner_target, self.to_inner)

    def _from_inner(self) -> None:
        for data, _ in _received(self.inner):
            if self.peer is not None:
                self._forward(self.outer, data, self.peer, self.to_outer)

    def _forward(
        self, sock: socket.socket, data: bytes, address: Address, impairment: Impairment | None
    ) -> None:
        delay = 0.0 if impairment is None else impairment.delay()
        if delay is None:
            return
        self.loop.call_later(delay, _send, sock, data, address)

    def close(self) -> None:
        for sock in (self.outer, self.inner):
            if sock.fileno() >= 0:
                self.loop.remove_reader(sock.fileno())
                sock.close()


class RelayedPorts(PortAllocator):
    """Port pairs whose announced port is an impairing relay's (see the module docstring).

    RTP is impaired both ways by ``to_toolkit`` and ``to_peer``; RTCP from the peer is
    relayed unimpaired (the toolkit sends its RTCP to the peer directly)."""

    __slots__ = ("_relays", "_targets", "relays_low", "to_peer", "to_toolkit")

    def __init__(
        self,
        low: int,
        high: int,
        relays_low: int,
        *,
        to_toolkit: Impairment,
        to_peer: Impairment,
    ) -> None:
        super().__init__(low, high)
        self.relays_low = relays_low
        self.to_toolkit, self.to_peer = to_toolkit, to_peer
        self._relays: dict[int, tuple[UdpRelay, UdpRelay]] = {}
        self._targets: dict[int, int] = {}

    def allocate(self, host: str = "127.0.0.1") -> RtpPorts:
        ports = super().allocate(host)
        outer = self.relays_low + 2 * len(self._targets)
        rtp = UdpRelay(
            host, outer, (host, ports.port), to_inner=self.to_toolkit, to_outer=self.to_peer
        )
        rtcp = UdpRelay(host, outer + 1, (host, ports.port + 1))
        self._relays[outer] = (rtp, rtcp)
        self._targets[outer] = ports.port
        ports.port = outer  # what the SDP announces
        return ports

    def released(self, ports: RtpPorts) -> None:
        for relay in self._relays.pop(ports.port, ()):
            relay.close()
        self.in_use.discard(self._targets.get(ports.port, ports.port))


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.bind((host, port))
    return sock


def _received(sock: socket.socket) -> list[tuple[bytes, Address]]:
    out: list[tuple[bytes, Address]] = []
    while True:
        try:
            data, address = sock.recvfrom(2048)
        except (BlockingIOError, InterruptedError):
            return out
        except OSError:
            if sock.fileno() < 0:
                return out
            continue
        out.append((data, address[:2]))


def _send(sock: socket.socket, data: bytes, address: Address) -> None:
    if sock.fileno() >= 0:
        with contextlib.suppress(OSError):
            sock.sendto(data, address)
