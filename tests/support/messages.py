"""SIP messages for sans-I/O tests: an INVITE of RFC 3665 style, parsed."""

from __future__ import annotations

from voip.sip import Request, parse_message

INVITE = (
    "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9\r\n"
    "Max-Forwards: 70\r\n"
    "From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n"
    "To: Bob <sip:bob@biloxi.example.com>\r\n"
    "Call-ID: 3848276298220188511@atlanta.example.com\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:alice@192.0.2.10>\r\n"
    "{extra}"
    "Content-Length: 0\r\n\r\n"
)


def invite(extra: str = "") -> Request:
    """The INVITE, with ``extra`` header lines (each ending in CRLF) before Content-Length."""
    message = parse_message(INVITE.format(extra=extra).encode())
    assert isinstance(message, Request)
    return message
