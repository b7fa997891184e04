"""One session over an address change that nobody announces (issue 5, item 8): in a
network namespace the test creates, alice listens on 10.99.0.1 (veth ``va``) and calls
bob on 10.99.1.1 (veth ``vb``); mid-prompt the test takes 10.99.0.1 off ``va`` and puts
10.99.0.2 there, as a new lease would. Without any call to ``rebind``, alice's agent
hears of it (rtnetlink), moves to 10.99.0.2 and re-INVITEs from there; the session and
its activity survive, bob's RTP latches to the new address and counts packets from it,
and the prompt resumes from the last confirmed major sync point."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from support.netns import ip, namespace, run_in
from support.session import play_prompt, sessions_for

from voip.session import Session, State
from voip.session import primitives as p
from voip.sip import SipUri
from voip.transport.addresses import MOVING_ERRORS, Move
from voip.transport.monitor import AddressMonitor
from voip.useragent import UserAgent

TIMEOUT = 10.0
OLD, NEW, BOB = "10.99.0.1", "10.99.0.2", "10.99.1.1"


async def _moved_session(name: str, transport: str, recording: Path) -> None:
    alice, bob = UserAgent("alice"), UserAgent("bob")
    try:
        await alice.listen(transport, OLD, 0)
        await bob.listen(transport, BOB, 0)
        # on by default: a specific address that is not loopback, watched by rtnetlink
        assert alice.address_monitor is not None
        assert alice.address_monitor.mechanism == "netlink"
        changes: list[tuple[str, str]] = []
        alice.on("address_changed", lambda old, new: changes.append((old, new)))
        rebound: asyncio.Future[list[object]] = asyncio.get_running_loop().create_future()
        alice.on("rebound", rebound.set_result)

        callees = sessions_for(bob)
        endpoint = bob.listening[0]
        target = f"sip:bob@{BOB}:{endpoint.port};transport={transport}"
        caller = await asyncio.wait_for(Session.connect(alice, target), TIMEOUT)
        callee = await asyncio.wait_for(callees.get(), TIMEOUT)
        assert caller.call.media is not None and callee.call.media is not None
        assert callee.call.media.stream.latched == (OLD, caller.call.media.port)
        restarted_at: list[int] = []
        caller.on("S-RESYNCHRONIZE confirm", lambda _: restarted_at.append(caller.position))
        prompt = await play_prompt(caller, callee, 3.0, recording)
        restarting = asyncio.ensure_future(caller.wait_for(p.ResynchronizeConfirm))

        # the lease changes under the agent: nobody calls rebind
        await asyncio.to_thread(ip, name, "addr", "del", f"{OLD}/24", "dev", "va")
        await asyncio.to_thread(ip, name, "addr", "add", f"{NEW}/24", "dev", "va")
        try:
            restart = await asyncio.wait_for(restarting, TIMEOUT)
        except TimeoutError:
            moved = f"changes {changes}, rebound {rebound.done()}; {_state(alice, caller)}"
            raise AssertionError(f"no S-RESYNCHRONIZE confirm: {moved}") from None
        listening = await asyncio.wait_for(rebound, TIMEOUT)

        assert changes == [(OLD, NEW)]
        assert [(e.transport, e.host) for e in listening] == [(transport, NEW)]  # type: ignore[attr-defined]
        assert all(c.local.host != OLD for c in alice.transport.connections)
        # the re-INVITE came from the new address: bob's dialog targets it, its SDP names it
        assert callee.call.dialog is not None
        remote = callee.call.dialog.remote_target
        assert isinstance(remote, SipUri) and remote.host == NEW
        described = callee.call.negotiation.remote
        assert described is not None and described.connection is not None
        assert described.connection.address == NEW
        # the session and its activity survived; the prompt went back to the sync point
        moves = [e for e in caller.history if isinstance(e, p.PExceptionReportIndication)]
        assert [e.reason for e in moves] == [f"local address changed to {NEW}"]
        assert restart.serial == prompt.serial and caller.state is State.STA713
        assert caller.machine.activity == b"prompt" and caller.recoveries == 1
        indication = await asyncio.wait_for(callee.wait_for(p.ResynchronizeIndication), TIMEOUT)
        assert indication.serial == prompt.serial
        # media flows again, from the new address: bob latched to it and counts its packets
        heard = callee.call.media.statistics().packets_received
        await prompt.finished(caller)  # the rest of the prompt, from the checkpoint
        assert restarted_at == [prompt.checkpoint]
        assert callee.call.media.stream.latched == (NEW, caller.call.media.port)
        assert callee.call.media.statistics().packets_received - heard >= 50  # >= 1 s of it
        assert caller.call.media.stream.ports.host == NEW
        # bob's in-dialog requests reach alice at the new address
        assert (await asyncio.wait_for(callee.call.options(), TIMEOUT)).status == 200
        assert await asyncio.wait_for(caller.activity_end(), TIMEOUT) == p.ActivityEndConfirm(2)
        await asyncio.wait_for(caller.release(), TIMEOUT)
        await asyncio.wait_for(callee.wait_for(p.ReleaseIndication), TIMEOUT)
    finally:
        await alice.close()
        await bob.close()


def _state(alice: UserAgent, caller: Session) -> str:
    """What a failed move left behind, for the failure's message."""
    monitor = alice.address_monitor
    follower = monitor.follower if monitor is not None else None
    return (
        f"follower {follower and _vars_of(follower)}; listening {alice.listening}; "
        f"call {caller.call.state} {alice.resources()}; session {caller.state} "
        f"activity {caller.machine.activity!r}; history {caller.history[-6:]}"
    )


def _vars_of(follower: object) -> dict[str, object]:
    return {k: getattr(follower, k) for k in ("bound", "lost", "addresses", "_interface")}


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_a_session_follows_its_agent_when_the_local_address_changes_unannounced(
    transport: str, tmp_path: Path
) -> None:
    with namespace({"va": f"{OLD}/24", "vb": f"{BOB}/24"}) as name:
        run_in(name, lambda: _moved_session(name, transport, tmp_path / "bob.wav"))


async def _polled_move(name: str) -> list[Move]:
    moves: list[Move] = []
    peer = "192.0.2.10"  # a remote peer, reached through va
    await asyncio.to_thread(ip, name, "route", "add", "192.0.2.0/24", "dev", "va")
    monitor = AddressMonitor(
        OLD, peers=lambda: [peer], on_move=moves.append, netlink=False, poll_interval=0.02
    )
    monitor.start()
    try:
        assert monitor.mechanism == "polling"
        await asyncio.sleep(0.1)  # polls that find the address in place
        assert moves == []
        await asyncio.to_thread(ip, name, "addr", "del", f"{OLD}/24", "dev", "va")
        await asyncio.to_thread(ip, name, "addr", "add", f"{NEW}/24", "dev", "va")
        # the last address of va gone, its routes went with it: the new lease's route
        await asyncio.to_thread(ip, name, "route", "add", "192.0.2.0/24", "dev", "va")
        for _ in range(500):
            if moves:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)  # later polls: no second move
        return moves
    finally:
        monitor.close()


def test_without_rtnetlink_a_poll_finds_the_new_address_by_the_route_to_a_peer() -> None:
    with namespace({"va": f"{OLD}/24", "vb": f"{BOB}/24"}) as name:
        moves = run_in(name, lambda: _polled_move(name))
    assert moves == [Move(OLD, NEW, f"{OLD} cannot be bound")]


async def _move_on_failed_send(name: str) -> tuple[int, list[Move]]:
    moves: list[Move] = []
    await asyncio.to_thread(ip, name, "route", "add", "192.0.2.0/24", "dev", "va")
    monitor = AddressMonitor(
        OLD, peers=lambda: ["192.0.2.10"], on_move=moves.append, netlink=False, poll_interval=3600
    )
    monitor.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((OLD, 0))
            await asyncio.to_thread(ip, name, "addr", "del", f"{OLD}/24", "dev", "va")
            await asyncio.to_thread(ip, name, "addr", "add", f"{NEW}/24", "dev", "va")
            await asyncio.to_thread(ip, name, "route", "add", "192.0.2.0/24", "dev", "va")
            assert moves == []  # no event heard, no poll due for an hour
            with pytest.raises(OSError) as failed:
                sock.sendto(b"x", ("192.0.2.10", 5060))  # from the address that left
            code = failed.value.errno
            assert code is not None
            monitor.send_failed(code)  # what the agent's transport reports
        return code, moves
    finally:
        monitor.close()


def test_a_send_failing_from_an_address_that_left_makes_the_agent_look_at_once() -> None:
    with namespace({"va": f"{OLD}/24", "vb": f"{BOB}/24"}) as name:
        code, moves = run_in(name, lambda: _move_on_failed_send(name))
    assert code in MOVING_ERRORS
    assert moves == [Move(OLD, NEW, f"{OLD} cannot be bound")]


async def _move_after_lost_events(name: str) -> tuple[list[Move], int]:
    moves: list[Move] = []
    # the smallest buffer the kernel gives: a handful of events fill it
    monitor = AddressMonitor(OLD, peers=lambda: [BOB], on_move=moves.append, receive_buffer=1)
    monitor.start()
    try:
        assert monitor.mechanism == "netlink"
        await asyncio.sleep(0.2)  # the first dump, read
        assert moves == [] and monitor.overflows == 0
        # the loop is held up (these calls block it) while the addresses change: the
        # events of the first additions fill the buffer, the move's own are dropped
        for host in range(2, 42):
            ip(name, "addr", "add", f"10.99.2.{host}/24", "dev", "vb")
        ip(name, "addr", "del", f"{OLD}/24", "dev", "va")
        ip(name, "addr", "add", f"{NEW}/24", "dev", "va")
        for _ in range(250):
            if moves:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)  # no second move
        return moves, monitor.overflows
    finally:
        monitor.close()


def test_address_events_the_kernel_dropped_are_asked_for_again() -> None:
    with namespace({"va": f"{OLD}/24", "vb": f"{BOB}/24"}) as name:
        moves, overflows = run_in(name, lambda: _move_after_lost_events(name))
    assert overflows >= 1
    assert [(m.old, m.new) for m in moves] == [(OLD, NEW)]
