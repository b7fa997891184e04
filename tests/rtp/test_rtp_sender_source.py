"""RTP sending state and reception statistics (RFC 3550 §5.1, §6.4.1, Appendix A)."""

from __future__ import annotations

from aiortc.rtp import RtpPacket

from voip.rtp import ReceivedSource, RtpSender


def test_sequence_number_increments_by_one_per_packet_and_wraps() -> None:
    sender = RtpSender(ssrc=7, sequence_number=0xFFFE, timestamp=0)
    seqs = []
    for _ in range(4):
        seqs.append(RtpPacket.parse(sender.packet(0, b"\xff" * 160)).sequence_number)
        sender.advance(160)
    assert seqs == [0xFFFE, 0xFFFF, 0, 1]


def test_timestamp_advances_by_samples_and_wraps_modulo_2_32() -> None:
    sender = RtpSender(ssrc=7, sequence_number=0, timestamp=0xFFFFFFA0)
    stamps = []
    for _ in range(3):
        stamps.append(RtpPacket.parse(sender.packet(0, b"x")).timestamp)
        sender.advance(160)
    assert stamps == [0xFFFFFFA0, 0x40, 0xE0]


def test_marker_set_on_first_packet_of_a_talkspurt_only() -> None:
    sender = RtpSender()
    markers = [RtpPacket.parse(sender.packet(0, b"x")).marker for _ in range(3)]
    sender.talkspurt = True
    markers.append(RtpPacket.parse(sender.packet(0, b"x")).marker)
    assert markers == [1, 0, 0, 1]


def test_ssrc_and_payload_type_carried_and_counts_kept_for_sender_report() -> None:
    sender = RtpSender(ssrc=0xDEADBEEF)
    packet = RtpPacket.parse(sender.packet(8, b"abc"))
    sender.packet(8, b"defg")
    assert (packet.ssrc, packet.payload_type, packet.payload) == (0xDEADBEEF, 8, b"abc")
    assert (sender.packet_count, sender.octet_count) == (2, 7)


def test_explicit_timestamp_for_telephone_events_leaves_clock_alone() -> None:
    sender = RtpSender(timestamp=1000)
    packet = RtpPacket.parse(sender.packet(101, b"\x01\x0a\x00\xa0", timestamp=500))
    assert packet.timestamp == 500 and sender.timestamp == 1000


def test_random_initial_state_differs_between_senders() -> None:
    senders = [RtpSender() for _ in range(8)]
    assert len({(s.ssrc, s.sequence_number, s.timestamp) for s in senders}) == 8


def _received(seqs: list[int]) -> ReceivedSource:
    source = ReceivedSource.first(1, 8000, seqs[0])
    for seq in seqs:
        source.update_seq(seq)
    return source


def test_source_valid_after_two_sequential_packets_a1() -> None:
    source = ReceivedSource.first(1, 8000, 100)
    assert source.update_seq(100) is False  # on probation
    assert source.update_seq(101) is True
    assert source.received == 1 and source.base_seq == 101


def test_loss_is_expected_minus_received_a3() -> None:
    source = _received([10, 11, 12, 14, 15, 18, 19])
    assert source.expected == 9  # 11..19
    assert source.received == 6
    assert source.lost == 3


def test_sequence_wrap_counts_a_cycle() -> None:
    source = _received([65534, 65535, 0, 1])
    assert source.cycles == 1 << 16
    assert source.extended_max == (1 << 16) + 1
    assert source.lost == 0


def test_large_jump_needs_a_second_packet_then_resyncs_a1() -> None:
    source = _received([10, 11, 12])
    assert source.update_seq(40000) is False
    assert source.update_seq(40001) is True
    assert source.base_seq == 40001 and source.lost == 0


def test_reordered_packet_counts_as_received_without_moving_max() -> None:
    source = _received([10, 11, 13, 12, 14])
    assert source.max_seq == 14 and source.lost == 0


def test_jitter_zero_for_perfectly_paced_packets_a8() -> None:
    source = ReceivedSource(1, 8000)
    for n in range(50):
        source.update_jitter(n * 0.02, 1000 + n * 160)
    assert source.jitter < 1e-9


def test_jitter_follows_the_a8_recursion() -> None:
    source = ReceivedSource(1, 8000)
    arrivals = [0.0, 0.025, 0.035, 0.065]  # 20 ms packets, D = 40, 80, 80 samples
    for n, arrival in enumerate(arrivals):
        source.update_jitter(arrival, n * 160)
    expected = 0.0
    for d in (40, 80, 80):
        expected += (d - expected) / 16
    assert abs(source.jitter - expected) < 1e-9
    assert abs(source.jitter_seconds - expected / 8000) < 1e-12


def test_report_block_fraction_lost_per_interval_and_cumulative_loss() -> None:
    source = _received([0, 1, 2, 3, 5, 6, 7, 9])  # 1..9 expected, 4 and 8 lost
    block = source.report_block(now=10.0)
    assert block.fraction_lost == (2 << 8) // 9
    assert block.packets_lost == 2
    assert block.highest_sequence == 9
    for seq in range(10, 20):
        source.update_seq(seq)
    second = source.report_block(now=15.0)
    assert second.fraction_lost == 0  # nothing lost in this interval
    assert second.packets_lost == 2


def test_report_block_dlsr_is_delay_since_last_sender_report() -> None:
    source = _received([0, 1])
    source.sender_report(0x0001_2345_6789_0000, arrival=3.0)
    block = source.report_block(now=4.5)
    assert block.lsr == 0x2345_6789
    assert block.dlsr == int(1.5 * 65536)
