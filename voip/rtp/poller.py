"""Datagrams of every media socket of a process, read through one epoll set watched by the loop.

Each call opens two sockets (RTP and RTCP) and closes them when it ends. Registering each
with ``loop.add_reader`` and removing it again costs some 25 µs of the selector's Python
bookkeeping per call on the stock loop, about as much as binding the sockets; a busy UAS
opens and closes hundreds a second. :class:`SocketPoller` keeps an epoll set of its own,
whose one file descriptor the loop watches: a socket joins and leaves it by a single system
call, and a wake-up serves every media socket that is readable. Where ``select.epoll`` does
not exist (not Linux), sockets go to ``loop.add_reader`` as before.

The poller reads the datagrams itself, one per readable socket per wake-up: a media socket
carries one packet per packet time, so a second read would nearly always find nothing and
cost a failed system call; the epoll set is level-triggered, and a socket with more to read
is reported again at the next wake-up. At most ``MAX_EVENTS`` sockets are served per
wake-up, so that the loop gets back to its timers (the media clock) within a fraction of a
millisecond however many calls are receiving (the set hands them out round-robin).

A socket whose peer is known can be connected to it (:meth:`SocketPoller.connect`, Linux):
the kernel then delivers only the peer's datagrams, and the poller reads them with ``recv``
and hands over the peer's address it was given, instead of making the source address of
every datagram into a tuple of a string and an int (a third of ``recvfrom``'s cost); a
connected socket also sends without the route lookup and address parsing of ``sendto``.
:meth:`SocketPoller.disconnect` dissolves the association, and the socket hears anyone again.
"""

from __future__ import annotations

import asyncio
import select
import socket
import sys
from collections.abc import Callable
from typing import Any, Final

from voip.transport.udp import disconnect_datagram_socket

__all__ = ["CONNECTS", "SocketPoller"]

#: readable sockets served per wake-up (about 5 µs each); more wait for the next one
MAX_EVENTS = 64
RECEIVE_SIZE: Final = 2048

#: what ``recvfrom`` gives: ``(host, port)``, and for IPv6 ``(host, port, flowinfo, scope_id)``
#: (typed loosely: compiled code checks declared tuple shapes at run time)
Address = tuple[Any, ...]
OnDatagram = Callable[[bytes, Address], None]
_EPOLL: Final = hasattr(select, "epoll")
#: sockets can be connected to their peer and back (where the poller has epoll: Linux)
CONNECTS: Final = _EPOLL and sys.platform.startswith("linux")


class _Watched:
    """A socket the poller reads: how, and whom it tells."""

    def __init__(self, sock: socket.socket, on_datagram: OnDatagram) -> None:
        self.recvfrom: Callable[[int], tuple[bytes, Address]] = sock.recvfrom
        self.recv: Callable[[int], bytes] = sock.recv
        self.on_datagram = on_datagram
        #: the address the socket is connected to, handed over with what it reads
        self.peer: Address | None = None


class SocketPoller:
    """Calls ``on_datagram(data, address)`` for what each watched socket receives."""

    __slots__ = ("_entries", "_epoll", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._epoll: select.epoll | None = None
        self._entries: dict[int, _Watched] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, sock: socket.socket, on_datagram: OnDatagram) -> None:
        fd = sock.fileno()
        if not _EPOLL:
            self.loop.add_reader(fd, self._read_one, sock.recvfrom, on_datagram)
            return
        epoll = self._epoll
        if epoll is None:
            epoll = self._epoll = select.epoll()
            self.loop.add_reader(epoll.fileno(), self._ready)
        epoll.register(fd, select.EPOLLIN)
        self._entries[fd] = _Watched(sock, on_datagram)

    def remove(self, sock: socket.socket) -> None:
        """Stop watching ``sock`` (before it is closed; a closed socket is ignored)."""
        fd = sock.fileno()
        if fd < 0:
            return
        if not _EPOLL:
            self.loop.remove_reader(fd)
            return
        epoll = self._epoll
        if epoll is None or self._entries.pop(fd, None) is None:
            return
        epoll.unregister(fd)
        if not self._entries:
            self.close()

    def _ready(self) -> None:
        epoll = self._epoll
        if epoll is None:
            return
        entries = self._entries
        for fd, _ in epoll.poll(0, MAX_EVENTS):
            watched = entries.get(fd)
            if watched is None:
                continue  # removed by a callback earlier in this wake-up
            peer = watched.peer
            try:
                if peer is None:
                    data, address = watched.recvfrom(RECEIVE_SIZE)
                else:
                    data, address = watched.recv(RECEIVE_SIZE), peer
            except OSError:
                continue  # nothing after all, or an ICMP error for an earlier send
            try:
                watched.on_datagram(data, address)
            except Exception as error:  # one stream's fault never stops the others
                self.loop.call_exception_handler(
                    {"message": "media socket callback failed", "exception": error}
                )

    def _read_one(
        self, recvfrom: Callable[[int], tuple[bytes, Address]], on_datagram: OnDatagram
    ) -> None:
        try:
            data, address = recvfrom(RECEIVE_SIZE)
        except OSError:
            return
        try:
            on_datagram(data, address)
        except Exception as error:
            self.loop.call_exception_handler(
                {"message": "media socket callback failed", "exception": error}
            )

    def connect(self, sock: socket.socket, peer: Address) -> bool:
        """Connect the watched ``sock`` to ``peer`` (``connect(2)``): from now on it receives
        only what ``peer`` sends, handed over with ``peer`` itself as the address. False
        where sockets are not connected (not Linux, a socket not watched here) or the
        system refused (an IPv6 link-local peer without its scope, say): nothing changed.

        Datagrams from elsewhere that were queued before stay in the socket: the caller
        reads them with ``recvfrom`` now, before the poller's next wake-up."""
        watched = self._entries.get(sock.fileno()) if CONNECTS else None
        if watched is None:
            return False
        try:
            sock.connect(peer)
        except OSError:
            return False
        watched.peer = peer
        return True

    def disconnect(self, sock: socket.socket) -> None:
        """Dissolve ``sock``'s association made by :meth:`connect`: it hears anyone again,
        each datagram read with its source address."""
        watched = self._entries.get(sock.fileno())
        if watched is None or watched.peer is None:
            return
        disconnect_datagram_socket(sock)
        watched.peer = None

    def close(self) -> None:
        """Stop watching every socket and close the epoll set (a later add makes another)."""
        epoll, self._epoll = self._epoll, None
        self._entries.clear()
        if epoll is not None:
            self.loop.remove_reader(epoll.fileno())
            epoll.close()
