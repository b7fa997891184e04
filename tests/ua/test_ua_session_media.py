"""The session service on the media: S-DATA as RTP, the data token deciding who sends
(counted on the wire), sync points on the media timeline, resynchronization and
interruption resuming from the position kept, DTMF as expedited data, release after
the queued audio has gone out."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from support.session import connect, sessions_for
from support.ua import TIMEOUT, uri_of

from voip.rtp import CallMedia
from voip.session import NoActivity, ResyncType, Session, Tokens
from voip.session import primitives as p
from voip.useragent import UserAgent

FRAME = 320  # 20 ms of 16-bit PCM at 8 kHz


def media(session: Session) -> CallMedia:
    assert session.call.media is not None
    return session.call.media


def counts(session: Session) -> tuple[int, int]:
    stats = media(session).statistics()
    return stats.packets_sent, stats.packets_received


async def test_half_duplex_rtp_flows_only_from_the_data_token_holder_five_turns(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, callee = await connect(alice, bob, half_duplex=True)
    holder, other = caller, callee
    for turn in range(5):
        await asyncio.sleep(0.1)  # the re-INVITE's answer reached both streams
        holder_before, other_before = counts(holder), counts(other)
        await holder.send_data(bytes(FRAME * 15))  # 300 ms while holding the token
        await asyncio.sleep(0.3)
        holder_after, other_after = counts(holder), counts(other)
        sent_by_holder = holder_after[0] - holder_before[0]
        assert sent_by_holder >= 10, f"turn {turn}: the holder sent {sent_by_holder}"
        assert other_after[1] - other_before[1] >= 10  # ... and they arrived
        assert other_after[0] == other_before[0], f"turn {turn}: the non-holder sent RTP"
        assert holder_after[1] == holder_before[1], f"turn {turn}: the holder received RTP"
        await asyncio.wait_for(holder.give_tokens(Tokens.DATA), TIMEOUT)
        await asyncio.wait_for(other.wait_for(p.TokenGiveIndication), TIMEOUT)
        holder, other = other, holder


async def test_sync_points_sit_on_the_media_timeline_and_restart_goes_back_to_one(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, _ = await connect(alice, bob)
    await caller.activity_start("prompt")
    prompt = bytes(range(256)) * 125  # 4 s of audio
    await caller.send_data(prompt[: FRAME * 25])  # 500 ms written
    await media(caller).drain()
    confirm = await asyncio.wait_for(caller.sync_major(), TIMEOUT)
    checkpoint = caller.timeline[confirm.serial]
    assert checkpoint == 25 * 160  # every sample written had been sent
    await caller.send_data(prompt[FRAME * 25 : FRAME * 40])
    assert caller.position > checkpoint
    await asyncio.wait_for(caller.resynchronize(ResyncType.RESTART), TIMEOUT)
    assert caller.position == checkpoint  # the prompt goes on from the confirmed point
    playing = asyncio.ensure_future(caller.play(prompt[: FRAME * 30]))
    await asyncio.wait_for(playing, TIMEOUT)
    assert caller.position <= 30 * 160 and caller._written == 30 * 160


async def test_play_outside_an_activity_raises_no_activity_instead_of_sending_nothing(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, _ = await connect(alice, bob)
    with pytest.raises(NoActivity, match="activity_start"):
        await caller.play(bytes(FRAME * 10))
    await caller.activity_start("prompt")
    await asyncio.wait_for(caller.play(bytes(FRAME * 10)), TIMEOUT)
    await media(caller).drain()
    assert counts(caller)[0] >= 10


async def test_an_interrupted_activity_resumes_where_its_media_stopped(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, callee = await connect(alice, bob)
    await caller.activity_start("prompt")
    prompt = bytes(FRAME * 100)  # 2 s
    playing = asyncio.ensure_future(caller.play(prompt))
    await asyncio.sleep(0.4)
    await asyncio.wait_for(caller.hold(), TIMEOUT)
    await asyncio.wait_for(playing, TIMEOUT)  # play() stops with the activity
    kept = caller.position
    assert 0 < kept < len(prompt) // 2
    await asyncio.wait_for(callee.wait_for(p.ActivityInterruptIndication), TIMEOUT)
    await asyncio.wait_for(caller.resume(), TIMEOUT)
    assert caller.position == kept
    received_before = counts(callee)[1]
    await asyncio.wait_for(caller.play(prompt), TIMEOUT)
    await media(caller).drain()
    # what was left of the prompt, not all of it again
    assert counts(callee)[1] - received_before >= (len(prompt) // 2 - kept) // 160 - 2
    assert caller._written == len(prompt) // 2


async def test_expedited_data_goes_as_rfc_4733_events_when_negotiated(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, callee = await connect(alice, bob)
    assert await asyncio.wait_for(caller.send_expedited("42"), TIMEOUT) == "rtp"
    first = await asyncio.wait_for(callee.wait_for(p.ExpeditedDataIndication), TIMEOUT)
    second = await asyncio.wait_for(callee.wait_for(p.ExpeditedDataIndication), TIMEOUT)
    assert (first.data, second.data, first.carrier) == ("4", "2", "rtp")


async def test_s_release_sends_the_queued_audio_before_the_bye(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, callee = await connect(alice, bob)
    received: list[int] = []
    callee.on("S-RELEASE indication", lambda _: received.append(counts(callee)[1]))
    before = counts(callee)[1]
    await caller.send_data(bytes(FRAME * 10))  # 200 ms queued
    await asyncio.wait_for(caller.release(), TIMEOUT)
    await asyncio.wait_for(callee.wait_for(p.ReleaseIndication), TIMEOUT)
    assert received and received[0] - before >= 10


async def test_the_readme_session_example_runs_between_two_agents(
    alice: UserAgent, bob: UserAgent
) -> None:
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    code = re.search(r"<!-- session-example -->\n```python\n(.*?)```", text, re.S)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(code.group(1), namespace)
    callees = sessions_for(bob)
    prompt = bytes(range(200)) * 200  # 2.5 s
    await asyncio.wait_for(
        namespace["prompt_with_checkpoints"](alice, uri_of(bob), prompt), TIMEOUT * 2
    )
    callee = await asyncio.wait_for(callees.get(), TIMEOUT)
    primitives = [event.primitive for event in callee.history]
    assert primitives == [
        "S-CONNECT indication",
        "S-ACTIVITY-START indication",
        "S-SYNC-MAJOR indication",
        "S-RESYNCHRONIZE indication",
        "S-ACTIVITY-INTERRUPT indication",
        "S-ACTIVITY-RESUME indication",
        "S-ACTIVITY-END indication",
        "S-RELEASE indication",
    ]
