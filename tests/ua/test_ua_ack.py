"""The ACK of the UAS's 2xx (RFC 3261 §13.3.1.4): which ACK acknowledges it, and what a
later request in the dialog says about an ACK that was lost. A raw UDP peer plays the
caller so that it can send the ACKs a lossy network or a faulty peer makes (SIPp re-sends
the ACK of a retransmitted 2xx with the CSeq of its BYE)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from support.ua import TIMEOUT

from voip.call import Call
from voip.sip import Response, parse_message
from voip.sip.transaction import ServerTransaction, Timers
from voip.useragent import UserAgent

# retransmissions of the 2xx come soon, and go on for 64·T1 = 3.2 s
TIMERS = Timers(t1=0.05, t2=0.4, t4=0.4)
SDP = (
    "v=0\r\no=alice 1 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\nm=audio 49170 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


class Caller(asyncio.DatagramProtocol):
    """A caller on a UDP socket that sends requests as written and reads the responses."""

    def __init__(self) -> None:
        self.responses: asyncio.Queue[Response] = asyncio.Queue()
        self.transport: Any = None
        self.port = 0
        self.remote: tuple[str, int] = ("127.0.0.1", 0)
        self.to_tag = ""
        self._branches = 0
        self._barriers = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.port = transport.get_extra_info("sockname")[1]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        message = parse_message(data)
        if isinstance(message, Response):
            self.responses.put_nowait(message)

    def send(self, method: str, cseq: int, *, call_id: str = "ack-1", sdp: str = "") -> None:
        self._branches += 1
        host, port = self.remote
        to_tag = f";tag={self.to_tag}" if self.to_tag and call_id == "ack-1" else ""
        body = sdp.encode()
        text = (
            f"{method} sip:bob@{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bKack{self._branches}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:bob@{host}>{to_tag}\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n"
            f"Contact: <sip:alice@127.0.0.1:{self.port}>\r\n"
            + ("Content-Type: application/sdp\r\n" if body else "")
            + f"Content-Length: {len(body)}\r\n\r\n"
        )
        assert self.transport is not None
        self.transport.sendto(text.encode() + body, self.remote)

    async def response(self, cseq: int, method: str) -> Response:
        """The next response to the request with this CSeq (others are passed over)."""
        while True:
            response = await asyncio.wait_for(self.responses.get(), TIMEOUT)
            if (response.cseq.number, response.cseq.method) == (cseq, method):
                return response

    async def barrier(self) -> None:
        """Until the agent has read everything sent before: an OPTIONS outside the call,
        answered after them (one socket, read in order)."""
        self._barriers += 1
        call_id = f"barrier-{self._barriers}"
        self.send("OPTIONS", 1, call_id=call_id)
        while True:
            response = await asyncio.wait_for(self.responses.get(), TIMEOUT)
            if response.call_id == call_id:
                return


@pytest.fixture
async def bob() -> AsyncIterator[UserAgent]:
    ua = UserAgent("bob", timers=TIMERS)
    await ua.listen("udp", "127.0.0.1", 0)
    yield ua
    await ua.close()


@pytest.fixture
async def caller(bob: UserAgent) -> AsyncIterator[Caller]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(Caller, local_addr=("127.0.0.1", 0))
    local = bob.listening[0]
    protocol.remote = (local.host, local.port)
    yield protocol
    transport.close()


async def answered(bob: UserAgent, caller: Caller) -> Call:
    """An INVITE from the caller, answered with 200 (not waiting for the ACK)."""
    calls: asyncio.Queue[Call] = asyncio.Queue()

    async def accept(call: Call) -> None:
        await call.accept(wait_ack=False)
        calls.put_nowait(call)

    bob.on("incoming_call", accept)
    caller.send("INVITE", 1, sdp=SDP.format(version=1))
    ok = await caller.response(1, "INVITE")
    assert ok.status == 200 and ok.to.tag
    caller.to_tag = ok.to.tag
    return await asyncio.wait_for(calls.get(), TIMEOUT)


def invite_server(bob: UserAgent, cseq: int) -> ServerTransaction:
    (transaction,) = [
        t
        for t in bob.transactions.servers.values()
        if t.method == "INVITE" and t.request.cseq.number == cseq
    ]
    return transaction


async def test_an_ack_with_another_cseq_than_the_invites_acknowledges_nothing(
    bob: UserAgent, caller: Caller
) -> None:
    """§13.2.2.4: the ACK's CSeq number is the INVITE's; the 2xx is retransmitted until
    that ACK comes (§13.3.1.4), and the call is not acknowledged before."""
    call = await answered(bob, caller)
    acknowledged = asyncio.ensure_future(call.acknowledged())
    try:
        caller.send("ACK", 2)  # SIPp's ACK to a 2xx retransmitted after its BYE went
        await caller.barrier()
        await asyncio.sleep(0)
        assert not acknowledged.done()
        assert not invite_server(bob, 1).acked
        retransmitted = await caller.response(1, "INVITE")  # the 2xx goes on
        assert retransmitted.status == 200
        caller.send("ACK", 1)
        await caller.barrier()
        await asyncio.wait_for(acknowledged, TIMEOUT)
        assert invite_server(bob, 1).acked
        caller.send("BYE", 2)
        assert (await caller.response(2, "BYE")).status == 200
    finally:
        acknowledged.cancel()


async def test_a_bye_after_the_lost_ack_of_a_reinvites_2xx_stops_that_2xx(
    bob: UserAgent, caller: Caller
) -> None:
    """The peer that says BYE needs no 2xx any more (§15.1.2): the 2xx to its re-INVITE,
    whose ACK was lost, is retransmitted no longer, and draws no late BYE (§13.3.1.4)."""
    await answered(bob, caller)
    caller.send("ACK", 1)
    caller.send("INVITE", 2, sdp=SDP.format(version=2))
    assert (await caller.response(2, "INVITE")).status == 200
    reinvite = invite_server(bob, 2)
    assert not reinvite.acked
    caller.send("BYE", 3)  # its ACK "lost"
    assert (await caller.response(3, "BYE")).status == 200
    assert reinvite.acked
