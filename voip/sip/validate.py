"""What a user agent checks in a message before acting on it (RFC 3261 §8.1.3, §8.2).

``check_request`` raises the :class:`SipError` whose status the UAS answers with;
``check_response`` raises for a response the UAC must discard. Both parse every
header field the UA relies on, so that later typed access cannot fail.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from mypy_extensions import mypyc_attr

from voip.sip.errors import SipError
from voip.sip.grammar import METHODS
from voip.sip.headers import canonical_name
from voip.sip.message import BRANCH_MAGIC_COOKIE, FieldList, Message, Request, Response
from voip.sip.uri import AbsoluteUri, SipUri

KNOWN_METHODS = METHODS

# Methods whose body is a session description (RFC 3261 §13, RFC 3262, RFC 3311).
SESSION_METHODS = frozenset({"INVITE", "ACK", "PRACK", "UPDATE"})

# Header fields that may appear once only (§20, "multi01" of RFC 4475 §3.3.8).
SINGLE_HEADERS = (
    "call-id",
    "cseq",
    "from",
    "to",
    "max-forwards",
    "content-length",
    "content-type",
    "expires",
    "min-expires",
    "session-expires",
    "min-se",
    "rseq",
    "rack",
    "event",
    "refer-to",
    "replaces",
    "date",
)


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(frozen=True, slots=True)
class UaPolicy:
    """What this UA understands: URI schemes, option tags and session body types.

    The sets may be given as any set (``{"100rel"}``, a frozenset); they are kept as
    frozensets. (Compiled, the constructor checks the declared type of its arguments, so
    they are declared as sets of any kind.)"""

    schemes: AbstractSet[str] = frozenset({"sip", "sips", "tel"})
    extensions: AbstractSet[str] = frozenset({"100rel", "timer", "replaces", "norefersub"})
    session_types: AbstractSet[str] = frozenset({"application/sdp", "multipart/mixed"})
    known_methods: AbstractSet[str] = field(default=KNOWN_METHODS)
    # True for an element that forwards requests (a B2BUA leg, a proxy): Max-Forwards
    # 0 is then a 483 (§16.3 step 3); a UA processes such a request normally.
    forwards: bool = False

    def __post_init__(self) -> None:
        # frozen (and hashable): the sets are made frozensets
        for name in ("schemes", "extensions", "session_types", "known_methods"):
            value = getattr(self, name)
            if not isinstance(value, frozenset):
                object.__setattr__(self, name, frozenset(value))

    def __reduce__(self) -> tuple[type[UaPolicy], tuple[object, ...]]:
        # Compiled by mypyc, a frozen class cannot be rebuilt field by field: copy and
        # pickle rebuild it through its constructor.
        fields = (self.schemes, self.extensions, self.session_types, self.known_methods)
        return (type(self), (*fields, self.forwards))


DEFAULT_POLICY = UaPolicy()

# Every typed property of Message, by the key of its header field; reading one parses
# and validates its field.
_TYPED_FIELDS = {
    "via": "via",
    "from": "from_",
    "to": "to",
    "call-id": "call_id",
    "cseq": "cseq",
    "max-forwards": "max_forwards",
    "contact": "contact",
    "route": "route",
    "record-route": "record_route",
    "content-type": "content_type",
    "content-length": "content_length",
    "expires": "expires",
    "min-expires": "min_expires",
    "allow": "allow",
    "supported": "supported",
    "require": "require",
    "accept": "accept",
    "www-authenticate": "www_authenticate",
    "proxy-authenticate": "proxy_authenticate",
    "authorization": "authorization",
    "proxy-authorization": "proxy_authorization",
    "reason": "reason",
    "session-expires": "session_expires",
    "min-se": "min_se",
    "rseq": "rseq",
    "rack": "rack",
    "event": "event",
    "refer-to": "refer_to",
    "replaces": "replaces",
    "date": "date",
}


def _parse_all(message: Message) -> None:
    """Parse every typed field present; a malformed one raises its SipError (400).

    Only the fields the message has are read (an absent one cannot be malformed), in
    the order of ``_TYPED_FIELDS``, so that a message with several faults is answered
    for the same one whatever order its fields came in."""
    keys = message.headers._keys
    present = set(keys)
    if len(present) < len(keys):
        for key in SINGLE_HEADERS:
            if key in present and keys.count(key) > 1:
                raise SipError(400, f"more than one {canonical_name(key)} header")
    for key, name in _TYPED_FIELDS.items():
        if key in present:
            value = getattr(message, name)
            if isinstance(value, FieldList):
                len(value)  # a list is split at commas when first measured
    if "contact" in present:
        for contact in message.contact:
            _ = contact.uri, contact.expires, contact.q
    _ = message.from_.uri, message.to.uri
    if "route" in present or "record-route" in present:
        for value in (*message.route, *message.record_route):
            _ = value.uri
    if "refer-to" in present and message.refer_to is not None:
        _ = message.refer_to.uri


# Max-Forwards may be absent: RFC 2543 peers omit it (RFC 4475 §3.4.1).
_REQUIRED = {"via": "Via", "from": "From", "to": "To", "call-id": "Call-ID", "cseq": "CSeq"}


def _missing(message: Message) -> list[str]:
    keys = message.headers._keys
    return [name for key, name in _REQUIRED.items() if key not in keys]


def check_request(request: Request, policy: UaPolicy = DEFAULT_POLICY) -> None:
    """Raise the SipError a UAS answers ``request`` with, or return if it is acceptable.

    Order: header syntax and presence (400), transaction identity (400), CSeq method
    (400, or 501 for an unknown method), Request-URI scheme (416) and headers (400),
    Require (420), body type (415) and Accept (406), as RFC 3261 §8.2 and RFC 4475 ask.
    """
    uri = request.uri  # the Request-URI is part of the start line: checked first
    missing = _missing(request)
    if missing:
        raise SipError(
            400, f"missing {', '.join(missing)} header" + ("s" if len(missing) > 1 else "")
        )
    _parse_all(request)
    if policy.forwards and request.max_forwards == 0 and request.method != "ACK":
        raise SipError(483, "Max-Forwards is 0: the request cannot be forwarded")
    if request.via[0].branch == BRANCH_MAGIC_COOKIE:
        # RFC 4475 §3.2.1: a branch of the bare magic cookie identifies nothing.
        raise SipError(400, "Via branch is the bare magic cookie z9hG4bK")
    cseq = request.cseq
    if cseq.method != request.method:
        status = 400 if request.method in policy.known_methods else 501
        raise SipError(status, f"CSeq method {cseq.method} does not match {request.method}")
    if isinstance(uri, AbsoluteUri) or uri_scheme(uri) not in policy.schemes:
        raise SipError(416, f"Request-URI scheme {uri_scheme(uri)!r} is not supported")
    if isinstance(uri, SipUri) and uri.headers:
        # §19.1.5 Table 1: headers are not allowed in a Request-URI (RFC 4475 §3.1.2.11).
        raise SipError(400, "Request-URI must not carry headers ('?')")
    if request.method not in ("ACK", "CANCEL"):
        unknown = tuple(tag for tag in request.require if tag not in policy.extensions)
        if unknown:
            raise SipError(
                420,
                f"unsupported extension {', '.join(unknown)}",
                headers=(("Unsupported", ", ".join(unknown)),),
            )
    if request.method in SESSION_METHODS:
        _check_session_body(request, policy)


def uri_scheme(uri: object) -> str:
    if isinstance(uri, SipUri):
        return uri.scheme
    if isinstance(uri, AbsoluteUri):
        return uri.scheme
    return "tel"


def _check_session_body(request: Request, policy: UaPolicy) -> None:
    content_type = request.content_type
    if request.body and content_type is not None and content_type.mime not in policy.session_types:
        raise SipError(
            415,
            f"body of type {content_type.mime} is not supported",
            headers=(("Accept", ", ".join(sorted(policy.session_types))),),
        )
    encoding = request.headers.get("content-encoding")
    if request.body and encoding and encoding.strip().lower() != "identity":
        raise SipError(415, f"Content-Encoding {encoding.strip()} is not supported")
    if "accept" in request.headers and request.method != "ACK":
        accepted = request.accept
        if accepted and not any(
            (t.type in ("*", "application") and t.subtype in ("*", "sdp")) for t in accepted
        ):
            # RFC 4475 §3.3.15: no answer can be written in a type the caller accepts.
            raise SipError(
                406,
                "Accept lists no application/sdp: " + ", ".join(t.mime for t in accepted),
                headers=(("Warning", '399 - "no answer possible in the accepted types"'),),
            )


def check_response(response: Response) -> None:
    """Raise a SipError (``is_response``) when a UAC must discard ``response``."""
    try:
        missing = _missing(response)
        if missing:
            raise SipError(400, f"missing {', '.join(missing)}")
        _parse_all(response)
        if len(response.via) != 1:
            # §8.1.3.3: a UAC discards a response carrying more than one Via.
            raise SipError(400, f"{len(response.via)} Via values in a response to a UAC")
    except SipError as error:
        raise SipError(error.status, error.reason, is_response=True) from None


def check_message(message: Message, policy: UaPolicy = DEFAULT_POLICY) -> None:
    """``check_request`` or ``check_response``, whichever ``message`` needs."""
    if isinstance(message, Request):
        check_request(message, policy)
    elif isinstance(message, Response):
        check_response(message)
