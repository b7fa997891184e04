"""Two toolkit agents over SIP over WebSocket (RFC 7118): one listens on ws or wss,
the other opens a connection to it; calls, digest challenges, in-dialog requests from
either side and bad input all travel that one connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from support.peers.pki import LoopbackPki, make_loopback_pki
from support.ua import answer_calls
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from sdp import Direction
from voip.challenger import Challenger
from voip.sip import Credentials, Message, parse_uri
from voip.transport import Endpoint, client_context, server_context
from voip.useragent import UserAgent

TIMEOUT = 10.0


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> LoopbackPki:
    return make_loopback_pki(tmp_path_factory.mktemp("tls"))


@pytest.fixture(params=["ws", "wss"])
async def server(
    request: pytest.FixtureRequest, certificates: LoopbackPki
) -> AsyncIterator[UserAgent]:
    """Bob, listening on ws or wss, challenging INVITEs (digest, RFC 3261 §22)."""
    bob = UserAgent(
        "bob",
        tls_server=server_context(certificates.certfile, certificates.keyfile),
        challenger=Challenger.for_users("127.0.0.1", {"alice": "secret"}),
    )
    await bob.listen(request.param, "127.0.0.1", 0)
    yield bob
    await bob.close()


@pytest.fixture
async def client(server: UserAgent, certificates: LoopbackPki) -> AsyncIterator[UserAgent]:
    """Alice, who only opens WebSocket connections (of the server's kind)."""
    alice = UserAgent(
        "alice",
        credentials=[Credentials("alice", "secret")],
        transports=(server.listening[0].transport,),
        tls_client=client_context(certificates.cafile),
    )
    yield alice
    await alice.close()


def uri_of(ua: UserAgent) -> str:
    at = ua.listening[0]
    return f"sip:{ua.user}@{at.host}:{at.port};transport={at.transport}"


async def test_a_challenged_call_is_held_by_the_callee_and_ended_by_each_side(
    client: UserAgent, server: UserAgent
) -> None:
    transport = server.listening[0].transport
    answered = answer_calls(server)
    call = await asyncio.wait_for(client.call(uri_of(server)), TIMEOUT)
    callee = await asyncio.wait_for(answered.get(), TIMEOUT)
    assert call.invite is not None and call.invite.via[0].transport == transport.upper()
    (flow,) = client.transport.connections
    contact = call.invite.headers.first("contact") or ""
    assert f"127.0.0.1:{flow.local.port};transport={transport}>" in contact
    assert server.counters.rejected.get(401) == 1  # the INVITE was challenged

    # In-dialog requests from the server reach the client over the client's connection.
    await asyncio.wait_for(callee.hold(), TIMEOUT)
    assert call.agreed[0].direction in (Direction.RECVONLY, Direction.INACTIVE)
    await asyncio.wait_for(callee.hangup(), TIMEOUT)
    assert (await asyncio.wait_for(call.ended(), TIMEOUT)).by == "remote"

    second = await asyncio.wait_for(client.call(uri_of(server)), TIMEOUT)
    callee = await asyncio.wait_for(answered.get(), TIMEOUT)
    await asyncio.wait_for(second.hangup(), TIMEOUT)
    assert (await asyncio.wait_for(callee.ended(), TIMEOUT)).by == "remote"

    assert client.transport.connections == (flow,)  # one connection served it all
    assert client.transport.counters.connections_opened == 1
    assert server.transport.counters.connections_opened == 0


async def test_a_malformed_message_on_a_calls_connection_gets_400_and_the_call_carries_on(
    client: UserAgent, server: UserAgent
) -> None:
    answered = answer_calls(server)
    call = await asyncio.wait_for(client.call(uri_of(server)), TIMEOUT)
    callee = await asyncio.wait_for(answered.get(), TIMEOUT)
    (flow,) = client.transport.connections
    statuses: asyncio.Queue[int] = asyncio.Queue()

    def seen(direction: str, message: Message | bytes, *_: Endpoint) -> None:
        status = getattr(message, "status", None)
        if direction == "in" and status is not None and message.cseq.method == "OPTIONS":  # type: ignore[union-attr]
            statuses.put_nowait(status)

    client.transport.add_tracer(seen)
    bad = (
        "OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/WS 127.0.0.1:{flow.local.port};branch=z9hG4bK-bad\r\n"
        "From: <sip:alice@127.0.0.1>;tag=x\r\nTo: <sip:bob@127.0.0.1>\r\n"
        "Call-ID: bad\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: not-a-number\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    client.transport.send(bad, flow.remote)
    assert await asyncio.wait_for(statuses.get(), TIMEOUT) == 400

    await asyncio.wait_for(call.hold(), TIMEOUT)
    assert callee.agreed[0].direction in (Direction.RECVONLY, Direction.INACTIVE)
    await asyncio.wait_for(call.hangup(), TIMEOUT)
    assert (await asyncio.wait_for(callee.ended(), TIMEOUT)).by == "remote"
    assert client.transport.connections == (flow,)


async def test_a_bare_websocket_client_gets_400_for_garbage_and_200_after_it(
    server: UserAgent, certificates: LoopbackPki
) -> None:
    """One unreadable message in a WebSocket message leaves the connection open."""
    at = server.listening[0]
    context = client_context(certificates.cafile) if at.transport == "wss" else None
    url = f"{at.transport}://127.0.0.1:{at.port}/"
    async with connect(url, subprotocols=[Subprotocol("sip")], ssl=context) as peer:
        port = peer.local_address[1]

        def options(hops: str) -> str:
            return (
                "OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\n"
                f"Via: SIP/2.0/{at.transport.upper()} 127.0.0.1:{port};branch=z9hG4bK-{hops}\r\n"
                "From: <sip:alice@127.0.0.1>;tag=x\r\nTo: <sip:bob@127.0.0.1>\r\n"
                f"Call-ID: c-{hops}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: {hops}\r\n\r\n"
            )

        await peer.send(options("many"))
        assert str(await asyncio.wait_for(peer.recv(), TIMEOUT)).startswith("SIP/2.0 400 ")
        await peer.send(b"\x00\x01 not SIP at all")
        await peer.send(options("70"))  # no Content-Length: RFC 7118 §5 needs none
        assert str(await asyncio.wait_for(peer.recv(), TIMEOUT)).startswith("SIP/2.0 200 ")
    # The bad header was answered 400; the octets that are no SIP message were dropped.
    assert server.counters.rejected == {400: 1} and server.counters.malformed == 1


@pytest.mark.parametrize(
    ("uri", "transport", "port"),
    [
        ("sip:bob@127.0.0.1;transport=ws", "ws", 80),
        ("sip:bob@127.0.0.1:8443;transport=wss", "wss", 8443),
        ("sips:bob@127.0.0.1;transport=ws", "wss", 443),
    ],
)
async def test_a_uri_naming_websocket_is_reached_over_it(
    uri: str, transport: str, port: int
) -> None:
    async with UserAgent("alice", transports=("udp", "ws", "wss")) as ua:
        (target,) = await ua.resolve(parse_uri(uri))
        assert (target.transport, target.port) == (transport, port)


async def test_transport_ws_is_reached_over_wss_by_a_client_that_speaks_only_wss() -> None:
    """Kamailio's Record-Route names its wss listener ";transport=ws" (the one URI value
    of RFC 7118 §5.3)."""
    async with UserAgent("alice", transports=("wss",)) as ua:
        (target,) = await ua.resolve(parse_uri("sip:127.0.0.1:4443;transport=ws;lr"))
        assert (target.transport, target.port) == ("wss", 4443)


async def test_a_sips_call_over_secure_websocket_makes_secure_dialogs_on_both_sides(
    certificates: LoopbackPki,
) -> None:
    """RFC 3261 §12.1.1 and §12.1.2: a sips Request-URI over TLS makes the dialog secure;
    wss is TLS (RFC 7118 §5.2), for the callee who received the INVITE over it as well."""
    bob = UserAgent("bob", tls_server=server_context(certificates.certfile, certificates.keyfile))
    alice = UserAgent("alice", transports=("wss",), tls_client=client_context(certificates.cafile))
    try:
        at = await bob.listen("wss", "127.0.0.1", 0)
        answered = answer_calls(bob)
        call = await asyncio.wait_for(
            alice.call(f"sips:bob@127.0.0.1:{at.port};transport=ws"), TIMEOUT
        )
        callee = await asyncio.wait_for(answered.get(), TIMEOUT)
        assert call.invite is not None and call.invite.via[0].transport == "WSS"
        assert call.dialog is not None and call.dialog.secure
        assert callee.dialog is not None and callee.dialog.secure
        await asyncio.wait_for(call.hangup(), TIMEOUT)
    finally:
        await alice.close()
        await bob.close()
