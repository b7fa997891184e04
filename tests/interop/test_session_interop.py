"""The session service against real peers on loopback: the primitives with a plain SIP
or RTP mechanism (S-CONNECT, S-RELEASE, S-U-ABORT, S-TOKEN-GIVE of the data token,
S-ACTIVITY-INTERRUPT/RESUME, S-EXPEDITED-DATA) with baresip and SIPp, neither of which
takes the SPDU Info Package."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from support.peers import Baresip, Kamailio, Sipp

from sdp import Direction
from voip.call import Call
from voip.session import ExceptionReported, Session, State, Tokens
from voip.session import primitives as p
from voip.sip.sessiontimer import SessionTimerPolicy
from voip.useragent import UserAgent

TIMEOUT = 15.0
T = TypeVar("T")


def within(awaitable: Awaitable[T]) -> Awaitable[T]:
    return asyncio.wait_for(awaitable, TIMEOUT)


def counts(session: Session) -> tuple[int, int]:
    assert session.call.media is not None
    stats = session.call.media.statistics()
    return stats.packets_sent, stats.packets_received


async def test_s_connect_and_s_release_with_baresip(
    baresip_factory: Callable[..., Baresip],
) -> None:
    bob = baresip_factory("bob")
    async with UserAgent("alice") as ua:
        await ua.listen("udp", "127.0.0.1", 0)
        session = Session.dial(ua, bob.uri())  # a CONNECT SPDU in Recv-Info: ignored
        fallbacks: list[str] = []
        session.on("fallback", lambda primitive, text: fallbacks.append(primitive))
        await within(session.connected())
        await bob.wait_established()
        assert session.state is State.STA713 and not session.peer_takes_spdus
        assert session.history[0] == p.ConnectConfirm(True, session.functional_units)
        assert fallbacks == ["S-CONNECT confirm"]  # no ACCEPT: plain SIP, and said so
        assert await within(session.release()) == p.ReleaseConfirm()
        await bob.wait_closed()


async def test_s_activity_interrupt_and_resume_are_hold_and_resume_with_baresip(
    baresip_factory: Callable[..., Baresip],
) -> None:
    bob = baresip_factory("bob")
    async with UserAgent("alice") as ua:
        await ua.listen("udp", "127.0.0.1", 0)
        session = await within(Session.connect(ua, bob.uri()))
        await bob.wait_established()
        await session.activity_start("prompt")  # a local mark: baresip is not told
        assert await within(session.hold()) == p.ActivityInterruptConfirm()
        assert session.call.agreed[0].direction is Direction.SENDONLY
        assert await within(session.resume()) == 0
        assert session.call.agreed[0].direction is Direction.SENDRECV
        # baresip's own hold and resume are the indications
        await bob.hold()
        await within(session.wait_for(p.ActivityInterruptIndication))
        assert session.machine.activity is None and session.machine.interrupted
        await bob.resume()
        event = await within(session.wait_for(p.ActivityResumeIndication))
        assert event.activity == b"prompt" and session.machine.activity == b"prompt"
        await within(session.activity_end())
        await within(session.release())
        await bob.wait_closed()


async def test_the_data_token_moves_to_baresip_by_re_invite_and_its_rtp_comes(
    baresip_factory: Callable[..., Baresip],
) -> None:
    bob = baresip_factory("bob")
    async with UserAgent("alice") as ua:
        await ua.listen("udp", "127.0.0.1", 0)
        session = await within(Session.connect(ua, bob.uri(), half_duplex=True))
        await bob.wait_established()
        assert session.call.agreed[0].direction is Direction.SENDONLY
        await asyncio.sleep(0.5)
        before = counts(session)
        await asyncio.sleep(0.5)
        holding = counts(session)
        assert holding[0] - before[0] >= 15 and holding[1] == before[1]  # we alone send
        await within(session.give_tokens(Tokens.DATA))
        assert session.call.agreed[0].direction is Direction.RECVONLY
        assert not session.tokens & Tokens.DATA
        await asyncio.sleep(0.5)
        before = counts(session)
        await asyncio.sleep(1.0)
        after = counts(session)
        assert after[0] == before[0], "RTP sent without the data token"
        assert after[1] - before[1] >= 25, "baresip sent nothing with the data token"
        await within(session.abort("done", cause=200))
        await bob.wait_closed()


async def test_s_expedited_data_reaches_baresip_as_rfc_4733_events(
    baresip_factory: Callable[..., Baresip],
) -> None:
    bob = baresip_factory("bob")
    async with UserAgent("alice") as ua:
        await ua.listen("udp", "127.0.0.1", 0)
        session = await within(Session.connect(ua, bob.uri()))
        await bob.wait_established()
        reader, writer = await asyncio.open_connection("127.0.0.1", bob.ctrl_port)
        try:
            await asyncio.sleep(0.2)  # ctrl_tcp sends its events to connected clients
            assert await within(session.send_expedited("7")) == "rtp"
            assert await within(_dtmf_event(reader)) == "7"
        finally:
            writer.close()
        await within(session.release())


async def _dtmf_event(reader: asyncio.StreamReader) -> str:
    """The key of baresip's next CALL_DTMF_START event (ctrl_tcp netstrings)."""
    while True:
        length = int((await reader.readuntil(b":"))[:-1])
        message = json.loads((await reader.readexactly(length + 1))[:-1])
        if message.get("event") and message.get("type") == "CALL_DTMF_START":
            return str(message.get("param"))


async def test_s_u_abort_is_a_bye_with_reason_to_a_sipp_uas(sipp: Sipp) -> None:
    uas = sipp.start("uas_call", calls=1)
    async with UserAgent("alice") as ua:
        await ua.listen("udp", "127.0.0.1", 0)
        session = await within(Session.connect(ua, uas.uri("sipp")))
        await within(session.abort("the robot gave up", cause=480))
        assert session.state is State.STA01
    result = await uas.wait(TIMEOUT)
    assert result.ok, result.report()
    assert 'Reason: SIP;cause=480;text="the robot gave up"' in result.messages()


async def test_a_sipp_uas_bye_is_an_s_release_indication(sipp: Sipp) -> None:
    uas = sipp.start("uas_bye", calls=1, duration_ms=300)
    async with UserAgent("alice") as ua:
        await ua.listen("udp", "127.0.0.1", 0)
        session = await within(Session.connect(ua, uas.uri("sipp")))
        await within(session.wait_for(p.ReleaseIndication))
        assert session.state is State.STA01
    result = await uas.wait(TIMEOUT)
    assert result.ok, result.report()


async def test_a_sipp_uac_cancel_is_an_s_u_abort_indication(sipp: Sipp) -> None:
    async with UserAgent("carol") as ua:
        sessions: asyncio.Queue[Session] = asyncio.Queue()

        async def ring(call: Call) -> None:
            sessions.put_nowait(Session.incoming(call))
            await call.ring()

        ua.on("incoming_call", ring)
        local = await ua.listen("udp", "127.0.0.1", 0)
        result = await sipp.run(
            "uac_cancel", (local.host, local.port), service="carol", duration_ms=200
        )
        assert result.ok, result.report()
        session = await within(sessions.get())
        assert isinstance(session.history[0], p.ConnectIndication)
        event = await within(session.wait_for(p.UAbortIndication))
        assert event.status == 487 and session.state is State.STA01


async def test_a_negative_s_connect_response_is_486_to_a_sipp_uac(sipp: Sipp) -> None:
    async with UserAgent("carol") as ua:

        async def busy(call: Call) -> None:
            await Session.incoming(call).refuse(486)

        ua.on("incoming_call", busy)
        local = await ua.listen("udp", "127.0.0.1", 0)
        result = await sipp.run("uac_busy", (local.host, local.port), service="carol")
        assert result.ok, result.report()


async def test_a_sipp_uas_hold_and_resume_are_activity_interrupt_and_resume_indications(
    kamailio: Kamailio, sipp: Sipp, agent: Callable[..., object]
) -> None:
    uas = await sipp.start_registered(kamailio, "dave", "uas_hold_resume", calls=1, duration_ms=300)
    async with agent("alice") as ua:  # type: ignore[attr-defined]
        session = await within(Session.connect(ua, kamailio.aor("dave")))
        await session.activity_start("menu")
        await within(session.wait_for(p.ActivityInterruptIndication))
        event = await within(session.wait_for(p.ActivityResumeIndication))
        assert event.activity == b"menu"
        await within(session.activity_end())
        await within(session.release())
    result = await uas.wait(TIMEOUT)
    assert result.ok, result.report()


async def test_session_timer_expiry_with_a_silent_sipp_uas_is_an_s_p_abort(sipp: Sipp) -> None:
    uas = sipp.start("uas_session_timer_silent", calls=1, timeout=TIMEOUT)
    policy = SessionTimerPolicy(session_expires=1800, min_se=2)
    async with UserAgent("alice", session_timers=policy) as ua:
        await ua.listen("udp", "127.0.0.1", 0)
        session = await within(Session.connect(ua, uas.uri("sipp")))
        event = await within(session.wait_for(p.PAbortIndication))
        assert event.status == 408 and event.reason.startswith("session timer expired")
        assert session.state is State.STA01
        result = await uas.wait(TIMEOUT)
    assert result.ok, result.report()


async def test_a_sipp_uas_that_falls_silent_is_an_s_p_abort_on_rtp_inactivity(sipp: Sipp) -> None:
    """The far side sends RTP (one RFC 4733 event, 10 packets), then nothing more and no
    BYE: after the inactivity timeout the provider gives up (S-P-ABORT) and tells the
    peer why in the BYE's Reason."""
    uas = sipp.start("uas_rtp_then_silence", calls=1, timeout=TIMEOUT)
    async with UserAgent("alice") as ua:
        ua.media.inactivity_timeout = 1.0
        await ua.listen("udp", "127.0.0.1", 0)
        session = await within(Session.connect(ua, uas.uri("sipp")))
        event = await within(session.wait_for(p.PAbortIndication))
        assert event.status == 408 and event.reason.startswith("RTP inactivity (")
        assert session.state is State.STA01
        assert session.call.media is not None
        stats = session.call.media.statistics()
        assert stats.packets_received >= 10 and stats.dtmf_received == 1  # it did send
        result = await uas.wait(TIMEOUT)
    assert result.ok, result.report()
    assert 'Reason: SIP;cause=408;text="RTP inactivity' in result.messages()


async def test_a_sipp_uas_refusing_typed_data_is_an_s_u_exception_report_with_its_reason(
    sipp: Sipp,
) -> None:
    """An error response to an in-dialog request (403 with Reason and Warning) is the
    peer's exception report; the session goes on and is released as usual."""
    uas = sipp.start("uas_refuse_message", calls=1, timeout=TIMEOUT)
    async with UserAgent("alice") as ua:
        await ua.listen("udp", "127.0.0.1", 0)
        session = await within(Session.connect(ua, uas.uri("sipp")))
        with pytest.raises(ExceptionReported) as reported:
            await within(session.send_typed("hello?"))
        indication = reported.value.indication
        assert indication == p.UExceptionReportIndication(
            403, "no messages here", '399 sipp "typed data refused"'
        )
        assert session.history[-1] == indication and session.state is State.STA713
        await within(session.release())
    result = await uas.wait(TIMEOUT)
    assert result.ok, result.report()
