"""linphonec (liblinphone 5.1) registered at Kamailio, calling the toolkit and called by it,
with speech both ways scored against its source.

linphonec runs in file mode (``[sound] use_files=1``): ``play FILE`` is what it sends into
the call, ``record FILE`` what it writes of the call it receives (48 kHz WAV). The toolkit
is registered at the same Kamailio, so every request goes through it (digest auth,
record-routing). Each recording is aligned with its source and scored: correlation and
PESQ (ITU-T P.862, narrowband).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from support.peers import Kamailio, Linphone
from support.quality import PLAYOUT_DRIFT, play_speech, read_recording, score, until_recorded
from support.ua import answer_calls, media_of

from sdp import Direction
from voip.call import Call, CallState
from voip.rtp import read_wav

TIMEOUT = 15.0
SECONDS = 6.0
# what the toolkit hears of linphone: measured 4.08 to 4.17 (PCMA, loopback)
PESQ_TARGET = 4.0
# what linphone records of the toolkit goes through linphone's adaptive playout: 4.07 to
# 4.22 on a quiet machine, 3.55 and 3.28 on busy ones when the playout delay moved
# mid-call (each second's own alignment still correlated 0.9999,
# Score.windowed_correlation); linphone records nothing before its playout
LINPHONE_PESQ_FLOOR = 3.0
# the toolkit scores what it decoded, on linphone's timeline (``timeline="sender"``); what
# it played out must carry the same speech, its delay free to move by PLAYOUT_DRIFT


async def _talk(call: Call, speech: bytes, recording: Path) -> None:
    """Speech into ``call`` while recording what comes back, until SECONDS of it: as
    decoded, on linphone's timeline (``recording``), and as played out (:func:`_played`)."""
    media = media_of(call)
    played = media.record(_played(recording))
    recorder = media.record(recording, timeline="sender")
    await play_speech(media, speech)
    await asyncio.wait_for(until_recorded(recorder, SECONDS * 8000), TIMEOUT)
    recorder.close()
    played.close()


def _played(recording: Path) -> Path:
    return recording.with_suffix(".played.wav")


def assert_speech_both_ways(speech_wav: Path, toolkit_heard: Path, linphone_heard: Path) -> None:
    """What the toolkit heard is linphone's file, what linphone heard is the toolkit's
    speech: SECONDS of each, aligned and scored."""
    speech = read_wav(speech_wav)[: int(2 * 8000 * SECONDS)]
    source = read_wav(speech_wav)[: int(2 * 8000 * (SECONDS + 20))]
    heard = score(source, read_recording(toolkit_heard))
    played = score(source, read_recording(_played(toolkit_heard)), drift=PLAYOUT_DRIFT)
    sent = score(speech, read_wav(linphone_heard))  # linphone records at 48 kHz
    print(f"linphone -> toolkit {heard} (played out {played}), toolkit -> linphone {sent}")
    assert heard.seconds >= SECONDS - 0.5 and sent.seconds >= SECONDS - 0.5
    assert heard.correlation > 0.9 and heard.windowed_correlation > 0.95, heard
    assert played.windowed_correlation > 0.95, played
    # the overall correlation of linphone's recording falls (0.85) when its playout delay
    # moves; each second's own alignment shows the speech intact
    assert sent.windowed_correlation > 0.95, sent
    assert heard.pesq >= PESQ_TARGET, heard
    assert sent.pesq >= LINPHONE_PESQ_FLOOR, sent


@pytest.fixture
def dave(
    kamailio: Kamailio, linphone_factory: Callable[..., Linphone], speech_wav: Path
) -> Linphone:
    """linphonec registered at Kamailio as dave, sending the speech file into its calls."""
    phone = linphone_factory("dave", registrar=kamailio)
    phone.play(speech_wav)
    return phone


@asynccontextmanager
async def call_to(dave: Linphone, kamailio: Kamailio, agent: Any) -> AsyncIterator[Call]:
    """A call from the toolkit (alice, at Kamailio) to dave, once linphone says it is up;
    hung up at the end if still up, and seen closed by linphone."""
    async with agent("alice") as ua:
        call: Call = await asyncio.wait_for(ua.call(kamailio.aor("dave")), TIMEOUT)
        await dave.wait_established()
        yield call
        if call.state is not CallState.ENDED:
            await asyncio.wait_for(call.hangup(), TIMEOUT)
        await dave.wait_closed()


async def test_linphone_calls_the_toolkit_through_kamailio_and_speech_goes_both_ways(
    kamailio: Kamailio,
    agent: Callable[..., object],
    dave: Linphone,
    speech_wav: Path,
    tmp_path: Path,
) -> None:
    toolkit_heard, linphone_heard = tmp_path / "toolkit.wav", tmp_path / "linphone.wav"
    async with agent("carol") as ua:  # type: ignore[attr-defined]
        calls = answer_calls(ua)
        await asyncio.wait_for(ua.register(kamailio.uri(), expires=300), TIMEOUT)
        dave.record(linphone_heard)
        dave.call(kamailio.aor("carol"))
        call: Call = await asyncio.wait_for(calls.get(), TIMEOUT)
        await dave.wait_established()
        assert call.invite is not None and "dave" in str(call.invite.from_.uri)
        assert len(call.invite.via) == 2  # through Kamailio
        await _talk(call, read_wav(speech_wav)[: int(2 * 8000 * SECONDS)], toolkit_heard)
        stats = media_of(call).statistics()
        await asyncio.wait_for(call.hangup(), TIMEOUT)  # BYE from the toolkit
        await dave.wait_closed()
    assert stats.packets_received >= SECONDS * 50 * 0.9 and stats.lost == 0
    # linphone's STUN binding requests to both media ports (sent without ICE, every 0.5 s
    # to the RTCP port at the start of a call) are told apart (RFC 7983 §7), not counted
    # malformed. (It sends no RTCP XR unless both sides put a=rtcp-xr, RFC 3611 §5.1, in
    # their SDP, which the toolkit does not; its first SR+SDES may come after this call.)
    assert stats.stun > 0 and stats.malformed == 0
    assert_speech_both_ways(speech_wav, toolkit_heard, linphone_heard)


async def test_the_toolkit_calls_linphone_through_kamailio_and_speech_goes_both_ways(
    kamailio: Kamailio,
    agent: Callable[..., object],
    dave: Linphone,
    speech_wav: Path,
    tmp_path: Path,
) -> None:
    toolkit_heard, linphone_heard = tmp_path / "toolkit.wav", tmp_path / "linphone.wav"
    dave.record(linphone_heard)
    async with call_to(dave, kamailio, agent) as call:
        assert call.agreed[0].codecs[0].name in ("PCMA", "PCMU")
        await _talk(call, read_wav(speech_wav)[: int(2 * 8000 * SECONDS)], toolkit_heard)
        dave.terminate()  # BYE from linphone
        reason = await asyncio.wait_for(call.ended(), TIMEOUT)
        assert reason.by == "remote"
    assert_speech_both_ways(speech_wav, toolkit_heard, linphone_heard)


async def test_a_call_with_linphone_through_kamailio_is_held_and_resumed_from_each_side(
    kamailio: Kamailio, agent: Callable[..., object], dave: Linphone
) -> None:
    async with call_to(dave, kamailio, agent) as call:
        await asyncio.wait_for(call.hold(), TIMEOUT)
        assert call.agreed[0].direction in (Direction.SENDONLY, Direction.INACTIVE)
        await asyncio.wait_for(call.resume(), TIMEOUT)
        assert call.agreed[0].direction is Direction.SENDRECV

        held, resumed = asyncio.Event(), asyncio.Event()
        call.on("hold", held.set)
        call.on("resume", resumed.set)
        mark = dave.log_mark()
        dave.command("pause")
        await asyncio.wait_for(held.wait(), TIMEOUT)
        await dave.wait_for(r"Call \d+ with \S+ is now paused", since=mark)
        assert call.agreed[0].direction in (Direction.RECVONLY, Direction.INACTIVE)
        dave.command("resume")
        await asyncio.wait_for(resumed.wait(), TIMEOUT)
        assert call.agreed[0].direction is Direction.SENDRECV
        received = media_of(call).statistics().packets_received
        await asyncio.sleep(1.0)
        assert media_of(call).statistics().packets_received > received + 25  # audio again


async def test_rfc_4733_digits_go_both_ways_between_linphone_and_the_toolkit(
    kamailio: Kamailio, agent: Callable[..., object], dave: Linphone
) -> None:
    async with call_to(dave, kamailio, agent) as call:
        digits: asyncio.Queue[str] = asyncio.Queue()
        call.on("dtmf", lambda event: digits.put_nowait(event.digit))
        for digit in "19#":  # linphonec sends a digit typed alone during a call
            dave.command(digit)
            await asyncio.sleep(0.5)
        got = [await asyncio.wait_for(digits.get(), TIMEOUT) for _ in range(3)]
        assert got == ["1", "9", "#"]
        assert media_of(call).statistics().dtmf_received == 3
        mark = dave.log_mark()
        media_of(call).send_dtmf("42*")
        tones = await dave.wait_for(
            r"(?s)Receiving tone (.) from .*tone (.) from .*tone (.) from ", since=mark
        )
        assert tones.groups() == ("4", "2", "*")
