"""One media clock for every stream of a process.

Each stream is due at absolute deadlines ``start + n·ptime``. A single timer, armed for the
earliest pending deadline (a timerfd where there is one, else ``loop.call_at``: see
:mod:`voip.rtp.wakeup`), serves every stream whose deadline has come,
in deadline order, and is then armed again for the next one: one timer for all streams,
not one per stream (PERF-FACTS.md: one timer for all streams holds 1,000 streams where a
task per stream does not). A stream is never served before its deadline, and a stream whose
deadline comes while others are being served is served in the same round (the time is read
again after each), so that a packet leaves as soon after its time as the loop allows; after
``MAX_ROUND`` seconds of serving, the loop has its turn (received packets are read) before
the rest. A stream that fell more than ``MAX_LAG`` periods behind (the loop was blocked, or
the process is overloaded) skips the missed periods instead of sending them in a burst.

A round has two stages. First every member due has its ``tick``: the work that must be on
time, a packet sent. Then each of them has its ``settle``: the rest of its period (a
frame played out, RTCP, watching for silence), which no packet waits for: when the next
slot comes due while the round is settling, its members have their ticks at once, and
settle with the others. Were each stream's playout done between its packet and the next
stream's, the sending of the last streams of a round would wait for all the others'
decoding, by more or less from one period to the next (a frame concealed costs more than
one decoded): with a thousand streams the irregularity of their sending came to
milliseconds.

A stream added without a start time starts on the next multiple of ``PHASE``: streams
started at random moments (calls answered whenever their INVITE comes) then share
``ptime / PHASE`` deadlines per period, so the clock wakes the loop at most that many
times per period (200 a second) however many streams run. Each wake-up costs a loop
iteration and a system call; a busy agent's streams shared them this way for about a
tenth of its CPU per call. The first packet leaves at most ``PHASE`` later, which RTP does
not notice (its timestamps start at a random value, RFC 3550 §5.1).
"""

from __future__ import annotations

import asyncio
import heapq
import math
import time
from collections.abc import Callable
from typing import Final, Protocol

from mypy_extensions import mypyc_attr

from voip.rtp.wakeup import WakeupTimer, wakeup_timer

__all__ = ["Clocked", "MediaClock", "Registration", "loop_clock"]

PHASE: Final = 0.005
MAX_LAG: Final = 2
#: start + n·period of two streams on the same phase differ by a rounding at most
ROUNDING: Final = 1e-9
#: deadlines this close are one slot: served together, in a stable order
RESOLUTION: Final = 1e-6
#: seconds the clock serves streams at a stretch before the loop reads what has arrived
MAX_ROUND: Final = 0.001
#: members settled between two readings of the time (is the next slot due?)
SETTLE_STRIDE: Final = 8


def loop_clock(loop: asyncio.AbstractEventLoop) -> Callable[[], float]:
    """``loop.time`` as a function that is cheap to call. asyncio's own loop reads
    ``time.monotonic()`` in a Python method, an interpreter frame each time (and the
    media path reads the time once per packet received): its clock is that function
    itself. Any other loop (uvloop's, a test's virtual one) keeps its own ``time``."""
    if getattr(loop.time, "__func__", None) is asyncio.BaseEventLoop.time:
        return time.monotonic
    return loop.time


class Clocked(Protocol):
    def tick(self, deadline: float, now: float) -> None:
        """One period's on-time work: ``deadline`` is when it was due, ``now`` the loop's
        time."""

    def settle(self, now: float) -> None:
        """The rest of the period, once every member due in the round has had its tick."""


class Registration:
    """A stream on the clock; ``cancel()`` takes it off."""

    __slots__ = ("active", "clock", "member", "n", "period", "skipped", "start")

    def __init__(
        self, member: Clocked, period: float, start: float, clock: MediaClock | None = None
    ) -> None:
        self.clock = clock
        self.member = member
        self.period = period
        self.start = start
        self.n = 0
        self.skipped = 0  # periods skipped because the loop was late
        self.active = True

    @property
    def deadline(self) -> float:
        return self.start + self.n * self.period

    def cancel(self) -> None:
        if self.active:
            self.active = False
            if self.clock is not None:
                self.clock._cancelled()


@mypyc_attr(allow_interpreted_subclasses=True)  # compiled: a benchmark times its rounds
class MediaClock:
    """Drives :class:`Clocked` members from one timer on ``loop``.

    Members due at the same time (to the microsecond: streams on one phase of the grid)
    wait in one *slot*, a list in the order they were last served, and a heap holds the
    slots' times: a round takes a slot whole and serves its members in that same order
    every period, and each goes on to the slot of its next deadline. A heap of every
    member's deadline would order a thousand equal deadlines by comparing them (tuples,
    then their tie-breakers) some twenty times per member per period."""

    __slots__ = (
        "_active",
        "_added",
        "_firing",
        "_slots",
        "_ticked",
        "_timer",
        "_times",
        "_when",
        "loop",
        "ticks",
        "time",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.time = loop_clock(loop)  # loop.time(), cheaper
        # the slots, by their time in microseconds, and a heap of their times (each the
        # deadline of the member that opened the slot)
        self._slots: dict[int, list[Registration]] = {}
        self._times: list[float] = []
        # made for the first stream, closed after the last (a timerfd is a descriptor)
        self._timer: WakeupTimer | None = None
        self._when = math.inf  # what the timer is armed for
        self._firing = False
        self._active = 0  # registrations not cancelled
        self._added: list[Registration] = []  # while firing
        self._ticked: list[Registration] = []  # the round's members, to settle
        self.ticks = 0  # timer callbacks run

    def __len__(self) -> int:
        return sum(1 for slot in self._slots.values() for r in slot if r.active)

    def add(self, member: Clocked, period: float, start: float | None = None) -> Registration:
        """Call ``member.tick`` every ``period`` seconds from ``start`` (default: the next
        multiple of ``PHASE``)."""
        if period <= 0:
            raise ValueError("period must be positive")
        if start is None:
            start = math.ceil(self.loop.time() / PHASE) * PHASE
        registration = Registration(member, period, start, self)
        self._active += 1
        if self._firing:
            self._added.append(registration)  # the slots are being served: after the round
        else:
            self._enqueue(registration)
            self._arm()
        return registration

    def _enqueue(self, registration: Registration) -> None:
        """Put ``registration`` last in the slot of its next deadline."""
        deadline = registration.start + registration.n * registration.period
        key = _key(deadline)
        slot = self._slots.get(key)
        if slot is None:
            self._slots[key] = [registration]
            heapq.heappush(self._times, deadline)
        else:
            slot.append(registration)

    def _cancelled(self) -> None:
        """A registration was cancelled: after the last one the timer (a timerfd: a file
        descriptor) is closed at once, not at its next expiry."""
        self._active = max(0, self._active - 1)
        if not self._active and not self._firing:
            self._times.clear()
            self._slots.clear()
            self._close_timer()

    def _arm(self) -> None:
        """Arm the timer for the earliest slot with a member (if it is not armed for it)."""
        times, slots = self._times, self._slots
        while times and not any(r.active for r in slots[_key(times[0])]):
            del slots[_key(heapq.heappop(times))]
        if not times:
            self._close_timer()
            return
        when = times[0]
        if when >= self._when:
            return  # armed for it (or for a stream since taken off: it rearms then)
        if self._timer is None:
            self._timer = wakeup_timer(self.loop, self._fire)
        self._when = when
        self._timer.arm(when)

    def _close_timer(self) -> None:
        timer, self._timer = self._timer, None
        self._when = math.inf
        if timer is not None:
            timer.close()

    def _fire(self) -> None:
        self._when = math.inf
        self.ticks += 1
        self._firing = True
        try:
            self._serve()
            self._settle()
        finally:
            self._firing = False
            added = self._added
            for registration in added:
                if registration.active:
                    self._enqueue(registration)
            added.clear()
            self._arm()

    def _serve(self) -> None:
        """Serve every slot due, earliest first, until the earliest is in the future (or
        ``MAX_ROUND`` is over: the timer is armed again for what is left, due now)."""
        loop = self.loop
        loop_time = self.time
        now = loop_time()
        end = now + MAX_ROUND
        times, slots = self._times, self._slots
        ticked = self._ticked
        while times:
            when = times[0]
            if when > now + ROUNDING:
                now = loop_time()  # serving took time: more may be due by now
                if when > now + ROUNDING or now > end:
                    return
            heapq.heappop(times)
            for registration in slots.pop(_key(when)):
                if not registration.active:
                    continue
                period = registration.period
                deadline = registration.start + registration.n * period
                if now - deadline > MAX_LAG * period:
                    # the loop was held up: no burst, carry on from the current period
                    behind = math.floor((now - registration.start) / period)
                    registration.skipped += behind - registration.n
                    registration.n = behind
                    deadline = registration.start + behind * period
                try:
                    registration.member.tick(deadline, now)
                except Exception as error:  # one stream's fault never stops the others
                    loop.call_exception_handler(
                        {"message": "media clock member failed", "exception": error}
                    )
                registration.n += 1
                ticked.append(registration)
                if registration.active:
                    self._enqueue(registration)  # after this slot: the next deadline is later

    def _settle(self) -> None:
        """The second stage of the round: each member that had its tick settles. Every
        ``SETTLE_STRIDE`` members the time is read: when a slot has come due since settling
        began, its members have their ticks first (and settle after the others), so that
        settling does not hold a packet back. Slots due before (left by a round cut short
        at ``MAX_ROUND``) wait for the loop's turn, and so do slots due more than ``PHASE``
        after settling began."""
        ticked = self._ticked
        if not ticked:
            return
        loop_time, times = self.time, self._times
        begin = now = loop_time()
        end = begin + PHASE
        i = 0
        while i < len(ticked):
            registration = ticked[i]
            i += 1
            if i % SETTLE_STRIDE == 0:
                now = loop_time()
                if times and begin < times[0] <= min(now, end) + ROUNDING:
                    self._serve()  # appends to ticked: settled in this loop
            if not registration.active:
                continue  # taken off by its tick, or by another member's
            try:
                registration.member.settle(now)
            except Exception as error:  # one stream's fault never stops the others
                self.loop.call_exception_handler(
                    {"message": "media clock member failed", "exception": error}
                )
        ticked.clear()

    def close(self) -> None:
        self._close_timer()
        self._active = 0
        self._times.clear()
        self._slots.clear()
        self._added.clear()
        self._ticked.clear()


def _key(deadline: float) -> int:
    """The slot of ``deadline``: its time in whole microseconds, rounded up but for a
    rounding error (two streams on one phase reach it by different sums)."""
    return math.ceil(deadline / RESOLUTION - 1e-3)
