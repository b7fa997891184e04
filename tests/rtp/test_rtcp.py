"""RTCP reports, BYE and round-trip time (RFC 3550 §6)."""

from __future__ import annotations

import random

import pytest
from aiortc.rtp import RtcpByePacket, RtcpPacket, RtcpRrPacket, RtcpSdesPacket, RtcpSrPacket

from voip.rtp import ReceivedSource, RtcpBye, RtcpReport, RtcpSession, RtpSender, ntp_timestamp


def _session(ssrc: int) -> RtcpSession:
    return RtcpSession(RtpSender(ssrc=ssrc), f"user{ssrc}@127.0.0.1", 8000, random.Random(1))


def test_ntp_timestamp_counts_from_1900_in_32_32_fixed_point() -> None:
    assert ntp_timestamp(0.0) == 2208988800 << 32
    assert ntp_timestamp(0.5) & 0xFFFFFFFF == 1 << 31


def test_sender_report_when_rtp_was_sent_since_the_last_report_6_1() -> None:
    rtcp = _session(1)
    rtcp.sender.packet(0, b"x" * 160)
    packets = RtcpPacket.parse(rtcp.report(1.0, 1000.0, 4242, []))
    assert isinstance(packets[0], RtcpSrPacket)
    info = packets[0].sender_info
    assert (info.packet_count, info.octet_count, info.rtp_timestamp) == (1, 160, 4242)
    assert info.ntp_timestamp == ntp_timestamp(1000.0)


def test_receiver_report_when_nothing_was_sent_6_1() -> None:
    rtcp = _session(1)
    rtcp.sender.packet(0, b"x")
    rtcp.report(1.0, 1000.0, 0, [])
    packets = RtcpPacket.parse(rtcp.report(6.0, 1005.0, 0, []))
    assert isinstance(packets[0], RtcpRrPacket)


def test_every_compound_packet_carries_sdes_cname_6_1() -> None:
    rtcp = _session(5)
    packets = RtcpPacket.parse(rtcp.report(1.0, 1000.0, 0, []))
    sdes = packets[1]
    assert isinstance(sdes, RtcpSdesPacket)
    assert sdes.chunks[0].ssrc == 5
    assert sdes.chunks[0].items == [(1, b"user5@127.0.0.1")]


def test_report_block_about_each_received_source() -> None:
    rtcp = _session(1)
    source = ReceivedSource.first(99, 8000, 0)
    for seq in (0, 1, 2, 4):
        source.update_seq(seq)
    packets = RtcpPacket.parse(rtcp.report(1.0, 1000.0, 0, [source]))
    assert isinstance(packets[0], RtcpRrPacket)
    block = packets[0].reports[0]
    assert (block.ssrc, block.packets_lost, block.highest_sequence) == (99, 1, 4)


def test_bye_is_a_compound_packet_starting_with_a_report_6_6() -> None:
    rtcp = _session(3)
    packets = RtcpPacket.parse(rtcp.bye(1.0, []))
    assert [type(p) for p in packets] == [RtcpRrPacket, RtcpSdesPacket, RtcpByePacket]
    bye = packets[2]
    assert isinstance(bye, RtcpByePacket) and bye.sources == [3]


def test_bye_received_is_reported() -> None:
    alice, bob = _session(1), _session(2)
    events = alice.receive(bob.bye(1.0, []), 1.0, 1000.0, {})
    assert RtcpBye((2,)) in events


def test_round_trip_time_from_lsr_and_dlsr_6_4_1() -> None:
    alice, bob = _session(1), _session(2)
    alice.sender.packet(0, b"x")
    bob.sender.packet(0, b"x")
    # bob hears alice's SR at t=10.0 (its monotonic clock), replies 0.25 s later;
    # the network takes 0.05 s each way: alice sends at wall 1000.0, gets the reply at 1000.35
    bob_sources = {1: ReceivedSource.first(1, 8000, 0)}
    bob.receive(alice.report(0.0, 1000.0, 0, []), 10.0, 1000.05, bob_sources)
    reply = bob.report(10.25, 1000.30, 0, list(bob_sources.values()))
    events = alice.receive(reply, 0.35, 1000.35, {})
    report = next(e for e in events if isinstance(e, RtcpReport))
    assert report.sender and report.ssrc == 2
    assert report.round_trip == pytest.approx(0.10, abs=1e-3)
    assert alice.round_trip == report.round_trip


def test_no_round_trip_before_any_sender_report_was_heard() -> None:
    alice, bob = _session(1), _session(2)
    alice.sender.packet(0, b"x")
    bob_sources = {1: ReceivedSource.first(1, 8000, 0)}
    events = alice.receive(bob.report(1.0, 1001.0, 0, list(bob_sources.values())), 1.0, 1001.0, {})
    report = next(e for e in events if isinstance(e, RtcpReport))
    assert report.round_trip is None and report.packets_lost is not None


def test_malformed_rtcp_raises_value_error() -> None:
    with pytest.raises(ValueError):
        _session(1).receive(b"\x80\xc8\x00\x10abc", 0.0, 0.0, {})


def test_report_interval_randomized_around_five_seconds_initial_half_6_2() -> None:
    rtcp = _session(1)
    intervals = [rtcp.interval() for _ in range(200)]
    initial = [rtcp.interval(initial=True) for _ in range(200)]
    assert min(intervals) >= 2.5 and max(intervals) <= 7.5
    assert len({round(i, 3) for i in intervals}) > 100
    assert min(initial) >= 1.25 and max(initial) <= 3.75
