"""One session over several local addresses (issue 5, item 8): mid-prompt the calling
agent moves from 127.0.0.2 to 127.0.0.3 (``UserAgent.rebind``). It listens on the new
address with the same transport, its RTP is re-bound there, and the call's re-INVITE
carries the new Contact (a target refresh) and SDP (new c=/m=, o= version one up). The
far side's RTP and requests go to the new address, the session and its activity survive,
the prompt restarts from the last major sync point, and the recording on the other side
has no gap longer than the move plus one second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.session import play_prompt, sessions_for

import sdp
from voip.call import Call, CallState
from voip.session import Session, State
from voip.session import primitives as p
from voip.sip import Request, SipUri
from voip.useragent import UserAgent

TIMEOUT = 10.0
OLD, NEW = "127.0.0.2", "127.0.0.3"


def uri(ua: UserAgent, transport: str) -> str:
    endpoint = ua.listening[0]
    return f"sip:{ua.user}@{endpoint.host}:{endpoint.port};transport={transport}"


@pytest.fixture(params=["udp", "tcp"])
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[tuple[UserAgent, UserAgent, str]]:
    transport: str = request.param
    alice, bob = UserAgent("alice"), UserAgent("bob")
    await alice.listen(transport, OLD, 0)
    await bob.listen(transport, "127.0.0.1", 0)
    yield alice, bob, transport
    await alice.close()
    await bob.close()


async def test_a_session_moved_to_a_new_local_address_goes_on_from_the_major_sync_point(
    pair: tuple[UserAgent, UserAgent, str], tmp_path: Path
) -> None:
    alice, bob, transport = pair
    callees = sessions_for(bob)
    caller = await asyncio.wait_for(Session.connect(alice, uri(bob, transport)), TIMEOUT)
    callee = await asyncio.wait_for(callees.get(), TIMEOUT)
    assert caller.call.media is not None and callee.call.media is not None
    assert callee.call.media.stream.latched == (OLD, caller.call.media.port)
    offered = callee.call.negotiation.remote
    assert offered is not None
    restarted_at: list[int] = []
    caller.on("S-RESYNCHRONIZE confirm", lambda _: restarted_at.append(caller.position))
    prompt = await play_prompt(caller, callee, 3.0, tmp_path / "bob.wav")

    restarting = asyncio.ensure_future(caller.wait_for(p.ResynchronizeConfirm))
    moved = time.monotonic()
    listening = await asyncio.wait_for(alice.rebind(NEW), TIMEOUT)
    restart = await asyncio.wait_for(restarting, TIMEOUT)
    outage = time.monotonic() - moved

    # the agent listens on the new address with the same transport, and nothing on the old
    assert [(e.transport, e.host) for e in listening] == [(transport, NEW)]
    assert all(c.local.host != OLD for c in alice.transport.connections)
    # the re-INVITE was a target refresh: bob's dialog now targets the new Contact
    assert callee.call.dialog is not None
    target = callee.call.dialog.remote_target
    assert isinstance(target, SipUri) and target.host == NEW
    # and its SDP named the new RTP address, o= version one up (RFC 3264 §8)
    described = callee.call.negotiation.remote
    assert described is not None
    assert described.connection is not None and described.connection.address == NEW
    assert described.origin.version_number == (offered.origin.version_number or 0) + 1
    assert caller.call.media.stream.ports.host == NEW
    assert callee.call.media.stream.latched == (NEW, caller.call.media.port)
    # the session and its activity survived; the prompt went back to the major sync point
    assert restart.serial == prompt.serial and caller.state is State.STA713
    assert caller.machine.activity == b"prompt" and caller.recoveries == 1
    moves = [e for e in caller.history if isinstance(e, p.PExceptionReportIndication)]
    assert [e.reason for e in moves] == [f"local address changed to {NEW}"]
    indication = await asyncio.wait_for(callee.wait_for(p.ResynchronizeIndication), TIMEOUT)
    assert indication.serial == prompt.serial
    received = caller.call.media.statistics().packets_received
    assert await prompt.finished(caller) < outage + 1.0
    assert restarted_at == [prompt.checkpoint]  # the prompt went back to the sync point
    assert caller.call.media.statistics().packets_received > received  # bob's RTP at NEW
    # bob's in-dialog requests reach alice at the new address
    assert (await asyncio.wait_for(callee.call.options(), TIMEOUT)).status == 200
    assert await asyncio.wait_for(caller.activity_end(), TIMEOUT) == p.ActivityEndConfirm(2)
    await asyncio.wait_for(caller.release(), TIMEOUT)
    await asyncio.wait_for(callee.wait_for(p.ReleaseIndication), TIMEOUT)


async def test_a_call_still_ringing_at_the_move_is_cancelled_and_dialled_again_from_there(
    pair: tuple[UserAgent, UserAgent, str],
) -> None:
    alice, bob, transport = pair
    incoming: asyncio.Queue[Call] = asyncio.Queue()

    async def ring(call: Call) -> None:
        incoming.put_nowait(call)
        await call.ring()

    bob.on("incoming_call", ring)
    caller = alice.dial(uri(bob, transport))
    redialed: list[Request] = []
    caller.on("redialed", redialed.append)
    first = await asyncio.wait_for(incoming.get(), TIMEOUT)
    async with asyncio.timeout(TIMEOUT):
        while caller.state is not CallState.RINGING:
            await asyncio.sleep(0.01)
    assert first.invite is not None and caller.invite is not None
    number = caller.invite.cseq.number

    await asyncio.wait_for(alice.rebind(NEW), TIMEOUT)
    second = await asyncio.wait_for(incoming.get(), TIMEOUT)
    # the INVITE from the old address was CANCELed: bob's first call ended with 487
    ended = await asyncio.wait_for(first.ended(), TIMEOUT)
    assert (ended.by, ended.status) == ("remote", 487)
    # the new INVITE: the same call (Call-ID, From tag), CSeq one more, from NEW
    invite = second.invite
    assert invite is not None and [r.cseq.number for r in redialed] == [number + 1]
    assert invite.call_id == first.invite.call_id
    assert invite.from_.tag == first.invite.from_.tag and invite.cseq.number == number + 1
    assert invite.via[0].host == NEW
    contact = invite.contact[0].uri
    assert isinstance(contact, SipUri) and contact.host == NEW
    offer = sdp.parse(invite.body)
    assert offer.connection is not None and offer.connection.address == NEW
    # answered, the call is one dialog with alice at the new address
    await asyncio.wait_for(second.accept(), TIMEOUT)
    await asyncio.wait_for(caller.answered(), TIMEOUT)
    assert caller.state is CallState.ANSWERED and first.state is CallState.ENDED
    assert caller.media is not None and caller.media.stream.ports.host == NEW
    assert second.media is not None
    async with asyncio.timeout(TIMEOUT):  # bob's RTP reaches alice's new port
        while caller.media.statistics().packets_received == 0:
            await caller.media.write(b"\0" * 320)  # so that bob latches to it
            await asyncio.sleep(0.02)
    assert second.media.stream.latched == (NEW, caller.media.port)
    assert (await asyncio.wait_for(second.options(), TIMEOUT)).status == 200
    assert [c for c in dict.fromkeys(bob.calls.values()) if c.state is CallState.ANSWERED] == [
        second
    ]
    await asyncio.wait_for(caller.hangup(), TIMEOUT)
    await asyncio.wait_for(second.ended(), TIMEOUT)
