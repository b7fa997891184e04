"""SIP over UDP (RFC 3261 §18): one non-blocking socket, drained when readable.

asyncio's DatagramProtocol reads one datagram per event-loop iteration; reading the
socket until it is empty from ``loop.add_reader`` is about five times faster
(PERF-FACTS.md). The drain stops after ``MAX_DATAGRAMS_PER_WAKEUP`` so that timers and
other sockets still get their turn under load (the loop calls back at once if more is
waiting).
"""

from __future__ import annotations

import asyncio
import socket
import struct
import sys
import time
from typing import Any

from voip.libc import errno_error, libc
from voip.transport.endpoint import UDP, Endpoint, endpoint_of, is_wildcard
from voip.transport.inbound import Inbound
from voip.transport.source import SourceAddresses

MAX_DATAGRAMS_PER_WAKEUP = 256
# Linux stamps each datagram with the time it arrived (SO_TIMESTAMP, socket(7): a struct
# timeval by the wall clock); Python's socket module does not name the option.
_STAMPED = sys.platform == "linux"
_SO_TIMESTAMP = 29  # SO_TIMESTAMP_OLD, = SCM_TIMESTAMP, in asm-generic/socket.h
_TIMEVAL = struct.Struct("@ll")  # tv_sec, tv_usec: C longs on Linux
_ANCILLARY_SIZE = socket.CMSG_SPACE(_TIMEVAL.size)
# Larger than any UDP payload over IPv4 (65,507) or IPv6 without jumbograms (65,527):
# no datagram is ever cut short.
RECEIVE_SIZE = 65536


def bind_datagram_socket(host: str, port: int, buffer_size: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            # "::" means IPv6 only, as asyncio does for its servers: IPv4 peers would
            # otherwise show up as ::ffff:a.b.c.d and miss their connections and routes.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, buffer_size)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


#: a socket address of family AF_UNSPEC (0), the size of the largest (sockaddr_in6)
_UNSPECIFIED = bytes(28)


def disconnect_datagram_socket(sock: socket.socket) -> None:
    """Dissolve a connected datagram socket's association (``connect(2)`` to an address of
    family ``AF_UNSPEC``, which the socket module cannot name): it receives from anyone
    again, on the port it was bound to. Linux only; raises OSError elsewhere or on failure."""
    c = libc()
    if c is None:
        raise OSError("dissolving a datagram socket's association needs Linux")
    if c.connect(sock.fileno(), _UNSPECIFIED, len(_UNSPECIFIED)) < 0:
        raise errno_error()


class DatagramSocket:
    """A bound UDP socket delivering what it reads to ``inbound``."""

    __slots__ = (
        "_addresses",
        "_inbound",
        "_locals",
        "_loop",
        "_sources",
        "_stamped",
        "behind_since",
        "local",
        "sock",
        "waited",
        "wildcard",
    )

    def __init__(
        self,
        sock: socket.socket,
        inbound: Inbound,
        addresses: SourceAddresses,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.sock = sock
        self.local = endpoint_of(UDP, sock.getsockname())
        self.wildcard = is_wildcard(self.local.host)
        self._inbound = inbound
        self._addresses = addresses
        # For a wildcard socket: the local endpoint a peer's datagrams arrive at, per
        # peer host, as the routing table says (bounded like the route cache).
        self._locals: dict[str, Endpoint] = {}
        # The endpoint of each peer address heard from, shared by its datagrams (and by
        # the transactions that keep it) instead of one per datagram; bounded likewise.
        self._sources: dict[Any, Endpoint] = {}
        self._loop = loop
        #: when a drain last stopped at its cap with datagrams still waiting (None: the
        #: last drain emptied the socket): the process is behind what arrives
        self.behind_since: float | None = None
        #: while behind, how long the datagram being read waited in the socket (seconds)
        self.waited = 0.0
        self._stamped = _STAMPED
        if self._stamped:
            try:
                sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMP, 1)
            except OSError:
                self._stamped = False
        loop.add_reader(sock.fileno(), self._readable)

    @property
    def family(self) -> socket.AddressFamily:
        return self.sock.family

    def local_toward(self, host: str) -> Endpoint:
        """The address this socket is reached at from ``host``, never a wildcard."""
        if not self.wildcard:
            return self.local
        local = self._locals.get(host)
        if local is None:
            if len(self._locals) >= 4096:
                self._locals.clear()
            local = self._locals[host] = self._addresses.local_for(self.local, host)
        return local

    def behind(self, now: float) -> float | None:
        """None while the last drain emptied the socket; else how far behind the process
        is: how long the datagram being read waited in the socket, where the kernel
        stamps arrivals, otherwise how long ago a drain first stopped at its cap. A
        backlog that is read as fast as it grows waits little, however long it lasts."""
        since = self.behind_since
        if since is None:
            return None
        return self.waited if self._stamped else now - since

    def _readable(self) -> None:
        sock = self.sock
        recvfrom, recvmsg = sock.recvfrom, sock.recvmsg
        stamped = self._stamped
        deliver = self._inbound.datagram
        counters = self._inbound.counters
        wildcard = self.wildcard
        local = self.local
        sources = self._sources
        for _ in range(MAX_DATAGRAMS_PER_WAKEUP):
            try:
                if stamped:
                    data, ancillary, _, address = recvmsg(RECEIVE_SIZE, _ANCILLARY_SIZE)
                    if self.behind_since is not None and ancillary:
                        seconds, micro = _TIMEVAL.unpack_from(ancillary[0][2])
                        self.waited = max(0.0, time.time() - seconds - micro / 1e6)
                else:
                    data, address = recvfrom(RECEIVE_SIZE)
            except (BlockingIOError, InterruptedError):
                self.behind_since = None
                return
            except OSError:
                if self.sock.fileno() < 0:
                    return  # closed by a callback during this drain
                # An ICMP error for an earlier send (reported on some systems): that
                # datagram is lost already, the socket itself is fine.
                continue
            counters.datagrams_in += 1
            source = sources.get(address)
            if source is None:
                if len(sources) >= 4096:
                    sources.clear()
                source = sources[address] = Endpoint(UDP, address[0], address[1])
            deliver(data, source, self.local_toward(source.host) if wildcard else local)
        if self.behind_since is None:
            self.behind_since = self._loop.time()

    def sendto(self, data: bytes, destination: Endpoint) -> None:
        """Send one datagram; a full socket buffer loses it (``BlockingIOError``)."""
        self.sock.sendto(data, (destination.host, destination.port))

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self._loop.remove_reader(self.sock.fileno())
            self.sock.close()
