"""After 1,000 calls every RTP port is free again: calls between two agents on loopback,
many at once, each with RTP flowing both ways before the BYE; afterwards neither agent
holds an RTP port, a socket or a file descriptor more than before, and no socket of the
process is bound to a port of either range."""

from __future__ import annotations

import asyncio
import contextlib
import os

from support.peers._process import free_port_range

from voip.call import Call
from voip.useragent import UserAgent

CALLS = 1000
AT_ONCE = 50
RANGE = 2 * AT_ONCE + 20  # ports per agent: a pair per concurrent call and some spare
TIMEOUT = 10.0


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def _held_by_this_process(low: int, high: int) -> list[int]:
    """The UDP ports of ``low``..``high`` that a socket of this process is bound to
    (/proc/net/udp, matched by socket inode with /proc/self/fd)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    held = []
    with open("/proc/net/udp", encoding="ascii") as table:
        next(table)
        for line in table:
            fields = line.split()
            port = int(fields[1].split(":")[1], 16)
            if low <= port <= high and fields[9] in inodes:
                held.append(port)
    return held


async def test_after_1000_calls_every_rtp_port_and_socket_is_free_again() -> None:
    ranges = [free_port_range(RANGE), free_port_range(RANGE)]
    alice = UserAgent("alice", rtp_ports=(ranges[0], ranges[0] + RANGE - 1))
    bob = UserAgent("bob", rtp_ports=(ranges[1], ranges[1] + RANGE - 1))
    await alice.listen("udp", "127.0.0.1", 0)
    endpoint = await bob.listen("udp", "127.0.0.1", 0)
    uri = f"sip:bob@{endpoint.host}:{endpoint.port}"
    before = {ua.user: ua.resources() for ua in (alice, bob)}
    descriptors = _open_descriptors()
    answered: list[Call] = []

    async def accept(call: Call) -> None:
        answered.append(call)
        await call.accept()

    bob.on("incoming_call", accept)
    limit = asyncio.Semaphore(AT_ONCE)
    peak = 0
    heard = 0

    async def one_call() -> None:
        nonlocal peak, heard
        async with limit:
            call = await asyncio.wait_for(alice.call(uri), TIMEOUT)
            assert call.media is not None
            await asyncio.wait_for(call.media.read(), TIMEOUT)  # RTP arrived from bob
            heard += 1
            peak = max(peak, alice.resources()["rtp_ports"])
            await call.hangup()

    try:
        await asyncio.gather(*(one_call() for _ in range(CALLS)))
        await asyncio.wait_for(asyncio.gather(*(call.ended() for call in answered)), TIMEOUT)
        assert heard == CALLS and len(answered) == CALLS
        assert peak > 1  # the calls really overlapped
        for ua in (alice, bob):
            now = ua.resources()
            assert now["rtp_ports"] == before[ua.user]["rtp_ports"] == 0
            assert now["sockets"] == before[ua.user]["sockets"]
            assert now["calls"] == 0
        assert _open_descriptors() == descriptors
        for low in ranges:
            assert _held_by_this_process(low, low + RANGE - 1) == []
    finally:
        await alice.close()
        await bob.close()
