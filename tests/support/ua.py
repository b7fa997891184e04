"""Helpers for tests that run toolkit user agents against each other on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from voip.call import Call
from voip.rtp import CallMedia
from voip.sip import Credentials, Request, Response
from voip.transport import client_context
from voip.useragent import UserAgent

if TYPE_CHECKING:
    from support.peers import Kamailio, LoopbackPki

TIMEOUT = 10.0


def media_of(call: Call) -> CallMedia:
    """The call's media, which an answered call has."""
    assert call.media is not None
    return call.media


def uri_of(ua: UserAgent) -> str:
    endpoint = ua.listening[0]
    return f"sip:{ua.user}@{endpoint.host}:{endpoint.port}"


def answer_calls(ua: UserAgent, *, ring: bool = True) -> asyncio.Queue[Call]:
    """Answer every incoming call (after a 180); the calls go into the queue."""
    calls: asyncio.Queue[Call] = asyncio.Queue()

    async def on_call(call: Call) -> None:
        if ring:
            await call.ring()
        await call.accept()
        calls.put_nowait(call)

    ua.on("incoming_call", on_call)
    return calls


async def connected(alice: UserAgent, bob: UserAgent) -> tuple[Call, Call]:
    """A call from ``alice`` to ``bob``, answered: (caller's call, callee's call)."""
    calls = answer_calls(bob)
    caller = await asyncio.wait_for(alice.call(uri_of(bob)), TIMEOUT)
    callee = await asyncio.wait_for(calls.get(), TIMEOUT)
    return caller, callee


async def ringing(alice: UserAgent, bob: UserAgent, **ring: Any) -> tuple[Call, Call]:
    """A call from ``alice`` to ``bob`` that rings (``call.ring(**ring)``), unanswered,
    once the caller holds the early dialog: (caller's call, callee's call)."""
    incoming: asyncio.Queue[Call] = asyncio.Queue()

    async def on_call(call: Call) -> None:
        await call.ring(**ring)
        incoming.put_nowait(call)

    bob.on("incoming_call", on_call)
    caller = alice.dial(uri_of(bob))
    callee = await asyncio.wait_for(incoming.get(), TIMEOUT)
    async with asyncio.timeout(TIMEOUT):
        while not caller.early and caller.dialog is None:
            await asyncio.sleep(0.01)
    return caller, callee


def received(ua: UserAgent) -> list[Request | Response]:
    """Every message that reaches ``ua``'s transaction layer from now on, in order (the
    transport's tracers see each one just before it goes up; the layer itself, compiled,
    cannot be wrapped)."""
    messages: list[Request | Response] = []

    def spy(direction: str, message: Any, *args: Any) -> None:
        if direction == "in":
            messages.append(message)

    ua.transport.add_tracer(spy)
    return messages


@asynccontextmanager
async def registered_at(
    kam: Kamailio, user: str, transport: str, host: str, *, timeout: float = 20.0
) -> AsyncIterator[UserAgent]:
    """A toolkit agent for ``user`` listening on ``host``, with ``kam`` as its outbound
    proxy, registered there; closed afterwards."""
    ua = UserAgent(
        user,
        domain=kam.domain,
        credentials=[Credentials(user, kam.users[user])],
        outbound_proxy=kam.outbound_proxy(transport),
    )
    await ua.listen(transport, host, 0)
    try:
        await asyncio.wait_for(ua.register(kam.uri(transport=transport), expires=300), timeout)
        yield ua
    finally:
        await ua.close()


@asynccontextmanager
async def client_only(
    kamailio: Kamailio, pki: LoopbackPki, user: str, transport: str, **options: Any
) -> AsyncIterator[UserAgent]:
    """A toolkit agent that listens on nothing: every request leaves over a connection it
    opens to Kamailio (its proxy and registrar) over ``transport``."""
    ua = UserAgent(
        user,
        domain=kamailio.domain,
        credentials=[Credentials(user, kamailio.users[user])],
        outbound_proxy=kamailio.outbound_proxy(transport),
        transports=(transport,),
        tls_client=client_context(pki.cafile),
        **options,
    )
    async with ua:
        yield ua
