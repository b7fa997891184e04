"""One session over several transport connections (issue 5, item 8): the TCP connection
under a call is cut from the far side mid-prompt; the session re-INVITEs over a new one,
the prompt restarts from the last major sync point, and the recording on the other side
has no gap longer than the outage plus one second. Consecutive sessions reuse one
connection."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.session import play_prompt, sessions_for

from voip.session import Session, State
from voip.session import primitives as p
from voip.useragent import UserAgent

TIMEOUT = 10.0


@pytest.fixture
async def tcp_pair() -> AsyncIterator[tuple[UserAgent, UserAgent]]:
    alice, bob = UserAgent("alice"), UserAgent("bob")
    await alice.listen("tcp", "127.0.0.1", 0)
    await bob.listen("tcp", "127.0.0.1", 0)
    yield alice, bob
    await alice.close()
    await bob.close()


def tcp_uri(ua: UserAgent) -> str:
    endpoint = ua.listening[0]
    return f"sip:{ua.user}@{endpoint.host}:{endpoint.port};transport=tcp"


async def test_a_cut_tcp_connection_is_mended_and_the_prompt_restarts_at_the_major_sync_point(
    tcp_pair: tuple[UserAgent, UserAgent], tmp_path: Path
) -> None:
    alice, bob = tcp_pair
    callees = sessions_for(bob)
    caller = await asyncio.wait_for(Session.connect(alice, tcp_uri(bob)), TIMEOUT)
    callee = await asyncio.wait_for(callees.get(), TIMEOUT)
    restarted_at: list[int] = []
    caller.on("S-RESYNCHRONIZE confirm", lambda _: restarted_at.append(caller.position))
    prompt = await play_prompt(caller, callee, 3.0, tmp_path / "bob.wav")
    # the checkpoint is what had been sent: at most the 10 queued frames short of 1 s
    assert 8000 - 10 * 160 <= prompt.checkpoint <= 8000
    cut = time.monotonic()
    for connection in bob.transport.connections:
        connection.abort()  # the far side drops every connection under the call
    restart = await asyncio.wait_for(caller.wait_for(p.ResynchronizeConfirm), TIMEOUT)
    outage = time.monotonic() - cut
    assert restart.serial == prompt.serial
    assert caller.recoveries == 1 and caller.state is State.STA713
    assert any(isinstance(e, p.PExceptionReportIndication) for e in caller.history)
    indication = await asyncio.wait_for(callee.wait_for(p.ResynchronizeIndication), TIMEOUT)
    assert indication.serial == prompt.serial
    assert await prompt.finished(caller) < outage + 1.0
    assert restarted_at == [prompt.checkpoint]  # the prompt went back to the major sync point
    assert await asyncio.wait_for(caller.activity_end(), TIMEOUT) == p.ActivityEndConfirm(2)
    await asyncio.wait_for(caller.release(), TIMEOUT)


async def test_consecutive_sessions_reuse_one_tcp_connection(
    tcp_pair: tuple[UserAgent, UserAgent],
) -> None:
    alice, bob = tcp_pair
    callees = sessions_for(bob)
    used = []
    for _ in range(3):
        caller = await asyncio.wait_for(Session.connect(alice, tcp_uri(bob)), TIMEOUT)
        await asyncio.wait_for(callees.get(), TIMEOUT)
        used.append(alice.transport.connections)
        await asyncio.wait_for(caller.release(), TIMEOUT)
    assert len(used[0]) == 1 and used[0] == used[1] == used[2]


async def test_a_lost_connection_that_cannot_be_mended_is_an_s_p_abort(
    tcp_pair: tuple[UserAgent, UserAgent],
) -> None:
    alice, bob = tcp_pair
    callees = sessions_for(bob)
    caller = await asyncio.wait_for(Session.connect(alice, tcp_uri(bob)), TIMEOUT)
    await asyncio.wait_for(callees.get(), TIMEOUT)
    caller.recovery_window = 1.0  # tries again for a second (0.25, 0.5 s back-off)
    await bob.transport.close()  # the peer is gone for good: nothing listens any more
    event = await asyncio.wait_for(caller.wait_for(p.PAbortIndication), TIMEOUT)
    assert event.status == 503 and "not recovered" in event.reason
    assert caller.state is State.STA01 and caller.recoveries == 0
    # the loss, then each re-INVITE that could not be sent (tried again after 0.25 s)
    reports = [e for e in caller.history if isinstance(e, p.PExceptionReportIndication)]
    assert reports[0].reason.startswith("transport lost") and len(reports) >= 3


async def test_a_cut_websocket_connection_is_mended_over_a_new_one() -> None:
    """The same over SIP over WebSocket (RFC 7118): the client, which only opens
    connections, re-INVITEs over a new one to the server's listener."""
    async with UserAgent("alice", transports=("ws",)) as alice, UserAgent("bob") as bob:
        at = await bob.listen("ws", "127.0.0.1", 0)
        callees = sessions_for(bob)
        caller = await asyncio.wait_for(
            Session.connect(alice, f"sip:bob@127.0.0.1:{at.port};transport=ws"), TIMEOUT
        )
        await asyncio.wait_for(callees.get(), TIMEOUT)
        (first,) = alice.transport.connections
        for connection in bob.transport.connections:
            connection.abort()
        async with asyncio.timeout(TIMEOUT):  # no activity under way: nothing to restart
            while caller.recoveries == 0:
                await asyncio.sleep(0.02)
        assert caller.state is State.STA713
        assert any(isinstance(e, p.PExceptionReportIndication) for e in caller.history)
        (second,) = alice.transport.connections
        assert second is not first and alice.transport.counters.connections_opened == 2
        await asyncio.wait_for(caller.release(), TIMEOUT)
