"""One session through Kamailio over an address change nobody announces (issue 5, item 8).

In a network namespace the test creates run Kamailio (on the namespace's own loopback)
and two toolkit agents registered there: alice on 10.99.0.1 (veth ``va``), bob on
10.99.1.1 (veth ``vb``). Mid-prompt the test takes 10.99.0.1 off ``va`` and puts
10.99.0.2 there. With no call to ``rebind``, alice's agent hears of it (rtnetlink),
re-REGISTERs from 10.99.0.2 (Kamailio's location table then holds the new Contact only,
RFC 3261 §10.2.2) and re-INVITEs through the proxy; the session and its activity
survive, bob's RTP latches to the new address and counts packets from it, the prompt
resumes from the last confirmed major sync point, and bob's in-dialog requests, routed
by Kamailio, reach alice at the new address."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from support.netns import ip, namespace, run_in
from support.peers.kamailio import start_kamailio
from support.session import play_prompt, sessions_for
from support.ua import registered_at

from voip.session import Session, State
from voip.session import primitives as p

TIMEOUT = 20.0
OLD, NEW, BOB = "10.99.0.1", "10.99.0.2", "10.99.1.1"


async def _moved_through_kamailio(name: str, transport: str, run_dir: Path) -> None:
    # started from the namespace's thread: kamailio runs inside it, on its loopback
    kam = start_kamailio(run_dir, relay_net="^10[.]99[.]")
    try:
        async with (
            registered_at(kam, "alice", transport, OLD) as alice,
            registered_at(kam, "bob", transport, BOB) as bob,
        ):
            assert alice.address_monitor is not None
            assert alice.address_monitor.mechanism == "netlink"
            [before] = await kam.wait_registered("alice")
            assert f"@{OLD}:" in before.address
            changes: list[tuple[str, str]] = []
            alice.on("address_changed", lambda old, new: changes.append((old, new)))
            callees = sessions_for(bob)
            caller = await asyncio.wait_for(Session.connect(alice, kam.aor("bob")), TIMEOUT)
            callee = await asyncio.wait_for(callees.get(), TIMEOUT)
            assert callee.call.media is not None and caller.call.media is not None
            assert callee.call.media.stream.latched == (OLD, caller.call.media.port)
            prompt = await play_prompt(caller, callee, 3.0, run_dir / "bob.wav")
            restarting = asyncio.ensure_future(caller.wait_for(p.ResynchronizeConfirm))

            # the lease changes under the agent: nobody calls rebind
            await asyncio.to_thread(ip, name, "addr", "del", f"{OLD}/24", "dev", "va")
            await asyncio.to_thread(ip, name, "addr", "add", f"{NEW}/24", "dev", "va")
            restart = await asyncio.wait_for(restarting, TIMEOUT)

            assert changes == [(OLD, NEW)]
            # re-REGISTERed: the registrar holds the new Contact only, same Call-ID
            [after] = await kam.contacts("alice")
            assert f"@{NEW}:" in after.address and after.call_id == before.call_id
            assert alice.registrations[0].registered
            # the session and its activity survived; back to the major sync point
            assert restart.serial == prompt.serial and caller.state is State.STA713
            assert caller.machine.activity == b"prompt" and caller.recoveries == 1
            indication = await asyncio.wait_for(callee.wait_for(p.ResynchronizeIndication), TIMEOUT)
            assert indication.serial == prompt.serial
            heard = callee.call.media.statistics().packets_received
            await prompt.finished(caller)
            # media flows again from the new address: latched there, packets counted
            assert callee.call.media.stream.latched == (NEW, caller.call.media.port)
            assert callee.call.media.statistics().packets_received - heard >= 50
            # bob's in-dialog requests, routed by Kamailio, reach alice at the new address
            received: list[str] = []
            alice.transport.add_tracer(
                lambda direction, message, peer, local: (
                    received.append(local.host) if direction == "in" else None
                )
            )
            assert (await asyncio.wait_for(callee.call.options(), TIMEOUT)).status == 200
            assert received and OLD not in received
            if transport == "udp":  # over TCP: the flow alice opened to the proxy, from
                assert set(received) == {NEW}  # 127.0.0.1 (a loopback peer's route)
            end = await asyncio.wait_for(caller.activity_end(), TIMEOUT)
            assert end == p.ActivityEndConfirm(2)
            await asyncio.wait_for(caller.release(), TIMEOUT)
            await asyncio.wait_for(callee.wait_for(p.ReleaseIndication), TIMEOUT)
    finally:
        kam.stop()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_a_session_through_kamailio_follows_an_unannounced_address_change(
    transport: str, tmp_path: Path
) -> None:
    with namespace({"va": f"{OLD}/24", "vb": f"{BOB}/24"}) as name:
        run_in(name, lambda: _moved_through_kamailio(name, transport, tmp_path / "kam"))
