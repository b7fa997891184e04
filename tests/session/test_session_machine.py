"""The session protocol machine: which primitive is allowed in which state (X.215, X.225)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from voip.session import primitives as p
from voip.session import spdu
from voip.session.machine import (
    MAX_EARLY_TSDUS,
    FunctionalUnitNotSelected,
    PrimitiveNotAllowed,
    ProtocolError,
    SessionMachine,
    State,
    TokenNotHeld,
)
from voip.session.primitives import FunctionalUnit as FU
from voip.session.spdu import Kind, ResyncType, Tokens

ALL = FU.DUPLEX | p.SIP_UNITS | p.SPDU_UNITS
HALF = (ALL & ~FU.DUPLEX) | FU.HALF_DUPLEX


def pair(
    units: FU = ALL, *, caller_tokens: Tokens | None = None
) -> tuple[SessionMachine, SessionMachine]:
    """A connected initiator and responder; the initiator holds every token by default."""
    caller, callee = SessionMachine(initiator=True), SessionMachine(initiator=False)
    held = p.tokens_of(units) if caller_tokens is None else caller_tokens
    caller.connect_request()
    callee.connect_indication(units)
    callee.connect_response(True, units, p.tokens_of(units) & ~held)
    caller.connect_confirm(True, units, held)
    return caller, callee


def carry(sender: SessionMachine, receiver: SessionMachine) -> list[p.SessionEvent]:
    """What ``sender`` queued, through the codec, into ``receiver``."""
    events: list[p.SessionEvent] = []
    for unit in sender.take_outgoing():
        events += receiver.receive(receiver.decode(spdu.encode(unit)))
    return events


# --- the primitive/state table ------------------------------------------------------------

REQUESTS: dict[str, Callable[[SessionMachine], object]] = {
    "S-RELEASE request": lambda m: m.release_request(),
    "S-DATA request": lambda m: m.data_request(),
    "S-EXPEDITED-DATA request": lambda m: m.expedited_data_request(),
    "S-TYPED-DATA request": lambda m: m.typed_data_request(),
    "S-CAPABILITY-DATA request": lambda m: m.capability_data_request(),
    "S-TOKEN-GIVE request": lambda m: m.token_give_request(Tokens.MINOR_SYNC),
    "S-TOKEN-PLEASE request": lambda m: m.token_please_request(Tokens.MINOR_SYNC),
    "S-CONTROL-GIVE request": lambda m: m.control_give_request(),
    "S-SYNC-MINOR request": lambda m: m.sync_minor_request(),
    "S-SYNC-MAJOR request": lambda m: m.sync_major_request(),
    "S-RESYNCHRONIZE request": lambda m: m.resynchronize_request(ResyncType.SET, 5),
    "S-ACTIVITY-START request": lambda m: m.activity_start_request(b"a"),
    "S-ACTIVITY-END request": lambda m: m.activity_end_request(),
    "S-ACTIVITY-INTERRUPT request": lambda m: m.activity_interrupt_request(),
    "S-ACTIVITY-DISCARD request": lambda m: m.activity_discard_request(),
    "S-U-EXCEPTION-REPORT request": lambda m: m.u_exception_report_request(0),
    "S-U-ABORT request": lambda m: m.u_abort_request(),
    "S-CONNECT response": lambda m: m.connect_response(True, ALL, Tokens.NONE),
    "S-SYNC-MAJOR response": lambda m: m.sync_major_response(),
    "S-RESYNCHRONIZE response": lambda m: m.resynchronize_response(),
}


@pytest.mark.parametrize("primitive", sorted(REQUESTS))
def test_no_primitive_but_s_connect_is_allowed_in_sta01_idle(primitive: str) -> None:
    machine = SessionMachine(initiator=True)
    with pytest.raises(PrimitiveNotAllowed) as raised:
        REQUESTS[primitive](machine)
    assert raised.value.state is State.STA01 and "STA01" in str(raised.value)


@pytest.mark.parametrize(
    "primitive",
    ["S-DATA request", "S-SYNC-MINOR request", "S-TOKEN-GIVE request", "S-ACTIVITY-START request"],
)
def test_while_waiting_for_the_accept_sta02a_only_an_abort_is_allowed(primitive: str) -> None:
    machine = SessionMachine(initiator=True)
    machine.connect_request()
    with pytest.raises(PrimitiveNotAllowed):
        REQUESTS[primitive](machine)
    machine.u_abort_request()
    assert machine.state is State.STA01


def test_s_connect_positive_confirm_enters_data_transfer_sta713_and_a_refusal_idle() -> None:
    caller, callee = pair()
    assert caller.state is State.STA713 and callee.state is State.STA713
    refused = SessionMachine(initiator=True)
    refused.connect_request()
    event = refused.connect_confirm(False, ALL, Tokens.NONE, 486, "Busy Here")
    assert event == p.ConnectConfirm(False, FU.NONE, 486, "Busy Here")
    assert refused.state is State.STA01


def test_s_connect_response_is_allowed_only_after_an_indication_sta08() -> None:
    machine = SessionMachine(initiator=False)
    assert machine.connect_indication(ALL) == p.ConnectIndication(ALL)
    assert machine.state is State.STA08
    with pytest.raises(PrimitiveNotAllowed):
        machine.data_request()
    machine.connect_response(False, ALL, Tokens.NONE)
    assert machine.state is State.STA01


# --- tokens (X.215 §13) --------------------------------------------------------------------


def test_tokens_exist_only_with_their_functional_units() -> None:
    assert p.tokens_of(FU.DUPLEX) == Tokens.NONE
    assert p.tokens_of(FU.HALF_DUPLEX) == Tokens.DATA
    assert p.tokens_of(FU.MINOR_SYNCHRONIZE) == Tokens.MINOR_SYNC
    assert p.tokens_of(FU.ACTIVITY_MANAGEMENT) == Tokens.MAJOR_ACTIVITY
    assert p.tokens_of(FU.NEGOTIATED_RELEASE) == Tokens.RELEASE


def test_s_data_in_half_duplex_needs_the_data_token() -> None:
    caller, callee = pair(HALF)
    caller.data_request()
    with pytest.raises(TokenNotHeld, match="DATA"):
        callee.data_request()


def test_s_token_give_moves_the_tokens_at_once_and_only_held_ones_may_be_given() -> None:
    caller, callee = pair(HALF)
    with pytest.raises(TokenNotHeld):
        callee.token_give_request(Tokens.DATA)
    caller.token_give_request(Tokens.DATA | Tokens.MINOR_SYNC)
    assert not caller.held & (Tokens.DATA | Tokens.MINOR_SYNC)
    # the data token travels by re-INVITE; the others in a GIVE TOKENS SPDU
    (given,) = caller.take_outgoing()
    assert given.kind is Kind.GT and given.tokens == Tokens.MINOR_SYNC
    assert callee.receive([given]) == [p.TokenGiveIndication(Tokens.MINOR_SYNC)]
    assert callee.token_give_indication(Tokens.DATA) == p.TokenGiveIndication(Tokens.DATA)
    callee.data_request()
    with pytest.raises(TokenNotHeld):
        caller.data_request()


def test_s_token_please_asks_for_tokens_the_peer_holds_and_not_for_own_ones() -> None:
    caller, callee = pair(HALF)
    with pytest.raises(PrimitiveNotAllowed, match="this side holds"):
        caller.token_please_request(Tokens.DATA)
    with pytest.raises(PrimitiveNotAllowed, match="not tokens"):
        pair(ALL)[1].token_please_request(Tokens.DATA)  # no data token in duplex
    callee.token_please_request(Tokens.DATA, b"my turn")
    assert carry(callee, caller) == [p.TokenPleaseIndication(Tokens.DATA, b"my turn")]
    assert caller.held & Tokens.DATA  # asking does not move it


def test_s_control_give_hands_over_every_token_and_waits_for_give_tokens_ack_sta18() -> None:
    caller, callee = pair(HALF)
    caller.control_give_request()
    assert caller.state is State.STA18 and caller.held == Tokens.NONE
    assert carry(caller, callee) == [p.ControlGiveIndication()]
    assert callee.held == p.tokens_of(HALF)
    assert carry(callee, caller) == []  # the GIVE TOKENS ACK
    assert caller.state is State.STA713


def test_s_control_give_is_not_allowed_during_an_activity() -> None:
    caller, _ = pair()
    caller.activity_start_request(b"a")
    with pytest.raises(PrimitiveNotAllowed, match="activity is in progress"):
        caller.control_give_request()


def test_s_release_needs_every_available_token() -> None:
    caller, callee = pair(HALF)
    with pytest.raises(TokenNotHeld):
        callee.release_request()
    caller.release_request()
    assert caller.state is State.STA03
    assert callee.release_indication() == p.ReleaseIndication()
    assert caller.release_confirm() == p.ReleaseConfirm() and caller.state is State.STA01


# --- synchronization (X.215 §14, §15) -----------------------------------------------------


def test_minor_sync_points_are_numbered_serially_and_confirmed_up_to_a_serial() -> None:
    caller, callee = pair()
    caller.activity_start_request(b"prompt")
    assert carry(caller, callee) == [p.ActivityStartIndication(b"prompt")]
    assert [caller.sync_minor_request() for _ in range(3)] == [1, 2, 3]
    events = carry(caller, callee)
    assert [e.serial for e in events if isinstance(e, p.SyncMinorIndication)] == [1, 2, 3]
    callee.sync_minor_response(2)
    assert carry(callee, caller) == [p.SyncMinorConfirm(2)]
    assert caller.va == 3 and caller.vm == 4


def test_s_sync_minor_needs_its_functional_unit_and_an_activity() -> None:
    caller, _ = pair(FU.DUPLEX | p.SIP_UNITS)
    with pytest.raises(FunctionalUnitNotSelected, match="MINOR_SYNCHRONIZE"):
        caller.sync_minor_request()
    caller, _ = pair()
    with pytest.raises(PrimitiveNotAllowed, match="no activity"):
        caller.sync_minor_request()


def test_s_sync_minor_by_the_side_without_the_minor_sync_token_is_refused() -> None:
    caller, callee = pair()
    caller.activity_start_request(b"a")
    carry(caller, callee)
    with pytest.raises(TokenNotHeld):
        callee.sync_minor_request()


def test_a_major_sync_point_waits_for_its_ack_sta04a_and_s_data_waits_with_it() -> None:
    caller, callee = pair(HALF)
    caller.activity_start_request(b"a")
    caller.sync_minor_request()
    serial = caller.sync_major_request()
    assert serial == 2 and caller.state is State.STA04A
    with pytest.raises(PrimitiveNotAllowed):
        caller.data_request()
    events = carry(caller, callee)
    assert events[-1] == p.SyncMajorIndication(2) and callee.state is State.STA10A
    callee.sync_major_response()
    assert carry(callee, caller) == [p.SyncMajorConfirm(2)]
    assert caller.state is State.STA713 and caller.vr == 2 and caller.va == 3
    caller.data_request()


def test_resynchronize_restart_goes_back_no_further_than_the_last_major_sync_point() -> None:
    caller, callee = pair()
    caller.activity_start_request(b"a")
    caller.sync_minor_request()  # 1
    caller.sync_major_request()  # 2
    carry(caller, callee)
    callee.sync_major_response()
    carry(callee, caller)
    caller.sync_minor_request()  # 3
    carry(caller, callee)
    with pytest.raises(PrimitiveNotAllowed, match=r"outside 2\.\.3"):
        caller.resynchronize_request(ResyncType.RESTART, 1)
    assert caller.resynchronize_request(ResyncType.RESTART, 2) == 2
    assert caller.state is State.STA05A
    assert carry(caller, callee) == [p.ResynchronizeIndication(ResyncType.RESTART, 2)]
    callee.resynchronize_response()
    assert carry(callee, caller) == [p.ResynchronizeConfirm(2)]
    assert (caller.vm, caller.va, caller.vr) == (3, 3, 2) == (callee.vm, callee.va, callee.vr)


@pytest.mark.parametrize(
    ("kind", "serial", "allowed"),
    [
        (ResyncType.ABANDON, 3, True),  # from V(M) on
        (ResyncType.ABANDON, 1, False),
        (ResyncType.SET, 0, True),  # any serial number
        (ResyncType.SET, 999_999, True),
        (ResyncType.RESTART, 0, True),  # the start of the activity
        (ResyncType.RESTART, 3, False),  # not placed yet
    ],
)
def test_resynchronize_options_take_the_serial_numbers_x215_allows(
    kind: ResyncType, serial: int, allowed: bool
) -> None:
    caller, _ = pair()
    caller.activity_start_request(b"a")
    caller.sync_minor_request()
    caller.sync_minor_request()
    if allowed:
        assert caller.resynchronize_request(kind, serial) == serial
    else:
        with pytest.raises(PrimitiveNotAllowed):
            caller.resynchronize_request(kind, serial)


def test_a_resynchronize_ack_for_another_serial_is_a_protocol_error() -> None:
    caller, _ = pair()
    caller.activity_start_request(b"a")
    caller.resynchronize_request(ResyncType.SET, 9)
    with pytest.raises(ProtocolError, match="not 9"):
        caller.receive([spdu.sync_ack(Kind.RA, 8)])


# --- activities (X.215 §16) ----------------------------------------------------------------


def test_an_activity_ends_with_a_confirmed_activity_end_sta04b() -> None:
    caller, callee = pair()
    caller.activity_start_request(b"a")
    caller.sync_minor_request()
    assert caller.activity_end_request() == 2 and caller.state is State.STA04B
    events = carry(caller, callee)
    assert events[-1] == p.ActivityEndIndication(2) and callee.state is State.STA10B
    callee.activity_end_response()
    assert carry(callee, caller) == [p.ActivityEndConfirm(2)]
    assert caller.activity is None and callee.activity is None


def test_an_interrupted_activity_resumes_from_the_serial_number_it_reached() -> None:
    caller, callee = pair()
    caller.activity_start_request(b"a")
    caller.sync_minor_request()
    caller.sync_minor_request()
    carry(caller, callee)
    callee.sync_minor_response(2)
    carry(callee, caller)
    caller.activity_interrupt_request()  # the hold re-INVITE goes out
    assert caller.state is State.STA05B
    assert callee.activity_interrupt_indication(0) == p.ActivityInterruptIndication(0)
    assert caller.activity_interrupt_confirm() == p.ActivityInterruptConfirm()
    assert caller.interrupted == {b"a": 2} and caller.activity is None
    assert caller.activity_resume_request(b"b", b"a") == 2
    assert carry(caller, callee) == [p.ActivityResumeIndication(b"b", b"a", 2)]
    assert caller.vm == callee.vm == 3 and callee.activity == b"b"


def test_an_activity_cannot_start_inside_another_nor_resume_one_never_interrupted() -> None:
    caller, _ = pair()
    caller.activity_start_request(b"a")
    with pytest.raises(PrimitiveNotAllowed, match="activity is in progress"):
        caller.activity_start_request(b"b")
    caller, _ = pair()
    with pytest.raises(PrimitiveNotAllowed, match="no interrupted activity"):
        caller.activity_resume_request(b"x")


def test_activity_discard_waits_for_its_ack_sta05c() -> None:
    caller, callee = pair()
    caller.activity_start_request(b"a")
    caller.activity_discard_request(spdu.ReasonCode.LOCAL_SS_USER_ERROR)
    assert caller.state is State.STA05C
    events = carry(caller, callee)
    assert events[-1] == p.ActivityDiscardIndication(5) and callee.state is State.STA11C
    callee.activity_discard_response()
    assert carry(callee, caller) == [p.ActivityDiscardConfirm()]
    assert caller.state is State.STA713 and caller.activity is None


def test_s_release_is_not_allowed_during_an_activity() -> None:
    caller, _ = pair()
    caller.activity_start_request(b"a")
    with pytest.raises(PrimitiveNotAllowed, match="activity is in progress"):
        caller.release_request()


# --- exceptions and protocol errors -------------------------------------------------------


def test_s_u_exception_report_is_for_the_side_without_the_data_token() -> None:
    caller, callee = pair(HALF)
    with pytest.raises(PrimitiveNotAllowed, match="data token"):
        caller.u_exception_report_request(0)
    callee.u_exception_report_request(1, b"cannot hear")
    (event,) = carry(callee, caller)
    assert isinstance(event, p.UExceptionReportIndication) and event.warning == "cannot hear"


def test_after_an_exception_report_both_wait_until_the_holder_recovers_sta19_sta20() -> None:
    caller, callee = pair(HALF, caller_tokens=p.tokens_of(HALF))
    callee.u_exception_report_request(1, b"cannot hear")
    assert callee.state is State.STA20
    carry(callee, caller)
    assert caller.state is State.STA19
    with pytest.raises(PrimitiveNotAllowed):
        caller.data_request()  # no more data until the exception is dealt with
    with pytest.raises(PrimitiveNotAllowed):
        callee.u_exception_report_request(1)
    caller.token_give_request(Tokens.DATA)  # a recovery: the data token to the reporter
    assert caller.state is State.STA713
    callee.token_give_indication(Tokens.DATA)  # its re-INVITE
    assert callee.state is State.STA713 and callee.held & Tokens.DATA


def test_a_resynchronization_recovers_from_an_exception_report() -> None:
    caller, callee = pair(HALF, caller_tokens=p.tokens_of(HALF))
    caller.activity_start_request(b"a")
    carry(caller, callee)
    callee.u_exception_report_request(3)
    carry(callee, caller)
    assert (caller.state, callee.state) == (State.STA19, State.STA20)
    caller.resynchronize_request(ResyncType.RESTART, 0)
    assert caller.state is State.STA05A
    (indication,) = carry(caller, callee)
    assert isinstance(indication, p.ResynchronizeIndication) and callee.state is State.STA11A
    callee.resynchronize_response()
    assert carry(callee, caller) == [p.ResynchronizeConfirm(0)]
    assert caller.state is State.STA713 and callee.state is State.STA713


def test_in_a_duplex_session_an_exception_report_is_told_and_data_transfer_goes_on() -> None:
    caller, callee = pair(ALL)
    callee.u_exception_report_request(1)
    carry(callee, caller)
    assert caller.state is State.STA713 and callee.state is State.STA713


def test_an_exception_report_spdu_puts_a_half_duplex_session_in_sta19_and_sta20() -> None:
    caller, callee = pair(HALF, caller_tokens=p.tokens_of(HALF))
    caller.activity_start_request(b"a")
    carry(caller, callee)
    bad = spdu.sync_ack(Kind.MAA, 7)
    with pytest.raises(ProtocolError) as raised:
        callee.receive([bad])
    callee.p_exception_report_request(raised.value.reflected)  # its SPM refuses it: ER
    assert callee.state is State.STA20  # waits for a recovery SPDU or an abort
    (event,) = carry(callee, caller)
    assert isinstance(event, p.PExceptionReportIndication) and bad.encode().hex() in event.reason
    assert caller.state is State.STA19  # its user must recover
    with pytest.raises(PrimitiveNotAllowed):
        caller.data_request()
    with pytest.raises(PrimitiveNotAllowed):
        caller.sync_major_request()
    caller.activity_discard_request()  # a recovery: the activity is dropped
    assert caller.state is State.STA05C
    (indication,) = carry(caller, callee)
    assert isinstance(indication, p.ActivityDiscardIndication) and callee.state is State.STA11C
    callee.activity_discard_response()
    assert carry(callee, caller) == [p.ActivityDiscardConfirm()]
    assert caller.state is State.STA713 and callee.state is State.STA713


def test_an_exception_report_spdu_waiting_for_an_ack_goes_to_sta19_too() -> None:
    caller, callee = pair(HALF, caller_tokens=p.tokens_of(HALF))
    caller.activity_start_request(b"a")
    carry(caller, callee)
    caller.sync_major_request()
    assert caller.state is State.STA04A
    carry(caller, callee)  # lost to the report below: the callee's SPM reports instead
    caller.receive([spdu.exception_report(b"\x29")])
    assert caller.state is State.STA19
    caller.resynchronize_request(ResyncType.ABANDON, caller.vm)
    assert caller.state is State.STA05A


def test_an_exception_report_spdu_in_a_duplex_session_or_in_release_is_told_only() -> None:
    caller, _ = pair(ALL)
    (event,) = caller.receive([spdu.exception_report(b"\x01")])
    assert isinstance(event, p.PExceptionReportIndication)
    assert caller.state is State.STA713
    caller.p_exception_report_request(b"\x01")
    assert caller.state is State.STA713 and caller.take_outgoing()[0].kind is Kind.ER
    half, _ = pair(HALF)
    half.release_request()
    half.receive([spdu.exception_report()])
    assert half.state is State.STA03  # the release goes on


@pytest.mark.parametrize(
    "unit",
    [
        spdu.sync_ack(Kind.MAA, 1),  # no major sync point outstanding
        spdu.plain(Kind.ADA),  # no discard outstanding
        spdu.plain(Kind.GTA),  # no control give outstanding
        spdu.minor_sync_point(5),  # not the next serial number
        spdu.activity_end(1),  # no activity
    ],
)
def test_a_misplaced_spdu_is_a_protocol_error_that_changes_nothing(unit: spdu.Spdu) -> None:
    caller, _ = pair()
    before = (caller.state, caller.vm, caller.va, caller.activity, caller.held)
    with pytest.raises(ProtocolError) as raised:
        caller.receive([unit])
    assert raised.value.reflected == unit.encode()
    assert (caller.state, caller.vm, caller.va, caller.activity, caller.held) == before


def test_a_malformed_tsdu_is_a_protocol_error() -> None:
    caller, _ = pair()
    with pytest.raises(ProtocolError, match="runs past"):
        caller.decode(bytes([1, 0, 49, 9, 42]))


def test_aborts_end_the_session_from_any_connected_state() -> None:
    caller, callee = pair()
    caller.activity_start_request(b"a")
    caller.sync_major_request()
    assert caller.p_abort_indication(408, "Timer B") == p.PAbortIndication(408, "Timer B")
    assert caller.state is State.STA01 and caller.activity is None
    assert callee.u_abort_indication(487, "CANCEL").status == 487
    assert callee.state is State.STA01


# --- SPDUs that overtake the ACCEPT (the 2xx) ----------------------------------------------


def test_spdus_that_overtake_the_accept_wait_in_sta02a_and_follow_the_confirm() -> None:
    caller, callee = SessionMachine(initiator=True), SessionMachine(initiator=False)
    caller.connect_request()
    callee.connect_indication(ALL)
    callee.connect_response(True, ALL, Tokens.NONE)
    callee.token_please_request(Tokens.MAJOR_ACTIVITY, b"may I?")  # right behind its 2xx
    # the INFO with the PLEASE TOKENS comes before the 2xx: nothing is refused, nothing told
    assert carry(callee, caller) == []
    assert caller.state is State.STA02A and caller.take_early() == []
    confirm = caller.connect_confirm(True, ALL, p.tokens_of(ALL))
    assert confirm == p.ConnectConfirm(True, ALL)
    early = caller.take_early()
    assert [caller.receive(units) for units in early] == [
        [p.TokenPleaseIndication(Tokens.MAJOR_ACTIVITY, b"may I?")]
    ]
    assert caller.take_early() == []  # delivered once


def test_a_refused_connect_drops_the_spdus_kept_in_sta02a() -> None:
    caller = SessionMachine(initiator=True)
    caller.connect_request()
    assert caller.receive([spdu.please_tokens(Tokens.DATA)]) == []
    caller.connect_confirm(False, FU.NONE, Tokens.NONE, 486, "Busy Here")
    assert caller.state is State.STA01 and caller.take_early() == []


def test_sta02a_keeps_a_bounded_number_of_tsdus() -> None:
    caller = SessionMachine(initiator=True)
    caller.connect_request()
    unit = spdu.please_tokens(Tokens.DATA)
    for _ in range(MAX_EARLY_TSDUS):
        caller.receive([unit])
    with pytest.raises(ProtocolError, match="before the ACCEPT"):
        caller.receive([unit])


# --- negotiated release (X.215 §17.2) ------------------------------------------------------

NEGOTIATED = ALL | FU.NEGOTIATED_RELEASE


def test_negotiated_release_asks_with_finish_and_the_peer_may_refuse_with_not_finished() -> None:
    caller, callee = pair(NEGOTIATED)
    assert caller.available & Tokens.RELEASE and caller.held & Tokens.RELEASE
    caller.release_request()
    assert caller.state is State.STA03 and not caller.release_accepted
    assert carry(caller, callee) == [p.ReleaseIndication(negotiated=True)]
    assert callee.state is State.STA09
    callee.release_response(accept=False)
    assert callee.state is State.STA713
    assert carry(callee, caller) == [p.ReleaseConfirm(accepted=False)]
    assert caller.state is State.STA713  # data transfer goes on


def test_negotiated_release_accepted_with_disconnect_lets_the_bye_go() -> None:
    caller, callee = pair(NEGOTIATED)
    caller.release_request()
    carry(caller, callee)
    callee.release_response(accept=True)
    assert callee.state is State.STA16
    assert carry(callee, caller) == [] and caller.release_accepted
    assert caller.release_confirm() == p.ReleaseConfirm()  # the BYE's 200
    callee.transport_disconnect()  # the BYE
    assert caller.state is State.STA01 and callee.state is State.STA01


def test_without_the_release_token_a_negotiated_release_may_not_be_asked() -> None:
    _, callee = pair(NEGOTIATED)
    with pytest.raises(TokenNotHeld, match="RELEASE"):
        callee.release_request()


@pytest.mark.parametrize("kind", [Kind.DN, Kind.NF])
def test_a_disconnect_or_not_finished_without_a_finish_is_a_protocol_error(kind: Kind) -> None:
    caller, _ = pair(NEGOTIATED)
    with pytest.raises(ProtocolError):
        caller.receive([spdu.plain(kind)])


def test_finish_without_negotiated_release_is_a_protocol_error() -> None:
    caller, _ = pair(ALL)
    with pytest.raises(ProtocolError):
        caller.receive([spdu.plain(Kind.FN)])


def test_tim_ends_with_s_p_abort_a_release_whose_bye_never_comes_after_disconnect() -> None:
    caller, callee = pair(NEGOTIATED)
    callee.tim = 4.0
    caller.release_request()
    carry(caller, callee)
    assert callee.release_timer(100.0) is None  # STA09: no release accepted yet
    callee.release_response(accept=True)  # DISCONNECT: STA16, the BYE to come
    assert callee.release_timer(100.0) == 104.0
    assert callee.release_timer(102.0) == 104.0  # running: not restarted
    assert callee.release_timer_expired(103.9) is None and callee.state is State.STA16
    event = callee.release_timer_expired(104.0)
    assert event == p.PAbortIndication(
        408, "release timer TIM expired: no BYE after our DISCONNECT"
    )
    assert callee.state is State.STA01 and callee.tim_deadline is None
    with pytest.raises(PrimitiveNotAllowed):
        callee.transport_disconnect()  # a BYE after that finds no release to complete
    assert callee.release_timer_expired(200.0) is None  # once


def test_tim_ends_with_s_p_abort_a_release_whose_bye_gets_no_200() -> None:
    caller, callee = pair(NEGOTIATED)
    caller.release_request()
    assert caller.release_timer(0.0) is None  # FINISH sent, DISCONNECT not in: no TIM
    carry(caller, callee)
    callee.release_response(accept=True)
    carry(callee, caller)  # DISCONNECT: our BYE goes, its 200 to come
    deadline = caller.release_timer(50.0)
    assert deadline == 50.0 + caller.tim
    event = caller.release_timer_expired(deadline)
    assert event == p.PAbortIndication(
        408, "release timer TIM expired: no 200 to our BYE after the DISCONNECT"
    )
    assert caller.state is State.STA01


def test_tim_stops_when_the_release_completes_or_is_refused() -> None:
    caller, callee = pair(NEGOTIATED)
    caller.release_request()
    carry(caller, callee)
    callee.release_response(accept=True)
    carry(callee, caller)
    deadline = callee.release_timer(0.0)
    assert deadline is not None and caller.release_timer(0.0) is not None
    callee.transport_disconnect()  # the BYE came in time
    assert callee.release_timer_expired(deadline) is None and callee.tim_deadline is None
    assert caller.release_confirm() == p.ReleaseConfirm()  # its 200 came in time
    assert caller.release_timer_expired(deadline) is None
    # a refused negotiation and a plain release never start TIM
    caller, callee = pair(NEGOTIATED)
    caller.release_request()
    carry(caller, callee)
    callee.release_response(accept=False)
    carry(callee, caller)
    assert callee.release_timer(0.0) is None and caller.release_timer(0.0) is None
    plain, _ = pair(ALL)
    plain.release_request()
    assert plain.release_accepted and plain.release_timer(0.0) is None
