"""aiosipua's UAS (PyPI aiosipua 0.7.1) for benchmarks/cps.py: answer every call at once
(aiosipua sends 100 Trying itself, then a 200 with the SDP answer from its own offer/answer).

    python benchmarks/uas_aiosipua.py PORT [--loop uvloop]

Prints ``ready HOST PORT`` once listening on 127.0.0.1:PORT and runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiosipua import IncomingCall, SipUAS, negotiate_sdp
from aiosipua.transport import UdpSipTransport, _UdpProtocol
from uas_common import add_loop_option, serve_until_stopped

from voip.eventloop import run

HOST = "127.0.0.1"
_media_ports = itertools.cycle(range(40000, 60000, 2))


async def serve(port: int) -> None:
    transport = UdpSipTransport(local_addr=(HOST, port))
    uas = SipUAS(transport)

    def answer(call: IncomingCall) -> None:
        if call.sdp_offer is None:
            call.reject(488, "Not Acceptable Here")
            return
        sdp_answer, _ = negotiate_sdp(call.sdp_offer, HOST, next(_media_ports))
        call.accept(sdp_answer)

    uas.on_invite = answer
    await uas.start()
    await serve_until_stopped(HOST, port)
    await uas.stop()


def _accept_uvloop_transports() -> None:
    """aiosipua 0.7.1's protocol asserts in ``connection_made`` that its transport is an
    ``asyncio.DatagramTransport``, which uvloop's (the same interface, no common base
    class) is not, and the failed assertion closes it: on uvloop the benchmark keeps the
    transport as aiosipua does, without that assertion."""

    def connection_made(self: _UdpProtocol, transport: Any) -> None:
        self._owner._udp_transport = transport

    _UdpProtocol.connection_made = connection_made  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    add_loop_option(parser)
    args = parser.parse_args()
    if args.loop == "uvloop":
        _accept_uvloop_transports()
    run(serve(args.port), loop=args.loop)


if __name__ == "__main__":
    main()
