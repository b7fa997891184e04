"""SocketPoller: every media socket watched through one file descriptor of the loop."""

from __future__ import annotations

import asyncio
import os
import select
import socket
from collections.abc import Callable, Iterator

import pytest

from voip.rtp import poller as poller_module
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


def _recorder(
    heard: list[tuple[int, bytes]], index: int
) -> Callable[[bytes, tuple[str, int]], None]:
    def on_datagram(data: bytes, address: tuple[str, int]) -> None:
        heard.append((index, data))

    return on_datagram


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0.01)


async def test_each_readable_socket_has_its_callback_called(sockets: list[socket.socket]) -> None:
    poller = SocketPoller(asyncio.get_running_loop())
    heard: list[tuple[int, bytes]] = []
    for index, sock in enumerate(sockets):
        poller.add(sock, _recorder(heard, index))
    _send_to(sockets[0], b"a")
    _send_to(sockets[2], b"c")
    await _settle()
    assert sorted(heard) == [(0, b"a"), (2, b"c")]
    poller.close()


async def test_every_queued_datagram_is_delivered_in_order_with_its_source(
    sockets: list[socket.socket],
) -> None:
    poller = SocketPoller(asyncio.get_running_loop())
    heard: list[tuple[bytes, tuple[str, int]]] = []
    poller.add(sockets[0], lambda data, address: heard.append((data, address)))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.bind(("127.0.0.1", 0))
        for n in range(5):  # all queued before the loop looks: read one per wake-up
            sender.sendto(bytes([n]), sockets[0].getsockname())
        await _settle()
        assert heard == [(bytes([n]), sender.getsockname()) for n in range(5)]
    poller.close()


async def test_a_wake_up_serves_at_most_max_events_sockets_so_timers_get_their_turn(
    sockets: list[socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(poller_module, "MAX_EVENTS", 2)
    poller = SocketPoller(asyncio.get_running_loop())
    heard: list[tuple[int, bytes]] = []
    for index, sock in enumerate(sockets):
        poller.add(sock, _recorder(heard, index))
    for sock in sockets:
        _send_to(sock)  # on loopback, there before sendto returns
    poller._ready()  # one wake-up, before the loop has had a look
    assert len(heard) == 2
    await _settle()
    assert sorted(heard) == [(0, b"x"), (1, b"x"), (2, b"x")]  # the third at the next one
    poller.close()


async def test_a_removed_socket_is_no_longer_watched(sockets: list[socket.socket]) -> None:
    poller = SocketPoller(asyncio.get_running_loop())
    heard: list[tuple[int, bytes]] = []
    poller.add(sockets[0], _recorder(heard, 0))
    poller.add(sockets[1], _recorder(heard, 1))
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

    def fail(data: bytes, address: tuple[str, int]) -> None:
        raise RuntimeError("a broken stream")

    poller.add(sockets[0], fail)
    poller.add(sockets[1], _recorder(heard, 1))
    _send_to(sockets[0])
    _send_to(sockets[1])
    await _settle()
    assert heard == [(1, b"x")]
    assert [str(error) for error in errors] == ["a broken stream"]
    poller.close()


async def test_closing_the_poller_stops_watching(sockets: list[socket.socket]) -> None:
    poller = SocketPoller(asyncio.get_running_loop())
    heard: list[tuple[int, bytes]] = []
    poller.add(sockets[0], _recorder(heard, 0))
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
        poller.add(sock, _recorder(heard, index))
    assert descriptors() == before + 1  # one epoll set for both
    poller.remove(sockets[0])
    assert descriptors() == before + 1
    poller.remove(sockets[1])
    assert descriptors() == before
    poller.add(sockets[2], _recorder(heard, 2))  # watched again from scratch
    _send_to(sockets[2])
    await _settle()
    assert heard == [(2, b"x")]
    poller.close()
    assert descriptors() == before
