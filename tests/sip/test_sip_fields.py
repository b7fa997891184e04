"""Typed header fields (RFC 3261 §20 and extensions)."""

from __future__ import annotations

import random

import pytest

from voip.sip import Headers, Request, SipError, SipUri, parse_message
from voip.sip.fields import (
    parse_auth,
    parse_cseq,
    parse_event,
    parse_media_type,
    parse_name_addr,
    parse_rack,
    parse_reason,
    parse_replaces,
    parse_session_expires,
    parse_via,
)
from voip.sip.headers import header_key


def test_via_with_rport_received_and_maddr() -> None:
    via = parse_via("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx;rport=5061;received=198.51.100.7")
    assert (via.transport, via.host, via.port, via.branch) == ("UDP", "192.0.2.1", 5060, "z9hG4bKx")
    assert via.rport == 5061
    assert via.received == "198.51.100.7"


def test_via_empty_rport_asks_for_it() -> None:
    assert parse_via("SIP/2.0/UDP host;rport;branch=z9hG4bK1").rport is True


def test_via_without_rport() -> None:
    assert parse_via("SIP/2.0/TCP host;branch=z9hG4bK1").rport is None


def test_via_sent_by_with_spaces_around_colon() -> None:
    via = parse_via("SIP/2.0/UDP host.example.com : 5070 ;branch=z9hG4bK1")
    assert (via.host, via.port) == ("host.example.com", 5070)


def test_via_serializes_canonically() -> None:
    text = "SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bKa;rport"
    assert str(parse_via(text)) == text


@pytest.mark.parametrize(
    "text",
    ["SIP/2.0/UDP", "SIP/2.0 host", "SIP/2.0/UDP host;;", "SIP/2.0/UDP host;branch=", "junk"],
)
def test_malformed_via_is_400(text: str) -> None:
    with pytest.raises(SipError):
        parse_via(text)


def test_name_addr_with_quoted_display_name_and_tag() -> None:
    value = parse_name_addr('"Alice \\"A\\" Smith" <sip:alice@example.com>;tag=1928301774')
    assert value.display_name == 'Alice "A" Smith'
    assert value.tag == "1928301774"
    assert str(value) == '"Alice \\"A\\" Smith" <sip:alice@example.com>;tag=1928301774'


def test_addr_spec_parameters_belong_to_the_header() -> None:
    value = parse_name_addr("sip:bob@example.com;tag=abc")
    assert value.tag == "abc"
    assert value.uri.params == {}  # type: ignore[union-attr]


def test_contact_expires_and_q() -> None:
    value = parse_name_addr("<sip:bob@192.0.2.4>;expires=3600;q=0.7")
    assert (value.expires, value.q) == (3600, 0.7)


def test_contact_expires_beyond_32_bits_is_400() -> None:
    with pytest.raises(SipError):
        _ = parse_name_addr("<sip:bob@192.0.2.4>;expires=4294967296").expires


def test_unquoted_display_name_with_comma_is_400() -> None:
    with pytest.raises(SipError):
        parse_name_addr("Bell, Alexander <sip:a.g.bell@example.com>")


def test_cseq() -> None:
    cseq = parse_cseq("  0009 \t INVITE ")
    assert (cseq.number, cseq.method, str(cseq)) == (9, "INVITE", "9 INVITE")


def test_cseq_over_32_bits_is_400() -> None:
    with pytest.raises(SipError, match="exceeds"):
        parse_cseq("4294967296 INVITE")


def test_content_type_with_parameters() -> None:
    media = parse_media_type('multipart/mixed;boundary="unique-boundary-1"')
    assert media.mime == "multipart/mixed"
    assert media.params == {"boundary": "unique-boundary-1"}


def test_digest_challenge_parameters() -> None:
    challenge = parse_auth(
        'Digest realm="atlanta.example.com", qop="auth,auth-int", '
        'nonce="84f1c1ae6cbe5ua9c8e88dfa3ecm3459", algorithm=SHA-256, stale=FALSE'
    )
    assert challenge.scheme == "Digest"
    assert challenge.params["qop"] == "auth,auth-int"
    assert challenge.params["algorithm"] == "SHA-256"
    assert "realm" in challenge.quoted and "algorithm" not in challenge.quoted


def test_digest_credentials_keep_their_quoting() -> None:
    text = (
        'Digest username="bob", realm="b.example", nonce="n", uri="sip:b.example", '
        'qop=auth, nc=00000001, cnonce="c", response="r"'
    )
    assert str(parse_auth(text)) == text


def test_reason_q850() -> None:
    reason = parse_reason('Q.850;cause=16;text="Terminated"')
    assert (reason.protocol, reason.cause, reason.text) == ("Q.850", 16, "Terminated")
    assert str(reason) == 'Q.850;cause=16;text="Terminated"'


def test_session_expires_refresher() -> None:
    value = parse_session_expires("1800;refresher=UAC")
    assert (value.delta, value.refresher) == (1800, "uac")


def test_session_expires_bad_refresher_is_400() -> None:
    with pytest.raises(SipError):
        parse_session_expires("1800;refresher=proxy")


def test_rack() -> None:
    rack = parse_rack("776656 1 INVITE")
    assert (rack.rseq, rack.cseq, rack.method) == (776656, 1, "INVITE")


def test_event_with_id() -> None:
    event = parse_event("refer;id=93809824")
    assert (event.package, event.id) == ("refer", "93809824")


def test_replaces() -> None:
    value = parse_replaces("425928@bobster.example.org;to-tag=7743;from-tag=6472;early-only")
    assert (value.call_id, value.to_tag, value.from_tag, value.early_only) == (
        "425928@bobster.example.org",
        "7743",
        "6472",
        True,
    )


def test_replaces_without_tags_is_400() -> None:
    with pytest.raises(SipError):
        parse_replaces("425928@bobster.example.org;to-tag=7743")


def _request(extra: str) -> bytes:
    return (
        "OPTIONS sip:b@example.com SIP/2.0\r\n"
        "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1\r\n"
        "From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\n"
        f"Call-ID: c1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n"
    ).encode()


def test_allow_supported_require_are_token_lists() -> None:
    message = parse_message(
        _request("Allow: INVITE, ACK,BYE\r\nk: timer, 100rel\r\nRequire: replaces\r\n")
    )
    assert message.allow == ("INVITE", "ACK", "BYE")
    assert message.supported == ("timer", "100rel")
    assert message.require == ("replaces",)


def test_list_header_values_split_across_lines_and_commas() -> None:
    message = parse_message(
        _request(
            "Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
            "Route: <sip:p3.example.com;lr>\r\n"
        )
    )
    assert [r.uri.host for r in message.route] == [  # type: ignore[union-attr]
        "p1.example.com",
        "p2.example.com",
        "p3.example.com",
    ]


def test_comma_inside_quoted_display_name_does_not_split() -> None:
    message = parse_message(
        _request('Contact: "Doe, John" <sip:jd@192.0.2.1>, <sip:jd@192.0.2.2>\r\n')
    )
    assert [c.display_name for c in message.contact] == ["Doe, John", None]


def test_contact_wildcard() -> None:
    message = parse_message(_request("Contact: *\r\nExpires: 0\r\n"))
    assert message.contact_is_wildcard
    assert message.contact == ()
    assert message.expires == 0


def test_contact_with_star_in_its_uri_is_no_wildcard() -> None:
    message = parse_message(_request("Contact: <sip:*69@192.0.2.1>\r\n"))
    assert not message.contact_is_wildcard
    assert message.contact[0].uri.user == "*69"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "host", ["-a.example.com", "a-.example.com", "a..example.com", ".example.com", "a.-b"]
)
def test_via_host_with_an_empty_or_hyphen_edged_label_is_400(host: str) -> None:
    with pytest.raises(SipError):
        parse_via(f"SIP/2.0/UDP {host}:5060;branch=z9hG4bK1")


@pytest.mark.parametrize("host", ["a-b.example.com", "example.com.", "a--b", "_sip.x"])
def test_via_host_with_inner_hyphens_or_a_final_dot_is_accepted(host: str) -> None:
    assert parse_via(f"SIP/2.0/UDP {host};branch=z9hG4bK1").host == host


def test_name_addr_uri_with_a_bad_host_is_400_when_read() -> None:
    value = parse_name_addr("<sip:bob@a-.example.com>;tag=1")
    assert value.tag == "1"
    with pytest.raises(SipError):
        _ = value.uri


def test_name_addr_uri_parts_are_read_from_its_own_match() -> None:
    value = parse_name_addr("Bob <sip:bob:pw@192.0.2.4:5070;transport=tcp;lr>;tag=7;x")
    uri = value.uri
    assert (uri.user, uri.password, uri.host, uri.port) == ("bob", "pw", "192.0.2.4", 5070)  # type: ignore[union-attr]
    assert uri.params == {"transport": "tcp", "lr": None}  # type: ignore[union-attr]
    assert value.params == {"tag": "7", "x": None}
    assert value.display_name == "Bob"


def test_first_parameter_names_are_case_insensitive() -> None:
    assert parse_via("SIP/2.0/UDP h;BRANCH=z9hG4bK1;RPort").params == {
        "branch": "z9hG4bK1",
        "rport": None,
    }


def test_an_empty_later_via_is_400_when_the_list_is_measured() -> None:
    message = parse_message(_request("Via: \r\n"))
    assert message.via[0].host == "a.example.com"
    with pytest.raises(SipError) as caught:
        len(message.via)
    assert caught.value.status == 400 and "Via" in caught.value.reason


def test_list_read_before_a_change_keeps_its_values() -> None:
    message = parse_message(_request(""))
    via = message.via
    message.headers.insert("Via", "SIP/2.0/UDP proxy.example.com;branch=z9hG4bK2")
    assert [v.host for v in via] == ["a.example.com"]
    assert [v.host for v in message.via] == ["proxy.example.com", "a.example.com"]


def test_header_edits_keep_fields_in_order_with_their_lines() -> None:
    """§7.3.1: add appends a field, set/set_all replace every field of a name where the
    first one stood; after any edits the fields, and the lines written from them, are
    those of a plain list of (name, value) edited the same way."""
    rng = random.Random(7)
    names = ["Via", "Contact", "Content-Length", "Allow", "v", "Supported"]
    for _ in range(300):
        headers = Headers()
        model: list[tuple[str, str]] = []
        for step in range(rng.randint(1, 12)):
            name = rng.choice(names)
            key = header_key(name)
            values = [f"{step}.{i}" for i in range(rng.choice((1, 1, 1, 2, 0)))]
            action = rng.choice(("add", "set", "set_all"))
            if action == "add":
                headers.add(name, f"{step}")
                model.append((name, f"{step}"))
                continue
            if action == "set":
                values = [f"{step}"]
                headers.set(name, values[0])
            else:
                headers.set_all(name, values)
            at = next((i for i, (n, _) in enumerate(model) if header_key(n) == key), len(model))
            rest = [(n, v) for n, v in model[at:] if header_key(n) != key]
            model = model[:at] + [(name, v) for v in values] + rest
        assert list(headers) == model
        assert bytes(Request("OPTIONS", SipUri("h"), headers)).split(b"\r\n")[1:-2] == [
            f"{n}: {v}".encode() for n, v in model
        ]
