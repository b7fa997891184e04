"""Concurrent full-duplex G.711 calls one process carries, against a task-per-stream baseline.

Each *call* is one RTP stream of 20 ms PCMU packets (50 packets/s) sent to an echo process
(another process on 127.0.0.1 sending every datagram back: ``media_echo.c`` built with the
C compiler when there is one, reading and sending in batches, else a Python loop), so the
process under test sends 50 and receives 50 packets/s per call. Two senders take turns:

- ``voip``: this toolkit's :class:`voip.rtp.MediaStream` on one :class:`MediaClock` and one
  :class:`SocketPoller`, as :class:`voip.rtp.MediaEngine` runs them (one timer for every
  stream, absolute deadlines, jitter buffer, G.711 decode and playout every period);
- ``tasks``: the usual asyncio shape, one task per stream sleeping until its next absolute
  deadline, G.711 encode with audioop and aiortc's ``RtpPacket``, received through a stock
  ``DatagramProtocol`` per stream and parsed and decoded.

A *trial* runs N calls for ``--duration`` seconds (started spread over one packet time, as
real calls are; the toolkit's clock puts them on its 5 ms phase grid). The send interval
of a packet is the time between the return of its ``sendto`` and that of the stream's
previous packet. A trial passes when the p99 of |send interval - 20 ms| over every packet
of every stream is under 2 ms and no packet is lost on the way back (RFC 3550 A.3 per
stream). The search doubles N from ``--start`` until a trial fails (halves it down to 10
when the first fails), then bisects to 10 %.

Also printed: CPU µs per packet (process time, user + system, over packets sent and
received) of each mode carrying ``--cpu-calls`` calls, and the calls one core could carry
at that cost; the toolkit's send and receive paths timed alone (CPU µs per packet); and,
since other programs on the machine take turns on its two cores, the load average and the
p99 lateness of a plain asyncio timer on an idle loop (with that near 2 ms, no mode can
pass: the send intervals are only as regular as the machine is quiet).

    python benchmarks/media.py            # 3 repeats, 8 s trials
    python benchmarks/media.py --quick    # 1 repeat, 4 s trials
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from aiortc.rtp import RtpPacket  # noqa: E402

from sdp import Codec, Direction, NegotiatedMedia  # noqa: E402
from voip.rtp import MediaClock, MediaStream, PortAllocator, ReceivedSource  # noqa: E402
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
            return process, "C, recvmmsg/sendmmsg"
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


class TimedStream(MediaStream):
    """A MediaStream that notes when each packet left."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.sent_at: list[float] = []

    def _send_frame(self) -> None:
        super()._send_frame()
        self.sent_at.append(time.perf_counter())


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
    clock = MediaClock(loop)
    poller = SocketPoller(loop)
    allocator = PortAllocator(30000, 30000 + 4 * calls + 400)
    streams = [
        TimedStream(allocator.allocate(), clock, inactivity_timeout=0, poller=poller)
        for _ in range(calls)
    ]
    for stream in streams:
        stream.rtcp.min_interval = 1e9  # RTCP would go to the echo port + 1: none
    cpu = time.process_time()
    for i, stream in enumerate(streams):
        loop.call_later(PTIME * i / calls, stream.configure, _negotiated(echo_port))
    await asyncio.sleep(seconds)
    for stream in streams:
        stream.hold()
    await asyncio.sleep(0.3)
    cpu = time.process_time() - cpu
    intervals = [b - a for s in streams for a, b in itertools.pairwise(s.sent_at)]
    lost = sum(max(0, s.source.lost) if s.source else len(s.sent_at) for s in streams)
    sent = sum(s.stats.packets_sent for s in streams)
    received = sum(s.stats.packets_received for s in streams)
    skipped = sum(s.stats.skipped for s in streams)
    for stream in streams:
        stream.close(bye=False)
    clock.close()
    poller.close()
    return _result(intervals, lost, sent, received, cpu, skipped=skipped)


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
    cpu = time.process_time()
    now = loop.time()
    sent_at: list[list[float]] = [[] for _ in range(calls)]
    tasks = [
        asyncio.create_task(_task_stream(t, now + PTIME * i / calls, now + seconds, sent_at[i]))
        for i, (t, _) in enumerate(endpoints)
    ]
    await asyncio.gather(*tasks)
    await asyncio.sleep(0.3)
    cpu = time.process_time() - cpu
    intervals = [b - a for s in sent_at for a, b in itertools.pairwise(s)]
    lost = sum(
        max(0, p.source.lost) if p.source else len(s)
        for (_, p), s in zip(endpoints, sent_at, strict=True)
    )
    sent = sum(len(s) for s in sent_at)
    received = sum(p.received for _, p in endpoints)
    for transport, _ in endpoints:
        transport.close()
    return _result(intervals, lost, sent, received, cpu, skipped=0)


def _result(
    intervals: list[float], lost: int, sent: int, received: int, cpu: float, *, skipped: int
) -> dict[str, float]:
    deviations = sorted(abs(i - PTIME) for i in intervals)
    p99 = deviations[int(0.99 * (len(deviations) - 1))] if deviations else math.inf
    return {
        "p99_ms": p99 * 1000,
        "lost": lost,
        "sent": sent,
        "received": received,
        "us_per_packet": cpu * 1e6 / max(1, sent + received),
        "skipped": skipped,
        "passed": float(p99 < DEVIATION_LIMIT and lost == 0 and sent > 0),
    }


# --- the search ------------------------------------------------------------------------------


def run_trial(mode: str, calls: int, seconds: float, echo_port: int) -> dict[str, float]:
    trial = trial_voip if mode == "voip" else trial_tasks
    return asyncio.run(trial(calls, seconds, echo_port))


def search(mode: str, start: int, seconds: float, echo_port: int) -> int:
    """The most calls that pass: doubling from ``start`` until a trial fails (halving
    down to ``MIN_CALLS`` when the first fails), then bisecting to 10 %."""
    best, failed = 0, None
    calls = start
    while True:
        result = run_trial(mode, calls, seconds, echo_port)
        _print_trial(mode, calls, result)
        if result["passed"]:
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
        result = run_trial(mode, calls, seconds, echo_port)
        _print_trial(mode, calls, result)
        if result["passed"]:
            best = calls
        else:
            failed = calls
    return best


def _print_trial(mode: str, calls: int, r: dict[str, float]) -> None:
    verdict = "pass" if r["passed"] else "FAIL"
    print(
        f"  {mode:5} {calls:5d} calls: p99 dev {r['p99_ms']:6.2f} ms, lost {int(r['lost']):6d}, "
        f"{r['us_per_packet']:5.1f} µs CPU/packet, skipped {int(r['skipped'])}, "
        f"load {os.getloadavg()[0]:.2f}  {verdict}",
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
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    data = [
        RtpPacket(0, 0, n & 0xFFFF, n * 160, 99, b"\xff" * 160).serialize() for n in range(packets)
    ]
    # the poller is driven here, under the stopwatch, not by the loop
    loop.remove_reader(poller._epoll.fileno())  # type: ignore[union-attr]
    for i in range(0, packets, 100):
        for packet in data[i : i + 100]:
            sender.sendto(packet, ("127.0.0.1", stream.local_port))
        begin = time.process_time()
        for _ in range(100):
            poller._ready()
            stream._play_frame()
        receive += time.process_time() - begin
    got = stream.stats.packets_received
    loop.add_reader(poller._epoll.fileno(), lambda: None)  # type: ignore[union-attr]
    stream.close(bye=False)
    sender.close()
    sink.close()
    clock.close()
    return send * 1e6 / packets, receive * 1e6 / max(1, got)


async def timer_noise(seconds: float = 2.0) -> float:
    """The p99 lateness (ms) of a plain asyncio timer every 5 ms on an otherwise idle loop:
    the floor the machine sets (its other programs, the loop's millisecond wake-ups). Send
    intervals deviate by the difference of two such latenesses; with a floor near 2 ms no
    mode can pass, whatever it does."""
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.005
    late = []
    for n in range(int(seconds / 0.005)):
        await asyncio.sleep(start + n * 0.005 - loop.time())
        late.append(loop.time() - (start + n * 0.005))
    late.sort()
    return late[int(0.99 * (len(late) - 1))] * 1000


def cpu_trial(mode: str, calls: int, seconds: float, echo_port: int) -> float:
    """CPU µs per packet (sent + received) of ``mode`` carrying ``calls``, pass or fail."""
    result = run_trial(mode, calls, seconds, echo_port)
    _print_trial(mode, calls, result)
    return result["us_per_packet"]


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
    args = parser.parse_args()
    if args.echo is not None:
        echo(args.echo)
        return
    repeats = args.repeats or (1 if args.quick else 3)
    seconds = args.duration or (4.0 if args.quick else 8.0)
    directory = tempfile.TemporaryDirectory()
    far, kind = start_echo(directory.name)
    try:
        assert far.stdout is not None
        echo_port = int(far.stdout.readline())
        print(f"echo process: {kind}; load average {_load()}", flush=True)
        modes = [args.only] if args.only else ["voip", "tasks"]
        figures: dict[str, list[int]] = {m: [] for m in modes}
        costs: dict[str, list[float]] = {m: [] for m in modes}
        send_costs, receive_costs, noise = [], [], []
        for repeat in range(repeats):
            noise.append(asyncio.run(timer_noise()))
            print(
                f"repeat {repeat + 1}/{repeats}: idle timer p99 lateness {noise[-1]:.2f} ms, "
                f"load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            send, receive = asyncio.run(path_costs())
            send_costs.append(send)
            receive_costs.append(receive)
            for mode in modes:
                costs[mode].append(cpu_trial(mode, args.cpu_calls, seconds, echo_port))
            for mode in modes:
                figures[mode].append(search(mode, args.start, seconds, echo_port))
        print()
        header = f"{'mode':6} {'calls (median)':>15} {'runs':>20}"
        print(f"{header} {f'µs CPU/packet at {args.cpu_calls}':>22} {'calls/core':>11}")
        for mode in modes:
            cost = statistics.median(costs[mode])
            print(
                f"{mode:6} {statistics.median(figures[mode]):15.0f} "
                f"{figures[mode]!s:>20} {cost:22.1f} {1e6 / (2 * 50 * cost):11.0f}"
            )
        if len(modes) == 2:
            ratio = statistics.median(costs["tasks"]) / statistics.median(costs["voip"])
            print(f"CPU per packet, tasks / voip: {ratio:.2f}")
            if statistics.median(figures["tasks"]):
                ratio = statistics.median(figures["voip"]) / statistics.median(figures["tasks"])
                print(f"voip / tasks: {ratio:.2f}x the calls")
        print(
            f"toolkit paths alone: send {statistics.median(send_costs):.1f} µs/packet, "
            f"receive {statistics.median(receive_costs):.1f} µs/packet (CPU)"
        )
        print(
            f"idle timer p99 lateness (median): {statistics.median(noise):.2f} ms; "
            f"load average at the end: {_load()}"
        )
    finally:
        far.kill()
        far.wait()
        directory.cleanup()


def _load() -> str:
    return " ".join(f"{figure:.2f}" for figure in os.getloadavg())


if __name__ == "__main__":
    main()
