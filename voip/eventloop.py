"""The event loop a program of the toolkit runs on (asyncio's own, or uvloop when installed),
and the garbage collector's settings for a long-running agent.

uvloop (the ``uvloop`` extra: ``pip install 'voip[uvloop]'``) runs the loop itself in C
(libuv): the loop's own overhead per wake-up and per timer (``_run_once``, the timer heap,
``time()``), which asyncio spends in Python, mostly goes. The toolkit needs nothing of a loop
beyond the public API (``add_reader``, ``call_at``, datagram sockets), so it runs unchanged on
either; on uvloop the media clock wakes through ``call_at`` rather than a timerfd
(:mod:`voip.rtp.wakeup`). ``auto`` takes uvloop where it is installed.

A busy agent makes and frees many objects per call, nearly all freed by reference counting
as soon as the call lets go of them; CPython's cyclic collector nevertheless walks the
youngest of them every 700 allocations, and now and then everything the program holds
(its modules, aiortc's and PyAV's included). :func:`settle_collector` is what a server does
once it is up: what exists then goes to the permanent generation (``gc.freeze``), which no
collection walks again, and the youngest generation is collected every
``YOUNG_THRESHOLD`` allocations, by when most objects of a call are gone. Measured with
``benchmarks/ua_loop.py``: about 14 % less CPU per call. ``voip serve`` and ``voip answer``
do it once listening; the benchmark UASs too.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

__all__ = [
    "LOOPS",
    "YOUNG_THRESHOLD",
    "LoopName",
    "loop_factory",
    "run",
    "settle_collector",
    "uvloop_installed",
]

T = TypeVar("T")
LoopName = Literal["auto", "asyncio", "uvloop"]
LOOPS: tuple[LoopName, ...] = ("auto", "asyncio", "uvloop")
#: allocations between two collections of the youngest generation (CPython: 700)
YOUNG_THRESHOLD = 10_000


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


def settle_collector() -> None:
    """Collect once, freeze what exists (the program's modules and its agent), and collect
    the youngest generation every ``YOUNG_THRESHOLD`` allocations (the older ones as CPython
    does): for a long-running agent, once it is up."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
