"""The top Via on the way in and back: RFC 3261 §18.2.1, §18.2.2 and RFC 3581 §4."""

from __future__ import annotations

import pytest

from tests.transport.helpers import request
from voip.sip import Request, SipError, parse_message
from voip.transport import Endpoint, reflexive_endpoint, response_destination, stamp_received

SOURCE = Endpoint("udp", "198.51.100.7", 40000)


def stamped(data: bytes, source: Endpoint = SOURCE) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request)
    stamp_received(message, source)
    return message


def test_received_is_added_when_sent_by_differs_from_the_source_address() -> None:
    top = stamped(request(sent_by="192.0.2.10:5060")).via[0]
    assert top.received == "198.51.100.7"
    assert top.rport is None


def test_nothing_is_added_when_sent_by_is_the_source_address() -> None:
    message = stamped(request(sent_by="198.51.100.7:5060"))
    assert message.via[0].params == {"branch": "z9hG4bK-c1"}


def test_received_is_added_when_sent_by_is_a_domain_name() -> None:
    assert stamped(request(sent_by="pc33.example.com")).via[0].received == "198.51.100.7"


def test_a_bare_rport_gets_the_source_port_and_received_even_if_equal() -> None:
    # RFC 3581 §4: received is added even when it equals sent-by.
    top = stamped(request(sent_by="198.51.100.7:5060", rport=True)).via[0]
    assert top.rport == 40000
    assert top.received == "198.51.100.7"


def test_an_ipv6_sent_by_in_brackets_matches_the_bare_source_address() -> None:
    source = Endpoint("udp", "2001:db8::7", 40000)
    message = stamped(request(sent_by="[2001:db8:0::7]:5060"), source)
    assert message.via[0].received is None


def test_an_ipv6_source_is_written_into_received_and_reads_back() -> None:
    source = Endpoint("udp", "2001:db8::7", 40000)
    message = stamped(request(sent_by="[2001:db8::1]", rport=True), source)
    reread = parse_message(bytes(message))
    assert reread.via[0].received == "2001:db8::7"
    assert reread.via[0].rport == 40000


def test_only_the_top_via_changes() -> None:
    data = request().replace(
        b"Max-Forwards",
        b"Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp, "
        b"SIP/2.0/TCP [2001:db8::9];branch=z9hG4bKq\r\nMax-Forwards",
    )
    message = stamped(data)
    assert [str(via) for via in message.via[1:]] == [
        "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp",
        "SIP/2.0/TCP [2001:db8::9];branch=z9hG4bKq",
    ]
    assert message.via[0].received == SOURCE.host


def test_stamping_writes_the_wire_form_too() -> None:
    wire = parse_message(bytes(stamped(request(rport=True))))
    assert wire.via[0].params["received"] == "198.51.100.7"
    assert wire.via[0].params["rport"] == "40000"


def test_a_request_without_via_cannot_be_answered() -> None:
    data = b"".join(
        line + b"\r\n" for line in request().split(b"\r\n") if not line.startswith(b"Via")
    )
    with pytest.raises(SipError) as caught:
        stamped(data.removesuffix(b"\r\n"))
    assert caught.value.status == 400


def destination(data: bytes, source: Endpoint = SOURCE) -> Endpoint:
    return response_destination(stamped(data, source).via[0], source)


def test_udp_response_goes_to_received_and_rport() -> None:
    assert destination(request(rport=True)) == Endpoint("udp", "198.51.100.7", 40000)


def test_udp_response_without_rport_goes_to_received_at_the_sent_by_port() -> None:
    assert destination(request(sent_by="192.0.2.10:5070")) == Endpoint("udp", SOURCE.host, 5070)


def test_udp_response_defaults_to_port_5060() -> None:
    assert destination(request(sent_by="192.0.2.10")) == Endpoint("udp", SOURCE.host, 5060)


def test_udp_response_to_an_unstamped_via_goes_to_sent_by() -> None:
    assert destination(request(sent_by="198.51.100.7:5080")) == Endpoint(
        "udp", "198.51.100.7", 5080
    )


def test_maddr_wins_over_received_and_rport() -> None:
    data = request(rport=True, via_params=";maddr=239.255.255.1;ttl=1", sent_by="192.0.2.10:5062")
    assert destination(data) == Endpoint("udp", "239.255.255.1", 5062)


def test_a_stream_response_reopens_to_received_at_the_sent_by_port_not_rport() -> None:
    source = Endpoint("tcp", "198.51.100.7", 40000)
    data = request(transport="TCP", sent_by="192.0.2.10:5070", rport=True)
    assert destination(data, source) == Endpoint("tcp", "198.51.100.7", 5070)


def test_a_tls_response_defaults_to_port_5061() -> None:
    source = Endpoint("tls", "198.51.100.7", 40000)
    data = request(transport="TLS", sent_by="client.example.com")
    assert destination(data, source) == Endpoint("tls", "198.51.100.7", 5061)


def test_a_response_via_tells_the_client_its_public_address() -> None:
    # RFC 3581 §4: the client learns the NAT binding from received and rport.
    top = stamped(request(sent_by="10.0.0.5:5060", rport=True)).via[0]
    assert reflexive_endpoint(top, "udp") == Endpoint("udp", "198.51.100.7", 40000)


def test_a_response_via_without_received_or_rport_tells_nothing() -> None:
    top = parse_message(request(sent_by="198.51.100.7:5060", rport=True)).via[0]
    assert reflexive_endpoint(top, "udp") is None
