"""samples/tts.py under ``voip serve``, called by baresip: what baresip hears is espeak-ng's
speech of the text, and then the bot hangs up (S-RELEASE after the queued audio)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from support.peers import Baresip
from support.quality import finished_recording, score
from support.samples import TIMEOUT, serving

from samples.tts import speak
from voip.cli.exits import ExitCode

TEXT = "Your parcel arrives on Tuesday between nine and eleven."


async def test_baresip_hears_the_text_spoken_by_espeak_then_the_bot_hangs_up(
    baresip_factory: Callable[..., Baresip], home: Path
) -> None:
    bob = baresip_factory("bob")
    async with serving("tts:handle", home, TTS_TEXT=TEXT) as (uri, server):
        await bob.dial(uri)
        closed = await bob.wait_closed(timeout=TIMEOUT)  # the bot's BYE
        run = await asyncio.wait_for(server, TIMEOUT)
    assert run.returncode == ExitCode.OK, run
    assert "session closed" in closed.group(0)  # ended by the far end, not by baresip
    speech = speak(TEXT)
    heard = await finished_recording(bob.received_recordings()[-1])
    result = score(speech, heard)
    assert result.seconds >= len(speech) / 16000 - 0.2, result  # all of it, not cut short
    assert result.windowed_correlation > 0.9, result
