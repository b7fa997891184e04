"""PRACK (RFC 3262) and UPDATE (RFC 3311) between the toolkit and SIPp on loopback.

- a SIPp UAC that requires 100rel calls the toolkit: the toolkit's 180 (or 183 with the
  answer) is reliable, SIPp PRACKs it, and the 200 comes after the PRACK;
- the toolkit calls a SIPp UAS that sends a reliable 183 with the SDP answer and waits
  for the PRACK;
- in a call to a SIPp UAS, the toolkit holds with UPDATE and SIPp holds back with UPDATE.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

import pytest
from support.peers import Sipp

from sdp import Direction
from voip.call import Call
from voip.useragent import UserAgent

TIMEOUT = 15.0
T = TypeVar("T")


def within(awaitable: Awaitable[T]) -> Awaitable[T]:
    return asyncio.wait_for(awaitable, TIMEOUT)


@pytest.fixture
async def carol() -> AsyncIterator[UserAgent]:
    ua = UserAgent("carol")
    await ua.listen("udp", "127.0.0.1", 0)
    yield ua
    await ua.close()


@pytest.mark.parametrize("early_media", [False, True], ids=["reliable 180", "reliable 183"])
async def test_a_sipp_uac_requiring_100rel_gets_a_reliable_provisional_and_pracks_it(
    sipp: Sipp, carol: UserAgent, early_media: bool
) -> None:
    answered: asyncio.Queue[Call] = asyncio.Queue()
    pracks: list[str] = []

    async def answer(call: Call) -> None:
        call.on("prack", lambda request: pracks.append(request.headers.get("RAck") or ""))
        await call.ring(early_media=early_media)
        await call.accept()  # waits for the PRACK (RFC 3262 §3)
        answered.put_nowait(call)

    carol.on("incoming_call", answer)
    local = carol.listening[0]
    result = await sipp.run("uac_100rel", (local.host, local.port), service="carol", calls=2)
    assert result.ok, result.report()
    assert result.successful == 2
    log = result.messages()
    status = "183 Session Progress" if early_media else "180 Ringing"
    assert f"SIP/2.0 {status}" in log and "RSeq:" in log
    assert len(pracks) == 2 and all(rack.endswith(" 1 INVITE") for rack in pracks)
    call = await within(answered.get())
    assert call.agreed[0].codecs[0].name == "PCMA"  # SIPp offers PCMA first
    await asyncio.sleep(0.2)
    assert not carol.calls


async def test_the_toolkit_pracks_a_reliable_183_with_early_media_from_a_sipp_uas(
    sipp: Sipp, carol: UserAgent
) -> None:
    uas = sipp.start("uas_reliable_183", calls=1)
    early: asyncio.Queue[object] = asyncio.Queue()
    call = carol.dial(uas.uri("sipp"))
    call.on("early_media", early.put_nowait)
    await within(call.answered())
    agreed = await within(early.get())
    assert agreed == call.agreed and call.agreed[0].direction is Direction.SENDRECV
    assert call.agreed[0].codecs[0].name == "PCMA"  # the first of SIPp's answer
    await within(call.hangup())
    result = await uas.wait(TIMEOUT)
    assert result.ok, result.report()
    assert "RAck: 1 1 INVITE" in result.messages()
    assert result.messages().count("PRACK sip:") == 1


async def test_update_both_ways_with_a_sipp_uas(sipp: Sipp, carol: UserAgent) -> None:
    uas = sipp.start("uas_update", calls=1, duration_ms=300)
    call = await within(carol.call(uas.uri("sipp")))
    held = asyncio.Event()
    call.on("hold", held.set)
    response = await within(call.update(hold=True))
    assert response.status == 200 and response.cseq.method == "UPDATE"
    assert call.agreed[0].direction is Direction.SENDONLY
    await within(held.wait())  # SIPp's own UPDATE holds us
    assert call.remote_hold and call.agreed[0].direction is Direction.INACTIVE
    await within(call.hangup())
    result = await uas.wait(TIMEOUT)
    assert result.ok, result.report()
    assert "UPDATE sip:" in result.messages() and "a=sendonly" in result.messages()
