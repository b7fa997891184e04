"""RFC 5118 IPv6 torture messages: all twelve, in wire form (CRLF) and archive form (LF)."""

from __future__ import annotations

import pytest

from tests.conftest import DATA, load_manifest
from voip.sip import SipError, SipUri, check_message, parse_message

IPV6 = DATA / "ipv6"
MANIFEST = load_manifest(IPV6 / "manifest.json")
ENTRIES = {entry["name"]: entry for entry in MANIFEST["messages"]}
# The archive's own quirk: these two declare a Content-Length that counts CRLF line
# endings while the archive's lines end in LF, so the datagram is shorter than declared.
ARCHIVE_SHORT_BODY = {"ipv6-in-sdp", "mult-ip-in-sdp"}


def wire(name: str) -> bytes:
    return (IPV6 / ENTRIES[name]["wire_file"]).read_bytes()


def checked(data: bytes):  # type: ignore[no-untyped-def]
    message = parse_message(data)
    check_message(message)
    return message


def test_all_twelve_messages_are_listed() -> None:
    assert len(ENTRIES) == 12
    assert len(list((IPV6 / "wire").glob("*.sip"))) == 12
    assert len(list((IPV6 / "archive").glob("*.dat"))) == 12


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_wire_form_verdict(name: str) -> None:
    entry = ENTRIES[name]
    if entry["verdict"] == "accept":
        checked(wire(name))
    else:
        with pytest.raises(SipError) as caught:
            checked(wire(name))
        assert caught.value.status == entry["expected_status"]


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_archive_form_with_bare_lf_lines(name: str) -> None:
    data = (IPV6 / ENTRIES[name]["archive_file"]).read_bytes()
    entry = ENTRIES[name]
    if name in ARCHIVE_SHORT_BODY:
        with pytest.raises(SipError, match="exceeds body"):
            checked(data)
    elif entry["verdict"] == "accept":
        checked(data)
    else:
        with pytest.raises(SipError) as caught:
            checked(data)
        assert caught.value.status == entry["expected_status"]


def test_ipv6_good_references_in_request_uri_via_and_contact() -> None:
    message = checked(wire("ipv6-good"))
    assert message.uri.host == "[2001:db8::10]"
    assert message.via[0].host == "[2001:db8::9:1]"
    assert message.contact[0].uri.host.startswith("[2001:db8::")


def test_unbracketed_ipv6_request_uri_is_400() -> None:
    with pytest.raises(SipError) as caught:
        checked(wire("ipv6-bad"))
    assert caught.value.status == 400
    assert "port" in caught.value.reason


def test_port_inside_brackets_is_part_of_the_address() -> None:
    uri = checked(wire("port-ambiguous")).uri
    assert isinstance(uri, SipUri)
    assert (uri.host, uri.port) == ("[2001:db8::10:5070]", None)


def test_port_after_brackets_is_a_port() -> None:
    uri = checked(wire("port-unambiguous")).uri
    assert (uri.host, uri.port) == ("[2001:db8::10]", 5070)


def test_received_with_and_without_brackets() -> None:
    with_delim = checked(wire("via-received-param-with-delim")).via[0]
    without = checked(wire("via-received-param-no-delim")).via[0]
    assert with_delim.received == "[2001:db8::9:255]"
    assert without.received == "2001:db8::9:255"


def test_mixed_ipv4_and_ipv6_vias() -> None:
    vias = checked(wire("mult-ip-in-header")).via
    hosts = [v.host for v in vias]
    assert any(h.startswith("[") for h in hosts)
    assert any(not h.startswith("[") for h in hosts)


def test_three_colon_form_is_tolerated() -> None:
    assert checked(wire("ipv6-bug-abnf-3-colons")).uri.host == "[2001:db8:::192.0.2.1]"
    assert checked(wire("ipv6-correct-abnf-2-colons")).uri.host == "[2001:db8::192.0.2.1]"


def test_ipv4_mapped_address_with_port_after_bracket() -> None:
    via = checked(wire("ipv4-mapped-ipv6")).via[0]
    assert via.host.lower().startswith("[::ffff:")
    assert via.port is not None
