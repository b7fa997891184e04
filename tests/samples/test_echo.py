"""samples/echo.py under ``voip serve``, called by baresip: what baresip sends comes back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from support.peers import Baresip
from support.quality import finished_recording, score
from support.samples import TIMEOUT, serving

from voip.cli.exits import ExitCode

SECONDS = 6


async def test_the_echo_bot_returns_baresips_speech_unchanged(
    baresip_factory: Callable[..., Baresip], home: Path
) -> None:
    bob = baresip_factory("bob")
    async with serving("echo:handle", home) as (uri, server):
        await bob.dial(uri)
        await bob.wait_established()
        await asyncio.sleep(SECONDS)
        await bob.hangup()
        await bob.wait_closed()
        run = await asyncio.wait_for(server, TIMEOUT)
    assert run.returncode == ExitCode.OK, run
    sent = await finished_recording(bob.sent_recordings()[-1])
    echoed = await finished_recording(bob.received_recordings()[-1])
    # the bot echoes what it hears played out, whose delay moves on a busy machine (its
    # own playout's and baresip's): each second is looked for within a second of the
    # overall alignment
    result = score(sent, echoed, drift=1.0)
    assert result.seconds >= SECONDS - 1, result
    assert 0 < result.delay < 0.5, result  # a round trip through the bot, not a loop of ours
    # quiet machine: correlation 0.9999, PESQ 4.07 (G.711 twice); on a busy one a jitter
    # buffer's delay change mid-call shifts the overall alignment (seen: 0.68, 3.58), so
    # the check is on each second's own alignment
    assert result.windowed_correlation > 0.9, result
    assert result.pesq >= 3.0, result
