"""Following 3xx redirections (RFC 3261 §8.1.3.4): the target set, sans I/O."""

from __future__ import annotations

import pytest

from voip.sip import Request, Response, make_response, parse_message, parse_uri
from voip.sip.redirect import TargetSet, redirected_request, targets_of

INVITE = (
    b"INVITE sip:bob@biloxi.example SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP client.atlanta.example:5060;branch=z9hG4bKbf9f44\r\n"
    b"Max-Forwards: 70\r\n"
    b"Route: <sip:ss1.atlanta.example;lr>\r\n"
    b"From: Alice <sip:alice@atlanta.example>;tag=9fxced76sl\r\n"
    b"To: Bob <sip:bob@biloxi.example>\r\n"
    b"Call-ID: 2xTb9vxSit55XU7p8@atlanta.example\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:alice@client.atlanta.example>\r\n"
    b'Proxy-Authorization: Digest username="alice", realm="atlanta.example", nonce="n", '
    b'uri="sip:bob@biloxi.example", response="00"\r\n'
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"v=0\n"
)


def invite(uri: str = "sip:bob@biloxi.example") -> Request:
    request = parse_message(INVITE.replace(b"sip:bob@biloxi.example SIP", uri.encode() + b" SIP"))
    assert isinstance(request, Request)
    return request


def redirect(*contacts: str, status: int = 302) -> Response:
    return make_response(invite(), status, headers=[("Contact", c) for c in contacts])


def failure(status: int = 486) -> Response:
    return make_response(invite(), status)


def uris(targets: TargetSet) -> list[str]:
    return [str(t.uri) for t in targets.pending]


def test_contacts_are_tried_highest_q_first_and_in_order_within_one_q() -> None:
    targets = TargetSet(parse_uri("sip:bob@biloxi.example"))
    first = targets.redirect(
        redirect(
            "<sip:bob@a.example>;q=0.5",
            "<sip:bob@b.example>",  # no q: 1.0
            "<sip:bob@c.example>;q=0.7",
            "<sip:bob@d.example>;q=1.0",
        )
    )
    assert str(first) == "sip:bob@b.example"
    assert uris(targets) == ["sip:bob@d.example", "sip:bob@c.example", "sip:bob@a.example"]


def test_a_failure_of_a_redirected_target_makes_way_for_the_next() -> None:
    targets = TargetSet(parse_uri("sip:bob@biloxi.example"))
    targets.redirect(redirect("<sip:bob@a.example>;q=0.9", "<sip:bob@b.example>;q=0.1"))
    assert str(targets.after(failure(486))) == "sip:bob@b.example"
    assert targets.after(failure(404)) is None  # none left: the failure is final
    assert [str(uri) for uri in targets.tried] == ["sip:bob@a.example", "sip:bob@b.example"]


def test_a_failure_of_the_first_request_uri_is_final() -> None:
    targets = TargetSet(parse_uri("sip:bob@biloxi.example"))
    assert targets.after(failure(480)) is None


def test_contacts_of_a_later_redirect_are_merged_by_q() -> None:
    targets = TargetSet(parse_uri("sip:bob@biloxi.example"))
    targets.redirect(redirect("<sip:bob@a.example>;q=0.9", "<sip:bob@b.example>;q=0.2"))
    nxt = targets.redirect(redirect("<sip:bob@c.example>;q=0.5", "<sip:bob@d.example>;q=0.1"))
    assert str(nxt) == "sip:bob@c.example"
    assert uris(targets) == ["sip:bob@b.example", "sip:bob@d.example"]


def test_a_redirect_back_to_the_request_uri_or_a_tried_target_is_not_followed() -> None:
    # two servers redirecting to each other: each target once, then the 3xx stands
    targets = TargetSet(parse_uri("sip:bob@biloxi.example"))
    assert str(targets.redirect(redirect("<sip:bob@a.example>"))) == "sip:bob@a.example"
    assert targets.redirect(redirect("<sip:bob@BILOXI.example>")) is None
    assert targets.redirect(redirect("<sip:bob@a.example>")) is None


def test_redirects_in_a_row_are_bounded() -> None:
    targets = TargetSet(parse_uri("sip:bob@biloxi.example"), max_redirects=3)
    for hop in range(3):
        assert targets.redirect(redirect(f"<sip:bob@hop{hop}.example>")) is not None
    assert targets.redirect(redirect("<sip:bob@hop3.example>")) is None
    assert targets.redirects == 3


def test_no_redirect_is_followed_with_a_limit_of_zero() -> None:
    targets = TargetSet(parse_uri("sip:bob@biloxi.example"), max_redirects=0)
    assert targets.redirect(redirect("<sip:bob@a.example>")) is None


def test_a_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="max_redirects"):
        TargetSet(parse_uri("sip:bob@biloxi.example"), max_redirects=-1)


@pytest.mark.parametrize("status", [305, 380, 399])
def test_only_300_301_and_302_are_followed(status: int) -> None:
    targets = TargetSet(parse_uri("sip:bob@biloxi.example"))
    assert targets.redirect(redirect("<sip:bob@a.example>", status=status)) is None


@pytest.mark.parametrize("status", [300, 301, 302])
def test_300_301_and_302_are_followed(status: int) -> None:
    targets = TargetSet(parse_uri("sip:bob@biloxi.example"))
    assert str(targets.redirect(redirect("<sip:bob@a.example>", status=status))) == (
        "sip:bob@a.example"
    )


def test_a_redirect_without_contact_leaves_nothing_to_try() -> None:
    targets = TargetSet(parse_uri("sip:bob@biloxi.example"))
    assert targets.redirect(redirect()) is None


def test_only_sip_uris_are_targets_and_unreadable_contacts_are_left_out() -> None:
    response = redirect(
        "<mailto:bob@biloxi.example>",
        "<tel:+15551234567>",
        "<sip:bob@a.example>;q=2.5",  # q outside 0..1
        "<sip:bob@b.example>",
    )
    assert [str(t.uri) for t in targets_of(response)] == ["sip:bob@b.example"]


def test_a_sips_request_is_redirected_to_sips_targets_only() -> None:
    targets = TargetSet(parse_uri("sips:bob@biloxi.example"))
    target = targets.redirect(redirect("<sip:bob@a.example>", "<sips:bob@b.example>;q=0.1"))
    assert str(target) == "sips:bob@b.example"
    assert targets.pending == []


def test_the_method_parameter_and_headers_of_a_contact_are_dropped() -> None:
    [target] = targets_of(redirect("<sip:bob@a.example;method=INVITE;transport=tcp?Subject=x>"))
    assert str(target.uri) == "sip:bob@a.example;transport=tcp"


def test_the_redirected_request_keeps_call_id_from_to_route_and_body_with_cseq_one_more() -> None:
    first = invite()
    retry = redirected_request(first, parse_uri("sip:bob@chicago.example;transport=tcp"))  # type: ignore[arg-type]
    assert str(retry.uri) == "sip:bob@chicago.example;transport=tcp"
    assert retry.call_id == first.call_id
    assert retry.from_.tag == first.from_.tag == "9fxced76sl"
    assert str(retry.to) == str(first.to) and retry.to.tag is None
    assert (retry.cseq.number, retry.cseq.method) == (2, "INVITE")
    assert retry.headers.get_all("Route") == first.headers.get_all("Route")
    assert retry.body == first.body
    # a new transaction (the sender stamps Via), a Contact for the new target's transport,
    # credentials computed anew for the new Request-URI
    for name in ("Via", "Contact", "Proxy-Authorization"):
        assert retry.headers.get_all(name) == []
    assert first.cseq.number == 1 and first.headers.get_all("Via")  # the first is untouched
