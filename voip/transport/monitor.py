"""The asyncio driver of :class:`~voip.transport.addresses.AddressFollower`: it tells
the follower what the host says about its addresses and carries out its actions.

On Linux it reads an rtnetlink socket (``AF_NETLINK``, ``NETLINK_ROUTE``) joined to the
IPv4 and IPv6 address groups, after a dump of the host's addresses (which tells the
interface of the bound one), and asks for that dump again when the kernel dropped events
for want of buffer (``ENOBUFS``); elsewhere, or when that socket cannot be opened, it
probes every ``poll_interval`` seconds. A send that failed with ``EADDRNOTAVAIL``,
``ENETUNREACH`` or ``EINVAL`` probes at once (:meth:`AddressMonitor.send_failed`).
A probe is two cheap system calls per peer, with no packet sent: ``bind()`` to the bound
address, and ``connect()`` plus ``getsockname()`` of a UDP socket towards each peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable

from voip.transport.addresses import (
    RTMGRP_IFADDR,
    AddressEvent,
    AddressFollower,
    Move,
    Probe,
    Probed,
    SendFailed,
    dump_request,
    parse_netlink,
)

__all__ = ["AddressMonitor", "probe"]

log = logging.getLogger(__name__)


def _family_of(address: str) -> socket.AddressFamily | None:
    try:
        version = ipaddress.ip_address(address).version
    except ValueError:
        return None  # a name: not probed (it would need a DNS look-up)
    return socket.AF_INET6 if version == 6 else socket.AF_INET


def probe(bound: str, peers: Iterable[str]) -> Probed:
    """Whether ``bound`` can still be bound, and the source address the routing table
    picks towards each of ``peers`` (IP literals of the same family; others skipped)."""
    family = _family_of(bound)
    if family is None:
        return Probed(True)
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((bound, 0))
            present = True
        except OSError as error:
            present = error.errno != errno.EADDRNOTAVAIL
    sources: list[tuple[str, str | None]] = []
    for peer in dict.fromkeys(peers):
        if _family_of(peer) != family:
            continue
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            try:
                sock.connect((peer, 9))  # no packet: UDP connect only picks the route
                sources.append((peer, str(sock.getsockname()[0])))
            except OSError:
                sources.append((peer, None))
    return Probed(present, tuple(sources))


class AddressMonitor:
    """Watches the host's addresses for an agent bound to ``bound``; ``on_move`` is
    called with each :class:`Move` the follower decides (the agent rebinds)."""

    def __init__(
        self,
        bound: str,
        *,
        peers: Callable[[], Iterable[str]],
        on_move: Callable[[Move], None],
        poll_interval: float = 5.0,
        netlink: bool = True,
        receive_buffer: int | None = None,
    ) -> None:
        self.follower = AddressFollower(bound)
        self.peers = peers
        self.on_move = on_move
        self.poll_interval = poll_interval
        self._netlink = netlink
        #: the rtnetlink socket's receive buffer in bytes (None: the kernel's default)
        self.receive_buffer = receive_buffer
        #: how often the kernel dropped events (ENOBUFS) and every address was asked again
        self.overflows = 0
        self._socket: socket.socket | None = None
        self._poll: asyncio.TimerHandle | None = None
        #: how the host is watched: "netlink", "polling" or "" (not started)
        self.mechanism = ""

    def start(self) -> None:
        """Start watching (in the running loop): netlink if it opens, else polling."""
        loop = asyncio.get_running_loop()
        if self._netlink and hasattr(socket, "AF_NETLINK"):
            try:
                sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
            except OSError as error:
                log.info("no rtnetlink socket (%s): polling the local address", error)
            else:
                sock.setblocking(False)
                if self.receive_buffer is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)
                sock.bind((0, RTMGRP_IFADDR))
                sock.send(dump_request())
                loop.add_reader(sock.fileno(), self._readable)
                self._socket, self.mechanism = sock, "netlink"
                return
        self.mechanism = "polling"
        self._poll = loop.call_later(self.poll_interval, self._polled)

    def close(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._socket.fileno())
            self._socket.close()
            self._socket = None
        if self._poll is not None:
            self._poll.cancel()
            self._poll = None

    def rebound(self, host: str) -> None:
        """The agent was moved to ``host`` (by its user or after a move)."""
        self.follower.rebound(host)

    def send_failed(self, code: int) -> None:
        """A send failed with ``code`` (an errno): check the address now if it may mean
        that it is gone."""
        self.handle(SendFailed(code))

    def handle(self, event: AddressEvent) -> None:
        action = self.follower.handle(event)
        if isinstance(action, Probe):
            action = self.follower.handle(probe(self.follower.bound, self.peers()))
        if isinstance(action, Move):
            log.info("local address %s: moving to %s (%s)", action.old, action.new, action.reason)
            self.on_move(action)

    def _readable(self) -> None:
        assert self._socket is not None
        while True:
            try:
                data = self._socket.recv(65536)
            except BlockingIOError:
                return
            except OSError as error:  # ENOBUFS: events were lost
                log.info("rtnetlink read failed (%s): asking for every address again", error)
                self._relist()
                return
            for event in parse_netlink(data):
                self.handle(event)

    def _relist(self) -> None:
        """After lost events: the host's addresses are asked for again (the dump's
        answers follow), and the bound address is probed now. Were it gone, the follower
        is then ``lost`` and moves on the dump's answer for the new address, the event
        of which may have been among those lost."""
        self.overflows += 1
        self.follower.relisting()
        assert self._socket is not None
        with contextlib.suppress(OSError):
            self._socket.send(dump_request(self.overflows + 1))
        self._probe_now()

    def _probe_now(self) -> None:
        self.handle(probe(self.follower.bound, self.peers()))

    def _polled(self) -> None:
        self._probe_now()
        self._poll = asyncio.get_running_loop().call_later(self.poll_interval, self._polled)
