"""UAC behaviours between toolkit agents on loopback: re-INVITE glare (RFC 3261 §14.1)
and failover across the targets DNS gives for the next hop (RFC 3263 §4.3).

Forking, early media and late provisional responses against real peers are in
``tests/interop/test_uac_features.py``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest
from support.dns_server import DnsServer
from support.sip_trace import SipTrace

import voip.call
from sdp import Direction
from voip.call import Call, CallState, glare_backoff
from voip.sip.transaction import Timers
from voip.useragent import RequestFailed, UserAgent

TIMEOUT = 10.0


async def started(ua: UserAgent) -> UserAgent:
    await ua.listen("udp", "127.0.0.1", 0)
    return ua


def uri_of(ua: UserAgent) -> str:
    endpoint = ua.listening[0]
    return f"sip:{ua.user}@{endpoint.host}:{endpoint.port}"


def answer_calls(ua: UserAgent, status: int = 200) -> asyncio.Queue[Call]:
    """Answer every call with ``status`` (200, or a refusal); the calls go into the queue."""
    calls: asyncio.Queue[Call] = asyncio.Queue()

    async def on_call(call: Call) -> None:
        calls.put_nowait(call)
        if status == 200:
            await call.accept()
        else:
            await call.reject(status)

    ua.on("incoming_call", on_call)
    return calls


# --- 491 glare (§14.1) ------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(50))
def test_the_glare_backoff_is_2_1_to_4_s_for_the_call_id_owner_and_0_to_2_s_otherwise(
    seed: int,
) -> None:
    rng = random.Random(seed)
    owner = glare_backoff(owns_call_id=True, uniform=rng.uniform)
    other = glare_backoff(owns_call_id=False, uniform=rng.uniform)
    assert 2.1 <= owner <= 4.0 and 0.0 <= other <= 2.0
    # §14.1: "in units of 10 ms"
    assert round(owner * 100) == pytest.approx(owner * 100) and round(other * 100) == pytest.approx(
        other * 100
    )


def test_the_glare_backoff_bounds_are_reached_at_the_ends_of_the_draw() -> None:
    assert glare_backoff(owns_call_id=True, uniform=lambda low, high: low) == 2.1
    assert glare_backoff(owns_call_id=True, uniform=lambda low, high: high) == 4.0
    assert glare_backoff(owns_call_id=False, uniform=lambda low, high: low) == 0.0
    assert glare_backoff(owns_call_id=False, uniform=lambda low, high: high) == 2.0


async def test_simultaneous_reinvites_both_get_491_and_back_off_by_call_id_ownership(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both sides hold at once: each re-INVITE meets the other's offer and gets 491; the
    caller (who made the Call-ID) waits 2.1 to 4 s, the callee 0 to 2 s, so the callee's retry
    goes first and the caller's follows. Time runs ten times faster here: the draws are
    the real ones, the sleeps a tenth of them."""
    draws: dict[bool, list[float]] = {True: [], False: []}

    def compressed(*, owns_call_id: bool) -> float:
        delay = glare_backoff(owns_call_id=owns_call_id)
        draws[owns_call_id].append(delay)
        return delay / 10

    monkeypatch.setattr(voip.call, "glare_backoff", compressed)
    alice = UserAgent("alice")
    bob = UserAgent("bob")
    alice_trace, bob_trace = SipTrace.attach(alice), SipTrace.attach(bob)
    await started(alice)
    await started(bob)
    try:
        calls = answer_calls(bob)
        caller = await asyncio.wait_for(alice.call(uri_of(bob)), TIMEOUT)
        callee = await asyncio.wait_for(calls.get(), TIMEOUT)
        await asyncio.wait_for(asyncio.gather(caller.hold(), callee.hold()), TIMEOUT)
        assert caller.agreed[0].direction is Direction.INACTIVE
        assert callee.agreed[0].direction is Direction.INACTIVE
        # each side answered the other's first re-INVITE with 491, then each retried
        for trace in (alice_trace, bob_trace):
            assert len(trace.find("491", "out")) >= 1 and len(trace.find("491", "in")) >= 1
        assert draws[True] and draws[False]
        assert all(2.1 <= d <= 4.0 for d in draws[True])
        assert all(0.0 <= d <= 2.0 for d in draws[False])
        # the 491 carries Retry-After (RFC 3261 §21.4.17 allows it), and its INVITE is ACKed
        rejected = alice_trace.find("491", "out")[0].message
        assert rejected.headers.get("Retry-After") is not None
        assert any(
            t.message.cseq.number == rejected.cseq.number for t in alice_trace.find("ACK", "in")
        )
        assert caller.state is CallState.ANSWERED and callee.state is CallState.ANSWERED
        await asyncio.wait_for(caller.hangup(), TIMEOUT)
    finally:
        await alice.close()
        await bob.close()


# --- RFC 3263 failover in the UA -------------------------------------------------------------


@pytest.fixture
async def dns() -> AsyncIterator[DnsServer]:
    async with DnsServer() as server:
        yield server


def srv_zone(first_port: int, second_port: int) -> str:
    """example.test's SIP over UDP: one.example.test first (priority 10), then two."""
    return f"""
        _sip._udp.example.test.  SRV 10 1 {first_port} one.example.test.
        _sip._udp.example.test.  SRV 20 1 {second_port} two.example.test.
        one.example.test.        A   127.0.0.1
        two.example.test.        A   127.0.0.1
    """


async def test_a_503_from_the_first_srv_target_sends_the_invite_to_the_second(
    dns: DnsServer,
) -> None:
    unavailable = await started(UserAgent("bob"))
    available = await started(UserAgent("bob"))
    alice = UserAgent("alice", resolver=dns.resolver())
    trace = SipTrace.attach(alice)
    await started(alice)
    try:
        refused = answer_calls(unavailable, 503)
        answered = answer_calls(available)
        dns.load(srv_zone(unavailable.listening[0].port, available.listening[0].port))
        call = await asyncio.wait_for(alice.call("sip:bob@example.test"), TIMEOUT)
        assert call.state is CallState.ANSWERED
        assert refused.qsize() == 1 and answered.qsize() == 1
        invites = trace.find("INVITE", "out")
        ports = [t.peer.port for t in invites]
        assert ports == [unavailable.listening[0].port, available.listening[0].port]
        # a new transaction for the second target: a new branch, the same Call-ID and CSeq
        first, second = (t.message for t in invites)
        assert first.via[0].branch != second.via[0].branch
        assert first.cseq == second.cseq and first.call_id == second.call_id
        assert [t.label for t in trace if t.direction == "in" and t.label != "100"] == [
            "503",
            "200",
        ]
        await asyncio.wait_for(call.hangup(), TIMEOUT)
    finally:
        for ua in (alice, unavailable, available):
            await ua.close()


async def test_a_dead_first_srv_target_is_left_for_the_second(dns: DnsServer) -> None:
    """Nothing listens at the first target: the INVITE times out (Timer B, 64·T1; T1 is
    made short) or meets a transport error, and goes to the second target."""
    available = await started(UserAgent("bob"))
    dead = await started(UserAgent("nobody"))
    dead_port = dead.listening[0].port
    await dead.close()  # its port is free again: nothing answers there
    alice = UserAgent("alice", resolver=dns.resolver(), timers=Timers(t1=0.02))
    trace = SipTrace.attach(alice)
    await started(alice)
    try:
        answered = answer_calls(available)
        dns.load(srv_zone(dead_port, available.listening[0].port))
        call = await asyncio.wait_for(alice.call("sip:bob@example.test"), TIMEOUT)
        assert call.state is CallState.ANSWERED and answered.qsize() == 1
        ports = {t.peer.port for t in trace.find("INVITE", "out")}
        assert ports == {dead_port, available.listening[0].port}
        await asyncio.wait_for(call.hangup(), TIMEOUT)
    finally:
        await alice.close()
        await available.close()


async def test_when_every_srv_target_fails_the_call_ends_with_the_last_failure(
    dns: DnsServer,
) -> None:
    first = await started(UserAgent("bob"))
    second = await started(UserAgent("bob"))
    alice = await started(UserAgent("alice", resolver=dns.resolver()))
    try:
        answer_calls(first, 503)
        answer_calls(second, 503)
        dns.load(srv_zone(first.listening[0].port, second.listening[0].port))
        with pytest.raises(RequestFailed) as error:
            await asyncio.wait_for(alice.call("sip:bob@example.test"), TIMEOUT)
        assert error.value.status == 503
        assert not alice.calls
    finally:
        for ua in (alice, first, second):
            await ua.close()
