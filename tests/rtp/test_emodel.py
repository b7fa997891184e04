"""The ITU-T G.107 E-model: R from its parameters (§7), MOS from R (Annex B), and the
quality the media engine reports per direction from what it measured."""

from __future__ import annotations

import random

import pytest
from aiortc.rtp import RtpPacket

from voip.rtp import EModel, JitterBuffer, StreamStatistics, mos_from_r
from voip.rtp.emodel import burst_ratio, estimate_r
from voip.rtp.stats import media_quality


def test_default_parameters_give_r_93_2_and_mos_4_41_g107() -> None:
    # G.107 §7.1: with every parameter at its Table 1 default, Ro = 94.77, Is = 1.41,
    # Id = 0.15 and R = 93.2
    model = EModel()
    assert model.no == pytest.approx(-61.18, abs=0.01)
    assert model.ro == pytest.approx(94.77, abs=0.01)
    assert model.is_ == pytest.approx(1.41, abs=0.01)
    assert model.id == pytest.approx(0.15, abs=0.01)
    assert round(model.r, 1) == 93.2
    assert round(model.mos, 2) == 4.41


@pytest.mark.parametrize(("r", "mos"), [(90, 4.34), (80, 4.02), (70, 3.60), (60, 3.10), (50, 2.58)])
def test_mos_from_r_annex_b_at_the_g109_category_limits(r: float, mos: float) -> None:
    assert round(mos_from_r(r), 2) == mos


def test_mos_from_r_is_1_below_zero_and_4_5_above_100_annex_b() -> None:
    assert mos_from_r(-5) == 1.0
    assert mos_from_r(0) == 1.0
    assert mos_from_r(100) == pytest.approx(4.5)
    assert mos_from_r(120) == 4.5


def test_effective_equipment_impairment_from_loss_and_bpl_g107_7_5() -> None:
    # Ie,eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl)
    g711_plc = EModel(ie=0, bpl=25.1, ppl=2.0)
    assert g711_plc.ie_eff == pytest.approx(95 * 2 / 27.1)
    assert g711_plc.r == pytest.approx(EModel().r - 95 * 2 / 27.1)
    bursty = EModel(ie=0, bpl=25.1, ppl=2.0, burst_r=2.0)
    assert bursty.ie_eff == pytest.approx(95 * 2 / (1 + 25.1))
    assert bursty.r < g711_plc.r


def test_absolute_delay_up_to_100_ms_costs_nothing_then_idd_grows_g107_7_4() -> None:
    assert EModel(ta=100).idd == 0.0
    # X = log2(Ta/100) = 1 at 200 ms: Idd = 25 ((1+1)^(1/6) - 3 (1+1/729)^(1/6) + 2)
    assert EModel(ta=200).idd == pytest.approx(3.04, abs=0.01)
    assert EModel(ta=400).idd > EModel(ta=200).idd


def test_g711_with_concealment_at_5_percent_random_loss() -> None:
    r = estimate_r("PCMU", 0.05)
    assert r == pytest.approx(EModel().r - 95 * 5 / 30.1)
    assert round(mos_from_r(r), 2) == 3.92
    assert estimate_r("PCMA", 0.0) == pytest.approx(93.2, abs=0.01)
    with pytest.raises(KeyError):
        estimate_r("GSM", 0.0)


def test_burst_ratio_is_1_for_random_loss_and_larger_for_bursts() -> None:
    rng = random.Random(7)
    pattern = [rng.random() < 0.1 for _ in range(100_000)]
    lost = sum(pattern)
    bursts = sum(1 for i, x in enumerate(pattern) if x and (i == 0 or not pattern[i - 1]))
    assert burst_ratio(len(pattern) - lost, lost, bursts) == pytest.approx(1.0, abs=0.03)
    # losses in runs of 4: p = 25/900 per arrival... BurstR = 1/(p + q) well above 1
    assert burst_ratio(900, 100, 25) == pytest.approx(1 / (25 / 900 + 25 / 100))
    assert burst_ratio(1000, 0, 0) == 1.0


def _packet(seq: int) -> RtpPacket:
    return RtpPacket(0, 0, seq, seq * 160, 1, b"\xff" * 160)


def test_jitter_buffer_counts_runs_of_lost_frames() -> None:
    buffer = JitterBuffer(min_delay=1)
    for seq in [0, 1, 4, 5, 6, 8, 9]:  # 2 and 3 lost together, 7 alone
        buffer.push(_packet(seq))
    for _ in range(10):
        buffer.pop()
    assert buffer.counters.lost == 3
    assert buffer.counters.loss_bursts == 2


def test_media_quality_rates_each_direction_from_the_counters() -> None:
    stats = StreamStatistics(
        packets_sent=1000, packets_received=950, remote_lost=50, round_trip=0.04, jitter=0.002
    )
    quality = media_quality(
        stats, codec="PCMU", ptime=0.02, played=950, lost=50, loss_bursts=45, playout_delay=0.04
    )
    assert quality.codec == "PCMU" and quality.round_trip == 0.04
    received, sent = quality.received, quality.sent
    assert received.lost == 50 and received.loss == pytest.approx(0.05)
    assert received.one_way_delay == pytest.approx(0.02 + 0.02 + 0.04)
    assert received.burst_ratio == pytest.approx(1 / (45 / 950 + 45 / 50))
    assert received.r == pytest.approx(
        estimate_r("PCMU", 0.05, burst=received.burst_ratio, one_way_delay=0.08)
    )
    assert received.mos == pytest.approx(mos_from_r(received.r))
    assert sent.lost == 50 and sent.loss == pytest.approx(0.05) and sent.mos is not None
    assert received.mos is not None and 3.0 < received.mos < sent.mos + 0.2


def test_media_quality_is_unknown_before_anything_was_measured() -> None:
    quality = media_quality(
        StreamStatistics(),
        codec="PCMU",
        ptime=0.02,
        played=0,
        lost=0,
        loss_bursts=0,
        playout_delay=0.04,
    )
    assert quality.received.mos is None and quality.received.loss is None
    assert quality.sent.mos is None and quality.sent.lost is None
