"""SIP syntax (RFC 3261 §7, §19, §20, §25): messages, header fields, URIs and framing.

Sans-I/O: bytes in, objects out; no sockets and no clock.

The syntax core runs compiled by mypyc when the package was built with it, else as
pure Python; ``IMPLEMENTATION`` says which (see ``voip.sip._implementation``).
"""

# First: it decides where the syntax core's modules are loaded from.
from voip.sip._implementation import CORE  # isort: skip
from voip.sip.auth import (
    AuthenticationFailed,
    Credentials,
    DigestClient,
    DigestServer,
    Outcome,
    Verdict,
)
from voip.sip.errors import REASON_PHRASES, SipError, SipFramingError
from voip.sip.fields import (
    AuthField,
    CSeq,
    Event,
    MediaType,
    NameAddress,
    RAck,
    Reason,
    Replaces,
    SessionExpires,
    Via,
    parse_name_addr,
    parse_via,
)
from voip.sip.headers import Headers
from voip.sip.message import (
    Message,
    Request,
    Response,
    make_response,
    new_branch,
    new_call_id,
    new_tag,
)
from voip.sip.parser import (
    KeepAlivePing,
    KeepAlivePong,
    MalformedMessage,
    StreamParser,
    parse_message,
)
from voip.sip.uri import AbsoluteUri, SipUri, TelUri, Uri, parse_uri
from voip.sip.validate import UaPolicy, check_message, check_request, check_response

# Compiled with the syntax core (the dialog and transaction layers call it at every
# message), so imported here before the core says what runs.
from voip.sip import dialog as _dialog, transaction as _transaction  # isort: skip  # noqa: F401

#: ``"mypyc"`` when the syntax core runs compiled, ``"pure Python"`` otherwise.
IMPLEMENTATION = CORE.running()

__all__ = [
    "IMPLEMENTATION",
    "REASON_PHRASES",
    "AbsoluteUri",
    "AuthField",
    "AuthenticationFailed",
    "CSeq",
    "Credentials",
    "DigestClient",
    "DigestServer",
    "Event",
    "Headers",
    "KeepAlivePing",
    "KeepAlivePong",
    "MalformedMessage",
    "MediaType",
    "Message",
    "NameAddress",
    "Outcome",
    "RAck",
    "Reason",
    "Replaces",
    "Request",
    "Response",
    "SessionExpires",
    "SipError",
    "SipFramingError",
    "SipUri",
    "StreamParser",
    "TelUri",
    "UaPolicy",
    "Uri",
    "Verdict",
    "Via",
    "check_message",
    "check_request",
    "check_response",
    "make_response",
    "new_branch",
    "new_call_id",
    "new_tag",
    "parse_message",
    "parse_name_addr",
    "parse_uri",
    "parse_via",
]
