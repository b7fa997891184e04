"""RFC 3261 §12 dialogs: creation on both sides, requests within, target refresh, glare."""

from __future__ import annotations

import pytest
from support.messages import INVITE, invite

from voip.sip import Request, Response, SipError, make_response, parse_message
from voip.sip.dialog import Dialog, DialogState, OfferAnswer

VIA = "SIP/2.0/UDP 192.0.2.10:5060;rport"


def answer(
    request: Request, status: int = 200, extra: list[tuple[str, str]] | None = None
) -> Response:
    response = make_response(request, status, to_tag="314159", headers=extra or [])
    response.headers.add("Contact", "<sip:bob@192.0.2.20:5062>")
    parsed = parse_message(bytes(response))
    assert isinstance(parsed, Response)
    return parsed


PROXIES = "Record-Route: <sip:p1.example.com;lr>\r\nRecord-Route: <sip:p2.example.com;lr>\r\n"


def test_uac_route_set_is_the_record_route_of_the_response_reversed() -> None:
    request = invite(PROXIES)
    dialog = Dialog.from_uac(request, answer(request))
    assert [str(r.uri) for r in dialog.route_set] == [
        "sip:p2.example.com;lr",
        "sip:p1.example.com;lr",
    ]
    assert str(dialog.remote_target) == "sip:bob@192.0.2.20:5062"
    assert dialog.id.local_tag == "9fxced76sl" and dialog.id.remote_tag == "314159"
    assert dialog.state is DialogState.CONFIRMED and dialog.local_seq == 1


def test_uas_route_set_is_the_record_route_of_the_request_in_order() -> None:
    request = invite(PROXIES)
    dialog = Dialog.from_uas(request, make_response(request, 200, to_tag="314159"))
    assert [str(r.uri) for r in dialog.route_set] == [
        "sip:p1.example.com;lr",
        "sip:p2.example.com;lr",
    ]
    assert dialog.id.local_tag == "314159" and dialog.id.remote_tag == "9fxced76sl"
    assert dialog.remote_seq == 1 and str(dialog.remote_target) == "sip:alice@192.0.2.10"


def test_a_bye_is_sent_to_the_remote_target_through_the_loose_route_set() -> None:
    request = invite(PROXIES)
    dialog = Dialog.from_uac(request, answer(request))
    bye = dialog.create_request("BYE", via=VIA)
    assert str(bye.uri) == "sip:bob@192.0.2.20:5062"
    assert [str(r.uri) for r in bye.route] == ["sip:p2.example.com;lr", "sip:p1.example.com;lr"]
    assert bye.from_.tag == "9fxced76sl" and bye.to.tag == "314159"
    assert (bye.cseq.number, bye.cseq.method) == (2, "BYE")
    assert bye.call_id == request.call_id
    assert (bye.via[0].branch or "").startswith("z9hG4bK")
    assert str(dialog.next_hop()) == "sip:p2.example.com;lr"


def test_strict_routing_puts_the_first_route_in_the_request_uri() -> None:
    request = invite("Record-Route: <sip:strict.example.com;maddr=192.0.2.1>\r\n")
    dialog = Dialog.from_uac(request, answer(request))
    bye = dialog.create_request("BYE", via=VIA)
    assert str(bye.uri) == "sip:strict.example.com;maddr=192.0.2.1"
    assert [str(r.uri) for r in bye.route] == ["sip:bob@192.0.2.20:5062"]


def test_each_new_request_takes_the_next_cseq_and_ack_keeps_the_invites() -> None:
    request = invite()
    dialog = Dialog.from_uac(request, answer(request))
    ack = dialog.create_request("ACK", via=VIA, cseq=1)
    assert (ack.cseq.number, ack.cseq.method) == (1, "ACK")
    numbers = [dialog.create_request(m, via=VIA).cseq.number for m in ("INFO", "BYE")]
    assert numbers == [2, 3]


def test_the_uas_first_request_starts_its_own_cseq_space() -> None:
    request = invite()
    dialog = Dialog.from_uas(request, make_response(request, 200, to_tag="t"))
    bye = dialog.create_request("BYE", via=VIA)
    assert bye.cseq.number == 1 and str(bye.uri) == "sip:alice@192.0.2.10"
    assert bye.from_.tag == "t" and bye.to.tag == "9fxced76sl"


def test_a_request_with_a_lower_cseq_is_answered_500() -> None:
    request = invite()
    dialog = Dialog.from_uas(request, make_response(request, 200, to_tag="t"))
    stale = parse_message(bytes(request).replace(b"CSeq: 1 INVITE", b"CSeq: 1 INFO"))
    assert isinstance(stale, Request)
    with pytest.raises(SipError) as error:
        dialog.receive_request(stale)
    assert error.value.status == 500


def test_a_re_invite_refreshes_the_remote_target() -> None:
    request = invite()
    dialog = Dialog.from_uas(request, make_response(request, 200, to_tag="t"))
    text = bytes(request).replace(b"CSeq: 1", b"CSeq: 2").replace(b"192.0.2.10>", b"192.0.2.99>")
    reinvite = parse_message(text)
    assert isinstance(reinvite, Request)
    dialog.receive_request(reinvite)
    assert str(dialog.remote_target) == "sip:alice@192.0.2.99" and dialog.remote_seq == 2


def test_an_early_dialog_is_confirmed_by_the_2xx_and_takes_its_route_set() -> None:
    request = invite()
    ringing = answer(request, 180, [("Record-Route", "<sip:old.example.com;lr>")])
    dialog = Dialog.from_uac(request, ringing)
    assert dialog.state is DialogState.EARLY
    ok = answer(request, 200, [("Record-Route", "<sip:new.example.com;lr>")])
    dialog.receive_response(request, ok)
    assert dialog.state is DialogState.CONFIRMED
    assert [str(r.uri) for r in dialog.route_set] == ["sip:new.example.com;lr"]


def test_a_2xx_without_contact_cannot_make_a_dialog() -> None:
    request = invite()
    with pytest.raises(SipError):
        Dialog.from_uac(request, make_response(request, 200, to_tag="x"))


def test_an_offer_while_ours_is_outstanding_is_glare_491() -> None:
    request = invite()
    dialog = Dialog.from_uac(request, answer(request))
    dialog.sent_offer(b"v=0 ours")
    with pytest.raises(SipError) as error:
        dialog.received_offer(b"v=0 theirs")
    assert error.value.status == 491
    dialog.received_answer(b"v=0 answer")
    assert dialog.offer_answer is OfferAnswer.STABLE
    dialog.received_offer(b"v=0 theirs")
    assert dialog.offer_answer is OfferAnswer.REMOTE_OFFER


def test_a_failed_offer_returns_to_stable() -> None:
    request = invite()
    dialog = Dialog.from_uac(request, answer(request))
    dialog.sent_offer(b"v=0")
    dialog.offer_failed()
    assert dialog.offer_answer is OfferAnswer.STABLE


def test_no_request_is_built_in_a_terminated_dialog() -> None:
    request = invite()
    dialog = Dialog.from_uac(request, answer(request))
    dialog.terminate()
    with pytest.raises(SipError) as error:
        dialog.create_request("BYE", via=VIA)
    assert error.value.status == 481


def test_a_sips_request_uri_over_tls_makes_a_secure_dialog() -> None:
    text = INVITE.format(extra="").replace("INVITE sip:", "INVITE sips:").replace("UDP", "TLS")
    request = parse_message(text.encode())
    assert isinstance(request, Request)
    assert Dialog.from_uas(request, make_response(request, 200, to_tag="t")).secure
    assert not Dialog.from_uas(invite(), make_response(invite(), 200, to_tag="t")).secure


@pytest.mark.parametrize(("transport", "secure"), [("WSS", True), ("WS", False), ("TCP", False)])
def test_a_sips_request_uri_over_secure_websocket_makes_a_secure_dialog_as_over_tls(
    transport: str, secure: bool
) -> None:
    """RFC 3261 §12.1.1: secure when the request came over TLS with a sips Request-URI;
    SIP over secure WebSocket (Via SIP/2.0/WSS, RFC 7118 §5.2) runs over TLS."""
    text = INVITE.format(extra="").replace("INVITE sip:", "INVITE sips:")
    request = parse_message(text.replace("SIP/2.0/UDP", f"SIP/2.0/{transport}").encode())
    assert isinstance(request, Request)
    assert Dialog.from_uas(request, make_response(request, 200, to_tag="t")).secure is secure


def test_an_offer_while_the_peers_previous_offer_is_unanswered_is_500() -> None:
    """RFC 3311 §5.2: the UAS has received an offer it has not answered yet."""
    request = invite()
    dialog = Dialog.from_uac(request, answer(request))
    dialog.received_offer(b"v=0 first")
    with pytest.raises(SipError) as error:
        dialog.received_offer(b"v=0 second")
    assert error.value.status == 500
    assert dialog.remote_sdp == b"v=0 first"
