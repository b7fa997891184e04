"""SRTP keyed by SDES (RFC 4568) between two agents on loopback: audio both ways under
encryption, authentication failures dropped and counted, required SRTP never falls back
to plain RTP, re-INVITEs keep or re-key."""

from __future__ import annotations

import asyncio

import pytest
from support.ua import (
    TIMEOUT,
    audio_both_ways,
    audio_both_ways_authenticated,
    connected,
    media_of,
    refusals,
    srtp_agents,
    srtp_of,
    tones_both_ways,
    uri_of,
)

from sdp import Crypto
from voip.rtp import Pcmu, tone
from voip.rtp.srtp import SrtpMode, SrtpTransform, local_crypto
from voip.useragent import RequestFailed


@pytest.mark.parametrize(
    ("caller_mode", "callee_mode", "proto"),
    [
        ("required", "required", "RTP/SAVP"),
        ("required", "optional", "RTP/SAVP"),
        ("optional", "optional", "RTP/AVP"),  # best effort: a=crypto in RTP/AVP
    ],
)
async def test_audio_flows_both_ways_over_srtp_and_the_wire_has_no_plain_payload(
    caller_mode: str, callee_mode: str, proto: str
) -> None:
    async with srtp_agents(caller_mode, callee_mode) as (alice, bob):
        caller, callee = await connected(alice, bob)
        agreed = media_of(caller).agreed
        assert agreed is not None and agreed.proto == proto
        assert srtp_of(caller).local == srtp_of(callee).remote
        assert srtp_of(caller).remote == srtp_of(callee).local
        wires = await audio_both_ways_authenticated(caller, callee)
        # what the callee got on the wire: headers in the clear, payload encrypted, a tag
        encoded = Pcmu().encode(tone(440, 1.2))
        plain_frames = {encoded[i : i + 160] for i in range(0, len(encoded) - 159, 160)}
        audio = [data for data, _ in wires[callee] if len(data) == 12 + 160 + 10]
        assert len(audio) >= 30
        assert not any(data[12:172] in plain_frames for data in audio)
        assert not any(data[12:172] in encoded for data in audio)
        await caller.hangup()


async def test_srtcp_reports_arrive_and_authenticate() -> None:
    async with srtp_agents("required", "required") as (alice, bob):
        caller, callee = await connected(alice, bob)
        reports: asyncio.Queue[object] = asyncio.Queue()
        media_of(callee).on("rtcp", reports.put_nowait)
        await asyncio.wait_for(reports.get(), TIMEOUT)  # first report within ~2.5 s
        assert media_of(callee).statistics().rtcp_received >= 1
        assert media_of(callee).statistics().auth_failures == 0
        await caller.hangup()


async def test_a_wrong_key_gives_silence_and_counted_authentication_failures() -> None:
    async with srtp_agents("required", "required") as (alice, bob):
        caller, callee = await connected(alice, bob)
        async with asyncio.timeout(TIMEOUT):  # media flows both ways before the keys change
            while not all(media_of(c).statistics().packets_received for c in (caller, callee)):
                await asyncio.sleep(0.005)
        right = srtp_of(callee)
        wrong: Crypto = local_crypto()[0]
        media_of(callee).stream.srtp = SrtpTransform(right.local, wrong)
        received = media_of(callee).statistics().packets_received
        at_callee, at_caller = await tones_both_ways(caller, callee)
        assert at_callee == 0  # nothing that fails authentication is played
        assert at_caller >= 30  # the other direction is untouched
        stats = media_of(callee).statistics()
        assert stats.auth_failures >= 30
        assert stats.packets_received == received  # none got past the check
        assert not callee.end_reason and not caller.end_reason  # the call goes on
        await caller.hangup()


async def test_required_callee_refuses_a_plain_offer_with_488() -> None:
    async with srtp_agents("off", "required") as (alice, bob):
        errors = refusals(bob)
        with pytest.raises(RequestFailed) as refused:
            await asyncio.wait_for(alice.call(uri_of(bob)), TIMEOUT)
        assert refused.value.status == 488
        error = await asyncio.wait_for(errors.get(), TIMEOUT)
        assert error.status == 488 and "SRTP is required" in str(error)


async def test_required_caller_is_refused_by_a_plain_callee_and_ends_with_488() -> None:
    async with srtp_agents("required", "off") as (alice, bob):
        refusals(bob)
        call = alice.dial(uri_of(bob))
        with pytest.raises(RequestFailed):
            await asyncio.wait_for(call.answered(), TIMEOUT)
        reason = await asyncio.wait_for(call.ended(), TIMEOUT)
        assert reason.status == 488


async def test_dial_srtp_overrides_the_agent_policy() -> None:
    async with srtp_agents("off", "off") as (alice, bob):
        refusals(bob)
        call = alice.dial(uri_of(bob), srtp="required")
        with pytest.raises(RequestFailed):
            await asyncio.wait_for(call.answered(), TIMEOUT)
        assert call.negotiation.srtp is SrtpMode.REQUIRED
        assert (await asyncio.wait_for(call.ended(), TIMEOUT)).status == 488


async def test_an_optional_caller_falls_back_to_plain_rtp_with_a_plain_callee() -> None:
    async with srtp_agents("optional", "off") as (alice, bob):
        caller, callee = await connected(alice, bob)
        assert media_of(caller).stream.srtp is None and media_of(callee).stream.srtp is None
        await audio_both_ways(caller, callee)
        await caller.hangup()


async def test_a_re_invite_keeps_the_keys_and_audio_goes_on() -> None:
    async with srtp_agents("required", "required") as (alice, bob):
        caller, callee = await connected(alice, bob)
        before = srtp_of(caller)
        await asyncio.wait_for(caller.hold(), TIMEOUT)
        await asyncio.wait_for(caller.resume(), TIMEOUT)
        assert srtp_of(caller) is before  # same keys: the rollover state goes on
        await audio_both_ways(caller, callee)
        assert media_of(callee).statistics().auth_failures == 0
        await caller.hangup()


async def test_a_re_invite_with_a_new_key_rekeys_the_peer() -> None:
    async with srtp_agents("required", "required") as (alice, bob):
        caller, callee = await connected(alice, bob)
        old = srtp_of(callee).remote
        # RFC 4568 §7.1.4: the offerer of a re-INVITE may send new keys
        caller.negotiation.media[0].crypto = local_crypto()
        await asyncio.wait_for(caller.reinvite(), TIMEOUT)
        new = srtp_of(callee).remote
        assert new != old and new == srtp_of(caller).local
        await audio_both_ways(caller, callee)
        await caller.hangup()
