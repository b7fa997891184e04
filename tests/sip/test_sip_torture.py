"""RFC 4475 torture messages: every file gets its manifest's verdict, for a UA.

The manifest (tests/data/torture/manifest.json) gives, per file, ``accept`` or
``reject`` with the status a UAS answers (``expected_status``); for a response the
rejection is a discard. Role-dependent verdicts follow the user-agent role.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import DATA, load_manifest
from voip.sip import (
    AbsoluteUri,
    CSeq,
    Request,
    Response,
    SipError,
    SipUri,
    UaPolicy,
    check_message,
    parse_message,
)

TORTURE = DATA / "torture"
MANIFEST = load_manifest(TORTURE / "manifest.json")
ENTRIES = {entry["name"]: entry for entry in MANIFEST["messages"]}


def load(name: str) -> bytes:
    return (TORTURE / f"{name}.dat").read_bytes()


def parsed(name: str) -> Any:
    message = parse_message(load(name))
    check_message(message)
    return message


def test_manifest_covers_all_fifty_archive_files() -> None:
    files = sorted(p.name for p in TORTURE.glob("*.dat"))
    assert len(files) == 50
    assert sorted(entry["file"] for entry in MANIFEST["messages"]) == files


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_verdict_matches_manifest(name: str) -> None:
    entry = ENTRIES[name]
    if entry["verdict"] == "accept":
        message = parsed(name)
        assert isinstance(message, Request if entry["kind"] == "request" else Response)
        return
    with pytest.raises(SipError) as caught:
        check_message(parse_message(load(name)))
    error = caught.value
    if entry["kind"] == "response":
        assert error.is_response, "a malformed response is discarded, not answered"
    else:
        assert not error.is_response
        assert error.status == entry["expected_status"], error.reason
    assert error.reason


@pytest.mark.parametrize(
    "name", sorted(n for n, e in ENTRIES.items() if e.get("parse") == "must_accept")
)
def test_must_accept_files_parse(name: str) -> None:
    """Even those a UA then refuses are well-formed: framing and start line succeed."""
    assert parse_message(load(name)) is not None


def test_wsinv_folding_and_lws_everywhere() -> None:
    message = parsed("wsinv")
    assert message.method == "INVITE"
    assert message.max_forwards == 68
    assert (message.cseq.number, message.cseq.method) == (9, "INVITE")
    assert message.to.tag == "1918181833n"
    assert message.from_.display_name == 'J Rosenberg \\"'
    assert message.from_.tag == "98asjd8"
    assert [(v.transport, v.host, v.branch) for v in message.via] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    (contact,) = message.contact
    assert contact.display_name == 'Quoted string ""'
    assert contact.q == pytest.approx(0.33)
    assert contact.params["newparam"] == "newvalue"
    assert message.headers.get("NewFangledHeader") == (
        "newfangled value continued newfangled value"
    )
    assert message.headers.get("Subject") == ""
    assert len(message.body) == 150 == message.content_length


def test_wsinv_unknown_header_is_kept_opaque_and_in_order() -> None:
    message = parsed("wsinv")
    names = [name for name, _ in message.headers]
    assert message.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert names.index("UnknownHeaderWithUnusualValue") == names.index("NewFangledHeader") + 1
    assert b"UnknownHeaderWithUnusualValue: ;;,,;;,;\r\n" in bytes(message)


def test_intmeth_unusual_token_characters() -> None:
    message = parsed("intmeth")
    assert message.method == ENTRIES["intmeth"]["method"]
    assert message.cseq.method == message.method
    assert message.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert message.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert message.from_.tag == "_token~1'+`*%!-."
    assert message.via[0].branch == "z9hG4bK-.!%66*_+`'~"
    assert message.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    uri = message.uri
    assert isinstance(uri, SipUri)
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"


def test_esc01_escapes_are_decoded_once_where_allowed() -> None:
    message = parsed("esc01")
    assert message.uri.user == "sips:user@example.com"
    assert message.uri.host == "example.net"
    assert message.to.uri.user == "user"
    assert message.from_.uri.user == "I have spaces"
    (contact,) = message.contact
    assert contact.uri.user == "caller"
    # value%2541 unescapes once to value%41, which is not valueA.
    assert contact.uri.params == {"lr": None, "name": "value%41"}


def test_escnull_keeps_escaped_nul_without_truncating() -> None:
    message = parsed("escnull")
    assert message.to.uri.user == "null-\x00-null"
    users = [c.uri.user for c in message.contact]
    assert users == ["\x00", "\x00\x00"]


def test_esc02_percent_is_literal_outside_escaped_productions() -> None:
    message = parsed("esc02")
    assert message.method == "RE%47IST%45R"
    assert message.from_.display_name == "%Z%45"
    assert len(message.contact) == 2
    assert message.headers.get("C%6Fntact") is not None


def test_lwsdisp_display_name_without_space_before_angle() -> None:
    assert parsed("lwsdisp").from_.display_name == "caller"


def test_longreq_long_values_survive() -> None:
    message = parsed("longreq")
    assert len(message.from_.tag) > 100
    assert len(message.via) > 10
    assert bytes(parse_message(bytes(message))) == bytes(message)


def test_dblreq_trailing_octets_of_a_datagram_are_ignored() -> None:
    message = parsed("dblreq")
    assert message.method == "REGISTER"
    assert message.body == b""
    assert b"INVITE" not in bytes(message)


def test_semiuri_semicolon_in_user_part() -> None:
    uri = parsed("semiuri").uri
    assert (uri.user, uri.host, uri.params) == ("user;par=u@example.net", "example.com", {})


def test_transports_unknown_transport_is_accepted() -> None:
    transports = [v.transport for v in parsed("transports").via]
    assert transports == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]


def test_mpart01_binary_body_framed_by_content_length() -> None:
    message = parsed("mpart01")
    assert len(message.body) == message.content_length
    assert b"\x00" in message.body
    assert message.content_type is not None
    assert message.content_type.mime == "multipart/mixed"


def test_unreason_utf8_reason_phrase() -> None:
    message = parsed("unreason")
    assert message.status == 200
    assert message.reason_phrase == ENTRIES["unreason"]["status_line"].split(" ", 2)[2]


def test_noreason_empty_reason_phrase() -> None:
    message = parsed("noreason")
    assert (message.status, message.reason_phrase) == (100, "")


def test_inv2543_body_is_rest_of_datagram_without_content_length() -> None:
    message = parsed("inv2543")
    assert message.content_length is None
    assert message.body.startswith(b"v=0")
    assert message.via[0].branch is None
    assert message.from_.tag is None
    assert message.max_forwards is None


def test_unksm2_unusual_schemes_outside_request_uri() -> None:
    message = parsed("unksm2")
    assert isinstance(message.to.uri, AbsoluteUri)
    assert message.to.uri.scheme == "isbn"
    assert message.from_.uri.scheme == "http"
    assert message.contact[0].uri.scheme == "name"


def test_zeromf_max_forwards_zero_is_processed_by_a_ua() -> None:
    assert parsed("zeromf").max_forwards == 0


def test_zeromf_forwarding_element_answers_483() -> None:
    with pytest.raises(SipError) as caught:
        check_message(parse_message(load("zeromf")), UaPolicy(forwards=True))
    assert caught.value.status == ENTRIES["zeromf"]["proxy_expected_status"] == 483


def test_cparam01_unknownparam_is_a_contact_parameter() -> None:
    (contact,) = parsed("cparam01").contact
    assert "unknownparam" in contact.params
    assert "unknownparam" not in contact.uri.params


def test_cparam02_unknownparam_is_a_uri_parameter() -> None:
    (contact,) = parsed("cparam02").contact
    assert "unknownparam" in contact.uri.params
    assert "unknownparam" not in contact.params


def test_regescrt_escaped_route_stays_in_the_contact_uri() -> None:
    (contact,) = parsed("regescrt").contact
    assert contact.uri.headers == (("Route", "<sip:sip.example.com>"),)
    assert str(contact.uri) == "sip:user@example.com?Route=%3Csip:sip.example.com%3E"


def test_regaut01_unknown_auth_scheme_parses() -> None:
    (credentials,) = parsed("regaut01").authorization
    assert credentials.scheme == "NoOneKnowsThisScheme"


def test_bext01_420_lists_unsupported_require_tags() -> None:
    with pytest.raises(SipError) as caught:
        check_message(parse_message(load("bext01")))
    assert dict(caught.value.headers)["Unsupported"] == (
        "nothingSupportsThis, nothingSupportsThisEither"
    )


def test_baddn_variant_with_blank_line_is_rejected_alike() -> None:
    data = (TORTURE / "variants" / "baddn.blank-line-appended.dat").read_bytes()
    with pytest.raises(SipError) as caught:
        check_message(parse_message(data))
    assert caught.value.status == 400


def test_clerr_reason_names_both_lengths() -> None:
    with pytest.raises(SipError) as caught:
        parse_message(load("clerr"))
    assert caught.value.reason == "Content-Length 9999 exceeds body of 154 bytes"


def test_badvers_is_505() -> None:
    with pytest.raises(SipError) as caught:
        parse_message(load("badvers"))
    assert caught.value.status == 505


# --- header sections beyond the corpus: what the common-case split must leave alone ---


def test_lws_around_values_is_removed_and_lines_sent_canonically() -> None:
    data = (
        b"OPTIONS sip:b@example.com SIP/2.0\r\n"
        b"Via:  SIP/2.0/UDP a.example.com;branch=z9hG4bK1 \r\n"
        b"From:<sip:a@example.com>;tag=1\r\nTo:\t<sip:b@example.com>\r\n"
        b"Call-ID: c1\r\nCSeq: 1 OPTIONS\r\nSubject: \r\nContent-Length: 0\r\n\r\n"
    )
    message = parse_message(data)
    assert message.headers.get("via") == "SIP/2.0/UDP a.example.com;branch=z9hG4bK1"
    assert message.headers.get("subject") == ""
    assert b"\r\nVia: SIP/2.0/UDP a.example.com;branch=z9hG4bK1\r\nFrom: <sip:a" in bytes(message)
    assert b"\r\nTo: <sip:b@example.com>\r\n" in bytes(message)


def test_line_folded_after_a_bare_lf_is_unfolded() -> None:
    # §7.3.1: LWS includes a bare LF followed by whitespace (RFC 4475 tolerates LF).
    data = (
        b"OPTIONS sip:b@example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1\r\n"
        b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\n"
        b"Call-ID: c1\r\nCSeq: 1\n OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    assert parse_message(data).cseq == CSeq(1, "OPTIONS")


def test_header_line_without_a_colon_is_400_even_when_it_reads_as_a_name() -> None:
    data = (
        b"OPTIONS sip:b@example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1\r\nTo\r\n"
        b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\n"
        b"Call-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    with pytest.raises(SipError) as caught:
        parse_message(data)
    assert caught.value.status == 400
