"""Comfort noise (RFC 3389) between two agents: offered when "CN" is among the codecs,
agreed only when both sides have it; agreed, a silent sender sends a CN packet at the start
of each silence and one a second, and the receiver plays the silence as comfort noise."""

from __future__ import annotations

import asyncio

import pytest
from support.ua import TIMEOUT, connected, media_of

from sdp import Codec, SessionDescription
from voip.negotiation import Negotiation, default_audio
from voip.useragent import UserAgent


def test_cn_is_offered_as_cn_8000_only_when_named_among_the_codecs() -> None:
    assert [c.name for c in default_audio(40000).codecs] == ["PCMU", "PCMA", "G722", "opus"]
    offer = default_audio(40000, ("PCMU", "CN"))
    assert [(c.name, c.clock_rate) for c in offer.codecs] == [("PCMU", 8000), ("CN", 8000)]
    with pytest.raises(ValueError, match="unknown codecs"):
        default_audio(40000, ("PCMU", "GSM"))


def test_cn_with_g722_is_payload_type_13_at_8000_its_rtp_clock_rfc3551_4_5_2() -> None:
    """G.722 samples at 16 kHz but its RTP clock is 8000, and CN takes the RTP clock of its
    audio (RFC 3389 §4): CN/8000, the static 13, never a CN/16000."""
    offer = Negotiation("127.0.0.1", [default_audio(40000, ("G722", "CN"))]).create_offer()
    audio = SessionDescription.parse(offer).media[0]
    assert [(r.payload_type, r.encoding_name, r.clock_rate) for r in audio.codecs()][:2] == [
        (9, "G722", 8000),
        (13, "CN", 8000),
    ]
    assert not any(r.encoding_name == "CN" and r.clock_rate != 8000 for r in audio.codecs())


PEERS_OFFER = (
    "v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 30000 RTP/AVP 9 99 98 101\r\na=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:99 CN/16000\r\na=rtpmap:98 CN/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
)


def test_a_peers_cn_on_a_dynamic_payload_type_is_agreed_at_its_codecs_clock_rfc3389_4() -> None:
    """A peer that maps CN/8000 to 98 and offers CN/16000 beside it: 98 is agreed (the
    stream sends and receives CN on it), CN/16000 has no audio of its rate and is refused."""
    ours = Negotiation("127.0.0.1", [default_audio(40000, ("G722", "CN"))])
    answer = SessionDescription.parse(ours.receive_offer(PEERS_OFFER.encode()))
    assert answer.media[0].formats == ["9", "98", "101"]
    agreed = ours.agreed[0]
    assert Codec("CN", 8000, payload_type=98) in agreed.codecs
    assert Codec("CN", 8000, payload_type=98) in agreed.local_codecs
    assert not any(c.clock_rate == 16000 for c in agreed.codecs)


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
