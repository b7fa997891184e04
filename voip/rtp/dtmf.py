"""DTMF as RFC 4733 telephone events: the payload format, a sender and a receiver.

An event's packets all carry the RTP timestamp of its start (§2.5.1.2) and a duration
that grows with each packet; the first has the marker bit (§2.5.1.1); the last is sent
three times with the E bit (§2.5.1.4: "the final packet ... SHOULD be retransmitted"), with
the same sequence of duration. The receiver turns events into digits once, whatever
packets are repeated, lost or reordered: an event is known by its timestamp (§2.5.2.1).
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

__all__ = [
    "EVENTS",
    "DtmfDigit",
    "DtmfReceiver",
    "DtmfSender",
    "TelephoneEvent",
    "dtmf_digits",
]

#: RFC 4733 §3.2 event codes 0-15 for DTMF
EVENTS = "0123456789*#ABCD"
END_REPEATS = 3  # §2.5.1.4
DEFAULT_VOLUME = 10  # -10 dBm0, a typical DTMF power level (§2.5.1.3 gives the scale)
MAX_DURATION = 0xFFFF  # §2.5.1.5: longer events are split into segments


def dtmf_digits(digits: str) -> str:
    """``digits`` upper-cased; ValueError if one of them is not a DTMF digit (§3.2)."""
    for digit in digits:
        if digit.upper() not in EVENTS:
            raise ValueError(f"not a DTMF digit: {digit!r}")
    return digits.upper()


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """The 4-octet payload of RFC 4733 §2.3: event, E bit, volume, duration (timestamp units)."""

    event: int
    end: bool
    volume: int
    duration: int

    def __bytes__(self) -> bytes:
        return struct.pack(
            "!BBH", self.event, (0x80 if self.end else 0) | (self.volume & 0x3F), self.duration
        )

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        if len(payload) < 4:
            raise ValueError("telephone-event payload shorter than 4 octets")
        event, flags, duration = struct.unpack_from("!BBH", payload)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    @property
    def digit(self) -> str | None:
        return EVENTS[self.event] if self.event < len(EVENTS) else None


@dataclass(frozen=True, slots=True)
class DtmfDigit:
    """A digit received: its RTP timestamp and its duration in seconds (0 if unknown)."""

    digit: str
    timestamp: int
    duration: float


@dataclass(frozen=True, slots=True)
class EventPacket:
    """One packet of an outgoing event: payload, marker bit, and the event's timestamp."""

    payload: bytes
    marker: bool
    timestamp: int


class DtmfSender:
    """The packets of one digit, one per packet time, then the end packets.

    ``samples_per_packet`` is the packet time in timestamp units; the first packet goes at
    the start of the event, later ones each packet time after, as §2.5.1.2 describes.
    """

    __slots__ = ("_duration", "_ended", "_event", "_step", "_total", "end_sent", "timestamp")

    def __init__(
        self,
        digit: str,
        timestamp: int,
        *,
        duration: int,
        samples_per_packet: int,
        volume: int = DEFAULT_VOLUME,
    ) -> None:
        code = EVENTS.find(digit.upper())
        if len(digit) != 1 or code < 0:
            raise ValueError(f"not a DTMF digit: {digit!r}")
        self.timestamp = timestamp
        self._event = (code, volume)
        self._total = max(samples_per_packet, min(duration, MAX_DURATION))
        self._step = samples_per_packet
        self._duration = 0
        self._ended = False
        self.end_sent = 0

    @property
    def done(self) -> bool:
        return self.end_sent >= END_REPEATS

    def next_packet(self) -> EventPacket:
        """The packet for the next packet time (call while not ``done``)."""
        code, volume = self._event
        first = self._duration == 0
        self._duration = min(self._duration + self._step, self._total)
        end = self._duration >= self._total
        if end:
            self.end_sent += 1
        payload = bytes(TelephoneEvent(code, end, volume, self._duration))
        return EventPacket(payload, first, self.timestamp)


class DtmfReceiver:
    """Digits from telephone-event packets, each reported once, in order."""

    __slots__ = ("_current", "_order", "_reported", "clock_rate")

    def __init__(self, clock_rate: int = 8000) -> None:
        self.clock_rate = clock_rate
        self._current: tuple[int, int] | None = None  # (timestamp, event) being received
        self._reported: set[int] = set()  # timestamps of events already reported
        self._order: deque[int] = deque()

    def receive(self, payload: bytes, timestamp: int) -> DtmfDigit | None:
        """Read one packet; returns the digit when an event is first seen to end, or when a
        new event begins before the previous one's end packets came (they were lost)."""
        event = TelephoneEvent.parse(payload)
        digit = event.digit
        if digit is None or timestamp in self._reported:
            return None  # not DTMF, or a repeat of an event already reported
        if event.end:
            self._remember(timestamp)
            self._current = None
            return DtmfDigit(digit, timestamp, event.duration / self.clock_rate)
        previous = self._current
        self._current = (timestamp, event.event)
        if previous is not None and previous[0] != timestamp:
            # the previous event never showed its end: report it now that a new one began
            self._remember(previous[0])
            return DtmfDigit(EVENTS[previous[1]], previous[0], 0.0)
        return None

    def _remember(self, timestamp: int) -> None:
        self._reported.add(timestamp)
        self._order.append(timestamp)
        if len(self._order) > 64:
            self._reported.discard(self._order.popleft())
