"""Media under calls between two agents on loopback: RTP starts on answer and on early
media, follows hold and resume, carries DTMF, and every port is free after the call."""

from __future__ import annotations

import asyncio
import math
import struct
import warnings
from collections.abc import AsyncIterator

import pytest
from support.peers._process import free_port_range
from support.ua import media_of

from voip.call import Call
from voip.rtp import CallMedia, DtmfDigit
from voip.useragent import UserAgent

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

TIMEOUT = 10.0


async def _agent(user: str, host: str = "127.0.0.1") -> UserAgent:
    low = free_port_range(40)
    ua = UserAgent(user, rtp_ports=(low, low + 39))
    await ua.listen("udp", host, 0)
    return ua


@pytest.fixture
async def alice() -> AsyncIterator[UserAgent]:
    ua = await _agent("alice")
    yield ua
    await ua.close()
    assert ua.resources()["rtp_ports"] == 0


@pytest.fixture
async def bob() -> AsyncIterator[UserAgent]:
    ua = await _agent("bob")
    yield ua
    await ua.close()
    assert ua.resources()["rtp_ports"] == 0


def uri_of(ua: UserAgent) -> str:
    endpoint = ua.listening[0]
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
    return f"sip:{ua.user}@{host}:{endpoint.port}"


def answer_calls(ua: UserAgent, *, early_media: bool = False) -> asyncio.Queue[Call]:
    calls: asyncio.Queue[Call] = asyncio.Queue()

    async def on_call(call: Call) -> None:
        if early_media:
            await call.ring(early_media=True)
            calls.put_nowait(call)
            return
        await call.accept()
        calls.put_nowait(call)

    ua.on("incoming_call", on_call)
    return calls


def _tone(seconds: float, frequency: float = 440.0) -> bytes:
    count = int(8000 * seconds)
    return struct.pack(
        f"<{count}h",
        *(int(8000 * math.sin(2 * math.pi * frequency * n / 8000)) for n in range(count)),
    )


async def _loud_frames(media: CallMedia, frames: int, threshold: int = 2000) -> int:
    loud = 0
    for _ in range(frames):
        frame = await asyncio.wait_for(media.read(), TIMEOUT)
        loud += audioop.rms(frame, 2) > threshold
    return loud


async def _frames_until_sent(media: CallMedia, count: int) -> int:
    """Wait until ``count`` more packets were sent (or give up after many frames)."""
    start = media.statistics().packets_sent
    for _ in range(200):
        if media.statistics().packets_sent - start >= count:
            break
        await asyncio.sleep(0.02)
    return media.statistics().packets_sent - start


async def _call_with_audio_both_ways(alice: UserAgent, bob: UserAgent) -> tuple[Call, Call]:
    """Alice calls Bob, each plays a second of tone and hears the other's: the calls,
    still up."""
    calls = answer_calls(bob)
    caller = await asyncio.wait_for(alice.call(uri_of(bob)), TIMEOUT)
    callee = await asyncio.wait_for(calls.get(), TIMEOUT)
    assert caller.negotiation.media[0].port == media_of(caller).port
    writers = [
        asyncio.create_task(media_of(caller).write(_tone(1.0, 440))),
        asyncio.create_task(media_of(callee).write(_tone(1.0, 1000))),
    ]
    at_callee, at_caller = await asyncio.gather(
        _loud_frames(media_of(callee), 60), _loud_frames(media_of(caller), 60)
    )
    await asyncio.gather(*writers)
    assert at_callee >= 30 and at_caller >= 30
    return caller, callee


async def test_audio_flows_both_ways_once_the_call_is_answered(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, _ = await _call_with_audio_both_ways(alice, bob)
    await caller.hangup()


async def test_audio_flows_both_ways_over_ipv6() -> None:
    """The socket gives an IPv6 source as (host, port, flowinfo, scope_id): the stream
    takes it for the peer's (host, port) and latches to it (the compiled core too)."""
    alice, bob = await _agent("alice", "::1"), await _agent("bob", "::1")
    try:
        caller, callee = await _call_with_audio_both_ways(alice, bob)
        assert media_of(caller).stream.latched == ("::1", media_of(callee).port)
        await caller.hangup()
    finally:
        await alice.close()
        await bob.close()
    assert alice.resources()["rtp_ports"] == bob.resources()["rtp_ports"] == 0


async def test_hold_stops_the_held_side_sending_and_resume_restarts_it(
    alice: UserAgent, bob: UserAgent
) -> None:
    calls = answer_calls(bob)
    caller = await asyncio.wait_for(alice.call(uri_of(bob)), TIMEOUT)
    callee = await asyncio.wait_for(calls.get(), TIMEOUT)
    assert await _frames_until_sent(media_of(callee), 3) >= 3
    await asyncio.wait_for(caller.hold(), TIMEOUT)  # caller sendonly, callee recvonly
    assert not media_of(callee).stream.sending and media_of(caller).stream.sending
    held_count = media_of(callee).statistics().packets_sent
    assert await _frames_until_sent(media_of(caller), 5) >= 5  # the caller goes on (music)
    assert media_of(callee).statistics().packets_sent == held_count
    await asyncio.wait_for(caller.resume(), TIMEOUT)
    assert media_of(callee).stream.sending
    assert await _frames_until_sent(media_of(callee), 3) >= 3
    await caller.hangup()


async def test_both_on_hold_inactive_sends_nothing(alice: UserAgent, bob: UserAgent) -> None:
    calls = answer_calls(bob)
    caller = await asyncio.wait_for(alice.call(uri_of(bob)), TIMEOUT)
    callee = await asyncio.wait_for(calls.get(), TIMEOUT)
    await asyncio.wait_for(callee.hold(), TIMEOUT)
    await asyncio.wait_for(caller.hold(), TIMEOUT)
    assert not media_of(caller).stream.sending and not media_of(callee).stream.sending
    await caller.hangup()


async def test_dtmf_sent_as_rfc4733_arrives_as_digits_on_the_call(
    alice: UserAgent, bob: UserAgent
) -> None:
    calls = answer_calls(bob)
    caller = await asyncio.wait_for(alice.call(uri_of(bob)), TIMEOUT)
    callee = await asyncio.wait_for(calls.get(), TIMEOUT)
    digits: asyncio.Queue[DtmfDigit] = asyncio.Queue()
    callee.on("dtmf", digits.put_nowait)
    media_of(caller).send_dtmf("159#")
    got = [(await asyncio.wait_for(digits.get(), TIMEOUT)).digit for _ in range(4)]
    assert got == ["1", "5", "9", "#"]
    await caller.hangup()


async def test_early_media_flows_from_the_183_before_the_answer(
    alice: UserAgent, bob: UserAgent
) -> None:
    calls = answer_calls(bob, early_media=True)
    caller = alice.dial(uri_of(bob))
    callee = await asyncio.wait_for(calls.get(), TIMEOUT)
    writer = asyncio.create_task(media_of(callee).write(_tone(1.0)))
    assert await _loud_frames(media_of(caller), 40) >= 10
    assert not caller._answered.done()
    writer.cancel()
    await callee.accept(wait_ack=False)
    await asyncio.wait_for(caller.answered(), TIMEOUT)
    await caller.hangup()


async def test_every_rtp_port_is_free_after_many_calls(alice: UserAgent, bob: UserAgent) -> None:
    answer_calls(bob)
    for _ in range(50):  # more calls than the 20 pairs of each agent's range
        call = await asyncio.wait_for(alice.call(uri_of(bob)), TIMEOUT)
        await asyncio.wait_for(call.hangup(), TIMEOUT)
    for _ in range(50):
        if not bob.resources()["rtp_ports"]:
            break
        await asyncio.sleep(0.02)
    assert alice.resources()["rtp_ports"] == 0
    assert bob.resources()["rtp_ports"] == 0


async def test_a_refused_call_releases_its_port(alice: UserAgent, bob: UserAgent) -> None:
    async def refuse(call: Call) -> None:
        await call.reject(486)

    bob.on("incoming_call", refuse)
    with pytest.raises(Exception, match="486"):
        await asyncio.wait_for(alice.call(uri_of(bob)), TIMEOUT)
    assert alice.resources()["rtp_ports"] == 0
