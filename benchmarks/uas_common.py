"""What the benchmark UAS scripts share: announce the address, run until told to stop, on
the event loop asked for (``--loop asyncio`` or ``--loop uvloop``)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal

from voip.eventloop import LOOPS

#: young objects made between two collections of the youngest generation (CPython: 700)
YOUNG_THRESHOLD = 10_000


def settle_collector() -> None:
    """What a long-running Python server does once it is up, done for every Python UAS
    alike: the objects made so far (modules, the agent) go to the permanent generation
    (``gc.freeze``), which no full collection walks again, and the youngest generation
    is collected every ``YOUNG_THRESHOLD`` new objects instead of every 700, so that most
    objects of a call are freed (by reference counting, as before) before a collection
    walks them. ``UAS_DEFAULT_GC=1`` leaves CPython's settings, to compare."""
    if os.environ.get("UAS_DEFAULT_GC"):
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 10, 10)


async def serve_until_stopped(host: str, port: int) -> None:
    """Settle the collector, print ``ready HOST PORT`` (what benchmarks/cps.py waits for),
    then wait for SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    settle_collector()
    print(f"ready {host} {port}", flush=True)
    await stop.wait()


def add_loop_option(parser: argparse.ArgumentParser) -> None:
    """``--loop``: the loop a UAS runs on (voip.eventloop.run), either UAS alike."""
    parser.add_argument("--loop", choices=LOOPS[1:], default="asyncio", help="(asyncio)")
