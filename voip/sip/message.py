"""SIP requests and responses (RFC 3261 §7) with typed, lazily parsed header access.

A message keeps its header fields as written; the typed properties (``via``,
``from_``, ``cseq`` …) parse on first use, cache the result and raise
:class:`~voip.sip.errors.SipError` (400) if the field is malformed. Setting a typed
property writes the field back in canonical form.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar, overload

from mypy_extensions import mypyc_attr

from voip.sip.errors import REASON_PHRASES, SipError
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
    parse_auth,
    parse_call_id,
    parse_cseq,
    parse_date,
    parse_event,
    parse_max_forwards,
    parse_media_type,
    parse_min_se,
    parse_name_addr,
    parse_rack,
    parse_reason,
    parse_replaces,
    parse_rseq,
    parse_session_expires,
    parse_via,
)
from voip.sip.grammar import parse_uint, split_tokens
from voip.sip.headers import Headers, canonical_name, field_values, header_key, list_items
from voip.sip.uri import AbsoluteUri, Uri, parse_uri

T = TypeVar("T")

SIP_VERSION = "SIP/2.0"
#: what a message or a body may be read from: bytes, or a buffer a program or a socket
#: filled (``recv_into``, ``BufferedProtocol``); compiled code checks the declared type at
#: run time, so it is declared this wide and made bytes where it is kept
BytesLike = bytes | bytearray | memoryview
BRANCH_MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7


def new_tag() -> str:
    """A From/To tag with 64 random bits (§19.3 asks for at least 32)."""
    return secrets.token_hex(8)


def new_branch() -> str:
    """A Via branch: the RFC 3261 magic cookie and 96 random bits (§8.1.1.7)."""
    return BRANCH_MAGIC_COOKIE + secrets.token_hex(12)


def new_call_id(host: str | None = None) -> str:
    """A globally unique Call-ID (§8.1.1.4): 128 random bits, ``@host`` if given."""
    value = secrets.token_hex(16)
    return f"{value}@{host}" if host else value


def _named(key: str, error: SipError) -> SipError:
    """``error`` with the header it was found in named first ("CSeq: …")."""
    return SipError(error.status, f"{canonical_name(key)}: {error.reason}")


def _cached(headers: Headers, key: str, compute: Callable[[], T]) -> T:
    """The typed value of ``key``, computed once and kept until the field changes."""
    cache = headers.typed
    if key in cache:
        return cache[key]  # type: ignore[no-any-return]
    try:
        value = compute()
    except SipError as error:
        raise _named(key, error) from None
    cache[key] = value
    return value


def _parse_field(key: str, parse: Callable[[str], T], raw: str) -> T:
    try:
        return parse(raw)
    except SipError as error:
        raise _named(key, error) from None


def _single(headers: Headers, key: str, parse: Callable[[str], T]) -> T | None:
    # The hot path of every typed read: no closure, the cache tried first.
    cache = headers.typed
    if key in cache:
        return cache[key]  # type: ignore[no-any-return]
    raw = headers.first(key)
    value = None if raw is None else _parse_field(key, parse, raw)
    cache[key] = value
    return value


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
class FieldList(Sequence[T]):
    """The values of a list header (Via, Contact, Route …), each parsed when first read.

    A UA mostly reads the top Via or the first Contact: the others stay text until
    asked for, and the fields are not even split at commas until more than the first
    value is read. A malformed value raises SipError (400) when it is read; a malformed
    list (an empty element) when its length or a later value is read.
    """

    __slots__ = ("_allow_empty", "_items", "_key", "_keys", "_parse", "_parsed", "_top", "_values")

    def __init__(
        self, headers: Headers, key: str, parse: Callable[[str], T], allow_empty: bool = False
    ) -> None:
        # The header's tuples as they are now: Headers replaces them on a change.
        self._keys = keys = headers._keys
        self._values = values = headers._values
        try:
            self._top = values[keys.index(key)]  # the first field's value
        except ValueError:
            self._top = ""
        self._key = key
        self._parse = parse
        self._allow_empty = allow_empty
        self._items: list[str] | None = None
        self._parsed: dict[int, T] = {}

    def _split(self) -> list[str]:
        items = self._items
        if items is None:
            lines = field_values(self._keys, self._values, self._key)
            try:
                items = self._items = list_items(lines, self._allow_empty)
            except SipError as error:
                raise _named(self._key, error) from None
        return items

    def __len__(self) -> int:
        return len(self._split())

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[T, ...]: ...

    def __getitem__(self, index: int | slice) -> T | tuple[T, ...]:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(len(self))))
        parsed = self._parsed
        if index in parsed:
            return parsed[index]
        if index == 0 and self._items is None:
            # The top value without splitting the rest: the first field when it holds
            # one value (no comma, not empty).
            item = self._top
            if not item or "," in item:
                item = self._split()[0]
        else:
            items = self._split()
            if index < 0:
                index += len(items)
                if index in parsed:
                    return parsed[index]
            item = items[index]
        try:
            value = parsed[index] = self._parse(item)
        except SipError as error:
            raise _named(self._key, error) from None
        return value

    def __iter__(self) -> Iterator[T]:
        # Sequence's would call __getitem__ until IndexError, interpreted, even compiled
        for index in range(len(self)):
            yield self[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return tuple(self) == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(tuple(self))


def _listed(
    headers: Headers, key: str, parse: Callable[[str], T], allow_empty: bool = False
) -> Sequence[T]:
    cache = headers.typed
    value: Sequence[T] | None = cache.get(key)
    if value is None:
        value = cache[key] = FieldList(headers, key, parse, allow_empty)
    return value


def _each_line(headers: Headers, key: str, parse: Callable[[str], T]) -> tuple[T, ...]:
    return _cached(headers, key, lambda: tuple(parse(line) for line in headers.get_all(key)))


def _tokens(headers: Headers, key: str) -> tuple[str, ...]:
    return _cached(
        headers,
        key,
        lambda: tuple(t for line in headers.get_all(key) for t in split_tokens(line)),
    )


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
class Message:
    """What requests and responses share: header fields and a body of bytes."""

    __slots__ = ("_body", "headers")

    def __init__(
        self, headers: Headers | Iterable[Sequence[str]] = (), body: BytesLike = b""
    ) -> None:
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self._body = body if isinstance(body, bytes) else bytes(body)

    # --- serialization ---------------------------------------------------------------

    def start_line(self) -> str:
        raise NotImplementedError

    def __bytes__(self) -> bytes:
        # Each header field is sent as its line: as it came, or as it was last set.
        head = "\r\n".join([self.start_line(), *self.headers._lines, "", ""])
        return head.encode("utf-8", "surrogateescape") + self._body

    def serialize(self) -> bytes:
        return bytes(self)

    def __str__(self) -> str:
        return bytes(self).decode("utf-8", "replace")

    # --- header helpers -----------------------------------------------------------------

    def _set(self, key: str, value: object) -> None:
        if value is None:
            self.headers.remove(key)
            return
        self.headers.set(canonical_name(key), str(value))
        self.headers.typed[key] = value

    def _set_list(self, key: str, values: Iterable[Any]) -> None:
        values = tuple(values)
        self.headers.set_all(canonical_name(key), [str(v) for v in values])
        if values:
            self.headers.typed[key] = values
        else:
            self.headers.remove(key)

    @property
    def body(self) -> bytes:
        return self._body

    @body.setter
    def body(self, body: bytes) -> None:
        """Setting the body also sets Content-Length (§20.14). (Compiled, a setter takes
        the type its property gives: bytes.)"""
        self._body = body
        self.headers.set("Content-Length", str(len(body)))

    # --- typed header fields, RFC 3261 §20 -----------------------------------------------

    @property
    def via(self) -> Sequence[Via]:
        return _listed(self.headers, "via", parse_via)

    @via.setter
    def via(self, values: Iterable[Via]) -> None:
        self._set_list("via", values)

    @property
    def from_(self) -> NameAddress:
        return self._required("from", parse_name_addr)

    @from_.setter
    def from_(self, value: NameAddress) -> None:
        self._set("from", value)

    @property
    def to(self) -> NameAddress:
        return self._required("to", parse_name_addr)

    @to.setter
    def to(self, value: NameAddress) -> None:
        self._set("to", value)

    @property
    def call_id(self) -> str:
        return self._required("call-id", parse_call_id)

    @call_id.setter
    def call_id(self, value: str) -> None:
        self._set("call-id", value)

    @property
    def cseq(self) -> CSeq:
        return self._required("cseq", parse_cseq)

    @cseq.setter
    def cseq(self, value: CSeq) -> None:
        self._set("cseq", value)

    @property
    def max_forwards(self) -> int | None:
        return _single(self.headers, "max-forwards", parse_max_forwards)

    @max_forwards.setter
    def max_forwards(self, value: int | None) -> None:
        self._set("max-forwards", value)

    @property
    def contact(self) -> Sequence[NameAddress]:
        """Contact values; empty for the ``*`` wildcard (see ``contact_is_wildcard``)."""
        value = _listed(self.headers, "contact", parse_name_addr)
        if isinstance(value, FieldList) and "*" in value._top and self.contact_is_wildcard:
            return ()
        return value

    @contact.setter
    def contact(self, values: Iterable[NameAddress]) -> None:
        self._set_list("contact", values)

    @property
    def contact_is_wildcard(self) -> bool:
        """``Contact: *`` (§10.2.2), used to remove every binding."""
        first = self.headers.first("contact")
        if first is None or "*" not in first:
            return False
        values = self.headers.get_all("contact")
        return len(values) == 1 and values[0].strip() == "*"

    @property
    def route(self) -> Sequence[NameAddress]:
        return _listed(self.headers, "route", parse_name_addr)

    @route.setter
    def route(self, values: Iterable[NameAddress]) -> None:
        self._set_list("route", values)

    @property
    def record_route(self) -> Sequence[NameAddress]:
        return _listed(self.headers, "record-route", parse_name_addr)

    @record_route.setter
    def record_route(self, values: Iterable[NameAddress]) -> None:
        self._set_list("record-route", values)

    @property
    def content_type(self) -> MediaType | None:
        return _single(self.headers, "content-type", parse_media_type)

    @content_type.setter
    def content_type(self, value: MediaType | None) -> None:
        self._set("content-type", value)

    @property
    def content_length(self) -> int | None:
        return _single(self.headers, "content-length", lambda v: parse_uint(v, "Content-Length"))

    @property
    def expires(self) -> int | None:
        return _single(self.headers, "expires", lambda v: parse_uint(v, "Expires"))

    @expires.setter
    def expires(self, value: int | None) -> None:
        self._set("expires", value)

    @property
    def min_expires(self) -> int | None:
        return _single(self.headers, "min-expires", lambda v: parse_uint(v, "Min-Expires"))

    @property
    def allow(self) -> tuple[str, ...]:
        return _tokens(self.headers, "allow")

    @property
    def supported(self) -> tuple[str, ...]:
        return _tokens(self.headers, "supported")

    @property
    def require(self) -> tuple[str, ...]:
        return _tokens(self.headers, "require")

    @property
    def proxy_require(self) -> tuple[str, ...]:
        return _tokens(self.headers, "proxy-require")

    @property
    def unsupported(self) -> tuple[str, ...]:
        return _tokens(self.headers, "unsupported")

    @property
    def accept(self) -> Sequence[MediaType]:
        return _listed(self.headers, "accept", parse_media_type, allow_empty=True)

    @property
    def www_authenticate(self) -> tuple[AuthField, ...]:
        return _each_line(self.headers, "www-authenticate", parse_auth)

    @property
    def proxy_authenticate(self) -> tuple[AuthField, ...]:
        return _each_line(self.headers, "proxy-authenticate", parse_auth)

    @property
    def authorization(self) -> tuple[AuthField, ...]:
        return _each_line(self.headers, "authorization", parse_auth)

    @property
    def proxy_authorization(self) -> tuple[AuthField, ...]:
        return _each_line(self.headers, "proxy-authorization", parse_auth)

    @property
    def reason(self) -> Sequence[Reason]:
        """Reason header values (RFC 3326)."""
        return _listed(self.headers, "reason", parse_reason)

    @property
    def session_expires(self) -> SessionExpires | None:
        return _single(self.headers, "session-expires", parse_session_expires)

    @property
    def min_se(self) -> int | None:
        return _single(self.headers, "min-se", parse_min_se)

    @property
    def rseq(self) -> int | None:
        return _single(self.headers, "rseq", parse_rseq)

    @property
    def rack(self) -> RAck | None:
        return _single(self.headers, "rack", parse_rack)

    @property
    def event(self) -> Event | None:
        return _single(self.headers, "event", parse_event)

    @property
    def refer_to(self) -> NameAddress | None:
        return _single(self.headers, "refer-to", parse_name_addr)

    @property
    def replaces(self) -> Replaces | None:
        return _single(self.headers, "replaces", parse_replaces)

    @property
    def date(self) -> str | None:
        return _single(self.headers, "date", parse_date)

    def _required(self, key: str, parse: Callable[[str], T]) -> T:
        headers = self.headers
        value: T | None = headers.typed.get(key)
        if value is None:
            try:
                raw = headers._values[headers._keys.index(key)]
            except ValueError:
                raise SipError(400, f"missing {canonical_name(key)} header") from None
            try:
                value = headers.typed[key] = parse(raw)
            except SipError as error:
                raise _named(key, error) from None
        return value

    def count(self, name: str) -> int:
        return self.headers.count(header_key(name))


# The placeholder Request-URI of a request read off the wire until its text is parsed.
_UNREAD = AbsoluteUri("", "")


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
class Request(Message):
    """A SIP request: ``Method SP Request-URI SP SIP-Version`` (§7.1)."""

    __slots__ = ("_uri", "_uri_text", "method", "version")

    def __init__(
        self,
        method: str,
        uri: Uri,
        headers: Headers | Iterable[Sequence[str]] = (),
        body: BytesLike = b"",
        version: str = SIP_VERSION,
    ) -> None:
        super().__init__(headers, body)
        self.method = method
        self._uri: Uri | None = uri
        self._uri_text: str | None = None
        self.version = version

    @classmethod
    def _parsed(cls, method: str, uri_text: str, headers: Headers, body: bytes) -> Request:
        """A request read off the wire; its Request-URI is parsed on first use."""
        request = cls(method, _UNREAD, headers, body)
        request._uri = None
        request._uri_text = uri_text
        return request

    @property
    def uri(self) -> Uri:
        """The Request-URI (a malformed one raises SipError 400 here)."""
        uri = self._uri
        if uri is None:
            try:
                uri = self._uri = parse_uri(self._uri_text or "")
            except SipError as error:
                raise SipError(400, f"Request-URI: {error.reason}") from None
        return uri

    @uri.setter
    def uri(self, uri: Uri) -> None:
        self._uri = uri
        self._uri_text = None

    def start_line(self) -> str:
        # A parsed Request-URI is sent on as it came (§16.6 forwards it unchanged).
        uri_text = self._uri_text if self._uri_text is not None else str(self.uri)
        return f"{self.method} {uri_text} {self.version}"

    def __repr__(self) -> str:
        return f"<Request {self.start_line()}>"


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
class Response(Message):
    """A SIP response: ``SIP-Version SP Status-Code SP Reason-Phrase`` (§7.2)."""

    __slots__ = ("reason_phrase", "status", "version")

    def __init__(
        self,
        status: int,
        reason_phrase: str | None = None,
        headers: Headers | Iterable[Sequence[str]] = (),
        body: BytesLike = b"",
        version: str = SIP_VERSION,
    ) -> None:
        super().__init__(headers, body)
        self.status = status
        self.reason_phrase = (
            REASON_PHRASES.get(status, "") if reason_phrase is None else reason_phrase
        )
        self.version = version

    @classmethod
    def _parsed(cls, status: int, reason_phrase: str, headers: Headers, body: bytes) -> Response:
        return cls(status, reason_phrase, headers, body)

    def start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason_phrase}"

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason_phrase}>"


# Copied from request to response (§8.2.6.2); Record-Route too for dialog-creating
# responses (§12.1.1).
_COPIED = ("via", "from", "to", "call-id", "cseq")


def make_response(
    request: Request,
    status: int,
    reason_phrase: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[Sequence[str]] = (),
    body: BytesLike = b"",
) -> Response:
    """A response to ``request`` per RFC 3261 §8.2.6.

    Via, From, To, Call-ID and CSeq are copied; a To tag is added to any response but
    100 when the request had none (``to_tag`` or a fresh one); Record-Route is copied
    into 1xx/2xx answers to a dialog-creating INVITE (§12.1.1); Timestamp into 100.
    """
    fields: list[tuple[str, str]] = []
    for key in _COPIED:
        for value in request.headers.get_all(key):
            fields.append((canonical_name(key), value))
    try:
        to: NameAddress | None = request.to
    except SipError:
        to = None  # answering a malformed request: its To is copied as it came
    if status != 100 and to is not None:
        if to.tag is None:
            tag = to_tag or new_tag()
            to = NameAddress(to.uri, to.display_name, {**to.params, "tag": tag})
            fields = [(n, str(to)) if n == "To" else (n, v) for n, v in fields]
    if request.method == "INVITE" and status < 300 and status != 100:
        for value in request.headers.get_all("record-route"):
            fields.append(("Record-Route", value))
    if status == 100:
        timestamp = request.headers.get("timestamp")
        if timestamp is not None:
            fields.append(("Timestamp", timestamp))
    fields.extend((name, value) for name, value in headers)
    response = Response(status, reason_phrase, Headers(fields))
    response.body = body if isinstance(body, bytes) else bytes(body)
    return response
