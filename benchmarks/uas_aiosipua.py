"""aiosipua's UAS (PyPI aiosipua 0.7.1) for benchmarks/cps.py: answer every call at once
(aiosipua sends 100 Trying itself, then a 200 with the SDP answer from its own offer/answer).

    python benchmarks/uas_aiosipua.py PORT

Prints ``ready HOST PORT`` once listening on 127.0.0.1:PORT and runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools

from aiosipua import IncomingCall, SipUAS, negotiate_sdp
from aiosipua.transport import UdpSipTransport
from uas_common import serve_until_stopped

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
