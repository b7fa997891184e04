"""The toolkit's UAS for benchmarks/cps.py: answer every call at once from the
"incoming_call" handler (Call.accept_now: 200 with the SDP answer), nothing else; the
peer's ACK and BYE are handled by the agent itself.

    python benchmarks/uas_voip.py PORT [--profile FILE] [--loop uvloop] [--no-media]

``--no-media`` prices the signalling alone, the work aiosipua's UAS does (cps.py's
``voip-nomedia``): each call's RTP stream is replaced by a stand-in that opens no socket and
sends nothing, so the SDP answer names a port where nothing listens, as aiosipua's does.
It is a measurement, not a mode of the toolkit.

Prints ``ready HOST PORT`` once listening on 127.0.0.1:PORT (0: a free port) and runs
until SIGTERM or SIGINT. ``--profile`` writes cProfile statistics of the run to FILE.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from uas_common import add_loop_option, serve_until_stopped

from voip.call import Call
from voip.eventloop import run
from voip.rtp import engine
from voip.useragent import UserAgent


class GcClock:
    """Time spent in the cyclic garbage collector, per generation (gc.callbacks)."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.runs = [0, 0, 0]
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            generation = info["generation"]
            self.runs[generation] += 1
            self.seconds[generation] += time.perf_counter() - self._started

    def __str__(self) -> str:
        pairs = enumerate(zip(self.runs, self.seconds, strict=True))
        return ", ".join(f"gen{g} {n} runs {s:.3f} s" for g, (n, s) in pairs)


class NoStream:
    """A call's RTP stream that is not there (``--no-media``): whatever the call and its
    :class:`~voip.rtp.engine.CallMedia` ask of it does nothing, and the port it gives the
    SDP is never bound."""

    local_port = 40000
    closed = False
    listener = None
    awaiting_keys = False

    def __getattr__(self, name: str) -> Callable[..., None]:
        return _nothing

    @property
    def events(self) -> NoStream:
        return self


def _nothing(*args: object, **kwargs: object) -> None:
    return None


def without_media() -> None:
    """Every call the agent opens from now on gets a :class:`NoStream`."""

    def open_media(
        self: engine.MediaEngine, host: str, port: int | None = None
    ) -> engine.CallMedia:
        return engine.CallMedia(NoStream(), self)  # type: ignore[arg-type]

    engine.MediaEngine.open = open_media  # type: ignore[method-assign]


async def serve(port: int) -> None:
    gc_clock = GcClock()
    ua = UserAgent("uas")

    def answer(call: Call) -> None:
        call.accept_now()

    ua.on("incoming_call", answer)
    local = await ua.listen("udp", "127.0.0.1", port)
    await serve_until_stopped(local.host, local.port)
    print(f"transport {ua.transport.counters}", flush=True)
    print(f"agent {ua.counters} {ua.resources()}", flush=True)
    print(f"gc {gc_clock}; cpu {time.process_time():.2f} s", flush=True)
    await ua.transport.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--profile", type=Path, help="write cProfile statistics here")
    parser.add_argument("--no-media", action="store_true", help="signalling only (NoStream)")
    add_loop_option(parser)
    args = parser.parse_args()
    if args.no_media:
        without_media()
    if args.profile is None:
        run(serve(args.port), loop=args.loop)
        return
    import cProfile

    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    try:
        run(serve(args.port), loop=args.loop)
    finally:
        profiler.disable()
        profiler.dump_stats(args.profile)


if __name__ == "__main__":
    main()
