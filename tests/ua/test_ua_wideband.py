"""G.722 and Opus between two agents: offered by default after G.711, chosen when both
sides prefer them, and a tone sent at the agents' PCM rate (16 kHz or 8 kHz, whatever the
codec's own rate) arrives at that rate with its shape kept."""

from __future__ import annotations

import asyncio
import itertools
import math
import struct

import pytest
from support.peers._process import free_port_range

from voip.call import Call
from voip.negotiation import default_audio
from voip.useragent import UserAgent

TIMEOUT = 10.0


def test_the_default_offer_has_g722_at_clock_8000_and_opus_48000_2_rfc3551_rfc7587() -> None:
    offer = default_audio(40000)
    formats = [(c.name, c.clock_rate, c.channels) for c in offer.codecs]
    assert formats == [("PCMU", 8000, 1), ("PCMA", 8000, 1), ("G722", 8000, 1), ("opus", 48000, 2)]


def _tone(rate: int, seconds: float, frequency: float = 440.0) -> bytes:
    count = int(rate * seconds)
    return struct.pack(
        f"<{count}h",
        *(int(8000 * math.sin(2 * math.pi * frequency * n / rate)) for n in range(count)),
    )


def _dominant_frequency(pcm: bytes, rate: int) -> float:
    """Zero crossings per second / 2: the frequency of a clean tone."""
    samples = struct.unpack(f"<{len(pcm) // 2}h", pcm)
    crossings = sum(1 for a, b in itertools.pairwise(samples) if a < 0 <= b)
    return crossings * rate / len(samples)


@pytest.mark.parametrize("rate", [16000, 8000])
@pytest.mark.parametrize("codec", ["G722", "OPUS"])
async def test_a_tone_crosses_a_wideband_call_at_the_users_rate(codec: str, rate: int) -> None:
    agents = []
    for user in ("alice", "bob"):
        low = free_port_range(4)
        ua = UserAgent(user, rtp_ports=(low, low + 3))
        ua.codecs = (codec,)
        ua.media.sample_rate = rate
        await ua.listen("udp", "127.0.0.1", 0)
        agents.append(ua)
    alice, bob = agents
    answered: asyncio.Queue[Call] = asyncio.Queue()

    async def accept(call: Call) -> None:
        await call.accept()
        answered.put_nowait(call)

    bob.on("incoming_call", accept)
    endpoint = bob.listening[0]
    try:
        call = await asyncio.wait_for(
            alice.call(f"sip:bob@{endpoint.host}:{endpoint.port}"), TIMEOUT
        )
        incoming = await asyncio.wait_for(answered.get(), TIMEOUT)
        assert call.agreed[0].codecs[0].name.upper() == codec
        assert call.media is not None and incoming.media is not None
        writer = asyncio.create_task(call.media.write(_tone(rate, 1.5)))
        frames = [await asyncio.wait_for(incoming.media.read(), TIMEOUT) for _ in range(60)]
        await writer
        loud = [f for f in frames if len(f) == 2 * rate // 50 and max(f) > 0]
        tone = b"".join(frames[-30:])
        assert len(loud) >= 30
        assert abs(_dominant_frequency(tone, rate) - 440) < 20
        stats = call.media.stats()
        assert stats.codec.upper() == codec and stats.sent.packets >= 60
    finally:
        await alice.close()
        await bob.close()
    assert alice.resources()["rtp_ports"] == bob.resources()["rtp_ports"] == 0
