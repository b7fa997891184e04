"""S-CONNECT's parameters between two toolkit agents (X.215 §11, X.225 §7.1): the
functional units, where each token starts and the initial serial number travel as a
CONNECT SPDU in the INVITE's Recv-Info and come back as an ACCEPT SPDU in the 2xx's
(RFC 6086 §10.3, a parameter of the ``osi-session`` package); the acceptor keeps a subset
of the units and places the tokens left to its choice. A peer without the package gets
plain SIP."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from support.ua import TIMEOUT, uri_of

from sdp import Direction
from voip.call import Call
from voip.session import (
    INFO_PACKAGE,
    FunctionalUnitNotSelected,
    NotCarried,
    PrimitiveNotAllowed,
    ResyncType,
    Session,
    SessionError,
    State,
    Tokens,
    TokenSide,
    spdu,
)
from voip.session import primitives as p
from voip.useragent import UserAgent

FU = p.FunctionalUnit
ACTIVITY = Tokens.MAJOR_ACTIVITY
MINOR = Tokens.MINOR_SYNC


def responder(
    ua: UserAgent, respond: Callable[[Session], Coroutine[Any, Any, None]]
) -> asyncio.Queue[Session]:
    """Each incoming call as a session that ``respond`` answers (S-CONNECT response)."""
    sessions: asyncio.Queue[Session] = asyncio.Queue()

    async def on_call(call: Call) -> None:
        session = Session.incoming(call)
        sessions.put_nowait(session)
        await respond(session)

    ua.on("incoming_call", on_call)
    return sessions


async def test_the_acceptor_places_the_tokens_left_to_its_choice_and_both_sides_agree(
    alice: UserAgent, bob: UserAgent
) -> None:
    async def take_the_activity_token(session: Session) -> None:
        await session.accept(tokens={ACTIVITY: TokenSide.ACCEPTOR})

    callees = responder(bob, take_the_activity_token)
    settings = {ACTIVITY: TokenSide.CHOICE, MINOR: TokenSide.ACCEPTOR}
    caller = await asyncio.wait_for(
        Session.connect(alice, uri_of(bob), tokens=settings, initial_serial=40), TIMEOUT
    )
    callee = await asyncio.wait_for(callees.get(), TIMEOUT)
    indication = callee.history[0]
    assert isinstance(indication, p.ConnectIndication)
    assert indication.tokens == settings and indication.initial_serial == 40
    confirm = caller.history[0]
    assert isinstance(confirm, p.ConnectConfirm)
    assert confirm.tokens == {ACTIVITY: TokenSide.ACCEPTOR, MINOR: TokenSide.ACCEPTOR}
    assert confirm.initial_serial == 40
    assert caller.tokens == Tokens.NONE and callee.tokens == MINOR | ACTIVITY
    assert caller.machine.vm == callee.machine.vm == 40
    # the tokens are the callee's: it starts the activity, the caller may not
    with pytest.raises(PrimitiveNotAllowed):
        await caller.activity_start("nope")
    await asyncio.wait_for(callee.activity_start("greet"), TIMEOUT)
    event = await asyncio.wait_for(caller.wait_for(p.ActivityStartIndication), TIMEOUT)
    assert event.activity == b"greet"


@pytest.mark.parametrize("side", [TokenSide.ACCEPTOR, TokenSide.CHOICE])
async def test_a_token_placed_with_the_acceptor_or_left_to_it_starts_with_the_acceptor(
    alice: UserAgent, bob: UserAgent, side: TokenSide
) -> None:
    """A choice the acceptor does not make puts the token on its side."""

    async def accept(session: Session) -> None:
        await session.accept()

    callees = responder(bob, accept)
    caller = await asyncio.wait_for(
        Session.connect(alice, uri_of(bob), tokens={MINOR: side}), TIMEOUT
    )
    callee = await asyncio.wait_for(callees.get(), TIMEOUT)
    assert caller.tokens == ACTIVITY and callee.tokens == MINOR


async def test_the_acceptor_chooses_the_data_token_by_the_direction_of_its_answer(
    alice: UserAgent, bob: UserAgent
) -> None:
    async def talk_first(session: Session) -> None:
        await session.accept(tokens={Tokens.DATA: TokenSide.ACCEPTOR})

    callees = responder(bob, talk_first)
    caller = Session.dial(
        alice, uri_of(bob), half_duplex=True, tokens={Tokens.DATA: TokenSide.CHOICE}
    )
    await asyncio.wait_for(caller.connected(), TIMEOUT)
    callee = await asyncio.wait_for(callees.get(), TIMEOUT)
    assert caller.call.invite is not None  # the offer leaves the direction open: sendrecv
    assert b"a=sendonly" not in caller.call.invite.body
    assert b"a=recvonly" not in caller.call.invite.body
    assert caller.call.agreed[0].direction is Direction.RECVONLY
    assert callee.call.agreed[0].direction is Direction.SENDONLY
    assert callee.tokens & Tokens.DATA and not caller.tokens & Tokens.DATA
    assert caller.functional_units & FU.HALF_DUPLEX and callee.functional_units & FU.HALF_DUPLEX
    # and it passes back by re-INVITE as in any half-duplex session
    await asyncio.wait_for(callee.give_tokens(Tokens.DATA), TIMEOUT)
    await asyncio.wait_for(caller.wait_for(p.TokenGiveIndication), TIMEOUT)
    assert caller.call.agreed[0].direction is Direction.SENDONLY


async def test_the_acceptor_keeps_a_subset_of_the_functional_units_proposed(
    alice: UserAgent, bob: UserAgent
) -> None:
    async def no_resync(session: Session) -> None:
        indication = session.history[0]
        assert isinstance(indication, p.ConnectIndication)
        await session.accept(requirements=indication.functional_units & ~FU.RESYNCHRONIZE)

    callees = responder(bob, no_resync)
    caller = await asyncio.wait_for(Session.connect(alice, uri_of(bob)), TIMEOUT)
    callee = await asyncio.wait_for(callees.get(), TIMEOUT)
    assert not caller.functional_units & FU.RESYNCHRONIZE
    assert not callee.functional_units & FU.RESYNCHRONIZE
    assert caller.functional_units & FU.MAJOR_SYNCHRONIZE
    await caller.activity_start("prompt")
    with pytest.raises(FunctionalUnitNotSelected):
        await caller.resynchronize(ResyncType.RESTART)


async def test_the_acceptor_may_not_move_a_token_the_initiator_placed(
    alice: UserAgent, bob: UserAgent
) -> None:
    refused: asyncio.Queue[Exception] = asyncio.Queue()

    async def grab(session: Session) -> None:
        try:
            await session.accept(tokens={ACTIVITY: TokenSide.ACCEPTOR})
        except PrimitiveNotAllowed as error:
            refused.put_nowait(error)
            await session.accept()  # still in STA08: a response that is allowed

    callees = responder(bob, grab)
    caller = await asyncio.wait_for(Session.connect(alice, uri_of(bob)), TIMEOUT)
    error = await asyncio.wait_for(refused.get(), TIMEOUT)
    assert "placed the" in str(error) and "at the initiator" in str(error)
    callee = await asyncio.wait_for(callees.get(), TIMEOUT)
    assert caller.tokens == MINOR | ACTIVITY and callee.tokens == Tokens.NONE


async def test_without_a_connect_spdu_the_response_is_plain_sip_and_says_so(
    alice: UserAgent, bob: UserAgent
) -> None:
    results: asyncio.Queue[object] = asyncio.Queue()

    async def respond(session: Session) -> None:
        try:
            await session.accept(tokens={ACTIVITY: TokenSide.ACCEPTOR})
        except NotCarried as error:
            results.put_nowait(error)
        await session.accept()
        results.put_nowait(session)

    responder(bob, respond)
    call = alice.dial(uri_of(bob))  # a plain call: no Recv-Info, no CONNECT SPDU
    await asyncio.wait_for(call.answered(), TIMEOUT)
    assert isinstance(await asyncio.wait_for(results.get(), TIMEOUT), NotCarried)
    callee = await asyncio.wait_for(results.get(), TIMEOUT)
    assert isinstance(callee, Session) and callee.state is State.STA713
    assert not callee.peer_takes_spdus and callee.tokens == MINOR | ACTIVITY
    assert call.answer_response is not None
    assert call.answer_response.headers.get("Recv-Info") == INFO_PACKAGE  # no ACCEPT
    await call.hangup()


async def test_a_malformed_connect_spdu_is_an_exception_report_and_sip_goes_on(
    alice: UserAgent, bob: UserAgent
) -> None:
    async def accept(session: Session) -> None:
        await session.accept()

    callees = responder(bob, accept)
    call = alice.dial(uri_of(bob), headers=[("Recv-Info", f"{INFO_PACKAGE};spdu=0d05ff")])
    await asyncio.wait_for(call.answered(), TIMEOUT)
    callee = await asyncio.wait_for(callees.get(), TIMEOUT)
    assert isinstance(callee.history[0], p.ConnectIndication)
    report = callee.history[1]
    assert isinstance(report, p.PExceptionReportIndication)
    assert "CONNECT in Recv-Info" in report.reason and "runs past" in report.reason
    assert callee.state is State.STA713
    await call.hangup()


def test_connect_and_accept_spdus_round_trip_with_their_parameters() -> None:
    settings = {
        Tokens.DATA: TokenSide.CHOICE,
        MINOR: TokenSide.ACCEPTOR,
        ACTIVITY: TokenSide.INITIATOR,
    }
    units = FU.HALF_DUPLEX | FU.MINOR_SYNCHRONIZE | FU.ACTIVITY_MANAGEMENT
    for kind in (spdu.Kind.CN, spdu.Kind.AC):
        unit = spdu.connect_accept(kind, units.value, settings, 123)
        (decoded,) = spdu.decode(spdu.encode(unit))
        assert decoded == unit and decoded.kind is kind
        assert decoded.session_requirement == units.value and decoded.initial_serial == 123
        setting = decoded.token_setting
        assert setting is not None
        assert spdu.decode_token_settings(setting, p.tokens_of(units)) == settings


def test_a_reserved_token_setting_is_a_malformed_spdu() -> None:
    item = spdu.Parameter(
        spdu.PGI.CONNECT_ACCEPT_ITEM,
        parameters=(spdu.Parameter(spdu.PI.TOKEN_SETTING_ITEM, b"\x03"),),
    )
    with pytest.raises(spdu.SpduError, match="reserved"):
        spdu.decode(spdu.Spdu(spdu.Kind.CN, (item,)).encode())


NEGOTIATED = p.SIP_UNITS | p.SPDU_UNITS | FU.DUPLEX | FU.NEGOTIATED_RELEASE


async def test_negotiated_release_may_be_refused_by_not_finished_then_accepted(
    alice: UserAgent, bob: UserAgent
) -> None:
    async def accept(session: Session) -> None:
        session.auto_respond = False  # this side answers the FINISH itself
        await session.accept()

    callees = responder(bob, accept)
    caller = await asyncio.wait_for(
        Session.connect(alice, uri_of(bob), requirements=NEGOTIATED), TIMEOUT
    )
    callee = await asyncio.wait_for(callees.get(), TIMEOUT)
    assert caller.tokens & Tokens.RELEASE and not callee.tokens & Tokens.RELEASE
    releasing = asyncio.ensure_future(caller.release())  # FINISH
    asked = await asyncio.wait_for(callee.wait_for(p.ReleaseIndication), TIMEOUT)
    assert asked.negotiated and callee.state is State.STA09
    await asyncio.wait_for(callee.release_response(accept=False), TIMEOUT)  # NOT FINISHED
    assert await asyncio.wait_for(releasing, TIMEOUT) == p.ReleaseConfirm(accepted=False)
    assert caller.state is State.STA713 and callee.state is State.STA713
    await asyncio.wait_for(caller.send_typed("still here"), TIMEOUT)  # the session goes on
    releasing = asyncio.ensure_future(caller.release())
    await asyncio.wait_for(callee.wait_for(p.ReleaseIndication), TIMEOUT)
    await asyncio.wait_for(callee.release_response(accept=True), TIMEOUT)  # DISCONNECT
    assert await asyncio.wait_for(releasing, TIMEOUT) == p.ReleaseConfirm(accepted=True)
    await asyncio.wait_for(callee.call.ended(), TIMEOUT)  # the BYE came
    assert caller.state is State.STA01 and callee.state is State.STA01
    indications = [e for e in callee.history if isinstance(e, p.ReleaseIndication)]
    assert indications == [p.ReleaseIndication(negotiated=True)] * 2  # none for the BYE


async def test_negotiated_release_is_accepted_by_default(alice: UserAgent, bob: UserAgent) -> None:
    async def accept(session: Session) -> None:
        await session.accept()

    callees = responder(bob, accept)
    caller = await asyncio.wait_for(
        Session.connect(alice, uri_of(bob), requirements=NEGOTIATED), TIMEOUT
    )
    callee = await asyncio.wait_for(callees.get(), TIMEOUT)
    assert await asyncio.wait_for(caller.release(), TIMEOUT) == p.ReleaseConfirm()
    await asyncio.wait_for(callee.call.ended(), TIMEOUT)
    assert callee.state is State.STA01


async def test_a_negotiated_release_whose_bye_never_comes_ends_by_tim_with_s_p_abort(
    alice: UserAgent, bob: UserAgent
) -> None:
    async def accept(session: Session) -> None:
        session.machine.tim = 0.5  # X.225's TIM, short for the test
        await session.accept()

    callees = responder(bob, accept)
    caller = await asyncio.wait_for(
        Session.connect(alice, uri_of(bob), requirements=NEGOTIATED), TIMEOUT
    )
    callee = await asyncio.wait_for(callees.get(), TIMEOUT)
    hangups: list[object] = []

    async def never_hang_up(*args: object, **options: object) -> None:
        hangups.append(args)  # the peer that gets the DISCONNECT and sends no BYE

    caller.call.hangup = never_hang_up  # type: ignore[method-assign]
    releasing = asyncio.ensure_future(caller.release())  # FINISH; DISCONNECT comes back
    abort = await asyncio.wait_for(callee.wait_for(p.PAbortIndication), TIMEOUT)
    assert abort == p.PAbortIndication(
        408, "release timer TIM expired: no BYE after our DISCONNECT"
    )
    assert hangups == [()] and callee.state is State.STA01
    # the callee ended the call itself, its BYE saying why: the caller's release ends
    told = await asyncio.wait_for(caller.wait_for(p.UAbortIndication), TIMEOUT)
    assert told == p.UAbortIndication(408, abort.reason)
    with pytest.raises(SessionError):
        await asyncio.wait_for(releasing, TIMEOUT)
    await asyncio.wait_for(callee.call.ended(), TIMEOUT)
    assert caller.state is State.STA01
    assert [type(e) for e in callee.history[-2:]] == [p.ReleaseIndication, p.PAbortIndication]
