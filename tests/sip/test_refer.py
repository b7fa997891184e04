"""REFER syntax and its subscription state machines, sans-I/O (RFC 3515, RFC 3420,
RFC 3891 §6, RFC 4488, RFC 6665), driven with a virtual clock."""

from __future__ import annotations

import pytest

from voip.sip import Replaces, Request, SipError, parse_message, parse_name_addr, parse_uri
from voip.sip.refer import (
    ReferNotifier,
    ReferOutcome,
    ReferState,
    ReferSubscriber,
    SipFrag,
    parse_refer_sub,
    parse_sipfrag,
    parse_subscription_state,
    read_referral,
    refer_to_uri,
    replaces_for,
)

# --- Subscription-State ------------------------------------------------------------------


def test_subscription_state_reads_state_expires_and_reason() -> None:
    active = parse_subscription_state("active;expires=60")
    assert (active.state, active.expires, active.terminated) == ("active", 60, False)
    ended = parse_subscription_state("Terminated ; reason=noresource")
    assert ended.terminated and ended.reason == "noresource" and ended.expires is None
    assert str(ended) == "terminated;reason=noresource"


@pytest.mark.parametrize("value", ["", "active;expires=soon", "act ive", "active;retry-after=x"])
def test_a_malformed_subscription_state_is_a_400(value: str) -> None:
    with pytest.raises(SipError) as error:
        parse_subscription_state(value)
    assert error.value.status == 400


# --- message/sipfrag (RFC 3420) ------------------------------------------------------------


def test_a_sipfrag_status_line_round_trips_with_crlf() -> None:
    frag = SipFrag(180, "Ringing")
    assert bytes(frag) == b"SIP/2.0 180 Ringing\r\n"
    assert parse_sipfrag(bytes(frag)) == frag


def test_a_sipfrag_may_end_its_lines_with_a_bare_lf_and_carry_headers() -> None:
    frag = parse_sipfrag(b"SIP/2.0 200 OK\nContact: <sip:c@127.0.0.1>\n\n")
    assert (frag.status, frag.reason) == (200, "OK")
    assert frag.headers == (("Contact", "<sip:c@127.0.0.1>"),)


def test_a_sipfrag_without_reason_phrase_is_read() -> None:
    assert parse_sipfrag(b"SIP/2.0 503\r\n").status == 503


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"INVITE sip:x SIP/2.0\r\n",
        b"SIP/2.0 99 Low\r\n",
        b"SIP/2.0 200 OK\r\nno colon\r\n",
        b"\xff",
    ],
)
def test_a_sipfrag_that_is_not_a_status_line_is_a_400(body: bytes) -> None:
    with pytest.raises(SipError) as error:
        parse_sipfrag(body)
    assert error.value.status == 400


# --- Refer-To with Replaces (RFC 3891 §6) -------------------------------------------------


def test_refer_to_escapes_replaces_as_the_rfc_3891_example() -> None:
    replaces = Replaces("12345@192.168.118.3", to_tag="12345", from_tag="5FFE-3994")
    refer_to = refer_to_uri(parse_uri("sips:bob@phone.example.com"), replaces)
    assert str(refer_to) == (
        "<sips:bob@phone.example.com?Replaces=12345%40192.168.118.3%3Bto-tag%3D12345"
        "%3Bfrom-tag%3D5FFE-3994>"
    )


def test_replaces_for_puts_the_peers_tag_in_to_tag() -> None:
    value = replaces_for("abc@host", local_tag="mine", remote_tag="theirs")
    assert str(value) == "abc@host;to-tag=theirs;from-tag=mine"


def _refer(*headers: str) -> Request:
    text = (
        "REFER sip:b@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\n"
        "From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>;tag=2\r\nCall-ID: c1\r\n"
        "CSeq: 7 REFER\r\nMax-Forwards: 70\r\n" + "".join(h + "\r\n" for h in headers)
    )
    message = parse_message((text + "Content-Length: 0\r\n\r\n").encode())
    assert isinstance(message, Request)
    return message


def test_a_received_refer_to_gives_the_target_its_replaces_and_referred_by() -> None:
    target = read_referral(
        _refer(
            "Refer-To: <sip:carol@127.0.0.1:5070?Replaces=x%40h%3Bto-tag%3Dt%3Bfrom-tag%3Df"
            "&Subject=hi&Call-ID=evil>",
            "Referred-By: <sip:a@127.0.0.1>",
        )
    )
    assert str(target.uri) == "sip:carol@127.0.0.1:5070"
    assert target.replaces == Replaces("x@h", "t", "f")
    assert target.headers == (("Subject", "hi"),)  # never a Call-ID from a URI
    assert target.referred_by == parse_name_addr("<sip:a@127.0.0.1>")
    assert target.subscribe
    assert target.invite_headers() == [
        ("Subject", "hi"),
        ("Replaces", "x@h;to-tag=t;from-tag=f"),
        ("Require", "replaces"),
        ("Referred-By", "<sip:a@127.0.0.1>"),
    ]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ((), 400),
        (("Refer-To: <sip:x@h>", "Refer-To: <sip:y@h>"), 400),
        (("Refer-To: <sip:x@h?Replaces=no-tags>",), 400),
        (("Refer-To: <http://example.com/>",), 416),
        (("Refer-To: <sip:x@h>", "Refer-Sub: maybe"), 400),
        (("Refer-To: <sip:x@h>", "Referred-By: <not a uri"), 400),
    ],
)
def test_a_refer_that_cannot_be_acted_on_is_refused(headers: tuple[str, ...], status: int) -> None:
    with pytest.raises(SipError) as error:
        read_referral(_refer(*headers))
    assert error.value.status == status


def test_refer_sub_false_asks_for_no_subscription() -> None:
    assert parse_refer_sub(_refer("Refer-Sub: false;x=1")) is False
    assert parse_refer_sub(_refer("Refer-Sub: true")) is True
    assert parse_refer_sub(_refer()) is None
    assert not read_referral(_refer("Refer-To: <sip:x@h>", "Refer-Sub: false")).subscribe


# --- the referrer's subscription, in virtual time ------------------------------------------


def _notify(
    state: str, body: bytes, event: str = "refer;id=7", ctype: str = "message/sipfrag"
) -> Request:
    text = (
        "NOTIFY sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK2\r\n"
        "From: <sip:b@127.0.0.1>;tag=2\r\nTo: <sip:a@127.0.0.1>;tag=1\r\nCall-ID: c1\r\n"
        f"CSeq: 3 NOTIFY\r\nMax-Forwards: 70\r\nEvent: {event}\r\n"
        f"Subscription-State: {state}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    message = parse_message(text.encode() + body)
    assert isinstance(message, Request)
    return message


def test_the_subscriber_follows_notifies_to_the_final_status() -> None:
    subscriber = ReferSubscriber(7)
    subscriber.receive_response(202, "Accepted", 0.0, refer_sub=None)
    assert subscriber.state is ReferState.ACCEPTED
    assert subscriber.receive_notify(
        _notify("active;expires=60", b"SIP/2.0 100 Trying\r\n"), 0.1
    ) == (
        ReferOutcome.OK,
        "",
    )
    assert subscriber.deadline == pytest.approx(60.1)
    outcome, _ = subscriber.receive_notify(
        _notify("terminated;reason=noresource", b"SIP/2.0 200 OK\r\n"), 2.0
    )
    assert outcome is ReferOutcome.OK and subscriber.done
    assert subscriber.result is not None and subscriber.result.succeeded
    assert [p.status for p in subscriber.progress] == [100, 200]
    # a NOTIFY after the end names no subscription (RFC 6665 §4.1.3)
    late = subscriber.receive_notify(_notify("terminated", b"SIP/2.0 200 OK\r\n"), 3.0)
    assert late[0] is ReferOutcome.NO_SUBSCRIPTION


def test_a_notify_may_overtake_the_2xx_to_the_refer() -> None:
    subscriber = ReferSubscriber(7)
    subscriber.receive_notify(_notify("active;expires=30", b"SIP/2.0 100 Trying\r\n"), 0.0)
    subscriber.receive_response(202, "Accepted", 0.01, refer_sub=None)
    assert subscriber.state is ReferState.ACCEPTED and subscriber.deadline == 30.0


def test_no_notify_within_64_t1_of_the_2xx_ends_the_subscription_408() -> None:
    subscriber = ReferSubscriber(7, t1=0.5)
    subscriber.receive_response(202, "Accepted", 10.0, refer_sub=None)
    assert subscriber.expire(41.9) is None
    result = subscriber.expire(42.0)
    assert result is not None and result.status == 408 and not result.succeeded


def test_a_refused_refer_is_a_final_failure() -> None:
    subscriber = ReferSubscriber(7)
    subscriber.receive_response(603, "Declined", 0.0, refer_sub=None)
    assert subscriber.done and subscriber.result is not None
    assert (subscriber.result.status, subscriber.result.succeeded) == (603, False)


def test_refer_sub_false_granted_makes_the_2xx_final() -> None:
    subscriber = ReferSubscriber(7, subscribe=False)
    subscriber.receive_response(202, "Accepted", 0.0, refer_sub=False)
    assert subscriber.done and subscriber.result is not None and subscriber.result.succeeded


def test_refer_sub_false_not_granted_still_waits_for_notifies() -> None:
    subscriber = ReferSubscriber(7, subscribe=False)
    subscriber.receive_response(202, "Accepted", 0.0, refer_sub=None)
    assert subscriber.state is ReferState.ACCEPTED


def test_a_subscription_terminated_before_a_final_status_is_a_failure() -> None:
    subscriber = ReferSubscriber(7)
    subscriber.receive_response(202, "Accepted", 0.0, refer_sub=None)
    subscriber.receive_notify(_notify("terminated;reason=timeout", b"SIP/2.0 180 Ringing\r\n"), 1.0)
    assert subscriber.done and subscriber.result is not None
    assert subscriber.result.status == 180 and not subscriber.result.succeeded


@pytest.mark.parametrize(
    ("request_", "outcome"),
    [
        (_notify("active", b"SIP/2.0 100 Trying\r\n", event="presence"), ReferOutcome.BAD_EVENT),
        (
            _notify("active", b"SIP/2.0 100 Trying\r\n", ctype="text/plain"),
            ReferOutcome.UNSUPPORTED_MEDIA,
        ),
        (_notify("active", b"garbage\r\n"), ReferOutcome.BAD_REQUEST),
        (_notify("active;expires=x", b"SIP/2.0 100 Trying\r\n"), ReferOutcome.BAD_REQUEST),
        (_notify("active", b""), ReferOutcome.BAD_REQUEST),
    ],
)
def test_a_bad_notify_is_answered_with_an_error_and_changes_nothing(
    request_: Request, outcome: ReferOutcome
) -> None:
    subscriber = ReferSubscriber(7)
    subscriber.receive_response(202, "Accepted", 0.0, refer_sub=None)
    assert subscriber.receive_notify(request_, 1.0)[0] is outcome
    assert subscriber.state is ReferState.ACCEPTED and not subscriber.progress


# --- the referee's notifier, in virtual time -----------------------------------------------


def test_the_notifier_counts_expires_down_and_terminates_with_the_final_status() -> None:
    notifier = ReferNotifier(7, now=100.0, expires=60)
    first = notifier.notify(100, "Trying", 100.0)
    assert first is not None
    assert first.headers() == [("Event", "refer;id=7"), ("Subscription-State", "active;expires=60")]
    assert first.body == b"SIP/2.0 100 Trying\r\n"
    ringing = notifier.notify(180, "Ringing", 130.0)
    assert ringing is not None and ringing.subscription_state == "active;expires=30"
    final = notifier.notify(486, "Busy Here", 131.0)
    assert final is not None and final.subscription_state == "terminated;reason=noresource"
    assert final.body == b"SIP/2.0 486 Busy Here\r\n"
    assert notifier.notify(200, "OK", 132.0) is None


def test_the_notifier_times_out_when_the_subscription_runs_out() -> None:
    notifier = ReferNotifier(7, now=0.0, expires=60)
    late = notifier.notify(180, "Ringing", 60.0)
    assert late is not None and late.subscription_state == "terminated;reason=timeout"
    assert notifier.terminated
