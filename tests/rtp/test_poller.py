"""SocketPoller: every media socket watched through one file descriptor of the loop."""

from __future__ import annotations

import asyncio
import os
import select
import socket
from collections.abc import Callable, Iterator

import pytest

from voip.rtp.poller import SocketPoller


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    made = []
    for _ in range(3):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        made.append(sock)
    yield made
    for sock in made:
        sock.close()


def _send_to(sock: socket.socket, data: bytes = b"x") -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(data, sock.getsockname())


def _drainer(sock: socket.socket, heard: list[tuple[int, bytes]], index: int) -> Callable[[], None]:
    def drain() -> None:
        while True:
            try:
                heard.append((index, sock.recv(100)))
            except BlockingIOError:
                return

    return drain


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0.01)


async def test_each_readable_socket_has_its_callback_called(sockets: list[socket.socket]) -> None:
    poller = SocketPoller(asyncio.get_running_loop())
    heard: list[tuple[int, bytes]] = []
    for index, sock in enumerate(sockets):
        poller.add(sock, _drainer(sock, heard, index))
    _send_to(sockets[0], b"a")
    _send_to(sockets[2], b"c")
    await _settle()
    assert sorted(heard) == [(0, b"a"), (2, b"c")]
    poller.close()


async def test_a_removed_socket_is_no_longer_watched(sockets: list[socket.socket]) -> None:
    poller = SocketPoller(asyncio.get_running_loop())
    heard: list[tuple[int, bytes]] = []
    poller.add(sockets[0], _drainer(sockets[0], heard, 0))
    poller.add(sockets[1], _drainer(sockets[1], heard, 1))
    poller.remove(sockets[0])
    assert len(poller) == (1 if hasattr(select, "epoll") else 0)
    _send_to(sockets[0])
    _send_to(sockets[1])
    await _settle()
    assert heard == [(1, b"x")]
    poller.close()


async def test_a_failing_callback_does_not_stop_the_others(sockets: list[socket.socket]) -> None:
    loop = asyncio.get_running_loop()
    errors: list[object] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context["exception"]))
    poller = SocketPoller(loop)
    heard: list[tuple[int, bytes]] = []

    def fail() -> None:
        sockets[0].recv(100)
        raise RuntimeError("a broken stream")

    poller.add(sockets[0], fail)
    poller.add(sockets[1], _drainer(sockets[1], heard, 1))
    _send_to(sockets[0])
    _send_to(sockets[1])
    await _settle()
    assert heard == [(1, b"x")]
    assert [str(error) for error in errors] == ["a broken stream"]
    poller.close()


async def test_closing_the_poller_stops_watching(sockets: list[socket.socket]) -> None:
    poller = SocketPoller(asyncio.get_running_loop())
    heard: list[tuple[int, bytes]] = []
    poller.add(sockets[0], _drainer(sockets[0], heard, 0))
    poller.close()
    poller.close()  # twice is harmless
    poller.remove(sockets[0])  # after close too
    _send_to(sockets[0])
    await _settle()
    assert heard == []


async def test_no_descriptor_is_held_once_the_last_socket_leaves(
    sockets: list[socket.socket],
) -> None:
    def descriptors() -> int:
        return len(os.listdir("/proc/self/fd"))

    poller = SocketPoller(asyncio.get_running_loop())
    before = descriptors()
    heard: list[tuple[int, bytes]] = []
    for index, sock in enumerate(sockets[:2]):
        poller.add(sock, _drainer(sock, heard, index))
    assert descriptors() == before + 1  # one epoll set for both
    poller.remove(sockets[0])
    assert descriptors() == before + 1
    poller.remove(sockets[1])
    assert descriptors() == before
    poller.add(sockets[2], _drainer(sockets[2], heard, 2))  # watched again from scratch
    _send_to(sockets[2])
    await _settle()
    assert heard == [(2, b"x")]
    poller.close()
    assert descriptors() == before
