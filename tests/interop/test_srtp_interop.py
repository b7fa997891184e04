"""SDES-SRTP (RFC 4568, RFC 3711) with baresip's ``srtp`` media encryption module.

baresip 1.0 with ``mediaenc=srtp-mand`` offers and accepts ``RTP/SAVP`` with ``a=crypto``;
``mediaenc=srtp`` is best effort (``a=crypto`` in ``RTP/AVP``). Speech goes both ways
in one call; each side's recording is aligned with its source and scored (correlation,
PESQ): SRTP must carry the audio as plain RTP would, with no authentication failure.
The correlation checked is each second's own alignment (``windowed_correlation``, see
test_media_interop.py): a delay that moves mid-call is the jitter buffer's, not SRTP's.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from support.peers import Baresip, Sipp
from support.quality import (
    read_recording,
    score,
    speech_both_ways,
    until_recorded,
)
from support.ua import answer_calls, media_of

from voip.call import Call
from voip.rtp import read_wav
from voip.rtp.srtp import SrtpRequired
from voip.sip import SipError
from voip.useragent import RequestFailed, UserAgent

TIMEOUT = 15.0
SRTP = ("srtp.so",)


async def test_toolkit_calls_baresip_over_rtp_savp_and_speech_goes_both_ways(
    speech_wav: Path, baresip_factory: Callable[..., Baresip], tmp_path: Path
) -> None:
    bob = baresip_factory("bob", modules=SRTP, account_params="mediaenc=srtp-mand")
    async with UserAgent("alice", srtp="required") as ua:
        await ua.listen("udp", "127.0.0.1", 0)
        call = await asyncio.wait_for(ua.call(bob.uri()), TIMEOUT)
        agreed = call.agreed[0]
        assert agreed.local_crypto is not None and agreed.remote_crypto is not None
        await speech_both_ways(bob, call, speech_wav, tmp_path)


async def test_baresip_calls_the_toolkit_over_rtp_savp_and_speech_goes_both_ways(
    speech_wav: Path, baresip_factory: Callable[..., Baresip], tmp_path: Path
) -> None:
    bob = baresip_factory("bob", modules=SRTP, account_params="mediaenc=srtp-mand")
    async with UserAgent("alice", srtp="required") as ua:
        endpoint = await ua.listen("udp", "127.0.0.1", 0)
        calls = answer_calls(ua, ring=False)
        await bob.dial(f"sip:alice@{endpoint.host}:{endpoint.port}")
        call = await asyncio.wait_for(calls.get(), TIMEOUT)
        await speech_both_ways(bob, call, speech_wav, tmp_path)


async def test_best_effort_srtp_from_baresip_is_taken_by_an_optional_toolkit(
    speech_wav: Path, baresip_factory: Callable[..., Baresip], tmp_path: Path
) -> None:
    bob = baresip_factory("bob", modules=SRTP, account_params="mediaenc=srtp")
    async with UserAgent("alice", srtp="optional") as ua:
        await ua.listen("udp", "127.0.0.1", 0)
        call = await asyncio.wait_for(ua.call(bob.uri()), TIMEOUT)
        agreed = call.agreed[0]
        assert agreed.proto == "RTP/AVP" and agreed.remote_crypto is not None
        assert media_of(call).stream.srtp is not None
        await bob.wait_established()
        recorder = media_of(call).record(tmp_path / "received.wav", timeline="sender")
        await until_recorded(recorder, 3 * 8000)
        stats = media_of(call).statistics()
        await call.hangup()
    assert stats.auth_failures <= 1 and stats.unkeyed <= 5 and stats.packets_received >= 100
    source = read_wav(speech_wav)[: 2 * 8000 * 15]
    received = score(source, read_recording(tmp_path / "received.wav"))
    assert received.windowed_correlation > 0.95, received


async def test_a_plain_baresip_is_refused_488_by_a_toolkit_that_requires_srtp(
    baresip_factory: Callable[..., Baresip],
) -> None:
    bob = baresip_factory("bob")
    async with UserAgent("alice", srtp="required") as ua:
        endpoint = await ua.listen("udp", "127.0.0.1", 0)
        ended: asyncio.Queue[Call] = asyncio.Queue()

        async def answer(call: Call) -> None:
            call.on("ended", lambda _: ended.put_nowait(call))
            with pytest.raises(SipError, match="SRTP is required"):
                await call.accept()

        ua.on("incoming_call", answer)
        mark = bob.log_mark()
        await bob.dial(f"sip:alice@{endpoint.host}:{endpoint.port}")
        call = await asyncio.wait_for(ended.get(), TIMEOUT)
        assert call.end_reason is not None and call.end_reason.status == 488
        await bob.wait_for(r"488 Not Acceptable Here", since=mark)


async def test_a_plain_answer_from_sipp_ends_the_toolkits_required_call_typed(
    sipp: Sipp,
) -> None:
    # SIPp's uas_call answers RTP/AVP without a=crypto whatever the offer says
    uas = sipp.start("uas_call", calls=1)
    async with UserAgent("alice", srtp="required") as ua:
        await ua.listen("udp", "127.0.0.1", 0)
        call = ua.dial(uas.uri("sipp"))
        with pytest.raises(RequestFailed, match="SRTP is required"):
            await asyncio.wait_for(call.answered(), TIMEOUT)
        reason = await asyncio.wait_for(call.ended(), TIMEOUT)
        assert reason.status == 488 and isinstance(reason.error, SrtpRequired)
        assert call.media is None or call.media.closed
    result = await uas.wait(TIMEOUT)
    assert result.ok, result.report()  # SIPp got its ACK and then the BYE
    assert re.search(r"BYE sip:.*\r?\n(?:.+\r?\n)*?Reason: SIP;cause=488", result.messages())
