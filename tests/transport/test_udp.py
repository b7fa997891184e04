"""SIP over UDP (RFC 3261 §18, RFC 3581): round trips, stamping, addresses, bad input."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from tests.transport.helpers import WAIT, Peer, Received, hostport, request, response, udp_socket
from voip.sip import Request, Response, parse_message
from voip.transport import Endpoint, TransportLayer

Listening = Callable[..., Awaitable[Peer]]


@pytest.fixture
async def bob(listening: Listening) -> AsyncIterator[Peer]:
    yield await listening("udp")


@pytest.fixture
def client() -> Iterator[socket.socket]:
    with udp_socket() as sock:
        yield sock


async def received(bob: Peer, client: socket.socket, data: bytes) -> Received:
    client.sendto(data, bob.at.address)
    return await bob.inbox.message()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_request_and_response_round_trip(listening: Listening, host: str) -> None:
    alice, bob = await listening("udp", host), await listening("udp", host)
    via = alice.layer.local_endpoint("udp", bob.at)
    alice.layer.send(request(sent_by=hostport(via)), bob.at)
    message, source, local = await bob.inbox.message()
    assert isinstance(message, Request)
    assert (source, local) == (alice.at, bob.at)
    bob.layer.send(response(), source, local=local)
    answer, answered_from, _ = await alice.inbox.message()
    assert isinstance(answer, Response) and answer.status == 200
    assert answered_from == bob.at


async def test_received_and_rport_are_stamped_before_delivery(
    bob: Peer, client: socket.socket
) -> None:
    message, source, _ = await received(bob, client, request(sent_by="192.0.2.10", rport=True))
    top = message.via[0]
    assert (top.received, top.rport) == ("127.0.0.1", source.port)


async def test_the_response_goes_back_to_received_and_rport(
    bob: Peer, client: socket.socket
) -> None:
    message, source, local = await received(bob, client, request(rport=True))
    assert isinstance(message, Request)
    destination = bob.layer.response_destination(message, source)
    assert destination == source
    bob.layer.send(response(), destination, local=local)
    data, sender = await asyncio.to_thread(client.recvfrom, 65536)
    assert parse_message(data).status == 200  # type: ignore[attr-defined]
    assert sender[:2] == bob.at.address


async def test_a_response_leaves_from_the_socket_its_request_came_in_on(
    bob: Peer, client: socket.socket
) -> None:
    # RFC 3581 §4: the response is sent from the address and port the request arrived at.
    second = await bob.layer.listen("udp", "127.0.0.1")
    client.sendto(request(rport=True), second.address)
    _, source, local = await bob.inbox.message()
    assert local == second
    bob.layer.send(response(), source, local=local)
    _, sender = await asyncio.to_thread(client.recvfrom, 65536)
    assert sender[:2] == second.address


@pytest.mark.parametrize("wildcard", ["0.0.0.0", "::"])
async def test_local_endpoint_of_a_wildcard_listener_is_a_real_address(
    listening: Listening, wildcard: str
) -> None:
    bob = await listening("udp", wildcard)
    assert bob.at.host == wildcard
    loopback = "::1" if ":" in wildcard else "127.0.0.1"
    local = bob.layer.local_endpoint("udp", Endpoint("udp", loopback, 5060))
    assert local == Endpoint("udp", loopback, bob.at.port)


async def test_datagrams_to_a_wildcard_listener_arrive_at_a_real_address(
    listening: Listening, client: socket.socket
) -> None:
    bob = await listening("udp", "0.0.0.0")
    client.sendto(request(), ("127.0.0.1", bob.at.port))
    _, source, local = await bob.inbox.message()
    assert local == Endpoint("udp", "127.0.0.1", bob.at.port)
    bob.layer.send(response(), source, local=local)  # back through the wildcard socket
    _, sender = await asyncio.to_thread(client.recvfrom, 65536)
    assert sender == ("127.0.0.1", bob.at.port)


async def test_a_client_that_never_listened_gets_one_port_for_via_and_sending(
    make_peer: Callable[..., Peer], bob: Peer
) -> None:
    alice = make_peer()
    via = alice.layer.local_endpoint("udp", bob.at)
    assert via.host == "127.0.0.1" and via.port != 0
    alice.layer.send(request(sent_by=hostport(via)), bob.at)
    message, source, _ = await bob.inbox.message()
    assert source == via
    assert message.via[0].received is None


async def test_a_malformed_datagram_goes_to_on_malformed_and_the_next_is_delivered(
    bob: Peer, client: socket.socket
) -> None:
    client.sendto(b"INVITE sip:bob@example.com SIP/2.0\r\nVia bogus\r\n\r\n", bob.at.address)
    message, _, _ = await received(bob, client, request(call_id="next"))
    data, error, source, local = await bob.inbox.bad()
    assert data.startswith(b"INVITE") and error.status == 400
    assert (source.port, local) == (client.getsockname()[1], bob.at)
    assert message.call_id == "next"
    assert bob.layer.counters.malformed == 1


async def test_a_request_with_an_unreadable_top_via_goes_to_on_malformed(
    bob: Peer, client: socket.socket
) -> None:
    client.sendto(request(sent_by="bad host!"), bob.at.address)
    _, error, _, _ = await bob.inbox.bad()
    assert error.status == 400 and "Via" in error.reason


async def test_keepalive_datagrams_are_dropped_silently(bob: Peer, client: socket.socket) -> None:
    for keepalive in (b"\r\n\r\n", b"\r\n", b"\0\0\0\0", b""):
        client.sendto(keepalive, bob.at.address)
    message, _, _ = await received(bob, client, request(call_id="after"))
    assert message.call_id == "after"
    assert bob.inbox.malformed.empty()
    assert bob.layer.counters.keepalives_in == 4


async def test_a_burst_larger_than_one_drain_is_read_in_full(
    bob: Peer, client: socket.socket
) -> None:
    # More datagrams than one wake-up reads (256): the rest are read on the next turns.
    count = 600
    for i in range(count):
        client.sendto(request(call_id=f"burst-{i}"), bob.at.address)
    ids = [(await bob.inbox.message())[0].call_id for _ in range(count)]
    assert ids == [f"burst-{i}" for i in range(count)]


async def test_a_callback_that_raises_does_not_stop_reception(client: socket.socket) -> None:
    seen: list[str] = []

    def on_message(message: Request | Response, source: Endpoint, local: Endpoint) -> None:
        seen.append(message.call_id)
        if message.call_id == "first":
            raise RuntimeError("a bug above the transport")

    reported: list[object] = []
    asyncio.get_running_loop().set_exception_handler(
        lambda _, context: reported.append(context["exception"])
    )
    bob = TransportLayer(on_message)
    try:
        bob_at = await bob.listen("udp", "127.0.0.1")
        for call_id in ("first", "second"):
            client.sendto(request(call_id=call_id), bob_at.address)
        async with asyncio.timeout(WAIT):
            while len(seen) < 2:
                await asyncio.sleep(0.01)
    finally:
        await bob.close()
    assert seen == ["first", "second"]
    assert [type(error) for error in reported] == [RuntimeError]
    assert bob.counters.callback_errors == 1


async def test_a_send_the_kernel_refuses_is_reported_not_raised(bob: Peer) -> None:
    # Port 0 cannot be sent to: the kernel refuses the datagram (EINVAL).
    target = Endpoint("udp", "127.0.0.1", 0)
    bob.layer.send(request(), target)
    destination, error = await bob.inbox.error()
    assert destination == target and isinstance(error, OSError)
