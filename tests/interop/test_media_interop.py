"""Audio through real calls with baresip, scored against its source, and DTMF from SIPp.

The toolkit plays espeak-ng speech into a call and baresip's ``sndfile`` module records what
it decoded; baresip's ``aufile`` plays the same speech and the toolkit records it. Each
recording is aligned with its source and scored: correlation and PESQ (ITU-T P.862,
narrowband). The issue's target on clean loopback is PESQ ≥ 4.0 for PCMU and PCMA.
SIPp plays its bundled RFC 4733 pcaps into a call and the toolkit reports the digits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from support.peers import Baresip, Sipp
from support.quality import finished_recording, read_recording, score

from voip.call import Call
from voip.rtp import CallMedia, read_wav
from voip.useragent import UserAgent

TIMEOUT = 15.0
SECONDS = 8.0
PESQ_TARGET = 4.0


def _media(call: Call) -> CallMedia:
    assert call.media is not None
    return call.media


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
async def test_speech_the_toolkit_plays_reaches_baresip_with_pesq_4(
    codec: str, speech_wav: Path, baresip_factory: Callable[..., Baresip]
) -> None:
    bob = baresip_factory("bob", codecs=(codec,))
    speech = read_wav(speech_wav)[: int(2 * 8000 * SECONDS)]
    async with UserAgent("alice") as ua:
        await ua.listen("udp", "127.0.0.1", 0)
        call = await asyncio.wait_for(ua.call(bob.uri()), TIMEOUT)
        assert call.agreed[0].codecs[0].name == codec
        await bob.wait_established()
        media = _media(call)
        await media.write(bytes(1600))  # a moment of silence first
        await media.write(speech)
        await media.drain()
        await media.write(bytes(8000))
        await media.drain()
        stats = media.statistics()
        await call.hangup()
        await bob.wait_closed()
    assert stats.silence_sent < 10  # the producer kept up: the speech went out unbroken
    recordings = bob.received_recordings()
    assert recordings, "baresip wrote no *-dec.wav"
    result = score(speech, await finished_recording(recordings[-1]))
    assert result.seconds >= SECONDS - 0.5
    assert result.correlation > 0.95, result
    assert result.pesq >= PESQ_TARGET, result


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
async def test_speech_baresip_plays_is_recorded_by_the_toolkit_with_pesq_4(
    codec: str, speech_wav: Path, baresip_factory: Callable[..., Baresip], tmp_path: Path
) -> None:
    bob = baresip_factory("bob", codecs=(codec,))
    source = read_wav(speech_wav)[: int(2 * 8000 * (SECONDS + 10))]
    recording = tmp_path / "received.wav"
    async with UserAgent("alice") as ua:
        await ua.listen("udp", "127.0.0.1", 0)
        call = await asyncio.wait_for(ua.call(bob.uri()), TIMEOUT)
        recorder = _media(call).record(recording)
        while recorder.samples < SECONDS * 8000:
            await asyncio.sleep(0.1)
        stats = _media(call).statistics()
        await call.hangup()
    assert stats.packets_received >= SECONDS * 50 * 0.9
    assert stats.lost == 0 and stats.late == 0
    result = score(source, read_recording(recording))
    assert result.seconds >= SECONDS - 0.5
    assert result.correlation > 0.95, result
    assert result.pesq >= PESQ_TARGET, result


async def test_rfc4733_digits_from_sipp_arrive_in_order_and_complete(sipp: Sipp) -> None:
    async with UserAgent("alice") as ua:
        endpoint = await ua.listen("udp", "127.0.0.1", 0)
        digits: list[str] = []
        ended: asyncio.Queue[Call] = asyncio.Queue()

        async def answer(call: Call) -> None:
            call.on("dtmf", lambda digit: digits.append(digit.digit))
            call.on("ended", lambda _: ended.put_nowait(call))
            await call.accept()

        ua.on("incoming_call", answer)
        result = await sipp.run(
            "uac_call_dtmf", (endpoint.host, endpoint.port), service="alice", timeout=20
        )
        assert result.ok, result.report()
        call = await asyncio.wait_for(ended.get(), TIMEOUT)
    assert digits == ["1", "5", "9", "#"]
    assert _media(call).statistics().dtmf_received == 4
