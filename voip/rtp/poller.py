"""Readiness of every media socket of a process through one epoll set watched by the loop.

Each call opens two sockets (RTP and RTCP) and closes them when it ends. Registering each
with ``loop.add_reader`` and removing it again costs some 25 µs of the selector's Python
bookkeeping per call on the stock loop, about as much as binding the sockets; a busy UAS
opens and closes hundreds a second. :class:`SocketPoller` keeps an epoll set of its own,
whose one file descriptor the loop watches: a socket joins and leaves it by a single system
call, and a wake-up serves every media socket that is readable. Where ``select.epoll`` does
not exist (not Linux), sockets go to ``loop.add_reader`` as before.
"""

from __future__ import annotations

import asyncio
import select
import socket
from collections.abc import Callable

__all__ = ["SocketPoller"]

#: events taken from the epoll set per wake-up; more wait for the next one
MAX_EVENTS = 512
_EPOLL = hasattr(select, "epoll")


class SocketPoller:
    """Calls ``callback`` whenever its socket is readable (level-triggered, like the loop).

    The epoll set exists while it watches a socket: made for the first, closed after the
    last leaves, so that an agent without calls holds no descriptor for it."""

    __slots__ = ("_callbacks", "_epoll", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._epoll: select.epoll | None = None
        self._callbacks: dict[int, Callable[[], None]] = {}

    def __len__(self) -> int:
        return len(self._callbacks)

    def add(self, sock: socket.socket, callback: Callable[[], None]) -> None:
        fd = sock.fileno()
        if not _EPOLL:
            self.loop.add_reader(fd, callback)
            return
        epoll = self._epoll
        if epoll is None:
            epoll = self._epoll = select.epoll()
            self.loop.add_reader(epoll.fileno(), self._ready)
        epoll.register(fd, select.EPOLLIN)
        self._callbacks[fd] = callback

    def remove(self, sock: socket.socket) -> None:
        """Stop watching ``sock`` (before it is closed; a closed socket is ignored)."""
        fd = sock.fileno()
        if fd < 0:
            return
        if not _EPOLL:
            self.loop.remove_reader(fd)
            return
        epoll = self._epoll
        if epoll is None or self._callbacks.pop(fd, None) is None:
            return
        epoll.unregister(fd)
        if not self._callbacks:
            self.close()

    def _ready(self) -> None:
        epoll = self._epoll
        if epoll is None:
            return
        callbacks = self._callbacks
        for fd, _ in epoll.poll(0, MAX_EVENTS):
            callback = callbacks.get(fd)
            if callback is None:
                continue  # removed by a callback earlier in this wake-up
            try:
                callback()
            except Exception as error:  # one stream's fault never stops the others
                self.loop.call_exception_handler(
                    {"message": "media socket callback failed", "exception": error}
                )

    def close(self) -> None:
        """Stop watching every socket and close the epoll set (a later add makes another)."""
        epoll, self._epoll = self._epoll, None
        self._callbacks.clear()
        if epoll is not None:
            self.loop.remove_reader(epoll.fileno())
            epoll.close()
