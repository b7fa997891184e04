"""Calls per second: the highest rate a UAS carries with 0 failed calls, under SIPp.

SIPp (sip-tester) is the UAC and plays ``benchmarks/data/uac_cps.xml`` (the basic call of
``tests/support/peers/sipp/uac_call.xml`` without authentication, each 200 tied to its
request): INVITE with an SDP offer, 100/180 (optional), 200 with the answer, ACK, a pause
(``--hold-ms``), BYE, 200. No media. Three UASs answer, each in a process of its own on 127.0.0.1:

- ``voip``: this toolkit's ``UserAgent`` answering every call at once
  (``benchmarks/uas_voip.py``);
- ``sipp``: SIPp's own UAS (``sipp -sn uas``), the reference ceiling;
- ``aiosipua``: aiosipua's ``SipUAS`` (PyPI aiosipua 0.7.1, ``benchmarks/uas_aiosipua.py``).

``--only voip,voip-nomedia,aiosipua`` adds ``voip-nomedia``: the toolkit's UAS with each
call's RTP stream replaced by a stand-in that opens no port and sends nothing
(``uas_voip.py --no-media``), which prices the signalling alone, the work aiosipua's UAS does.

The two Python UASs run on asyncio's own loop; ``--loop uvloop`` runs both on uvloop
(``voip+uvloop``, ``aiosipua+uvloop``: the ``uvloop`` extra), ``--loop both`` each on
both, and the ratios printed compare UASs on the same loop only.

Both Python UASs set up the garbage collector as a long-running server would, alike
(``voip.eventloop.settle_collector``; ``UAS_DEFAULT_GC=1`` keeps CPython's settings).

A *trial* runs SIPp at ``-r RATE`` for ``--duration`` seconds (``-m RATE*duration`` calls)
against a freshly started UAS. It passes when SIPp exits 0 with every call successful,
0 failed (failed includes timeouts, unexpected messages and too many retransmissions), and
SIPp created the calls at 95 % of the target rate or more. SIPp's open-call limit ``-l`` is
``RATE * (hold + 1 s)``: a UAS that falls behind by a second throttles SIPp and fails the
rate criterion. The creation rate is read from SIPp's statistics, dumped every 100 ms: the
calls created by the last dump before all were, over the time since the start; the calls
still finishing after the last was created do not count against it. A trial is stopped
as soon as SIPp counts a failed call.

``--strict`` also fails a trial in which SIPp retransmitted anything: a UAS that answers
a request more than T1 (500 ms) late passes the plain criterion as long as it answers at
all, while one that sheds load, as the toolkit's does once 500 ms behind (503 with
Retry-After, RFC 3261 §21.5.4), fails it. The strict figure compares UASs at the rate
each still answers in time.

The *search* per UAS doubles the rate from ``--start`` until a trial fails, then bisects
(geometric mean) between the highest pass and the lowest failure until they are within
``--precision``; the figure is the highest rate that passed. Later repeats start just
below the first figure and step by 20 %. Repeats are interleaved across the UASs, so the
machine's speed swings hit them alike; the figures printed are medians, and the ratios
compare medians measured in this one run. The UAS CPU column is the UAS process's CPU
time over the trial at its figure, in % of one core.

    python benchmarks/cps.py              # 3 repeats, 5 s trials, 10 % precision
    python benchmarks/cps.py --quick      # 1 repeat, 2 s trials, 20 % precision
    python benchmarks/cps.py --only voip  # one UAS
    python benchmarks/cps.py --loop both  # the Python UASs on asyncio and on uvloop
    python benchmarks/cps.py --json       # machine-readable results on stdout
    python benchmarks/cps.py --strict     # a pass also needs 0 retransmissions

aiosipua comes from the project's ``bench`` extra: ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))

from support.peers._process import (  # noqa: E402
    LOOPBACK,
    PeerProcess,
    free_port,
    free_port_range,
    port_in_use,
    start_peer,
)
from support.peers.sipp import read_stat_rows, sipp_command  # noqa: E402

SCENARIO = HERE / "data" / "uac_cps.xml"
RUNNERS = ("voip", "sipp", "aiosipua")
#: run when named: the toolkit's UAS with no RTP stream (uas_voip.py --no-media)
OPTIONAL_RUNNERS = ("voip-nomedia",)
#: the UASs written in Python, which run on the loop asked for ("voip+uvloop": on uvloop)
PYTHON_RUNNERS = ("voip", "voip-nomedia", "aiosipua")
LOOP_CHOICES = ("asyncio", "uvloop", "both")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- one UAS process ---------------------------------------------------------------------


def runners_on_loops(names: Sequence[str], loop: str) -> list[str]:
    """The UASs to run: each Python one on asyncio, on uvloop (``NAME+uvloop``) or both,
    as ``loop`` says, unless its name says which."""
    suffixes = {"asyncio": ("",), "uvloop": ("+uvloop",), "both": ("", "+uvloop")}[loop]
    known = (*RUNNERS, *OPTIONAL_RUNNERS)
    chosen: list[str] = []
    for name in names:
        base, plus, named_loop = name.partition("+")
        if base not in known or (plus and (base not in PYTHON_RUNNERS or named_loop != "uvloop")):
            raise ValueError(f"unknown UAS {name!r}; known: {', '.join(known)} (+uvloop)")
        variants = [name] if plus or base not in PYTHON_RUNNERS else [base + s for s in suffixes]
        chosen.extend(v for v in variants if v not in chosen)
    return chosen


def same_loop_ratios(medians: Mapping[str, float]) -> dict[str, float]:
    """voip / aiosipua, voip / sipp and aiosipua / sipp (and voip-nomedia's, when it ran),
    each Python UAS against the other on the same loop only (SIPp has none)."""
    ratios: dict[str, float] = {}
    pairs = (
        ("voip", "aiosipua"),
        ("voip-nomedia", "aiosipua"),
        ("voip", "sipp"),
        ("voip-nomedia", "sipp"),
        ("aiosipua", "sipp"),
    )
    for suffix in ("", "+uvloop"):
        for a, b in pairs:
            a, b = a + suffix, (b + suffix if b in PYTHON_RUNNERS else b)
            if a in medians and b in medians and medians[b]:
                ratios[f"{a}/{b}"] = medians[a] / medians[b]
    return ratios


def _uas_argv(runner: str, port: int, media_port: int, extra: Sequence[str] = ()) -> list[str]:
    runner, _, loop = runner.partition("+")
    on_loop = ["--loop", loop] if loop else []
    if runner in ("voip", "voip-nomedia"):
        no_media = ["--no-media"] if runner == "voip-nomedia" else []
        return [sys.executable, str(HERE / "uas_voip.py"), str(port), *extra, *no_media, *on_loop]
    if runner == "aiosipua":
        return [sys.executable, str(HERE / "uas_aiosipua.py"), str(port), *on_loop]
    if runner == "sipp":
        argv = ["sipp", "-sn", "uas", "-i", LOOPBACK, "-p", str(port)]
        argv += ["-mi", LOOPBACK, "-mp", str(media_port), "-cp", str(free_port("udp"))]
        argv += ["-nostdin", "-buff_size", "4194304"]
        return argv
    raise ValueError(f"unknown UAS {runner!r}")


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process (``/proc/PID/stat`` fields 14 and 15)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def start_uas(runner: str, log_dir: Path, extra: Sequence[str] = ()) -> tuple[PeerProcess, int]:
    """A UAS process listening on a free port; ``extra``: more arguments of uas_voip.py."""
    port = free_port("udp")
    process = start_peer(
        f"uas-{runner}",
        _uas_argv(runner, port, free_port_range(4), extra),
        log_path=log_dir / f"uas-{runner}.log",
    )
    deadline = time.monotonic() + 20.0
    while not port_in_use(port, "udp"):
        if not process.alive() or time.monotonic() > deadline:
            process.stop()
            raise RuntimeError(f"the {runner} UAS did not start\n{process.log_tail(30)}")
        time.sleep(0.05)
    time.sleep(0.2)  # bound is not quite listening: let it reach its loop
    return process, port


# --- one trial ---------------------------------------------------------------------------


@dataclass(slots=True)
class Trial:
    runner: str
    rate: int
    calls: int
    passed: bool
    successful: int = 0
    failed: int = 0
    retransmissions: int = 0
    achieved: float = 0.0
    uas_cpu: float = 0.0  # % of one core over the trial
    note: str = ""


def _int(stats: Mapping[str, str], column: str) -> int:
    value = stats.get(column, "0").strip()
    return int(value) if value.isdigit() else 0


def _epoch(value: str) -> float:
    """A sipp time column: "date<TAB>time<TAB>epoch"."""
    try:
        return float(value.rsplit("\t", maxsplit=1)[-1])
    except ValueError:
        return 0.0


def creation_rate(stats_csv: Path, calls: int) -> float:
    """Calls per second SIPp created, from its ``-trace_stat`` rows: those created by the
    last row before all ``calls`` were, over that row's time since the start (the first row
    with all of them when no earlier row has any). What happens after the last call was
    created (the slowest calls finishing) is not the rate at which calls were offered."""
    chosen = None
    for row in read_stat_rows(stats_csv):
        created = _int(row, "TotalCallCreated")
        if created and (chosen is None or created < calls):
            chosen = row
        if created >= calls:
            break
    if chosen is None:
        return 0.0
    span = _epoch(chosen.get("CurrentTime", "")) - _epoch(chosen.get("StartTime", ""))
    return _int(chosen, "TotalCallCreated") / span if span > 0 else 0.0


def run_trial(runner: str, rate: int, options: Options) -> Trial:
    """One trial; again (with other free ports) when a port picked was taken meanwhile
    by another program on the machine, before SIPp placed any call."""
    for attempt in range(3):
        try:
            return _run_trial(runner, rate, options)
        except NoCallPlaced:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


class NoCallPlaced(RuntimeError):
    """SIPp ended without placing a call (a port clash, a bad command line)."""


def _run_trial(runner: str, rate: int, options: Options) -> Trial:
    calls = max(1, round(rate * options.duration))
    uas, port = start_uas(runner, options.log_dir)
    hold = options.hold_ms / 1000
    command = sipp_command(
        SCENARIO,
        (LOOPBACK, port),
        log_dir=options.log_dir,
        service="uas",
        calls=calls,
        rate=rate,
        duration_ms=options.hold_ms,
        timeout=options.duration + 40,
        trace_messages=False,
        extra_args=["-l", str(max(10, math.ceil(rate * (hold + 1.0)))), "-fd", "100ms"],
    )
    cpu_before = _cpu_seconds(uas.pid)
    started = time.monotonic()
    uac = start_peer("sipp-uac", command.argv, log_path=command.logs.stdout)
    note = ""
    try:
        deadline = started + options.duration + 45
        while uac.alive():
            time.sleep(0.25)
            stats = command.result(0).stats
            if _int(stats, "FailedCall(C)") > 0:
                note = "stopped at the first failed call"
                break
            if time.monotonic() > deadline:
                note = "did not finish in time"
                break
        returncode = uac.stop(timeout=2.0) if uac.alive() else uac.popen.returncode
    finally:
        elapsed = time.monotonic() - started
        cpu = _cpu_seconds(uas.pid) - cpu_before
        uac.stop(timeout=2.0)
        uas.stop(timeout=3.0)
    stats = command.result(returncode or 0).stats
    if not stats or _int(stats, "TotalCallCreated") == 0:
        raise NoCallPlaced(
            f"sipp placed no call: {' '.join(command.argv)}\n"
            + "\n".join(command.logs.stdout.read_text(errors="replace").splitlines()[-10:])
        )
    successful = _int(stats, "SuccessfulCall(C)")
    failed = _int(stats, "FailedCall(C)")
    achieved = creation_rate(command.logs.stats, calls)
    retransmissions = _int(stats, "Retransmissions(C)")
    passed = (
        not note
        and returncode == 0
        and failed == 0
        and successful == calls
        and achieved >= 0.95 * rate
        and not (options.strict and retransmissions)
    )
    if not passed and not note:
        if returncode:
            note = f"exit {returncode}"
        elif achieved < 0.95 * rate:
            note = f"achieved {achieved:.0f}/s"
        else:
            note = "retransmitted (--strict)"
    return Trial(
        runner,
        rate,
        calls,
        passed,
        successful,
        failed,
        retransmissions,
        achieved,
        100 * cpu / elapsed if elapsed > 0 else 0.0,
        note,
    )


# --- the search --------------------------------------------------------------------------


@dataclass(slots=True)
class Search:
    runner: str
    figure: int  # highest rate passed (0: none)
    capped: bool  # the cap passed: the figure is a lower bound
    best: Trial | None
    trials: list[Trial] = field(default_factory=list)


def search(
    runner: str,
    options: Options,
    start: int,
    factor: float,
    report: Callable[[Trial], None],
) -> Search:
    trials: list[Trial] = []
    passed: dict[int, Trial] = {}
    failed: set[int] = set()

    def trial(rate: int) -> bool:
        result = run_trial(runner, rate, options)
        trials.append(result)
        report(result)
        if result.passed:
            passed[rate] = result
        else:
            failed.add(rate)
        return result.passed

    rate = max(options.min_rate, min(start, options.max_rate))
    if trial(rate):  # up until a failure (or the cap)
        while rate < options.max_rate:
            rate = min(options.max_rate, math.ceil(rate * factor))
            if not trial(rate):
                break
    else:  # down until a pass (or the floor)
        while rate > options.min_rate:
            rate = max(options.min_rate, math.floor(rate / factor))
            if trial(rate):
                break
    while passed and failed:
        low = max(passed)
        high = min(r for r in failed if r > low) if any(r > low for r in failed) else 0
        if not high or high / low <= 1 + options.precision:
            break
        trial(round(math.sqrt(low * high)))
    figure = max(passed, default=0)
    capped = figure >= options.max_rate
    return Search(runner, figure, capped, passed.get(figure), trials)


# --- the run -----------------------------------------------------------------------------


@dataclass(slots=True)
class Options:
    duration: float
    hold_ms: int
    precision: float
    repeats: int
    start: int
    min_rate: int
    max_rate: int
    log_dir: Path
    #: a pass also needs SIPp to have retransmitted nothing (every answer within T1)
    strict: bool = False


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _sipp_version() -> str:
    try:
        out = subprocess.run(
            ["sipp", "-v"], capture_output=True, text=True, timeout=5, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "?"
    for line in out.splitlines():
        if "SIPp v" in line:
            return line.strip().split()[1].rstrip(",")
    return "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 repeat, 2 s trials, 20 %%")
    parser.add_argument("--repeats", type=int, help="searches per UAS (default 3)")
    parser.add_argument("--duration", type=float, help="seconds of calls per trial (default 5)")
    parser.add_argument("--hold-ms", type=int, default=100, help="pause before BYE (100)")
    parser.add_argument("--precision", type=float, help="bisect until within this (0.1)")
    parser.add_argument("--start", type=int, default=250, help="first rate tried (250)")
    parser.add_argument("--max-rate", type=int, default=12000, help="highest rate tried")
    parser.add_argument("--only", default=",".join(RUNNERS), help="UASs, comma-separated")
    parser.add_argument(
        "--loop", choices=LOOP_CHOICES, default="asyncio", help="of the Python UASs (asyncio)"
    )
    parser.add_argument(
        "--strict", action="store_true", help="a pass also needs 0 retransmissions by SIPp"
    )
    parser.add_argument("--log-dir", type=Path, help="keep the logs here")
    parser.add_argument("--json", action="store_true", help="results as JSON on stdout")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every trial")
    args = parser.parse_args()
    try:
        named = [r.strip() for r in args.only.split(",") if r.strip()]
        runners = runners_on_loops(named, args.loop)
    except ValueError as error:
        parser.error(str(error))
    if any("+uvloop" in r for r in runners) and _version("uvloop") == "not installed":
        parser.error("uvloop is not installed: pip install -e '.[uvloop]'")
    if any(r.startswith("aiosipua") for r in runners) and _version("aiosipua") == "not installed":
        parser.error("aiosipua is not installed: pip install -e '.[bench]'")
    if shutil.which("sipp") is None:
        parser.error("sipp is not installed: run scripts/setup")
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="voip-cps-"))
    options = Options(
        duration=args.duration or (2.0 if args.quick else 5.0),
        hold_ms=args.hold_ms,
        precision=args.precision or (0.2 if args.quick else 0.1),
        repeats=args.repeats or (1 if args.quick else 3),
        start=args.start,
        min_rate=10,
        max_rate=args.max_rate,
        log_dir=log_dir,
        strict=args.strict,
    )
    out = sys.stderr if args.json else sys.stdout

    def report(trial: Trial) -> None:
        if args.verbose or args.json:
            verdict = "pass" if trial.passed else "FAIL"
            print(
                f"  {trial.runner:15} {trial.rate:6}/s {verdict}  ok {trial.successful}/"
                f"{trial.calls} failed {trial.failed} retrans {trial.retransmissions} "
                f"achieved {trial.achieved:.0f}/s uas cpu {trial.uas_cpu:.0f}% {trial.note}",
                file=out,
                flush=True,
            )

    print(
        f"cps: SIPp {_sipp_version()} UAC, {SCENARIO.name}, hold {options.hold_ms} ms, "
        f"{options.duration:g} s trials, {options.repeats} repeat(s), "
        f"precision {options.precision:.0%}{', strict' if options.strict else ''}; "
        f"{platform.python_implementation()} "
        f"{platform.python_version()}, aiosipua {_version('aiosipua')}, "
        f"uvloop {_version('uvloop')}, "
        f"{os.cpu_count()} CPUs; logs in {log_dir}",
        file=out,
        flush=True,
    )
    began = time.monotonic()
    results: dict[str, list[Search]] = {runner: [] for runner in runners}
    for repeat in range(options.repeats):
        for runner in runners:
            done = results[runner]
            if done and done[0].figure:
                start, factor = max(options.min_rate, round(done[0].figure * 0.85)), 1.2
            else:
                start, factor = options.start, 2.0
            found = search(runner, options, start, factor, report)
            done.append(found)
            best = found.best
            cpu = f", UAS CPU {best.uas_cpu:.0f}%" if best else ""
            print(
                f"repeat {repeat + 1}: {runner:15} {found.figure:6} calls/s"
                f"{' (cap)' if found.capped else ''} ({len(found.trials)} trials{cpu})",
                file=out,
                flush=True,
            )
    medians = {r: statistics.median(s.figure for s in results[r]) for r in runners}
    print(file=out)
    print(f"{'UAS':16} {'calls/s':>8}  {'runs':24} {'UAS CPU':>8}", file=out)
    for runner in runners:
        figures = ", ".join(str(s.figure) for s in results[runner])
        cpus = [s.best.uas_cpu for s in results[runner] if s.best]
        cpu = f"{statistics.median(cpus):.0f}%" if cpus else "-"
        print(f"{runner:16} {medians[runner]:8.0f}  {figures:24} {cpu:>8}", file=out)
    ratios = same_loop_ratios(medians)
    for pair, ratio in ratios.items():
        print(f"{pair.replace('/', ' / ')}: {ratio:.2f}", file=out)
    print(f"({time.monotonic() - began:.0f} s)", file=out)
    if args.json:
        json.dump(
            {
                "options": {k: str(v) for k, v in asdict(options).items()},
                "medians": medians,
                "ratios": ratios,
                "searches": {r: [asdict(s) for s in results[r]] for r in runners},
            },
            sys.stdout,
            indent=2,
        )
        print()
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        sys.exit(main())
