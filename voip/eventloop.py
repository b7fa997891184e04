"""The event loop a program of the toolkit runs on: asyncio's own, or uvloop when installed.

uvloop (the ``uvloop`` extra: ``pip install 'voip[uvloop]'``) runs the loop itself in C
(libuv): the loop's own overhead per wake-up and per timer (``_run_once``, the timer heap,
``time()``), which asyncio spends in Python, mostly goes. The toolkit needs nothing of a loop
beyond the public API (``add_reader``, ``call_at``, datagram sockets), so it runs unchanged on
either; on uvloop the media clock wakes through ``call_at`` rather than a timerfd
(:mod:`voip.rtp.wakeup`). ``auto`` takes uvloop where it is installed.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

__all__ = ["LOOPS", "LoopName", "loop_factory", "run", "uvloop_installed"]

T = TypeVar("T")
LoopName = Literal["auto", "asyncio", "uvloop"]
LOOPS: tuple[LoopName, ...] = ("auto", "asyncio", "uvloop")


def uvloop_installed() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def loop_factory(name: str = "auto") -> Callable[[], asyncio.AbstractEventLoop]:
    """What makes a loop of kind ``name``; raises ValueError for an unknown name and
    RuntimeError for ``uvloop`` when it is not installed."""
    if name not in LOOPS:
        raise ValueError(f"unknown event loop {name!r}: one of {', '.join(LOOPS)}")
    if name == "asyncio" or (name == "auto" and not uvloop_installed()):
        return asyncio.new_event_loop
    try:
        import uvloop
    except ImportError as error:
        raise RuntimeError("uvloop is not installed: pip install 'voip[uvloop]'") from error
    new_loop: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return new_loop


def run(main: Coroutine[Any, Any, T], *, loop: str = "auto") -> T:
    """``asyncio.run(main)`` on a loop of kind ``loop``."""
    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        return runner.run(main)
