"""RFC 4733 telephone events: payload, sending with end redundancy, receiving into digits."""

from __future__ import annotations

import pytest

from voip.rtp import DtmfDigit, DtmfReceiver, DtmfSender, TelephoneEvent


def test_payload_layout_2_3() -> None:
    event = TelephoneEvent(event=11, end=True, volume=10, duration=800)
    assert bytes(event) == b"\x0b\x8a\x03\x20"
    assert TelephoneEvent.parse(b"\x0b\x8a\x03\x20") == event
    assert event.digit == "#"


def test_short_payload_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        TelephoneEvent.parse(b"\x01\x02")


def _packets(sender: DtmfSender) -> list[tuple[TelephoneEvent, bool, int]]:
    out = []
    while not sender.done:
        packet = sender.next_packet()
        out.append((TelephoneEvent.parse(packet.payload), packet.marker, packet.timestamp))
    return out


def test_event_packets_share_the_start_timestamp_and_grow_in_duration_2_5_1() -> None:
    packets = _packets(DtmfSender("5", 1234, duration=800, samples_per_packet=160))
    assert {ts for _, _, ts in packets} == {1234}
    assert [event.duration for event, _, _ in packets] == [160, 320, 480, 640, 800, 800, 800]
    assert [marker for _, marker, _ in packets] == [True] + [False] * 6


def test_final_packet_sent_three_times_with_end_bit_2_5_1_4() -> None:
    packets = _packets(DtmfSender("A", 0, duration=480, samples_per_packet=160))
    assert [event.end for event, _, _ in packets] == [False, False, True, True, True]
    assert {event.event for event, _, _ in packets} == {12}


def test_not_a_digit_is_refused() -> None:
    with pytest.raises(ValueError):
        DtmfSender("x", 0, duration=800, samples_per_packet=160)


def test_receiver_reports_each_digit_once_despite_end_redundancy() -> None:
    receiver = DtmfReceiver(8000)
    digits = []
    for digit, start in (("1", 0), ("2", 2000), ("#", 4000)):
        sender = DtmfSender(digit, start, duration=800, samples_per_packet=160)
        while not sender.done:
            packet = sender.next_packet()
            got = receiver.receive(packet.payload, packet.timestamp)
            if got is not None:
                digits.append(got)
    assert [d.digit for d in digits] == ["1", "2", "#"]
    assert digits[0] == DtmfDigit("1", 0, 0.1)


def test_digit_whose_end_packets_were_all_lost_is_reported_when_the_next_begins() -> None:
    receiver = DtmfReceiver(8000)
    assert receiver.receive(bytes(TelephoneEvent(7, False, 10, 160)), 100) is None
    assert receiver.receive(bytes(TelephoneEvent(7, False, 10, 320)), 100) is None
    got = receiver.receive(bytes(TelephoneEvent(8, False, 10, 160)), 2000)
    assert got is not None and got.digit == "7"
    got = receiver.receive(bytes(TelephoneEvent(8, True, 10, 800)), 2000)
    assert got is not None and got.digit == "8"


def test_non_dtmf_events_are_ignored() -> None:
    receiver = DtmfReceiver(8000)
    assert receiver.receive(bytes(TelephoneEvent(32, True, 10, 800)), 0) is None  # answer tone
