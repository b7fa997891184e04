"""Challenges of several realms in one response (RFC 3261 §22.3, §16.7 step 6), from real
proxies: a Kamailio forks Alice's INVITE to two Kamailios that each challenge in a realm of
their own; the first aggregates both 407s into one, with two Proxy-Authenticate header
fields, and Alice answers both realms in one new INVITE."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from support.peers import Kamailio, Sipp
from support.sip_trace import traced_agent

from voip.call import Call
from voip.sip import Credentials, Request, Response
from voip.sip.fields import parse_auth

TIMEOUT = 15.0


@pytest.fixture(scope="module")
def forking_to_two_realms(
    kamailio_factory: Callable[..., Kamailio],
) -> tuple[Kamailio, Kamailio, Kamailio]:
    """A Kamailio that challenges nobody (the fork) and two that challenge, in the realms
    atlanta.example and biloxi.example."""
    options = {"children": 2, "pki": None, "shared_memory_mb": 64}
    fork = kamailio_factory(noauth=True, **options)
    atlanta = kamailio_factory(realm="atlanta.example", **options)
    biloxi = kamailio_factory(realm="biloxi.example", **options)
    return fork, atlanta, biloxi


def realms(message: Request | Response, name: str) -> list[str]:
    return sorted(parse_auth(value).params["realm"] for value in message.headers.get_all(name))


async def test_one_407_with_challenges_of_two_realms_is_answered_for_both_at_once(
    forking_to_two_realms: tuple[Kamailio, Kamailio, Kamailio], sipp: Sipp
) -> None:
    fork, atlanta, biloxi = forking_to_two_realms
    for kam in (fork, atlanta, biloxi):
        kam.clear_location_sync()
    # Bob's AoR at the fork has two contacts: the two challenging proxies
    for proxy in (atlanta, biloxi):
        await sipp.register(fork, "bob", f"sip:bob@{proxy.host}:{proxy.udp_port}")

    def account(kam: Kamailio, user: str) -> dict[str, object]:
        return {"domain": kam.domain, "credentials": [Credentials(user, kam.users[user])]}

    async with (
        traced_agent("bob", **account(atlanta, "bob")) as (answering, _),
        traced_agent("bob", **account(biloxi, "bob")) as (ringing, _),
        traced_agent("alice", outbound_proxy=fork.outbound_proxy(), **account(fork, "alice")) as (
            alice,
            trace,
        ),
    ):
        rung: asyncio.Future[Call] = asyncio.get_running_loop().create_future()

        async def answer_once_the_other_rings(call: Call) -> None:
            await rung  # both branches got through their proxy
            await call.accept()

        answering.on(
            "incoming_call", lambda call: answering.spawn(answer_once_the_other_rings(call))
        )

        async def ring(call: Call) -> None:
            await call.ring()  # 180: the proxy may CANCEL it (RFC 3261 §9.1)
            rung.set_result(call)

        ringing.on("incoming_call", lambda call: ringing.spawn(ring(call)))
        await asyncio.wait_for(answering.register(atlanta.uri(), expires=300), TIMEOUT)
        await asyncio.wait_for(ringing.register(biloxi.uri(), expires=300), TIMEOUT)
        call = alice.dial(fork.aor("bob"))
        await asyncio.wait_for(call.answered(), TIMEOUT)
        mine = trace.of(call.call_id)
        [challenge] = [t.message for t in mine if t.label == "407"]
        assert realms(challenge, "Proxy-Authenticate") == ["atlanta.example", "biloxi.example"]
        invites = [t.message for t in mine if t.label == "INVITE"]
        assert [realms(m, "Proxy-Authorization") for m in invites] == [
            [],
            ["atlanta.example", "biloxi.example"],
        ]
        assert invites[1].cseq.number == invites[0].cseq.number + 1
        # the other branch passed its proxy too, and was cancelled when the first answered
        other = await asyncio.wait_for(rung, TIMEOUT)
        assert (await asyncio.wait_for(other.ended(), TIMEOUT)).status == 487
        await asyncio.wait_for(call.hangup(), TIMEOUT)
