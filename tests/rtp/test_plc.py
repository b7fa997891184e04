"""Packet loss concealment after G.711 Appendix I: a lost frame of voiced speech is made up
from the last pitch period, fades after 10 ms, and gives way to silence."""

from __future__ import annotations

import math
import struct
import warnings

from voip.rtp.plc import Concealer

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop


def _tone(start: int, count: int, period: int = 57) -> bytes:
    return struct.pack(
        f"<{count}h",
        *(round(8000 * math.sin(2 * math.pi * (start + n) / period)) for n in range(count)),
    )


def test_a_lost_frame_continues_the_pitch_period_of_what_came_before() -> None:
    plc = Concealer(8000)
    for i in range(5):
        plc.good(_tone(160 * i, 160))
    made_up = plc.missing(160)
    assert made_up is not None
    # the first 10 ms are not attenuated (App. I §I.2.4): they continue the waveform
    expected = _tone(800, 80)
    diff = audioop.rms(audioop.add(made_up[:160], audioop.mul(expected, 2, -1.0), 2), 2)
    assert diff < 0.1 * audioop.rms(expected, 2)


def test_concealment_fades_then_stops_after_max_frames() -> None:
    plc = Concealer(8000, max_frames=3)
    for i in range(5):
        plc.good(_tone(160 * i, 160))
    frames = [plc.missing(160) for _ in range(4)]
    assert all(frame is not None for frame in frames[:3])
    levels = [audioop.rms(frame, 2) for frame in frames[:3] if frame is not None]
    assert levels[0] > levels[1] > levels[2]
    assert frames[3] is None


def test_nothing_to_conceal_from_before_any_audio() -> None:
    assert Concealer(8000).missing(160) is None


def test_the_first_good_frame_after_a_loss_is_cross_faded_without_a_step() -> None:
    plc = Concealer(8000)
    for i in range(5):
        plc.good(_tone(160 * i, 160))
    assert plc.missing(160) is not None
    silence_after = bytes(320)
    faded = plc.good(silence_after)
    assert audioop.rms(faded[:20], 2) > 0  # starts from the substitute
    assert faded[80:] == silence_after[80:]  # and is the new frame after 5 ms
