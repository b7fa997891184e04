"""Typed header field values (RFC 3261 §20 and the extensions a softphone meets).

Each value is a frozen dataclass with a ``parse_*`` function that takes one element
of the header (already split at top-level commas for list headers) and a ``__str__``
that writes it back in canonical form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mypy_extensions import mypyc_attr

from voip.sip.errors import SipError
from voip.sip.grammar import (
    FIRST_SIMPLE_PARAMS,
    MAX_UINT32,
    METHODS,
    bad,
    format_params,
    is_token,
    parse_params,
    parse_uint,
    quote_string,
    scan_quoted,
    split_simple_params,
    split_top,
)
from voip.sip.uri import (
    FAST_SIP_URI,
    FLAT_HOST,
    AbsoluteUri,
    SipUri,
    Uri,
    format_host,
    is_hostname,
    parse_uri,
    sip_uri_of,
    split_hostport,
)

_WSP = " \t"
# The common Via in one match (no LWS games, no IPv6, simple parameters); anything else
# goes to the full parser, which accepts whatever this accepts.
_FAST_VIA_RE = re.compile(
    f"SIP/2\\.0/([A-Z]++) ({FLAT_HOST})(?::([0-9]{{1,5}}))?+{FIRST_SIMPLE_PARAMS}"
)
_SENT_PROTOCOL_RE = re.compile(r"([^\s/]+)[ \t]*/[ \t]*([^\s/]+)[ \t]*/[ \t]*([^\s/;]+)[ \t]+(.*)")


def _strip_hostport(text: str) -> str:
    # COLON = SWS ":" SWS (§25.1): "host : 5060" is legal.
    return "".join(text.split())


# --- Via (§20.42, RFC 3581) -------------------------------------------------------------


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(slots=True)
class Via:
    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    protocol: str = "SIP/2.0"

    def __init__(
        self,
        transport: str,
        host: str,
        port: int | None = None,
        params: dict[str, str | None] | None = None,
        protocol: str = "SIP/2.0",
    ) -> None:
        # Written out rather than made by @dataclass: compiled, this one is native code
        # (several a message).
        self.transport = transport
        self.host = host
        self.port = port
        self.params = {} if params is None else params
        self.protocol = protocol

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    @property
    def rport(self) -> int | bool | None:
        """None when absent, True when asked for (RFC 3581 §3), the port when filled in."""
        if "rport" not in self.params:
            return None
        value = self.params["rport"]
        if value is None:
            return True
        return parse_uint(value, "Via rport", 65535)

    @property
    def sent_by(self) -> tuple[str, int | None]:
        return self.host, self.port

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return (
            f"{self.protocol}/{self.transport} {format_host(self.host)}{port}"
            f"{format_params(self.params)}"
        )


def _check_via_numbers(params: dict[str, str | None]) -> None:
    if "ttl" in params:
        parse_uint(params["ttl"] or "", "Via ttl", 255)
    if params.get("rport") is not None:
        parse_uint(params["rport"] or "", "Via rport", 65535)


def parse_via(value: str) -> Via:
    fast = _FAST_VIA_RE.fullmatch(value)
    if fast is not None:
        transport, host, port_text, name, param, others = fast.groups()
        port = None if port_text is None else int(port_text)
        plain = "-" not in host and ".." not in host and host[0] != "."
        if (port is None or port <= 65535) and (plain or is_hostname(host)):
            params = {} if name is None else {name.lower(): param}
            if others:
                params.update(split_simple_params(others))
            if "rport" in params or "ttl" in params:
                _check_via_numbers(params)
            return Via(transport, host, port, params)
    match = _SENT_PROTOCOL_RE.fullmatch(value.strip(_WSP))
    if match is None:
        raise bad(f"Via: expected 'SIP/2.0/transport host' in {value.strip()!r}")
    name, version, transport, rest = match.groups()
    sent_by, semi, param_text = rest.partition(";")
    host, port = split_hostport(_strip_hostport(sent_by), sent_by)
    params = parse_params(param_text, "Via") if semi else {}
    for key in ("branch", "received"):
        if key in params and not params[key]:
            raise bad(f"Via: {key} without a value")
    _check_via_numbers(params)
    return Via(transport.upper(), host, port, params, f"{name.upper()}/{version}")


# --- name-addr / addr-spec: From, To, Contact, Route, Record-Route, Refer-To (§20) -------


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
class NameAddress:
    """``[display-name] <URI> *(;param)``: From, To, Contact, Route, Refer-To (§20).

    A parsed value keeps its URI as text until ``uri`` is first read; a malformed
    URI raises SipError (400) then. ``check_request`` reads them all.
    """

    __slots__ = ("_match", "_uri", "_uri_text", "display_name", "params")

    def __init__(
        self,
        uri: Uri,
        display_name: str | None = None,
        params: dict[str, str | None] | None = None,
    ) -> None:
        self._uri: Uri | None = uri
        self._uri_text: str | None = None
        self._match: re.Match[str] | None = None
        self.display_name = display_name
        self.params: dict[str, str | None] = {} if params is None else params

    @property
    def uri(self) -> Uri:
        uri = self._uri
        if uri is None:
            match = self._match
            if match is not None:
                uri = sip_uri_of(match.group(4, 5, 6, 7, 8, 9, 10, 11))
            if uri is None:
                uri = parse_uri(self._uri_text or "")
            self._uri = uri
            self._match = None  # read: the match (and the text it holds) is not needed
        return uri

    @uri.setter
    def uri(self, uri: Uri) -> None:
        self._uri = uri
        self._uri_text = None
        self._match = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NameAddress):
            return NotImplemented
        return (self.uri, self.display_name, self.params) == (
            other.uri,
            other.display_name,
            other.params,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        uri = self._uri if self._uri is not None else self._uri_text
        return (
            f"NameAddress(uri={uri!r}, display_name={self.display_name!r}, params={self.params!r})"
        )

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    @property
    def expires(self) -> int | None:
        """Contact ``expires`` (§20.10), at most 2**32-1."""
        value = self.params.get("expires")
        return None if value is None else parse_uint(value, "Contact expires")

    @property
    def q(self) -> float | None:
        value = self.params.get("q")
        if value is None:
            return None
        try:
            q = float(value)
        except ValueError:
            raise bad(f"Contact q is not a number: {value!r}") from None
        if not 0.0 <= q <= 1.0:
            raise bad(f"Contact q {value} outside 0..1")
        return q

    @property
    def sip_uri(self) -> SipUri:
        """The URI when it is sip/sips; a SipError(416) otherwise."""
        if not isinstance(self.uri, SipUri):
            raise SipError(416, f"not a SIP URI: {self.uri}")
        return self.uri

    def __str__(self) -> str:
        display = "" if self.display_name is None else quote_string(self.display_name) + " "
        uri = self._uri_text if self._uri is None else str(self._uri)
        return f"{display}<{uri}>{format_params(self.params)}"


def _parse_bracketed(text: str, open_at: int, display: str | None) -> NameAddress:
    close = text.find(">", open_at)
    if close < 0:
        raise bad(f"'<' without '>' in {text!r}")
    inner = text[open_at + 1 : close]
    if not inner or inner != "".join(inner.split()):
        # RFC 4475 §3.1.2.14: LWS inside <> is rejected, not silently removed.
        raise bad(f"whitespace or nothing inside <> in {text!r}")
    uri = parse_uri(inner)
    rest = text[close + 1 :].strip(_WSP)
    if not rest:
        return NameAddress(uri, display)
    if not rest.startswith(";"):
        raise bad(f"unexpected {rest!r} after '>'")
    return NameAddress(uri, display, parse_params(rest[1:], "header"))


# The placeholder URI of a name-addr read off the wire until its text is parsed.
_UNREAD = AbsoluteUri("", "")

# The common name-addr in one match: display name, then the URI, whose parts are
# captured as well when it is a plain SIP URI, then simple parameters.
_FAST_NAME_ADDR_RE = re.compile(
    r'(?:"([^"\\]*+)" ?|([A-Za-z0-9\-.!%*_+`\'~]++(?: [A-Za-z0-9\-.!%*_+`\'~]++)*+) ?)?'
    f'<((?:{FAST_SIP_URI})|[^<>\\s"]++)>'
    f"{FIRST_SIMPLE_PARAMS}"
)


def parse_name_addr(value: str) -> NameAddress:
    """``( name-addr / addr-spec ) *( SEMI param )``."""
    fast = _FAST_NAME_ADDR_RE.fullmatch(value)
    if fast is not None:
        quoted, words, uri_text, scheme, name, param, others = fast.group(1, 2, 3, 4, 12, 13, 14)
        params = {} if name is None else {name.lower(): param}
        if others:
            params.update(split_simple_params(others))
        # The URI stays text until it is read; ``_match`` keeps its parts when they
        # matched as a SIP URI (groups 4-11).
        name_addr = NameAddress(_UNREAD, quoted if quoted is not None else words, params)
        name_addr._uri = None
        name_addr._uri_text = uri_text
        name_addr._match = None if scheme is None else fast
        return name_addr
    text = value.strip(_WSP)
    if text.startswith('"'):
        display, end = scan_quoted(text, 0)
        open_at = end
        while open_at < len(text) and text[open_at] in _WSP:
            open_at += 1
        if open_at >= len(text) or text[open_at] != "<":
            raise bad(f"expected '<' after display name in {text!r}")
        return _parse_bracketed(text, open_at, display)
    open_at = text.find("<")
    if open_at >= 0:
        words = text[:open_at].split()
        # display-name = *(token LWS) / quoted-string; RFC 4475 §3.1.1.6 asks that
        # "caller<sip:…>" (no LWS before '<') be accepted.
        for word in words:
            if not is_token(word):
                raise bad(f"display name {text[:open_at].strip()!r} needs quotes")
        return _parse_bracketed(text, open_at, " ".join(words) if words else None)
    # addr-spec without <>: its parameters belong to the header (RFC 4475 §3.3.12); a URI
    # holding ',', '?' or ';' must be enclosed in <> (§20, RFC 4475 §3.1.2.13).
    uri_text, semi, param_text = text.partition(";")
    uri_text = uri_text.strip(_WSP)
    if "?" in uri_text or "," in uri_text or not uri_text:
        raise bad(f"URI {uri_text!r} must be enclosed in <>")
    if any(c.isspace() for c in uri_text):
        raise bad(f"whitespace in URI {uri_text!r}")
    uri = parse_uri(uri_text)
    return NameAddress(uri, None, parse_params(param_text, "header") if semi else {})


# --- CSeq (§20.16) ------------------------------------------------------------------------


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(slots=True)
class CSeq:
    number: int
    method: str

    def __init__(self, number: int, method: str) -> None:
        # Written out rather than made by @dataclass: compiled, this one is native code.
        self.number = number
        self.method = method

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


def parse_cseq(value: str) -> CSeq:
    number, _, method = value.partition(" ")
    if method in METHODS and number.isdigit() and number.isascii() and len(number) < 10:
        return CSeq(int(number), method)  # the common case: fewer than 10 digits fit
    parts = value.split()
    if len(parts) != 2:
        raise bad(f"CSeq must be 'number method': {value.strip()!r}")
    if not is_token(parts[1]):
        raise bad(f"CSeq method is not a token: {parts[1]!r}")
    return CSeq(parse_uint(parts[0], "CSeq"), parts[1])


# --- Content-Type (§20.15) ---------------------------------------------------------------


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(slots=True)
class MediaType:
    type: str
    subtype: str
    params: dict[str, str | None] = field(default_factory=dict)

    def __init__(
        self, type: str, subtype: str, params: dict[str, str | None] | None = None
    ) -> None:
        # Written out rather than made by @dataclass: compiled, this one is native code.
        self.type = type
        self.subtype = subtype
        self.params = {} if params is None else params

    @property
    def mime(self) -> str:
        return f"{self.type}/{self.subtype}"

    def __str__(self) -> str:
        return f"{self.type}/{self.subtype}{format_params(self.params)}"


def parse_media_type(value: str) -> MediaType:
    main, semi, param_text = value.partition(";")
    type_, slash, subtype = main.partition("/")
    type_, subtype = type_.strip(_WSP).lower(), subtype.strip(_WSP).lower()
    if not slash or not is_token(type_) or not (is_token(subtype) or subtype == "*"):
        if type_ != "*" or subtype != "*":
            raise bad(f"media type must be type/subtype: {value.strip()!r}")
    return MediaType(type_, subtype, parse_params(param_text, "media type") if semi else {})


# --- WWW-/Proxy-Authenticate, Authorization/Proxy-Authorization (§20.7, RFC 7616) --------


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(slots=True)
class AuthField:
    """A challenge or credentials: the scheme and its auth-params (quotes removed).

    ``quoted`` names the parameters that were quoted, so that a digest response keeps
    the quoting RFC 7616 §3.4 requires (``qop`` and ``nc`` bare, ``uri`` quoted …).
    """

    scheme: str
    params: dict[str, str] = field(default_factory=dict)
    quoted: frozenset[str] = frozenset()
    token68: str | None = None

    def __str__(self) -> str:
        if self.token68 is not None:
            return f"{self.scheme} {self.token68}"
        items = []
        for name, value in self.params.items():
            if name in self.quoted or not is_token(value):
                items.append(f"{name}={quote_string(value)}")
            else:
                items.append(f"{name}={value}")
        return f"{self.scheme} " + ", ".join(items)


def parse_auth(value: str) -> AuthField:
    text = value.strip(_WSP)
    scheme, _, rest = text.partition(" ")
    if not is_token(scheme):
        raise bad(f"auth scheme is not a token: {scheme!r}")
    rest = rest.strip(_WSP)
    if not rest:
        return AuthField(scheme)
    params: dict[str, str] = {}
    quoted: set[str] = set()
    pieces = [p.strip(_WSP) for p in split_top(rest, ",")]
    if len(pieces) == 1 and "=" not in pieces[0].rstrip("="):
        return AuthField(scheme, token68=pieces[0])
    for piece in pieces:
        if not piece:
            continue
        name, eq, raw = piece.partition("=")
        name = name.strip(_WSP).lower()
        raw = raw.strip(_WSP)
        if not eq or not is_token(name):
            raise bad(f"bad auth-param {piece!r}")
        if raw.startswith('"'):
            content, end = scan_quoted(raw, 0)
            if end != len(raw):
                raise bad(f"text after quoted auth-param {name!r}")
            params[name] = content
            quoted.add(name)
        elif is_token(raw):
            params[name] = raw
        else:
            raise bad(f"bad value for auth-param {name!r}: {raw!r}")
    return AuthField(scheme, params, frozenset(quoted))


# --- Reason (RFC 3326) --------------------------------------------------------------------


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(slots=True)
class Reason:
    protocol: str
    cause: int | None = None
    text: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    def __str__(self) -> str:
        params: dict[str, str | None] = {}
        if self.cause is not None:
            params["cause"] = str(self.cause)
        if self.text is not None:
            params["text"] = self.text
        params.update(self.params)
        out = [self.protocol]
        for name, value in params.items():
            if name == "text" and value is not None:
                out.append(f";text={quote_string(value)}")
            else:
                out.append(format_params({name: value}))
        return "".join(out)


def parse_reason(value: str) -> Reason:
    protocol, semi, param_text = value.partition(";")
    protocol = protocol.strip(_WSP)
    if not is_token(protocol):
        raise bad(f"Reason protocol is not a token: {protocol!r}")
    params = parse_params(param_text, "Reason") if semi else {}
    cause_text = params.pop("cause", None)
    cause = None if cause_text is None else parse_uint(cause_text, "Reason cause", 65535)
    text = params.pop("text", None)
    return Reason(protocol, cause, text, params)


# --- Session-Expires / Min-SE (RFC 4028) ---------------------------------------------------


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(slots=True)
class SessionExpires:
    delta: int
    refresher: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    def __str__(self) -> str:
        params: dict[str, str | None] = {}
        if self.refresher is not None:
            params["refresher"] = self.refresher
        params.update(self.params)
        return f"{self.delta}{format_params(params)}"


def parse_session_expires(value: str) -> SessionExpires:
    delta_text, semi, param_text = value.partition(";")
    params = parse_params(param_text, "Session-Expires") if semi else {}
    refresher = params.pop("refresher", None)
    if refresher is not None:
        refresher = refresher.lower()
        if refresher not in ("uac", "uas"):
            raise bad(f"Session-Expires refresher must be uac or uas, not {refresher!r}")
    return SessionExpires(parse_uint(delta_text, "Session-Expires"), refresher, params)


def parse_min_se(value: str) -> int:
    return parse_uint(value.partition(";")[0], "Min-SE")


# --- RSeq / RAck (RFC 3262) ----------------------------------------------------------------


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(slots=True)
class RAck:
    rseq: int
    cseq: int
    method: str

    def __str__(self) -> str:
        return f"{self.rseq} {self.cseq} {self.method}"


def parse_rack(value: str) -> RAck:
    parts = value.split()
    if len(parts) != 3 or not is_token(parts[2]):
        raise bad(f"RAck must be 'rseq cseq method': {value.strip()!r}")
    return RAck(parse_uint(parts[0], "RAck RSeq"), parse_uint(parts[1], "RAck CSeq"), parts[2])


def parse_rseq(value: str) -> int:
    rseq = parse_uint(value, "RSeq")
    if rseq == 0:
        raise bad("RSeq must be at least 1")
    return rseq


# --- Event (RFC 6665) ----------------------------------------------------------------------


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(slots=True)
class Event:
    package: str
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def id(self) -> str | None:
        return self.params.get("id")

    def __str__(self) -> str:
        return f"{self.package}{format_params(self.params)}"


def parse_event(value: str) -> Event:
    package, semi, param_text = value.partition(";")
    package = package.strip(_WSP)
    if not is_token(package):
        raise bad(f"Event package is not a token: {package!r}")
    return Event(package, parse_params(param_text, "Event") if semi else {})


# --- Replaces (RFC 3891) -------------------------------------------------------------------


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(slots=True)
class Replaces:
    call_id: str
    to_tag: str
    from_tag: str
    early_only: bool = False

    def __str__(self) -> str:
        early = ";early-only" if self.early_only else ""
        return f"{self.call_id};to-tag={self.to_tag};from-tag={self.from_tag}{early}"


def parse_replaces(value: str) -> Replaces:
    call_id, semi, param_text = value.partition(";")
    call_id = call_id.strip(_WSP)
    params = parse_params(param_text, "Replaces") if semi else {}
    to_tag, from_tag = params.get("to-tag"), params.get("from-tag")
    if not call_id or to_tag is None or from_tag is None:
        raise bad("Replaces needs a Call-ID, to-tag and from-tag")
    return Replaces(call_id, to_tag, from_tag, "early-only" in params)


# --- Call-ID, Max-Forwards, Expires, Date (§20) --------------------------------------------

# word = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" / "(" / ")"
#        / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" / "]" / "?" / "{" / "}")
_WORD = r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+"
_CALL_ID_RE = re.compile(f"{_WORD}(?:@{_WORD})?")
_DATE_RE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"\d{4} \d{2}:\d{2}:\d{2} GMT"
)


def parse_call_id(value: str) -> str:
    call_id = value.strip(_WSP)
    if not _CALL_ID_RE.fullmatch(call_id):
        raise bad(f"bad Call-ID {call_id!r}")
    return call_id


def parse_max_forwards(value: str) -> int:
    return parse_uint(value, "Max-Forwards", 255)


def parse_date(value: str) -> str:
    """SIP-date is RFC 1123 in GMT only (§20.17; RFC 4475 §3.1.2.12)."""
    date = value.strip(_WSP)
    if not _DATE_RE.fullmatch(date):
        raise bad(f"Date must be an RFC 1123 date in GMT: {date!r}")
    return date


MAX_EXPIRES = MAX_UINT32
