"""Session timers (RFC 4028) between two agents on loopback, with intervals of seconds.

The rules themselves are checked in virtual time in ``tests/sip/test_sip_sessiontimer.py``;
these show them on the wire: the interval agreed, 422 and the retry, refreshes by the
chosen side that leave media and hold alone, BYE when nobody refreshed, nothing left armed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from sdp import Direction
from voip.call import Call, CallState
from voip.negotiation import Negotiation, default_audio
from voip.sip import Request
from voip.sip.sessiontimer import SessionExpired, SessionTimer, SessionTimerPolicy
from voip.sip.transaction import ServerTransaction, Timers
from voip.useragent import UserAgent

TIMEOUT = 10.0
# refresh at 3 s, BYE by the other side at 4 s when none came: short, with a margin
INTERVAL = 6
FAST = SessionTimerPolicy(session_expires=INTERVAL, min_se=2)  # refreshes by UPDATE
BY_INVITE = SessionTimerPolicy(session_expires=INTERVAL, min_se=2, refresh_with="INVITE")


class Recording(UserAgent):
    """An agent that keeps every request it receives, as it arrived."""

    def __init__(self, user: str, **options: Any) -> None:
        super().__init__(user, **options)
        self.received: list[Request] = []

    def _on_request(self, transaction: ServerTransaction, request: Request) -> None:
        self.received.append(request)
        super()._on_request(transaction, request)

    def requests(self, method: str) -> list[Request]:
        return [r for r in self.received if r.method == method]


Agents = Callable[..., Awaitable[Recording]]


@pytest.fixture
async def agents() -> AsyncIterator[Agents]:
    started: list[UserAgent] = []

    async def start(user: str, **options: Any) -> Recording:
        ua = Recording(user, **options)
        await ua.listen("udp", "127.0.0.1", 0)
        started.append(ua)
        return ua

    yield start
    for ua in started:
        await ua.close(timeout=2.0)


def uri_of(ua: UserAgent) -> str:
    endpoint = ua.listening[0]
    return f"sip:{ua.user}@{endpoint.host}:{endpoint.port}"


def answer_calls(ua: UserAgent) -> asyncio.Queue[Call]:
    calls: asyncio.Queue[Call] = asyncio.Queue()

    async def on_call(call: Call) -> None:
        await call.accept()
        calls.put_nowait(call)

    ua.on("incoming_call", on_call)
    return calls


async def connected(alice: UserAgent, bob: UserAgent, **dial: object) -> tuple[Call, Call]:
    calls = answer_calls(bob)
    caller = alice.dial(uri_of(bob), **dial)  # type: ignore[arg-type]
    await asyncio.wait_for(caller.answered(), TIMEOUT)
    callee = await asyncio.wait_for(calls.get(), TIMEOUT)
    await asyncio.sleep(0.05)  # the ACK
    return caller, callee


async def fast_call(
    agents: Agents, *, alice: dict[str, Any] | None = None, bob: dict[str, Any] | None = None
) -> tuple[Recording, Recording, Call, Call]:
    """alice calls bob, both with the FAST policy unless options say otherwise."""
    caller_ua = await agents("alice", **{"session_timers": FAST, **(alice or {})})
    callee_ua = await agents("bob", **{"session_timers": FAST, **(bob or {})})
    caller, callee = await connected(caller_ua, callee_ua)
    return caller_ua, callee_ua, caller, callee


def timer_of(call: Call) -> SessionTimer:
    assert call.session_timer is not None
    return call.session_timer


async def refreshes(call: Call, count: int) -> None:
    """Wait until the session interval of ``call`` has started again ``count`` times."""
    done = asyncio.Event()
    seen = 0

    def on_timer(_: SessionTimer) -> None:
        nonlocal seen
        seen += 1
        if seen >= count:
            done.set()

    call.on("session_timer", on_timer)
    await asyncio.wait_for(done.wait(), count * INTERVAL + TIMEOUT)


async def test_the_callers_interval_is_agreed_and_the_uac_refreshes_by_default(
    agents: Agents,
) -> None:
    _, bob, caller, callee = await fast_call(agents)
    invite = bob.requests("INVITE")[0]
    assert "timer" in invite.supported
    assert invite.session_expires is not None and invite.session_expires.delta == INTERVAL
    assert invite.min_se == 2
    assert timer_of(caller).interval == timer_of(callee).interval == INTERVAL
    assert timer_of(caller).we_refresh and not timer_of(callee).we_refresh
    assert caller.session_deadline is not None and callee.session_deadline is not None


async def test_the_refresher_re_invites_at_half_the_interval_and_the_call_outlives_it(
    agents: Agents,
) -> None:
    alice, bob, caller, callee = await fast_call(agents, alice={"session_timers": BY_INVITE})
    first_expiry = timer_of(callee).expire_at
    assert first_expiry is not None
    await refreshes(callee, 2)
    assert alice.now() > first_expiry  # two refreshes: 3 s + 3 s, past the first deadline
    refresh = bob.requests("INVITE")[1:]
    assert len(refresh) == 2
    assert str(refresh[0].session_expires) == "6;refresher=uac"  # §7.4: the sender refreshes
    assert "timer" in refresh[0].supported and refresh[0].min_se == 2
    assert caller.state is CallState.ANSWERED and callee.state is CallState.ANSWERED
    assert not bob.requests("UPDATE")


async def test_the_refresher_updates_without_an_offer_when_the_peer_allows_update(
    agents: Agents,
) -> None:
    _, bob, caller, callee = await fast_call(agents)
    media: list[object] = []
    callee.on("media", media.append)
    await refreshes(callee, 2)
    first, second = bob.requests("UPDATE")
    assert str(first.session_expires) == "6;refresher=uac" and first.min_se == 2
    assert not first.body and not second.body  # §7.4: no offer, the media stays as it is
    assert len(bob.requests("INVITE")) == 1  # the initial INVITE only
    assert not media
    assert caller.state is CallState.ANSWERED and callee.state is CallState.ANSWERED


async def test_a_refresh_keeps_the_sdp_version_and_the_hold_state(agents: Agents) -> None:
    _, _, caller, callee = await fast_call(agents, alice={"session_timers": BY_INVITE})
    await asyncio.wait_for(caller.hold(), TIMEOUT)
    assert callee.remote_hold
    assert caller.negotiation.local is not None and callee.negotiation.local is not None
    offered = caller.negotiation.local.origin.sess_version
    answered = callee.negotiation.local.origin.sess_version
    resumed: list[str] = []
    callee.on("resume", lambda: resumed.append("resume"))
    await refreshes(callee, 1)
    await asyncio.sleep(0.1)  # the ACK of the refresh
    # RFC 3264 §8: the refresh offers the session unchanged, so o= keeps its version
    assert caller.negotiation.local.origin.sess_version == offered
    assert callee.negotiation.local.origin.sess_version == answered
    assert callee.remote_hold and caller.on_hold and not resumed
    assert caller.agreed[0].direction is Direction.SENDONLY
    assert callee.agreed[0].direction is Direction.RECVONLY


async def test_a_uas_chosen_as_refresher_refreshes_with_its_own_update(
    agents: Agents,
) -> None:
    policy = SessionTimerPolicy(session_expires=INTERVAL, min_se=2, refresher="uas")
    alice, _, caller, callee = await fast_call(agents, bob={"session_timers": policy})
    assert timer_of(callee).we_refresh and not timer_of(caller).we_refresh
    await refreshes(caller, 1)
    [refresh] = alice.requests("UPDATE")
    assert str(refresh.session_expires) == "6;refresher=uac"  # bob is this UPDATE's UAC
    assert caller.state is CallState.ANSWERED


async def test_a_uas_with_a_larger_min_se_answers_422_and_the_uac_asks_again(
    agents: Agents,
) -> None:
    strict = SessionTimerPolicy(session_expires=1800, min_se=8)
    _, bob, caller, callee = await fast_call(agents, bob={"session_timers": strict})
    assert bob.counters.rejected.get(422) == 1
    first, second = bob.requests("INVITE")
    assert second.cseq.number == first.cseq.number + 1
    assert second.min_se == 8
    assert second.session_expires is not None and second.session_expires.delta == 8
    assert timer_of(caller).interval == timer_of(callee).interval == 8


async def test_the_non_refresher_ends_a_session_whose_refresher_has_gone(
    agents: Agents,
) -> None:
    alice, bob, _, callee = await fast_call(agents, alice={"timers": Timers(t1=0.05)})
    expired: list[SessionExpired] = []
    callee.on("session_expired", expired.append)
    await alice.transport.close()  # alice, the refresher, vanishes without a BYE
    reason = await asyncio.wait_for(callee.ended(), INTERVAL + TIMEOUT)
    assert reason.by == "provider" and reason.status == 408
    assert reason.text.startswith("session timer expired: the peer did not refresh it")
    assert expired == [SessionExpired(INTERVAL, we_refresh=False)]
    assert callee.session_deadline is None and not bob.calls


async def test_a_refresher_whose_refresh_is_not_answered_ends_the_session(
    agents: Agents,
) -> None:
    alice, bob, caller, _ = await fast_call(agents, alice={"timers": Timers(t1=0.05)})
    await bob.transport.close()  # the peer vanishes: the refresh gets no answer
    reason = await asyncio.wait_for(caller.ended(), INTERVAL + TIMEOUT)
    assert reason.by == "provider"
    assert reason.text.startswith("session timer expired: our refresh failed")
    assert caller.session_deadline is None and not alice.calls


async def test_ending_a_call_leaves_no_session_timer_armed(agents: Agents) -> None:
    _, _, caller, callee = await fast_call(agents)
    await asyncio.wait_for(caller.hangup(), TIMEOUT)
    await asyncio.wait_for(callee.ended(), TIMEOUT)
    assert caller.session_deadline is None and callee.session_deadline is None
    assert timer_of(caller).next_deadline() is None
    assert timer_of(callee).next_deadline() is None


async def test_a_peer_without_session_timers_gets_none(agents: Agents) -> None:
    _, _, caller, callee = await fast_call(agents, bob={"session_timers": None})
    assert callee.session_timer is None
    assert not timer_of(caller).running and caller.session_deadline is None
    await asyncio.wait_for(caller.hold(), TIMEOUT)
    assert not timer_of(caller).running and caller.session_deadline is None


async def test_dial_options_override_the_agents_interval(agents: Agents) -> None:
    alice = await agents("alice", session_timers=FAST)
    bob = await agents("bob")  # 1800 s: it takes the caller's shorter interval
    caller, callee = await connected(alice, bob, session_expires=120, min_se=90)
    assert timer_of(caller).interval == timer_of(callee).interval == 120
    assert timer_of(caller).min_se == 90


def test_a_refresh_offer_repeats_the_last_description_sent_with_its_version() -> None:
    # the peer offered PCMA first: our answer differs from a fresh offer of ours, so a
    # refresh repeats the answer itself rather than offering anew (RFC 3264 §8)
    peer = Negotiation("192.0.2.1", [default_audio(30000, ("PCMU", "PCMA"))])
    peer.media[0].codecs.reverse()
    ours = Negotiation("192.0.2.2", [default_audio(40000)])
    answer = ours.receive_offer(peer.create_offer())
    refresh = ours.repeat_offer()
    assert refresh == answer
    assert ours.create_offer() != answer  # what a fresh offer would have been
    ours.repeat_offer()
    agreed = ours.receive_answer(peer.receive_offer(refresh))
    assert agreed[0].codecs[0].name == "PCMA" and agreed[0].direction is Direction.SENDRECV
