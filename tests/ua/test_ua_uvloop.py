"""The agent on uvloop (voip.eventloop, the ``uvloop`` extra): a call with its media and its
clean-up work there as on asyncio's own loop (the media clock wakes by ``call_at`` there,
not by a timerfd)."""

from __future__ import annotations

import asyncio

import uvloop
from support.ua import TIMEOUT, answer_calls, media_of, uri_of

from voip.eventloop import run
from voip.rtp.wakeup import LoopTimer, wakeup_timer
from voip.useragent import UserAgent


async def _call_with_media() -> dict[str, int]:
    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
    alice, bob = UserAgent("alice"), UserAgent("bob")
    await alice.listen("udp", "127.0.0.1", 0)
    await bob.listen("udp", "127.0.0.1", 0)
    try:
        calls = answer_calls(bob)
        caller = await asyncio.wait_for(alice.call(uri_of(bob)), TIMEOUT)
        callee = await asyncio.wait_for(calls.get(), TIMEOUT)
        for _ in range(int(TIMEOUT / 0.05)):  # packets of 20 ms: 25 take half a second
            received = [media_of(call).statistics().packets_received for call in (caller, callee)]
            if min(received) >= 25:
                break
            await asyncio.sleep(0.05)
        assert min(received) >= 25, received
        await asyncio.wait_for(caller.hangup(), TIMEOUT)
        await asyncio.wait_for(callee.ended(), TIMEOUT)
        return {**bob.resources(), "alice_calls": alice.resources()["calls"]}
    finally:
        await alice.close()
        await bob.close()


def test_a_call_on_uvloop_carries_media_both_ways_and_leaves_nothing_held() -> None:
    held = run(_call_with_media(), loop="uvloop")
    assert held["calls"] == held["incoming"] == held["rtp_ports"] == held["alice_calls"] == 0
    assert held["server_owners"] == held["jobs"] == 0


def test_the_media_clock_wakes_by_call_at_on_uvloop() -> None:
    async def kind() -> type:
        timer = wakeup_timer(asyncio.get_running_loop(), lambda: None)
        timer.close()
        return type(timer)

    assert run(kind(), loop="uvloop") is LoopTimer
