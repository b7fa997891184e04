"""What the benchmark UAS scripts share: announce the address, run until told to stop, on
the event loop asked for (``--loop asyncio`` or ``--loop uvloop``)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

from voip import eventloop
from voip.eventloop import LOOPS


def settle_collector() -> None:
    """What a long-running Python server does once it is up (voip.eventloop.settle_collector:
    what exists goes to the permanent generation, the youngest generation is collected every
    10,000 new objects instead of every 700), done for every Python UAS alike.
    ``UAS_DEFAULT_GC=1`` leaves CPython's settings, to compare."""
    if not os.environ.get("UAS_DEFAULT_GC"):
        eventloop.settle_collector()


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
