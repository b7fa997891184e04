"""``a=`` lines (RFC 8866 §5.13, §6) and the typed views of the ones the media layer uses.

Attributes are stored as written, in order, so that unknown ones come back verbatim; the
typed classes here interpret a value on demand.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass

from mypy_extensions import mypyc_attr

from sdp._value import FrozenValue
from sdp.errors import SdpError
from sdp.fields import parse_number


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(frozen=True, slots=True)
class Attribute(FrozenValue):
    """``a=<name>`` (a property attribute, ``value is None``) or ``a=<name>:<value>``."""

    name: str
    value: str | None = None

    def __init__(self, name: str, value: str | None = None) -> None:
        # Written out rather than made by @dataclass: compiled, this one is native code
        # (an SDP answer makes a dozen attributes); the generated one stays interpreted.
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "value", value)

    @classmethod
    def parse(cls, text: str) -> Attribute:
        """The text after ``a=``; the name ends at the first colon (RFC 8866 §5.13)."""
        name, colon, value = text.partition(":")
        # A property attribute with trailing blanks ("a=sendrecv ") is common in the wild;
        # the name is a token and cannot hold them.
        name = name.rstrip(" \t")
        if not name:
            raise SdpError("attribute needs a name before the colon")
        return cls(name, value if colon else None)

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


class Direction(enum.StrEnum):
    """Media direction attributes (RFC 8866 §6.7, RFC 3264 §5.1); sendrecv is the default."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @classmethod
    def from_flags(cls, send: bool, receive: bool) -> Direction:
        if send:
            return cls.SENDRECV if receive else cls.SENDONLY
        return cls.RECVONLY if receive else cls.INACTIVE

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    def reverse(self) -> Direction:
        """The same stream seen from the other end: sendonly there is recvonly here."""
        return Direction.from_flags(self.receives, self.sends)

    def intersect(self, other: Direction) -> Direction:
        """Only what both allow."""
        return Direction.from_flags(self.sends and other.sends, self.receives and other.receives)


DIRECTIONS = frozenset(direction.value for direction in Direction)
#: each direction by its attribute name (a lookup, where ``Direction(name)`` is a call)
DIRECTION_BY_NAME = {direction.value: direction for direction in Direction}


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(frozen=True, slots=True)
class RtpMap(FrozenValue):
    """``a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]`` (RFC 8866 §6.6)."""

    payload_type: int
    encoding_name: str
    clock_rate: int
    channels: int = 1

    @classmethod
    def parse(cls, value: str) -> RtpMap:
        if cls is RtpMap:
            return _parse_rtpmap(value)
        return cls._parse(value)

    @classmethod
    def _parse(cls, value: str) -> RtpMap:
        pt_text, _, encoding = value.strip().partition(" ")
        parts = encoding.strip().split("/")
        if len(parts) not in (2, 3) or not parts[0]:
            raise SdpError("rtpmap needs <payload type> <encoding name>/<clock rate>")
        channels = parse_number(parts[2], "channel count") if len(parts) == 3 else 1
        return cls(
            parse_number(pt_text, "payload type", 127),
            parts[0],
            parse_number(parts[1], "clock rate"),
            channels,
        )

    def __str__(self) -> str:
        channels = f"/{self.channels}" if self.channels != 1 else ""
        return f"{self.payload_type} {self.encoding_name}/{self.clock_rate}{channels}"


@functools.lru_cache(maxsize=512)
def _parse_rtpmap(value: str) -> RtpMap:
    """RtpMap.parse, remembered: the same few mappings come in call after call, and an
    RtpMap is immutable (a malformed value raises each time: exceptions are not kept)."""
    return RtpMap._parse(value)


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(frozen=True, slots=True)
class Rtcp(FrozenValue):
    """``a=rtcp:<port> [<nettype> <addrtype> <connection-address>]`` (RFC 3605 §2.1)."""

    port: int
    nettype: str | None = None
    addrtype: str | None = None
    address: str | None = None

    @classmethod
    def parse(cls, value: str) -> Rtcp:
        fields = value.split()
        if len(fields) not in (1, 4):
            raise SdpError("rtcp needs <port> [<nettype> <addrtype> <address>]")
        port = parse_number(fields[0], "RTCP port", 65535)
        if len(fields) == 1:
            return cls(port)
        if fields[1] != "IN" or fields[2] not in ("IP4", "IP6"):
            raise SdpError(f"rtcp address type {fields[1]} {fields[2]} is not IN IP4/IP6")
        return cls(port, fields[1], fields[2], fields[3])

    def __str__(self) -> str:
        if self.address is None:
            return str(self.port)
        return f"{self.port} {self.nettype} {self.addrtype} {self.address}"


def split_fmtp(value: str) -> tuple[str, str]:
    """``a=fmtp:<format> <format specific parameters>`` (RFC 8866 §6.15) as (format, params)."""
    fmt, _, parameters = value.strip().partition(" ")
    return fmt, parameters.strip()


def fmtp_parameters(parameters: str) -> dict[str, str]:
    """``key=value; key=value`` parameters (the common form, RFC 6184 §8.1 and others).

    Keys are lower-cased (media type parameter names are case-insensitive, RFC 6838 §4.3);
    a parameter without ``=`` maps to the empty string.
    """
    result: dict[str, str] = {}
    for item in parameters.split(";"):
        key, _, value = item.partition("=")
        key = key.strip().lower()
        if key:
            result[key] = value.strip()
    return result


def parse_packet_time(value: str) -> float:
    """``a=ptime`` / ``a=maxptime`` in milliseconds; RFC 8866 §9 allows a fraction."""
    text = value.strip()
    whole, _, fraction = text.partition(".")
    if not text.isascii() or not whole.isdigit() or not (fraction == "" or fraction.isdigit()):
        raise SdpError(f"packet time must be a positive number of milliseconds, not {text!r}")
    if len(whole) > 9 or len(fraction) > 9:
        raise SdpError("packet time has too many digits")
    milliseconds = float(text)
    if milliseconds <= 0:
        raise SdpError("packet time must not be zero")
    return milliseconds


def format_packet_time(milliseconds: float) -> str:
    """20.0 -> ``20``; 0.125 -> ``0.125``."""
    return str(int(milliseconds)) if milliseconds == int(milliseconds) else repr(milliseconds)
