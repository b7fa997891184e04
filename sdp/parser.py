"""``parse``: SDP text to a :class:`SessionDescription`, in one pass over the lines.

Sans-I/O and meant for the SIP hot path: ``str.split``/``partition`` per line, no regular
expressions. Every fault raises :class:`SdpError` with the 1-based line number and the line.
"""

from __future__ import annotations

from operator import length_hint
from typing import TypeVar

from sdp._layout import MEDIA_ORDER, SESSION_ORDER, in_order
from sdp.attributes import Attribute
from sdp.errors import SdpError
from sdp.fields import Bandwidth, Connection, Origin, RepeatTime, TimeZoneAdjustment, Timing
from sdp.media import MediaDescription
from sdp.session import SessionDescription

_SESSION_ONLY = frozenset("vosuetrzp")
_BLANKS = frozenset(" \t")
_T = TypeVar("_T")
#: what a session description may be read from besides text: a buffer a socket filled
#: (``recv_into``) reads as well as bytes (compiled code checks the declared type at run time)
BytesLike = bytes | bytearray | memoryview


def _decode(data: str | BytesLike) -> str:
    if isinstance(data, str):
        return data
    raw = bytes(data)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        # RFC 8866 §5: text is UTF-8 unless a=charset names another charset for s=/i=;
        # a charset-aware caller can decode first and pass str.
        start = raw.rfind(b"\n", 0, error.start) + 1
        end = raw.find(b"\n", error.start)
        line = raw[start : end if end >= 0 else len(raw)].decode("utf-8", "replace")
        line = line.removesuffix("\r")
        raise SdpError(
            f"byte {error.start} is not UTF-8", raw.count(b"\n", 0, error.start) + 1, line
        ) from None


def parse(data: str | BytesLike) -> SessionDescription:
    """Parse one session description.

    Accepts CRLF or bare LF line ends (RFC 8866 §5 asks parsers to), blank lines, trailing
    blanks on structured lines, an empty ``s=``, a missing ``t=`` line and an ``m=`` line
    without formats. Rejects a type letter RFC 8866 does not define (§5: "MUST completely
    ignore or reject"), structured lines that do not parse, and a description without
    ``v=``, ``o=`` or ``s=``.
    """
    text = _decode(data).removeprefix("\ufeff")  # a byte order mark some tools write
    lines = _split_lines(text)
    origin: Origin | None = None
    session_name: str | None = None
    information: str | None = None
    uri: str | None = None
    key: str | None = None
    connection: Connection | None = None
    emails: list[str] = []
    phones: list[str] = []
    bandwidths: list[Bandwidth] = []
    timings: list[Timing] = []
    time_zones: list[TimeZoneAdjustment] = []
    attributes: list[Attribute] = []
    media_list: list[MediaDescription] = []
    session_letters = ["v"]
    media: MediaDescription | None = None
    media_letters: list[str] = []
    # One iterator for the three loops below; its length hint tells, when something is
    # wrong, which line was being read (no line counter on the hot path).
    remaining = iter(lines)
    line = ""
    try:
        # The first line that is not blank must be v=0 (RFC 8866 §5.1).
        line = next((first for first in remaining if first.strip()), "")
        if line[:2] != "v=":
            raise SdpError('a session description starts with "v=0" (RFC 8866 §5.1)')
        if line[2:].strip() != "0":
            raise SdpError("SDP version must be 0 (RFC 8866 §5.1)")
        # The session-level lines, up to the first m= line (RFC 8866 §5).
        for line in remaining:
            if line[1:2] != "=":
                if not line.strip():
                    continue  # blank lines (a UDP body padded with CRLF) carry nothing
                raise SdpError('expected "<type>=<value>"')
            kind = line[0]
            value = line[2:]
            if kind == "a":
                attributes.append(Attribute.parse(value))
            elif kind == "m":
                if origin is None or session_name is None:
                    raise SdpError('"o=" and "s=" must come before the first "m=" line')
                media = MediaDescription.parse_media_line(value)
                media_list.append(media)
                break
            elif kind == "o":
                origin = _once(origin, Origin.parse(value), "o")
            elif kind == "s":
                session_name = _once(session_name, value, "s")
            elif kind == "c":
                connection = _once(connection, Connection.parse(value), "c")
            elif kind == "t":
                timings.append(Timing.parse(value))
            elif kind == "r":
                if not timings:
                    raise SdpError('"r=" must follow a "t=" line')
                last = timings[-1]
                timings[-1] = Timing(
                    last.start_time,
                    last.stop_time,
                    (*last.repeat_times, RepeatTime.parse(value)),
                )
                continue
            elif kind == "b":
                bandwidths.append(Bandwidth.parse(value))
            elif kind == "i":
                information = _once(information, value, "i")
            elif kind == "u":
                uri = _once(uri, value, "u")
            elif kind == "e":
                emails.append(value)
            elif kind == "p":
                phones.append(value)
            elif kind == "z":
                zones = TimeZoneAdjustment.parse_line(value)
                time_zones = _once(time_zones or None, zones, "z")
            elif kind == "k":
                key = _once(key, value, "k")
            elif kind == "v":
                raise SdpError('a session description has one "v=" line')
            else:
                raise _unknown_type(kind)
            session_letters.append(kind)
        # The media descriptions: each m= line and the lines up to the next one.
        for line in remaining:
            if line[1:2] != "=":
                if not line.strip():
                    continue
                raise SdpError('expected "<type>=<value>"')
            kind = line[0]
            value = line[2:]
            assert media is not None
            if kind == "a":
                # Most lines are media attributes: the common case is built inline.
                name, colon, rest = value.partition(":")
                if name and name[-1] not in _BLANKS:
                    media.attributes.append(Attribute(name, rest if colon else None))
                else:
                    media.attributes.append(Attribute.parse(value))
            elif kind == "m":
                _finish_media(media, media_letters)
                media = MediaDescription.parse_media_line(value)
                media_list.append(media)
                media_letters = []
                continue
            elif kind == "c":
                media.connections.append(Connection.parse(value))
            elif kind == "b":
                media.bandwidths.append(Bandwidth.parse(value))
            elif kind == "i":
                media.information = _once(media.information, value, "i", "a media")
            elif kind == "k":
                media.key = _once(media.key, value, "k", "a media")
            elif kind in _SESSION_ONLY:
                raise SdpError(f'"{kind}=" belongs before the first "m=" line')
            else:
                raise _unknown_type(kind)
            media_letters.append(kind)
        if origin is None:
            raise SdpError('a session description needs an "o=" line (RFC 8866 §5.2)')
        if session_name is None:
            raise SdpError('a session description needs an "s=" line (RFC 8866 §5.3)')
    except SdpError as error:
        number = len(lines) - length_hint(remaining)
        while number > 1 and not line.strip():
            # Raised after the last line: point at the last line that has text.
            number -= 1
            line = lines[number - 1]
        raise error.at_line(max(number, 1), line) from None
    if media is not None:
        _finish_media(media, media_letters)
    description = SessionDescription(
        origin=origin,
        session_name=session_name,
        information=information,
        uri=uri,
        emails=emails,
        phones=phones,
        connection=connection,
        bandwidths=bandwidths,
        timings=timings,
        time_zones=time_zones,
        key=key,
        attributes=attributes,
        media=media_list,
    )
    if not in_order(session_letters, SESSION_ORDER):
        description._layout = "".join(session_letters)
    return description


def _split_lines(text: str) -> list[str]:
    """Lines without their CRLF or LF ends (RFC 8866 §5 asks parsers to accept both)."""
    carriage_returns = text.count("\r")
    crlf = text.count("\r\n")
    if carriage_returns != crlf:
        _reject_stray_carriage_return(text)
    if crlf == text.count("\n"):
        # The usual case, every line ended with CRLF: no per-line work.
        return text.removesuffix("\r").split("\r\n")
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def _reject_stray_carriage_return(text: str) -> None:
    # RFC 8866 §9: text fields exclude CR and LF; a CR that does not end a line would
    # come back as a line break when the description is written out again.
    position = text.find("\r")
    while position >= 0:
        if text[position + 1 : position + 2] != "\n" and position != len(text) - 1:
            start = text.rfind("\n", 0, position) + 1
            end = text.find("\n", position)
            line = text[start : end if end >= 0 else len(text)].removesuffix("\r")
            number = text.count("\n", 0, position) + 1
            raise SdpError("a CR inside a line; lines end with CRLF or LF", number, line)
        position = text.find("\r", position + 1)


def _once(current: _T | None, new: _T, kind: str, level: str = "the session") -> _T:
    """A line type that may appear once per level (RFC 8866 §5 grammar)."""
    if current is not None:
        raise SdpError(f'{level} description has one "{kind}=" line at most')
    return new


def _finish_media(media: MediaDescription, letters: list[str]) -> None:
    if not in_order(letters, MEDIA_ORDER):
        media._layout = "".join(letters)


def _unknown_type(kind: str) -> SdpError:
    return SdpError(
        f'"{kind}=" is not an SDP line type; RFC 8866 §5 rejects a description with an '
        "unknown type letter (extensions travel in a= attributes)"
    )
