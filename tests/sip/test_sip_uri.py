"""SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966)."""

from __future__ import annotations

import pytest

from voip.sip import AbsoluteUri, SipError, SipUri, TelUri, parse_uri


def test_full_sip_uri_parts() -> None:
    uri = parse_uri("sips:alice:secret@atlanta.example.com:5061;transport=tcp;lr?subject=project")
    assert isinstance(uri, SipUri)
    assert uri.scheme == "sips" and uri.secure
    assert (uri.user, uri.password, uri.host, uri.port) == (
        "alice",
        "secret",
        "atlanta.example.com",
        5061,
    )
    assert uri.params == {"transport": "tcp", "lr": None}
    assert uri.transport == "tcp" and uri.lr
    assert uri.headers == (("subject", "project"),)


def test_scheme_is_case_insensitive() -> None:
    assert parse_uri("SIP:bob@example.com") == SipUri("example.com", "bob")


def test_uri_without_user_part() -> None:
    assert parse_uri("sip:example.com:5060") == SipUri("example.com", port=5060)


def test_tel_uri_global_number() -> None:
    uri = parse_uri("tel:+1-201-555-0123;ext=42")
    assert isinstance(uri, TelUri)
    assert uri.is_global and uri.number == "+1-201-555-0123"
    assert uri.params == {"ext": "42"}
    assert str(uri) == "tel:+1-201-555-0123;ext=42"


def test_unknown_scheme_is_kept_opaque() -> None:
    uri = parse_uri("urn:service:sos")
    assert uri == AbsoluteUri("urn", "service:sos")
    assert str(uri) == "urn:service:sos"


def test_host_is_never_unescaped() -> None:
    with pytest.raises(SipError):
        parse_uri("sip:user@exa%6Dple.com")


def test_user_escapes_decoded_once_and_reescaped_on_output() -> None:
    uri = parse_uri("sip:I%20have%20spaces@example.net")
    assert uri.user == "I have spaces"  # type: ignore[union-attr]
    assert str(uri) == "sip:I%20have%20spaces@example.net"


def test_escape_of_percent_is_not_decoded_twice() -> None:
    uri = parse_uri("sip:host.example.com;name=v%2541")
    assert uri.params["name"] == "v%41"  # type: ignore[union-attr]
    assert str(uri) == "sip:host.example.com;name=v%2541"


def test_bad_escape_is_400() -> None:
    with pytest.raises(SipError) as caught:
        parse_uri("sip:us%ZZer@example.com")
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "text",
    [
        "sip:",
        "sip:@example.com",
        "sip:user@",
        "sip:user@host:99999",
        "sip:user@host:port",
        "sip:user@[2001:db8::1",
        "sip:user@[not-an-address]",
        "sip:user@host name",
        "sip:user@host;=value",
        "sip:user@host?novalue",
        "nocolon",
        "1sip:user@host",
    ],
)
def test_malformed_uris_raise_400(text: str) -> None:
    with pytest.raises(SipError) as caught:
        parse_uri(text)
    assert caught.value.status == 400


def test_ipv6_reference_with_port() -> None:
    uri = parse_uri("sip:[2001:db8::10]:5070")
    assert (uri.host, uri.port) == ("[2001:db8::10]", 5070)  # type: ignore[union-attr]


def test_bare_ipv6_host_gets_brackets_on_output() -> None:
    assert str(SipUri("2001:db8::1", port=5060)) == "sip:[2001:db8::1]:5060"


def test_parameter_names_are_case_insensitive() -> None:
    uri = parse_uri("sip:host;Transport=TCP")
    assert uri.transport == "tcp"  # type: ignore[union-attr]


def test_maddr_parameter() -> None:
    uri = parse_uri("sip:user@example.com;maddr=239.255.255.1;ttl=15")
    assert uri.maddr == "239.255.255.1"  # type: ignore[union-attr]
