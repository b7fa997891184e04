"""RTP port pairs and the one media clock (run in virtual time)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import socket
from collections.abc import Callable
from typing import Any, cast

import pytest
from support.peers._process import free_port_range

from voip.rtp.clock import PHASE, MediaClock
from voip.rtp.ports import PortAllocator, PortsExhausted


def test_pairs_are_even_rtp_and_next_odd_rtcp_rfc3550_11() -> None:
    low = free_port_range(20)
    allocator = PortAllocator(low, low + 19)
    pairs = [allocator.allocate() for _ in range(3)]
    try:
        for pair in pairs:
            assert pair.port % 2 == 0
            assert pair.rtp.getsockname()[1] == pair.port
            assert pair.rtcp.getsockname()[1] == pair.port + 1
    finally:
        for pair in pairs:
            pair.release()


def test_every_port_free_again_after_many_sessions() -> None:
    low = free_port_range(40)
    allocator = PortAllocator(low, low + 39)  # 20 pairs, reused over and over
    for _ in range(1000):
        pair = allocator.allocate()
        pair.release()
        pair.release()  # twice is harmless
    assert allocator.in_use == set()
    # and each port of the range can really be bound again
    for port in range(low, low + 40):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", port))


def test_range_exhausted_raises_and_release_makes_room() -> None:
    low = free_port_range(6)
    allocator = PortAllocator(low, low + 5)
    pairs = [allocator.allocate() for _ in range(3)]
    with pytest.raises(PortsExhausted):
        allocator.allocate()
    pairs[1].release()
    again = allocator.allocate()
    assert again.port == pairs[1].port
    for pair in (pairs[0], pairs[2], again):
        pair.release()
    assert not allocator.in_use


def test_a_port_held_by_another_program_is_skipped() -> None:
    low = free_port_range(10)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        other.bind(("127.0.0.1", low + 1))  # the RTCP port of the first pair
        allocator = PortAllocator(low, low + 9)
        pair = allocator.allocate()
        assert pair.port == low + 2
        pair.release()


def test_odd_low_bound_rounds_up_to_even() -> None:
    low = free_port_range(10)
    allocator = PortAllocator(low + 1, low + 9)
    pair = allocator.allocate()
    assert pair.port == low + 2
    pair.release()


class VirtualLoop:
    """Just what MediaClock needs of a loop: time(), call_at(), an exception handler."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[tuple[float, int, VirtualHandle]] = []
        self.counter = itertools.count()
        self.errors: list[dict[str, Any]] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], None]) -> VirtualHandle:
        handle = VirtualHandle(callback)
        heapq.heappush(self.timers, (when, next(self.counter), handle))
        return handle

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        self.errors.append(context)

    def run_until(self, until: float, lateness: float = 0.0) -> None:
        """Run timers in order, each ``lateness`` seconds after its time."""
        while self.timers and self.timers[0][0] <= until:
            when, _, handle = heapq.heappop(self.timers)
            if handle.cancelled:
                continue
            self.now = max(self.now, when + lateness)
            handle.callback()
        self.now = max(self.now, until)


class VirtualHandle:
    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Recorder:
    def __init__(self, fail: bool = False, *, log: list[tuple[str, int]] | None = None) -> None:
        self.deadlines: list[float] = []
        self.served_at: list[float] = []
        self.settled: list[float] = []
        self.fail = fail
        self.log = log

    def tick(self, deadline: float, now: float) -> None:
        self.deadlines.append(deadline)
        self.served_at.append(now)
        if self.log is not None:
            self.log.append(("tick", id(self)))
        if self.fail:
            raise RuntimeError("broken stream")

    def settle(self, now: float) -> None:
        self.settled.append(now)
        if self.log is not None:
            self.log.append(("settle", id(self)))
        if self.fail:
            raise RuntimeError("broken stream")


def _clock() -> tuple[VirtualLoop, MediaClock]:
    loop = VirtualLoop()
    return loop, MediaClock(cast(asyncio.AbstractEventLoop, loop))


def test_deadlines_are_absolute_start_plus_n_ptime_without_drift() -> None:
    loop, clock = _clock()
    member = Recorder()
    clock.add(member, 0.02, start=0.0)
    loop.run_until(0.99, lateness=0.0007)  # every timer fires 0.7 ms late
    assert member.deadlines == [pytest.approx(n * 0.02) for n in range(len(member.deadlines))]
    assert len(member.deadlines) == 50


def test_one_timer_serves_every_stream_due() -> None:
    loop, clock = _clock()
    members = [Recorder() for _ in range(1000)]
    for member in members:
        clock.add(member, 0.02, start=0.0)
    loop.run_until(0.999)
    assert all(len(m.deadlines) == 50 for m in members)
    assert clock.ticks == 50  # one timer callback per period, not one per stream


def test_spread_deadlines_are_served_at_their_time_never_early() -> None:
    loop, clock = _clock()
    members = [Recorder() for _ in range(200)]
    for i, member in enumerate(members):
        clock.add(member, 0.02, start=i * 0.0001)  # 200 different deadlines per period
    loop.run_until(0.99995)
    assert all(len(m.deadlines) == 50 for m in members)
    for member in members:
        assert member.served_at == member.deadlines  # a punctual loop: each at its time


def test_a_late_timer_serves_what_is_due_late_but_never_what_is_not_due() -> None:
    loop, clock = _clock()
    members = [Recorder() for _ in range(200)]
    for i, member in enumerate(members):
        clock.add(member, 0.02, start=i * 0.0001)
    loop.run_until(1.0, lateness=0.0007)  # every timer fires 0.7 ms late
    for member in members:
        assert all(
            -1e-9 <= now - due <= 0.0007 + 1e-9
            for due, now in zip(member.deadlines, member.served_at, strict=True)
        )
        assert len(member.deadlines) >= 49
    assert clock.ticks < 50 * 200  # one timer callback serves several deadlines


class Busy(Recorder):
    """A member whose tick takes ``cost`` seconds of the loop's time."""

    def __init__(self, loop: VirtualLoop, cost: float) -> None:
        super().__init__()
        self.loop, self.cost = loop, cost

    def tick(self, deadline: float, now: float) -> None:
        super().tick(deadline, now)
        self.loop.now += self.cost


def test_a_deadline_that_comes_while_others_are_served_is_served_in_the_same_round() -> None:
    loop, clock = _clock()
    members = [Busy(loop, 0.00011) for _ in range(10)]
    for i, member in enumerate(members):
        clock.add(member, 0.02, start=i * 0.0001)  # each due before the one before is done
    loop.run_until(0.199)
    assert all(len(m.deadlines) == 10 for m in members)
    assert clock.ticks == 10  # one timer callback per period for all ten


def test_an_overloaded_clock_gives_the_loop_its_turn_and_skips_instead_of_bursting() -> None:
    loop, clock = _clock()
    members = [Busy(loop, 0.003) for _ in range(10)]  # 30 ms of work per 20 ms period
    registrations = [clock.add(member, 0.02, start=0.0) for member in members]
    loop.run_until(1.0)  # returns: each timer callback ends after a bounded round
    assert clock.ticks >= 25  # the loop had its turn at least once per period
    for member, registration in zip(members, registrations, strict=True):
        # never more packets than packet times: what was missed is skipped, not caught up
        assert 25 <= len(member.deadlines) + registration.skipped <= loop.now / 0.02 + 1
        assert len(set(member.deadlines)) == len(member.deadlines)
    assert sum(r.skipped for r in registrations) > 0


class Adder(Recorder):
    """A member that puts another member on the clock from its first tick."""

    def __init__(self, clock: MediaClock, other: Recorder) -> None:
        super().__init__()
        self.clock, self.other = clock, other

    def tick(self, deadline: float, now: float) -> None:
        if not self.deadlines:
            self.clock.add(self.other, 0.02, start=now)
        super().tick(deadline, now)


def test_a_stream_added_while_the_clock_serves_joins_with_one_timer_armed() -> None:
    loop, clock = _clock()
    other = Recorder()
    clock.add(Adder(clock, other), 0.02, start=0.0)
    loop.run_until(0.5)
    assert other.deadlines == [pytest.approx(n * 0.02) for n in range(26)]
    live = [h for _, _, h in loop.timers if not h.cancelled]
    assert len(live) == 1  # still one timer for the clock, not a second chain


def test_late_loop_skips_missed_periods_instead_of_a_burst() -> None:
    loop, clock = _clock()
    member = Recorder()
    registration = clock.add(member, 0.02, start=0.0)
    loop.run_until(0.1)
    before = len(member.deadlines)
    loop.now = 0.6  # the loop was blocked for half a second
    loop.run_until(0.61)
    assert len(member.deadlines) - before <= 2
    assert registration.skipped >= 20


def test_cancelled_stream_is_not_ticked_again() -> None:
    loop, clock = _clock()
    member = Recorder()
    registration = clock.add(member, 0.02, start=0.0)
    loop.run_until(0.05)
    registration.cancel()
    count = len(member.deadlines)
    loop.run_until(1.0)
    assert len(member.deadlines) == count
    assert len(clock) == 0


def test_a_failing_stream_does_not_stop_the_others() -> None:
    loop, clock = _clock()
    broken, fine = Recorder(fail=True), Recorder()
    clock.add(broken, 0.02, start=0.0)
    clock.add(fine, 0.02, start=0.0)
    loop.run_until(0.2)
    assert len(fine.deadlines) >= 10 and len(broken.deadlines) >= 10
    assert loop.errors


def test_a_round_sends_for_every_stream_due_before_any_stream_settles() -> None:
    loop, clock = _clock()
    log: list[tuple[str, int]] = []
    members = [Recorder(log=log) for _ in range(3)]
    for member in members:
        clock.add(member, 0.02, start=0.0)
    loop.run_until(0.05)  # rounds at 0, 20 and 40 ms
    ids = [id(member) for member in members]
    one_round = [("tick", i) for i in ids] + [("settle", i) for i in ids]
    assert log == one_round * 3


class SlowSettle(Recorder):
    """A member whose settle takes ``cost`` seconds of the loop's time."""

    def __init__(self, loop: VirtualLoop, cost: float) -> None:
        super().__init__()
        self.loop, self.cost = loop, cost

    def settle(self, now: float) -> None:
        super().settle(now)
        self.loop.now += self.cost


def test_a_slot_due_while_a_round_settles_sends_before_the_round_is_settled() -> None:
    loop, clock = _clock()
    slow = [SlowSettle(loop, 0.0005) for _ in range(20)]  # 10 ms of settling at 0 ms
    for member in slow:
        clock.add(member, 0.02, start=0.0)
    later = Recorder()
    clock.add(later, 0.02, start=0.005)
    loop.run_until(0.1)
    # its tick came within SETTLE_STRIDE settles of its deadline, not after all twenty
    assert [round(at - d, 6) for at, d in zip(later.served_at, later.deadlines, strict=True)] == [
        pytest.approx(0.0025)
    ] * len(later.deadlines)
    assert len(later.deadlines) >= 5
    # every member settled once per period all the same, the later one after its tick
    assert all(len(m.settled) == len(m.deadlines) >= 5 for m in slow)
    assert len(later.settled) == len(later.deadlines)
    assert all(s >= t for s, t in zip(later.settled, later.served_at, strict=True))


def test_an_overdue_slot_waits_for_the_loops_turn_not_for_settling() -> None:
    loop, clock = _clock()
    busy = [Busy(loop, 0.0003) for _ in range(10)]  # 3 ms of ticks: past MAX_ROUND
    for member in busy:
        clock.add(member, 0.02, start=0.0)
    behind = Recorder()
    clock.add(behind, 0.02, start=0.001)  # due while the first slot is served
    loop.run_until(0.001)
    # the round was cut at MAX_ROUND: the overdue slot had its turn after the loop's,
    # in the next callback, not in the settling of the first
    assert clock.ticks == 2
    assert behind.served_at and behind.served_at[0] == pytest.approx(0.003)


def test_a_failing_settle_does_not_stop_the_other_streams_of_the_round() -> None:
    loop, clock = _clock()
    broken, fine = Recorder(fail=True), Recorder()
    clock.add(broken, 0.02, start=0.0)
    clock.add(fine, 0.02, start=0.0)
    loop.run_until(0.1)
    assert len(fine.settled) == len(fine.deadlines) == 6
    assert len(loop.errors) == 12  # the broken member's tick and settle, each round


def test_a_stream_taken_off_by_its_tick_does_not_settle() -> None:
    loop, clock = _clock()
    member = Recorder()
    registration = clock.add(member, 0.02, start=0.0)

    class Canceller(Recorder):
        def tick(self, deadline: float, now: float) -> None:
            super().tick(deadline, now)
            if now >= 0.04:
                registration.cancel()

    clock.add(Canceller(), 0.02, start=0.0)
    loop.run_until(0.1)
    assert member.settled == [0.0, 0.02]  # the round at 40 ms ticked it, then took it off
    assert len(member.deadlines) == 3


def test_streams_of_different_ptime_each_keep_their_period() -> None:
    loop, clock = _clock()
    twenty, thirty = Recorder(), Recorder()
    clock.add(twenty, 0.02, start=0.0)
    clock.add(thirty, 0.03, start=0.0)
    loop.run_until(0.6)
    assert len(twenty.deadlines) == 31 and len(thirty.deadlines) == 21


def test_streams_started_at_random_times_share_the_phase_grid() -> None:
    loop, clock = _clock()
    members = [Recorder() for _ in range(200)]
    for i, member in enumerate(members):
        loop.now = i * 0.00037  # started whenever their calls were answered
        clock.add(member, 0.02)
    loop.now = 0.1
    start_ticks = clock.ticks
    loop.run_until(1.1)
    # at most ptime / PHASE wake-ups per period, not one per spread deadline
    assert clock.ticks - start_ticks <= round(1.0 / PHASE) + 1
    assert all(len(m.deadlines) >= 49 for m in members)
    starts = {round(m.deadlines[0] / PHASE, 6) for m in members}
    assert all(start == int(start) for start in starts)  # every start on the grid
