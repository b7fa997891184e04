"""SIP over TCP (RFC 3261 §18.3, RFC 5626 §4.4.1): framing, reuse, keep-alives, limits."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest

from tests.transport.helpers import (
    WAIT,
    Peer,
    closed_by_peer,
    flood,
    hostport,
    never_reading_server,
    raw_connection,
    request,
    response,
)
from voip.sip import Request, Response, SipError, SipFramingError
from voip.transport import Endpoint, StreamLimits, TransportLayer

Listening = Callable[..., Awaitable[Peer]]
MakePeer = Callable[..., Peer]


async def silent_server(
    serve: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> tuple[asyncio.Server, Endpoint]:
    """A plain TCP server on loopback that does not speak SIP back."""
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, Endpoint("tcp", "127.0.0.1", server.sockets[0].getsockname()[1])


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_request_and_response_round_trip(listening: Listening, host: str) -> None:
    alice, bob = await listening("tcp", host), await listening("tcp", host)
    assert alice.layer.local_endpoint("tcp", bob.at) == alice.at
    alice.layer.send(request(transport="TCP", sent_by=hostport(alice.at)), bob.at)
    message, source, local = await bob.inbox.message()
    assert isinstance(message, Request)
    assert source.host == host and local == bob.at
    assert message.via[0].received is None
    bob.layer.send(response(), bob.layer.response_destination(message, source))
    answer, answered_from, _ = await alice.inbox.message()
    assert isinstance(answer, Response)
    assert answered_from == bob.at


async def test_two_sends_to_one_destination_share_one_connection(
    make_peer: MakePeer, listening: Listening
) -> None:
    alice, bob = make_peer(), await listening("tcp")
    alice.layer.send(request(call_id="one"), bob.at)
    alice.layer.send(request(call_id="two"), bob.at)
    first, second = await bob.inbox.message(), await bob.inbox.message()
    assert [first[0].call_id, second[0].call_id] == ["one", "two"]
    assert first[1] == second[1]
    assert bob.layer.counters.connections_accepted == 1
    assert alice.layer.counters.connections_opened == 1


async def request_between(listening: Listening) -> tuple[Peer, Peer, Request, Endpoint]:
    """Alice and Bob listening on TCP, and a request from Alice as Bob received it."""
    alice, bob = await listening("tcp"), await listening("tcp")
    alice.layer.send(request(sent_by=hostport(alice.at)), bob.at)
    message, source, _ = await bob.inbox.message()
    assert isinstance(message, Request)
    return alice, bob, message, source


async def test_an_incoming_connection_carries_the_response_and_new_requests_back(
    listening: Listening,
) -> None:
    alice, bob, message, source = await request_between(listening)
    assert bob.layer.response_destination(message, source) == source
    bob.layer.send(response(), source)
    bob.layer.send(request("BYE", call_id="from-bob"), source)
    (answer, from_bob, _), (bye, _, _) = await alice.inbox.message(), await alice.inbox.message()
    assert isinstance(answer, Response) and bye.call_id == "from-bob"
    assert from_bob == bob.at
    assert bob.layer.counters.connections_opened == 0
    assert alice.layer.counters.connections_accepted == 0
    assert len(alice.layer.connections) == len(bob.layer.connections) == 1


async def test_a_response_reopens_to_the_via_when_its_connection_is_gone(
    listening: Listening,
) -> None:
    # RFC 3261 §18.2.2: to received (or sent-by) at the sent-by port: the client's listener.
    alice, bob, message, source = await request_between(listening)
    connection = bob.layer.connection_to(source)
    assert connection is not None
    connection.abort()
    await connection.closed
    destination = bob.layer.response_destination(message, source)
    assert destination == alice.at
    bob.layer.send(response(), destination)
    _, answered_from, local = await alice.inbox.message()
    assert local == alice.at and answered_from.port != bob.at.port


async def test_several_messages_in_one_write_are_each_delivered(listening: Listening) -> None:
    bob = await listening("tcp")
    _, writer = await raw_connection(bob.at)
    writer.write(request(call_id="a") + request(call_id="b", body=b"v=0\r\n") + response("c"))
    received = [(await bob.inbox.message())[0] for _ in range(3)]
    writer.close()
    assert [m.call_id for m in received] == ["a", "b", "c"]
    assert received[1].body == b"v=0\r\n"


async def test_one_message_across_many_writes_is_delivered_once_whole(
    listening: Listening,
) -> None:
    bob = await listening("tcp")
    _, writer = await raw_connection(bob.at)
    data = request(body=b"x" * 300)
    for i in range(0, len(data), 7):
        writer.write(data[i : i + 7])
        await writer.drain()
        await asyncio.sleep(0)
    message, _, _ = await bob.inbox.message()
    writer.close()
    assert message.body == b"x" * 300
    assert bob.inbox.messages.empty()


async def test_a_ping_is_answered_with_a_pong(listening: Listening) -> None:
    bob = await listening("tcp")
    reader, writer = await raw_connection(bob.at)
    writer.write(b"\r\n\r\n")
    pong = await asyncio.wait_for(reader.readexactly(2), WAIT)
    writer.write(request())
    await bob.inbox.message()
    writer.close()
    assert pong == b"\r\n"
    assert bob.layer.counters.pongs_sent == 1


async def test_keepalive_pings_answered_keep_the_connection(
    make_peer: MakePeer, listening: Listening
) -> None:
    alice, bob = make_peer(keepalive_interval=0.05), await listening("tcp")
    alice.layer.send(request(), bob.at)
    await bob.inbox.message()
    async with asyncio.timeout(WAIT):
        while bob.layer.counters.pongs_sent < 3:
            await asyncio.sleep(0.01)
    # Alice pings again only once her last ping was answered: two pongs are in at least.
    assert alice.layer.counters.pongs_in >= 2
    assert alice.inbox.errors.empty()
    assert len(alice.layer.connections) == 1


async def test_a_pong_that_does_not_come_closes_the_connection_and_is_reported(
    make_peer: MakePeer,
) -> None:
    # A server that reads and never answers: the flow is dead (RFC 5626 §4.4.1).
    async def deaf_to_pings(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server, target = await silent_server(deaf_to_pings)
    alice = make_peer(keepalive_interval=0.05, limits=StreamLimits(pong_timeout=0.1))
    alice.layer.send(request(), target)
    destination, error = await alice.inbox.error()
    server.close()
    assert destination == target
    assert isinstance(error, TimeoutError) and "pong" in str(error)
    assert alice.layer.connections == ()


async def test_an_idle_connection_is_closed(listening: Listening) -> None:
    bob = await listening("tcp", limits=StreamLimits(idle_timeout=0.1))
    reader, writer = await raw_connection(bob.at)
    assert await closed_by_peer(reader) == b""
    writer.close()
    assert bob.layer.connections == ()


async def test_a_message_dribbled_out_too_slowly_closes_the_connection(
    listening: Listening,
) -> None:
    # An octet at a time keeps the connection busy, but the message never completes.
    limits = StreamLimits(idle_timeout=None, message_timeout=0.2)
    bob = await listening("tcp", limits=limits)
    reader, writer = await raw_connection(bob.at)
    data = request()

    async def dribble() -> None:
        for octet in range(len(data)):
            writer.write(data[octet : octet + 1])
            await asyncio.sleep(0.02)

    dribbling = asyncio.create_task(dribble())
    closed = await closed_by_peer(reader)
    dribbling.cancel()
    writer.close()
    assert closed == b""
    assert bob.inbox.messages.empty()
    _, error = await bob.inbox.error()
    assert isinstance(error, TimeoutError)


@pytest.mark.parametrize(
    ("oversize", "status"),
    [
        (b"OPTIONS sip:b@example.com SIP/2.0\r\nSubject: " + b"x" * 70000, 413),
        (request().replace(b"Content-Length: 0", b"Content-Length: 2000000"), 413),
        (request().replace(b"Content-Length: 0", b"Content-Length: zero"), 400),
    ],
    ids=["head", "body", "unreadable-length"],
)
async def test_a_framing_error_closes_that_connection_and_the_listener_serves_others(
    listening: Listening, oversize: bytes, status: int
) -> None:
    bob = await listening("tcp")
    reader, writer = await raw_connection(bob.at)
    writer.write(oversize)
    _, error, _, _ = await bob.inbox.bad()
    assert await closed_by_peer(reader) == b""
    writer.close()
    assert isinstance(error, SipFramingError) and error.status == status
    _, other = await raw_connection(bob.at)
    other.write(request(call_id="other"))
    message, _, _ = await bob.inbox.message()
    other.close()
    assert message.call_id == "other"


async def test_a_framing_error_can_be_answered_before_the_connection_closes() -> None:
    def answer(data: bytes, error: SipError, source: Endpoint, local: Endpoint) -> None:
        bob.send(b"SIP/2.0 413 Request Entity Too Large\r\nContent-Length: 0\r\n\r\n", source)

    bob = TransportLayer(lambda *_: None, on_malformed=answer)
    bob_at = await bob.listen("tcp", "127.0.0.1")
    reader, writer = await raw_connection(bob_at)
    writer.write(request().replace(b"Content-Length: 0", b"Content-Length: 9999999"))
    received = await closed_by_peer(reader)
    writer.close()
    await bob.close()
    assert received.startswith(b"SIP/2.0 413 ")


async def test_a_framed_malformed_message_is_reported_and_the_connection_stays(
    listening: Listening,
) -> None:
    bob = await listening("tcp")
    _, writer = await raw_connection(bob.at)
    writer.write(request(call_id="bad").replace(b"Max-Forwards: 70", b"no colon here"))
    writer.write(request(call_id="good"))
    data, error, _, _ = await bob.inbox.bad()
    message, _, _ = await bob.inbox.message()
    writer.close()
    assert b"no colon here" in data and error.status == 400
    assert not isinstance(error, SipFramingError)
    assert message.call_id == "good"
    assert bob.layer.counters.connections_accepted == 1


async def test_a_peer_that_does_not_read_is_disconnected_past_the_write_bound(
    make_peer: MakePeer,
) -> None:
    bound = 256 * 1024
    alice = make_peer(limits=StreamLimits(max_write_buffer=bound))
    async with never_reading_server() as target:
        destination, error = await flood(alice, target, bound)
    assert destination == target and isinstance(error, BufferError)
    assert alice.layer.connections == ()


async def test_sends_queued_while_connecting_are_bounded(
    make_peer: MakePeer, listening: Listening
) -> None:
    alice = make_peer(limits=StreamLimits(max_pending_bytes=4000))
    bob = await listening("tcp")
    big = request(body=b"x" * 3000)
    alice.layer.send(big, bob.at)
    alice.layer.send(big, bob.at)  # over the bound while the connection is being opened
    destination, error = await alice.inbox.error()
    message, _, _ = await bob.inbox.message()
    assert destination == bob.at and isinstance(error, BufferError)
    assert message.body == b"x" * 3000


async def test_incoming_connections_beyond_the_maximum_are_refused(listening: Listening) -> None:
    bob = await listening("tcp", limits=StreamLimits(max_connections=2))
    kept = [await raw_connection(bob.at) for _ in range(2)]
    for _, writer in kept:
        writer.write(request())
        await bob.inbox.message()
    reader, writer = await raw_connection(bob.at)
    assert await closed_by_peer(reader) == b""
    writer.close()
    assert bob.layer.counters.connections_refused == 1
    assert len(bob.layer.connections) == 2
    kept[0][1].write(request(call_id="still-served"))
    message, _, _ = await bob.inbox.message()
    for _, kept_writer in kept:
        kept_writer.close()
    assert message.call_id == "still-served"


async def test_outgoing_connections_beyond_the_maximum_are_reported(
    make_peer: MakePeer, listening: Listening
) -> None:
    alice = make_peer(limits=StreamLimits(max_connections=1))
    bob = await listening("tcp")
    second = await bob.layer.listen("tcp", "127.0.0.1")
    alice.layer.send(request(), bob.at)
    alice.layer.send(request(), second)
    destination, error = await alice.inbox.error()
    await bob.inbox.message()
    assert destination == second and isinstance(error, ConnectionRefusedError)


async def test_a_refused_connection_is_reported(make_peer: MakePeer) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        target = Endpoint("tcp", "127.0.0.1", unused.getsockname()[1])
    alice = make_peer()
    alice.layer.send(request(), target)
    destination, error = await alice.inbox.error()
    assert destination == target and isinstance(error, ConnectionRefusedError)
    assert alice.layer.connections == ()


async def test_connect_waits_for_the_connection_and_raises_why_it_failed(
    make_peer: MakePeer, listening: Listening
) -> None:
    alice, bob = make_peer(), await listening("tcp")
    connection = await alice.layer.connect(bob.at)
    assert alice.layer.connection_to(bob.at) is connection
    assert connection.local == alice.layer.local_endpoint("tcp", bob.at)
    await bob.layer.close()
    destination, _ = await alice.inbox.error()  # the first connection is gone
    assert destination == bob.at
    with pytest.raises(ConnectionRefusedError):
        await alice.layer.connect(bob.at)


async def test_an_outgoing_connection_closed_by_the_peer_is_reported(
    make_peer: MakePeer, listening: Listening
) -> None:
    alice, bob = make_peer(), await listening("tcp")
    alice.layer.send(request(), bob.at)
    _, source, _ = await bob.inbox.message()
    connection = bob.layer.connection_to(source)
    assert connection is not None
    connection.close()
    destination, error = await alice.inbox.error()
    assert destination == bob.at and isinstance(error, ConnectionResetError)
    assert bob.inbox.errors.empty()


async def test_local_endpoint_without_a_listener_is_the_connection_that_will_be_used(
    make_peer: MakePeer, listening: Listening
) -> None:
    alice, bob = make_peer(), await listening("tcp")
    via = alice.layer.local_endpoint("tcp", bob.at)
    alice.layer.send(request(sent_by=hostport(via)), bob.at)
    message, source, _ = await bob.inbox.message()
    assert source == via
    assert message.via[0].received is None
    assert alice.layer.counters.connections_opened == 1


@pytest.mark.parametrize("wildcard", ["0.0.0.0", "::"])
async def test_local_endpoint_of_a_wildcard_listener_is_a_real_address(
    listening: Listening, wildcard: str
) -> None:
    bob = await listening("tcp", wildcard)
    loopback = "::1" if ":" in wildcard else "127.0.0.1"
    local = bob.layer.local_endpoint("tcp", Endpoint("tcp", loopback, 5060))
    assert local == Endpoint("tcp", loopback, bob.at.port)


async def test_another_spelling_of_the_same_address_reuses_the_connection(
    make_peer: MakePeer, listening: Listening
) -> None:
    alice, bob = make_peer(), await listening("tcp", "::1")
    alice.layer.send(request(call_id="one"), bob.at)
    alice.layer.send(request(call_id="two"), Endpoint("tcp", "0:0::1", bob.at.port))
    await bob.inbox.message()
    await bob.inbox.message()
    assert bob.layer.counters.connections_accepted == 1


async def test_keep_alive_starts_pings_on_an_open_connection_at_the_interval_given(
    make_peer: MakePeer, listening: Listening
) -> None:
    """RFC 5626 §4.4.1: a registered flow pings at the registrar's Flow-Timer, known only
    once the connection is open and the 2xx is in (``keep_alive``); None stops it."""
    alice, bob = make_peer(), await listening("tcp")
    alice.layer.send(request(), bob.at)
    await bob.inbox.message()
    (flow,) = alice.layer.connections
    assert alice.layer.counters.pings_sent == 0  # no interval at the start: no pings
    flow.keep_alive(0.05)
    async with asyncio.timeout(WAIT):
        while alice.layer.counters.pongs_in < 2:
            await asyncio.sleep(0.01)
    flow.keep_alive(None)
    async with asyncio.timeout(WAIT):  # a ping in flight is still answered, then no more
        while alice.layer.counters.pings_sent != alice.layer.counters.pongs_in:
            await asyncio.sleep(0.01)
    stopped_at = alice.layer.counters.pings_sent
    await asyncio.sleep(0.2)  # four intervals: none sent
    assert alice.layer.counters.pings_sent == stopped_at
    assert alice.inbox.errors.empty() and alice.layer.connections == (flow,)
