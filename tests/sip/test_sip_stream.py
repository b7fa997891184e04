"""Stream framing (RFC 3261 §18.3) and CRLF keep-alives (RFC 5626 §4.4.1)."""

from __future__ import annotations

import pytest

from voip.sip import (
    KeepAlivePing,
    KeepAlivePong,
    MalformedMessage,
    Request,
    Response,
    SipFramingError,
    StreamParser,
)

OPTIONS = (
    b"OPTIONS sip:b@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP a.example.com;branch=z9hG4bK1\r\n"
    b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\n"
    b"Call-ID: c1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 4\r\n\r\nbody"
)
OK = (
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP a.example.com;branch=z9hG4bK1\r\n"
    b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>;tag=2\r\n"
    b"Call-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
)


def test_several_messages_in_one_read() -> None:
    events = StreamParser().feed(OPTIONS + OK + OPTIONS)
    assert [type(e) for e in events] == [Request, Response, Request]
    assert events[0].body == b"body"


def test_message_split_across_reads_byte_by_byte() -> None:
    parser = StreamParser()
    events = []
    for i in range(len(OPTIONS)):
        events.extend(parser.feed(OPTIONS[i : i + 1]))
        if i < len(OPTIONS) - 1:
            assert events == []
    assert len(events) == 1 and bytes(events[0]) == OPTIONS


def test_double_crlf_is_a_ping_and_single_crlf_a_pong() -> None:
    events = StreamParser().feed(b"\r\n\r\n" + OPTIONS + b"\r\n")
    assert [type(e) for e in events] == [KeepAlivePing, Request, KeepAlivePong]


def test_pong_ending_a_read_is_reported_at_once() -> None:
    assert StreamParser().feed(b"\r\n") == [KeepAlivePong()]


def test_ping_whose_last_octet_is_late_is_still_a_ping() -> None:
    parser = StreamParser()
    assert parser.feed(b"\r\n\r") == []
    assert parser.feed(b"\n") == [KeepAlivePing()]


def test_negative_content_length_closes_the_stream() -> None:
    parser = StreamParser()
    with pytest.raises(SipFramingError):
        parser.feed(OPTIONS.replace(b"Content-Length: 4", b"Content-Length: -4"))
    with pytest.raises(SipFramingError):
        parser.feed(OK)


def test_conflicting_content_lengths_close_the_stream() -> None:
    with pytest.raises(SipFramingError, match="conflicting"):
        StreamParser().feed(OPTIONS.replace(b"Content-Length: 4", b"l: 4\r\nContent-Length: 5"))


def test_header_section_over_the_limit_is_413() -> None:
    parser = StreamParser(max_header_bytes=1024)
    with pytest.raises(SipFramingError) as caught:
        parser.feed(b"OPTIONS sip:b@example.com SIP/2.0\r\nX: " + b"a" * 2000)
    assert caught.value.status == 413


def test_body_over_the_limit_is_refused_before_it_arrives() -> None:
    parser = StreamParser(max_body_bytes=100)
    with pytest.raises(SipFramingError) as caught:
        parser.feed(OPTIONS.replace(b"Content-Length: 4", b"Content-Length: 1000000"))
    assert caught.value.status == 413


def test_malformed_but_framed_message_does_not_end_the_stream() -> None:
    bad = OPTIONS.replace(
        b"OPTIONS sip:b@example.com SIP/2.0", b"OPTIONS sip:b@example.com SIP/7.0"
    )
    events = StreamParser().feed(bad + OK)
    assert isinstance(events[0], MalformedMessage)
    assert events[0].error.status == 505
    assert isinstance(events[1], Response)


def test_messages_framed_before_a_framing_error_are_delivered_then_the_error_raised() -> None:
    parser = StreamParser()
    bad = OPTIONS.replace(b"Content-Length: 4", b"Content-Length: -4")
    events = parser.feed(OPTIONS + OK + bad)
    assert [type(event) for event in events] == [Request, Response]
    assert parser.failed is not None and "-4" in parser.failed.reason
    assert parser.unframed == bad  # the message that broke the framing, for an answer
    with pytest.raises(SipFramingError):
        parser.feed(OPTIONS)


def test_a_framing_error_with_nothing_before_it_raises_at_once() -> None:
    parser = StreamParser()
    with pytest.raises(SipFramingError):
        parser.feed(OPTIONS.replace(b"Content-Length: 4", b"Content-Length: x"))
    assert parser.failed is not None


def test_buffered_counts_an_incomplete_message() -> None:
    parser = StreamParser()
    parser.feed(OPTIONS[:50])
    assert parser.buffered == 50
