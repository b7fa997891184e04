"""The media clock's one timer: a wake-up at an absolute time of the loop's clock.

asyncio's own timers (``loop.call_at``) wake the loop through ``epoll_wait``, whose timeout
is in whole milliseconds: the selector rounds the wait up, so a timer fires up to a
millisecond after its time (0.7 ms on average on an idle loop here), and a packet with it.
On Linux a ``timerfd`` (timerfd_create(2), CLOCK_MONOTONIC, the clock of the loop's
``time()``) armed for the absolute deadline wakes the loop's epoll within microseconds;
the loop watches its descriptor like a socket. :func:`wakeup_timer` gives a
:class:`TimerFd` where the kernel has it and the loop is asyncio's own (whose ``time()`` is
``time.monotonic()``), and a :class:`LoopTimer` (``call_at``) otherwise: other loops,
other systems, the virtual loops of the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
from collections.abc import Callable
from typing import Protocol

from voip.libc import errno_error, libc

__all__ = ["LoopTimer", "TimerFd", "WakeupTimer", "wakeup_timer"]

_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = 0o2000000
_TFD_TIMER_ABSTIME = 1


class WakeupTimer(Protocol):
    def arm(self, when: float) -> None:
        """Call back at ``when`` (the loop's time), instead of any earlier arming."""

    def disarm(self) -> None: ...

    def close(self) -> None: ...


class LoopTimer:
    """``loop.call_at``: wherever there is no timerfd."""

    __slots__ = ("_callback", "_handle", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        self.loop = loop
        self._callback = callback
        self._handle: asyncio.TimerHandle | None = None

    def arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self.loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._callback()

    def disarm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def close(self) -> None:
        self.disarm()


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _libc() -> ctypes.CDLL | None:
    found = libc()
    if found is None or not (
        hasattr(found, "timerfd_create") and hasattr(found, "timerfd_settime")
    ):
        return None
    return found


_LIBC = _libc()


class TimerFd:
    """A Linux timerfd watched by the loop (``add_reader``), armed with absolute times."""

    __slots__ = ("_callback", "_fd", "_settime", "_spec", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        assert _LIBC is not None
        fd = _LIBC.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if fd < 0:
            raise errno_error()
        self.loop = loop
        self._fd: int = fd
        self._callback = callback
        self._spec = _Itimerspec()  # reused: one arming, one system call
        self._settime = _LIBC.timerfd_settime
        loop.add_reader(fd, self._ready)

    def arm(self, when: float) -> None:
        value = self._spec.it_value
        seconds = int(when)
        # a time at or before now (0 would disarm) expires at once
        value.tv_sec, value.tv_nsec = seconds, max(1, int((when - seconds) * 1e9))
        self._set()

    def disarm(self) -> None:
        value = self._spec.it_value
        value.tv_sec = value.tv_nsec = 0
        self._set()

    def _set(self) -> None:
        if self._settime(self._fd, _TFD_TIMER_ABSTIME, ctypes.byref(self._spec), None) < 0:
            raise errno_error()

    def _ready(self) -> None:
        try:
            os.read(self._fd, 8)  # the count of expirations: read, so that it is not ready
        except BlockingIOError:
            return  # disarmed or armed again since it expired
        self._callback()

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            with contextlib.suppress(Exception):  # the loop may be closed already
                self.loop.remove_reader(fd)
            os.close(fd)

    def __del__(self) -> None:
        # a clock whose loop ended with streams still on it: the descriptor goes too
        fd = getattr(self, "_fd", -1)  # not set when timerfd_create failed
        self._fd = -1
        if fd >= 0:
            os.close(fd)


def wakeup_timer(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> WakeupTimer:
    """The most precise timer ``loop`` can have, calling ``callback`` when it expires."""
    if _LIBC is not None and isinstance(loop, asyncio.BaseEventLoop):
        try:
            return TimerFd(loop, callback)
        except OSError:
            pass
    return LoopTimer(loop, callback)
