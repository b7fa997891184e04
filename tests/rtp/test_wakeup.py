"""The media clock's wake-up timer: a timerfd on Linux with asyncio's loop, call_at elsewhere."""

from __future__ import annotations

import asyncio
import gc
import os
from typing import cast

import pytest

from voip.rtp.clock import MediaClock
from voip.rtp.wakeup import LoopTimer, TimerFd, wakeup_timer


def _descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_asyncios_loop_gets_a_timerfd_and_another_loop_call_at() -> None:
    timer = wakeup_timer(asyncio.get_running_loop(), lambda: None)
    assert isinstance(timer, TimerFd)
    timer.close()
    other = cast(asyncio.AbstractEventLoop, object())
    assert isinstance(wakeup_timer(other, lambda: None), LoopTimer)


async def test_the_timerfd_calls_back_at_its_absolute_time_never_before() -> None:
    loop = asyncio.get_running_loop()
    fired: list[float] = []
    timer = TimerFd(loop, lambda: fired.append(loop.time()))
    when = loop.time() + 0.02
    timer.arm(when)
    await asyncio.sleep(0.1)
    assert len(fired) == 1
    assert fired[0] >= when  # the loop's time() and the timerfd share CLOCK_MONOTONIC
    timer.close()


@pytest.mark.parametrize("kind", [TimerFd, LoopTimer])
async def test_arming_again_replaces_the_earlier_time_and_disarm_stops_it(
    kind: type[TimerFd | LoopTimer],
) -> None:
    loop = asyncio.get_running_loop()
    fired: list[float] = []
    timer = kind(loop, lambda: fired.append(loop.time()))
    timer.arm(loop.time() + 0.5)
    soon = loop.time() + 0.01
    timer.arm(soon)
    await asyncio.sleep(0.1)
    assert len(fired) == 1 and fired[0] >= soon
    timer.arm(loop.time() + 0.02)
    timer.disarm()
    await asyncio.sleep(0.1)
    assert len(fired) == 1
    timer.close()


async def test_a_time_already_past_calls_back_at_once() -> None:
    loop = asyncio.get_running_loop()
    fired: list[float] = []
    timer = TimerFd(loop, lambda: fired.append(loop.time()))
    timer.arm(loop.time() - 1.0)
    await asyncio.sleep(0.05)
    assert len(fired) == 1
    timer.close()


class _Recorder:
    def __init__(self) -> None:
        self.ticks: list[tuple[float, float]] = []

    def tick(self, deadline: float, now: float) -> None:
        self.ticks.append((deadline, now))

    def settle(self, now: float) -> None:
        pass  # nothing after the round's sending


async def test_the_clock_on_a_timerfd_serves_streams_never_before_their_deadline() -> None:
    clock = MediaClock(asyncio.get_running_loop())
    members = [_Recorder() for _ in range(3)]
    for member in members:
        clock.add(member, 0.02)
    await asyncio.sleep(0.2)
    clock.close()
    for member in members:
        assert len(member.ticks) >= 5
        assert all(now >= deadline - 1e-9 for deadline, now in member.ticks)


async def test_the_clock_holds_a_descriptor_only_while_streams_are_on_it() -> None:
    clock = MediaClock(asyncio.get_running_loop())
    before = _descriptors()
    registration = clock.add(_Recorder(), 0.02)
    assert _descriptors() == before + 1  # the timerfd
    await asyncio.sleep(0.05)
    registration.cancel()
    # at once, not at the next wake-up (a caller checking right after its last call ended
    # found the descriptor still open for up to a period)
    assert _descriptors() == before
    await asyncio.sleep(0.05)
    assert _descriptors() == before
    clock.add(_Recorder(), 0.02)  # and a new one when a stream comes back
    assert _descriptors() == before + 1
    clock.close()
    assert _descriptors() == before


def test_a_timerfd_left_on_a_finished_loop_closes_its_descriptor_when_collected() -> None:
    before = _descriptors()
    loop = asyncio.new_event_loop()
    timer = TimerFd(loop, lambda: None)
    timer.arm(loop.time() + 10)
    loop.close()  # its streams never ended: the clock never closed the timer
    assert _descriptors() == before + 1
    del timer
    gc.collect()
    assert _descriptors() == before
