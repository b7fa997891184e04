"""Values of the structured SDP lines: o=, c=, b=, t=, r= and z= (RFC 8866 §5).

Each class parses the text after ``<type>=`` with ``parse`` and gives it back with ``str``.
Parse failures raise :class:`SdpError` without a line number; :func:`sdp.parse` adds it.
"""

from __future__ import annotations

from dataclasses import dataclass

from mypy_extensions import mypyc_attr

from sdp._value import FrozenValue
from sdp.errors import SdpError

# RFC 8866 §9 allows any number of digits; 20 covers every 64-bit value and keeps a hostile
# "port" of ten thousand digits from reaching int().
_MAX_DIGITS = 20

_TIME_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_number(text: str, what: str, maximum: int | None = None) -> int:
    """A decimal number of ASCII digits (``str.isdigit`` also accepts other scripts)."""
    if not text.isascii() or not text.isdigit():
        raise SdpError(f"{what} must be a decimal number, not {text!r}")
    if len(text) > _MAX_DIGITS:
        raise SdpError(f"{what} has more than {_MAX_DIGITS} digits")
    number = int(text)
    if maximum is not None and number > maximum:
        raise SdpError(f"{what} must be at most {maximum}, not {number}")
    return number


def typed_time_seconds(text: str) -> int:
    """Seconds of an RFC 8866 §5.10 typed time such as ``7d``, ``-1h`` or ``3600``."""
    body = text[1:] if text.startswith("-") else text
    unit = 1
    if body and body[-1] in _TIME_UNITS:
        unit = _TIME_UNITS[body[-1]]
        body = body[:-1]
    seconds = parse_number(body, "typed time") * unit
    return -seconds if text.startswith("-") else seconds


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(frozen=True, slots=True)
class Origin(FrozenValue):
    """``o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>``.

    RFC 8866 §5.2 makes sess-id and sess-version numeric strings of any length; they are
    kept as text so that a value with leading zeros, or the ``(null)`` that Cisco 79xx
    phones send, comes back unchanged. :meth:`next_version` does the arithmetic.
    """

    username: str
    sess_id: str
    sess_version: str
    nettype: str
    addrtype: str
    address: str

    def __init__(  # noqa: PLR0917  # positional, as @dataclass made it
        self,
        username: str,
        sess_id: str,
        sess_version: str,
        nettype: str,
        addrtype: str,
        address: str,
    ) -> None:
        # Written out rather than made by @dataclass: compiled, this one is native code.
        object.__setattr__(self, "username", username)
        object.__setattr__(self, "sess_id", sess_id)
        object.__setattr__(self, "sess_version", sess_version)
        object.__setattr__(self, "nettype", nettype)
        object.__setattr__(self, "addrtype", addrtype)
        object.__setattr__(self, "address", address)

    @classmethod
    def parse(cls, value: str) -> Origin:
        fields = value.split()
        if len(fields) != 6:
            raise SdpError(
                "origin needs username, sess-id, sess-version, nettype, addrtype and address"
            )
        return cls(*fields)

    def __str__(self) -> str:
        return (
            f"{self.username} {self.sess_id} {self.sess_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )

    @property
    def version_number(self) -> int | None:
        """sess-version as a number, or ``None`` when the peer sent something else."""
        text = self.sess_version
        return int(text) if text.isascii() and text.isdigit() else None

    def next_version(self) -> Origin:
        """This origin with sess-version incremented by one (RFC 3264 §8)."""
        number = self.version_number
        return Origin(
            self.username,
            self.sess_id,
            str(1 if number is None else number + 1),
            self.nettype,
            self.addrtype,
            self.address,
        )


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(frozen=True, slots=True)
class Connection(FrozenValue):
    """``c=<nettype> <addrtype> <connection-address>`` (RFC 8866 §5.7).

    For IP4 the address may carry ``/<ttl>[/<number of addresses>]``, for IP6
    ``/<number of addresses>``; other address types are kept as written.
    """

    nettype: str
    addrtype: str
    address: str
    ttl: int | None = None
    count: int | None = None

    def __init__(
        self,
        nettype: str,
        addrtype: str,
        address: str,
        ttl: int | None = None,
        count: int | None = None,
    ) -> None:
        # Written out rather than made by @dataclass: compiled, this one is native code.
        object.__setattr__(self, "nettype", nettype)
        object.__setattr__(self, "addrtype", addrtype)
        object.__setattr__(self, "address", address)
        object.__setattr__(self, "ttl", ttl)
        object.__setattr__(self, "count", count)

    @classmethod
    def parse(cls, value: str) -> Connection:
        fields = value.split()
        if len(fields) != 3:
            raise SdpError("connection needs nettype, addrtype and address")
        nettype, addrtype, address = fields
        if "/" not in address or addrtype not in ("IP4", "IP6"):
            return cls(nettype, addrtype, address)
        base, *suffix = address.split("/")
        if not base:
            raise SdpError("connection address is empty")
        if addrtype == "IP4":
            if len(suffix) > 2:
                raise SdpError("IP4 connection address takes at most /<ttl>/<count>")
            ttl = parse_number(suffix[0], "TTL", 255)
            count = parse_number(suffix[1], "address count") if len(suffix) == 2 else None
            return cls(nettype, addrtype, base, ttl, count)
        if len(suffix) > 1:
            raise SdpError("IP6 connection address takes at most /<count>")
        return cls(nettype, addrtype, base, None, parse_number(suffix[0], "address count"))

    def __str__(self) -> str:
        address = self.address
        if self.ttl is not None:
            address = f"{address}/{self.ttl}"
        if self.count is not None:
            address = f"{address}/{self.count}"
        return f"{self.nettype} {self.addrtype} {address}"

    @property
    def is_unspecified(self) -> bool:
        """``0.0.0.0``: the RFC 2543 way of putting a stream on hold (RFC 3264 §8.4)."""
        return self.addrtype == "IP4" and self.address == "0.0.0.0"


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(frozen=True, slots=True)
class Bandwidth(FrozenValue):
    """``b=<bwtype>:<bandwidth>`` (RFC 8866 §5.8), bandwidth in kilobits per second for CT/AS."""

    bwtype: str
    bandwidth: int

    @classmethod
    def parse(cls, value: str) -> Bandwidth:
        bwtype, colon, amount = value.partition(":")
        if not colon or not bwtype:
            raise SdpError("bandwidth needs <bwtype>:<bandwidth>")
        return cls(bwtype, parse_number(amount.strip(), "bandwidth"))

    def __str__(self) -> str:
        return f"{self.bwtype}:{self.bandwidth}"


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(frozen=True, slots=True)
class RepeatTime(FrozenValue):
    """``r=<repeat interval> <active duration> <offsets from start-time>`` (RFC 8866 §5.10).

    Values stay typed times as written (``7d``, ``3600``); :func:`typed_time_seconds`
    converts them.
    """

    repeat_interval: str
    active_duration: str
    offsets: tuple[str, ...]

    @classmethod
    def parse(cls, value: str) -> RepeatTime:
        fields = value.split()
        if len(fields) < 3:
            raise SdpError("repeat time needs interval, active duration and an offset")
        for text in fields:
            if text.startswith("-"):
                raise SdpError(f"repeat time {text!r} must not be negative")
            typed_time_seconds(text)
        return cls(fields[0], fields[1], tuple(fields[2:]))

    def __str__(self) -> str:
        return " ".join((self.repeat_interval, self.active_duration, *self.offsets))


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(frozen=True, slots=True)
class Timing(FrozenValue):
    """``t=<start-time> <stop-time>`` with the ``r=`` lines that follow it (RFC 8866 §5.9)."""

    start_time: int = 0
    stop_time: int = 0
    repeat_times: tuple[RepeatTime, ...] = ()

    def __init__(
        self, start_time: int = 0, stop_time: int = 0, repeat_times: tuple[RepeatTime, ...] = ()
    ) -> None:
        # Written out rather than made by @dataclass: compiled, this one is native code.
        object.__setattr__(self, "start_time", start_time)
        object.__setattr__(self, "stop_time", stop_time)
        object.__setattr__(self, "repeat_times", repeat_times)

    @classmethod
    def parse(cls, value: str) -> Timing:
        fields = value.split()
        if len(fields) != 2:
            raise SdpError("timing needs <start-time> <stop-time>")
        return cls(parse_number(fields[0], "start time"), parse_number(fields[1], "stop time"))

    def __str__(self) -> str:
        return f"{self.start_time} {self.stop_time}"


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(frozen=True, slots=True)
class TimeZoneAdjustment(FrozenValue):
    """One ``<adjustment time> <offset>`` pair of a ``z=`` line (RFC 8866 §5.11)."""

    adjustment_time: int
    offset: str

    @staticmethod
    def parse_line(value: str) -> list[TimeZoneAdjustment]:
        fields = value.split()
        if not fields or len(fields) % 2:
            raise SdpError("time zones need <adjustment time> <offset> pairs")
        adjustments = []
        for index in range(0, len(fields), 2):
            typed_time_seconds(fields[index + 1])
            time = parse_number(fields[index], "adjustment time")
            adjustments.append(TimeZoneAdjustment(time, fields[index + 1]))
        return adjustments

    def __str__(self) -> str:
        return f"{self.adjustment_time} {self.offset}"
