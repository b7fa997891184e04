"""What the benchmark UAS scripts share: announce the address, run until told to stop."""

from __future__ import annotations

import asyncio
import signal


async def serve_until_stopped(host: str, port: int) -> None:
    """Print ``ready HOST PORT`` (what benchmarks/cps.py waits for), then wait for SIGTERM
    or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"ready {host} {port}", flush=True)
    await stop.wait()
