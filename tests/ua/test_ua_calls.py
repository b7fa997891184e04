"""The user agent core between two agents on loopback: OPTIONS, calls, hold, teardown.

These check the toolkit's own call flows end to end over real sockets; what other
implementations make of them is shown in ``tests/interop``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from support.ua import TIMEOUT, answer_calls, connected, ringing, uri_of

from sdp import Direction
from voip.call import Call, CallState
from voip.sip import Request
from voip.useragent import RequestFailed, UserAgent


async def test_options_is_answered_with_allow_accept_and_supported(
    alice: UserAgent, bob: UserAgent
) -> None:
    response = await asyncio.wait_for(alice.options(uri_of(bob)), TIMEOUT)
    assert response.status == 200
    assert "INVITE" in response.allow and "BYE" in response.allow
    assert response.headers.get("Accept") == "application/sdp"


async def test_a_call_is_answered_and_both_sides_agree_on_pcmu(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, callee = await connected(alice, bob)
    assert caller.state is CallState.ANSWERED and callee.state is CallState.ANSWERED
    assert caller.agreed[0].codecs[0].name == "PCMU"
    assert callee.agreed[0].codecs[0].name == "PCMU"
    assert caller.agreed[0].direction is Direction.SENDRECV
    assert caller.agreed[0].telephone_event is not None
    assert caller.dialog is not None and callee.dialog is not None
    assert caller.dialog.id.local_tag == callee.dialog.id.remote_tag


async def test_bye_from_the_caller_ends_both_sides(alice: UserAgent, bob: UserAgent) -> None:
    caller, callee = await connected(alice, bob)
    await asyncio.wait_for(caller.hangup(), TIMEOUT)
    reason = await asyncio.wait_for(callee.ended(), TIMEOUT)
    assert reason.by == "remote" and caller.end_reason is not None
    assert caller.end_reason.by == "local"
    assert not alice.calls and not bob.calls


async def test_the_caller_stops_media_as_soon_as_its_bye_goes_not_when_answered(
    alice: UserAgent, bob: UserAgent
) -> None:
    # RFC 3261 §15.1.1: the UAC stops sending and listening for media once the BYE is
    # passed to its transaction (what the peer sends while it tears down, e.g. baresip's
    # RTCP BYE outside SRTP, is not taken as the call's media)
    caller, callee = await connected(alice, bob)
    seen: list[tuple[bool, CallState]] = []
    callee.on("bye", lambda _: seen.append((caller.media.closed, caller.state)))
    await asyncio.wait_for(caller.hangup(), TIMEOUT)
    assert seen == [(True, CallState.ANSWERED)]  # the 200 had not come yet
    assert caller.state is CallState.ENDED


async def test_an_ended_call_is_not_kept_by_the_transactions_that_still_wait(
    alice: UserAgent, bob: UserAgent
) -> None:
    # RFC 3261 §17.2.2: the BYE's server transaction waits Timer J (64·T1) to absorb
    # retransmissions, and the INVITE's Timer L; neither needs the call any more.
    caller, callee = await connected(alice, bob)
    await asyncio.wait_for(caller.hangup(), TIMEOUT)
    await asyncio.wait_for(callee.ended(), TIMEOUT)
    waiting = {t.method for t in bob.transactions.servers.values() if not t.terminated}
    assert waiting == {"INVITE", "BYE"}
    assert bob.resources()["server_owners"] == 0


async def test_bye_from_the_callee_ends_both_sides(alice: UserAgent, bob: UserAgent) -> None:
    caller, callee = await connected(alice, bob)
    await asyncio.wait_for(callee.hangup(), TIMEOUT)
    reason = await asyncio.wait_for(caller.ended(), TIMEOUT)
    assert reason.by == "remote"


async def test_a_refused_call_raises_with_the_status(alice: UserAgent, bob: UserAgent) -> None:
    async def busy(call: Call) -> None:
        await call.reject(486)

    bob.on("incoming_call", busy)
    with pytest.raises(RequestFailed) as error:
        await asyncio.wait_for(alice.call(uri_of(bob)), TIMEOUT)
    assert error.value.status == 486


async def test_cancel_while_ringing_ends_with_487_on_both_sides(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, callee = await ringing(alice, bob)
    await asyncio.wait_for(caller.cancel(), TIMEOUT)
    assert (await asyncio.wait_for(callee.ended(), TIMEOUT)).status == 487
    assert caller.end_reason is not None and caller.end_reason.status == 487
    with pytest.raises(RequestFailed):
        await caller.answered()


async def test_hold_and_resume_from_the_caller(alice: UserAgent, bob: UserAgent) -> None:
    caller, callee = await connected(alice, bob)
    held = asyncio.Event()
    resumed = asyncio.Event()
    callee.on("hold", held.set)
    callee.on("resume", resumed.set)
    await asyncio.wait_for(caller.hold(), TIMEOUT)
    await asyncio.wait_for(held.wait(), TIMEOUT)
    assert caller.agreed[0].direction is Direction.SENDONLY
    assert callee.agreed[0].direction is Direction.RECVONLY
    await asyncio.wait_for(caller.resume(), TIMEOUT)
    await asyncio.wait_for(resumed.wait(), TIMEOUT)
    assert caller.agreed[0].direction is Direction.SENDRECV
    assert callee.agreed[0].direction is Direction.SENDRECV


async def test_hold_from_the_callee_and_both_holding_is_inactive(
    alice: UserAgent, bob: UserAgent
) -> None:
    caller, callee = await connected(alice, bob)
    await asyncio.wait_for(callee.hold(), TIMEOUT)
    assert caller.agreed[0].direction is Direction.RECVONLY
    await asyncio.wait_for(caller.hold(), TIMEOUT)
    assert caller.agreed[0].direction is Direction.INACTIVE
    assert callee.agreed[0].direction is Direction.INACTIVE
    await asyncio.wait_for(callee.resume(), TIMEOUT)
    assert callee.agreed[0].direction is Direction.RECVONLY  # the caller still holds
    await asyncio.wait_for(caller.resume(), TIMEOUT)
    assert caller.agreed[0].direction is Direction.SENDRECV


@pytest.mark.parametrize("buffer", [bytes, bytearray, memoryview])
async def test_info_within_the_call_reaches_the_peer(
    alice: UserAgent, bob: UserAgent, buffer: Callable[[bytes], bytes | bytearray | memoryview]
) -> None:
    """The body may come in any buffer (the compiled SIP core checks what it is given)."""
    caller, callee = await connected(alice, bob)
    got: asyncio.Queue[Request] = asyncio.Queue()
    callee.on("info", got.put_nowait)
    body = b"Signal=5\r\nDuration=160\r\n"
    response = await asyncio.wait_for(caller.info(buffer(body), "application/dtmf-relay"), TIMEOUT)
    assert response.status == 200
    assert (await asyncio.wait_for(got.get(), TIMEOUT)).body == body


async def test_a_call_to_an_agent_with_no_handler_is_refused_480(
    alice: UserAgent, bob: UserAgent
) -> None:
    with pytest.raises(RequestFailed) as error:
        await asyncio.wait_for(alice.call(uri_of(bob)), TIMEOUT)
    assert error.value.status == 480


async def test_a_request_in_an_unknown_dialog_gets_481(alice: UserAgent, bob: UserAgent) -> None:
    caller, callee = await connected(alice, bob)
    await asyncio.wait_for(callee.hangup(), TIMEOUT)
    await asyncio.wait_for(caller.ended(), TIMEOUT)
    caller.state = CallState.ANSWERED  # pretend we missed the BYE
    assert caller.dialog is not None
    caller.dialog.state = caller.dialog.state.CONFIRMED
    with pytest.raises(RequestFailed) as error:
        await asyncio.wait_for(caller.info(b"x", "text/plain"), TIMEOUT)
    assert error.value.status == 481


async def test_nothing_is_left_after_many_calls(alice: UserAgent, bob: UserAgent) -> None:
    answer_calls(bob, ring=False)
    for _ in range(20):
        call = await asyncio.wait_for(alice.call(uri_of(bob)), TIMEOUT)
        await asyncio.wait_for(call.hangup(), TIMEOUT)
    await asyncio.sleep(0.1)
    assert not alice.calls and not bob.calls
    # non-INVITE client transactions wait Timer K (T4) over UDP before they go
    assert all(t.method in ("BYE", "INVITE") for t in alice.transactions.clients.values())


async def test_the_same_invite_by_another_path_is_refused_482(bob: UserAgent) -> None:
    """§8.2.2.2: same From tag, Call-ID and CSeq as a request being answered, another branch."""
    ringing: asyncio.Queue[Call] = asyncio.Queue()

    async def ring(call: Call) -> None:
        await call.ring()
        ringing.put_nowait(call)

    bob.on("incoming_call", ring)
    local = bob.listening[0]
    loop = asyncio.get_running_loop()
    replies: asyncio.Queue[bytes] = asyncio.Queue()

    class Peer(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            replies.put_nowait(data)

    transport, _ = await loop.create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]

    def invite(branch: str) -> bytes:
        return (
            f"INVITE sip:bob@{local.host}:{local.port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch={branch}\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=m1\r\n"
            f"To: <sip:bob@{local.host}>\r\nCall-ID: merged-1\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:alice@127.0.0.1:{port}>\r\nContent-Length: 0\r\n\r\n"
        ).encode()

    try:
        transport.sendto(invite("z9hG4bKpath1"), (local.host, local.port))
        call = await asyncio.wait_for(ringing.get(), TIMEOUT)
        transport.sendto(invite("z9hG4bKpath2"), (local.host, local.port))
        statuses = []
        while b"482" not in b"".join(statuses):
            statuses.append((await asyncio.wait_for(replies.get(), TIMEOUT)).split(b"\r\n")[0])
        assert b"SIP/2.0 482 Loop Detected" in statuses
        assert call.state is CallState.INCOMING  # the first copy is still being answered
    finally:
        transport.close()
