"""UPDATE (RFC 3311) between two toolkit agents on loopback: offer/answer without a
re-INVITE, target refresh, and the refusals of §5.2 (491 and 500 with Retry-After)."""

from __future__ import annotations

import asyncio

import pytest
from support.ua import TIMEOUT, connected, ringing

from sdp import Direction
from voip.sip import SipUri
from voip.sip.dialog import OfferAnswer
from voip.useragent import RequestFailed, UserAgent


async def test_update_from_the_caller_holds_and_resumes_the_callee(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, callee = await connected(alice, bob)
    changes: asyncio.Queue[str] = asyncio.Queue()
    callee.on("hold", lambda: changes.put_nowait("hold"))
    callee.on("resume", lambda: changes.put_nowait("resume"))
    response = await asyncio.wait_for(caller.update(hold=True), TIMEOUT)
    assert response.status == 200 and response.cseq.method == "UPDATE"
    assert await asyncio.wait_for(changes.get(), TIMEOUT) == "hold"
    assert caller.agreed[0].direction is Direction.SENDONLY
    assert callee.agreed[0].direction is Direction.RECVONLY
    await asyncio.wait_for(caller.update(hold=False), TIMEOUT)
    assert await asyncio.wait_for(changes.get(), TIMEOUT) == "resume"
    assert caller.agreed[0].direction is Direction.SENDRECV
    assert caller.dialog is not None and callee.dialog is not None
    assert caller.dialog.offer_answer is OfferAnswer.STABLE
    assert callee.dialog.offer_answer is OfferAnswer.STABLE


async def test_update_from_the_callee_holds_the_caller(alice: UserAgent, bob: UserAgent) -> None:
    caller, callee = await connected(alice, bob)
    held = asyncio.Event()
    caller.on("hold", held.set)
    await asyncio.wait_for(callee.update(hold=True), TIMEOUT)
    await asyncio.wait_for(held.wait(), TIMEOUT)
    assert callee.agreed[0].direction is Direction.SENDONLY
    assert caller.agreed[0].direction is Direction.RECVONLY


async def test_an_update_without_an_offer_refreshes_the_remote_target(
    alice: UserAgent, bob: UserAgent
) -> None:
    """RFC 3311 §5.1/§5.2: UPDATE is a target refresh request; its 2xx's Contact is too."""
    caller, callee = await connected(alice, bob)
    assert caller.dialog is not None and callee.dialog is not None
    moved = callee.dialog.local_contact
    assert moved is not None and isinstance(moved.uri, SipUri)
    moved.uri = SipUri(host=moved.uri.host, port=moved.uri.port, user="bob-moved")
    agreed_before = caller.agreed
    response = await asyncio.wait_for(callee.update(offer=False), TIMEOUT)
    assert response.status == 200 and not response.body
    target = caller.dialog.remote_target
    assert isinstance(target, SipUri) and target.user == "bob-moved"
    # and the 2xx's Contact refreshes the sender's view of its peer
    assert caller.dialog.local_contact is not None
    caller.dialog.local_contact.uri = SipUri(
        host=moved.uri.host, port=alice.listening[0].port, user="alice-moved"
    )
    await asyncio.wait_for(caller.update(offer=False), TIMEOUT)
    assert isinstance(callee.dialog.remote_target, SipUri)
    assert callee.dialog.remote_target.user == "alice-moved"
    assert caller.agreed == agreed_before  # no offer: the session is unchanged
    # the refreshed target is used: a BYE to it ends the call
    await asyncio.wait_for(caller.hangup(), TIMEOUT)
    assert (await asyncio.wait_for(callee.ended(), TIMEOUT)).by == "remote"


async def test_an_update_offer_while_ours_is_outstanding_gets_491(
    alice: UserAgent, bob: UserAgent
) -> None:
    """RFC 3311 §5.2: the UAS has sent an offer it has no answer to yet."""
    caller, callee = await connected(alice, bob)
    assert caller.dialog is not None and callee.dialog is not None
    callee.dialog.sent_offer(b"v=0 an offer in flight")
    offer = caller.negotiation.create_offer()
    request = caller.dialog.create_request("UPDATE", body=offer, content_type="application/sdp")
    with pytest.raises(RequestFailed) as error:
        await asyncio.wait_for(alice.request(request), TIMEOUT)
    assert error.value.status == 491
    assert callee.dialog.offer_answer is OfferAnswer.LOCAL_OFFER  # ours is still pending


async def test_an_update_offer_in_the_early_dialog_before_the_answer_gets_500_retry_after(
    alice: UserAgent, bob: UserAgent
) -> None:
    """RFC 3311 §5.2: the callee has the INVITE's offer and has not answered it yet."""
    caller, callee = await ringing(alice, bob)
    early = next(iter(caller.early.values()))
    assert callee.dialog is not None
    assert callee.dialog.offer_answer is OfferAnswer.REMOTE_OFFER
    request = early.create_request(
        "UPDATE", body=caller.negotiation.create_offer(), content_type="application/sdp"
    )
    with pytest.raises(RequestFailed) as error:
        await asyncio.wait_for(alice.request(request), TIMEOUT)
    assert error.value.status == 500
    assert error.value.response is not None
    assert 0 <= int(error.value.response.headers.get("Retry-After") or "-1") <= 10
    await asyncio.wait_for(callee.accept(), TIMEOUT)
    await asyncio.wait_for(caller.answered(), TIMEOUT)


async def test_a_second_invite_during_the_first_gets_500_retry_after(
    alice: UserAgent, bob: UserAgent
) -> None:
    """RFC 3261 §14.2: an INVITE in the dialog while the first INVITE is still pending."""
    caller, callee = await ringing(alice, bob)
    early = next(iter(caller.early.values()))
    request = early.create_request("INVITE")
    with pytest.raises(RequestFailed) as error:
        await asyncio.wait_for(alice.request(request), TIMEOUT)
    assert error.value.status == 500
    assert error.value.response is not None and error.value.response.headers.get("Retry-After")
    await asyncio.wait_for(callee.reject(486), TIMEOUT)
