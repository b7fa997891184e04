"""The scoring the audio tests rely on (tests/support/quality.py) tells speech whose delay
moved mid-call from audio that is not the speech."""

from __future__ import annotations

import numpy as np
from support.quality import score

RATE = 8000


def _speechlike(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    samples = int(seconds * RATE)
    envelope = 0.5 + 0.5 * np.sin(np.arange(samples) * 2 * np.pi * 3 / RATE)
    return rng.normal(0, 3000, samples) * envelope


def _pcm(signal: np.ndarray) -> bytes:
    return np.clip(signal, -32768, 32767).astype("<i2").tobytes()


def test_a_delay_that_moves_mid_call_keeps_the_windowed_correlation_high() -> None:
    source = _speechlike(6, seed=1)
    # 80 ms of delay for the first half, 140 ms for the second: an adaptive playout
    half = len(source) // 2
    moved = np.concatenate([np.zeros(640), source[:half], np.zeros(480), source[half:]])
    result = score(_pcm(source), _pcm(moved))
    assert result.windowed_correlation > 0.95, result
    assert result.correlation < result.windowed_correlation, result


def test_a_delay_that_grew_by_more_than_the_drift_is_found_with_a_wider_search() -> None:
    # a playout that fell 300 ms behind mid-call (its peer's sender stalled): beyond the
    # default 0.1 s search, within a 0.5 s one
    source = _speechlike(8, seed=1)
    half = len(source) // 2
    moved = np.concatenate([source[:half], np.zeros(2400), source[half:]])
    narrow = score(_pcm(source), _pcm(moved))
    wide = score(_pcm(source), _pcm(moved), drift=0.5)
    assert narrow.windowed_correlation < 0.5, narrow
    assert wide.windowed_correlation > 0.95, wide


def test_audio_that_is_not_the_source_has_a_low_windowed_correlation() -> None:
    result = score(_pcm(_speechlike(6, seed=1)), _pcm(_speechlike(6, seed=2)))
    assert result.windowed_correlation < 0.3, result


def test_a_second_received_as_silence_counts_as_uncorrelated_not_as_nan() -> None:
    source = _speechlike(6, seed=1)
    gapped = source.copy()
    gapped[2 * RATE : 3 * RATE + RATE // 2] = 0  # a second and a half lost
    result = score(_pcm(source), _pcm(gapped))
    assert 0.9 < result.windowed_correlation <= 1.0, result  # one window of five is 0
    silent = score(_pcm(source), _pcm(np.concatenate([source[:RATE], np.zeros(5 * RATE)])))
    assert silent.windowed_correlation == 0.0, silent  # most windows silent: the median is 0
