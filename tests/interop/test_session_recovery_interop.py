"""One session over several TCP connections through Kamailio (issue 5, item 8): mid-prompt
the proxy is stopped by pid and started again on the same port, which cuts every TCP
connection under the call and forgets every registration. Each agent reconnects,
re-REGISTERs and re-INVITEs; the session and its activity survive, the prompt restarts
from the last major sync point, and the recording on the other side has no gap longer
than the outage plus one second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from support.peers import Kamailio
from support.session import play_prompt, sessions_for

from voip.session import Session, State
from voip.session import primitives as p
from voip.sip import Credentials
from voip.useragent import UserAgent

TIMEOUT = 20.0


@asynccontextmanager
async def registered(kam: Kamailio, user: str) -> AsyncIterator[UserAgent]:
    """A toolkit agent for ``user`` over TCP through ``kam``, registered there."""
    ua = UserAgent(
        user,
        domain=kam.domain,
        credentials=[Credentials(user, kam.users[user])],
        outbound_proxy=kam.outbound_proxy("tcp"),
    )
    await ua.listen("tcp", "127.0.0.1", 0)
    try:
        await asyncio.wait_for(ua.register(kam.uri(transport="tcp"), expires=300), TIMEOUT)
        yield ua
    finally:
        await ua.close()


async def test_a_session_through_kamailio_survives_a_restart_of_the_proxy_over_tcp(
    kamailio_factory: Callable[..., Kamailio], tmp_path: Path
) -> None:
    kam = kamailio_factory()  # this test's own: it is stopped and started again
    async with registered(kam, "alice") as alice, registered(kam, "bob") as bob:
        callees = sessions_for(bob)
        caller = await asyncio.wait_for(Session.connect(alice, kam.aor("bob")), TIMEOUT)
        callee = await asyncio.wait_for(callees.get(), TIMEOUT)
        assert callee.call.media is not None and caller.call.media is not None
        # 8 s: still playing when the proxy is back
        prompt = await play_prompt(caller, callee, 8.0, tmp_path / "bob.wav")

        cut = time.monotonic()
        await asyncio.to_thread(kam.halt)  # by pid: every TCP connection through it drops
        await asyncio.sleep(0.5)
        await asyncio.to_thread(kam.resume)  # the same port, an empty location table
        restart = await asyncio.wait_for(caller.wait_for(p.ResynchronizeConfirm), TIMEOUT)
        outage = time.monotonic() - cut

        assert restart.serial == prompt.serial
        assert caller.recoveries == 1 and caller.state is State.STA713
        assert caller.machine.activity == b"prompt"  # the activity survived
        lost = [e for e in caller.history if isinstance(e, p.PExceptionReportIndication)]
        assert lost and lost[0].reason.startswith("transport lost")
        indication = await asyncio.wait_for(callee.wait_for(p.ResynchronizeIndication), TIMEOUT)
        assert indication.serial == prompt.serial
        # both re-REGISTERed with the restarted proxy, over new connections, and the
        # callee re-INVITEd too (its flow was lost as well)
        assert await kam.wait_registered("alice") and await kam.wait_registered("bob")
        async with asyncio.timeout(TIMEOUT):
            while callee.recoveries != 1:
                await asyncio.sleep(0.05)
        assert callee.state is State.STA713 and callee.machine.activity == b"prompt"
        assert await prompt.finished(caller, TIMEOUT) < outage + 1.0
        # the session goes on through the restarted proxy: the activity ends, S-RELEASE
        assert await asyncio.wait_for(caller.activity_end(), TIMEOUT) == p.ActivityEndConfirm(2)
        await asyncio.wait_for(caller.release(), TIMEOUT)
        await asyncio.wait_for(callee.wait_for(p.ReleaseIndication), TIMEOUT)
