"""Comfort noise (RFC 3389) between two agents: offered when "CN" is among the codecs,
agreed only when both sides have it; agreed, a silent sender sends a CN packet at the start
of each silence and one a second, and the receiver plays the silence as comfort noise."""

from __future__ import annotations

import asyncio

import pytest
from support.ua import TIMEOUT, connected, media_of

from voip.negotiation import default_audio
from voip.useragent import UserAgent


def test_cn_is_offered_as_cn_8000_only_when_named_among_the_codecs() -> None:
    assert [c.name for c in default_audio(40000).codecs] == ["PCMU", "PCMA", "G722", "opus"]
    offer = default_audio(40000, ("PCMU", "CN"))
    assert [(c.name, c.clock_rate) for c in offer.codecs] == [("PCMU", 8000), ("CN", 8000)]
    with pytest.raises(ValueError, match="unknown codecs"):
        default_audio(40000, ("PCMU", "GSM"))


async def _silent_call(alice: UserAgent, bob: UserAgent, frames: int) -> tuple[int, int, float]:
    """A call in which neither side writes audio for ``frames`` packet times: the packets
    alice sent, the comfort noise frames bob played meanwhile (bob counting no loss) and
    the time bob concealed."""
    caller, callee = await connected(alice, bob)
    sent, heard = media_of(caller).stream, media_of(callee).stream
    async with asyncio.timeout(TIMEOUT):
        while sent.stats.silence_sent < frames:
            await asyncio.sleep(0.05)
    stats, played = sent.statistics(), heard.statistics()
    await caller.hangup()
    assert played.lost == 0
    return stats.packets_sent, played.comfort_noise_played, played.concealed


async def test_silence_goes_as_cn_when_both_sides_agreed_it(
    alice: UserAgent, bob: UserAgent
) -> None:
    alice.codecs = bob.codecs = ("PCMU", "CN")
    packets, comfort, concealed = await _silent_call(alice, bob, 75)
    # 1.5 s of silence: a CN packet at its start and one a second later, where encoded
    # silence would have been 75 packets; the time between is comfort noise, not loss
    assert packets <= 3
    assert comfort >= 60
    assert concealed == 0


async def test_without_cn_on_the_other_side_silence_goes_encoded(
    alice: UserAgent, bob: UserAgent
) -> None:
    alice.codecs = ("PCMU", "CN")
    bob.codecs = ("PCMU",)
    # (a packet of encoded silence late on a busy machine is concealed like any other)
    packets, comfort, _ = await _silent_call(alice, bob, 75)
    assert packets >= 75 and comfort == 0
