"""The ITU-T G.107 E-model: a transmission rating R and an estimated MOS (sans-I/O).

R = Ro - Is - Id - Ie,eff + A (G.107 §7.1), each term computed from the parameters of
G.107 Table 1 (:class:`EModel`, whose defaults give R = 93.2). The media engine sets the
terms it measures: the equipment impairment Ie and packet-loss robustness Bpl of the codec
(ITU-T G.113 Appendix I, :data:`CODEC_IMPAIRMENTS`), the packet-loss probability Ppl and
its burstiness BurstR (§7.4), and the delays T = Ta (one-way mouth-to-ear, here half the
RTCP round trip plus packetization and playout delay) and Tr = 2T. :func:`mos_from_r` is
Annex B. The result is a planning estimate, not a listening test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

__all__ = [
    "CODEC_IMPAIRMENTS",
    "EModel",
    "burst_ratio",
    "estimate_r",
    "mos_from_r",
]

#: Codec name -> (Ie, Bpl). G.113 Appendix I: G.711 with packet loss concealment
#: (G.711 Appendix I) has Ie 0, Bpl 25.1; without it, Bpl 4.3. G.722 and Opus are wideband
#: codecs outside Appendix I's narrowband table: they are rated here on the narrowband scale
#: as no worse than G.711 with concealment (Ie 0, Bpl 25.1), which is a floor, not a figure
#: of G.113.
CODEC_IMPAIRMENTS: dict[str, tuple[float, float]] = {
    "PCMU": (0.0, 25.1),
    "PCMA": (0.0, 25.1),
    "G722": (0.0, 25.1),
    "OPUS": (0.0, 25.1),
}
G711_WITHOUT_PLC_BPL = 4.3


def _root(x: float, n: int) -> float:
    """The n-th root of a positive number."""
    return math.exp(math.log(x) / n)


def _log10_sum(*levels: float) -> float:
    return 10 * math.log10(sum(10 ** (level / 10) for level in levels))


@dataclass(frozen=True, slots=True)
class EModel:
    """The parameters of G.107 Table 1 (defaults from that table), and R computed from them.

    Loudness ratings and noise in dB, delays in milliseconds, ``ppl`` in percent.
    """

    slr: float = 8.0  # send loudness rating
    rlr: float = 2.0  # receive loudness rating
    stmr: float = 15.0  # sidetone masking rating
    lstr: float = 18.0  # listener sidetone rating
    ds: float = 3.0  # D-value of telephone, send side
    dr: float = 3.0  # D-value of telephone, receive side
    telr: float = 65.0  # talker echo loudness rating
    wepl: float = 110.0  # weighted echo path loss
    t: float = 0.0  # mean one-way delay of the echo path
    tr: float = 0.0  # round-trip delay in a 4-wire loop
    ta: float = 0.0  # absolute delay in echo-free connections
    qdu: float = 1.0  # quantizing distortion units
    ie: float = 0.0  # equipment impairment factor
    bpl: float = 4.3  # packet-loss robustness factor
    ppl: float = 0.0  # random packet-loss probability, percent
    burst_r: float = 1.0  # burst ratio
    nc: float = -70.0  # circuit noise referred to the 0 dBr point, dBm0p
    nfor: float = -64.0  # noise floor at the receive side, dBmp
    ps: float = 35.0  # room noise at the send side, dB(A)
    pr: float = 35.0  # room noise at the receive side, dB(A)
    a: float = 0.0  # advantage factor

    # --- §7.2 the basic signal-to-noise ratio Ro ----------------------------------------------

    @property
    def olr(self) -> float:
        return self.slr + self.rlr

    @property
    def no(self) -> float:
        """The total noise power No (7-3), dBm0p."""
        nos = self.ps - self.slr - self.ds - 100 + 0.004 * (self.ps - self.olr - self.ds - 14) ** 2
        pre = self.pr + 10 * math.log10(1 + 10 ** ((10 - self.lstr) / 10))
        nor = self.rlr - 121 + pre + 0.008 * (pre - 35) ** 2
        nfo = self.nfor + self.rlr
        return _log10_sum(self.nc, nos, nor, nfo)

    @property
    def ro(self) -> float:
        return 15 - 1.5 * (self.slr + self.no)

    # --- §7.3 the simultaneous impairment factor Is -----------------------------------------

    @property
    def iolr(self) -> float:
        xolr = self.olr + 0.2 * (64 + self.no - self.rlr)
        return 20 * (_root(1 + (xolr / 8) ** 8, 8) - xolr / 8)

    @property
    def stmro(self) -> float:
        echo = math.exp(-self.t / 4) * 10 ** (-self.telr / 10)
        return -10 * math.log10(10 ** (-self.stmr / 10) + echo)

    @property
    def ist(self) -> float:
        s = self.stmro
        return (
            12 * _root(1 + ((s - 13) / 6) ** 8, 8)
            - 28 * _root(1 + ((s + 1) / 19.4) ** 35, 35)
            - 13 * _root(1 + ((s - 3) / 33) ** 13, 13)
            + 29
        )

    @property
    def iq(self) -> float:
        q = 37 - 15 * math.log10(self.qdu)
        g = 1.07 + 0.258 * q + 0.0602 * q**2
        y = (self.ro - 100) / 15 + 46 / 8.4 - g / 9
        z = 46 / 30 - g / 40
        return 15 * math.log10(1 + 10**y + 10**z)

    @property
    def is_(self) -> float:
        return self.iolr + self.ist + self.iq

    # --- §7.4 the delay impairment factor Id ------------------------------------------------

    @property
    def idte(self) -> float:
        """Talker echo."""
        roe = -1.5 * (self.no - self.rlr)
        t = self.t
        terv = self.telr - 40 * math.log10((1 + t / 10) / (1 + t / 150)) + 6 * math.exp(-0.3 * t**2)
        if self.stmr < 9:
            terv += self.ist / 2  # TERVs (7-22)
        re = 80 + 2.5 * (terv - 14)
        return ((roe - re) / 2 + math.sqrt((roe - re) ** 2 / 4 + 100) - 1) * (1 - math.exp(-t))

    @property
    def idle(self) -> float:
        """Listener echo."""
        rle = 10.5 * (self.wepl + 7) / _root(self.tr + 1, 4)
        return (self.ro - rle) / 2 + math.sqrt((self.ro - rle) ** 2 / 4 + 169)

    @property
    def idd(self) -> float:
        """Too-long absolute delay: none up to 100 ms."""
        if self.ta <= 100:
            return 0.0
        x = math.log10(self.ta / 100) / math.log10(2)
        return 25 * (_root(1 + x**6, 6) - 3 * _root(1 + (x / 3) ** 6, 6) + 2)

    @property
    def id(self) -> float:
        return self.idte + self.idle + self.idd

    # --- §7.5 the effective equipment impairment factor Ie,eff -------------------------------

    @property
    def ie_eff(self) -> float:
        """Ie,eff = Ie + (95 - Ie) · Ppl / (Ppl / BurstR + Bpl)."""
        return self.ie + (95 - self.ie) * self.ppl / (self.ppl / self.burst_r + self.bpl)

    @property
    def r(self) -> float:
        """The transmission rating R (7-1)."""
        return self.ro - self.is_ - self.id - self.ie_eff + self.a

    @property
    def mos(self) -> float:
        return mos_from_r(self.r)


def mos_from_r(r: float) -> float:
    """G.107 Annex B (B-4): the estimated conversational MOS (1 to 4.5) for R."""
    if r < 0:
        return 1.0
    if r > 100:
        return 4.5
    return 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6


def burst_ratio(packets: int, lost: int, bursts: int) -> float:
    """BurstR (G.107 §7.5) measured from a loss pattern: ``packets`` that arrived, ``lost``
    packets in ``bursts`` runs of consecutive losses. With p the probability of a loss after
    an arrival and q of an arrival after a loss (a two-state Markov model), BurstR = 1/(p+q);
    1 for random loss, above 1 for bursty loss."""
    if lost <= 0 or packets <= 0 or bursts <= 0:
        return 1.0
    p = bursts / packets
    q = bursts / lost
    return 1 / (p + q)


_MODELS: dict[tuple[float, float], EModel] = {}


def estimate_r(codec: str, loss: float, *, burst: float = 1.0, one_way_delay: float = 0.0) -> float:
    """R for a call with ``codec`` (an RTP encoding name), ``loss`` the fraction of packets
    lost to the listener (lost or too late to play), ``burst`` the BurstR, and
    ``one_way_delay`` the mouth-to-ear delay in seconds; every other parameter at its
    G.107 default. Raises KeyError for a codec not in :data:`CODEC_IMPAIRMENTS`."""
    ie, bpl = CODEC_IMPAIRMENTS[codec.upper()]
    base = _MODELS.get((ie, bpl))
    if base is None:
        base = _MODELS[(ie, bpl)] = EModel(ie=ie, bpl=bpl)
    delay_ms = 1000.0 * one_way_delay
    model = replace(
        base,
        ppl=100.0 * min(max(loss, 0.0), 1.0),
        burst_r=max(burst, 1.0),
        t=delay_ms,
        ta=delay_ms,
        tr=2 * delay_ms,
    )
    return model.r
