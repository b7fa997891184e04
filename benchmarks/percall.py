"""CPU per call: what a UAS spends on one SIPp call, at a rate it carries comfortably.

SIPp plays ``benchmarks/data/uac_cps.xml`` (the call of ``benchmarks/cps.py``: INVITE with
an SDP offer, 200 with the answer, ACK, ``--hold-ms`` pause, BYE, 200) at ``--rate`` calls/s
for ``--calls`` calls against a freshly started UAS; the figure is the UAS process's CPU
time (``/proc/PID/stat`` utime + stime) over the run divided by the calls, in µs. Far below
capacity, the figure hardly depends on the machine's load the way a call rate does, so it
tracks the cost of a change to the UAS where ``cps.py`` needs many trials. The UASs are
interleaved per repeat and their medians compared in the same run.

    python benchmarks/percall.py                       # voip and aiosipua, 3 repeats
    python benchmarks/percall.py --only voip --repeats 5
    python benchmarks/percall.py --only voip --py-spy /tmp/uas.svg   # profile the UAS
    python benchmarks/percall.py --loop both    # each Python UAS on asyncio and on uvloop
    python benchmarks/percall.py --only voip,voip-nomedia,aiosipua   # and signalling alone

``--py-spy FILE`` records the UAS of the first run with py-spy (a flame graph, or
``--py-spy-format raw`` for collapsed stacks); ``--cprofile FILE`` runs the first voip UAS
under cProfile (CPU time) and writes its statistics there.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cps import (  # noqa: E402
    LOOP_CHOICES,
    SCENARIO,
    _cpu_seconds,
    runners_on_loops,
    start_uas,
)
from support.peers._process import LOOPBACK, start_peer  # noqa: E402
from support.peers.sipp import sipp_command  # noqa: E402


def run(
    runner: str,
    rate: int,
    calls: int,
    hold_ms: int,
    log_dir: Path,
    *,
    profile: Path | None = None,
    profile_format: str = "flamegraph",
    cprofile: Path | None = None,
) -> tuple[float, int, int]:
    """µs of UAS CPU per successful call, successful and failed calls."""
    voip = runner.startswith("voip")
    extra = ["--profile", str(cprofile)] if cprofile is not None and voip else []
    uas, port = start_uas(runner, log_dir, extra)
    spy = None
    if profile is not None:
        spy = subprocess.Popen(
            [
                *("py-spy", "record", "-r", "200", "-p", str(uas.pid), "-o", str(profile)),
                *("-f", profile_format, "--nonblocking"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)
    command = sipp_command(
        SCENARIO,
        (LOOPBACK, port),
        log_dir=log_dir,
        service="uas",
        calls=calls,
        rate=rate,
        duration_ms=hold_ms,
        timeout=calls / rate + 30,
        trace_messages=False,
    )
    before = _cpu_seconds(uas.pid)
    uac = start_peer("sipp-uac", command.argv, log_path=command.logs.stdout)
    try:
        while uac.alive():
            time.sleep(0.1)
        time.sleep(0.3)  # the last BYE's 200 and the UAS's own clean-up
        cpu = _cpu_seconds(uas.pid) - before
    finally:
        uac.stop(timeout=2.0)
        if spy is not None:
            spy.send_signal(2)
            spy.wait(timeout=30)
        uas.stop(timeout=3.0)
    stats = command.result(uac.popen.returncode or 0).stats
    ok = int(stats.get("SuccessfulCall(C)", "0") or 0)
    failed = int(stats.get("FailedCall(C)", "0") or 0)
    return (cpu / ok * 1e6 if ok else float("nan")), ok, failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=200, help="calls per second (200)")
    parser.add_argument("--calls", type=int, default=2000, help="calls per run (2000)")
    parser.add_argument("--hold-ms", type=int, default=100, help="pause before BYE (100)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="voip,aiosipua", help="UASs, comma-separated")
    parser.add_argument(
        "--loop", choices=LOOP_CHOICES, default="asyncio", help="of the Python UASs (asyncio)"
    )
    parser.add_argument("--py-spy", type=Path, help="profile the first run's UAS to FILE")
    parser.add_argument("--py-spy-format", default="flamegraph", help="flamegraph, raw, ...")
    parser.add_argument("--cprofile", type=Path, help="cProfile the first voip run to FILE")
    args = parser.parse_args()
    try:
        runners = runners_on_loops(
            [r.strip() for r in args.only.split(",") if r.strip()], args.loop
        )
    except ValueError as error:
        parser.error(str(error))
    log_dir = Path(tempfile.mkdtemp(prefix="voip-percall-"))
    print(
        f"percall: {args.calls} calls at {args.rate}/s, hold {args.hold_ms} ms, "
        f"{args.repeats} repeat(s); logs in {log_dir}",
        flush=True,
    )
    figures: dict[str, list[float]] = {runner: [] for runner in runners}
    for repeat in range(args.repeats):
        for runner in runners:
            profile = args.py_spy if repeat == 0 and runner == runners[0] else None
            us, ok, failed = run(
                runner,
                args.rate,
                args.calls,
                args.hold_ms,
                log_dir,
                profile=profile,
                profile_format=args.py_spy_format,
                cprofile=args.cprofile if repeat == 0 else None,
            )
            figures[runner].append(us)
            print(
                f"repeat {repeat + 1}: {runner:15} {us:7.0f} µs/call ({ok} ok, {failed} failed)",
                flush=True,
            )
    medians = {runner: statistics.median(values) for runner, values in figures.items()}
    for runner, median in medians.items():
        print(f"{runner:15} median {median:7.0f} µs/call")
    for suffix in ("", "+uvloop"):  # each UAS against the other on the same loop only
        aiosipua = "aiosipua" + suffix
        for voip in ("voip" + suffix, "voip-nomedia" + suffix):
            if voip in medians and aiosipua in medians:
                ratio = medians[aiosipua] / medians[voip]
                print(f"{aiosipua} / {voip} CPU per call: {ratio:.2f} (≥ 2 for issue 3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
