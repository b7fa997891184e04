"""The session service between two toolkit agents on loopback: each primitive group
end to end (SIP for what SIP carries, SPDUs in INFO for the rest)."""

from __future__ import annotations

import asyncio

import pytest
from support.session import connect
from support.ua import TIMEOUT, answer_calls, uri_of

from sdp import Direction
from voip.call import Call
from voip.session import (
    INFO_PACKAGE,
    SPDU_CONTENT_TYPE,
    ConnectRefused,
    ExceptionReported,
    NotCarried,
    PrimitiveNotAllowed,
    ResyncType,
    Session,
    SessionError,
    State,
    TokenNotHeld,
    Tokens,
    spdu,
)
from voip.session import primitives as p
from voip.sip.transaction import Timers
from voip.useragent import UserAgent


async def until(condition: object, what: str = "") -> None:
    async with asyncio.timeout(TIMEOUT):
        while not callable(condition) or not condition():
            await asyncio.sleep(0.005)


# --- S-CONNECT -------------------------------------------------------------------------


async def test_s_connect_confirm_enters_data_transfer_with_the_spdu_package_on_both_sides(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, callee = await connect(alice, bob)
    assert caller.state is State.STA713 and callee.state is State.STA713
    assert isinstance(caller.history[0], p.ConnectConfirm) and caller.history[0].accepted
    assert isinstance(callee.history[0], p.ConnectIndication)
    assert caller.peer_takes_spdus and callee.peer_takes_spdus
    assert caller.call.invite is not None
    # the package, with the CONNECT SPDU (SI 13) as its parameter (RFC 6086 §10.3)
    recv_info = caller.call.invite.headers.get("Recv-Info") or ""
    assert recv_info.startswith(f"{INFO_PACKAGE};spdu=0d")
    assert caller.functional_units & p.FunctionalUnit.DUPLEX
    # the initiator holds the sync and activity tokens (X.225 default token setting)
    assert caller.tokens == Tokens.MINOR_SYNC | Tokens.MAJOR_ACTIVITY
    assert callee.tokens == Tokens.NONE


async def test_s_connect_refused_is_a_negative_confirm_with_the_status(
    alice: UserAgent, bob: UserAgent
) -> None:
    async def refuse(call: Call) -> None:
        await Session.incoming(call).refuse(486, "Busy Here")

    bob.on("incoming_call", refuse)
    with pytest.raises(ConnectRefused) as refused:
        await asyncio.wait_for(Session.connect(alice, uri_of(bob)), TIMEOUT)
    assert refused.value.confirm == p.ConnectConfirm(False, p.FunctionalUnit.NONE, 486, "Busy Here")


async def test_an_spdu_sent_right_behind_the_2xx_follows_the_s_connect_confirm(
    alice: UserAgent, bob: UserAgent
) -> None:
    """The responder is in data transfer once its 2xx is sent (X.225); its first SPDU may
    reach the initiator before the task that makes the S-CONNECT confirm has run. Here
    that task does not run until the SPDU is through: the confirm is made by the INFO."""
    pleased: asyncio.Queue[Session] = asyncio.Queue()

    async def answer_and_ask(call: Call) -> None:
        session = Session.incoming(call)
        await session.accept()
        await session.please_tokens(Tokens.MAJOR_ACTIVITY, b"first")  # right behind it
        pleased.put_nowait(session)

    bob.on("incoming_call", answer_and_ask)
    caller = Session.dial(alice, uri_of(bob))
    await asyncio.wait_for(pleased.get(), TIMEOUT)  # 200 to the INFO, not 400
    confirm = await asyncio.wait_for(caller.connected(), TIMEOUT)
    assert confirm.accepted and caller.state is State.STA713
    assert caller.history == [
        confirm,
        p.TokenPleaseIndication(Tokens.MAJOR_ACTIVITY, b"first"),
    ]
    assert not any(isinstance(e, p.PExceptionReportIndication) for e in caller.history)


async def test_an_spdu_that_overtakes_the_2xx_waits_for_the_s_connect_confirm(
    alice: UserAgent, bob: UserAgent
) -> None:
    """An INFO that reaches the initiator before the 2xx (forwarded out of order by a
    proxy; here sent in the early dialog before the 2xx) is kept in STA02A, answered
    200, and indicated after the S-CONNECT confirm."""
    ringing: asyncio.Queue[Session] = asyncio.Queue()

    async def ring(call: Call) -> None:
        await call.ring()  # the early dialog
        ringing.put_nowait(Session.incoming(call))

    bob.on("incoming_call", ring)
    caller = Session.dial(alice, uri_of(bob))
    callee = await asyncio.wait_for(ringing.get(), TIMEOUT)
    body = spdu.encode(spdu.please_tokens(Tokens.MAJOR_ACTIVITY, b"early"))
    headers = [("Info-Package", INFO_PACKAGE)]
    response = await asyncio.wait_for(
        callee.call.info(body, SPDU_CONTENT_TYPE, headers=headers), TIMEOUT
    )
    assert response.status == 200 and caller.state is State.STA02A and caller.history == []
    await callee.accept()
    confirm = await asyncio.wait_for(caller.connected(), TIMEOUT)
    assert caller.history == [confirm, p.TokenPleaseIndication(Tokens.MAJOR_ACTIVITY, b"early")]


# --- S-RELEASE, S-U-ABORT, S-P-ABORT -------------------------------------------------------


async def test_s_release_is_a_bye_confirmed_by_its_200_and_indicated_to_the_peer(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, callee = await connect(alice, bob)
    confirm = await asyncio.wait_for(caller.release(), TIMEOUT)
    assert confirm == p.ReleaseConfirm() and caller.state is State.STA01
    await asyncio.wait_for(callee.wait_for(p.ReleaseIndication), TIMEOUT)
    assert callee.state is State.STA01


async def test_s_release_needs_every_token_so_the_callee_without_them_may_not(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, callee = await connect(alice, bob)
    with pytest.raises(TokenNotHeld):
        await callee.release()
    await caller.activity_start("prompt")
    with pytest.raises(PrimitiveNotAllowed, match="activity is in progress"):
        await caller.release()


async def test_s_u_abort_after_the_answer_is_a_bye_with_reason_and_the_peer_reads_it(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, callee = await connect(alice, bob)
    await asyncio.wait_for(callee.abort("caller is a robot", cause=603), TIMEOUT)
    assert callee.state is State.STA01
    event = await asyncio.wait_for(caller.wait_for(p.UAbortIndication), TIMEOUT)
    assert event == p.UAbortIndication(603, "caller is a robot")


async def test_s_u_abort_before_the_answer_is_a_cancel(alice: UserAgent, bob: UserAgent) -> None:
    incoming: asyncio.Queue[Session] = asyncio.Queue()

    async def ring(call: Call) -> None:
        await call.ring()
        incoming.put_nowait(Session.incoming(call))

    bob.on("incoming_call", ring)
    caller = Session.dial(alice, uri_of(bob))
    assert caller.state is State.STA02A
    callee = await asyncio.wait_for(incoming.get(), TIMEOUT)
    await until(lambda: caller.call.early)
    await asyncio.wait_for(caller.abort("changed my mind"), TIMEOUT)  # CANCEL
    assert caller.state is State.STA01
    event = await asyncio.wait_for(callee.wait_for(p.UAbortIndication), TIMEOUT)
    assert event.status == 487 and callee.state is State.STA01
    with pytest.raises(SessionError, match="aborted by this side"):
        await asyncio.wait_for(caller.connected(), TIMEOUT)


async def test_s_p_abort_when_an_in_dialog_request_times_out() -> None:
    timers = Timers(t1=0.01, t2=0.04, t4=0.05)
    async with UserAgent("alice", timers=timers) as alice, UserAgent("bob", timers=timers) as bob:
        await alice.listen("udp", "127.0.0.1", 0)
        await bob.listen("udp", "127.0.0.1", 0)
        caller, _ = await connect(alice, bob)
        await bob.transport.close()  # the peer is gone: Timer F fires (64·T1)
        with pytest.raises(ExceptionReported) as reported:
            await asyncio.wait_for(caller.send_typed("anyone?"), TIMEOUT)
        assert isinstance(reported.value.indication, p.PExceptionReportIndication)
        event = await asyncio.wait_for(caller.wait_for(p.PAbortIndication), TIMEOUT)
        assert event.status == 408 and caller.state is State.STA01


async def test_s_p_abort_when_the_peer_stops_sending_rtp_tells_it_by_bye_with_reason(
    alice: UserAgent, bob: UserAgent
) -> None:
    alice.media.inactivity_timeout = 0.5  # the caller's streams give up after 0.5 s
    caller, callee = await connect(alice, bob)
    media, far = caller.call.media, callee.call.media
    assert media is not None and far is not None
    await until(lambda: media.statistics().packets_received >= 5)  # RTP flows
    far.stream.sending = False  # the far side falls silent on the wire
    sent_before_silence = far.statistics().packets_sent
    event = await asyncio.wait_for(caller.wait_for(p.PAbortIndication), TIMEOUT)
    assert event.status == 408 and event.reason.startswith("RTP inactivity (")
    assert float(event.reason.split("(")[1].split(" ")[0]) >= 0.5  # seconds without RTP
    # nothing came meanwhile but what was already on its way
    assert media.statistics().packets_received <= sent_before_silence
    assert caller.state is State.STA01
    peer = await asyncio.wait_for(callee.wait_for(p.UAbortIndication), TIMEOUT)
    assert peer.status == 408 and "RTP inactivity" in peer.reason


# --- tokens ------------------------------------------------------------------------------


async def test_the_data_token_passes_back_and_forth_five_times_by_re_invite(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, callee = await connect(alice, bob, half_duplex=True)
    assert caller.functional_units & p.FunctionalUnit.HALF_DUPLEX
    assert caller.call.negotiation.direction is Direction.SENDONLY
    assert callee.call.negotiation.direction is Direction.RECVONLY
    holder, other = caller, callee
    for _ in range(5):
        await asyncio.wait_for(holder.give_tokens(Tokens.DATA), TIMEOUT)
        await asyncio.wait_for(other.wait_for(p.TokenGiveIndication), TIMEOUT)
        assert other.tokens & Tokens.DATA and not holder.tokens & Tokens.DATA
        assert other.call.negotiation.direction is Direction.SENDONLY
        assert holder.call.negotiation.direction is Direction.RECVONLY
        with pytest.raises(TokenNotHeld):
            holder.machine.data_request()
        holder, other = other, holder


async def test_s_token_please_reaches_the_holder_as_an_spdu(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, callee = await connect(alice, bob, half_duplex=True)
    await asyncio.wait_for(callee.please_tokens(Tokens.DATA, b"my turn"), TIMEOUT)
    event = await asyncio.wait_for(caller.wait_for(p.TokenPleaseIndication), TIMEOUT)
    assert event == p.TokenPleaseIndication(Tokens.DATA, b"my turn")
    assert caller.tokens & Tokens.DATA  # asking moves nothing; the holder decides
    await asyncio.wait_for(caller.give_tokens(Tokens.DATA), TIMEOUT)
    await asyncio.wait_for(callee.wait_for(p.TokenGiveIndication), TIMEOUT)


async def test_s_control_give_hands_every_token_to_the_peer(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, callee = await connect(alice, bob, half_duplex=True)
    await asyncio.wait_for(caller.give_control(), TIMEOUT)
    await asyncio.wait_for(callee.wait_for(p.ControlGiveIndication), TIMEOUT)
    await until(lambda: caller.state is State.STA713)  # the GIVE TOKENS ACK came
    assert callee.tokens == Tokens.DATA | Tokens.MINOR_SYNC | Tokens.MAJOR_ACTIVITY
    assert caller.tokens == Tokens.NONE
    assert callee.call.negotiation.direction is Direction.SENDONLY


async def test_sync_and_activity_tokens_travel_in_give_tokens(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, callee = await connect(alice, bob)
    await asyncio.wait_for(caller.give_tokens(Tokens.MAJOR_ACTIVITY | Tokens.MINOR_SYNC), TIMEOUT)
    event = await asyncio.wait_for(callee.wait_for(p.TokenGiveIndication), TIMEOUT)
    assert event.tokens == Tokens.MAJOR_ACTIVITY | Tokens.MINOR_SYNC
    await asyncio.wait_for(callee.activity_start("b-side"), TIMEOUT)
    started = await asyncio.wait_for(caller.wait_for(p.ActivityStartIndication), TIMEOUT)
    assert started.activity == b"b-side"


# --- activities, synchronization ------------------------------------------------------


async def test_sync_points_are_confirmed_by_the_peer_and_resynchronize_restarts_at_one(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, callee = await connect(alice, bob)
    await caller.activity_start("prompt")
    await asyncio.wait_for(callee.wait_for(p.ActivityStartIndication), TIMEOUT)
    assert await caller.sync_minor() == 1
    await asyncio.wait_for(caller.wait_for(p.SyncMinorConfirm), TIMEOUT)
    confirm = await asyncio.wait_for(caller.sync_major(), TIMEOUT)
    assert confirm == p.SyncMajorConfirm(2)
    assert [e.serial for e in callee.history if isinstance(e, p.SyncMajorIndication)] == [2]
    await caller.sync_minor()  # 3
    resync = await asyncio.wait_for(caller.resynchronize(ResyncType.RESTART, 2), TIMEOUT)
    assert resync == p.ResynchronizeConfirm(2)
    indication = next(e for e in callee.history if isinstance(e, p.ResynchronizeIndication))
    assert (indication.type, indication.serial) == (ResyncType.RESTART, 2)
    assert caller.machine.vm == callee.machine.vm == 3


async def test_a_confirm_reaches_both_the_request_and_a_user_already_waiting_for_it(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, _ = await connect(alice, bob)
    await caller.activity_start("prompt")
    waiting = asyncio.ensure_future(caller.wait_for(p.SyncMajorConfirm))
    await asyncio.sleep(0)  # the user waits first
    confirm = await asyncio.wait_for(caller.sync_major(), TIMEOUT)
    assert confirm == await asyncio.wait_for(waiting, TIMEOUT) == p.SyncMajorConfirm(1)
    # a confirm the request had is still there for wait_for, once
    resync = await asyncio.wait_for(caller.resynchronize(ResyncType.RESTART, 1), TIMEOUT)
    assert await asyncio.wait_for(caller.wait_for(p.ResynchronizeConfirm), TIMEOUT) == resync


async def test_an_activity_is_ended_and_discarded_with_the_peers_confirm(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, callee = await connect(alice, bob)
    await caller.activity_start("one")
    end = await asyncio.wait_for(caller.activity_end(), TIMEOUT)
    assert end == p.ActivityEndConfirm(1)
    assert any(isinstance(e, p.ActivityEndIndication) for e in callee.history)
    await caller.activity_start("two")
    discard = await asyncio.wait_for(caller.activity_discard(), TIMEOUT)
    assert discard == p.ActivityDiscardConfirm()
    assert callee.machine.activity is None and caller.machine.activity is None


async def test_activity_interrupt_is_a_hold_re_invite_and_resume_brings_the_activity_back(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, callee = await connect(alice, bob)
    await caller.activity_start("prompt")
    await caller.sync_minor()
    await asyncio.wait_for(caller.wait_for(p.SyncMinorConfirm), TIMEOUT)
    confirm = await asyncio.wait_for(caller.hold(), TIMEOUT)
    assert confirm == p.ActivityInterruptConfirm()
    assert caller.call.negotiation.direction is Direction.SENDONLY
    await asyncio.wait_for(callee.wait_for(p.ActivityInterruptIndication), TIMEOUT)
    assert callee.call.remote_hold and callee.machine.activity is None
    assert await asyncio.wait_for(caller.resume(), TIMEOUT) == 1
    event = await asyncio.wait_for(callee.wait_for(p.ActivityResumeIndication), TIMEOUT)
    assert event == p.ActivityResumeIndication(b"prompt", b"prompt", 1)
    assert caller.call.negotiation.direction is Direction.SENDRECV
    assert caller.machine.activity == callee.machine.activity == b"prompt"


async def test_a_resumed_activity_under_a_new_identifier_travels_as_activity_resume(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, callee = await connect(alice, bob)
    await caller.activity_start("a")
    await asyncio.wait_for(caller.hold(), TIMEOUT)
    await asyncio.wait_for(caller.resume("b", "a"), TIMEOUT)
    event = await asyncio.wait_for(callee.wait_for(p.ActivityResumeIndication), TIMEOUT)
    assert event == p.ActivityResumeIndication(b"b", b"a", 0)


# --- data, exceptions -----------------------------------------------------------------


async def test_expedited_data_without_rtp_events_falls_back_to_info_dtmf_relay(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, callee = await connect(alice, bob)
    if getattr(caller.call, "media", None) is not None:
        caller.call.media = None  # type: ignore[attr-defined]  # force the fallback
    assert await asyncio.wait_for(caller.send_expedited("5#"), TIMEOUT) == "info"
    await until(
        lambda: len([e for e in callee.history if isinstance(e, p.ExpeditedDataIndication)]) == 2
    )
    digits = [e.data for e in callee.history if isinstance(e, p.ExpeditedDataIndication)]
    assert digits == ["5", "#"]


async def test_typed_data_is_a_message_or_an_info(alice: UserAgent, bob: UserAgent) -> None:
    caller, callee = await connect(alice, bob)
    await asyncio.wait_for(caller.send_typed("hello"), TIMEOUT)
    await asyncio.wait_for(caller.send_typed(b"{}", "application/json", method="INFO"), TIMEOUT)
    await until(
        lambda: len([e for e in callee.history if isinstance(e, p.TypedDataIndication)]) == 2
    )
    typed = [e for e in callee.history if isinstance(e, p.TypedDataIndication)]
    assert typed == [
        p.TypedDataIndication(b"hello", "text/plain", "MESSAGE"),
        p.TypedDataIndication(b"{}", "application/json", "INFO"),
    ]


async def test_capability_data_is_an_in_dialog_options(alice: UserAgent, bob: UserAgent) -> None:
    caller, callee = await connect(alice, bob)
    confirm = await asyncio.wait_for(caller.capability_data(), TIMEOUT)
    assert "INFO" in confirm.allow and "application/sdp" in confirm.accept
    assert "timer" in confirm.supported
    await asyncio.wait_for(callee.wait_for(p.CapabilityDataIndication), TIMEOUT)
    assert caller.state is State.STA713


async def test_a_malformed_spdu_gets_400_and_an_exception_report_not_a_crash(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, callee = await connect(alice, bob)
    headers = [("Info-Package", INFO_PACKAGE)]
    with pytest.raises(Exception, match="400") as failed:
        await caller.call.info(bytes([1, 0, 49, 9, 42]), SPDU_CONTENT_TYPE, headers=headers)
    assert "Bad SPDU" in str(failed.value)
    event = await asyncio.wait_for(callee.wait_for(p.PExceptionReportIndication), TIMEOUT)
    assert "runs past" in event.reason
    assert callee.state is State.STA713  # the session goes on
    await asyncio.wait_for(caller.activity_start("again"), TIMEOUT)
    await asyncio.wait_for(callee.wait_for(p.ActivityStartIndication), TIMEOUT)


async def test_a_misplaced_spdu_is_refused_with_400_and_the_sender_gets_an_exception_report(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, callee = await connect(alice, bob)
    caller.machine.outgoing.append(spdu.activity_end(1))  # an ACTIVITY END with no activity
    with pytest.raises(ExceptionReported) as reported:
        await caller._carry("test")
    assert reported.value.indication.status == 400
    await asyncio.wait_for(callee.wait_for(p.PExceptionReportIndication), TIMEOUT)


async def test_s_u_exception_report_travels_as_exception_data(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, callee = await connect(alice, bob, half_duplex=True)
    await asyncio.wait_for(callee.report_exception(1, "cannot hear you"), TIMEOUT)
    event = await asyncio.wait_for(caller.wait_for(p.UExceptionReportIndication), TIMEOUT)
    assert event.status == 1 and event.warning == "cannot hear you"
    # half-duplex: the holder must recover (STA19) and the reporter waits (STA20);
    # here by giving the data token, a re-INVITE
    assert caller.state is State.STA19 and callee.state is State.STA20
    with pytest.raises(PrimitiveNotAllowed):
        await caller.send_data(b"\0" * 320)
    await asyncio.wait_for(caller.give_tokens(Tokens.DATA), TIMEOUT)
    await asyncio.wait_for(callee.wait_for(p.TokenGiveIndication), TIMEOUT)
    assert caller.state is State.STA713 and callee.state is State.STA713


# --- a peer without the package -------------------------------------------------------


async def test_with_a_peer_without_the_package_each_primitive_falls_back_and_says_so(
    alice: UserAgent, bob: UserAgent
) -> None:
    calls = answer_calls(bob)  # a plain toolkit call: no Recv-Info
    caller = await asyncio.wait_for(Session.connect(alice, uri_of(bob)), TIMEOUT)
    await asyncio.wait_for(calls.get(), TIMEOUT)
    assert not caller.peer_takes_spdus
    fallbacks: list[tuple[str, str]] = []
    caller.on("fallback", lambda primitive, text: fallbacks.append((primitive, text)))
    with pytest.raises(NotCarried, match="S-CONTROL-GIVE"):
        await caller.give_control()
    assert (
        caller.state is State.STA713 and caller.tokens == Tokens.MINOR_SYNC | Tokens.MAJOR_ACTIVITY
    )
    await caller.activity_start("local")
    confirm = await asyncio.wait_for(caller.sync_major(), TIMEOUT)
    assert confirm == p.SyncMajorConfirm(1)
    assert [primitive for primitive, _ in fallbacks] == [
        "S-ACTIVITY-START request",
        "S-SYNC-MAJOR request",
    ]
    assert all(INFO_PACKAGE in text for _, text in fallbacks)
    # hold and resume need no package
    await asyncio.wait_for(caller.hold(), TIMEOUT)
    await asyncio.wait_for(caller.resume(), TIMEOUT)
    assert caller.machine.activity == b"local"


async def test_an_info_for_a_package_the_peer_did_not_advertise_gets_469(
    alice: UserAgent, bob: UserAgent
) -> None:
    calls = answer_calls(bob)
    caller = await asyncio.wait_for(Session.connect(alice, uri_of(bob)), TIMEOUT)
    await asyncio.wait_for(calls.get(), TIMEOUT)
    caller.peer_takes_spdus = True  # wrongly: the peer never sent Recv-Info
    with pytest.raises(ExceptionReported) as reported:
        await caller.activity_start("x")
    assert reported.value.indication.status == 469
    assert isinstance(reported.value.indication, p.UExceptionReportIndication)


async def test_the_data_token_moves_by_update_when_asked(alice: UserAgent, bob: UserAgent) -> None:
    caller, callee = await connect(alice, bob, half_duplex=True)
    caller.use_update = True
    sent: list[str] = []
    alice.transport.add_tracer(
        lambda way, message, *_: (
            sent.append(bytes(message).split(b" ", 1)[0].decode()) if way == "out" else None
        )
    )
    await asyncio.wait_for(caller.give_tokens(Tokens.DATA), TIMEOUT)
    assert "UPDATE" in sent and "INVITE" not in sent, sent
    await asyncio.wait_for(callee.wait_for(p.TokenGiveIndication), TIMEOUT)
    assert callee.call.negotiation.direction is Direction.SENDONLY
    assert caller.call.negotiation.direction is Direction.RECVONLY
