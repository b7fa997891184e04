"""Session timers (RFC 4028) against SIPp on loopback, with intervals of seconds.

SIPp's scenarios check the toolkit's headers themselves (``ereg check_it``): a wrong
refresher parameter or a missing Require: timer fails the SIPp call, and with it the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from support.peers import Sipp

from voip.call import Call
from voip.sip.sessiontimer import SessionExpired, SessionTimer, SessionTimerPolicy
from voip.useragent import UserAgent

TIMEOUT = 20.0
T = TypeVar("T")


def within(awaitable: Awaitable[T]) -> Awaitable[T]:
    return asyncio.wait_for(awaitable, TIMEOUT)


async def refreshed_by_toolkit(
    sipp: Sipp, policy: SessionTimerPolicy, allow: str
) -> tuple[Call, list[SessionTimer], str]:
    """SIPp calls a toolkit UAS asking for 6 s with refresher=uas: the toolkit answers so
    and refreshes every 3 s; SIPp checks refresher=uac in each refresh and hangs up after
    the second. The call, each start of its interval, and SIPp's messages."""
    async with UserAgent("carol", session_timers=policy) as ua:
        calls: asyncio.Queue[Call] = asyncio.Queue()
        intervals: list[SessionTimer] = []

        async def answer(call: Call) -> None:
            call.on("session_timer", intervals.append)
            await call.accept()
            calls.put_nowait(call)

        ua.on("incoming_call", answer)
        local = await ua.listen("udp", "127.0.0.1", 0)
        run = asyncio.ensure_future(
            sipp.run(
                "uac_session_timer",
                (local.host, local.port),
                service="carol",
                keys={"session_expires": "6", "min_se": "2", "allow": allow},
                timeout=TIMEOUT,
            )
        )
        call = await within(calls.get())
        timer = call.session_timer
        assert timer is not None and timer.interval == 6 and timer.we_refresh
        result = await run
        assert result.ok, result.report()
        reason = await within(call.ended())
        assert reason.by == "remote"
        assert len(intervals) == 3  # the 2xx to the INVITE, then two refreshes
        return call, intervals, result.messages()


async def test_a_sipp_uac_that_asks_the_uas_to_refresh_is_refreshed_by_update(
    sipp: Sipp,
) -> None:
    policy = SessionTimerPolicy(session_expires=1800, min_se=2)  # UPDATE preferred
    _, _, messages = await refreshed_by_toolkit(sipp, policy, "INVITE, ACK, BYE, UPDATE")
    assert messages.count("UPDATE sip:") >= 2
    assert "a=sendrecv" in messages


async def test_a_sipp_uac_that_does_not_allow_update_is_refreshed_by_re_invite(
    sipp: Sipp,
) -> None:
    policy = SessionTimerPolicy(session_expires=1800, min_se=2)  # UPDATE preferred
    call, _, messages = await refreshed_by_toolkit(sipp, policy, "INVITE, ACK, BYE, CANCEL")
    assert "UPDATE sip:" not in messages
    assert call.negotiation.local is not None


async def test_a_re_invite_refresh_offers_the_session_unchanged_to_a_sipp_uac(
    sipp: Sipp,
) -> None:
    policy = SessionTimerPolicy(session_expires=1800, min_se=2, refresh_with="INVITE")
    call, _, messages = await refreshed_by_toolkit(sipp, policy, "INVITE, ACK, BYE, UPDATE")
    assert "UPDATE sip:" not in messages
    # the toolkit's answer and both refresh offers: one o= line, version unchanged
    # (RFC 3264 §8), since nothing changed
    origins = [line for line in messages.splitlines() if line.startswith("o=voip ")]
    assert len(origins) >= 3 and len(set(origins)) == 1, origins
    assert call.negotiation.local is not None


async def test_the_toolkit_retries_a_sipp_uas_422_with_its_min_se_and_refreshes(
    sipp: Sipp,
) -> None:
    uas = sipp.start("uas_session_timer_422", calls=1, timeout=TIMEOUT)
    policy = SessionTimerPolicy(session_expires=4, min_se=2, refresh_with="INVITE")
    async with UserAgent("alice", session_timers=policy) as ua:
        await ua.listen("udp", "127.0.0.1", 0)
        started: asyncio.Queue[SessionTimer] = asyncio.Queue()
        call = ua.dial(uas.uri("sipp"))
        call.on("session_timer", started.put_nowait)
        await within(call.answered())
        timer = await within(started.get())
        assert timer.interval == 8 and timer.we_refresh and timer.min_se == 8
        await within(started.get())  # the refresh's 2xx, after 4 s
        await within(call.hangup())
    result = await uas.wait(TIMEOUT)
    assert result.ok, result.report()
    assert "SIP/2.0 422" in result.messages()


async def test_the_toolkit_ends_with_bye_a_session_the_sipp_uas_never_refreshes(
    sipp: Sipp,
) -> None:
    uas = sipp.start("uas_session_timer_silent", calls=1, timeout=TIMEOUT)
    policy = SessionTimerPolicy(session_expires=1800, min_se=2)
    async with UserAgent("alice", session_timers=policy) as ua:
        await ua.listen("udp", "127.0.0.1", 0)
        expired: list[SessionExpired] = []
        call = ua.dial(uas.uri("sipp"))
        call.on("session_expired", expired.append)
        await within(call.answered())
        reason = await within(call.ended())
        assert reason.by == "provider" and reason.status == 408
        assert reason.text.startswith("session timer expired: the peer did not refresh it")
        assert expired == [SessionExpired(6, we_refresh=False)]
        result = await uas.wait(TIMEOUT)
    assert result.ok, result.report()
