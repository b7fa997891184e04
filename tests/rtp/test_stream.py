"""Media streams on loopback: audio both ways, back-pressure, barge-in, latching, rtcp-mux,
DTMF, inactivity, bad packets. Assertions are on what arrived and on counters, never on
wall-clock time."""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import struct
import time
import warnings
from collections.abc import AsyncIterator, Callable

import pytest
from aiortc.rtp import RtpPacket
from support.peers._process import free_port_range

from sdp import Codec, Direction, NegotiatedMedia
from voip.rtp.clock import MediaClock
from voip.rtp.codecs import PCMU
from voip.rtp.ports import PortAllocator
from voip.rtp.stream import QUEUED_FRAMES, MediaStream

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop


def _media(
    port: int,
    *,
    codec: str = "PCMU",
    direction: Direction = Direction.SENDRECV,
    rtcp_mux: bool = False,
    on_hold: bool = False,
    comfort_noise: bool = False,
    cn_payload_type: int = 13,
) -> NegotiatedMedia:
    payload_type = {"PCMU": 0, "PCMA": 8}[codec]
    cn = (Codec("CN", 8000, payload_type=cn_payload_type),) if comfort_noise else ()
    return NegotiatedMedia(
        index=0,
        media="audio",
        accepted=True,
        proto="RTP/AVP",
        codecs=(Codec(codec, 8000, payload_type=payload_type), *cn),
        direction=direction,
        remote_address="127.0.0.1",
        remote_port=port,
        rtcp_mux=rtcp_mux,
        telephone_event=Codec("telephone-event", 8000, fmtp="0-16", payload_type=101),
        ptime=20,
        on_hold=on_hold,
    )


@pytest.fixture
async def pair() -> AsyncIterator[tuple[MediaStream, MediaStream]]:
    loop = asyncio.get_running_loop()
    low = free_port_range(8)
    allocator = PortAllocator(low, low + 7)
    clock = MediaClock(loop)
    a = MediaStream(allocator.allocate(), clock, inactivity_timeout=0)
    b = MediaStream(allocator.allocate(), clock, inactivity_timeout=0)
    yield a, b
    a.close()
    b.close()
    clock.close()
    assert not allocator.in_use


def _tone(seconds: float, frequency: float = 440.0) -> bytes:
    count = int(8000 * seconds)
    return struct.pack(
        f"<{count}h",
        *(int(8000 * math.sin(2 * math.pi * frequency * n / 8000)) for n in range(count)),
    )


async def _collect(stream: MediaStream, frames: int) -> bytes:
    out = []
    for _ in range(frames):
        out.append(await asyncio.wait_for(stream.read(), 10.0))
    return b"".join(out)


async def test_audio_written_on_one_side_arrives_on_the_other(
    pair: tuple[MediaStream, MediaStream],
) -> None:
    a, b = pair
    a.configure(_media(b.local_port))
    b.configure(_media(a.local_port))
    tone = _tone(1.0)
    writer = asyncio.create_task(a.write(tone))
    received = await _collect(b, 75)
    await writer
    # the tone arrives: find it and compare (G.711 keeps it to about 38 dB), each 20 ms
    # frame at its own best alignment: a loop held up on a busy machine sends the frames
    # after the pause with the timestamps of the time that passed (the clock skipped
    # periods), and the receiver conceals that gap, which shifts the tone after it
    loud = [i for i in range(0, len(received), 320) if audioop.rms(received[i : i + 320], 2) > 3000]
    assert len(loud) >= 40
    best = sorted(
        max(_correlation(received[i : i + 320], tone[k : k + 320]) for k in range(0, 160, 2))
        for i in loud
    )
    assert best[len(best) // 2] > 0.99, best
    assert b.statistics().packets_received >= 70
    assert b.statistics().lost == 0


def _correlation(x: bytes, y: bytes) -> float:
    n = min(len(x), len(y)) // 2
    xs = struct.unpack(f"<{n}h", x[: 2 * n])
    ys = struct.unpack(f"<{n}h", y[: 2 * n])
    sxy = sum(p * q for p, q in zip(xs, ys, strict=True))
    sxx = sum(p * p for p in xs)
    syy = sum(q * q for q in ys)
    return sxy / math.sqrt(sxx * syy) if sxx and syy else 0.0


async def test_both_directions_at_once_pcma(pair: tuple[MediaStream, MediaStream]) -> None:
    a, b = pair
    a.configure(_media(b.local_port, codec="PCMA"))
    b.configure(_media(a.local_port, codec="PCMA"))
    writers = [
        asyncio.create_task(a.write(_tone(0.6, 440))),
        asyncio.create_task(b.write(_tone(0.6, 1000))),
    ]
    at_b, at_a = await asyncio.gather(_collect(b, 40), _collect(a, 40))
    await asyncio.gather(*writers)
    assert audioop.rms(at_b, 2) > 2000 and audioop.rms(at_a, 2) > 2000
    # zero crossings tell the frequencies apart: 1000 Hz crosses ~2.3 times as often
    assert audioop.cross(at_a, 2) > 1.8 * audioop.cross(at_b, 2)


async def test_write_waits_while_the_queue_is_full(pair: tuple[MediaStream, MediaStream]) -> None:
    a, b = pair
    a.configure(_media(b.local_port))
    writer = asyncio.create_task(a.write(_tone(2.0)))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not writer.done()
    assert len(a._outgoing) <= QUEUED_FRAMES
    await writer  # completes as the clock sends
    await a.drain()
    assert a.queued == 0


async def test_flush_drops_queued_audio_and_releases_the_writer(
    pair: tuple[MediaStream, MediaStream],
) -> None:
    a, b = pair
    a.configure(_media(b.local_port))
    writer = asyncio.create_task(a.write(_tone(5.0)))
    await asyncio.sleep(0.05)
    sent = a.stats.packets_sent
    a.flush()
    await asyncio.wait_for(writer, 1.0)  # returns at once instead of after 5 s of audio
    assert a.queued == 0
    assert a.stats.packets_sent - sent < 5 * 50


async def test_slow_producer_yields_silence_never_a_burst(
    pair: tuple[MediaStream, MediaStream],
) -> None:
    a, b = pair
    a.configure(_media(b.local_port))
    b.configure(_media(a.local_port))
    frames = await _collect(b, 10)
    assert frames.count(0) == len(frames)  # nothing written: silence
    assert a.stats.silence_sent >= 10
    assert a.stats.comfort_noise_sent == 0  # CN was not agreed: encoded silence goes
    await a.write(_tone(0.4))
    await a.drain()
    registration = a._registration
    assert registration is not None
    # never more than one packet per period of the clock, however much was queued
    assert a.stats.packets_sent <= registration.n


@pytest.mark.parametrize("cn", [13, 98], ids=["static-13", "dynamic-98"])
async def test_silence_goes_as_cn_at_its_start_and_once_a_second_when_agreed_rfc3389(
    pair: tuple[MediaStream, MediaStream], cn: int
) -> None:
    """On the payload type agreed for CN/8000: the static 13 or a dynamic one."""
    a, _ = pair
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(("127.0.0.1", 0))
        peer.setblocking(False)
        a.configure(_media(peer.getsockname()[1], comfort_noise=True, cn_payload_type=cn))
        while a.stats.silence_sent < 60:  # 1.2 s of silence
            await asyncio.sleep(0.05)
        await a.write(_tone(0.1))
        await a.drain()
        await asyncio.sleep(0.1)
        packets = []
        with contextlib.suppress(BlockingIOError):
            while True:
                packets.append(_rtp_header(peer.recv(2048)))
    kinds = "".join("c" if p[0] == cn else "s" if p[0] == 0 else "?" for p in packets)
    # one CN packet at the start of the silence, one a second after, nothing between; the
    # tone (5 frames); the next silence starts with CN again
    assert kinds == "ccsssssc", kinds
    assert a.stats.comfort_noise_sent == 3
    noise = [p for p in packets if p[0] == cn]
    speech = [p for p in packets if p[0] == 0]
    assert all(payload == b"\x7f" for *_, payload in noise)  # -127 dBov: digital silence
    # the sequence goes on unbroken; the timestamp counts the silence (50 frames of 160),
    # and the periods the clock skipped if the loop was held up (a busy machine): the RTP
    # timestamp keeps to the time that passed
    sequence = [p[2] for p in packets]
    assert sequence == list(range(sequence[0], sequence[0] + len(packets)))
    skipped = a.stats.skipped

    def without_skips(earlier: int, later: int) -> set[int]:
        """The timestamp distance, less any of the skipped periods."""
        return {later - earlier - 160 * n for n in range(skipped + 1)}

    assert 50 * 160 in without_skips(noise[0][3], noise[1][3])
    assert (speech[0][3] - noise[1][3]) % 160 == 0 and speech[0][3] > noise[1][3]
    assert 160 in without_skips(speech[-1][3], noise[2][3])
    # the speech after CN is a new talkspurt: marked (RFC 3551 §4.1), then unmarked
    assert speech[0][1] and not any(p[1] for p in speech[1:])


def _rtp_header(data: bytes) -> tuple[int, bool, int, int, bytes]:
    """Payload type, marker, sequence number, timestamp and payload of an RTP packet."""
    second, sequence, timestamp = struct.unpack_from("!xBHI", data)
    return second & 0x7F, bool(second & 0x80), sequence, timestamp, data[12:]


@pytest.mark.parametrize("cn", [13, 98], ids=["static-13", "dynamic-98"])
async def test_a_peers_cn_silence_is_played_as_comfort_noise_not_as_loss(
    pair: tuple[MediaStream, MediaStream], cn: int
) -> None:
    # a sends CN once a second while it has nothing to say: b fills the time between with
    # noise at the announced level, counting neither loss nor underruns, and plays the
    # speech that follows; CN arrives on the number agreed for it, 13 or a dynamic one
    a, b = pair
    a.configure(_media(b.local_port, comfort_noise=True, cn_payload_type=cn))
    b.configure(_media(a.local_port, comfort_noise=True, cn_payload_type=cn))
    silence = await _collect(b, 60)
    assert audioop.rms(silence, 2) < 10
    assert b.stats.comfort_noise_played >= 50 and b.stats.unknown_payload == 0
    assert b.stats.lost == 0 and b.stats.concealed == 0 and b.stats.underruns == 0
    writer = asyncio.create_task(a.write(_tone(0.6)))
    received = await _collect(b, 40)
    await writer
    assert audioop.rms(received, 2) > 2000  # the tone came through
    # (a frame of it late on a busy machine is concealed as it should be: not checked)
    assert b.stats.lost == 0


async def test_symmetric_rtp_latches_to_where_packets_really_come_from(
    pair: tuple[MediaStream, MediaStream],
) -> None:
    a, b = pair
    wrong = free_port_range(2)  # b was told a wrong port for a (a NAT in between, say)
    a.configure(_media(b.local_port))
    b.configure(_media(wrong))
    await _collect(a, 5)  # b's replies reach a: b latched to a's real address
    assert b.latched == ("127.0.0.1", a.local_port)
    assert a.stats.packets_received > 0


#: RTP of another source (SSRC 1), from somebody else
_INTRUDING = b"\x80\x00\x00\x01" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x01" + b"\xff" * 160


async def test_a_latched_stream_is_connected_to_its_peer_and_hears_nobody_else(
    pair: tuple[MediaStream, MediaStream],
) -> None:
    """Once packets come from the latched address the RTP socket is connected to it: the
    kernel drops what others send, which never reaches the stream (nor its counters)."""
    a, b = pair
    a.configure(_media(b.local_port))
    b.configure(_media(a.local_port))
    await _collect(b, 3)
    assert b.ports.rtp.getpeername() == ("127.0.0.1", a.local_port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as intruder:
        for _ in range(5):
            intruder.sendto(_INTRUDING, ("127.0.0.1", b.local_port))
        await _collect(b, 5)
    assert b.latched == ("127.0.0.1", a.local_port)
    assert b.source is not None and b.source.ssrc == a.sender.ssrc
    assert b.stats.foreign == 0 and b.statistics().ssrc_changes == 0
    assert b.stats.packets_received == a.stats.packets_sent  # all of a's, nothing else


async def test_packets_from_another_address_are_counted_and_dropped_while_latched(
    pair: tuple[MediaStream, MediaStream],
) -> None:
    """What an unconnected socket hands over from elsewhere (the queue when it connects,
    a platform without connected sockets): counted as foreign, not played."""
    a, b = pair
    a.configure(_media(b.local_port))
    b.configure(_media(a.local_port))
    await _collect(b, 3)
    received = b.stats.packets_received
    for _ in range(5):
        b._on_rtp_socket(_INTRUDING, ("127.0.0.1", 9))
    assert b.stats.foreign == 5
    assert b.stats.packets_received == received
    assert b.latched == ("127.0.0.1", a.local_port)


async def test_a_peer_whose_address_changes_is_latched_again_after_a_quiet_second(
    pair: tuple[MediaStream, MediaStream],
) -> None:
    """A NAT rebinding: a's packets suddenly come from another port. The connected socket
    drops them until a's old address has been quiet for RELATCH_AFTER; then the stream
    hears anyone again, latches to the new address and sends its packets there."""
    a, b = pair
    a.configure(_media(b.local_port))
    b.configure(_media(a.local_port))
    await _collect(b, 3)
    assert b.ports.rtp.getpeername() == ("127.0.0.1", a.local_port)
    a.hold()  # a's old port goes quiet
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as moved:
        moved.bind(("127.0.0.1", 0))
        moved.setblocking(False)
        address = moved.getsockname()
        answered = 0
        sequence = 0
        async with asyncio.timeout(10):
            while not answered:
                sequence += 1
                packet = RtpPacket(
                    sequence_number=sequence,
                    timestamp=sequence * 160,
                    ssrc=a.sender.ssrc,
                    payload=b"\xff" * 160,
                )
                moved.sendto(packet.serialize(), ("127.0.0.1", b.local_port))
                await asyncio.sleep(0.02)
                with contextlib.suppress(BlockingIOError):
                    while moved.recv(2048):
                        answered += 1
    assert b.latched == address
    assert b.ports.rtp.getpeername() == address


async def test_malformed_datagrams_are_counted_and_the_stream_goes_on(
    pair: tuple[MediaStream, MediaStream],
) -> None:
    a, b = pair
    a.configure(_media(b.local_port))
    b.configure(_media(a.local_port))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        for junk in (b"", b"\x00", b"\x40" * 12, b"\x80\x00"):
            other.sendto(junk, ("127.0.0.1", b.local_port))
        other.sendto(b"\x81\xc8\x00\x01", ("127.0.0.1", b.local_port + 1))  # truncated RTCP
        await _collect(b, 5)
    assert b.stats.malformed >= 4
    assert b.stats.packets_received >= 3


def _stun_binding_request() -> bytes:
    """RFC 5389 §6: type 0x0001, length 0, the magic cookie, a transaction id."""
    return struct.pack("!HHL", 0x0001, 0, 0x2112A442) + bytes(range(12))


async def test_rtcp_the_toolkit_does_not_use_is_skipped_not_malformed_rfc3550_6_1(
    pair: tuple[MediaStream, MediaStream],
) -> None:
    """An SR, SDES, an XR with VoIP Metrics about our source and an APP, as one compound:
    the SR's report block and the XR's metrics are read, the APP is skipped and counted."""
    a, b = pair
    a.configure(_media(b.local_port))
    b.configure(_media(a.local_port))
    await _collect(b, 2)
    ours = b.sender.ssrc
    block = struct.pack("!LLLLLL", ours, 5, 100, 80, 0, 0)  # 5 lost, jitter 80
    report = struct.pack("!BBHLQLLL", 0x81, 200, 12, 7, 0, 0, 1, 160) + block
    sdes = struct.pack("!BBHL", 0x81, 202, 2, 7) + b"\x01\x01x\x00"
    # RFC 3611 §4.7: BT=7, length 8, SSRC, loss rate 2/256, ..., R 90, MOS-LQ 4.3, MOS-CQ 4.2
    metrics = struct.pack(
        "!BBHL4B4H2b2B4B", 7, 0, 8, ours, 2, 0, 0, 0, *(0,) * 4, 0, 0, 0, 0, 90, 127, 43, 42
    ) + struct.pack("!2B3H", 0, 0, 0, 0, 0)
    xr = struct.pack("!BBHL", 0x80, 207, 10, 7) + metrics
    app = struct.pack("!BBHL", 0x80, 204, 2, 7) + b"test"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.sendto(report + sdes + xr + app, ("127.0.0.1", b.local_port + 1))
        for _ in range(20):
            await _collect(b, 1)
            if b.stats.rtcp_ignored:
                break
    stats = b.statistics()
    assert stats.rtcp_ignored == 1 and stats.malformed == 0
    assert stats.remote_lost == 5 and stats.remote_jitter == pytest.approx(80 / 8000)
    assert stats.remote_metrics is not None
    assert stats.remote_metrics.loss_rate == 2 / 256 and stats.remote_metrics.mos_lq == 4.3


async def test_stun_on_the_media_ports_is_counted_apart_not_malformed_rfc7983_7(
    pair: tuple[MediaStream, MediaStream],
) -> None:
    a, b = pair
    a.configure(_media(b.local_port))
    b.configure(_media(a.local_port))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        for port in (b.local_port, b.local_port + 1):
            peer.sendto(_stun_binding_request(), ("127.0.0.1", port))
        for _ in range(20):
            await _collect(b, 1)
            if b.stats.stun == 2:
                break
    assert b.stats.stun == 2 and b.stats.malformed == 0


async def test_rtcp_mux_reports_arrive_on_the_rtp_port_rfc5761(
    pair: tuple[MediaStream, MediaStream],
) -> None:
    a, b = pair
    for stream in (a, b):
        stream.rtcp.min_interval = 0.1
    a.configure(_media(b.local_port, rtcp_mux=True))
    b.configure(_media(a.local_port, rtcp_mux=True))
    reports = []
    b.events.on("rtcp", reports.append)
    await _collect(b, 25)
    assert b.stats.rtcp_received > 0 and reports
    assert a.remote_rtcp == ("127.0.0.1", b.local_port)


async def test_rtcp_reports_give_round_trip_time(pair: tuple[MediaStream, MediaStream]) -> None:
    a, b = pair
    for stream in (a, b):
        stream.rtcp.min_interval = 0.1
    a.configure(_media(b.local_port))
    b.configure(_media(a.local_port))
    await _collect(a, 40)
    stats = a.statistics()
    assert stats.round_trip is not None and 0 <= stats.round_trip < 1.0
    assert stats.remote_lost == 0


async def test_dtmf_digits_arrive_in_order_once_each(pair: tuple[MediaStream, MediaStream]) -> None:
    a, b = pair
    a.configure(_media(b.local_port))
    b.configure(_media(a.local_port))
    digits: list[str] = []
    b.events.on("dtmf", lambda d: digits.append(d.digit))
    a.send_dtmf("12#9")
    for _ in range(200):
        if len(digits) == 4 and a.stats.dtmf_sent == 4:
            break
        await asyncio.sleep(0.02)
    assert digits == ["1", "2", "#", "9"]
    assert a.stats.dtmf_sent == 4 and b.stats.dtmf_received == 4


async def test_inactivity_is_reported_when_the_peer_stops_sending() -> None:
    loop = asyncio.get_running_loop()
    low = free_port_range(4)
    allocator = PortAllocator(low, low + 3)
    clock = MediaClock(loop)
    silent = allocator.allocate()  # a peer that never sends
    stream = MediaStream(allocator.allocate(), clock, inactivity_timeout=0.2)
    inactive: asyncio.Future[float] = loop.create_future()
    stream.events.on("inactive", lambda s: inactive.done() or inactive.set_result(s))
    stream.configure(_media(silent.port))
    assert await asyncio.wait_for(inactive, 5.0) >= 0.2
    stream.close()
    silent.release()
    assert not allocator.in_use


async def test_a_held_up_loop_is_no_rtp_inactivity_its_silence_is_timed_on_watched_periods(
    pair: tuple[MediaStream, MediaStream],
) -> None:
    # both ends in one process: while the loop is held up neither sends nor reads, so the
    # time it stood still says nothing of the peer; silence counts from when it watches
    a, b = pair
    a.inactivity_timeout = 0.2
    inactive: list[float] = []
    a.events.on("inactive", inactive.append)
    a.configure(_media(b.local_port))
    b.configure(_media(a.local_port))
    await _collect(a, 5)
    for _ in range(3):
        time.sleep(0.5)  # a CPU stall of 25 packet times, longer than the timeout
        await _collect(a, 5)
    assert inactive == [] and a.stats.skipped >= 3 * 20
    b.sending = False  # now the peer falls silent for real
    for _ in range(100):
        if inactive:
            break
        await asyncio.sleep(0.02)
    assert len(inactive) == 1 and inactive[0] > 0.2


async def test_hold_sendonly_peer_stops_our_sending_and_resume_restarts(
    pair: tuple[MediaStream, MediaStream],
) -> None:
    a, b = pair
    a.configure(_media(b.local_port, direction=Direction.RECVONLY, on_hold=True))
    b.configure(_media(a.local_port, direction=Direction.SENDONLY))
    await _collect(a, 5)
    assert a.stats.packets_sent == 0 and not a.sending
    a.configure(_media(b.local_port))
    b.configure(_media(a.local_port))
    await _collect(b, 5)
    assert a.stats.packets_sent > 0


async def test_close_sends_rtcp_bye_and_frees_the_ports(
    pair: tuple[MediaStream, MediaStream],
) -> None:
    a, b = pair
    a.configure(_media(b.local_port))
    b.configure(_media(a.local_port))
    byes = []
    b.events.on("bye", byes.append)
    await _collect(b, 3)
    a.close()
    for _ in range(50):
        if byes:
            break
        await asyncio.sleep(0.01)
    assert byes and a.ports.closed


async def test_a_new_remote_address_from_a_reoffer_moves_the_stream(
    pair: tuple[MediaStream, MediaStream],
) -> None:
    a, b = pair
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as first:
        first.bind(("127.0.0.1", 0))
        first.setblocking(False)
        a.configure(_media(first.getsockname()[1]))
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_recvfrom(first, 2048), 5.0)  # a sends there
        a.configure(_media(b.local_port))  # the re-INVITE names another one
        b.configure(_media(a.local_port))
        await _collect(b, 3)
    assert a.latched == ("127.0.0.1", b.local_port)
    assert b.stats.packets_received >= 3


async def test_a_codec_change_from_a_reoffer_switches_the_payload_type(
    pair: tuple[MediaStream, MediaStream],
) -> None:
    a, b = pair
    a.configure(_media(b.local_port))
    b.configure(_media(a.local_port))
    await _collect(b, 3)
    a.configure(_media(b.local_port, codec="PCMA"))
    assert (a.payload_type, a.codec.name) == (8, "PCMA")
    writer = asyncio.create_task(a.write(_tone(0.5)))
    frames = await _collect(b, 40)
    await writer
    assert audioop.rms(frames, 2) > 1000  # b decodes PCMA by its payload type


async def test_received_frames_iterate_until_the_stream_closes(
    pair: tuple[MediaStream, MediaStream],
) -> None:
    a, b = pair
    a.configure(_media(b.local_port))
    b.configure(_media(a.local_port))
    frames = 0

    async def consume() -> None:
        nonlocal frames
        async for frame in b:
            assert len(frame) == 320
            frames += 1
            if frames == 5:
                b.close()

    await asyncio.wait_for(consume(), 10.0)
    assert frames >= 5


async def test_quality_gives_an_e_model_mos_per_direction_during_the_call(
    pair: tuple[MediaStream, MediaStream],
) -> None:
    a, b = pair
    for stream in (a, b):
        stream.rtcp.min_interval = 0.1
    assert a.quality().received.mos is None  # nothing heard yet
    a.configure(_media(b.local_port))
    b.configure(_media(a.local_port))
    await _collect(a, 40)
    quality = a.quality()
    assert quality.codec == "PCMU"
    assert quality.received.packets >= 30 and quality.received.lost == 0
    # no loss on loopback: G.711 at its best, a little below 93.2 for the playout delay
    assert quality.received.mos is not None and quality.received.mos > 4.3
    assert quality.sent.lost == 0 and quality.sent.mos is not None and quality.sent.mos > 4.3
    a.close()
    after = a.quality()  # still there once the call is over
    assert after.received.packets >= quality.received.packets and after.received.mos is not None


def _pace_rtp(sock: socket.socket, address: tuple[str, int], payloads: list[bytes]) -> None:
    """A peer in another thread (not held up with our loop): one packet per 20 ms on its
    own clock, falling behind rather than bursting when it is late itself."""
    start = time.monotonic()
    n = 0
    while n < len(payloads):
        time.sleep(max(0.0, start + n * 0.02 - time.monotonic()))
        packet = RtpPacket(0, False, n, n * 160, 0x5EED, payloads[n])
        sock.sendto(packet.serialize(), address)
        n += 1
        late = math.floor((time.monotonic() - start) / 0.02) - n
        if late > 0:
            start += late * 0.02


@pytest.fixture
async def fed() -> AsyncIterator[tuple[MediaStream, socket.socket]]:
    """A stream receiving PCMU from a peer socket (which a test drives from a thread)."""
    low = free_port_range(4)
    allocator = PortAllocator(low, low + 3)
    clock = MediaClock(asyncio.get_running_loop())
    peer = allocator.allocate()
    stream = MediaStream(allocator.allocate(), clock, inactivity_timeout=0)
    stream.configure(_media(peer.port))
    yield stream, peer.rtp
    stream.close()
    clock.close()
    peer.release()
    assert not allocator.in_use


def _numbered(count: int) -> tuple[list[bytes], Callable[[bytes], int]]:
    """Payloads each of a different constant value, so each frame names its packet, and
    what names it: the packet number of a decoded frame, or -1 (made up, or silence).
    A frame is known by its last 10 ms: the first one played after a concealment starts
    with a 5 ms cross-fade from it (G.711 Appendix I), and is still that packet's."""
    payloads = [bytes([0x10 + n % 64, 0x10 + n // 64] * 80) for n in range(count)]
    by_tail = {PCMU.decode(payload)[-160:]: n for n, payload in enumerate(payloads)}
    return payloads, lambda frame: by_tail.get(frame[-160:], -1)


async def test_frames_that_come_while_the_loop_is_held_up_are_played_late_not_discarded(
    fed: tuple[MediaStream, socket.socket],
) -> None:
    loop = asyncio.get_running_loop()
    stream, peer = fed
    payloads, packet_of = _numbered(150)
    played: list[int] = []
    stream.add_sink(lambda frame: played.append(packet_of(frame)))
    sender = loop.run_in_executor(None, _pace_rtp, peer, ("127.0.0.1", stream.local_port), payloads)
    for _ in range(3):
        await asyncio.sleep(0.5)
        time.sleep(0.3)  # the loop is held up (a CPU stall) for 15 packet times
    await sender
    await asyncio.sleep(0.5)
    stream.close()
    assert stream.statistics().skipped >= 3 * 10
    assert stream.jitter.counters.discarded == 0
    assert [n for n in played if n >= 0] == list(range(len(payloads)))  # all, in order


def _send_with_a_stall(
    sock: socket.socket,
    address: tuple[str, int],
    payloads: list[bytes],
    *,
    stall_at: int,
    lose: int,
) -> None:
    """A peer whose sender stalls for 10 packet times at ``stall_at`` and then sends what
    was due meanwhile at once, with the timestamps it had; packet ``lose`` never leaves."""
    for n, payload in enumerate(payloads):
        if n == stall_at:
            time.sleep(0.2)
        elif n < stall_at or n > stall_at + 10:
            time.sleep(0.02)
        if n != lose:
            sock.sendto(RtpPacket(0, False, n, n * 160, 0x5EED, payload).serialize(), address)


async def _recorded_both_ways(
    fed: tuple[MediaStream, socket.socket],
    send: Callable[[socket.socket, tuple[str, int]], None],
) -> tuple[list[bytes], list[bytes]]:
    """The frames played out and those on the sender's timeline while ``send`` (run in a
    thread) sends from the peer's socket to the stream."""
    stream, peer = fed
    played: list[bytes] = []
    sent: list[bytes] = []
    stream.add_sink(played.append)
    stream.add_sink(sent.append, timeline="sender")
    address = ("127.0.0.1", stream.local_port)
    await asyncio.get_running_loop().run_in_executor(None, send, peer, address)
    await asyncio.sleep(0.5)
    stream.close()
    return played, sent


async def test_the_sender_timeline_recording_has_every_frame_at_its_timestamp_despite_a_stall(
    fed: tuple[MediaStream, socket.socket],
) -> None:
    stream, _ = fed
    payloads, packet_of = _numbered(120)
    played_frames, sent_frames = await _recorded_both_ways(
        fed, lambda peer, address: _send_with_a_stall(peer, address, payloads, stall_at=40, lose=80)
    )
    counters = stream.jitter.counters
    assert counters.underruns > 0 and counters.lost == 1
    played = [packet_of(frame) for frame in played_frames]
    sent = [packet_of(frame) for frame in sent_frames]
    # played out: the stall's underruns are in it as frames of no packet
    assert played.count(-1) >= counters.lost + counters.underruns
    # on the sender's timeline: frame n is the n-th frame of the recording, the lost one
    # concealed in its place, and nothing of the stall
    assert len(sent) == len(payloads)
    assert all(n in (index, -1) for index, n in enumerate(sent)), sent
    unknown = [index for index, n in enumerate(sent) if n < 0]
    assert 80 in unknown and len(unknown) == counters.lost, unknown
    # the first frame after the stall as decoded: the playout's fade-in after its underrun
    # (G.711 Appendix I) is not the sender's
    assert sent_frames[40] == PCMU.decode(payloads[40])


def _send_burst_then_paced(
    sock: socket.socket, address: tuple[str, int], payloads: list[bytes], burst: int
) -> None:
    """A peer that sends its first ``burst`` packets at once (as a sender that started
    before its answer came might), then one per 20 ms."""
    for n, payload in enumerate(payloads):
        if n >= burst:
            time.sleep(0.02)
        sock.sendto(RtpPacket(0, False, n, n * 160, 0x5EED, payload).serialize(), address)


async def test_frames_the_playout_discards_to_shrink_its_delay_stay_on_the_sender_timeline(
    fed: tuple[MediaStream, socket.socket],
) -> None:
    stream, _ = fed
    payloads, packet_of = _numbered(150)
    played_frames, sent_frames = await _recorded_both_ways(
        fed, lambda peer, address: _send_burst_then_paced(peer, address, payloads, 12)
    )
    counters = stream.jitter.counters
    assert counters.discarded > 0 and counters.lost == 0
    played = {packet_of(frame) for frame in played_frames}
    # the playout left out what it discarded; the sender's timeline has every frame, each
    # at its place
    assert len(set(range(len(payloads))) - played) >= counters.discarded
    assert [packet_of(frame) for frame in sent_frames] == list(range(len(payloads)))


@pytest.mark.parametrize("buffer", [bytearray, lambda pcm: memoryview(bytearray(pcm))])
async def test_pcm_written_from_a_buffer_is_sent_as_from_bytes(
    pair: tuple[MediaStream, MediaStream], buffer: Callable[[bytes], bytearray | memoryview]
) -> None:
    # A bot's audio may come in a buffer it fills (a bytearray, a memoryview of an array):
    # the compiled stream checks write()'s declared argument type at run time.
    a, b = pair
    a.configure(_media(b.local_port))
    b.configure(_media(a.local_port))
    tone = _tone(0.2)
    await a.write(buffer(tone))
    received = await _collect(b, 30)
    loud = [i for i in range(0, len(received), 320) if audioop.rms(received[i : i + 320], 2) > 3000]
    assert len(loud) >= 8
    assert a.statistics().packets_sent >= 10
