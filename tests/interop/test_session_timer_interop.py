"""Session timers (RFC 4028) against SIPp and linphonec on loopback, intervals of seconds.

SIPp's scenarios check the toolkit's headers themselves (``ereg check_it``): a wrong
refresher parameter or a missing Require: timer fails the SIPp call, and with it the test.
liblinphone 5.1 implements RFC 4028 too: it negotiates with the toolkit both ways and
refreshes by UPDATE, or takes the toolkit's refreshes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from support.peers import Linphone, Sipp

from voip.call import Call, CallState
from voip.sip import Request
from voip.sip.sessiontimer import SessionExpired, SessionTimer, SessionTimerPolicy
from voip.sip.transaction import ServerTransaction
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


# liblinphone 5.1 implements RFC 4028 (its [sip] session_expires_* keys)
LINPHONE_TIMERS = {
    "session_expires_enabled": "1",
    "session_expires_value": "6",
    "session_expires_min_value": "2",
}


class Received(UserAgent):
    """An agent that keeps the methods of the requests it receives."""

    def __init__(self, user: str, **options: Any) -> None:
        super().__init__(user, **options)
        self.methods: list[str] = []

    def _on_request(self, transaction: ServerTransaction, request: Request) -> None:
        self.methods.append(request.method)
        super()._on_request(transaction, request)


async def intervals_started(call: Call, count: int) -> list[SessionTimer]:
    started: asyncio.Queue[SessionTimer] = asyncio.Queue()
    call.on("session_timer", started.put_nowait)
    return [await within(started.get()) for _ in range(count)]


async def test_linphone_called_by_the_toolkit_takes_the_refresh_and_updates_every_3_s(
    linphone_factory: Callable[..., Linphone],
) -> None:
    dave = linphone_factory("dave", sip_options=LINPHONE_TIMERS)
    policy = SessionTimerPolicy(session_expires=6, min_se=2)  # refresher left open
    async with Received("alice", session_timers=policy) as ua:
        await ua.listen("udp", "127.0.0.1", 0)
        call = ua.dial(dave.uri())
        starts = asyncio.ensure_future(intervals_started(call, 3))
        await within(call.answered())
        timers = await starts  # the 2xx, then two refreshes
        assert all(t.interval == 6 and not t.we_refresh for t in timers)
        assert ua.methods.count("UPDATE") >= 2  # linphone refreshes by UPDATE
        assert call.state is CallState.ANSWERED
        await within(call.hangup())


async def test_the_toolkit_refreshes_linphone_when_it_asks_to(
    linphone_factory: Callable[..., Linphone],
) -> None:
    dave = linphone_factory("dave", sip_options=LINPHONE_TIMERS)
    policy = SessionTimerPolicy(session_expires=6, min_se=2, refresher="uac")
    async with Received("alice", session_timers=policy) as ua:
        await ua.listen("udp", "127.0.0.1", 0)
        call = ua.dial(dave.uri())
        starts = asyncio.ensure_future(intervals_started(call, 3))
        await within(call.answered())
        timers = await starts  # the 2xx, then the 2xx to two of our UPDATEs
        assert all(t.interval == 6 and t.we_refresh for t in timers)
        assert "UPDATE" not in ua.methods and call.state is CallState.ANSWERED
        await within(call.hangup())


async def test_linphone_calling_the_toolkit_refreshes_the_session_by_update(
    linphone_factory: Callable[..., Linphone],
) -> None:
    dave = linphone_factory("dave", sip_options=LINPHONE_TIMERS)
    policy = SessionTimerPolicy(session_expires=6, min_se=2)
    async with Received("carol", session_timers=policy) as ua:
        local = await ua.listen("udp", "127.0.0.1", 0)
        calls: asyncio.Queue[Call] = asyncio.Queue()

        async def answer(call: Call) -> None:
            await call.accept()
            calls.put_nowait(call)

        ua.on("incoming_call", answer)
        dave.call(f"sip:carol@{local.host}:{local.port}")
        call = await within(calls.get())
        timers = await intervals_started(call, 2)  # two refreshes after the 2xx
        assert all(t.interval == 6 and not t.we_refresh for t in timers)
        assert ua.methods[0] == "INVITE" and ua.methods.count("UPDATE") >= 2
        assert call.state is CallState.ANSWERED
        await within(call.hangup())
