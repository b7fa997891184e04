"""CPU per call of the toolkit's UAS in one process, without SIPp: a quick, steady figure.

A small UAC written on a bare UDP socket plays the call of ``benchmarks/cps.py``
(INVITE with SIPp's SDP offer, 200 with the answer, ACK, ``--hold-ms`` pause, BYE, 200)
against a :class:`~voip.useragent.UserAgent` answering as ``benchmarks/uas_voip.py`` does,
both on one event loop, over real loopback sockets through the agent's transport, with
``--concurrency`` calls in flight. The UAC's share is small (it formats and scans bytes);
the figure is the process's CPU time over the calls, per call, in µs, printed with
the implementation of the SIP syntax core (mypyc or pure Python).

    python benchmarks/ua_loop.py                    # 3 runs of 3000 calls
    python benchmarks/ua_loop.py --profile FILE     # cProfile (CPU time) of one run
    python benchmarks/ua_loop.py --loop uvloop      # on uvloop (the ``uvloop`` extra)

Every call must end with the BYE's 200 and the agent must hold nothing afterwards
(calls, transactions waiting aside, RTP ports); the run fails otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from voip.call import Call
from voip.eventloop import LOOPS
from voip.eventloop import run as run_on
from voip.sip import IMPLEMENTATION
from voip.useragent import UserAgent

HOST = "127.0.0.1"
SDP = (
    "v=0\r\no=sipp {n} 1 IN IP4 127.0.0.1\r\ns=sipp\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio {media} RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
)
INVITE = (
    "INVITE sip:uas@{host}:{port} SIP/2.0\r\n"
    "Via: SIP/2.0/UDP {host}:{lport};branch=z9hG4bK-{n}-1-0\r\n"
    "From: <sip:sipp@{host}>;tag={n}SIPpTag001\r\n"
    "To: <sip:uas@{host}>\r\n"
    "Call-ID: {n}-loop@{host}\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:sipp@{host}:{lport};transport=UDP>\r\n"
    "Max-Forwards: 70\r\n"
    "User-Agent: sipp uac_cps.xml\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: {length}\r\n\r\n{sdp}"
)
IN_DIALOG = (
    "{method} sip:uas@{host}:{port} SIP/2.0\r\n"
    "Via: SIP/2.0/UDP {host}:{lport};branch=z9hG4bK-{n}-{step}-0\r\n"
    "From: <sip:sipp@{host}>;tag={n}SIPpTag001\r\n"
    "To: <sip:uas@{host}>;tag={tag}\r\n"
    "Call-ID: {n}-loop@{host}\r\n"
    "CSeq: {cseq} {method}\r\n"
    "Max-Forwards: 70\r\n"
    "Content-Length: 0\r\n\r\n"
)
_CALL_ID = re.compile(rb"\r\nCall-ID: *(\d+)-loop", re.IGNORECASE)
_TO_TAG = re.compile(rb"\r\nTo:[^\r]*;tag=([^;\r>]+)", re.IGNORECASE)
_CSEQ = re.compile(rb"\r\nCSeq: *\d+ (\w+)", re.IGNORECASE)


class Uac(asyncio.DatagramProtocol):
    """Places ``total`` calls, ``concurrency`` at a time, and counts them done."""

    def __init__(self, remote: tuple[str, int], total: int, concurrency: int, hold: float):
        self.remote = remote
        self.total = total
        self.concurrency = concurrency
        self.hold = hold
        self.placed = 0
        self.answered: set[int] = set()
        self.done = 0
        self.failures: list[str] = []
        self.finished = asyncio.get_running_loop().create_future()
        self.transport: asyncio.DatagramTransport | None = None
        self.lport = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.lport = transport.get_extra_info("sockname")[1]

    def start(self) -> None:
        for _ in range(min(self.concurrency, self.total)):
            self.place()

    def place(self) -> None:
        self.placed += 1
        n = self.placed
        body = SDP.format(n=n, media=6000 + 2 * (n % 1000))
        text = INVITE.format(
            host=HOST, port=self.remote[1], lport=self.lport, n=n, length=len(body), sdp=body
        )
        self.send(text)

    def send(self, text: str) -> None:
        assert self.transport is not None
        self.transport.sendto(text.encode(), self.remote)

    def in_dialog(self, method: str, n: int, tag: str, step: int, cseq: int) -> None:
        self.send(
            IN_DIALOG.format(
                method=method,
                host=HOST,
                port=self.remote[1],
                lport=self.lport,
                n=n,
                tag=tag,
                step=step,
                cseq=cseq,
            )
        )

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        status = int(data[8:11])
        if status < 200:
            return
        call_id, to_tag, cseq = _CALL_ID.search(data), _TO_TAG.search(data), _CSEQ.search(data)
        if call_id is None or to_tag is None or cseq is None:
            self.failures.append(data[:80].decode(errors="replace"))
            return
        n, tag, method = int(call_id.group(1)), to_tag.group(1).decode(), cseq.group(1)
        if status >= 300:
            self.failures.append(f"call {n}: {status} to {method.decode()}")
            self.end_one()
        elif method == b"INVITE":
            self.in_dialog("ACK", n, tag, 2, 1)  # an ACK for every 2xx, retransmitted too
            if n not in self.answered:
                self.answered.add(n)
                bye = (self.in_dialog, "BYE", n, tag, 3, 2)
                asyncio.get_running_loop().call_later(self.hold, *bye)
        elif method == b"BYE" and n in self.answered:
            self.answered.discard(n)
            self.end_one()

    def end_one(self) -> None:
        self.done += 1
        if self.placed < self.total:
            self.place()
        elif self.done >= self.total and not self.finished.done():
            self.finished.set_result(None)


async def run(calls: int, concurrency: int, hold: float) -> float:
    """µs of process CPU per call."""
    loop = asyncio.get_running_loop()
    ua = UserAgent("uas")

    def answer(call: Call) -> None:
        call.accept_now()

    ua.on("incoming_call", answer)
    local = await ua.listen("udp", HOST, 0)
    remote = (local.host, local.port)
    _, uac = await loop.create_datagram_endpoint(
        lambda: Uac(remote, calls, concurrency, hold), local_addr=(HOST, 0)
    )
    started = time.process_time()
    uac.start()
    await asyncio.wait_for(uac.finished, timeout=60 + calls / 50)
    cpu = time.process_time() - started
    await asyncio.sleep(0.05)
    resources = ua.resources()
    assert uac.transport is not None
    uac.transport.close()
    await ua.close()
    if uac.failures:
        raise SystemExit(f"{len(uac.failures)} failures, first: {uac.failures[0]}")
    if resources["calls"] or resources["rtp_ports"] or resources["incoming"]:
        raise SystemExit(f"the agent still holds {resources}")
    return cpu / calls * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50, help="calls in flight (50)")
    parser.add_argument("--hold-ms", type=int, default=100, help="pause before BYE (100)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="cProfile one run (CPU time) to FILE")
    parser.add_argument("--loop", choices=LOOPS[1:], default="asyncio", help="(asyncio)")
    args = parser.parse_args()
    hold = args.hold_ms / 1000
    if args.profile is not None:
        import cProfile

        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        us = run_on(run(args.calls, args.concurrency, hold), loop=args.loop)
        profiler.disable()
        profiler.dump_stats(args.profile)
        print(f"{us:.0f} µs/call under cProfile; statistics in {args.profile}")
        return 0
    figures = []
    for _ in range(args.runs):
        figures.append(run_on(run(args.calls, args.concurrency, hold), loop=args.loop))
        print(f"{figures[-1]:7.0f} µs/call", flush=True)
    print(
        f"median {statistics.median(figures):.0f} µs CPU per call ({args.loop}, "
        f"{IMPLEMENTATION} syntax core, "
        f"{args.calls} calls, {args.concurrency} in flight, hold {args.hold_ms} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
