"""Framing and parsing of SIP messages from datagrams and byte streams (RFC 3261 §7, §18.3).

Sans-I/O: bytes in, messages and events out. ``parse_message`` takes one datagram;
``StreamParser`` takes whatever a stream delivers, in pieces of any size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mypy_extensions import mypyc_attr

from voip.sip.errors import SipError, SipFramingError
from voip.sip.grammar import METHODS, is_token
from voip.sip.headers import Headers, header_key
from voip.sip.message import BytesLike, Message, Request, Response

_FOLD_RE = re.compile(r"[ \t]*\r?\n[ \t]+")
_VERSION_RE = re.compile(r"SIP/\d+\.\d+", re.IGNORECASE)
_CRLF = b"\r\n"

# RFC 3261 §18.1.1: datagrams beyond the path MTU go over a stream; 64 KiB is the most
# a UDP datagram can carry, and the most header section a stream peer may send here.
MAX_HEADER_BYTES = 65536
MAX_BODY_BYTES = 1 << 20


def _bad(reason: str, is_response: bool) -> SipError:
    return SipError(400, reason, is_response=is_response)


def _parse_request_line(line: str) -> tuple[str, str, str]:
    # Request-Line = Method SP Request-URI SP SIP-Version CRLF, single SPs (§7.1;
    # RFC 4475 §3.1.2.8-10: extra or trailing whitespace is rejected).
    parts = line.split(" ")
    if len(parts) != 3 or not all(parts):
        raise SipError(400, f"Request-Line must be 'Method SP Request-URI SP SIP/2.0': {line!r}")
    method, uri, version = parts
    if version != "SIP/2.0" and version.upper() != "SIP/2.0":
        if _VERSION_RE.fullmatch(version):
            raise SipError(505, f"SIP version {version} is not supported, only SIP/2.0")
        raise SipError(400, f"bad SIP-Version {version!r}")
    if not is_token(method):
        raise SipError(400, f"method is not a token: {method!r}")
    if uri.startswith("<"):
        raise SipError(400, "Request-URI must not be enclosed in <>")
    if "\t" in uri:
        raise SipError(400, "whitespace in Request-URI")
    return method, uri, "SIP/2.0"


def _parse_status_line(line: str) -> tuple[int, str]:
    # Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF (§7.2)
    version, _, rest = line.partition(" ")
    if version.upper() != "SIP/2.0":
        if _VERSION_RE.fullmatch(version):
            raise SipError(505, f"SIP version {version} is not supported", is_response=True)
        raise _bad(f"bad SIP-Version {version!r}", True)
    code, _, reason = rest.partition(" ")
    if len(code) != 3 or not code.isdigit() or not code.isascii() or not 100 <= int(code) <= 699:
        raise _bad(f"status code must be three digits 100-699: {code[:20]!r}", True)
    return int(code), reason


# Header names seen before: as written (trailing LWS included) with their stripped
# spelling and key, and (``_KEYS``) the stripped names with their keys. Only valid
# names enter, and a hostile peer cannot grow the tables.
_NAMES: dict[str, tuple[str, str]] = {}
_KEYS: dict[str, str] = {}
_MAX_NAMES = 512

#: The header fields as ``Headers`` keeps them: keys, names, values and lines.
_Fields = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]


def _name_of(raw: str, is_response: bool) -> tuple[str, str]:
    name = raw.rstrip(" \t")
    if not is_token(name):
        raise _bad(f"bad header name {name[:60]!r}", is_response)
    known = (name, header_key(name))
    if len(_NAMES) < _MAX_NAMES:
        _NAMES[raw] = known
        _KEYS[name] = known[1]
    return known


def _split_head(head: str, is_response: bool) -> Headers:
    """The header fields of a header section after its start line."""
    if "\r" in head:
        lines = head.split("\r\n")
        del lines[0]
        # The common case in one pass: every line "Name: value" with a name seen
        # before and no LWS around the value, so that each line is already in the form
        # it is sent in. A folded line (§7.3.1) starts with LWS, which no name holds, or
        # follows a bare LF inside a value: like anything else unusual it sends the
        # whole section to the careful loop below. str.strip() without arguments strips
        # more than LWS (" \t"): a value it leaves alone has no LWS to strip.
        keys: list[str] = []
        names: list[str] = []
        values: list[str] = []
        known = _KEYS
        for line in lines:
            at = line.find(": ")
            if at < 0:
                break
            name = line[:at]
            key = known.get(name)
            if key is None:
                break
            value = line[at + 2 :]
            if value.strip() != value or "\n" in value:
                break
            keys.append(key)
            names.append(name)
            values.append(value)
        else:
            return Headers._parsed(tuple(keys), tuple(names), tuple(values), tuple(lines))
    return Headers._parsed(*_split_lines(head, is_response))


def _split_lines(head: str, is_response: bool) -> _Fields:
    if "\n " in head or "\n\t" in head:
        head = _FOLD_RE.sub(" ", head)
    lines = head.split("\r\n") if "\r" in head else head.split("\n")
    del lines[0]
    keys, names, values, out = [], [], [], []
    for line in lines:
        raw, colon, value = line.partition(":")
        if not colon:
            raise _bad(f"header line without ':': {line[:60]!r}", is_response)
        name, key = _NAMES.get(raw) or _name_of(raw, is_response)
        value = value.strip(" \t")
        keys.append(key)
        names.append(name)
        values.append(value)
        out.append(f"{name}: {value}")
    return tuple(keys), tuple(names), tuple(values), tuple(out)


def _content_length(headers: Headers, is_response: bool, datagram: bool = False) -> int | None:
    """The Content-Length; conflicting values are a framing error on a stream, while a
    datagram frames itself: its body is then the rest of the datagram and the UA check
    answers 400 for the duplicate field (RFC 4475 §3.3.9)."""
    keys = headers._keys
    try:
        at = keys.index("content-length")
    except ValueError:
        return None
    # The common case in one scan: one well-formed field, the last of its kind.
    value = headers._values[at]
    if value.isdigit() and value.isascii() and "content-length" not in keys[at + 1 :]:
        return int(value)
    found: int | None = None
    for value in headers._all("content-length"):
        if not value.isdigit() or not value.isascii():
            raise SipFramingError(
                400, f"Content-Length is not a number: {value!r}", is_response=is_response
            )
        length = int(value)
        if found is not None and length != found:
            if datagram:
                return None
            raise SipFramingError(
                400,
                f"conflicting Content-Length values {found} and {length}",
                is_response=is_response,
            )
        found = length
    return found


_StartLine = tuple[int, str] | tuple[str, str, str]


def _parse_start_line(head: str) -> _StartLine:
    end = head.find("\n")
    line = head if end < 0 else head[: end - 1] if head[end - 1 : end] == "\r" else head[:end]
    parts = line.split(" ")
    if len(parts) == 3:
        method, uri, version = parts
        if version == "SIP/2.0" and method in METHODS and uri[:1] not in ("", "<"):
            if "\t" not in uri:
                return method, uri, version
    if line[:4].upper() == "SIP/":
        return _parse_status_line(line)
    return _parse_request_line(line)


def _build(start: _StartLine, headers: Headers, body: bytes) -> Message:
    if len(start) == 2:
        return Response._parsed(start[0], start[1], headers, body)
    return Request._parsed(start[0], start[1], headers, body)


def _looks_like_response(data: bytes) -> bool:
    return data[:4].upper() == b"SIP/"


def parse_message(data: BytesLike) -> Message:
    """Parse one datagram holding one message (RFC 3261 §18.3).

    The body is Content-Length octets; octets after it are ignored (RFC 4475 §3.1.1.8);
    a Content-Length beyond the datagram is a 400; without Content-Length the body is
    the rest of the datagram. Lines ending in a bare LF are tolerated.
    """
    return _parse_datagram(data if isinstance(data, bytes) else bytes(data))


def _parse_datagram(data: bytes) -> Message:
    if data[:1] in (b"\r", b"\n"):
        data = data.lstrip(b"\r\n")  # §7.5: CRLFs before the start line are ignored
    is_response = data[:4].upper() == b"SIP/"
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        head_bytes, body = data[:end], data[end + 4 :]
    else:
        end = data.find(b"\n\n")
        if end >= 0:
            head_bytes, body = data[:end], data[end + 2 :]
        elif data.endswith(b"\n"):
            # The empty line closing the headers is missing, but a datagram is whole:
            # nothing can follow, so the headers end with the datagram.
            head_bytes, body = data.rstrip(b"\r\n"), b""
        else:
            raise _bad("no empty line after the header fields", is_response)
    if not head_bytes or head_bytes.isspace():
        raise _bad("empty message", is_response)
    head = head_bytes.decode("utf-8", "surrogateescape")
    try:
        start = _parse_start_line(head)
    except SipError as error:
        error.is_response = is_response
        raise
    headers = _split_head(head, is_response)
    length = _content_length(headers, is_response, datagram=True)
    if length is not None:
        if length > len(body):
            raise SipError(
                400,
                f"Content-Length {length} exceeds body of {len(body)} bytes",
                is_response=is_response,
            )
        body = body[:length]
    if len(start) == 2:
        return Response._parsed(start[0], start[1], headers, body)
    return Request._parsed(start[0], start[1], headers, body)


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(frozen=True, slots=True)
class KeepAlivePing:
    """A double CRLF between messages on a stream (RFC 5626 §4.4.1); answer with a pong."""


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(frozen=True, slots=True)
class KeepAlivePong:
    """A single CRLF between messages on a stream (RFC 5626 §4.4.1)."""


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(frozen=True, slots=True)
class MalformedMessage:
    """A framed message whose content is bad: answer ``error.status`` and carry on."""

    data: bytes
    error: SipError


StreamEvent = Message | KeepAlivePing | KeepAlivePong | MalformedMessage


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
class StreamParser:
    """Frames messages out of a byte stream (RFC 3261 §18.3, RFC 5626 §4.4.1).

    ``feed`` returns every complete message and keep-alive found so far. A framing
    error (missing or bad Content-Length, header section or body over the limits)
    raises :class:`SipFramingError`: the stream cannot be resynchronized and the
    connection must be closed. Messages framed before the error in the same data are
    returned first; the error is then in ``failed`` and raised by the next ``feed``.
    A framed message with bad content is returned as :class:`MalformedMessage` so
    that the connection survives it.
    """

    def __init__(
        self, max_header_bytes: int = MAX_HEADER_BYTES, max_body_bytes: int = MAX_BODY_BYTES
    ) -> None:
        self._buffer = bytearray()
        self._max_header = max_header_bytes
        self._max_body = max_body_bytes
        self._failed: SipFramingError | None = None

    @property
    def buffered(self) -> int:
        """Octets received but not yet part of a complete message."""
        return len(self._buffer)

    @property
    def failed(self) -> SipFramingError | None:
        """The framing error that ended the stream, if one did."""
        return self._failed

    @property
    def unframed(self) -> bytes:
        """The octets not framed: after a framing error, the message that caused it."""
        return bytes(self._buffer)

    def feed(self, data: BytesLike) -> list[StreamEvent]:
        if self._failed is not None:
            raise self._failed
        self._buffer += data
        events: list[StreamEvent] = []
        try:
            while self._next(events):
                pass
        except SipFramingError as error:
            self._failed = error
            if not events:
                raise
        return events

    def _next(self, events: list[StreamEvent]) -> bool:
        buffer = self._buffer
        # Keep-alives: CRLF CRLF is a ping, a lone CRLF a pong (RFC 5626 §4.4.1).
        if buffer[:2] == _CRLF:
            if buffer[:4] == b"\r\n\r\n":
                del buffer[:4]
                events.append(KeepAlivePing())
                return True
            if len(buffer) == 3:
                return False  # CRLF CR: the rest of a ping is on its way
            # A CRLF ending the read is a pong, reported at once: a ping is four
            # octets written at once, and a pong must not wait for octets that may
            # never come.
            del buffer[:2]
            events.append(KeepAlivePong())
            return True
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > self._max_header:
                raise SipFramingError(
                    413, f"header section exceeds {self._max_header} bytes", is_response=False
                )
            return False
        if end > self._max_header:
            raise SipFramingError(413, f"header section exceeds {self._max_header} bytes")
        head_bytes = bytes(buffer[:end])
        is_response = _looks_like_response(head_bytes)
        head = head_bytes.decode("utf-8", "surrogateescape")
        try:
            start = _parse_start_line(head)
            headers = _split_head(head, is_response)
        except SipError as error:
            # The header lines are unreadable, but the empty line frames them; without a
            # Content-Length that can be read, the body length is unknown.
            length = _length_from_raw(head)
            if length is None:
                raise SipFramingError(error.status, error.reason, is_response=is_response) from None
            total = end + 4 + length
            if len(buffer) < total:
                return False
            events.append(MalformedMessage(bytes(buffer[:total]), error))
            del buffer[:total]
            return True
        length = _content_length(headers, is_response)
        if length is None:
            # §18.3: Content-Length is mandatory on streams; without it nothing tells
            # where this message ends but its header section, so take no body.
            length = 0
        if length > self._max_body:
            raise SipFramingError(
                413, f"Content-Length {length} exceeds {self._max_body} bytes", is_response=False
            )
        total = end + 4 + length
        if len(buffer) < total:
            return False
        body = bytes(buffer[end + 4 : total])
        raw = bytes(buffer[:total])
        del buffer[:total]
        try:
            events.append(_build(start, headers, body))
        except SipError as error:
            error.is_response = is_response
            events.append(MalformedMessage(raw, error))
        return True


_CL_RE = re.compile(r"^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*$", re.IGNORECASE | re.MULTILINE)


def _length_from_raw(head: str) -> int | None:
    lengths = set(_CL_RE.findall(head.replace("\r\n", "\n")))
    if len(lengths) != 1:
        return None
    return int(lengths.pop())
