"""The sender's timeline: decoded frames placed by their RTP timestamps (RFC 3550 §5.1),
whatever the local playout did with them."""

from __future__ import annotations

import pytest

from voip.rtp.timeline import SenderTimeline


def _timeline(
    sample_rate: int = 8000, clock_rate: int = 8000
) -> tuple[SenderTimeline, list[bytes]]:
    timeline = SenderTimeline(sample_rate, clock_rate)
    written: list[bytes] = []
    timeline.add(written.append)
    return timeline, written


def _frame(value: int, samples: int = 160) -> bytes:
    return bytes([value, 0]) * samples


def test_consecutive_timestamps_are_written_back_to_back() -> None:
    timeline, written = _timeline()
    for n in range(3):
        timeline.frame(7, 1000 + 160 * n, 160, _frame(n + 1))
    assert written == [_frame(1), _frame(2), _frame(3)]


def test_a_timestamp_gap_is_written_as_that_much_silence() -> None:
    # packets the sender never sent (silence suppression) or that were discarded
    timeline, written = _timeline()
    timeline.frame(7, 1000, 160, _frame(1))
    timeline.frame(7, 1000 + 160 + 400, 160, _frame(2))
    assert written == [_frame(1), bytes(2 * 400), _frame(2)]


def test_the_gap_counts_in_the_codecs_clock_not_its_sample_rate() -> None:
    # G.722: 16 kHz audio, timestamps at 8,000 per second (RFC 3551 §4.5.2)
    timeline, written = _timeline(sample_rate=16000, clock_rate=8000)
    timeline.frame(7, 0, 160, _frame(1, 320))
    timeline.frame(7, 320, 160, _frame(2, 320))  # one packet time missing
    assert written == [_frame(1, 320), bytes(2 * 320), _frame(2, 320)]


def test_timestamps_wrap_around_without_a_gap() -> None:
    timeline, written = _timeline()
    timeline.frame(7, 0xFFFFFFFF - 79, 160, _frame(1))
    timeline.frame(7, 80, 160, _frame(2))
    assert written == [_frame(1), _frame(2)]


@pytest.mark.parametrize("jump", [-160, 8000 * 11])
def test_a_step_back_or_a_jump_beyond_ten_seconds_fills_nothing(jump: int) -> None:
    timeline, written = _timeline()
    timeline.frame(7, 100000, 160, _frame(1))
    timeline.frame(7, 100000 + 160 + jump, 160, _frame(2))
    assert written == [_frame(1), _frame(2)]


def test_a_new_ssrc_starts_a_new_timeline() -> None:
    # RFC 3550 §8.2: a new source has its own random timestamp origin
    timeline, written = _timeline()
    timeline.frame(7, 1000, 160, _frame(1))
    timeline.frame(8, 5000, 160, _frame(2))
    assert written == [_frame(1), _frame(2)]


def test_a_concealed_frame_takes_the_lost_packets_place() -> None:
    timeline, written = _timeline()
    timeline.frame(7, 0, 160, _frame(1))
    timeline.concealed(160, _frame(9))
    timeline.frame(7, 320, 160, _frame(2))  # right after the concealed one: no gap
    assert written == [_frame(1), _frame(9), _frame(2)]


def test_concealment_before_any_frame_writes_nothing() -> None:
    timeline, written = _timeline()
    timeline.concealed(160, _frame(9))
    assert written == []


def test_a_codec_change_starts_a_new_timeline() -> None:
    timeline, written = _timeline()
    timeline.frame(7, 0, 160, _frame(1))
    timeline.set_clock(48000, 48000)
    timeline.frame(7, 96000, 960, _frame(2, 960))  # Opus's clock: no gap from the old one
    assert written == [_frame(1), _frame(2, 960)]


def test_a_recording_started_later_has_no_gap_for_the_time_nobody_listened() -> None:
    timeline = SenderTimeline(8000, 8000)
    first: list[bytes] = []
    remove = timeline.add(first.append)
    timeline.frame(7, 0, 160, _frame(1))
    remove()
    # a second of frames went by with no one listening (none given to the timeline), then
    later: list[bytes] = []
    timeline.add(later.append)
    timeline.frame(7, 8000, 160, _frame(2))
    assert first == [_frame(1)] and later == [_frame(2)]
