"""Call.accept_now: the 2xx sent from the "incoming_call" handler itself, no task needed;
never before the PRACK of a reliable provisional response (RFC 3262 §3)."""

from __future__ import annotations

import asyncio

import pytest
from support.ua import TIMEOUT, uri_of

from voip.call import Call, CallState
from voip.sip import SipError
from voip.useragent import UserAgent


async def test_accept_now_answers_from_the_incoming_call_handler(
    alice: UserAgent, bob: UserAgent
) -> None:
    answered: list[Call] = []

    def on_call(call: Call) -> None:
        call.accept_now()
        answered.append(call)

    bob.on("incoming_call", on_call)
    caller = await asyncio.wait_for(alice.call(uri_of(bob)), TIMEOUT)
    callee = answered[0]
    assert caller.state is CallState.ANSWERED and callee.state is CallState.ANSWERED
    assert [m.media for m in caller.agreed if m.accepted] == ["audio"]
    assert callee.media is not None and caller.agreed[0].remote_port == callee.media.port
    await asyncio.wait_for(caller.hangup(), TIMEOUT)


async def test_accept_now_refuses_while_a_reliable_provisional_awaits_its_prack(
    alice: UserAgent, bob: UserAgent
) -> None:
    refused: list[int] = []

    async def on_call(call: Call) -> None:
        await call.ring(early_media=True)  # reliable: the caller supports 100rel
        try:
            call.accept_now()  # the PRACK cannot have come yet
        except SipError as error:
            refused.append(error.status)
        await call.accept(wait_ack=False)  # waits for the PRACK, then answers

    bob.on("incoming_call", on_call)
    caller = await asyncio.wait_for(alice.call(uri_of(bob)), TIMEOUT)
    assert refused == [500]
    assert caller.state is CallState.ANSWERED
    await asyncio.wait_for(caller.hangup(), TIMEOUT)


async def test_accept_now_on_an_answered_call_is_481(alice: UserAgent, bob: UserAgent) -> None:
    calls: list[Call] = []
    bob.on("incoming_call", lambda call: (call.accept_now(), calls.append(call)))
    caller = await asyncio.wait_for(alice.call(uri_of(bob)), TIMEOUT)
    with pytest.raises(SipError) as raised:
        calls[0].accept_now()
    assert raised.value.status == 481
    await asyncio.wait_for(caller.hangup(), TIMEOUT)
