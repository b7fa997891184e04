"""The RTP packets a stream receives, read fast (RFC 3550 §5.1).

Nearly every packet of a voice call has the bare 12-byte fixed header: version 2, no
padding, no header extension, no CSRC list (first octet 0x80). :func:`parse_rtp` unpacks
that header with one ``struct`` call into an :class:`RtpHeader` (about a fifth of the cost
of aiortc's :class:`aiortc.rtp.RtpPacket`, which builds a header-extension object and a
CSRC list for each packet; compiled by mypyc, see :mod:`voip.rtp._implementation`); any
other packet goes through :meth:`aiortc.rtp.RtpPacket.parse`, which validates and skips
the CSRC list, the extension and the padding, and raises :class:`ValueError` for what is
not RTP. :func:`is_stun` tells the STUN a peer may send to the same ports (RFC 7983 §7).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from aiortc.rtp import RtpPacket

# STUN on the media ports (RFC 7983 §7): linphone sends binding requests to both at the
# start of a call, without ICE; counted, not answered. The toolkit has one test for STUN,
# the SIP socket's (RFC 5626 §8) too.
from voip.transport.stun import is_stun

__all__ = ["RtpHeader", "is_stun", "parse_rtp"]

_FIXED: Final = struct.Struct("!BBHII")
_PLAIN: Final = 0x80  # V=2, P=0, X=0, CC=0


@dataclass(slots=True)
class RtpHeader:
    """What a receiver uses of one RTP packet: its header fields and its payload."""

    payload_type: int
    marker: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes

    def __init__(  # noqa: PLR0917  # positional, as @dataclass made it
        self,
        payload_type: int,
        marker: int,
        sequence_number: int,
        timestamp: int,
        ssrc: int,
        payload: bytes,
    ) -> None:
        # Written out rather than made by @dataclass: compiled, this one is native code
        # (one is made for every packet received)
        self.payload_type = payload_type
        self.marker = marker
        self.sequence_number = sequence_number
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.payload = payload


def parse_rtp(data: bytes) -> RtpHeader:
    """The header and payload of ``data``; :class:`ValueError` when it is not RTP."""
    if len(data) >= 12 and data[0] == _PLAIN:
        # octet by octet: compiled (mypyc), each is a native operation, where struct would
        # box five integers into a tuple
        second = data[1]
        return RtpHeader(
            second & 0x7F,
            second >> 7,
            data[2] << 8 | data[3],
            data[4] << 24 | data[5] << 16 | data[6] << 8 | data[7],
            data[8] << 24 | data[9] << 16 | data[10] << 8 | data[11],
            data[12:],
        )
    packet = RtpPacket.parse(data)
    return RtpHeader(
        packet.payload_type,
        packet.marker,
        packet.sequence_number,
        packet.timestamp,
        packet.ssrc,
        packet.payload,
    )
