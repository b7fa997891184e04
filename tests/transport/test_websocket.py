"""SIP over WebSocket (RFC 7118): one SIP message per WebSocket message, the ``sip``
subprotocol asked for and required, connections reused like TCP, limits, and failures
reported as TCP's are."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from support.peers.pki import LoopbackPki
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.typing import Subprotocol
from websockets.utils import accept_key

from tests.transport.helpers import (
    WAIT,
    Peer,
    closed_by_peer,
    flood,
    hostport,
    raw_connection,
    request,
    response,
)
from voip.sip import Request, Response
from voip.transport import Endpoint, StreamLimits, client_context, server_context

SIP = Subprotocol("sip")


def websocket_peers(
    make_peer: Callable[..., Peer], certificates: LoopbackPki, transport: str, **server: object
) -> tuple[Peer, Peer]:
    """Alice the client, Bob the server (wss with the test CA's certificate)."""
    if transport == "wss":
        alice = make_peer(tls_client=client_context(certificates.cafile))
        server["tls_server"] = server_context(certificates.certfile, certificates.keyfile)
        return alice, make_peer(**server)
    return make_peer(), make_peer(**server)


def url(endpoint: Endpoint) -> str:
    return f"ws://{hostport(endpoint)}/"


@asynccontextmanager
async def websocket_server(
    *, subprotocols: list[Subprotocol] | None = None
) -> AsyncIterator[tuple[Endpoint, asyncio.Queue[str | bytes], list[ServerConnection]]]:
    """A bare WebSocket server (not SIP-aware): what it receives, and its connections."""
    received: asyncio.Queue[str | bytes] = asyncio.Queue()
    connections: list[ServerConnection] = []

    async def handler(connection: ServerConnection) -> None:
        connections.append(connection)
        async for message in connection:
            received.put_nowait(message)

    async with serve(handler, "127.0.0.1", 0, subprotocols=subprotocols) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield Endpoint("ws", "127.0.0.1", port), received, connections


@asynccontextmanager
async def deaf_websocket_server() -> AsyncIterator[Endpoint]:
    """A server that completes the WebSocket handshake (agreeing to ``sip``) and then
    reads nothing more: it neither takes what is written nor answers pings."""
    held: list[asyncio.StreamWriter] = []

    async def handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        key = next(
            line.split(":", 1)[1].strip()
            for line in head.split("\r\n")
            if line.lower().startswith("sec-websocket-key:")
        )
        writer.write(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept_key(key)}\r\n"
            "Sec-WebSocket-Protocol: sip\r\n\r\n".encode()
        )
        held.append(writer)

    server = await asyncio.start_server(handshake, "127.0.0.1", 0)
    try:
        yield Endpoint("ws", "127.0.0.1", server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for writer in held:
            writer.close()


@pytest.mark.parametrize(
    ("transport", "host"), [("ws", "127.0.0.1"), ("ws", "::1"), ("wss", "127.0.0.1")]
)
async def test_requests_and_responses_travel_one_connection_each_way_and_it_is_reused(
    make_peer: Callable[..., Peer], certificates: LoopbackPki, transport: str, host: str
) -> None:
    alice, bob = websocket_peers(make_peer, certificates, transport)
    bob_at = await bob.layer.listen(transport, host)
    via = alice.layer.local_endpoint(transport, bob_at)
    for call_id in ("c1", "c2"):
        alice.layer.send(
            request(transport=transport.upper(), sent_by=hostport(via), call_id=call_id), bob_at
        )
        message, source, local = await bob.inbox.message()
        assert isinstance(message, Request) and message.call_id == call_id
        assert (source, local) == (via, bob_at)
        # RFC 7118 §5: back over the connection the request came on.
        assert bob.layer.response_destination(message, source) == source
        bob.layer.send(response(call_id), source)
        answer, answered_from, _ = await alice.inbox.message()
        assert isinstance(answer, Response) and answered_from == bob_at
    assert alice.layer.counters.connections_opened == 1
    assert bob.layer.counters.connections_accepted == 1
    assert alice.inbox.errors.empty() and bob.inbox.errors.empty()


async def test_a_request_from_the_server_reaches_the_client_over_the_clients_connection(
    make_peer: Callable[..., Peer], certificates: LoopbackPki
) -> None:
    alice, bob = websocket_peers(make_peer, certificates, "ws")
    bob_at = await bob.layer.listen("ws", "127.0.0.1")
    via = alice.layer.local_endpoint("ws", bob_at)
    alice.layer.send(request(transport="WS", sent_by=hostport(via)), bob_at)
    _, source, _ = await bob.inbox.message()
    # The client's own address (its Contact): only its connection reaches it.
    bob.layer.send(request("BYE", transport="WS", sent_by=hostport(bob_at)), source)
    message, came_from, _ = await alice.inbox.message()
    assert isinstance(message, Request) and message.method == "BYE" and came_from == bob_at
    assert bob.layer.counters.connections_opened == 0


async def test_a_send_naming_ws_uses_the_wss_connection_open_to_that_address(
    make_peer: Callable[..., Peer], certificates: LoopbackPki
) -> None:
    """Kamailio names its wss listener ";transport=ws" in Record-Route: the request goes
    over the connection already open there rather than a plain one to a TLS port."""
    alice, bob = websocket_peers(make_peer, certificates, "wss")
    bob_at = await bob.layer.listen("wss", "127.0.0.1")
    alice.layer.send(request(), bob_at)
    await bob.inbox.message()
    as_named = Endpoint("ws", bob_at.host, bob_at.port)
    assert alice.layer.local_endpoint("ws", as_named).transport == "wss"
    alice.layer.send(request("BYE"), as_named)
    message, _, _ = await bob.inbox.message()
    assert isinstance(message, Request) and message.method == "BYE"
    assert alice.layer.counters.connections_opened == 1 and alice.inbox.errors.empty()


async def test_text_frames_carry_utf8_messages_and_binary_frames_the_others(
    make_peer: Callable[..., Peer],
) -> None:
    """RFC 7118 §5: text or binary, one SIP message each; both are read."""
    alice = make_peer()
    async with websocket_server(subprotocols=[SIP]) as (at, received, connections):
        alice.layer.send(request(body="héllo".encode()), at)
        alice.layer.send(request(body=b"\xff\xfe binary", call_id="c2"), at)
        text = await asyncio.wait_for(received.get(), WAIT)
        binary = await asyncio.wait_for(received.get(), WAIT)
        assert isinstance(text, str) and text.endswith("héllo")
        assert isinstance(binary, bytes) and binary.endswith(b"\xff\xfe binary")
        (server_side,) = connections
        await server_side.send(response("c1").decode())
        await server_side.send(response("c2"))
        answers = [await alice.inbox.message(), await alice.inbox.message()]
        assert [a[0].call_id for a in answers] == ["c1", "c2"]


async def test_a_handshake_that_does_not_ask_for_sip_is_refused(
    make_peer: Callable[..., Peer], certificates: LoopbackPki
) -> None:
    """RFC 7118 §4: the server speaks only the ``sip`` subprotocol."""
    _, bob = websocket_peers(make_peer, certificates, "ws")
    bob_at = await bob.layer.listen("ws", "127.0.0.1")
    with pytest.raises(InvalidStatus) as refused:
        await connect(url(bob_at), subprotocols=[Subprotocol("chat")])
    assert refused.value.response.status_code == 400
    assert bob.layer.connections == () and bob.inbox.messages.empty()


async def test_a_server_that_does_not_agree_to_sip_is_given_up_with_a_clear_error(
    make_peer: Callable[..., Peer],
) -> None:
    alice = make_peer()
    async with websocket_server() as (at, received, _):
        alice.layer.send(request(), at)
        destination, error = await alice.inbox.error()
    assert destination == at and isinstance(error, ConnectionRefusedError)
    assert "'sip' WebSocket subprotocol" in str(error)
    assert received.empty() and alice.layer.connections == ()


async def test_a_refused_connection_is_reported_to_the_layer_above(
    make_peer: Callable[..., Peer], certificates: LoopbackPki
) -> None:
    _, bob = websocket_peers(make_peer, certificates, "ws")
    bob_at = await bob.layer.listen("ws", "127.0.0.1")
    await bob.layer.close()  # nothing listens there any more
    alice = make_peer()
    alice.layer.send(request(), bob_at)
    destination, error = await alice.inbox.error()
    assert destination == bob_at and isinstance(error, ConnectionRefusedError)
    assert alice.layer.connections == ()


async def test_an_untrusted_wss_certificate_is_refused_by_default(
    make_peer: Callable[..., Peer], certificates: LoopbackPki
) -> None:
    alice = make_peer()  # the system's CAs, which do not include the test CA
    bob = make_peer(tls_server=server_context(certificates.certfile, certificates.keyfile))
    bob_at = await bob.layer.listen("wss", "127.0.0.1")
    alice.layer.send(request(), bob_at, server_name="localhost")
    destination, error = await alice.inbox.error()
    assert destination == bob_at and isinstance(error, ssl.SSLCertVerificationError)
    assert bob.inbox.messages.empty() and alice.layer.connections == ()


async def test_a_wss_certificate_for_another_name_is_refused(
    make_peer: Callable[..., Peer], certificates: LoopbackPki
) -> None:
    alice, bob = websocket_peers(make_peer, certificates, "wss")
    bob_at = await bob.layer.listen("wss", "127.0.0.1")
    alice.layer.send(request(), bob_at, server_name="sip.example.com")
    _, error = await alice.inbox.error()
    assert isinstance(error, ssl.SSLCertVerificationError)


async def test_a_message_over_the_size_limit_closes_its_connection_and_no_other(
    make_peer: Callable[..., Peer], certificates: LoopbackPki
) -> None:
    limits = StreamLimits(max_header_bytes=2000, max_body_bytes=2000)
    _, bob = websocket_peers(make_peer, certificates, "ws", limits=limits)
    bob_at = await bob.layer.listen("ws", "127.0.0.1")
    async with (
        connect(url(bob_at), subprotocols=[SIP]) as hog,
        connect(url(bob_at), subprotocols=[SIP]) as other,
    ):
        await hog.send(request(body=b"x" * 5000))
        with pytest.raises(ConnectionClosedError) as closed:
            await asyncio.wait_for(hog.recv(), WAIT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        await other.send(request(call_id="fits", body=b"x" * 1000))
        message, _, _ = await bob.inbox.message()
        assert message.call_id == "fits"
    assert bob.inbox.messages.empty()


async def test_an_idle_connection_is_closed_and_a_pinged_one_is_kept(
    make_peer: Callable[..., Peer], certificates: LoopbackPki
) -> None:
    """No octet either way for ``idle_timeout`` closes a connection; WebSocket pings
    (RFC 6455 §5.5.2, the client's ``keepalive_interval``) are traffic."""
    limits = StreamLimits(idle_timeout=2.0)
    _, bob = websocket_peers(make_peer, certificates, "ws", limits=limits)
    bob_at = await bob.layer.listen("ws", "127.0.0.1")
    silent, pinging = make_peer(), make_peer(keepalive_interval=0.1)
    for peer in (silent, pinging):
        peer.layer.send(request(sent_by=hostport(peer.layer.local_endpoint("ws", bob_at))), bob_at)
        await bob.inbox.message()
    (silent_flow,) = silent.layer.connections
    (pinging_flow,) = pinging.layer.connections
    await asyncio.wait_for(silent_flow.closed, WAIT * 2)
    assert pinging.layer.connections == (pinging_flow,)
    assert len(bob.layer.connections) == 1
    # Closed by the server: the client that opened it hears that its flow is gone.
    destination, error = await silent.inbox.error()
    assert destination == bob_at and isinstance(error, ConnectionResetError)


async def test_a_peer_that_does_not_read_is_disconnected_past_the_write_bound(
    make_peer: Callable[..., Peer],
) -> None:
    bound = 256 * 1024
    alice = make_peer(limits=StreamLimits(max_write_buffer=bound))
    async with deaf_websocket_server() as target:
        destination, error = await flood(alice, target, bound)
    assert destination == target and isinstance(error, BufferError)
    assert alice.layer.connections == ()


async def test_a_ping_not_answered_within_the_pong_timeout_fails_the_flow(
    make_peer: Callable[..., Peer],
) -> None:
    """RFC 6455 §5.5.2 pings on an outgoing connection (``keepalive_interval``): no pong
    within ``pong_timeout`` and the flow is reported lost, as a CRLF pong missing is."""
    alice = make_peer(keepalive_interval=0.1, limits=StreamLimits(pong_timeout=0.3))
    async with deaf_websocket_server() as target:
        await alice.layer.connect(target)
        destination, error = await asyncio.wait_for(alice.inbox.error(), WAIT * 2)
    assert destination == target and isinstance(error, ConnectionClosedError)
    assert "keepalive ping timeout" in str(error)
    assert alice.layer.connections == ()


async def test_keep_alive_on_an_open_connection_fails_the_flow_when_no_pong_comes(
    make_peer: Callable[..., Peer],
) -> None:
    """``keep_alive(interval)`` (an RFC 5626 flow's Flow-Timer) starts WebSocket pings on
    a connection opened without: a server that never answers them fails the flow."""
    alice = make_peer(limits=StreamLimits(pong_timeout=0.3))
    async with deaf_websocket_server() as target:
        flow = await alice.layer.connect(target)
        flow.keep_alive(0.1)
        destination, error = await asyncio.wait_for(alice.inbox.error(), WAIT * 2)
    assert destination == target and isinstance(error, ConnectionClosedError)
    assert "keepalive ping timeout" in str(error)
    assert alice.layer.connections == ()


async def test_websocket_pings_and_pongs_are_counted_as_stream_keepalives_are(
    make_peer: Callable[..., Peer],
) -> None:
    """RFC 7118 §6: WebSocket pings (RFC 6455 §5.5.2) are the keep-alive of a flow over
    WebSocket, counted where CRLF pings and pongs are (RFC 5626 §4.4.1): the pinging side's
    pings_sent and pongs_in, the other side's keepalives_in and pongs_sent."""
    alice, bob = make_peer(keepalive_interval=0.05), make_peer()
    bob_at = await bob.layer.listen("ws", "127.0.0.1")
    alice.layer.send(request(sent_by=hostport(alice.layer.local_endpoint("ws", bob_at))), bob_at)
    await bob.inbox.message()
    async with asyncio.timeout(WAIT):
        while bob.layer.counters.pongs_sent < 3 or alice.layer.counters.pongs_in < 2:
            await asyncio.sleep(0.01)
    assert bob.layer.counters.keepalives_in == bob.layer.counters.pongs_sent
    assert alice.layer.counters.pings_sent >= alice.layer.counters.pongs_in
    # Bob answers and does not ping; nothing of the keep-alive is a SIP message.
    assert bob.layer.counters.pings_sent == 0 and alice.layer.counters.pongs_sent == 0
    assert bob.layer.counters.stream_messages_in == 1


async def websocket_opened(at: Endpoint) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw connection to ``at`` whose WebSocket handshake (asking for ``sip``) is done:
    what it writes next are frames, as a misbehaving client writes them."""
    reader, writer = await raw_connection(at)
    writer.write(
        f"GET / HTTP/1.1\r\nHost: {hostport(at)}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n\r\n".encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    assert head.startswith(b"HTTP/1.1 101 ")
    return reader, writer


def client_frame(opcode: int, payload: bytes = b"", *, fin: bool) -> bytes:
    """One masked client frame (RFC 6455 §5.2; the masking key 0 leaves the payload as is)."""
    assert len(payload) < 126
    return bytes([(0x80 if fin else 0) | opcode, 0x80 | len(payload)]) + bytes(4) + payload


async def endless_continuation_frames(writer: asyncio.StreamWriter) -> None:
    # RFC 6455 §5.4: a text frame without FIN opens a message that continuation frames
    # (opcode 0) carry on; these are empty, and the last one never comes.
    writer.write(client_frame(0x1, b"OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\n", fin=False))
    while True:
        await asyncio.sleep(0.02)
        writer.write(client_frame(0x0, fin=False))


async def one_frame_an_octet_at_a_time(writer: asyncio.StreamWriter) -> None:
    frame = client_frame(0x1, request()[:100], fin=True)
    for octet in range(len(frame)):
        writer.write(frame[octet : octet + 1])
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("dribble", [endless_continuation_frames, one_frame_an_octet_at_a_time])
async def test_a_websocket_message_left_unfinished_closes_the_connection_as_on_tcp(
    listening: Callable[..., Awaitable[Peer]],
    dribble: Callable[[asyncio.StreamWriter], Awaitable[None]],
) -> None:
    """Every octet keeps a connection from being idle, but a message begun must be
    finished within ``message_timeout`` (as on TCP): a peer cannot hold the connection
    and its buffers for ever with a message that never ends."""
    bob = await listening("ws", limits=StreamLimits(idle_timeout=None, message_timeout=0.3))
    reader, writer = await websocket_opened(bob.at)
    dribbling = asyncio.create_task(dribble(writer))
    try:
        await closed_by_peer(reader)
    finally:
        dribbling.cancel()
        writer.close()
    assert bob.inbox.messages.empty()
    _, error = await bob.inbox.error()
    assert isinstance(error, TimeoutError)
    assert bob.layer.connections == ()


@pytest.mark.parametrize("sent", [b"", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"])
async def test_a_websocket_handshake_never_finished_is_dropped_after_the_connect_timeout(
    listening: Callable[..., Awaitable[Peer]], sent: bytes
) -> None:
    """A TCP connection that never finishes its WebSocket handshake is closed once the
    limits' ``connect_timeout`` is over (websockets' ``open_timeout``): it never becomes a
    connection of the layer."""
    bob = await listening("ws", limits=StreamLimits(connect_timeout=0.3))
    reader, writer = await raw_connection(bob.at)
    writer.write(sent)
    try:
        assert await closed_by_peer(reader) == b""
    finally:
        writer.close()
    assert bob.layer.connections == ()
    assert bob.inbox.messages.empty()


async def test_websocket_connections_still_in_their_handshake_count_against_max_connections(
    listening: Callable[..., Awaitable[Peer]], make_peer: Callable[..., Peer]
) -> None:
    """A peer opening TCP connections and never finishing their handshakes meets
    ``max_connections`` at once, as on TCP, not only each one's ``connect_timeout``; a
    connection whose handshake finished counts once, as a connection of the layer."""
    bob = await listening("ws", limits=StreamLimits(max_connections=2, connect_timeout=30.0))
    listener_only = bob.layer.sockets_open
    held = [await raw_connection(bob.at) for _ in range(2)]
    try:
        await until(lambda: bob.layer.sockets_open == listener_only + 2)
        reader, writer = await raw_connection(bob.at)
        assert await closed_by_peer(reader) == b""  # the third: refused at once
        writer.close()
        assert bob.layer.counters.connections_refused == 1
        _, first = held.pop()
        first.close()  # one handshake given up: room for one connection
        await until(lambda: bob.layer.sockets_open == listener_only + 1)
        alice = make_peer()
        via = alice.layer.local_endpoint("ws", bob.at)
        alice.layer.send(request(transport="WS", sent_by=hostport(via)), bob.at)
        message, _, _ = await bob.inbox.message()
        assert isinstance(message, Request)
        assert len(bob.layer.connections) == 1  # alice's; the handshaking one is not listed
        assert bob.layer.sockets_open == listener_only + 2  # counted once each
        reader, writer = await raw_connection(bob.at)
        assert await closed_by_peer(reader) == b""  # alice's and the held one: full
        writer.close()
        assert bob.layer.counters.connections_refused == 2
    finally:
        for _, writer in held:
            writer.close()


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while not condition():
            await asyncio.sleep(0.01)
