"""UAC features against real peers: forking, early media, a 180 after the 200.

* Forking (RFC 3261 §13.2.2.4, §16.7): Kamailio forks one INVITE in parallel to the two
  contacts registered for one AoR (``lookup`` appends a branch per contact); and a SIPp
  UAS that answers with two To tags. Several early dialogs, the first 2xx wins, a later
  2xx gets ACK then BYE.
* Early media (RFC 3960, RFC 3264 answer in a 183): SIPp answers in a 183, then 200.
* A 180 after the 200 (as Kamailio's UDP workers may relay them): the call stays answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from support.peers import Kamailio, Sipp
from support.sip_trace import SipTrace, traced_agent

from sdp import Direction
from voip.call import Call, CallState
from voip.sip import Credentials

TIMEOUT = 15.0


def traced(user: str = "alice", **options: object) -> Any:
    return traced_agent(user, **options)


def kamailio_user(kamailio: Kamailio, user: str) -> dict[str, object]:
    return {
        "domain": kamailio.domain,
        "credentials": [Credentials(user, kamailio.users[user])],
        "outbound_proxy": kamailio.outbound_proxy("udp"),
    }


# --- early media ------------------------------------------------------------------------------


async def test_a_183_with_sdp_starts_early_media_on_the_answer_it_carries(sipp: Sipp) -> None:
    uas = sipp.start("uas_early_media", calls=1, duration_ms=300)
    async with traced() as (ua, trace):
        call = ua.dial(uas.uri("sipp"))
        early: asyncio.Queue[list[object]] = asyncio.Queue()
        call.on("early_media", early.put_nowait)
        agreed = await asyncio.wait_for(early.get(), TIMEOUT)
        assert call.state is CallState.RINGING
        # the negotiated stream: sipp's address and media port, PCMA (the one codec in common)
        stream = call.agreed[0]
        assert agreed == call.agreed
        assert stream.codecs[0].name == "PCMA" and stream.direction is Direction.SENDRECV
        assert (stream.remote_address, stream.remote_port) == ("127.0.0.1", uas.media_port)
        await asyncio.wait_for(call.answered(), TIMEOUT)
        # the 2xx repeats the answer: the same streams, and no answer of ours in the ACK
        assert call.agreed[0].codecs[0].name == "PCMA"
        ack = trace.find("ACK", "out")[0].message
        assert not ack.body
        assert [t.label for t in trace if t.direction == "in"] == ["100", "183", "200"]
        await asyncio.wait_for(call.hangup(), TIMEOUT)
    result = await uas.wait(TIMEOUT)
    assert result.ok, result.report()


# --- a provisional response after the 2xx -------------------------------------------------------


async def test_a_180_after_the_200_leaves_the_call_answered(sipp: Sipp) -> None:
    uas = sipp.start("uas_late_180", calls=1)
    async with traced() as (ua, trace):
        call = ua.dial(uas.uri("sipp"))
        ringing: list[object] = []
        call.on("ringing", ringing.append)
        await asyncio.wait_for(call.answered(), TIMEOUT)
        await asyncio.wait_for(trace.wait_for("180", "in"), TIMEOUT)
        await asyncio.sleep(0.1)  # let the loop deliver anything the 180 might cause
        assert call.state is CallState.ANSWERED and not ringing
        assert [t.label for t in trace if t.direction == "in"] == ["100", "200", "180"]
        assert [t.label for t in trace if t.direction == "out"] == ["INVITE", "ACK"]
        await asyncio.wait_for(call.hangup(), TIMEOUT)
        assert call.end_reason is not None and call.end_reason.by == "local"
    result = await uas.wait(TIMEOUT)
    assert result.ok, result.report()


# --- forking ----------------------------------------------------------------------------------


async def test_two_forks_answering_the_first_2xx_wins_and_the_second_gets_ack_then_bye(
    sipp: Sipp,
) -> None:
    uas = sipp.start("uas_fork_two_answers", calls=1)
    async with traced() as (ua, trace):
        call = ua.dial(uas.uri("sipp"))
        ringing: list[object] = []
        call.on("ringing", ringing.append)
        await asyncio.wait_for(call.answered(), TIMEOUT)
        bye = await asyncio.wait_for(trace.wait_for("BYE", "out"), TIMEOUT)
        assert call.dialog is not None
        winner = call.dialog.id.remote_tag
        oks = [t.message.to.tag for t in trace.find("200", "in") if t.cseq_method == "INVITE"]
        assert oks[0] == winner and len(set(oks)) == 2
        loser = next(tag for tag in oks if tag != winner)
        assert len(ringing) == 2  # one early dialog per fork
        acked = {t.message.to.tag for t in trace.find("ACK", "out")}
        assert acked == {winner, loser}
        assert bye.message.to.tag == loser
        await asyncio.wait_for(trace.wait_for("200", "in"), TIMEOUT)
        assert call.state is CallState.ANSWERED
        await asyncio.wait_for(call.hangup(), TIMEOUT)
        byes = [t.message.to.tag for t in trace.find("BYE", "out")]
        assert byes == [loser, winner]
    result = await uas.wait(TIMEOUT)
    assert result.ok, result.report()


@asynccontextmanager
async def two_registered_bobs(kamailio: Kamailio) -> AsyncIterator[list[asyncio.Queue[Call]]]:
    """Two toolkit UAs registered as bob at Kamailio: two contacts, so parallel forking.
    Each rings on every call and puts it in its queue; the test decides who answers."""
    async with (
        traced("bob", **kamailio_user(kamailio, "bob")) as (first, _),
        traced("bob", **kamailio_user(kamailio, "bob")) as (second, _),
    ):
        queues: list[asyncio.Queue[Call]] = []
        for ua in (first, second):
            queue: asyncio.Queue[Call] = asyncio.Queue()

            async def ring(call: Call, queue: asyncio.Queue[Call] = queue) -> None:
                await call.ring()
                queue.put_nowait(call)

            ua.on("incoming_call", ring)
            await asyncio.wait_for(ua.register(kamailio.uri(), expires=300), TIMEOUT)
            queues.append(queue)
        assert len(await kamailio.contacts("bob")) == 2
        yield queues


@asynccontextmanager
async def forked_call(kamailio: Kamailio) -> AsyncIterator[tuple[Call, SipTrace, list[Call]]]:
    """Alice calls bob through Kamailio, which forks to both of bob's contacts: her call,
    her trace, and the two ringing forks (answered by neither yet)."""
    async with (
        two_registered_bobs(kamailio) as queues,
        traced("alice", **kamailio_user(kamailio, "alice")) as (ua, trace),
    ):
        call = ua.dial(kamailio.aor("bob"))
        forks = [await asyncio.wait_for(q.get(), TIMEOUT) for q in queues]
        yield call, trace, forks


async def test_kamailio_forks_to_two_contacts_two_early_dialogs_one_answer_the_other_cancelled(
    kamailio: Kamailio,
) -> None:
    async with forked_call(kamailio) as (call, trace, forks):
        await asyncio.wait_for(trace.wait_for("180", "in"), TIMEOUT)
        while len({t.message.to.tag for t in trace.find("180", "in")}) < 2:
            await asyncio.sleep(0.02)
        assert call.state is CallState.RINGING and len(call.early) == 2
        answering, other = forks
        await asyncio.wait_for(answering.accept(), TIMEOUT)
        await asyncio.wait_for(call.answered(), TIMEOUT)
        # Kamailio cancels the branch that did not answer (§16.7 step 10)
        assert (await asyncio.wait_for(other.ended(), TIMEOUT)).status == 487
        assert call.dialog is not None and answering.dialog is not None
        assert call.dialog.id.remote_tag == answering.dialog.id.local_tag
        assert not call.early  # the other early dialog is gone with the 2xx
        await asyncio.wait_for(call.hangup(), TIMEOUT)
        assert (await asyncio.wait_for(answering.ended(), TIMEOUT)).by == "remote"


async def test_kamailio_forks_to_two_contacts_that_both_answer_the_later_2xx_is_ended(
    kamailio: Kamailio,
) -> None:
    async with forked_call(kamailio) as (call, trace, forks):
        # both answer in the same instant: both 2xx leave before Kamailio can CANCEL
        await asyncio.wait_for(
            asyncio.gather(*(fork.accept(wait_ack=False) for fork in forks)), TIMEOUT
        )
        await asyncio.wait_for(call.answered(), TIMEOUT)
        assert call.dialog is not None
        winner = next(f for f in forks if f.local_tag == call.dialog.id.remote_tag)
        loser = next(f for f in forks if f is not winner)
        # the later 2xx: ACK, then BYE; the fork that lost hears a BYE
        assert (await asyncio.wait_for(loser.ended(), TIMEOUT)).by == "remote"
        assert call.invite is not None  # the INVITE with credentials, after the 407
        acked = {
            t.message.to.tag
            for t in trace.find("ACK", "out")
            if t.message.cseq.number == call.invite.cseq.number
        }
        assert acked == {winner.local_tag, loser.local_tag}
        assert [t.message.to.tag for t in trace.find("BYE", "out")] == [loser.local_tag]
        assert call.state is CallState.ANSWERED and winner.state is CallState.ANSWERED
        await asyncio.wait_for(call.hangup(), TIMEOUT)
        assert (await asyncio.wait_for(winner.ended(), TIMEOUT)).by == "remote"
