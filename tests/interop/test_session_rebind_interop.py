"""One session over several local addresses, through Kamailio (issue 5, item 8): mid-prompt
the calling agent moves from 127.0.0.2 to 127.0.0.3 (``UserAgent.rebind``). It
re-REGISTERs (Kamailio's location table then holds the new Contact, the old one removed
with ``expires=0``, RFC 3261 §10.2.2) and re-INVITEs through the proxy with the new
Contact and SDP; the far side's in-dialog requests, routed by Kamailio, reach the new
address, the session and its activity survive, the prompt restarts from the last major
sync point and the recording on the other side has no gap longer than the move plus one
second."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from support.peers import Kamailio
from support.session import play_prompt, sessions_for
from support.ua import registered_at

from voip.session import Session, State
from voip.session import primitives as p

TIMEOUT = 20.0
OLD, NEW = "127.0.0.2", "127.0.0.3"


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_a_session_through_kamailio_follows_its_agent_to_a_new_local_address(
    kamailio: Kamailio, transport: str, tmp_path: Path
) -> None:
    async with (
        registered_at(kamailio, "alice", transport, OLD) as alice,
        registered_at(kamailio, "bob", transport, "127.0.0.1") as bob,
    ):
        [before] = await kamailio.wait_registered("alice")
        assert f"@{OLD}:" in before.address
        callees = sessions_for(bob)
        caller = await asyncio.wait_for(Session.connect(alice, kamailio.aor("bob")), TIMEOUT)
        callee = await asyncio.wait_for(callees.get(), TIMEOUT)
        assert callee.call.media is not None and caller.call.media is not None
        prompt = await play_prompt(caller, callee, 3.0, tmp_path / "bob.wav")

        restarting = asyncio.ensure_future(caller.wait_for(p.ResynchronizeConfirm))
        moved = time.monotonic()
        await asyncio.wait_for(alice.rebind(NEW), TIMEOUT)
        restart = await asyncio.wait_for(restarting, TIMEOUT)
        outage = time.monotonic() - moved

        # the registrar holds the new Contact only: the old binding was removed
        [after] = await kamailio.contacts("alice")
        assert f"@{NEW}:" in after.address and after.call_id == before.call_id
        assert alice.registrations[0].registered
        # the re-INVITE through the proxy refreshed bob's target and RTP address
        assert callee.call.media.stream.latched == (NEW, caller.call.media.port)
        assert restart.serial == prompt.serial and caller.state is State.STA713
        assert caller.machine.activity == b"prompt" and caller.recoveries == 1
        indication = await asyncio.wait_for(callee.wait_for(p.ResynchronizeIndication), TIMEOUT)
        assert indication.serial == prompt.serial
        assert await prompt.finished(caller) < outage + 1.0
        # bob's in-dialog requests, routed by Kamailio, reach alice at the new address
        received: list[str] = []
        alice.transport.add_tracer(
            lambda direction, message, peer, local: (
                received.append(local.host) if direction == "in" else None
            )
        )
        assert (await asyncio.wait_for(callee.call.options(), TIMEOUT)).status == 200
        assert received and set(received) == {NEW}
        assert await asyncio.wait_for(caller.activity_end(), TIMEOUT) == p.ActivityEndConfirm(2)
        await asyncio.wait_for(caller.release(), TIMEOUT)
        await asyncio.wait_for(callee.wait_for(p.ReleaseIndication), TIMEOUT)
