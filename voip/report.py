"""A call's quality report: codec, duration, and per direction packets, loss, jitter and
an estimated MOS, from the media engine's statistics (:class:`voip.rtp.StreamStatistics`).

The received direction is measured here (RFC 3550 A.3 loss, A.8 jitter); the sent one is
what the peer said about our packets in its RTCP receiver reports (RFC 3550 §6.4), so it
is known only when the peer sent one. The MOS is the ITU-T G.107 E-model's estimate
(Annex B: R to MOS) for G.711 (Ie = 0) with packet-loss concealment (Bpl = 25.1,
ITU-T G.113 Appendix I), random loss, and a one-way delay of half the RTCP round trip
plus the packetization and playout delay: a planning figure, not a listening test.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from voip.rtp.emodel import CODEC_IMPAIRMENTS, EModel, mos_from_r
from voip.rtp.stats import StreamStatistics

if TYPE_CHECKING:
    from voip.call import Call
    from voip.rtp.engine import CallMedia

G711_BPL = CODEC_IMPAIRMENTS["PCMU"][1]

__all__ = ["DirectionQuality", "QualityReport", "mos_from_r", "r_factor"]

# Packetization (one frame) and the jitter buffer's usual two frames, ms, for 20 ms frames.
_MEDIA_DELAY_MS = 60.0


def r_factor(loss: float, one_way_delay_ms: float, ie: float = 0.0, bpl: float = G711_BPL) -> float:
    """The E-model's transmission rating R (G.107 §7, :class:`voip.rtp.EModel`) for ``loss``
    (a fraction, random loss) and a mouth-to-ear delay, every other parameter at its
    default."""
    d = one_way_delay_ms
    return EModel(ie=ie, bpl=bpl, ppl=100.0 * loss, t=d, ta=d, tr=2 * d).r


@dataclass(frozen=True, slots=True)
class DirectionQuality:
    """One direction of the audio: packets that made it, packets lost, interarrival
    jitter (seconds) and the MOS; the loss figures are None when not known."""

    name: str
    packets: int
    lost: int | None
    jitter: float | None
    mos: float | None

    @property
    def loss(self) -> float | None:
        """The fraction of packets lost."""
        if self.lost is None:
            return None
        total = self.packets + self.lost if self.name == "received" else self.packets
        return self.lost / total if total else 0.0


@dataclass(frozen=True, slots=True)
class QualityReport:
    """What a call's audio was like, both ways."""

    codec: str
    duration: float  # seconds from answer to end
    sent: DirectionQuality
    received: DirectionQuality
    round_trip: float | None  # seconds, RTCP-measured
    concealed: float  # seconds of received audio made up for lost packets
    dtmf_sent: int
    dtmf_received: int
    #: how the media was protected: None for plain RTP, else the keying and the SRTP
    #: suite ("SRTP keyed by SDES, AES_CM_128_HMAC_SHA1_80")
    protection: str | None = None

    @classmethod
    def from_statistics(
        cls,
        stats: StreamStatistics,
        *,
        codec: str,
        duration: float,
        ptime: float = 0.02,
        protection: str | None = None,
    ) -> QualityReport:
        delay = _MEDIA_DELAY_MS * ptime / 0.02
        if stats.round_trip is not None:
            delay += 1000.0 * stats.round_trip / 2
        # a packet that came too late to play is lost to the listener (G.107 Ppl)
        lost_in = stats.lost + stats.late
        total_in = stats.packets_received + stats.lost
        received_loss = lost_in / total_in if total_in else 0.0
        received = DirectionQuality(
            "received",
            stats.packets_received,
            stats.lost,
            stats.jitter,
            mos_from_r(r_factor(received_loss, delay)) if total_in else None,
        )
        remote_lost = stats.remote_lost
        sent_mos = None
        if remote_lost is not None and stats.packets_sent:
            sent_mos = mos_from_r(r_factor(max(0, remote_lost) / stats.packets_sent, delay))
        sent = DirectionQuality(
            "sent",
            stats.packets_sent,
            None if remote_lost is None else max(0, remote_lost),
            stats.remote_jitter,
            sent_mos,
        )
        return cls(
            codec,
            duration,
            sent,
            received,
            stats.round_trip,
            stats.concealed,
            stats.dtmf_sent,
            stats.dtmf_received,
            protection,
        )

    @classmethod
    def of_call(cls, call: Call, duration: float) -> QualityReport | None:
        """The report of ``call``'s media; None when it had none (never answered)."""
        media = call.media
        if media is None or media.agreed is None:
            return None
        agreed = media.agreed
        codec = "?"
        if agreed.codecs:
            first = agreed.codecs[0]
            codec = f"{first.name}/{first.clock_rate}"
        ptime = (agreed.ptime or 20) / 1000.0
        return cls.from_statistics(
            media.statistics(),
            codec=codec,
            duration=duration,
            ptime=ptime,
            protection=_protection(media),
        )

    def text(self) -> str:
        """The report for a terminal."""
        protection = f", {self.protection}" if self.protection else ""
        lines = [
            f"Call quality: {self.codec}, {self.duration:.1f} s answered{protection}",
            f"  {'direction':<10} {'packets':>8} {'lost':>6} {'loss':>7} {'jitter':>9} {'MOS':>5}",
        ]
        for direction in (self.sent, self.received):
            loss = direction.loss
            lines.append(
                f"  {direction.name:<10} {direction.packets:>8} "
                f"{_or_dash(direction.lost):>6} "
                f"{'-' if loss is None else f'{100 * loss:.1f}%':>7} "
                f"{'-' if direction.jitter is None else f'{1000 * direction.jitter:.1f} ms':>9} "
                f"{'-' if direction.mos is None else f'{direction.mos:.2f}':>5}"
            )
        if self.sent.lost is None:
            lines.append("  (sent: the peer sent no RTCP report on our packets)")
        extra = []
        if self.round_trip is not None:
            extra.append(f"round trip {1000 * self.round_trip:.1f} ms")
        if self.concealed:
            extra.append(f"{self.concealed:.2f} s concealed")
        if self.dtmf_sent or self.dtmf_received:
            extra.append(f"DTMF {self.dtmf_sent} sent, {self.dtmf_received} received")
        if extra:
            lines.append("  " + ", ".join(extra))
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["sent"]["loss"] = self.sent.loss
        out["received"]["loss"] = self.received.loss
        return out


def _protection(media: CallMedia) -> str | None:
    """How ``media`` was protected (RFC 3711 SRTP, keyed by RFC 4568 SDES or by RFC 5764
    DTLS), or None for plain RTP."""
    agreed = media.agreed
    if agreed is None or "SAVP" not in agreed.proto:
        return None
    keying = "DTLS" if agreed.proto.startswith("UDP/TLS/") else "SDES"
    srtp = media.stream.srtp
    if srtp is None:  # a DTLS handshake that never completed: nothing was sent or played
        return f"SRTP keyed by {keying}, never keyed"
    return f"SRTP keyed by {keying}, {srtp.local.crypto_suite}"


def _or_dash(value: int | None) -> str:
    return "-" if value is None else str(value)
