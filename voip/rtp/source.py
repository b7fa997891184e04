"""What a receiver knows about one remote source (RFC 3550 §6.4.1 and Appendix A).

:class:`ReceivedSource` validates sequence numbers (A.1: probation, dropouts, restarts),
counts packets expected and lost (A.3), estimates interarrival jitter (A.8) and builds the
report block an RTCP SR or RR carries about the source (§6.4.1), with LSR and DLSR from the
last sender report it sent (§6.4.1). Sans-I/O: arrival times are given in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aiortc.rtp import RtcpReceiverInfo

__all__ = ["ReceivedSource"]

RTP_SEQ_MOD: Final = 1 << 16
MAX_DROPOUT: Final = 3000  # A.1
MAX_MISORDER: Final = 100  # A.1
MIN_SEQUENTIAL: Final = 2  # A.1: packets in sequence before a source is valid


@dataclass(slots=True)
class ReceivedSource:
    """Reception state of one SSRC, the ``source`` structure of RFC 3550 A.1."""

    ssrc: int
    clock_rate: int
    max_seq: int = 0
    cycles: int = 0  # shifted count of sequence number cycles
    base_seq: int = 0
    bad_seq: int = RTP_SEQ_MOD + 1  # last "bad" sequence number + 1
    probation: int = MIN_SEQUENTIAL
    received: int = 0
    expected_prior: int = 0
    received_prior: int = 0
    transit: float | None = None  # relative transit time of the previous packet (A.8)
    jitter: float = 0.0  # in RTP timestamp units (A.8)
    octets: int = 0
    last_sr: int = 0  # middle 32 bits of the NTP timestamp of the last SR (§6.4.1 LSR)
    last_sr_arrival: float | None = None

    @classmethod
    def first(cls, ssrc: int, clock_rate: int, seq: int) -> ReceivedSource:
        """A source heard for the first time with sequence number ``seq`` (A.1)."""
        source = cls(ssrc, clock_rate)
        source.init_seq(seq)
        source.max_seq = seq - 1
        return source

    def init_seq(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = RTP_SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self.received_prior = 0
        self.expected_prior = 0

    def update_seq(self, seq: int) -> bool:
        """Account for a packet with sequence number ``seq``; False when it does not count
        (still on probation, or a wild jump that needs a second packet to confirm, A.1)."""
        udelta = (seq - self.max_seq) % RTP_SEQ_MOD
        if self.probation:
            # a source is valid once MIN_SEQUENTIAL packets arrived in sequence
            if seq == (self.max_seq + 1) % RTP_SEQ_MOD:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self.init_seq(seq)
                    self.received += 1
                    return True
            else:
                self.probation = MIN_SEQUENTIAL - 1
                self.max_seq = seq
            return False
        if udelta < MAX_DROPOUT:
            # in order, with permissible gap
            if seq < self.max_seq:
                self.cycles += RTP_SEQ_MOD  # sequence number wrapped
            self.max_seq = seq
        elif udelta <= RTP_SEQ_MOD - MAX_MISORDER:
            # a very large jump
            if seq == self.bad_seq:
                # two sequential packets: the other side restarted without telling us
                self.init_seq(seq)
            else:
                self.bad_seq = (seq + 1) % RTP_SEQ_MOD
                return False
        # else: duplicate or reordered packet, counted as received
        self.received += 1
        return True

    def update_jitter(self, arrival: float, timestamp: int) -> None:
        """Interarrival jitter J(i) = J(i-1) + (|D(i-1,i)| - J(i-1))/16 (§6.4.1, A.8)."""
        transit = arrival * self.clock_rate - timestamp
        if self.transit is not None:
            d = abs(transit - self.transit)
            # a timestamp wrap shows up as a transit jump of 2^32: not jitter
            if d < (1 << 31):
                self.jitter += (d - self.jitter) / 16.0
        self.transit = transit

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max - self.base_seq + 1

    @property
    def lost(self) -> int:
        """Cumulative packets lost (A.3); negative when duplicates outnumber losses."""
        return self.expected - self.received

    @property
    def jitter_seconds(self) -> float:
        return self.jitter / self.clock_rate

    def sender_report(self, ntp_timestamp: int, arrival: float) -> None:
        """A sender report from this source arrived at ``arrival`` (seconds)."""
        self.last_sr = (ntp_timestamp >> 16) & 0xFFFFFFFF
        self.last_sr_arrival = arrival

    def report_block(self, now: float) -> RtcpReceiverInfo:
        """The reception report block about this source (§6.4.1), closing an interval (A.3)."""
        expected = self.expected
        expected_interval = expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior = expected
        self.received_prior = self.received
        lost_interval = expected_interval - received_interval
        if expected_interval == 0 or lost_interval <= 0:
            fraction = 0
        else:
            fraction = (lost_interval << 8) // expected_interval
        dlsr = 0
        if self.last_sr_arrival is not None:
            # delay since last SR, in units of 1/65536 seconds
            dlsr = int((now - self.last_sr_arrival) * 65536) & 0xFFFFFFFF
        return RtcpReceiverInfo(
            ssrc=self.ssrc,
            fraction_lost=min(fraction, 255),
            packets_lost=max(-(1 << 23), min(self.lost, (1 << 23) - 1)),
            highest_sequence=self.extended_max & 0xFFFFFFFF,
            jitter=int(self.jitter) & 0xFFFFFFFF,
            lsr=self.last_sr,
            dlsr=dlsr,
        )
