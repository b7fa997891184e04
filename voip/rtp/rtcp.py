"""RTCP for one RTP session (RFC 3550 §6): reports out, reports in, round-trip time.

Sans-I/O, through aiortc's public RTCP packet classes. :class:`RtcpSession` builds the
compound packets a participant sends (§6.1: an SR when it sent RTP since the last report,
else an RR; then an SDES with its CNAME; a BYE when it leaves, §6.6) and reads the ones it
receives: a sender report's NTP timestamp becomes the LSR of our next report block (§6.4.1),
and a report block about our own SSRC gives the round-trip time (§6.4.1, "A - LSR - DLSR").
The report interval follows §6.2 for a two-party call: 5 s on average, randomized over
[0.5, 1.5] times that (§6.3.1), the first one after half of it (§6.2 "initial").
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from aiortc.rtp import (
    RtcpByePacket,
    RtcpPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
)

from voip.rtp.sender import RtpSender
from voip.rtp.source import ReceivedSource

__all__ = [
    "NTP_EPOCH_OFFSET",
    "RtcpBye",
    "RtcpEvent",
    "RtcpReport",
    "RtcpSession",
    "ntp_timestamp",
]

NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)
RTCP_MIN_INTERVAL = 5.0  # §6.2 Tmin
SDES_CNAME = 1  # §6.5.1


def ntp_timestamp(unix_time: float) -> int:
    """The 64-bit NTP timestamp of a Unix time (§4: seconds since 1900, 32.32 fixed point)."""
    seconds = unix_time + NTP_EPOCH_OFFSET
    return int(seconds * (1 << 32)) & 0xFFFFFFFFFFFFFFFF


@dataclass(frozen=True, slots=True)
class RtcpReport:
    """A sender or receiver report arrived; ``round_trip`` (seconds) when it told us one."""

    ssrc: int
    sender: bool
    round_trip: float | None
    fraction_lost: float | None  # what the peer lost of ours, 0.0 to 1.0
    packets_lost: int | None
    jitter: float | None  # the peer's estimate of our jitter, seconds


@dataclass(frozen=True, slots=True)
class RtcpBye:
    """The peer left the session (§6.6)."""

    sources: tuple[int, ...]


RtcpEvent = RtcpReport | RtcpBye


#: The report intervals' randomization (§6.3.1) needs no generator of its own per session:
#: seeding one reads 2.5 KB from the system's entropy, a tenth of what opening a call's media
#: costs.
_SHARED_RNG = random.Random()


class RtcpSession:
    """The RTCP side of one participant: ``sender`` is our RTP source."""

    __slots__ = (
        "clock_rate",
        "cname",
        "last_octets",
        "last_packets",
        "min_interval",
        "rng",
        "round_trip",
        "sender",
    )

    def __init__(
        self,
        sender: RtpSender,
        cname: str,
        clock_rate: int,
        rng: random.Random | None = None,
    ) -> None:
        self.sender = sender
        self.cname = cname
        self.clock_rate = clock_rate
        self.rng = rng or _SHARED_RNG
        self.min_interval = RTCP_MIN_INTERVAL
        self.last_packets = 0  # sender's packet count at the last report
        self.last_octets = 0
        self.round_trip: float | None = None

    # --- timing -----------------------------------------------------------------------------

    def interval(self, *, initial: bool = False) -> float:
        """Seconds until the next report (§6.2, randomized as §6.3.1 says)."""
        base = self.min_interval / 2 if initial else self.min_interval
        return base * self.rng.uniform(0.5, 1.5)

    # --- sending ----------------------------------------------------------------------------

    def report(
        self,
        now: float,
        wall: float,
        rtp_timestamp: int,
        sources: list[ReceivedSource],
    ) -> bytes:
        """A compound report (§6.1): SR if we sent RTP since the last one, else RR, and SDES.

        ``now`` is the monotonic time (for DLSR), ``wall`` the Unix time (for the NTP
        timestamp), ``rtp_timestamp`` the RTP time that corresponds to ``wall`` (§6.4.1).
        """
        blocks = [source.report_block(now) for source in sources[:31]]
        sender = self.sender
        if sender.packet_count != self.last_packets:
            self.last_packets = sender.packet_count
            self.last_octets = sender.octet_count
            info = RtcpSenderInfo(
                ntp_timestamp=ntp_timestamp(wall),
                rtp_timestamp=rtp_timestamp,
                packet_count=sender.packet_count & 0xFFFFFFFF,
                octet_count=sender.octet_count & 0xFFFFFFFF,
            )
            head: bytes = bytes(RtcpSrPacket(ssrc=sender.ssrc, sender_info=info, reports=blocks))
        else:
            head = bytes(RtcpRrPacket(ssrc=sender.ssrc, reports=blocks))
        return head + self._sdes()

    def bye(self, now: float, sources: list[ReceivedSource]) -> bytes:
        """RR, SDES and BYE (§6.6): a compound packet starts with a report (§6.1)."""
        blocks = [source.report_block(now) for source in sources[:31]]
        head = bytes(RtcpRrPacket(ssrc=self.sender.ssrc, reports=blocks))
        return head + self._sdes() + bytes(RtcpByePacket(sources=[self.sender.ssrc]))

    def _sdes(self) -> bytes:
        item = (SDES_CNAME, self.cname.encode()[:255])
        return bytes(RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=self.sender.ssrc, items=[item])]))

    # --- receiving --------------------------------------------------------------------------

    def receive(
        self,
        data: bytes,
        now: float,
        wall: float,
        sources: dict[int, ReceivedSource],
    ) -> list[RtcpEvent]:
        """Read a compound RTCP packet; raises ``ValueError`` when it is malformed."""
        events: list[RtcpEvent] = []
        for packet in RtcpPacket.parse(data):
            if isinstance(packet, RtcpSrPacket):
                source = sources.get(packet.ssrc)
                if source is not None:
                    source.sender_report(packet.sender_info.ntp_timestamp, now)
                events.append(self._report(packet.ssrc, True, packet.reports, wall))
            elif isinstance(packet, RtcpRrPacket):
                events.append(self._report(packet.ssrc, False, packet.reports, wall))
            elif isinstance(packet, RtcpByePacket):
                events.append(RtcpBye(tuple(packet.sources)))
        return events

    def _report(
        self, ssrc: int, sender: bool, blocks: list[RtcpReceiverInfo], wall: float
    ) -> RtcpReport:
        for block in blocks:
            if block.ssrc != self.sender.ssrc:
                continue
            round_trip = None
            if block.lsr:
                # §6.4.1: RTT = A - LSR - DLSR, in the middle 32 bits of NTP time
                arrival = (ntp_timestamp(wall) >> 16) & 0xFFFFFFFF
                units = (arrival - block.lsr - block.dlsr) & 0xFFFFFFFF
                if units < 0x80000000:  # a negative result is clock trouble, not a time
                    round_trip = self.round_trip = units / 65536.0
            return RtcpReport(
                ssrc,
                sender,
                round_trip,
                block.fraction_lost / 256.0,
                block.packets_lost,
                block.jitter / self.clock_rate,
            )
        return RtcpReport(ssrc, sender, None, None, None, None)
