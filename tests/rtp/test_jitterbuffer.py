"""The adaptive jitter buffer: order, duplicates, late packets, loss, delay, SSRC changes."""

from __future__ import annotations

import random

from aiortc.rtp import RtpPacket

from voip.rtp import JitterBuffer


def _packet(seq: int, ssrc: int = 1) -> RtpPacket:
    return RtpPacket(0, 0, seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, ssrc, bytes([seq & 0xFF]))


def _drain(buffer: JitterBuffer, frames: int) -> list[int | None]:
    out: list[int | None] = []
    for _ in range(frames):
        packet = buffer.pop()
        out.append(None if packet is None else packet.sequence_number)
    return out


def test_buffers_target_frames_before_playing() -> None:
    buffer = JitterBuffer(min_delay=3)
    buffer.push(_packet(10))
    buffer.push(_packet(11))
    assert buffer.pop() is None
    buffer.push(_packet(12))
    assert _drain(buffer, 3) == [10, 11, 12]
    assert buffer.counters.concealed == 0


def test_reordered_packets_play_in_sequence_order() -> None:
    buffer = JitterBuffer(min_delay=3)
    for seq in (12, 10, 11, 14, 13):
        buffer.push(_packet(seq))
    assert _drain(buffer, 5) == [10, 11, 12, 13, 14]


def test_duplicates_dropped_and_counted() -> None:
    buffer = JitterBuffer(min_delay=2)
    for seq in (1, 1, 2):
        buffer.push(_packet(seq))
    assert _drain(buffer, 1) == [1]
    buffer.push(_packet(1))  # again, after it played
    assert _drain(buffer, 1) == [2]
    assert buffer.counters.duplicates == 2


def test_packet_after_its_turn_is_late_not_played() -> None:
    buffer = JitterBuffer(min_delay=2)
    for seq in (1, 3, 4):
        buffer.push(_packet(seq))
    assert _drain(buffer, 2) == [1, None]  # 2 is missing, 3 is already here: lost
    buffer.push(_packet(2))
    assert _drain(buffer, 2) == [3, 4]
    assert (buffer.counters.lost, buffer.counters.late, buffer.counters.concealed) == (1, 1, 1)


def test_underrun_holds_playout_so_a_delayed_packet_still_plays_and_delay_grows() -> None:
    buffer = JitterBuffer(min_delay=2, max_delay=8)
    for seq in (1, 2):
        buffer.push(_packet(seq))
    assert _drain(buffer, 2) == [1, 2]
    assert buffer.pop() is None  # 3 not here yet, nothing later either
    buffer.push(_packet(3))
    buffer.push(_packet(4))
    assert _drain(buffer, 2) == [3, 4]
    assert buffer.counters.underruns == 1 and buffer.counters.lost == 0
    assert buffer.target == 3


def test_delay_larger_than_needed_shrinks_by_discarding_frames() -> None:
    buffer = JitterBuffer(min_delay=2, max_delay=8)
    seq = 0
    for _ in range(10):  # a burst: 10 frames queued at once
        buffer.push(_packet(seq))
        seq += 1
    for _ in range(200):  # then steady arrival, one per frame
        buffer.push(_packet(seq))
        seq += 1
        buffer.pop()
    assert buffer.counters.discarded > 0
    assert buffer.delay <= buffer.target + 2


def test_the_frame_discarded_to_shrink_the_delay_is_handed_out_after_the_one_before() -> None:
    buffer = JitterBuffer(min_delay=2, max_delay=8)
    for seq in range(10):  # a burst
        buffer.push(_packet(seq))
    popped: list[int] = []
    dropped: list[int] = []
    for seq in range(10, 200):
        buffer.push(_packet(seq))
        packet = buffer.pop()
        assert packet is not None
        popped.append(packet.sequence_number)
        if buffer.dropped is not None:
            # the one due right after the frame just popped, then no more of it
            assert buffer.dropped.sequence_number == packet.sequence_number + 1
            dropped.append(buffer.dropped.sequence_number)
    assert len(dropped) == buffer.counters.discarded > 0
    # every packet went out once, popped or dropped, in sequence order
    assert sorted(popped + dropped) == list(range(len(popped) + len(dropped)))
    assert not set(popped) & set(dropped)


def test_frames_beyond_the_target_are_overdue_after_the_clock_skipped_periods() -> None:
    buffer = JitterBuffer(min_delay=2, max_delay=8)
    for seq in range(3):
        buffer.push(_packet(seq))
    assert not buffer.overdue  # still buffering: nothing is due before playout starts
    assert _drain(buffer, 1) == [0]
    assert not buffer.overdue  # playing with the target buffered
    for seq in range(3, 8):  # the peer went on sending while our clock skipped 5 periods
        buffer.push(_packet(seq))
    caught_up: list[int | None] = []
    while buffer.overdue:
        caught_up += _drain(buffer, 1)
    assert caught_up == [1, 2, 3, 4, 5] and buffer.delay == buffer.target
    assert buffer.counters.discarded == 0


def test_ssrc_change_resets_the_buffer_and_is_counted() -> None:
    buffer = JitterBuffer(min_delay=2)
    for seq in (100, 101):
        buffer.push(_packet(seq, ssrc=1))
    assert _drain(buffer, 1) == [100]
    for seq in (5000, 5001):
        buffer.push(_packet(seq, ssrc=2))
    assert _drain(buffer, 2) == [5000, 5001]
    assert buffer.counters.ssrc_changes == 1


def test_sequence_wraps_around_without_loss() -> None:
    buffer = JitterBuffer(min_delay=2)
    for seq in (65534, 65535, 0, 1):
        buffer.push(_packet(seq))
    assert _drain(buffer, 4) == [65534, 65535, 0, 1]
    assert buffer.counters.lost == 0


def test_sequence_jump_beyond_capacity_restarts_playout() -> None:
    buffer = JitterBuffer(min_delay=2, capacity=32)
    for seq in (1, 2, 3):
        buffer.push(_packet(seq))
    assert _drain(buffer, 1) == [1]
    for seq in (30000, 30001):
        buffer.push(_packet(seq))
    assert _drain(buffer, 2) == [30000, 30001]
    assert buffer.counters.resets == 1


def test_source_going_quiet_returns_to_buffering() -> None:
    buffer = JitterBuffer(min_delay=2)
    for seq in (1, 2):
        buffer.push(_packet(seq))
    _drain(buffer, 2 + 10)  # 10 empty frames: the sender stopped
    underruns = buffer.counters.underruns
    assert buffer.pop() is None
    assert buffer.counters.underruns == underruns  # quiet is not counted as underrun
    for seq in (40, 41):
        buffer.push(_packet(seq))
    assert _drain(buffer, 2) == [40, 41]


def test_reordered_before_playout_started_still_plays() -> None:
    buffer = JitterBuffer(min_delay=3)
    for seq in (11, 10, 12):
        buffer.push(_packet(seq))
    assert _drain(buffer, 3) == [10, 11, 12]
    assert buffer.counters.late == 0


def test_play_now_starts_playout_before_the_target_is_buffered_rfc3389() -> None:
    # a CN packet announces a silence: waiting for two more frames would wait a second
    buffer = JitterBuffer(min_delay=3)
    buffer.push(_packet(40))
    assert _drain(buffer, 2) == [None, None]  # buffering: one frame is below the target
    buffer.play_now()
    assert _drain(buffer, 1) == [40]
    assert buffer.counters.underruns == 0 and buffer.counters.concealed == 0


def test_the_delay_is_always_from_the_newest_packet_buffered_to_the_playout_point() -> None:
    """The buffer keeps its newest sequence number as packets come and go (reordered,
    duplicated, lost, late, a new source, a sequence jump): the delay it reports, and
    shrinks by, is always the newest buffered packet's distance from the playout point."""
    rng = random.Random(7)
    buffer = JitterBuffer(min_delay=2, max_delay=8)
    seq, ssrc = 1000, 1
    for step in range(5000):
        if step % 997 == 0:
            ssrc += 1  # a new source (RFC 3550 §8.2)
        if step % 1499 == 0:
            seq += 30000  # a jump too large for reordering
        for _ in range(rng.choice((0, 1, 1, 1, 2))):
            arrival = seq + rng.choice((0, 0, 0, -1, -3, 2, 5))  # reordered, late, early
            if rng.random() > 0.05:  # 5 % lost
                buffer.push(_packet(arrival, ssrc))
            seq += 1
        buffer.pop()
        packets = buffer._packets
        expected = max(packets) - buffer._next + 1 if packets else 0
        assert buffer.delay == expected
