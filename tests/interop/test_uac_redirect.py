"""The toolkit as UAC follows 3xx redirects (RFC 3261 §8.1.3.4) from real redirect servers
(Kamailio redirecting to a user's registered contacts, SIPp's uas_redirect scenario): the
Contacts in order of q, a failed target making way for the next, each target once (two
servers redirecting to each other end), a bound on 3xx in a row, and the 3xx surfaced when
the call is told not to follow."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from support.peers import Kamailio, Sipp
from support.sip_trace import traced_agent

from voip.call import Call
from voip.sip import Credentials
from voip.useragent import RequestFailed

TIMEOUT = 15.0


@pytest.fixture(scope="module")
def redirect_server(kamailio_factory: Callable[..., Kamailio]) -> Kamailio:
    return kamailio_factory(redirect=True, children=2, pki=None)


async def test_kamailio_redirects_to_two_registered_devices_the_busy_one_makes_way(
    redirect_server: Kamailio,
) -> None:
    """Alice sends her INVITE to Kamailio itself (no outbound proxy: a redirected request
    keeps the route set, and would go through it again). Kamailio challenges it, then
    answers 302 with both of Bob's registered contacts; Alice calls the first directly,
    which is busy, then the second, which answers."""
    kam = redirect_server
    kam.clear_location_sync()

    def account(user: str) -> dict[str, object]:
        return {"domain": kam.domain, "credentials": [Credentials(user, kam.users[user])]}

    reached: list[Call] = []

    def busy_first(call: Call) -> None:
        reached.append(call)
        if len(reached) == 1:
            call.reject_now(486)
        else:
            call.accept_now()

    async with (
        traced_agent("bob", **account("bob")) as (phone, _),
        traced_agent("bob", **account("bob")) as (desk, _),
        traced_agent("alice", **account("alice")) as (alice, trace),
    ):
        for device in (phone, desk):
            device.on("incoming_call", busy_first)
            await asyncio.wait_for(device.register(kam.uri(), expires=300), TIMEOUT)
        call = alice.dial(kam.uri("bob"))
        await asyncio.wait_for(call.answered(), TIMEOUT)
        finals = [t.label for t in trace.of(call.call_id) if t.direction == "in"]
        assert [label for label in finals if label[0] in "2345"] == ["407", "302", "486", "200"]
        invites = [t for t in trace.of(call.call_id) if t.label == "INVITE"]
        assert [t.peer.port for t in invites] == [kam.udp_port] * 2 + [
            device.ua.listening[0].port for device in reached
        ]
        assert {device.ua for device in reached} == {phone, desk}
        await asyncio.wait_for(call.hangup(), TIMEOUT)


async def test_contacts_are_tried_in_q_order_and_a_busy_target_makes_way_for_the_next(
    sipp: Sipp,
) -> None:
    busy = sipp.start("uas_busy", calls=1)
    answering = sipp.start("uas_call", calls=1)
    never = sipp.start("uas_busy", calls=1)  # lowest q: the call is answered before it
    contacts = (
        f"<{answering.uri('bob')}>;q=0.5, <{never.uri('bob')}>;q=0.1, <{busy.uri('bob')}>;q=0.9"
    )
    redirect = sipp.start("uas_redirect", calls=1, keys={"target": contacts})
    async with traced_agent("alice") as (alice, trace):
        call = alice.dial(redirect.uri("bob"))
        await asyncio.wait_for(call.answered(), TIMEOUT)
        invites = [t.message for t in trace.of(call.call_id) if t.label == "INVITE"]
        assert [str(m.uri) for m in invites] == [
            redirect.uri("bob"),
            busy.uri("bob"),
            answering.uri("bob"),
        ]
        # one call to the user: one Call-ID and From tag, CSeq one more at each target
        assert [m.cseq.number for m in invites] == [1, 2, 3]
        assert len({m.from_.tag for m in invites}) == 1
        assert len({m.via[0].branch for m in invites}) == 3
        await asyncio.wait_for(call.hangup(), TIMEOUT)
    for uas in (redirect, busy, answering):
        result = await uas.wait(TIMEOUT)
        assert result.ok, result.report()
    assert never.stop().messages().count("INVITE sip:") == 0


async def test_a_target_over_a_transport_the_agent_lacks_makes_way_for_the_next(
    sipp: Sipp,
) -> None:
    """The agent listens on UDP only: the best Contact (over TCP) cannot be reached and the
    INVITE goes on to the next one at once."""
    answering = sipp.start("uas_call", calls=1)
    contacts = f"<sip:bob@127.0.0.1:9;transport=tcp>;q=1.0, <{answering.uri('bob')}>;q=0.5"
    redirect = sipp.start("uas_redirect", calls=1, keys={"target": contacts})
    async with traced_agent("alice") as (alice, trace):
        call = alice.dial(redirect.uri("bob"))
        await asyncio.wait_for(call.answered(), TIMEOUT)
        invites = [t.message for t in trace.of(call.call_id) if t.label == "INVITE"]
        assert [str(m.uri) for m in invites] == [redirect.uri("bob"), answering.uri("bob")]
        assert [m.cseq.number for m in invites] == [1, 3]  # CSeq 2 was for the TCP target
        await asyncio.wait_for(call.hangup(), TIMEOUT)
    for uas in (redirect, answering):
        result = await uas.wait(TIMEOUT)
        assert result.ok, result.report()


async def test_two_redirect_servers_pointing_at_each_other_end_with_the_second_3xx(
    sipp: Sipp,
) -> None:
    first_port, second_port = _two_ports()
    first = sipp.start(
        "uas_redirect",
        calls=1,
        local_port=first_port,
        keys={"target": f"<sip:bob@127.0.0.1:{second_port};transport=udp>"},
    )
    second = sipp.start(
        "uas_redirect",
        calls=1,
        local_port=second_port,
        keys={"target": f"<sip:bob@127.0.0.1:{first_port};transport=udp>"},
    )
    async with traced_agent("alice") as (alice, trace):
        call = alice.dial(first.uri("bob"))
        with pytest.raises(RequestFailed) as error:
            await asyncio.wait_for(call.answered(), TIMEOUT)
        assert error.value.status == 302
        assert error.value.response is not None
        assert str(error.value.response.contact[0].uri) == first.uri("bob")
        sent = [t for t in trace.of(call.call_id) if t.direction == "out"]
        assert [t.label for t in sent] == ["INVITE", "ACK", "INVITE", "ACK"]
    for uas in (first, second):
        result = await uas.wait(TIMEOUT)
        assert result.ok, result.report()


async def test_a_chain_longer_than_max_redirects_ends_with_the_last_3xx(sipp: Sipp) -> None:
    never = sipp.start("uas_call", calls=1)
    third = sipp.start("uas_redirect", calls=1, keys={"target": f"<{never.uri('bob')}>"})
    second = sipp.start("uas_redirect", calls=1, keys={"target": f"<{third.uri('bob')}>"})
    first = sipp.start("uas_redirect", calls=1, keys={"target": f"<{second.uri('bob')}>"})
    async with traced_agent("alice", max_redirects=2) as (alice, trace):
        call = alice.dial(first.uri("bob"))
        with pytest.raises(RequestFailed) as error:
            await asyncio.wait_for(call.answered(), TIMEOUT)
        assert error.value.status == 302
        assert error.value.response is not None
        assert str(error.value.response.contact[0].uri) == never.uri("bob")
        invites = [t for t in trace.of(call.call_id) if t.label == "INVITE"]
        assert len(invites) == 3
    for uas in (first, second, third):
        result = await uas.wait(TIMEOUT)
        assert result.ok, result.report()
    assert never.stop().messages().count("INVITE sip:") == 0


async def test_a_call_told_not_to_follow_surfaces_the_302_with_its_contacts(sipp: Sipp) -> None:
    target = sipp.start("uas_call", calls=1)
    contacts = f"<{target.uri('bob')}>;q=0.7, <sip:bob@127.0.0.1:9;transport=udp>;q=0.2"
    redirect = sipp.start("uas_redirect", calls=1, keys={"target": contacts})
    async with traced_agent("alice") as (alice, trace):
        redirected: list[object] = []
        call = alice.dial(redirect.uri("bob"), follow_redirects=False)
        call.on("redirected", lambda *args: redirected.append(args))
        with pytest.raises(RequestFailed) as error:
            await asyncio.wait_for(call.answered(), TIMEOUT)
        assert (error.value.status, error.value.reason) == (302, "Moved Temporarily")
        response = error.value.response
        assert response is not None
        assert [str(c.uri) for c in response.contact] == [
            target.uri("bob"),
            "sip:bob@127.0.0.1:9;transport=udp",
        ]
        assert (await call.ended()).status == 302
        assert redirected == []
        assert [t.label for t in trace.of(call.call_id)] == ["INVITE", "302", "ACK"]
    assert (await redirect.wait(TIMEOUT)).ok
    assert target.stop().messages().count("INVITE sip:") == 0


def _two_ports() -> tuple[int, int]:
    from support.peers._process import free_port

    first = free_port("udp")
    second = free_port("udp")
    while second == first:
        second = free_port("udp")
    return first, second
