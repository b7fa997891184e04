"""One media clock for every stream of a process.

Each stream is due at absolute deadlines ``start + n·ptime``; a single timer, armed for the
earliest deadline and never more often than every ``GRANULARITY`` seconds, serves every
stream due at once (PERF-FACTS.md: one tick for all streams holds 1,000 streams within
about 1 ms where a task per stream does not). A deadline is served when it is at most half a
granularity away, so a packet goes out within half a millisecond of its time either way,
plus the loop's own latency. A stream that fell more than ``MAX_LAG`` periods behind (the
loop was blocked) skips the missed periods instead of sending them in a burst.

A stream added without a start time starts on the next multiple of ``PHASE``: streams
started at random moments (calls answered whenever their INVITE comes) then share
``ptime / PHASE`` deadlines per period, so the clock wakes the loop at most that many
times per period (200 a second) however many streams run, where spread deadlines woke it
up to every ``GRANULARITY``. Each wake-up costs a loop iteration and a system call; a
busy agent's streams shared them this way for about a tenth of its CPU per call. The first
packet leaves at most ``PHASE`` later, which RTP does not notice (its timestamps start at a
random value, RFC 3550 §5.1).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from typing import Protocol

__all__ = ["Clocked", "MediaClock", "Registration"]

GRANULARITY = 0.001
PHASE = 0.005
MAX_LAG = 2


class Clocked(Protocol):
    def tick(self, deadline: float, now: float) -> None:
        """One period: ``deadline`` is when it was due, ``now`` the loop's time."""


class Registration:
    """A stream on the clock; ``cancel()`` takes it off."""

    __slots__ = ("active", "member", "n", "period", "skipped", "start")

    def __init__(self, member: Clocked, period: float, start: float) -> None:
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
        self.active = False


class MediaClock:
    """Drives :class:`Clocked` members from one timer on ``loop``."""

    __slots__ = ("_counter", "_handle", "_heap", "_when", "loop", "ticks")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._heap: list[tuple[float, int, Registration]] = []
        self._counter = itertools.count()
        self._handle: asyncio.TimerHandle | None = None
        self._when = math.inf
        self.ticks = 0  # timer callbacks run

    def __len__(self) -> int:
        return sum(1 for _, _, r in self._heap if r.active)

    def add(self, member: Clocked, period: float, start: float | None = None) -> Registration:
        """Call ``member.tick`` every ``period`` seconds from ``start`` (default: the next
        multiple of ``PHASE``)."""
        if period <= 0:
            raise ValueError("period must be positive")
        if start is None:
            start = math.ceil(self.loop.time() / PHASE) * PHASE
        registration = Registration(member, period, start)
        heapq.heappush(self._heap, (registration.start, next(self._counter), registration))
        self._arm()
        return registration

    def _arm(self) -> None:
        heap = self._heap
        while heap and not heap[0][2].active:
            heapq.heappop(heap)
        if not heap:
            if self._handle is not None:
                self._handle.cancel()
                self._handle = None
                self._when = math.inf
            return
        when = heap[0][0] - GRANULARITY / 2
        if self._handle is not None:
            if when >= self._when:
                return
            self._handle.cancel()
        self._when = when
        self._handle = self.loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._when = math.inf
        self.ticks += 1
        loop_time = self.loop.time
        now = loop_time()
        horizon = now + GRANULARITY / 2 + 1e-9  # start + n·period rounds either way
        heap = self._heap
        pop, push = heapq.heappop, heapq.heappush
        while heap and heap[0][0] <= horizon:
            deadline, _, registration = pop(heap)
            if not registration.active:
                continue
            period = registration.period
            if now - deadline > MAX_LAG * period:
                # the loop was held up: no burst, carry on from the current period
                behind = math.floor((now - registration.start) / period)
                registration.skipped += behind - registration.n
                registration.n = behind
                deadline = registration.start + behind * period
            try:
                registration.member.tick(deadline, now)
            except Exception as error:  # one stream's fault never stops the others
                self.loop.call_exception_handler(
                    {"message": "media clock member failed", "exception": error}
                )
            registration.n += 1
            if registration.active:
                push(
                    heap,
                    (
                        registration.start + registration.n * period,
                        next(self._counter),
                        registration,
                    ),
                )
        if heap:
            # not more often than the granularity, however the deadlines are spread
            when = max(heap[0][0] - GRANULARITY / 2, loop_time() + GRANULARITY / 2)
            self._when = when
            self._handle = self.loop.call_at(when, self._fire)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._heap.clear()
