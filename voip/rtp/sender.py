"""The sending side of one RTP source (RFC 3550 §5.1): SSRC, sequence number, timestamp, marker.

Sans-I/O: :meth:`RtpSender.packet` turns a payload into the bytes of one RTP packet (the
12-byte fixed header of §5.1 packed directly: the toolkit sends no CSRC list and no header
extension; aiortc's :class:`aiortc.rtp.RtpPacket` reads them back the same), and keeps the
counts an RTCP sender report carries (§6.4.1). The timestamp advances by the samples each
packet covers, and also across the time no packet is sent (:meth:`RtpSender.advance`), so
that it always follows the sampling clock.
"""

from __future__ import annotations

import secrets
import struct
from dataclasses import dataclass, field
from typing import Final

__all__ = ["RtpSender", "random_ssrc"]

SEQUENCE_MOD: Final = 1 << 16
_HEADER: Final = struct.Struct("!BBHII")
_VERSION_2: Final = 0x80  # V=2, P=0, X=0, CC=0
TIMESTAMP_MOD: Final = 1 << 32


def random_ssrc() -> int:
    """A random SSRC (§8: chosen at random so that two sources rarely collide)."""
    return secrets.randbits(32)


@dataclass(slots=True)
class RtpSender:
    """One outgoing synchronization source.

    The initial sequence number and timestamp are random (§5.1), which makes known-plaintext
    attacks on encryption harder. ``talkspurt`` sets the marker bit on the next packet: the
    first packet of the stream and the first after a silence (RFC 3551 §4.1).
    """

    ssrc: int = field(default_factory=random_ssrc)
    sequence_number: int = field(default_factory=lambda: secrets.randbits(16))
    timestamp: int = field(default_factory=lambda: secrets.randbits(32))
    talkspurt: bool = True
    packet_count: int = 0  # §6.4.1 sender's packet count
    octet_count: int = 0  # §6.4.1 sender's octet count: payload octets only

    def __init__(  # noqa: PLR0917  # positional, as @dataclass made it
        self,
        ssrc: int | None = None,
        sequence_number: int | None = None,
        timestamp: int | None = None,
        talkspurt: bool = True,
        packet_count: int = 0,
        octet_count: int = 0,
    ) -> None:
        # Written out rather than made by @dataclass: compiled, this one is native code,
        # and the random values are drawn in one read of the system's source (§5.1, §8)
        if ssrc is None or sequence_number is None or timestamp is None:
            drawn = secrets.randbits(80)
            if ssrc is None:
                ssrc = drawn & 0xFFFFFFFF
            if sequence_number is None:
                sequence_number = (drawn >> 32) & 0xFFFF
            if timestamp is None:
                timestamp = drawn >> 48
        self.ssrc = ssrc
        self.sequence_number = sequence_number
        self.timestamp = timestamp
        self.talkspurt = talkspurt
        self.packet_count = packet_count
        self.octet_count = octet_count

    def packet(
        self,
        payload_type: int,
        payload: bytes,
        *,
        marker: bool = False,
        timestamp: int | None = None,
    ) -> bytes:
        """The next packet, carrying ``payload`` at the current timestamp (or ``timestamp``:
        telephone events keep the timestamp of their start, RFC 4733 §2.5.1.2)."""
        marker = marker or self.talkspurt
        header = _HEADER.pack(
            _VERSION_2,
            (0x80 if marker else 0) | (payload_type & 0x7F),
            self.sequence_number,
            self.timestamp if timestamp is None else timestamp,
            self.ssrc,
        )
        self.talkspurt = False
        self.sequence_number = (self.sequence_number + 1) % SEQUENCE_MOD
        self.packet_count += 1
        self.octet_count += len(payload)
        return header + payload

    def advance(self, samples: int) -> None:
        """Move the timestamp on by ``samples`` of the RTP clock (sent or not)."""
        self.timestamp = (self.timestamp + samples) % TIMESTAMP_MOD
