"""Load generator: N concurrent calls to one URI, then a table of how each went.

    python samples/loadgen.py sip:bot@127.0.0.1:5062 --calls 20 --duration 5

Each call plays a tone while it lasts and hangs up; the table (rich) gives its result
(answered, or the SIP status that refused it), its setup time (INVITE to 2xx) and the
E-model MOS (ITU-T G.107) of the audio it received. Exit status 0 if all were answered.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from voip.report import QualityReport
from voip.rtp import tone
from voip.useragent import RequestFailed, UserAgent


@dataclass
class Outcome:
    number: int
    result: str  # "answered", or why not
    setup: float | None = None  # seconds from INVITE to 2xx
    mos: float | None = None  # of the audio received

    @property
    def answered(self) -> bool:
        return self.result == "answered"


async def place(ua: UserAgent, uri: str, number: int, duration: float) -> Outcome:
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        call = await asyncio.wait_for(ua.call(uri), timeout=32)
    except RequestFailed as error:
        return Outcome(number, f"{error.status} {error.reason}")
    except (TimeoutError, OSError) as error:
        return Outcome(number, f"no answer ({type(error).__name__})")
    setup = loop.time() - start
    assert call.media is not None
    await call.media.write(tone(440 + 10 * number, duration))  # back-pressure paces it
    await call.media.drain()
    report = QualityReport.of_call(call, duration)
    await call.hangup()
    mos = report.received.mos if report is not None else None
    return Outcome(number, "answered", setup, mos)


def table(outcomes: list[Outcome], uri: str) -> Table:
    answered = [o for o in outcomes if o.answered]
    grid = Table(title=f"{len(outcomes)} calls to {uri}")
    grid.add_column("call", justify="right")
    grid.add_column("result")
    grid.add_column("setup (ms)", justify="right")
    grid.add_column("MOS", justify="right")
    for o in outcomes:
        setup = f"{1000 * o.setup:.0f}" if o.setup is not None else "—"
        grid.add_row(str(o.number), o.result, setup, f"{o.mos:.2f}" if o.mos else "—")
    setups = [1000 * o.setup for o in answered if o.setup is not None]
    scores = [o.mos for o in answered if o.mos is not None]
    grid.add_section()
    grid.add_row(
        "all",
        f"{len(answered)} answered, {len(outcomes) - len(answered)} failed",
        f"median {statistics.median(setups):.0f}" if setups else "—",
        f"median {statistics.median(scores):.2f}" if scores else "—",
    )
    return grid


async def main(uri: str, calls: int, duration: float) -> int:
    async with UserAgent("loadgen") as ua:
        await ua.listen("udp", "127.0.0.1", 0)
        jobs = [place(ua, uri, n, duration) for n in range(1, calls + 1)]
        outcomes = await asyncio.gather(*jobs)
    Console(width=100).print(table(outcomes, uri))
    return 0 if all(o.answered for o in outcomes) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("uri", help="whom to call, e.g. sip:bot@127.0.0.1:5062")
    parser.add_argument("--calls", "-n", type=int, default=10, help="concurrent calls")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per call")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.uri, args.calls, args.duration)))
