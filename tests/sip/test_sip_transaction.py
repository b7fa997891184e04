"""RFC 3261 §17 transactions (with RFC 6026), driven in virtual time."""

from __future__ import annotations

from collections.abc import Hashable

import pytest

from voip.sip import Request, Response, make_response, parse_message
from voip.sip.transaction import (
    AckReceived,
    AckTimeout,
    CancelReceived,
    ClientTransaction,
    RequestReceived,
    ResponseReceived,
    ServerTransaction,
    State,
    StrayResponse,
    Timers,
    TransactionError,
    TransactionEvent,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimeout,
    Transmit,
    TransportFailure,
    make_ack,
    make_cancel,
)

PEER: Hashable = ("udp", "192.0.2.7", 5060)


def request(
    method: str = "INVITE",
    branch: str = "z9hG4bKabc",
    *,
    cseq: int = 1,
    to_tag: str = "",
    sent_by: str = "192.0.2.7:5060",
    call_id: str = "call-1@192.0.2.7",
) -> Request:
    to = "<sip:bob@example.com>" + (f";tag={to_tag}" if to_tag else "")
    text = (
        f"{method} sip:bob@example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {sent_by};branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        f"To: {to}\r\n"
        "From: <sip:alice@example.com>;tag=a1\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {'INVITE' if method == 'ACK' and not to_tag else method}\r\n"
        "Route: <sip:proxy.example.com;lr>\r\n"
        "Contact: <sip:alice@192.0.2.7>\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


def response_to(req: Request, status: int, tag: str = "b1") -> Response:
    return make_response(req, status, to_tag=tag)


def reparse(message: Request | Response) -> Request | Response:
    """The message as the far end's transport would deliver it."""
    parsed = parse_message(bytes(message))
    assert isinstance(parsed, Request | Response)
    return parsed


def sends(events: list[TransactionEvent]) -> list[Transmit]:
    return [event for event in events if isinstance(event, Transmit)]


def run_until(layer: TransactionLayer, end: float) -> list[tuple[float, TransactionEvent]]:
    """Fire timers in virtual time up to ``end``; every event with the time it came at."""
    seen: list[tuple[float, TransactionEvent]] = []
    while (deadline := layer.next_deadline()) is not None and deadline <= end:
        layer.handle_timers(deadline)
        seen.extend((deadline, event) for event in layer.take_events())
    return seen


def times_of(seen: list[tuple[float, TransactionEvent]], kind: type) -> list[float]:
    return [round(at, 6) for at, event in seen if isinstance(event, kind)]


@pytest.fixture
def layer() -> TransactionLayer:
    return TransactionLayer(Timers(t1=0.5, t2=4.0, t4=5.0))


def start_client(layer: TransactionLayer, req: Request, **kw: bool) -> ClientTransaction:
    transaction = layer.send_request(req, PEER, 0.0, **kw)
    first = layer.take_events()
    assert [type(e) for e in first] == [Transmit]
    assert first[0].data == bytes(req) and first[0].destination == PEER
    return transaction


def receive_request(layer: TransactionLayer, req: Request, now: float = 0.0) -> ServerTransaction:
    layer.receive(reparse(req), PEER, now)
    events = layer.take_events()
    assert len(events) == 1 and isinstance(events[0], RequestReceived | CancelReceived)
    return events[0].transaction


# --- client INVITE transaction, §17.1.1 ------------------------------------------------------


def test_timer_a_doubles_from_t1_until_timer_b_times_the_invite_out(
    layer: TransactionLayer,
) -> None:
    transaction = start_client(layer, request())
    seen = run_until(layer, 100.0)
    assert times_of(seen, Transmit) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert times_of(seen, TransactionTimeout) == [32.0]
    assert transaction.state is State.TERMINATED
    assert len(layer) == 0


def test_a_driver_late_to_timer_a_still_sends_every_retransmission_before_timer_b(
    layer: TransactionLayer,
) -> None:
    """§17.1.1.2: Timer A fires T1, 2·T1, 4·T1 … after the request; a loop held up past
    its deadlines (a busy machine) sends those retransmissions late, not fewer of them."""
    start_client(layer, request())
    for now in (0.9, 5.0, 40.0):  # each time well after the deadline
        layer.handle_timers(now)
    kinds = [type(event) for event in layer.take_events()]
    assert kinds == [Transmit] * 6 + [TransactionTimeout, TransactionTerminated]


def test_invite_over_a_reliable_transport_is_not_retransmitted_but_still_times_out(
    layer: TransactionLayer,
) -> None:
    start_client(layer, request(), reliable=True)
    seen = run_until(layer, 100.0)
    assert times_of(seen, Transmit) == []
    assert times_of(seen, TransactionTimeout) == [32.0]


def test_a_provisional_response_stops_retransmissions_and_timer_b(layer: TransactionLayer) -> None:
    req = request()
    transaction = start_client(layer, req)
    layer.receive(reparse(response_to(req, 180)), PEER, 0.2)
    events = layer.take_events()
    assert [type(e) for e in events] == [ResponseReceived]
    assert transaction.state is State.PROCEEDING
    assert run_until(layer, 100.0) == []
    assert transaction.state is State.PROCEEDING  # the TU decides when to CANCEL


def test_non_2xx_final_is_acknowledged_by_the_transaction_with_the_invites_branch(
    layer: TransactionLayer,
) -> None:
    req = request()
    transaction = start_client(layer, req)
    layer.receive(reparse(response_to(req, 486)), PEER, 0.1)
    events = layer.take_events()
    assert [type(e) for e in events] == [Transmit, ResponseReceived]
    ack = parse_message(sends(events)[0].data)
    assert isinstance(ack, Request) and ack.method == "ACK"
    assert ack.via[0].branch == "z9hG4bKabc" and len(ack.via) == 1
    assert ack.to.tag == "b1" and ack.from_.tag == "a1"
    assert ack.cseq.number == 1 and ack.cseq.method == "ACK"
    assert ack.call_id == req.call_id and str(ack.uri) == str(req.uri)
    assert [str(r.uri) for r in ack.route] == ["sip:proxy.example.com;lr"]
    assert transaction.state is State.COMPLETED


def test_retransmitted_non_2xx_gets_the_ack_again_and_is_not_passed_up(
    layer: TransactionLayer,
) -> None:
    req = request()
    start_client(layer, req)
    final = response_to(req, 486)
    layer.receive(reparse(final), PEER, 0.1)
    first_ack = sends(layer.take_events())[0].data
    layer.receive(reparse(final), PEER, 0.6)
    events = layer.take_events()
    assert [type(e) for e in events] == [Transmit]
    assert events[0].data == first_ack  # type: ignore[union-attr]


def test_timer_d_waits_32_seconds_over_udp_and_nothing_over_tcp(layer: TransactionLayer) -> None:
    req = request()
    udp = start_client(layer, req)
    layer.receive(reparse(response_to(req, 404)), PEER, 1.0)
    layer.take_events()
    seen = run_until(layer, 100.0)
    assert times_of(seen, TransactionTerminated) == [33.0]
    assert udp.state is State.TERMINATED

    tcp_req = request(branch="z9hG4bKtcp")
    tcp = start_client(layer, tcp_req, reliable=True)
    layer.receive(reparse(response_to(tcp_req, 404)), PEER, 1.0)
    assert TransactionTerminated(tcp) in layer.take_events()


def test_2xx_moves_to_accepted_and_every_retransmitted_2xx_is_passed_up(
    layer: TransactionLayer,
) -> None:
    req = request()
    transaction = start_client(layer, req)
    ok = response_to(req, 200)
    for at in (0.1, 0.6, 1.6):
        layer.receive(reparse(ok), PEER, at)
        assert [type(e) for e in layer.take_events()] == [ResponseReceived]
    assert transaction.state is State.ACCEPTED
    assert transaction.ack is None  # the ACK for a 2xx is the UA core's (§13.2.2.4)


def test_a_2xx_from_another_fork_is_passed_up_in_accepted(layer: TransactionLayer) -> None:
    req = request()
    start_client(layer, req)
    layer.receive(reparse(response_to(req, 200, tag="fork1")), PEER, 0.1)
    layer.receive(reparse(response_to(req, 200, tag="fork2")), PEER, 0.2)
    events = layer.take_events()
    tags = [e.response.to.tag for e in events if isinstance(e, ResponseReceived)]
    assert tags == ["fork1", "fork2"]


def test_timer_m_ends_accepted_and_later_2xx_are_stray(layer: TransactionLayer) -> None:
    req = request()
    start_client(layer, req)
    ok = response_to(req, 200)
    layer.receive(reparse(ok), PEER, 0.0)
    layer.take_events()
    seen = run_until(layer, 100.0)
    assert times_of(seen, TransactionTerminated) == [32.0]
    layer.receive(reparse(ok), PEER, 40.0)
    assert [type(e) for e in layer.take_events()] == [StrayResponse]


def test_ack_is_refused_as_a_transaction_of_its_own(layer: TransactionLayer) -> None:
    with pytest.raises(TransactionError):
        layer.send_request(request("ACK", to_tag="b1"), PEER, 0.0)


def test_two_transactions_with_one_branch_are_refused(layer: TransactionLayer) -> None:
    layer.send_request(request(), PEER, 0.0)
    with pytest.raises(TransactionError):
        layer.send_request(request(), PEER, 0.0)


def test_cancel_copies_the_invites_request_uri_top_via_and_cseq_number() -> None:
    invite = request(cseq=7)
    cancel = make_cancel(invite)
    assert cancel.method == "CANCEL" and str(cancel.uri) == str(invite.uri)
    assert cancel.via[0].branch == invite.via[0].branch and len(cancel.via) == 1
    assert (cancel.cseq.number, cancel.cseq.method) == (7, "CANCEL")
    assert str(cancel.to) == str(invite.to) and str(cancel.from_) == str(invite.from_)
    assert cancel.call_id == invite.call_id
    assert [str(r) for r in cancel.route] == [str(r) for r in invite.route]


def test_cancel_is_a_transaction_apart_from_the_invite(layer: TransactionLayer) -> None:
    invite = request()
    invite_tx = start_client(layer, invite)
    cancel_tx = start_client(layer, make_cancel(invite))
    layer.receive(reparse(response_to(make_cancel(invite), 200)), PEER, 0.1)
    events = layer.take_events()
    assert [e.transaction for e in events if isinstance(e, ResponseReceived)] == [cancel_tx]
    layer.receive(reparse(response_to(invite, 487)), PEER, 0.2)
    events = layer.take_events()
    assert [e.transaction for e in events if isinstance(e, ResponseReceived)] == [invite_tx]


def test_make_ack_takes_the_to_tag_from_the_response() -> None:
    invite = request()
    ack = make_ack(invite, response_to(invite, 503, tag="xyz"))
    assert ack.to.tag == "xyz" and ack.cseq.method == "ACK"


# --- client non-INVITE transaction, §17.1.2 --------------------------------------------------


def test_timer_e_doubles_up_to_t2_until_timer_f(layer: TransactionLayer) -> None:
    start_client(layer, request("OPTIONS"))
    seen = run_until(layer, 100.0)
    # 0.5, 1, 2, 4, 4 … after the first send at 0 (§17.1.2.2)
    assert times_of(seen, Transmit) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert times_of(seen, TransactionTimeout) == [32.0]


def test_in_proceeding_timer_e_fires_every_t2(layer: TransactionLayer) -> None:
    req = request("OPTIONS")
    transaction = start_client(layer, req)
    layer.receive(reparse(response_to(req, 100)), PEER, 0.1)
    assert transaction.state is State.PROCEEDING
    layer.take_events()
    seen = run_until(layer, 100.0)
    # the Timer E armed at 0 fires at 0.5, then every T2
    assert times_of(seen, Transmit) == [0.5, 4.5, 8.5, 12.5, 16.5, 20.5, 24.5, 28.5]
    assert times_of(seen, TransactionTimeout) == [32.0]


def test_non_invite_final_is_passed_up_once_and_timer_k_waits_t4(layer: TransactionLayer) -> None:
    req = request("REGISTER")
    transaction = start_client(layer, req)
    final = response_to(req, 200)
    layer.receive(reparse(final), PEER, 1.0)
    assert [type(e) for e in layer.take_events()] == [ResponseReceived]
    layer.receive(reparse(final), PEER, 2.0)
    assert layer.take_events() == []  # absorbed in Completed
    assert transaction.state is State.COMPLETED
    seen = run_until(layer, 100.0)
    assert times_of(seen, Transmit) == []
    assert times_of(seen, TransactionTerminated) == [6.0]


def test_non_invite_over_tcp_terminates_on_the_final_response(layer: TransactionLayer) -> None:
    req = request("BYE")
    transaction = start_client(layer, req, reliable=True)
    layer.receive(reparse(response_to(req, 200)), PEER, 1.0)
    assert [type(e) for e in layer.take_events()] == [ResponseReceived, TransactionTerminated]
    assert transaction.state is State.TERMINATED and len(layer) == 0


# --- server INVITE transaction, §17.2.1 ------------------------------------------------------


def test_a_new_invite_is_passed_up_and_its_retransmission_gets_the_last_provisional(
    layer: TransactionLayer,
) -> None:
    req = request()
    transaction = receive_request(layer, req)
    assert transaction.state is State.PROCEEDING and transaction.destination == PEER
    layer.receive(reparse(req), PEER, 0.5)
    assert layer.take_events() == []  # nothing sent yet: nothing to repeat
    ringing = response_to(req, 180)
    layer.respond(transaction, ringing, 0.6)
    assert sends(layer.take_events())[0].data == bytes(ringing)
    layer.receive(reparse(req), PEER, 1.0)
    events = layer.take_events()
    assert [type(e) for e in events] == [Transmit]
    assert events[0].data == bytes(ringing)  # type: ignore[union-attr]


def test_timer_g_resends_a_non_2xx_until_timer_h(layer: TransactionLayer) -> None:
    req = request()
    transaction = receive_request(layer, req)
    layer.respond(transaction, response_to(req, 486), 0.0)
    layer.take_events()
    seen = run_until(layer, 100.0)
    # G: T1 doubling up to T2; H at 64·T1
    assert times_of(seen, Transmit) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert times_of(seen, TransactionTimeout) == [32.0]


def test_the_ack_for_a_non_2xx_confirms_and_timer_i_absorbs_its_retransmissions(
    layer: TransactionLayer,
) -> None:
    req = request()
    transaction = receive_request(layer, req)
    final = response_to(req, 486)
    layer.respond(transaction, final, 0.0)
    layer.take_events()
    ack = make_ack(req, final)
    layer.receive(reparse(ack), PEER, 0.7)
    assert layer.take_events() == []  # the transaction's own ACK is not the TU's business
    assert transaction.state is State.CONFIRMED
    layer.receive(reparse(ack), PEER, 1.0)
    assert layer.take_events() == []
    seen = run_until(layer, 100.0)
    assert times_of(seen, Transmit) == []
    assert times_of(seen, TransactionTerminated) == [5.7]


def test_2xx_is_retransmitted_until_the_ack_that_carries_a_new_branch(
    layer: TransactionLayer,
) -> None:
    req = request()
    transaction = receive_request(layer, req)
    ok = response_to(req, 200, tag="b9")
    layer.respond(transaction, ok, 0.0)
    layer.take_events()
    seen = run_until(layer, 4.0)
    assert times_of(seen, Transmit) == [0.5, 1.5, 3.5]
    ack = request("ACK", branch="z9hG4bKnewbranch", to_tag="b9")
    layer.receive(reparse(ack), PEER, 4.0)
    events = layer.take_events()
    assert len(events) == 1 and isinstance(events[0], AckReceived)
    assert events[0].transaction is transaction
    seen = run_until(layer, 100.0)
    assert times_of(seen, Transmit) == []
    assert times_of(seen, AckTimeout) == []
    assert times_of(seen, TransactionTerminated) == [32.0]


def test_a_2xx_never_acknowledged_is_reported_after_64_t1(layer: TransactionLayer) -> None:
    req = request()
    transaction = receive_request(layer, req)
    layer.respond(transaction, response_to(req, 200), 0.0)
    layer.take_events()
    seen = run_until(layer, 100.0)
    assert times_of(seen, Transmit) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert times_of(seen, AckTimeout) == [32.0]


def test_invite_retransmissions_are_absorbed_in_accepted(layer: TransactionLayer) -> None:
    req = request()
    transaction = receive_request(layer, req)
    layer.respond(transaction, response_to(req, 200), 0.0)
    layer.take_events()
    layer.receive(reparse(req), PEER, 0.1)
    assert layer.take_events() == []


def test_an_ack_for_an_unknown_2xx_is_passed_up_without_a_transaction(
    layer: TransactionLayer,
) -> None:
    layer.receive(reparse(request("ACK", branch="z9hG4bKlate", to_tag="zz")), PEER, 0.0)
    events = layer.take_events()
    assert len(events) == 1 and isinstance(events[0], AckReceived)
    assert events[0].transaction is None


def test_a_final_response_cannot_follow_a_final_response(layer: TransactionLayer) -> None:
    req = request()
    transaction = receive_request(layer, req)
    layer.respond(transaction, response_to(req, 486), 0.0)
    with pytest.raises(TransactionError):
        layer.respond(transaction, response_to(req, 200), 0.1)


def test_cancel_finds_the_invite_it_cancels(layer: TransactionLayer) -> None:
    invite = request()
    invite_tx = receive_request(layer, invite)
    layer.receive(reparse(make_cancel(invite)), PEER, 0.1)
    events = layer.take_events()
    assert len(events) == 1 and isinstance(events[0], CancelReceived)
    assert events[0].invite is invite_tx and events[0].transaction is not invite_tx


def test_cancel_for_no_invite_carries_none(layer: TransactionLayer) -> None:
    layer.receive(reparse(make_cancel(request(branch="z9hG4bKgone"))), PEER, 0.1)
    events = layer.take_events()
    assert isinstance(events[0], CancelReceived) and events[0].invite is None


# --- server non-INVITE transaction, §17.2.2 --------------------------------------------------


def test_non_invite_server_repeats_its_final_response_and_timer_j_waits_64_t1(
    layer: TransactionLayer,
) -> None:
    req = request("OPTIONS")
    transaction = receive_request(layer, req)
    layer.receive(reparse(req), PEER, 0.2)
    assert layer.take_events() == []  # Trying: absorbed
    final = response_to(req, 200)
    layer.respond(transaction, final, 0.3)
    layer.take_events()
    layer.receive(reparse(req), PEER, 0.8)
    events = layer.take_events()
    assert [e.data for e in sends(events)] == [bytes(final)]
    seen = run_until(layer, 100.0)
    assert times_of(seen, TransactionTerminated) == [32.3]


@pytest.mark.parametrize(("method", "status"), [("BYE", 200), ("INVITE", 200), ("INVITE", 486)])
def test_a_server_transaction_past_its_final_response_keeps_its_messages_as_text(
    layer: TransactionLayer, method: str, status: int
) -> None:
    # It only resends the response or absorbs retransmissions until Timer J, L or H:
    # nothing parsed is held for that time (the cyclic GC walks all that is held).
    req = request(method)
    transaction = receive_request(layer, req)
    final = response_to(req, status)
    layer.respond(transaction, final, 0.1)
    layer.take_events()
    kept = (transaction.request, transaction.last_response)
    assert all(m is not None and m.headers.typed == {} for m in kept)
    assert bytes(transaction.request) == bytes(req)
    layer.receive(reparse(req), PEER, 0.2)
    if status >= 300 or method != "INVITE":  # an INVITE in Accepted absorbs it
        assert [e.data for e in sends(layer.take_events())] == [bytes(final)]
    assert transaction.request.headers.typed == {}
    run_until(layer, 100.0)
    assert len(layer) == 0


def test_non_invite_server_over_tcp_ends_with_its_final_response(layer: TransactionLayer) -> None:
    req = request("BYE")
    layer.receive(reparse(req), PEER, 0.0, reliable=True)
    transaction = layer.take_events()[0].transaction  # type: ignore[union-attr]
    layer.respond(transaction, response_to(req, 200), 0.1)
    assert [type(e) for e in layer.take_events()] == [Transmit, TransactionTerminated]
    assert len(layer) == 0


def test_responses_go_to_reply_to_when_the_transport_gave_one(layer: TransactionLayer) -> None:
    req = request("OPTIONS")
    layer.receive(reparse(req), PEER, 0.0, reply_to=("udp", "198.51.100.1", 5080))
    transaction = layer.take_events()[0].transaction  # type: ignore[union-attr]
    layer.respond(transaction, response_to(req, 200), 0.1)
    assert sends(layer.take_events())[0].destination == ("udp", "198.51.100.1", 5080)


def test_responses_and_their_retransmissions_leave_from_where_the_request_arrived(
    layer: TransactionLayer,
) -> None:
    """RFC 3581 §4: a response goes out of the socket its request came in on."""
    req = request()
    here = ("udp", "203.0.113.5", 5062)
    layer.receive(reparse(req), PEER, 0.0, local=here)
    transaction = layer.take_events()[0].transaction  # type: ignore[union-attr]
    layer.respond(transaction, response_to(req, 486), 0.0)
    resent = [event for _, event in run_until(layer, 2.0) if isinstance(event, Transmit)]
    assert [send.local for send in sends(layer.take_events()) + resent] == [here] * 3


def test_a_refused_invite_without_call_id_ends_without_an_error(layer: TransactionLayer) -> None:
    """RFC 4475 §3.3.1 (insuf): an INVITE lacking Call-ID is answered 400 through its
    transaction, which must end quietly: only a 2xx keys it by Call-ID (§17.2.3)."""
    text = bytes(request()).replace(b"Call-ID: call-1@192.0.2.7\r\n", b"")
    invite = parse_message(text)
    assert isinstance(invite, Request)
    layer.receive(invite, PEER, 0.0)
    transaction = layer.take_events()[0].transaction  # type: ignore[union-attr]
    layer.respond(transaction, make_response(invite, 400, "missing Call-ID"), 0.0)
    seen = run_until(layer, 100.0)
    assert times_of(seen, TransactionTimeout) == [32.0]
    assert not layer.servers


# --- matching, §17.1.3 and §17.2.3 ------------------------------------------------------------


def test_a_response_with_another_branch_matches_nothing(layer: TransactionLayer) -> None:
    start_client(layer, request())
    layer.receive(reparse(response_to(request(branch="z9hG4bKother"), 200)), PEER, 0.1)
    assert [type(e) for e in layer.take_events()] == [StrayResponse]


def test_the_same_branch_from_another_sent_by_is_another_transaction(
    layer: TransactionLayer,
) -> None:
    first = receive_request(layer, request("OPTIONS"))
    second = receive_request(layer, request("OPTIONS", sent_by="192.0.2.99:5060"))
    assert first is not second


def test_rfc_2543_requests_without_the_magic_cookie_are_matched_by_their_fields(
    layer: TransactionLayer,
) -> None:
    invite = request(branch="legacy1")
    transaction = receive_request(layer, invite)
    final = response_to(invite, 603)
    layer.respond(transaction, final, 0.0)
    layer.take_events()
    layer.receive(reparse(make_ack(invite, final)), PEER, 0.1)
    assert layer.take_events() == []
    assert transaction.state is State.CONFIRMED


# --- transport errors and clean-up ------------------------------------------------------------


def test_a_transport_error_fails_the_transactions_sending_there(layer: TransactionLayer) -> None:
    transaction = start_client(layer, request())
    other = layer.send_request(request(branch="z9hG4bKelse"), ("udp", "x", 1), 0.0)
    layer.take_events()
    error = ConnectionRefusedError()
    layer.transport_error(PEER, error)
    events = layer.take_events()
    assert TransportFailure(transaction, error) in events
    assert transaction.state is State.TERMINATED and other.state is State.CALLING


def test_nothing_is_left_after_a_thousand_transactions_complete(layer: TransactionLayer) -> None:
    now = 0.0
    for n in range(1000):
        invite = request(branch=f"z9hG4bKc{n}", call_id=f"c{n}")
        client = layer.send_request(invite, PEER, now)
        server_invite = request(branch=f"z9hG4bKs{n}", call_id=f"s{n}")
        layer.receive(reparse(server_invite), PEER, now)
        server = next(e.transaction for e in layer.take_events() if isinstance(e, RequestReceived))
        layer.respond(server, response_to(server_invite, 200, tag=f"t{n}"), now)
        layer.receive(reparse(response_to(invite, 200)), PEER, now + 0.01)
        layer.receive(
            reparse(request("ACK", f"z9hG4bKa{n}", to_tag=f"t{n}", call_id=f"s{n}")), PEER, now
        )
        layer.take_events()
        assert client.state is State.ACCEPTED
        now += 0.01
    run_until(layer, now + 100.0)
    assert len(layer) == 0
    assert layer.next_deadline() is None


def test_a_later_request_in_the_dialog_stands_in_for_a_lost_ack(layer: TransactionLayer) -> None:
    req = request()
    transaction = receive_request(layer, req)
    layer.respond(transaction, response_to(req, 200), 0.0)
    layer.take_events()
    layer.acknowledge(transaction)  # the TU got a BYE in the dialog: the peer has the 2xx
    seen = run_until(layer, 100.0)
    assert times_of(seen, Transmit) == []
    assert times_of(seen, AckTimeout) == []
    assert times_of(seen, TransactionTerminated) == [32.0]
