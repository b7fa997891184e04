"""Reliable provisional responses (RFC 3262) between two toolkit agents on loopback:
PRACK for reliable 1xx, offer/answer in the 183 and the PRACK, the 2xx after the PRACK,
481 for a PRACK that matches nothing, retransmission until 64·T1, and UPDATE in the
early dialog that the reliable exchange opens (RFC 3311 §5.1)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from support.ua import TIMEOUT, received, ringing, uri_of

from sdp import Direction
from voip.call import Call, CallState
from voip.sip import Request, Response
from voip.sip.dialog import OfferAnswer
from voip.sip.reliable import Rel100, is_reliable
from voip.sip.transaction import Timers
from voip.useragent import RequestFailed, UserAgent


def responses(messages: list[Request | Response], method: str = "INVITE") -> list[Response]:
    return [m for m in messages if isinstance(m, Response) and m.cseq.method == method]


def requests(messages: list[Request | Response], method: str) -> list[Request]:
    return [m for m in messages if isinstance(m, Request) and m.method == method]


async def until(condition: Callable[[], object]) -> None:
    async with asyncio.timeout(TIMEOUT):
        while not condition():
            await asyncio.sleep(0.01)


async def test_the_invite_says_supported_100rel(alice: UserAgent, bob: UserAgent) -> None:
    seen = received(bob)
    caller, callee = await ringing(alice, bob)
    invite = requests(seen, "INVITE")[0]
    assert "100rel" in invite.supported and "100rel" not in invite.require
    assert len(invite.headers.get_all("Supported")) == 1  # with "timer": one field for all
    assert "PRACK" in callee._response(180).allow
    await asyncio.wait_for(caller.cancel(), TIMEOUT)


async def test_a_reliable_183_with_the_answer_is_pracked_and_the_2xx_has_no_sdp(
    alice: UserAgent, bob: UserAgent
) -> None:
    at_alice, at_bob = received(alice), received(bob)
    caller, callee = await ringing(alice, bob, early_media=True)
    early: asyncio.Queue[object] = asyncio.Queue()
    await until(lambda: requests(at_bob, "PRACK"))
    progress = [r for r in responses(at_alice) if r.status == 183]
    assert len(progress) == 1 and is_reliable(progress[0]) and progress[0].body
    prack = requests(at_bob, "PRACK")[0]
    assert prack.rack is not None and prack.rack.rseq == progress[0].rseq
    assert prack.rack.cseq == progress[0].cseq.number and prack.rack.method == "INVITE"
    assert caller.agreed and caller.agreed[0].direction is Direction.SENDRECV
    caller.on("early_media", early.put_nowait)
    await asyncio.wait_for(callee.accept(), TIMEOUT)
    await asyncio.wait_for(caller.answered(), TIMEOUT)
    final = [r for r in responses(at_alice) if r.status == 200]
    assert final and not final[0].body  # RFC 3262 §5: the answer was in the 183
    assert caller.agreed[0].codecs[0].name == callee.agreed[0].codecs[0].name == "PCMU"
    assert not requests(at_bob, "ACK")[0].body
    assert early.empty()


async def test_require_100rel_makes_even_the_180_reliable(alice: UserAgent, bob: UserAgent) -> None:
    at_alice = received(alice)
    pracks: asyncio.Queue[Request] = asyncio.Queue()
    incoming: asyncio.Queue[Call] = asyncio.Queue()

    async def on_call(call: Call) -> None:
        call.on("prack", pracks.put_nowait)
        await call.ring()  # no wish: "Require: 100rel" decides (RFC 3262 §3)
        incoming.put_nowait(call)

    bob.on("incoming_call", on_call)
    caller = alice.dial(uri_of(bob), rel100=Rel100.REQUIRED)
    callee = await asyncio.wait_for(incoming.get(), TIMEOUT)
    prack = await asyncio.wait_for(pracks.get(), TIMEOUT)
    ring = next(r for r in responses(at_alice) if r.status == 180)
    assert is_reliable(ring) and prack.rack is not None and prack.rack.rseq == ring.rseq
    await asyncio.wait_for(callee.accept(), TIMEOUT)
    await asyncio.wait_for(caller.answered(), TIMEOUT)
    final = next(r for r in responses(at_alice) if r.status == 200)
    assert final.body  # the 180 had no SDP: the answer is in the 2xx


async def test_the_2xx_waits_for_the_prack_of_the_reliable_provisional(
    alice: UserAgent, bob: UserAgent
) -> None:
    order: list[str] = []

    async def on_call(call: Call) -> None:
        call.on("prack", lambda request: order.append("PRACK"))
        await call.ring(early_media=True)
        await call.accept(wait_ack=False)  # at once: it must wait for the PRACK (§3)
        order.append("200")

    bob.on("incoming_call", on_call)
    caller = await asyncio.wait_for(alice.call(uri_of(bob)), TIMEOUT)
    assert order == ["PRACK", "200"]
    assert caller.state is CallState.ANSWERED


async def test_an_offer_in_the_reliable_183_is_answered_in_the_prack(
    alice: UserAgent, bob: UserAgent
) -> None:
    """RFC 3262 §5: an INVITE without an offer; the offer in the reliable 183."""
    at_alice, at_bob = received(alice), received(bob)
    incoming: asyncio.Queue[Call] = asyncio.Queue()

    async def on_call(call: Call) -> None:
        await call.ring(early_media=True)
        incoming.put_nowait(call)

    bob.on("incoming_call", on_call)
    caller = alice.dial(uri_of(bob), offer=False)
    callee = await asyncio.wait_for(incoming.get(), TIMEOUT)
    await until(lambda: requests(at_bob, "PRACK"))
    assert not requests(at_bob, "INVITE")[0].body
    assert next(r for r in responses(at_alice) if r.status == 183).body  # the offer
    assert requests(at_bob, "PRACK")[0].body  # the answer
    await until(lambda: callee.agreed)
    assert callee.dialog is not None and callee.dialog.offer_answer is OfferAnswer.STABLE
    await asyncio.wait_for(callee.accept(), TIMEOUT)
    await asyncio.wait_for(caller.answered(), TIMEOUT)
    assert not next(r for r in responses(at_alice) if r.status == 200).body
    assert not requests(at_bob, "ACK")[0].body
    assert caller.agreed[0].direction is callee.agreed[0].direction is Direction.SENDRECV


async def test_a_prack_that_matches_no_reliable_provisional_gets_481(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, callee = await ringing(alice, bob, early_media=True)
    early = next(iter(caller.early.values()))
    assert callee._reliable is not None
    await until(lambda: callee._reliable is not None and not callee._reliable.outstanding)
    invite = caller.invite
    assert invite is not None
    unknown = f"{callee._reliable.next_rseq + 5} {invite.cseq.number} INVITE"
    request = early.create_request("PRACK", headers=[("RAck", unknown)])
    with pytest.raises(RequestFailed) as error:
        await asyncio.wait_for(alice.request(request), TIMEOUT)
    assert error.value.status == 481
    # the early dialog survives it: the call is answered all the same
    await asyncio.wait_for(callee.accept(), TIMEOUT)
    await asyncio.wait_for(caller.answered(), TIMEOUT)


@pytest.fixture
async def impatient_bob() -> AsyncIterator[UserAgent]:
    """bob with T1 = 50 ms: 64·T1 is 3.2 s."""
    ua = UserAgent("bob", timers=Timers(t1=0.05, t2=0.4, t4=0.5))
    await ua.listen("udp", "127.0.0.1", 0)
    yield ua
    await ua.close()


async def test_an_unacknowledged_reliable_180_is_retransmitted_then_the_invite_gets_500(
    alice: UserAgent, impatient_bob: UserAgent
) -> None:
    """RFC 3262 §3: every T1 doubling; after 64·T1 without PRACK, a 5xx."""
    at_alice = received(alice)

    async def on_call(call: Call) -> None:
        await call.ring(reliable=True)
        await call.accept()

    impatient_bob.on("incoming_call", on_call)
    # alice says it supports 100rel but never sends PRACK
    call = alice.dial(
        uri_of(impatient_bob), rel100=Rel100.DISABLED, headers=[("Supported", "100rel")]
    )
    with pytest.raises(RequestFailed) as error:
        await asyncio.wait_for(call.answered(), TIMEOUT)
    assert error.value.status == 500
    rings = [r for r in responses(at_alice) if r.status == 180]
    assert len(rings) >= 5 and all(is_reliable(r) for r in rings)
    assert len({r.rseq for r in rings}) == 1  # the same response again, not a new one


async def test_update_in_the_early_dialog_after_the_reliable_answer(
    alice: UserAgent, bob: UserAgent
) -> None:
    """RFC 3311 §5.1: UPDATE once the INVITE's offer is answered in a reliable 1xx."""
    caller, callee = await ringing(alice, bob, early_media=True)
    await until(lambda: callee._reliable is not None and not callee._reliable.outstanding)
    held = asyncio.Event()
    callee.on("hold", held.set)
    response = await asyncio.wait_for(caller.update(hold=True), TIMEOUT)
    assert response.status == 200
    await asyncio.wait_for(held.wait(), TIMEOUT)
    assert callee.state is CallState.INCOMING and callee.agreed[0].direction is Direction.RECVONLY
    # and the callee can update the early session too
    await asyncio.wait_for(callee.update(hold=False), TIMEOUT)
    assert caller.agreed[0].direction is Direction.SENDONLY  # the caller still holds
    await asyncio.wait_for(callee.accept(), TIMEOUT)
    await asyncio.wait_for(caller.answered(), TIMEOUT)
    assert caller.agreed[0].direction is Direction.SENDONLY
    await asyncio.wait_for(caller.update(hold=False), TIMEOUT)
    assert caller.agreed[0].direction is callee.agreed[0].direction is Direction.SENDRECV


async def test_unreliable_early_media_keeps_the_offer_for_the_2xx(
    alice: UserAgent, bob: UserAgent
) -> None:
    """Without 100rel the 183's answer is a preview: the 2xx's SDP is the answer, and
    the ACK carries none (RFC 3261 §13.2.1)."""
    at_bob = received(bob)
    incoming: asyncio.Queue[Call] = asyncio.Queue()

    async def on_call(call: Call) -> None:
        await call.ring(early_media=True)
        incoming.put_nowait(call)

    bob.on("incoming_call", on_call)
    early: asyncio.Queue[object] = asyncio.Queue()
    caller = alice.dial(uri_of(bob), rel100=Rel100.DISABLED)
    caller.on("early_media", early.put_nowait)
    callee = await asyncio.wait_for(incoming.get(), TIMEOUT)
    await asyncio.wait_for(early.get(), TIMEOUT)
    await asyncio.wait_for(callee.accept(), TIMEOUT)
    await asyncio.wait_for(caller.answered(), TIMEOUT)
    assert not requests(at_bob, "PRACK")
    assert not requests(at_bob, "ACK")[0].body
    assert caller.dialog is not None and caller.dialog.offer_answer is OfferAnswer.STABLE
