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
from support.quality import LINPHONE_SECONDS, assert_speech_both_ways, talk_with_linphone
from support.ua import answer_calls, media_of

from sdp import Direction
from voip.call import Call, CallState
from voip.rtp import read_wav

TIMEOUT = 15.0
SECONDS = LINPHONE_SECONDS


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
        await talk_with_linphone(
            call, read_wav(speech_wav)[: int(2 * 8000 * SECONDS)], toolkit_heard
        )
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
        await talk_with_linphone(
            call, read_wav(speech_wav)[: int(2 * 8000 * SECONDS)], toolkit_heard
        )
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
