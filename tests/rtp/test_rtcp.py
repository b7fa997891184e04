"""RTCP reports, BYE and round-trip time (RFC 3550 §6)."""

from __future__ import annotations

import random
import struct

import pytest
from aiortc.rtp import RtcpByePacket, RtcpPacket, RtcpRrPacket, RtcpSdesPacket, RtcpSrPacket

from voip.rtp import ReceivedSource, RtcpBye, RtcpReport, RtcpSession, RtpSender, ntp_timestamp
from voip.rtp.rtcp import RtcpIgnored, VoipMetrics, compound_packets


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


# --- packets the toolkit does not use (RFC 3550 §6.1) and RTCP XR (RFC 3611), byte by byte ---

PEER, OURS = 0x0BADCAFE, 1


def _header(packet_type: int, count: int, body: bytes, padding: bool = False) -> bytes:
    """§6.4.1 common header: V=2, P, count, PT, length in 32-bit words minus one."""
    assert len(body) % 4 == 0
    first = 0x80 | (0x20 if padding else 0) | count
    return struct.pack("!BBH", first, packet_type, len(body) // 4) + body


def _sender_report(ntp: int, blocks: bytes = b"", count: int = 0, extension: bytes = b"") -> bytes:
    """§6.4.1 SR: SSRC, NTP (64), RTP timestamp, packet and octet counts, report blocks,
    then a profile-specific extension."""
    info = struct.pack("!LQLLL", PEER, ntp, 1234, 50, 8000)
    return _header(200, count, info + blocks + extension)


def _report_block(ssrc: int, fraction: int, lost: int, jitter: int) -> bytes:
    """§6.4.1 report block: SSRC, fraction lost (8) and cumulative lost (24), highest
    sequence, jitter, LSR, DLSR."""
    return struct.pack("!LLLLLL", ssrc, fraction << 24 | lost, 100, jitter, 0, 0)


def _sdes() -> bytes:
    """§6.5: one chunk, CNAME and TOOL items (§6.5.6), END, padded to 32 bits (as linphone
    sends it)."""
    items = b"\x01\x12sip:dave@127.0.0.1" + b"\x06\x10Linphonec/5.1.65" + b"\x00\x00"
    return _header(202, 1, struct.pack("!L", PEER) + items)


def _voip_metrics(ssrc: int, loss: int, discard: int, *, r: int, mos_lq: int, mos_cq: int) -> bytes:
    """RFC 3611 §4.7 block: BT=7, block length 8, SSRC of source, loss and discard rates,
    burst and gap densities and durations, round trip and end system delays, signal,
    noise, RERL, Gmin, R factor, ext. R factor, MOS-LQ, MOS-CQ, RX config, JB fields."""
    return (
        struct.pack("!BBH", 7, 0, 8)
        + struct.pack("!LBBBB", ssrc, loss, discard, 0, 0)
        + struct.pack("!HHHH", 0, 0, 10, 40)
        + struct.pack("!bbBB", -20, -70, 127, 16)
        + bytes((r, 127, mos_lq, mos_cq))
        + struct.pack("!BBHHH", 0, 0, 40, 80, 200)
    )


def _receiver_reference_time() -> bytes:
    """RFC 3611 §4.4 block: BT=4, block length 2, an NTP timestamp."""
    return struct.pack("!BBHQ", 4, 0, 2, 0x0123456789ABCDEF)


def _extended_report(*blocks: bytes) -> bytes:
    """RFC 3611 §2: PT=207, the sender's SSRC, report blocks."""
    return _header(207, 0, struct.pack("!L", PEER) + b"".join(blocks))


def _sources() -> dict[int, ReceivedSource]:
    return {PEER: ReceivedSource.first(PEER, 8000, 0)}


def test_compound_sr_sdes_xr_keeps_the_sender_reports_effect_rfc3550_6_1() -> None:
    rtcp, sources = _session(OURS), _sources()
    ntp = ntp_timestamp(1000.0)
    data = (
        _sender_report(ntp, _report_block(OURS, 64, 7, 160), count=1)
        + _sdes()
        + _extended_report(_receiver_reference_time())
    )
    events = rtcp.receive(data, 5.0, 1000.0, sources)
    report = next(e for e in events if isinstance(e, RtcpReport))
    assert report.sender and report.ssrc == PEER
    assert report.fraction_lost == 0.25 and report.packets_lost == 7
    assert report.jitter == pytest.approx(160 / 8000)
    assert RtcpIgnored(207) in events  # an XR with no VoIP Metrics is skipped
    # the SR's NTP timestamp is the LSR of our next report about the peer (§6.4.1)
    assert sources[PEER].report_block(5.0).lsr == (ntp >> 16) & 0xFFFFFFFF


def test_xr_voip_metrics_about_our_source_is_the_peers_view_rfc3611_4_7() -> None:
    rtcp = _session(OURS)
    data = _sender_report(ntp_timestamp(1000.0)) + _sdes()
    data += _extended_report(
        _receiver_reference_time(), _voip_metrics(OURS, 13, 3, r=88, mos_lq=41, mos_cq=40)
    )
    events = rtcp.receive(data, 5.0, 1000.0, _sources())
    metrics = next(e for e in events if isinstance(e, VoipMetrics))
    assert metrics == VoipMetrics(OURS, 13 / 256, 3 / 256, 88, 4.1, 4.0)
    assert not any(isinstance(e, RtcpIgnored) for e in events)


def test_xr_voip_metrics_127_is_unavailable_rfc3611_4_7_5() -> None:
    rtcp = _session(OURS)
    data = _sender_report(0) + _extended_report(
        _voip_metrics(OURS, 0, 0, r=127, mos_lq=127, mos_cq=127)
    )
    metrics = next(e for e in rtcp.receive(data, 0.0, 0.0, {}) if isinstance(e, VoipMetrics))
    assert (metrics.r_factor, metrics.mos_lq, metrics.mos_cq) == (None, None, None)


def test_xr_voip_metrics_about_another_source_is_ignored() -> None:
    data = _sender_report(0) + _extended_report(
        _voip_metrics(OURS + 1, 0, 0, r=90, mos_lq=42, mos_cq=41)
    )
    events = _session(OURS).receive(data, 0.0, 0.0, {})
    assert RtcpIgnored(207) in events
    assert not any(isinstance(e, VoipMetrics) for e in events)


def test_app_and_feedback_packets_are_skipped_and_the_rest_read_rfc3550_6_1() -> None:
    app = _header(204, 1, struct.pack("!L", PEER) + b"abcd" + b"\x00" * 8)  # §6.7
    nack = _header(205, 1, struct.pack("!LLHH", PEER, OURS, 17, 0b101))  # RFC 4585 §6.2.1
    pli = _header(206, 1, struct.pack("!LL", PEER, OURS))  # RFC 4585 §6.3.1
    unknown = _header(195, 0, b"\x00" * 8)  # well-formed, of a type nobody defined here
    receiver_report = _header(201, 1, struct.pack("!L", PEER) + _report_block(OURS, 0, 3, 8))
    data = receiver_report + _sdes() + app + nack + pli + unknown
    events = _session(OURS).receive(data, 0.0, 0.0, {})
    assert [e for e in events if isinstance(e, RtcpIgnored)] == [
        RtcpIgnored(204),
        RtcpIgnored(205),
        RtcpIgnored(206),
        RtcpIgnored(195),
    ]
    report = next(e for e in events if isinstance(e, RtcpReport))
    assert not report.sender and report.packets_lost == 3


def test_a_report_with_a_profile_specific_extension_is_read_rfc3550_6_4_1() -> None:
    data = _sender_report(0, _report_block(OURS, 0, 2, 0), count=1, extension=b"\xee" * 8)
    events = _session(OURS).receive(data, 0.0, 0.0, {})
    assert [e.packets_lost for e in events if isinstance(e, RtcpReport)] == [2]


def test_a_padded_xr_is_read_up_to_its_padding_rfc3550_6_4_1() -> None:
    body = (
        struct.pack("!L", PEER)
        + _voip_metrics(OURS, 26, 0, r=80, mos_lq=39, mos_cq=38)
        + b"\x00\x00\x00\x04"
    )
    data = _sender_report(0) + _header(207, 0, body, padding=True)
    events = _session(OURS).receive(data, 0.0, 0.0, {})
    assert any(isinstance(e, VoipMetrics) and e.loss_rate == 26 / 256 for e in events)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x40\xc8\x00\x00" + b"\x00" * 4, id="version 1"),
        pytest.param(b"\x80\xc9\x00\x05" + b"\x00" * 4, id="length past the datagram"),
        pytest.param(b"\x80\xc9\x00\x01" + b"\x00" * 4 + b"\x80\xc9", id="header truncated"),
        pytest.param(b"\x80\x60\x00\x01" + b"\x00" * 4, id="type 96 outside 192..223"),
        pytest.param(
            _header(207, 0, struct.pack("!LBBH", PEER, 7, 0, 8) + b"\x00" * 8),
            id="xr block past its packet",
        ),
    ],
)
def test_a_datagram_that_is_no_compound_of_well_formed_packets_is_malformed(data: bytes) -> None:
    with pytest.raises(ValueError):
        _session(OURS).receive(data, 0.0, 0.0, {})


def test_a_malformed_compound_takes_no_effect_rfc3550_a_2() -> None:
    sources = _sources()
    data = _sender_report(ntp_timestamp(1000.0)) + b"\x80\xca\x00\x09"  # SDES past the end
    with pytest.raises(ValueError):
        _session(OURS).receive(data, 5.0, 1000.0, sources)
    assert sources[PEER].report_block(5.0).lsr == 0


def test_a_compound_splits_on_each_common_headers_length_rfc3550_6_4_1() -> None:
    sr, sdes, xr = _sender_report(0), _sdes(), _extended_report(_receiver_reference_time())
    assert compound_packets(sr + sdes + xr) == [(200, sr), (202, sdes), (207, xr)]


def test_sdes_items_are_read_whole() -> None:
    """No report block count cuts an SDES short (a 44-octet chunk of linphone's)."""
    events = _session(OURS).receive(_sender_report(0) + _sdes(), 0.0, 0.0, {})
    assert [type(e) for e in events] == [RtcpReport]
