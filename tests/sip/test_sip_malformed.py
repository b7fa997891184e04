"""Answering a request that could not be parsed (RFC 3261 §8.2.6.2, RFC 4475 §3.1.2)."""

from __future__ import annotations

import pytest

from tests.conftest import DATA, load_manifest
from voip.sip import SipError, make_response, parse_message
from voip.sip.malformed import answerable, reason_phrase

TORTURE = DATA / "torture"
ENTRIES = {entry["name"]: entry for entry in load_manifest(TORTURE / "manifest.json")["messages"]}


def load(name: str) -> bytes:
    return (TORTURE / f"{name}.dat").read_bytes()


def unparsable(kind: str) -> list[str]:
    names = []
    for name, entry in sorted(ENTRIES.items()):
        try:
            parse_message(load(name))
        except SipError:
            if entry["kind"] == kind:
                names.append(name)
    return names


@pytest.mark.parametrize("name", [n for n in unparsable("request") if n != "test"])
def test_an_unparsable_torture_request_keeps_what_its_answer_copies(name: str) -> None:
    request = answerable(load(name))
    assert request is not None
    assert request.method == ENTRIES[name]["method"]
    response = make_response(request, 400, "what was wrong")
    for field in ("Via", "From", "To", "Call-ID", "CSeq"):
        assert response.headers.get(field), field
    assert parse_message(bytes(response)).headers.get("call-id") == request.headers.get("call-id")


def test_a_request_without_via_cannot_be_answered() -> None:
    """test.dat has neither Via nor CSeq: nowhere to send an answer (§18.2.2)."""
    assert answerable(load("test")) is None


@pytest.mark.parametrize("name", unparsable("response"))
def test_an_unparsable_response_is_never_answered(name: str) -> None:
    assert answerable(load(name)) is None


def test_an_ack_is_never_answered() -> None:
    ack = load("ncl").replace(b"INVITE sip:", b"ACK sip:", 1).replace(b" INVITE\r\n", b" ACK\r\n")
    assert answerable(ack) is None


def test_folded_and_compact_header_fields_are_read() -> None:
    data = (
        b"OPTIONS sip:bob@example.com SIP/7.0\r\nv: SIP/2.0/UDP a.example.com\r\n"
        b" ;branch=z9hG4bK1\r\nf: <sip:a@example.com>;tag=1\r\nt: <sip:b@example.com>\r\n"
        b"i: c1\r\nCSeq: 1 OPTIONS\r\n\r\n"
    )
    request = answerable(data)
    assert request is not None
    assert request.headers.get("via") == "SIP/2.0/UDP a.example.com ;branch=z9hG4bK1"
    assert request.headers.get("call-id") == "c1"


def test_a_start_line_without_a_method_takes_the_cseq_method() -> None:
    data = b"sip:bob@example.com\r\nVia: SIP/2.0/UDP a.example.com\r\nCSeq: 4 INFO\r\n\r\n"
    request = answerable(data)
    assert request is not None and request.method == "INFO"


def test_header_values_with_control_characters_are_not_copied() -> None:
    data = b"OPTIONS x SIP/2.0\r\nVia: SIP/2.0/UDP a\r\nCSeq: 1 OPTIONS\r\nTo: b\x00\r\n\r\n"
    request = answerable(data)
    assert request is not None and "to" not in request.headers


def test_a_reason_phrase_has_no_line_breaks_and_a_bounded_length() -> None:
    assert reason_phrase("bad\r\nContent-Length:\t0") == "bad Content-Length: 0"
    assert len(reason_phrase("x" * 1000)) == 200
