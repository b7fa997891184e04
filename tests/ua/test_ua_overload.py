"""Overload control: a UA behind what arrives refuses new calls with 503 and Retry-After
(RFC 3261 §21.5.4) before they cost anything, and goes on with the calls it has."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from voip.call import Call
from voip.sip import Response, parse_message
from voip.transport.udp import MAX_DATAGRAMS_PER_WAKEUP
from voip.useragent import UserAgent

TIMEOUT = 5.0


@pytest.fixture
async def uas() -> AsyncIterator[UserAgent]:
    # overload_after=0: behind at all is overloaded, so that no test waits on the clock
    ua = UserAgent("carol", overload_after=0.0)

    async def answer(call: Call) -> None:
        await call.accept(wait_ack=False)

    ua.on("incoming_call", answer)
    await ua.listen("udp", "127.0.0.1", 0)
    yield ua
    await ua.close()


@pytest.fixture
def peer() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


def invite(peer: socket.socket, uas: UserAgent, n: int) -> bytes:
    host, port = peer.getsockname()
    local = uas.listening[0]
    return (
        f"INVITE sip:carol@{local.host}:{local.port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK-overload-{n}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:peer@{host}>;tag=p{n}\r\n"
        f"To: <sip:carol@{local.host}>\r\n"
        f"Call-ID: overload-{n}@{host}\r\n"
        "CSeq: 1 INVITE\r\n"
        f"Contact: <sip:peer@{host}:{port}>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


async def final_response(peer: socket.socket) -> Response:
    loop = asyncio.get_running_loop()
    while True:
        data = await asyncio.wait_for(loop.sock_recv(peer, 65536), TIMEOUT)
        message = parse_message(data)
        if isinstance(message, Response) and message.status >= 200:
            return message


def send_behind_a_backlog(peer: socket.socket, uas: UserAgent, data: bytes) -> None:
    """More datagrams than one drain takes (keep-alives), all queued before the agent
    reads any, then ``data``: a second drain reads it, while the agent is behind."""
    local = uas.listening[0]
    for _ in range(MAX_DATAGRAMS_PER_WAKEUP + 10):
        peer.sendto(b"\r\n\r\n", (local.host, local.port))
    peer.sendto(data, (local.host, local.port))


async def test_a_new_invite_behind_a_backlog_is_refused_503_with_retry_after(
    uas: UserAgent, peer: socket.socket
) -> None:
    send_behind_a_backlog(peer, uas, invite(peer, uas, 1))
    response = await final_response(peer)
    assert response.status == 503
    assert response.headers.get("Retry-After") == "1"
    assert not uas.calls and uas.counters.rejected == {503: 1}


async def test_once_the_backlog_is_read_new_invites_are_answered_again(
    uas: UserAgent, peer: socket.socket
) -> None:
    send_behind_a_backlog(peer, uas, invite(peer, uas, 1))
    assert (await final_response(peer)).status == 503
    assert uas.transport.behind(uas.now()) is None  # the last drain emptied the socket
    local = uas.listening[0]
    peer.sendto(invite(peer, uas, 2), (local.host, local.port))
    assert (await final_response(peer)).status == 200


async def test_requests_in_a_dialog_are_not_refused_when_behind(
    uas: UserAgent, peer: socket.socket
) -> None:
    local = uas.listening[0]
    peer.sendto(invite(peer, uas, 1), (local.host, local.port))
    ok = await final_response(peer)
    assert ok.status == 200
    host, port = peer.getsockname()
    bye = (
        f"BYE sip:carol@{local.host}:{local.port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK-overload-bye\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:peer@{host}>;tag=p1\r\n"
        f"To: <sip:carol@{local.host}>;tag={ok.to.tag}\r\n"
        f"Call-ID: overload-1@{host}\r\n"
        "CSeq: 2 BYE\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    send_behind_a_backlog(peer, uas, bye)
    response = await final_response(peer)
    assert (response.status, response.cseq.method) == (200, "BYE")
    assert not uas.calls


async def test_behind_is_how_long_the_request_being_read_waited_in_the_socket(
    peer: socket.socket,
) -> None:
    # RFC 3261 §21.5.4 sheds what would otherwise be retransmitted: what counts is how
    # long a request waited (the kernel stamps its arrival), not how long a backlog lasts
    ua = UserAgent("carol", overload_after=None)
    waits: list[float | None] = []

    def answer(call: Call) -> None:
        waits.append(ua.transport.behind(ua.now()))
        call.accept_now()

    ua.on("incoming_call", answer)
    await ua.listen("udp", "127.0.0.1", 0)
    try:
        send_behind_a_backlog(peer, ua, invite(peer, ua, 1))
        time.sleep(0.3)  # the loop is held up: everything queued waits in the socket
        await asyncio.wait_for(final_response(peer), TIMEOUT)
        [waited] = waits
        assert waited is not None and 0.3 <= waited < 0.3 + TIMEOUT
    finally:
        await ua.close()


async def test_an_invite_that_waited_longer_than_overload_after_is_refused(
    peer: socket.socket,
) -> None:
    ua = UserAgent("carol", overload_after=0.2)
    ua.on("incoming_call", lambda call: call.accept_now())
    await ua.listen("udp", "127.0.0.1", 0)
    try:
        send_behind_a_backlog(peer, ua, invite(peer, ua, 1))
        assert (await final_response(peer)).status == 200  # behind, but it hardly waited
        send_behind_a_backlog(peer, ua, invite(peer, ua, 2))
        time.sleep(0.3)
        assert (await final_response(peer)).status == 503
    finally:
        await ua.close()
