"""The UA as a UAS under SIPp load: every call answered, with and without message loss,
and nothing left behind afterwards (transactions, calls, jobs, sockets)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from support.peers import Sipp

from voip.call import Call
from voip.sip.transaction import Timers
from voip.useragent import UserAgent

RATE = 100  # calls per second
SECONDS = 30
# Short timers so that the transactions' wait states (Timer J = 64·T1 …) end soon after
# the run; retransmissions start at T1 all the same, which loopback easily carries.
TIMERS = Timers(t1=0.1, t2=1.0, t4=1.0)


@pytest.fixture
async def uas() -> AsyncIterator[UserAgent]:
    ua = UserAgent("carol", timers=TIMERS)

    async def answer(call: Call) -> None:
        await call.accept(wait_ack=False)

    ua.on("incoming_call", answer)
    await ua.listen("udp", "127.0.0.1", 0)
    yield ua
    await ua.close()


async def settled(ua: UserAgent) -> dict[str, int]:
    """The agent's resources once every transaction's wait timer has run out."""
    await asyncio.sleep(TIMERS.transaction_timeout + 1.0)
    return ua.resources()


@pytest.mark.parametrize("scenario", ["uac_call", "uac_call_lossy"])
async def test_sipp_at_100_calls_per_second_for_30_s_gets_every_call_answered(
    scenario: str, sipp: Sipp, uas: UserAgent
) -> None:
    before = uas.resources()
    local = uas.listening[0]
    result = await sipp.run(
        scenario,
        (local.host, local.port),
        service="carol",
        rate=RATE,
        calls=RATE * SECONDS,
        duration_ms=200,
        timeout=SECONDS + 60,
        trace_messages=False,
    )
    assert result.ok, result.report()
    assert (result.successful, result.failed) == (RATE * SECONDS, 0)
    after = await settled(uas)
    assert after == before
