"""The toolkit over SIP over WebSocket (RFC 7118) at Kamailio, which serves ws and wss
with its websocket module: registration with digest auth over the WebSocket connection,
calls from it to baresip (registered over UDP) and from baresip to it, BYE from either
side. Kamailio cannot open a WebSocket connection, so everything toward the toolkit
travels the connection the toolkit opened (RFC 7118 §5)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import pytest
from support.peers import Baresip, Kamailio, LoopbackPki
from support.ua import answer_calls, client_only, media_of

from sdp import Direction
from voip.useragent import UserAgent

TIMEOUT = 15.0
T = TypeVar("T")


def within(awaitable: Awaitable[T]) -> Awaitable[T]:
    return asyncio.wait_for(awaitable, TIMEOUT)


@asynccontextmanager
async def websocket_agent(
    kamailio: Kamailio, pki: LoopbackPki, user: str, transport: str
) -> AsyncIterator[UserAgent]:
    """A toolkit UA that only opens WebSocket connections, to Kamailio as its proxy,
    registered over it (digest auth, 401 then 200)."""
    async with client_only(kamailio, pki, user, transport) as ua:
        await within(ua.register(kamailio.uri(transport=transport), expires=300))
        (contact,) = await kamailio.contacts(user)
        (flow,) = ua.transport.connections
        assert flow.remote.port == kamailio.port(transport)
        # The binding is the connection's own address, reached back over it: an RFC 5626
        # flow (";ob", the agent's instance and reg-id=1).
        assert contact.address == (
            f"sip:{user}@127.0.0.1:{flow.local.port};transport={transport};ob"
        )
        yield ua


async def audio_arrives(ua: UserAgent) -> None:
    """Wait until half a second of baresip's speech has come in over RTP."""
    (call,) = set(ua.calls.values())
    media = media_of(call)
    async with asyncio.timeout(TIMEOUT):
        while media.statistics().packets_received < 25:
            await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("transport", "ended_by"), [("ws", "toolkit"), ("ws", "baresip"), ("wss", "toolkit")]
)
async def test_the_toolkit_over_websocket_calls_baresip_through_kamailio(
    transport: str,
    ended_by: str,
    kamailio_websocket: Kamailio,
    loopback_pki: LoopbackPki,
    baresip_factory: Callable[..., Baresip],
) -> None:
    kamailio = kamailio_websocket
    bob = baresip_factory("bob", registrar=kamailio)
    await kamailio.wait_registered("bob")
    async with websocket_agent(kamailio, loopback_pki, "alice", transport) as ua:
        call = await within(ua.call(kamailio.aor("bob")))
        await bob.wait_established()
        assert call.invite is not None and call.invite.via[0].transport == transport.upper()
        assert call.agreed[0].direction is Direction.SENDRECV
        await audio_arrives(ua)
        if ended_by == "toolkit":
            await within(call.hangup())
            await bob.wait_closed()
            assert call.end_reason is not None and call.end_reason.by == "local"
        else:
            await bob.hangup()
            assert (await within(call.ended())).by == "remote"
        assert not ua.calls
        assert ua.transport.counters.connections_opened == 1  # one flow served it all


@pytest.mark.parametrize(("transport", "ended_by"), [("ws", "baresip"), ("wss", "toolkit")])
async def test_baresip_calls_the_toolkit_registered_over_websocket_and_is_answered(
    transport: str,
    ended_by: str,
    kamailio_websocket: Kamailio,
    loopback_pki: LoopbackPki,
    baresip_factory: Callable[..., Baresip],
) -> None:
    kamailio = kamailio_websocket
    async with websocket_agent(kamailio, loopback_pki, "carol", transport) as ua:
        answered = answer_calls(ua)
        alice = baresip_factory("alice", registrar=kamailio)
        await kamailio.wait_registered("alice")
        await alice.dial(kamailio.aor("carol"))
        call = await within(answered.get())
        await alice.wait_established()
        assert call.invite is not None and call.invite.via[0].transport == transport.upper()
        assert call.agreed[0].direction is Direction.SENDRECV
        await audio_arrives(ua)
        if ended_by == "toolkit":
            await within(call.hangup())
            await alice.wait_closed()
        else:
            await alice.hangup()
            assert (await within(call.ended())).by == "remote"
        assert not ua.calls
        assert ua.transport.counters.connections_opened == 1
