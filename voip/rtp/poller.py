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


class SocketPoller:
    """Calls ``callback`` whenever its socket is readable (level-triggered, like the loop)."""

    __slots__ = ("_callbacks", "_epoll", "_watching", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._epoll = select.epoll() if hasattr(select, "epoll") else None
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._watching = False

    def __len__(self) -> int:
        return len(self._callbacks)

    def add(self, sock: socket.socket, callback: Callable[[], None]) -> None:
        fd = sock.fileno()
        epoll = self._epoll
        if epoll is None:
            self.loop.add_reader(fd, callback)
            return
        epoll.register(fd, select.EPOLLIN)
        self._callbacks[fd] = callback
        if not self._watching:
            self.loop.add_reader(epoll.fileno(), self._ready)
            self._watching = True

    def remove(self, sock: socket.socket) -> None:
        """Stop watching ``sock`` (before it is closed; a closed socket is ignored)."""
        fd = sock.fileno()
        if fd < 0:
            return
        epoll = self._epoll
        if epoll is None:
            self.loop.remove_reader(fd)
            return
        if self._callbacks.pop(fd, None) is not None:
            epoll.unregister(fd)

    def _ready(self) -> None:
        assert self._epoll is not None
        callbacks = self._callbacks
        for fd, _ in self._epoll.poll(0, MAX_EVENTS):
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
        epoll = self._epoll
        if epoll is None or epoll.closed:
            return
        if self._watching:
            self.loop.remove_reader(epoll.fileno())
            self._watching = False
        self._callbacks.clear()
        epoll.close()
