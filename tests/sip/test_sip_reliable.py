"""RFC 3262 reliable provisional responses, sans-I/O and in virtual time: RSeq numbering,
retransmission every T1 doubling until PRACK or 64·T1, RAck matching (481), and the
UAC's in-order acceptance of RSeq (§4)."""

from __future__ import annotations

import pytest
from support.messages import invite

from voip.sip import RAck, Request, Response, SipError, make_response, parse_message
from voip.sip.reliable import (
    PrackTimeout,
    ProvisionalSequence,
    Rel100,
    ReliableProvisionals,
    Retransmit,
    Verdict,
    is_reliable,
    requested,
)

T1 = 0.5


def ringing(request: Request, status: int = 180, body: bytes = b"") -> Response:
    response = make_response(request, status, to_tag="314159")
    response.body = body
    return response


def reparsed(response: Response) -> Response:
    message = parse_message(bytes(response))
    assert isinstance(message, Response)
    return message


def run_until(provisionals: ReliableProvisionals, end: float) -> list[tuple[float, str]]:
    """Fire every deadline up to ``end`` as a driver would: (time, event kind)."""
    fired: list[tuple[float, str]] = []
    while (deadline := provisionals.next_deadline()) is not None and deadline <= end:
        fired += [(deadline, type(e).__name__) for e in provisionals.handle_timers(deadline)]
    return fired


# --- what the request asks -------------------------------------------------------------------


def test_require_100rel_asks_for_reliable_provisionals() -> None:
    assert requested(invite("Require: 100rel\r\nSupported: 100rel\r\n")) is Rel100.REQUIRED
    assert requested(invite("Supported: timer, 100rel\r\n")) is Rel100.SUPPORTED
    assert requested(invite()) is Rel100.DISABLED


# --- UAS: RSeq and the form of a reliable 1xx (§3, §7.1) -------------------------------------


def test_a_reliable_provisional_carries_require_100rel_and_an_rseq() -> None:
    provisionals = ReliableProvisionals(invite(), t1=T1)
    sent = provisionals.send(ringing(invite()), now=0.0)
    assert sent is not None
    response = reparsed(sent)
    assert "100rel" in response.require
    assert response.rseq is not None and 1 <= response.rseq <= 2**31 - 1
    assert is_reliable(response)


def test_rseq_grows_by_one_for_each_reliable_provisional() -> None:
    provisionals = ReliableProvisionals(invite(), t1=T1, first_rseq=41)
    first = provisionals.send(ringing(invite()), now=0.0)
    assert first is not None and first.rseq == 41
    provisionals.prack(RAck(41, 1, "INVITE"), now=0.2)
    second = provisionals.send(ringing(invite(), 183), now=0.3)
    assert second is not None and second.rseq == 42


def test_a_100_is_never_reliable() -> None:
    with pytest.raises(ValueError):
        ReliableProvisionals(invite()).send(ringing(invite(), 100), now=0.0)
    response = make_response(invite(), 100)
    response.headers.add("Require", "100rel")
    response.headers.add("RSeq", "5")
    assert not is_reliable(reparsed(response))


def test_a_second_reliable_provisional_waits_for_the_prack_of_the_first() -> None:
    provisionals = ReliableProvisionals(invite(), t1=T1, first_rseq=1)
    assert provisionals.send(ringing(invite()), now=0.0) is not None
    queued = ringing(invite(), 183, b"v=0\r\n")
    assert provisionals.send(queued, now=0.1) is None
    assert provisionals.outstanding and provisionals.unanswered_offer
    acknowledged, following = provisionals.prack(RAck(1, 1, "INVITE"), now=0.2)
    assert acknowledged.status == 180
    assert following is queued and following.rseq == 2
    provisionals.prack(RAck(2, 1, "INVITE"), now=0.3)
    assert not provisionals.outstanding


# --- UAS: retransmission in virtual time (§3) -----------------------------------------------


def test_the_reliable_provisional_is_retransmitted_every_t1_doubling_until_64_t1() -> None:
    provisionals = ReliableProvisionals(invite(), t1=T1)
    provisionals.send(ringing(invite()), now=0.0)
    fired = run_until(provisionals, 100.0)
    times = [t for t, kind in fired if kind == "Retransmit"]
    assert times == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert fired[-1] == (32.0, "PrackTimeout")
    assert provisionals.next_deadline() is None and not provisionals.outstanding


def test_the_prack_stops_the_retransmissions() -> None:
    provisionals = ReliableProvisionals(invite(), t1=T1, first_rseq=9)
    provisionals.send(ringing(invite()), now=0.0)
    assert [kind for _, kind in run_until(provisionals, 2.0)] == ["Retransmit", "Retransmit"]
    provisionals.prack(RAck(9, 1, "INVITE"), now=2.0)
    assert provisionals.next_deadline() is None
    assert run_until(provisionals, 100.0) == []


def test_over_a_reliable_transport_only_the_64_t1_limit_applies() -> None:
    provisionals = ReliableProvisionals(invite(), t1=T1, retransmit=False)
    sent = provisionals.send(ringing(invite()), now=10.0)
    assert sent is not None
    events = provisionals.handle_timers(provisionals.next_deadline() or 0.0)
    assert events == [PrackTimeout(sent)]


def test_a_late_wake_up_retransmits_once() -> None:
    provisionals = ReliableProvisionals(invite(), t1=T1)
    sent = provisionals.send(ringing(invite()), now=0.0)
    assert sent is not None
    assert provisionals.handle_timers(5.0) == [Retransmit(sent)]
    assert provisionals.next_deadline() == 7.5


def test_the_final_response_ends_the_retransmissions() -> None:
    provisionals = ReliableProvisionals(invite(), t1=T1)
    provisionals.send(ringing(invite()), now=0.0)
    provisionals.close()
    assert provisionals.next_deadline() is None and provisionals.handle_timers(40.0) == []
    with pytest.raises(SipError):
        provisionals.send(ringing(invite()), now=1.0)


# --- UAS: RAck matching (§3, §7.2) ------------------------------------------------------------


@pytest.mark.parametrize(
    "rack",
    [RAck(6, 1, "INVITE"), RAck(5, 2, "INVITE"), RAck(5, 1, "UPDATE")],
    ids=["other RSeq", "other CSeq", "other method"],
)
def test_a_prack_that_matches_nothing_is_481(rack: RAck) -> None:
    provisionals = ReliableProvisionals(invite(), t1=T1, first_rseq=5)
    provisionals.send(ringing(invite()), now=0.0)
    with pytest.raises(SipError) as error:
        provisionals.prack(rack, now=0.1)
    assert error.value.status == 481
    assert provisionals.outstanding  # still waiting for the right one


def test_a_second_prack_for_the_same_response_is_481() -> None:
    provisionals = ReliableProvisionals(invite(), t1=T1, first_rseq=5)
    provisionals.send(ringing(invite()), now=0.0)
    provisionals.prack(RAck(5, 1, "INVITE"), now=0.1)
    with pytest.raises(SipError) as error:
        provisionals.prack(RAck(5, 1, "INVITE"), now=0.2)
    assert error.value.status == 481


# --- UAC: RSeq order (§4) --------------------------------------------------------------------


def reliable_1xx(rseq: int, cseq: int = 7) -> Response:
    response = ringing(invite())
    response.headers.set("CSeq", f"{cseq} INVITE")
    response.headers.add("Require", "100rel")
    response.headers.add("RSeq", str(rseq))
    return reparsed(response)


def test_the_first_reliable_provisional_is_pracked_with_its_rseq_and_cseq() -> None:
    sequence = ProvisionalSequence()
    assert sequence.receive(reliable_1xx(1000)) == (Verdict.NEW, RAck(1000, 7, "INVITE"))
    assert sequence.receive(reliable_1xx(1001)) == (Verdict.NEW, RAck(1001, 7, "INVITE"))


def test_a_retransmitted_reliable_provisional_is_not_pracked_again() -> None:
    sequence = ProvisionalSequence()
    sequence.receive(reliable_1xx(1000))
    assert sequence.receive(reliable_1xx(1000)) == (Verdict.RETRANSMISSION, None)


def test_a_reliable_provisional_out_of_order_is_discarded() -> None:
    sequence = ProvisionalSequence()
    sequence.receive(reliable_1xx(1000))
    assert sequence.receive(reliable_1xx(1002)) == (Verdict.OUT_OF_ORDER, None)
    assert sequence.last_rseq == 1000
    assert sequence.receive(reliable_1xx(1001))[0] is Verdict.NEW
