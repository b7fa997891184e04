"""Concurrent full-duplex G.711 calls one process carries, against a task-per-stream baseline.

Each *call* is one RTP stream of 20 ms PCMU packets (50 packets/s) sent to an echo process
(another process on 127.0.0.1 sending every datagram back: ``media_echo.c`` built with the
C compiler when there is one, reading and sending in batches, else a Python loop), so the
process under test sends 50 and receives 50 packets/s per call. The C echo polls its socket
(every 0.2 ms) instead of sleeping on it: on loopback a sender pays, inside its ``sendto``,
for waking a receiver asleep on its socket, which the far ends of real calls, on other
machines, never cost it (a sixth of the CPU per packet, and wake-ups interleaved with the
sending; both modes run against the same echo). Two senders take turns:

- ``voip``: this toolkit's :class:`voip.rtp.MediaStream` on one :class:`MediaClock` and one
  :class:`SocketPoller`, as :class:`voip.rtp.MediaEngine` runs them (one timer for every
  stream, absolute deadlines, jitter buffer, G.711 decode and playout every period);
- ``tasks``: the usual asyncio shape, one task per stream sleeping until its next absolute
  deadline, G.711 encode with audioop and aiortc's ``RtpPacket``, received through a stock
  ``DatagramProtocol`` per stream and parsed and decoded.

A *trial* runs N calls for ``--duration`` seconds (started spread over one packet time, as
real calls are; the toolkit's clock puts them on its 5 ms phase grid), with the garbage
collector as a long-running agent has it once it is up (``voip.eventloop.settle_collector``,
as ``voip serve`` does; both modes alike, undone after each trial): with CPython's
settings a full collection walks every stream's objects, a pause of up to 60 ms at 1,000
calls that no sender on one event loop can hide. The send interval
of a packet is the time between the return of its ``sendto`` and that of the stream's
previous packet: the sender's times, not the arrival times at the echo or back here,
because the issue's measure is the regularity of sending, which the sender alone decides
(on loopback a datagram reaches the echo within microseconds of ``sendto``; arrival times
back here would add the echo's batching and this process's own reading, a receive-side
delay the jitter buffer absorbs). A trial passes when the p99 of |send interval - 20 ms|
over every packet of every stream is under 2 ms and no packet is lost on the way back
(RFC 3550 A.3 per stream). A trial that fails is run once more (printed as ``again``) and
the number of calls passes if either does: on a shared machine a burst of the neighbours'
or the hypervisor's fails one trial at any load, where an overload fails both. The search
doubles N from ``--start`` until N fails (halves it down to 10 when the first fails), then
bisects to 10 %.

The machine's own floor is measured the same way and printed beside: the p99 send-interval
deviation of four do-nothing 20 ms members of the toolkit's media clock on an idle loop
(once per repeat), and, during every trial, that of a bare process sleeping to absolute
deadlines (the *probe*: no event loop, no work, nanosleep precision). On a shared virtual
machine both are often above 2 ms (other programs and the hypervisor, ``steal``, take the
CPU for milliseconds at a time), and then no mode can pass, whatever it does; so each mode
is also searched by the criterion *relative* to the machine: p99 below the probe's p99 of
the same trial + 2 ms, no loss. Each toolkit trial also prints how late the media clock's
wake-ups came (timerfd and loop) and how long its rounds of serving took (the work and
whatever preempted it), as p99s, to tell where the lateness comes from.

Also printed: CPU µs per packet (process time, user + system, over packets sent and
received; the user part alone: the system part is mostly the loopback ``sendto``, which on
loopback also runs the echo's receive path) of each mode carrying ``--cpu-calls`` calls,
and the calls one core could carry at that cost; and the toolkit's send and receive paths
timed alone (CPU µs per packet). CPU time is the robust figure on a shared machine.

    python benchmarks/media.py            # 3 repeats, 8 s trials
    python benchmarks/media.py --quick    # 1 repeat, 4 s trials
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from aiortc.rtp import RtpPacket  # noqa: E402

from sdp import Codec, Direction, NegotiatedMedia  # noqa: E402
from voip.eventloop import settle_collector  # noqa: E402
from voip.rtp import MediaClock, MediaStream, PortAllocator, ReceivedSource, RtpPorts  # noqa: E402
from voip.rtp.poller import SocketPoller  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

PTIME = 0.02
DEVIATION_LIMIT = 0.002
MIN_CALLS = 10
BUFFER = 1 << 22


# --- the echo process ------------------------------------------------------------------------


def start_echo(directory: str) -> tuple[subprocess.Popen[str], str]:
    """The echo process: the C one when it builds, else this script's Python loop."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler:
        binary = os.path.join(directory, "media_echo")
        built = subprocess.run(
            [compiler, "-O2", "-o", binary, str(Path(__file__).with_name("media_echo.c"))],
            capture_output=True,
            check=False,
        )
        if built.returncode == 0:
            process = subprocess.Popen([binary, "0"], stdout=subprocess.PIPE, text=True)
            return process, "C, recvmmsg/sendmmsg, polling every 0.2 ms"
    command = [sys.executable, __file__, "--echo", "0"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True), "Python"


def echo(port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        sock.setsockopt(socket.SOL_SOCKET, option, BUFFER)
    sock.bind(("127.0.0.1", port))
    print(sock.getsockname()[1], flush=True)
    recvfrom, sendto = sock.recvfrom, sock.sendto
    while True:
        data, address = recvfrom(2048)
        sendto(data, address)


# --- the toolkit ------------------------------------------------------------------------------


class TimedClock(MediaClock):
    """A MediaClock that notes how late each of its wake-ups came (the timerfd and the
    loop: the time from the deadline it was armed for to the start of the round) and how
    long each round of serving took (the work)."""

    __slots__ = ("lateness", "rounds")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.lateness: list[float] = []
        self.rounds: list[float] = []

    def _fire(self) -> None:
        armed, begin = self._when, self.loop.time()
        super()._fire()
        if armed != math.inf:
            self.lateness.append(begin - armed)
            self.rounds.append(self.loop.time() - begin)


class TimedSocket(socket.socket):
    """A stream's RTP socket that notes when each of its ``sendto`` or ``send`` returned.

    The times are taken at the socket, not by a Python subclass of the (compiled)
    :class:`MediaStream`: an instance of an interpreted subclass has every method call of
    the compiled class looked up in Python, which cost the stream a sixth of its CPU."""

    __slots__ = ("sent_at",)

    def sendto(self, data: bytes, address: tuple[str, int]) -> int:  # type: ignore[override]
        sent = _SENDTO(self, data, address)
        self.sent_at.append(time.perf_counter())
        return sent

    def send(self, data: bytes, flags: int = 0) -> int:  # type: ignore[override]
        # a stream whose socket is connected to its peer (voip.rtp.poller) sends so
        sent = _SEND(self, data, flags)
        self.sent_at.append(time.perf_counter())
        return sent


_SENDTO = socket.socket.sendto
_SEND = socket.socket.send


def _timed(ports: RtpPorts) -> RtpPorts:
    """``ports`` with its RTP socket replaced by a :class:`TimedSocket` on the same port."""
    plain = ports.rtp
    timed = TimedSocket(plain.family, plain.type, plain.proto, fileno=plain.detach())
    timed.sent_at = []
    ports.rtp = timed
    return ports


def _sent_at(stream: MediaStream) -> list[float]:
    rtp = stream.ports.rtp
    return rtp.sent_at if isinstance(rtp, TimedSocket) else []


def _negotiated(port: int) -> NegotiatedMedia:
    return NegotiatedMedia(
        index=0,
        media="audio",
        accepted=True,
        proto="RTP/AVP",
        codecs=(Codec("PCMU", 8000, payload_type=0),),
        direction=Direction.SENDRECV,
        remote_address="127.0.0.1",
        remote_port=port,
        ptime=20,
    )


async def trial_voip(calls: int, seconds: float, echo_port: int) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    clock = TimedClock(loop)
    poller = SocketPoller(loop)
    allocator = PortAllocator(30000, 30000 + 4 * calls + 400)
    streams = [
        MediaStream(_timed(allocator.allocate()), clock, inactivity_timeout=0, poller=poller)
        for _ in range(calls)
    ]
    for stream in streams:
        stream.rtcp.min_interval = 1e9  # RTCP would go to the echo port + 1: none
    with _collector_settled():
        cpu, steal = os.times(), _steal()
        for i, stream in enumerate(streams):
            loop.call_later(PTIME * i / calls, stream.configure, _negotiated(echo_port))
        await asyncio.sleep(seconds)
        for stream in streams:
            stream.hold()
        await asyncio.sleep(0.3)
        cpu, steal = _since(cpu), steal.since()
    intervals = [b - a for s in streams for a, b in itertools.pairwise(_sent_at(s))]
    lost = sum(max(0, s.source.lost) if s.source else len(_sent_at(s)) for s in streams)
    sent = sum(s.stats.packets_sent for s in streams)
    timed = sum(len(_sent_at(s)) for s in streams)
    if timed != sent:  # every packet's send time is in the measure, or it means nothing
        raise RuntimeError(f"{sent} packets sent, {timed} of them timed")
    received = sum(s.stats.packets_received for s in streams)
    skipped = sum(s.stats.skipped for s in streams)
    for stream in streams:
        stream.close(bye=False)
    clock.close()
    poller.close()
    result = _result(intervals, lost, sent, received, cpu, steal, skipped=skipped)
    result["wake_p99_ms"] = _p99(clock.lateness) * 1000
    result["round_p99_ms"] = _p99(clock.rounds) * 1000
    return result


# --- the baseline: one task per stream -------------------------------------------------------


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.source: ReceivedSource | None = None
        self.received = 0

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        packet = RtpPacket.parse(data)
        audioop.ulaw2lin(packet.payload, 2)
        if self.source is None:
            self.source = ReceivedSource.first(packet.ssrc, 8000, packet.sequence_number)
        self.source.update_seq(packet.sequence_number)
        self.received += 1


async def _task_stream(
    transport: asyncio.DatagramTransport, start: float, stop: float, sent_at: list[float]
) -> None:
    loop = asyncio.get_running_loop()
    silence = bytes(320)
    seq, timestamp, n = 0, 0, 0
    while True:
        deadline = start + n * PTIME
        if deadline >= stop:
            return
        delay = deadline - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        payload = audioop.lin2ulaw(silence, 2)
        transport.sendto(RtpPacket(0, 0, seq, timestamp, 1234, payload).serialize())
        sent_at.append(time.perf_counter())
        seq = (seq + 1) & 0xFFFF
        timestamp = (timestamp + 160) & 0xFFFFFFFF
        n += 1


async def trial_tasks(calls: int, seconds: float, echo_port: int) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    endpoints = []
    for _ in range(calls):
        transport, protocol = await loop.create_datagram_endpoint(
            _Receiver, local_addr=("127.0.0.1", 0), remote_addr=("127.0.0.1", echo_port)
        )
        endpoints.append((transport, protocol))
    with _collector_settled():
        cpu, steal = os.times(), _steal()
        now = loop.time()
        sent_at: list[list[float]] = [[] for _ in range(calls)]
        tasks = [
            asyncio.create_task(_task_stream(t, now + PTIME * i / calls, now + seconds, sent_at[i]))
            for i, (t, _) in enumerate(endpoints)
        ]
        await asyncio.gather(*tasks)
        await asyncio.sleep(0.3)
        cpu, steal = _since(cpu), steal.since()
    intervals = [b - a for s in sent_at for a, b in itertools.pairwise(s)]
    lost = sum(
        max(0, p.source.lost) if p.source else len(s)
        for (_, p), s in zip(endpoints, sent_at, strict=True)
    )
    sent = sum(len(s) for s in sent_at)
    received = sum(p.received for _, p in endpoints)
    for transport, _ in endpoints:
        transport.close()
    return _result(intervals, lost, sent, received, cpu, steal, skipped=0)


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(0.99 * (len(ordered) - 1))] if ordered else math.inf


def _since(before: os.times_result) -> tuple[float, float]:
    """User and system CPU seconds of this process since ``before``."""
    now = os.times()
    return now.user - before.user, now.system - before.system


class _Steal:
    """The share of the machine's CPU time its hypervisor gave to others (``steal`` in
    /proc/stat): time this virtual machine wanted to run and did not."""

    def __init__(self) -> None:
        self.before = self._read()

    @staticmethod
    def _read() -> list[int]:
        try:
            with open("/proc/stat", encoding="ascii") as stat:
                return [int(field) for field in stat.readline().split()[1:9]]
        except (OSError, ValueError):
            return []

    def since(self) -> float:
        after = self._read()
        if len(after) < 8 or len(self.before) < 8:
            return math.nan
        spent = [b - a for a, b in zip(self.before, after, strict=True)]
        return 100 * spent[7] / max(1, sum(spent))


def _steal() -> _Steal:
    return _Steal()


def _result(  # noqa: PLR0917
    intervals: list[float],
    lost: int,
    sent: int,
    received: int,
    cpu: tuple[float, float],
    steal: float,
    *,
    skipped: int,
) -> dict[str, float]:
    p99 = _p99([abs(i - PTIME) for i in intervals])
    packets = max(1, sent + received)
    return {
        "p99_ms": p99 * 1000,
        "lost": lost,
        "sent": sent,
        "received": received,
        "us_per_packet": sum(cpu) * 1e6 / packets,
        "user_us": cpu[0] * 1e6 / packets,
        "system_us": cpu[1] * 1e6 / packets,
        "steal": steal,
        "skipped": skipped,
        "passed": float(p99 < DEVIATION_LIMIT and lost == 0 and sent > 0),
    }


# --- the search ------------------------------------------------------------------------------


#: a bare process, no event loop, sleeping to absolute deadlines every 5 ms (nanosleep, to
#: the microsecond, as precise as the toolkit's timerfd), run beside each trial: the
#: deviation of w[n+4] - w[n] from 20 ms is the send-interval deviation of four 20 ms
#: streams that do no work at all, the floor the machine sets at that moment
PROBE = """
import sys, time
period, n = 0.005, int(float(sys.argv[1]) / 0.005)
start, woke = time.monotonic() + 0.02, []
for i in range(n):
    delay = start + i * period - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    woke.append(time.monotonic())
deviations = sorted(abs(b - a - 4 * period) for a, b in zip(woke, woke[4:]))
print(deviations[int(0.99 * (len(deviations) - 1))] * 1000)
"""


#: the probe's p99 of every trial run: the machine's floor, printed at the end
PROBES: list[float] = []


@contextlib.contextmanager
def _collector_settled() -> Iterator[None]:
    """The garbage collector as a long-running agent has it once it is up
    (:func:`voip.eventloop.settle_collector`, what ``voip serve`` does), in both modes: what
    exists goes to the permanent generation, which no collection walks again. With CPython's
    settings a full collection walked every stream's objects (and the trial's records of
    its send times) in a pause of up to 60 ms, which put every stream of the trial two
    periods behind. Undone after the trial, so that one trial's objects do not outlive it."""
    before = gc.get_threshold()
    settle_collector()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
        gc.collect()


def run_trial(mode: str, calls: int, seconds: float, echo_port: int) -> dict[str, float]:
    trial = trial_voip if mode == "voip" else trial_tasks
    probe = subprocess.Popen(
        [sys.executable, "-c", PROBE, str(seconds)], stdout=subprocess.PIPE, text=True
    )
    result = asyncio.run(trial(calls, seconds, echo_port))
    floor = float(probe.communicate(timeout=seconds + 60)[0])
    result["probe_p99_ms"] = floor
    PROBES.append(floor)
    result["relative"] = float(
        result["p99_ms"] - floor < DEVIATION_LIMIT * 1000 and result["lost"] == 0
    )
    return result


Trial = Callable[[int], dict[str, float]]


def search(trial: Trial, start: int, criterion: str) -> int:
    """The most calls that pass ``criterion``: doubling from ``start`` until a trial fails
    (halving down to ``MIN_CALLS`` when the first fails), then bisecting to 10 %."""
    best, failed = 0, None
    calls = start
    while True:
        if trial(calls)[criterion]:
            best = calls
            if failed is not None:
                break
            calls *= 2
        else:
            failed = calls
            if best or calls // 2 < MIN_CALLS:
                break
            calls //= 2
    while failed is not None and failed / max(best, 1) > 1.1 and best:
        calls = round(math.sqrt(best * failed))
        if trial(calls)[criterion]:
            best = calls
        else:
            failed = calls
    return best


def capacity(mode: str, start: int, seconds: float, echo_port: int) -> tuple[int, int]:
    """The most calls ``mode`` carries by the issue's criterion (p99 deviation < 2 ms, no
    loss) and by the criterion relative to the machine (p99 deviation < the probe's p99 +
    2 ms, no loss), searched with the same trials where they coincide. A number of calls
    that failed twice bounds the search, even if a larger one passed (the noise of a shared
    machine can pass a trial as well as fail one)."""
    done: dict[int, dict[str, float]] = {}

    def trial(calls: int) -> dict[str, float]:
        if calls not in done:
            result = done[calls] = run_trial(mode, calls, seconds, echo_port)
            _print_trial(mode, calls, result)
            if not (result["passed"] and result["relative"]):
                # a failure is confirmed by a second trial: on a shared machine a burst of
                # the neighbours' or the hypervisor's fails one trial at any load, where an
                # overload fails every one
                again = run_trial(mode, calls, seconds, echo_port)
                _print_trial(mode, calls, again, again=True)
                for criterion in ("passed", "relative"):
                    result[criterion] = max(result[criterion], again[criterion])
        return done[calls]

    relative = search(trial, start, "relative")
    return search(trial, start, "passed"), relative


def _print_trial(mode: str, calls: int, r: dict[str, float], *, again: bool = False) -> None:
    verdict = "pass" if r["passed"] else "FAIL"
    relative = "pass" if r["relative"] else "FAIL"
    clock = ""
    if "wake_p99_ms" in r:
        clock = f" (clock wake-up late {r['wake_p99_ms']:.2f}, round {r['round_p99_ms']:.2f})"
    print(
        f"  {'again' if again else mode:5} {calls:5d} calls: p99 dev {r['p99_ms']:6.2f} ms{clock}, "
        f"probe {r['probe_p99_ms']:5.2f} ms, lost {int(r['lost'])}, "
        f"{r['us_per_packet']:5.1f} µs CPU/packet ({r['user_us']:.1f} user), "
        f"steal {r['steal']:4.1f} %, skipped {int(r['skipped'])}: {verdict}, relative {relative}",
        flush=True,
    )


# --- the toolkit's paths alone ---------------------------------------------------------------


async def path_costs(packets: int = 20000) -> tuple[float, float]:
    """CPU µs per packet of the toolkit's send path (packetize, sendto) and receive path
    (the poller's recvfrom, parse, statistics, jitter buffer, decode, playout)."""
    loop = asyncio.get_running_loop()
    clock = MediaClock(loop)
    poller = SocketPoller(loop)
    allocator = PortAllocator(29000, 29099)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    stream = MediaStream(allocator.allocate(), clock, inactivity_timeout=0, poller=poller)
    stream.configure(_negotiated(sink.getsockname()[1]))
    stream.hold()  # the clock stays out of it: the paths are called here
    stream.sending = stream.receiving = True
    # as in a call: the peer's first packet latches the stream, whose socket is then
    # connected to the peer (on Linux; the clock's settle does it after a packet)
    first = RtpPacket(0, 0, 0, 0, 99, b"\xff" * 160).serialize()
    sink.sendto(first, ("127.0.0.1", stream.local_port))
    while not stream.stats.packets_received:
        await asyncio.sleep(0.001)
        poller._ready()
    stream._connect()
    send = 0.0
    for _ in range(packets // 100):
        begin = time.process_time()
        for _ in range(100):
            stream._send_frame()
        send += time.process_time() - begin
        with contextlib.suppress(BlockingIOError):
            while True:
                sink.recv(2048)
    receive = 0.0
    data = [
        RtpPacket(0, 0, n & 0xFFFF, n * 160, 99, b"\xff" * 160).serialize() for n in range(packets)
    ]
    # the poller is driven here, under the stopwatch, not by the loop
    loop.remove_reader(poller._epoll.fileno())  # type: ignore[union-attr]
    for i in range(0, packets, 100):
        for packet in data[i : i + 100]:
            sink.sendto(packet, ("127.0.0.1", stream.local_port))
        begin = time.process_time()
        for _ in range(100):
            poller._ready()
            stream._play_frame()
        receive += time.process_time() - begin
    got = stream.stats.packets_received - 1  # the first one latched
    loop.add_reader(poller._epoll.fileno(), lambda: None)  # type: ignore[union-attr]
    stream.close(bye=False)
    sink.close()
    clock.close()
    return send * 1e6 / packets, receive * 1e6 / max(1, got)


class _Idle:
    """A clock member that does nothing but note when it was served."""

    def __init__(self) -> None:
        self.at: list[float] = []

    def tick(self, deadline: float, now: float) -> None:
        self.at.append(time.perf_counter())

    def settle(self, now: float) -> None:
        pass


async def idle_clock(seconds: float = 4.0) -> float:
    """The p99 send-interval deviation (ms) of four 20 ms members doing no work on the
    toolkit's media clock (its timerfd), on an otherwise idle loop: the same measure as the
    trials', with nothing to do. Near 2 ms, no mode can pass, whatever it does."""
    loop = asyncio.get_running_loop()
    clock = MediaClock(loop)
    members = [_Idle() for _ in range(4)]
    start = loop.time() + 0.01
    registrations = [
        clock.add(member, PTIME, start + i * PTIME / 4) for i, member in enumerate(members)
    ]
    await asyncio.sleep(seconds)
    for registration in registrations:
        registration.cancel()
    clock.close()
    return _p99([abs(b - a - PTIME) for m in members for a, b in itertools.pairwise(m.at)]) * 1000


def cpu_trial(mode: str, calls: int, seconds: float, echo_port: int) -> dict[str, float]:
    """The figures of ``mode`` carrying ``calls`` (CPU per packet above all), pass or fail."""
    result = run_trial(mode, calls, seconds, echo_port)
    _print_trial(mode, calls, result)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--echo", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--duration", type=float)
    parser.add_argument("--start", type=int, default=125)
    parser.add_argument(
        "--cpu-calls",
        type=int,
        default=250,
        help="calls of the CPU per packet comparison (a load both modes carry: an overloaded "
        "task per stream runs late and reads in batches, and looks cheaper per packet)",
    )
    parser.add_argument("--only", choices=("voip", "tasks"))
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run at this niceness (with the echo and the probe): below 0 (as root), the "
        "other programs of a shared machine take turns with the trials less often",
    )
    args = parser.parse_args()
    if args.echo is not None:
        echo(args.echo)
        return
    if args.nice:
        os.nice(args.nice)
    repeats = args.repeats or (1 if args.quick else 3)
    seconds = args.duration or (4.0 if args.quick else 8.0)
    directory = tempfile.TemporaryDirectory()
    far, kind = start_echo(directory.name)
    try:
        assert far.stdout is not None
        echo_port = int(far.stdout.readline())
        print(f"echo process: {kind}; niceness {os.nice(0)}; load average {_load()}", flush=True)
        modes = [args.only] if args.only else ["voip", "tasks"]
        figures: dict[str, list[tuple[int, int]]] = {m: [] for m in modes}
        costs: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
        send_costs, receive_costs, idle = [], [], []
        for repeat in range(repeats):
            idle.append(asyncio.run(idle_clock()))
            print(
                f"repeat {repeat + 1}/{repeats}: idle media clock p99 send-interval deviation "
                f"{idle[-1]:.2f} ms, load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            send, receive = asyncio.run(path_costs())
            send_costs.append(send)
            receive_costs.append(receive)
            for mode in modes:
                costs[mode].append(cpu_trial(mode, args.cpu_calls, seconds, echo_port))
            for mode in modes:
                figures[mode].append(capacity(mode, args.start, seconds, echo_port))
        _summary(modes, figures, costs, args.cpu_calls)
        print(
            f"toolkit paths alone: send {statistics.median(send_costs):.1f} µs/packet, "
            f"receive {statistics.median(receive_costs):.1f} µs/packet (CPU)"
        )
        print(
            f"the machine's floor (medians): idle media clock p99 deviation "
            f"{statistics.median(idle):.2f} ms; bare sleeping probe beside the trials "
            f"{statistics.median(PROBES):.2f} ms; load average at the end: {_load()}"
        )
    finally:
        far.kill()
        far.wait()
        directory.cleanup()


def _summary(
    modes: list[str],
    figures: dict[str, list[tuple[int, int]]],
    costs: dict[str, list[dict[str, float]]],
    cpu_calls: int,
) -> None:
    print()
    print(
        f"{'mode':6} {'calls < 2 ms':>12} {'runs':>16} {'< probe + 2 ms':>15} {'runs':>16} "
        f"{f'µs CPU/packet at {cpu_calls}':>22} {'user':>5} {'calls/core':>11}"
    )
    for mode in modes:
        strict = [f[0] for f in figures[mode]]
        relative = [f[1] for f in figures[mode]]
        cost = statistics.median(c["us_per_packet"] for c in costs[mode])
        user = statistics.median(c["user_us"] for c in costs[mode])
        print(
            f"{mode:6} {statistics.median(strict):12.0f} {strict!s:>16} "
            f"{statistics.median(relative):15.0f} {relative!s:>16} {cost:22.1f} {user:5.1f} "
            f"{1e6 / (2 * 50 * cost):11.0f}"
        )
    if len(modes) == 2:
        ratio = statistics.median(c["us_per_packet"] for c in costs["tasks"]) / statistics.median(
            c["us_per_packet"] for c in costs["voip"]
        )
        print(f"CPU per packet, tasks / voip: {ratio:.2f}")
        for column, name in ((0, "< 2 ms"), (1, "< probe + 2 ms")):
            tasks = statistics.median(f[column] for f in figures["tasks"])
            if tasks:
                voip = statistics.median(f[column] for f in figures["voip"])
                print(f"voip / tasks, calls {name}: {voip / tasks:.2f}x")


def _load() -> str:
    return " ".join(f"{figure:.2f}" for figure in os.getloadavg())


if __name__ == "__main__":
    main()
