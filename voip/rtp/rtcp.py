"""RTCP for one RTP session (RFC 3550 §6): reports out, reports in, round-trip time.

Sans-I/O, through aiortc's public RTCP packet classes. :class:`RtcpSession` builds the
compound packets a participant sends (§6.1: an SR when it sent RTP since the last report,
else an RR; then an SDES with its CNAME; a BYE when it leaves, §6.6) and reads the ones it
receives: a sender report's NTP timestamp becomes the LSR of our next report block (§6.4.1),
and a report block about our own SSRC gives the round-trip time (§6.4.1, "A - LSR - DLSR").
The report interval follows §6.2 for a two-party call: 5 s on average, randomized over
[0.5, 1.5] times that (§6.3.1), the first one after half of it (§6.2 "initial").

A compound packet is split on each packet's common header (§6.4.1 "length") before aiortc
reads the packets the toolkit uses (SR, RR, SDES, BYE): the others (APP, RFC 4585
feedback, RFC 3611 XR, types not known) are skipped, as §6.1 asks of a receiver, and
reported as :class:`RtcpIgnored`, except an XR's VoIP Metrics block about our source
(RFC 3611 §4.7), read into :class:`VoipMetrics`. Only a datagram that is not a compound
of well-formed packets (§6.4.1, RFC 5761 §4) is malformed.
"""

from __future__ import annotations

import random
import struct
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
    "RtcpIgnored",
    "RtcpReport",
    "RtcpSession",
    "VoipMetrics",
    "compound_packets",
    "ntp_timestamp",
]

NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)
RTCP_MIN_INTERVAL = 5.0  # §6.2 Tmin
SDES_CNAME = 1  # §6.5.1
# packet types (§12.1; RFC 4585 §6.1; RFC 3611 §2)
RTCP_SR, RTCP_RR, RTCP_SDES, RTCP_BYE, RTCP_APP, RTCP_RTPFB, RTCP_PSFB, RTCP_XR = range(200, 208)
#: the types aiortc reads for the toolkit; every other one is skipped
USED_TYPES = frozenset((RTCP_SR, RTCP_RR, RTCP_SDES, RTCP_BYE))
#: RFC 5761 §4: RTCP packet types lie in 192..223 (where RTP payload types 64..95 would be)
RTCP_TYPES = range(192, 224)
XR_VOIP_METRICS = 7  # RFC 3611 §4.7 block type
XR_VOIP_METRICS_WORDS = 8  # its block length: 36 octets, in 32-bit words minus one
XR_UNAVAILABLE = 127  # RFC 3611 §4.7.5: R factor or MOS not available


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


@dataclass(frozen=True, slots=True)
class RtcpIgnored:
    """A packet of a compound the toolkit does not use (§6.1: a receiver skips the types it
    does not understand and reads the rest): APP (204), feedback (RFC 4585: 205, 206), an
    XR (207) with no VoIP Metrics block about our source, or a type it does not know."""

    packet_type: int


@dataclass(frozen=True, slots=True)
class VoipMetrics:
    """RFC 3611 §4.7, the peer's view of the RTP it receives from ``ssrc`` (ours): the
    fractions of packets lost in the network and discarded by its jitter buffer since
    the start, its E-model R factor and MOS (listening, conversational), None where it
    sent 127, "unavailable" (§4.7.5)."""

    ssrc: int
    loss_rate: float
    discard_rate: float
    r_factor: int | None
    mos_lq: float | None
    mos_cq: float | None


RtcpEvent = RtcpReport | RtcpBye | RtcpIgnored | VoipMetrics


def compound_packets(data: bytes) -> list[tuple[int, bytes]]:
    """The packets of a compound RTCP datagram (§6.1), each as (packet type, its octets
    with the common header), split on each header's length (§6.4.1: 32-bit words minus
    one). Raises ``ValueError`` for an empty datagram, a version other than 2, a type out
    of 192..223 (RFC 5761 §4) or a length running past the datagram."""
    if not data:
        raise ValueError("empty RTCP datagram")
    packets = []
    pos, size = 0, len(data)
    while pos < size:
        if size - pos < 4:
            raise ValueError("RTCP common header truncated")
        first, packet_type, length = struct.unpack_from("!BBH", data, pos)
        if first >> 6 != 2:
            raise ValueError("RTCP version is not 2")
        if packet_type not in RTCP_TYPES:
            raise ValueError(f"{packet_type} is not an RTCP packet type")
        end = pos + 4 + 4 * length
        if end > size:
            raise ValueError("RTCP packet length runs past the datagram")
        packets.append((packet_type, data[pos:end]))
        pos = end
    return packets


def _without_extension(packet_type: int, packet: bytes) -> bytes:
    """An SR or RR without the profile-specific extension that may follow its report
    blocks (§6.4.1, §6.4.2; no profile the toolkit uses defines one): aiortc reads a
    report only when its length is exactly that of its blocks."""
    first = packet[0]
    if packet_type not in (RTCP_SR, RTCP_RR) or first & 0x20:
        return packet  # padded: aiortc strips the padding and checks what is left
    body = (24 if packet_type == RTCP_SR else 4) + 24 * (first & 0x1F)
    if len(packet) - 4 <= body:
        return packet
    return packet[:2] + struct.pack("!H", body // 4) + packet[4 : 4 + body]


def _payload(packet: bytes) -> bytes:
    """What follows the common header, without its padding (§6.4.1 "padding")."""
    payload = packet[4:]
    if packet[0] & 0x20:
        if not payload or not 0 < payload[-1] <= len(payload):
            raise ValueError("RTCP padding length is invalid")
        payload = payload[: -payload[-1]]
    return payload


def _unless_unavailable(value: int, scale: float) -> float | None:
    return None if value == XR_UNAVAILABLE else value / scale


def extended_report_metrics(packet: bytes, ssrc: int) -> VoipMetrics | None:
    """The VoIP Metrics block (RFC 3611 §4.7) about ``ssrc`` in an XR packet (§2: the
    sender's SSRC, then report blocks of a type, a type-specific octet and a length in
    32-bit words minus one, each skipped by its length), None if there is none."""
    payload = _payload(packet)
    if len(payload) < 4:
        raise ValueError("RTCP XR without its sender's SSRC")
    found = None
    pos = 4
    while pos < len(payload):
        if len(payload) - pos < 4:
            raise ValueError("RTCP XR report block header truncated")
        block_type, _, words = struct.unpack_from("!BBH", payload, pos)
        end = pos + 4 + 4 * words
        if end > len(payload):
            raise ValueError("RTCP XR report block runs past its packet")
        if block_type == XR_VOIP_METRICS and words == XR_VOIP_METRICS_WORDS:
            source, loss, discard = struct.unpack_from("!LBB", payload, pos + 4)
            r_factor, _, mos_lq, mos_cq = payload[pos + 24 : pos + 28]
            if source == ssrc:
                found = VoipMetrics(
                    source,
                    loss / 256.0,  # §4.7.1: fixed point, the binary point at the left edge
                    discard / 256.0,
                    None if r_factor == XR_UNAVAILABLE else r_factor,
                    _unless_unavailable(mos_lq, 10.0),  # §4.7.5: MOS times 10
                    _unless_unavailable(mos_cq, 10.0),
                )
        pos = end
    return found


#: The report intervals' randomization (§6.3.1) needs no generator of its own per session:
#: seeding one reads 2.5 KB from the system's entropy, a tenth of what opening a call's media
#: costs.
_SHARED_RNG = random.Random()


#: V=2, P=0, count; packet type; length in 32-bit words minus one; the sender's SSRC
_HEADER_SSRC = struct.Struct("!BBHL")


def _receiver_report(ssrc: int, blocks: list[RtcpReceiverInfo]) -> bytes:
    """RR (§6.4.2) with ``blocks``, as aiortc's RtcpRrPacket writes it."""
    head = _HEADER_SSRC.pack(0x80 | len(blocks), RTCP_RR, 1 + 6 * len(blocks), ssrc)
    return head + b"".join(bytes(block) for block in blocks) if blocks else head


class RtcpSession:
    """The RTCP side of one participant: ``sender`` is our RTP source."""

    __slots__ = (
        "_sdes_chunk",
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
        #: the SDES packet last written, and the SSRC and CNAME it was written for
        self._sdes_chunk: tuple[int, str, bytes] | None = None

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
            head = _receiver_report(sender.ssrc, blocks)
        return head + self._sdes()

    def bye(self, now: float, sources: list[ReceivedSource]) -> bytes:
        """RR, SDES and BYE (§6.6): a compound packet starts with a report (§6.1)."""
        blocks = [source.report_block(now) for source in sources[:31]]
        ssrc = self.sender.ssrc
        bye = _HEADER_SSRC.pack(0x81, RTCP_BYE, 1, ssrc)  # §6.6: one SSRC, no reason
        return _receiver_report(ssrc, blocks) + self._sdes() + bye

    def _sdes(self) -> bytes:
        """SDES with our CNAME (§6.5.1); the same each time for one SSRC and CNAME."""
        ssrc, cname = self.sender.ssrc, self.cname
        written = self._sdes_chunk
        if written is not None and written[0] == ssrc and written[1] == cname:
            return written[2]
        item = (SDES_CNAME, cname.encode()[:255])
        data = bytes(RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=ssrc, items=[item])]))
        self._sdes_chunk = (ssrc, cname, data)
        return data

    # --- receiving --------------------------------------------------------------------------

    def receive(
        self,
        data: bytes,
        now: float,
        wall: float,
        sources: dict[int, ReceivedSource],
    ) -> list[RtcpEvent]:
        """Read a compound RTCP packet; raises ``ValueError`` when it is malformed, before
        anything in it took effect (RFC 3550 A.2: a compound that fails is discarded)."""
        read: list[object] = []
        for packet_type, octets in compound_packets(data):
            if packet_type in USED_TYPES:
                read.extend(RtcpPacket.parse(_without_extension(packet_type, octets)))
            elif packet_type == RTCP_XR:
                metrics = extended_report_metrics(octets, self.sender.ssrc)
                read.append(RtcpIgnored(packet_type) if metrics is None else metrics)
            else:
                read.append(RtcpIgnored(packet_type))
        events: list[RtcpEvent] = []
        for packet in read:
            if isinstance(packet, RtcpIgnored | VoipMetrics):
                events.append(packet)
            elif isinstance(packet, RtcpSrPacket):
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
