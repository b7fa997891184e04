"""The toolkit's user agent against real peers on loopback: Kamailio, SIPp and baresip.

Each test starts its peers through the fixtures of ``conftest.py`` and talks to them over
real sockets: registration with digest auth at Kamailio, calls through Kamailio (407 on
the INVITE) to baresip and SIPp and back, hold and resume from either side, BYE from
either side, CANCEL and refusals, over UDP, TCP and TLS.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest
from support.peers import Baresip, Kamailio, LoopbackPki, Sipp
from support.ua import answer_calls

from sdp import Direction
from voip.call import Call
from voip.sip import Credentials
from voip.transport import client_context
from voip.useragent import RequestFailed, UserAgent

TIMEOUT = 15.0
Agent = Callable[..., AsyncIterator[UserAgent]]


T = TypeVar("T")


def within(awaitable: Awaitable[T]) -> Awaitable[T]:
    return asyncio.wait_for(awaitable, TIMEOUT)


async def test_registration_with_digest_auth_binds_and_unbinds_the_contact(
    kamailio: Kamailio, agent: Callable[..., object]
) -> None:
    async with agent("alice") as ua:  # type: ignore[attr-defined]
        registration = await within(ua.register(kamailio.uri(), expires=120))
        assert registration.last_response is not None
        contacts = await kamailio.contacts("alice")
        local = ua.listening[0]
        assert [c.address for c in contacts] == [f"sip:alice@{local.host}:{local.port}"]
        assert 0 < registration.granted <= 120
        assert [b.ours for b in registration.bindings] == [True]
        await within(registration.unregister())
        await kamailio.wait_unregistered("alice")


async def test_crlf_keepalives_to_kamailio_over_tcp_are_answered_and_keep_the_flow(
    kamailio: Kamailio,
) -> None:
    """RFC 5626 §4.4.1: the UA pings its outbound TCP flow with CRLF CRLF, Kamailio
    answers each with CRLF, and the one connection carries on: the binding made over it
    is removed over it."""
    ua = UserAgent(
        "alice",
        domain=kamailio.domain,
        credentials=[Credentials("alice", kamailio.users["alice"])],
        outbound_proxy=kamailio.outbound_proxy("tcp"),
        keepalive_interval=0.1,
    )
    async with ua:
        await ua.listen("tcp", "127.0.0.1", 0)
        registration = await within(ua.register(kamailio.uri(transport="tcp"), expires=120))
        (flow,) = ua.transport.connections
        assert flow.outgoing and flow.remote.port == kamailio.tcp_port
        counters = ua.transport.counters
        async with asyncio.timeout(TIMEOUT):
            while counters.pongs_in < 3:
                await asyncio.sleep(0.05)
        assert counters.pings_sent >= counters.pongs_in >= 3
        assert len(await kamailio.contacts("alice")) == 1
        await within(registration.unregister())
        await kamailio.wait_unregistered("alice")
        assert ua.transport.connections == (flow,) and counters.connections_opened == 1
        assert counters.errors == 0


async def test_a_wrong_password_fails_registration_without_looping(
    kamailio: Kamailio,
) -> None:
    ua = UserAgent("bob", domain=kamailio.domain, credentials=[Credentials("bob", "wrong")])
    await ua.listen("udp", "127.0.0.1", 0)
    try:
        with pytest.raises(RequestFailed) as error:
            await within(ua.register(kamailio.uri()))
        assert error.value.status == 401
    finally:
        await ua.close()


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
async def test_a_call_through_kamailio_to_baresip_is_held_and_resumed_from_each_side(
    transport: str,
    kamailio: Kamailio,
    agent: Callable[..., object],
    baresip_factory: Callable[..., Baresip],
) -> None:
    bob = baresip_factory("bob", registrar=kamailio)
    await kamailio.wait_registered("bob")
    async with agent("alice", transport) as ua:  # type: ignore[attr-defined]
        call: Call = await within(ua.call(kamailio.aor("bob")))
        await bob.wait_established()
        assert call.invite is not None and call.invite.via[0].transport == transport.upper()
        assert call.agreed[0].codecs[0].name in ("PCMA", "PCMU")

        await within(call.hold())
        assert call.agreed[0].direction is Direction.SENDONLY
        await within(call.resume())
        assert call.agreed[0].direction is Direction.SENDRECV

        held, resumed = asyncio.Event(), asyncio.Event()
        call.on("hold", held.set)
        call.on("resume", resumed.set)
        await bob.hold()
        await within(held.wait())
        assert call.agreed[0].direction in (Direction.RECVONLY, Direction.INACTIVE)
        await bob.resume()
        await within(resumed.wait())
        assert call.agreed[0].direction is Direction.SENDRECV

        await within(call.hangup())
        await bob.wait_closed()
        assert call.end_reason is not None and call.end_reason.by == "local"


async def test_baresip_ends_the_call_with_bye(
    kamailio: Kamailio, agent: Callable[..., object], baresip_factory: Callable[..., Baresip]
) -> None:
    bob = baresip_factory("bob", registrar=kamailio)
    await kamailio.wait_registered("bob")
    async with agent("alice") as ua:  # type: ignore[attr-defined]
        call: Call = await within(ua.call(kamailio.aor("bob")))
        await bob.wait_established()
        await bob.hangup()
        reason = await within(call.ended())
        assert reason.by == "remote" and not ua.calls


async def test_baresip_calls_the_toolkit_through_kamailio_and_is_answered(
    kamailio: Kamailio, agent: Callable[..., object], baresip_factory: Callable[..., Baresip]
) -> None:
    async with agent("carol") as ua:  # type: ignore[attr-defined]
        answered = answer_calls(ua)
        await within(ua.register(kamailio.uri(), expires=300))
        alice = baresip_factory("alice", registrar=kamailio)
        await kamailio.wait_registered("alice")
        await alice.dial(kamailio.aor("carol"))
        call = await within(answered.get())
        await alice.wait_established()
        assert call.agreed[0].direction is Direction.SENDRECV
        await alice.hangup()
        assert (await within(call.ended())).by == "remote"


async def test_the_toolkit_calls_a_sipp_uas_directly(sipp: Sipp) -> None:
    uas = sipp.start("uas_call", calls=1)
    async with UserAgent("alice") as ua:
        await ua.listen("udp", "127.0.0.1", 0)
        call = await within(ua.call(uas.uri("sipp")))
        await within(call.hangup())
    result = await uas.wait(TIMEOUT)
    assert result.ok, result.report()


async def test_a_sipp_uas_ends_the_toolkits_call_with_bye_and_gets_200(sipp: Sipp) -> None:
    uas = sipp.start("uas_bye", calls=1, duration_ms=300)
    async with UserAgent("alice") as ua:
        await ua.listen("udp", "127.0.0.1", 0)
        call = await within(ua.call(uas.uri("sipp")))
        reason = await within(call.ended())
        assert (reason.by, reason.status) == ("remote", 200)
        assert not ua.calls
    result = await uas.wait(TIMEOUT)
    assert result.ok, result.report()  # the scenario ends on the 200 to its BYE
    assert re.search(r"SIP/2\.0 200 OK\r?\n(?:.+\r?\n)*?CSeq: \d+ BYE", result.messages())


async def test_a_sipp_uas_holds_and_resumes_the_toolkits_call_through_kamailio(
    kamailio: Kamailio, sipp: Sipp, agent: Callable[..., object]
) -> None:
    uas = await sipp.start_registered(kamailio, "dave", "uas_hold_resume", calls=1, duration_ms=300)
    async with agent("alice") as ua:  # type: ignore[attr-defined]
        call: Call = await within(ua.call(kamailio.aor("dave")))
        changes: asyncio.Queue[str] = asyncio.Queue()
        call.on("hold", lambda: changes.put_nowait("hold"))
        call.on("resume", lambda: changes.put_nowait("resume"))
        assert await within(changes.get()) == "hold"
        assert await within(changes.get()) == "resume"
        await within(call.hangup())
    result = await uas.wait(TIMEOUT)
    assert result.ok, result.report()


@pytest.fixture
async def answering() -> AsyncIterator[UserAgent]:
    """A toolkit UA on UDP that rings and answers every call."""
    ua = UserAgent("carol")

    async def answer(call: Call) -> None:
        await call.ring()
        await call.accept()

    ua.on("incoming_call", answer)
    await ua.listen("udp", "127.0.0.1", 0)
    yield ua
    await ua.close()


async def test_a_sipp_uac_call_is_answered_and_ended_by_its_bye(
    sipp: Sipp, answering: UserAgent
) -> None:
    ended: asyncio.Queue[str] = asyncio.Queue()
    answering.on("incoming_call", lambda call: call.on("ended", lambda r: ended.put_nowait(r.by)))
    local = answering.listening[0]
    result = await sipp.run("uac_call", (local.host, local.port), service="carol", calls=3)
    assert result.ok, result.report()  # each BYE got its 200
    assert result.successful == 3
    assert [await within(ended.get()) for _ in range(3)] == ["remote"] * 3
    assert not answering.calls


async def test_a_busy_toolkit_answers_a_sipp_uac_with_486(sipp: Sipp) -> None:
    async with UserAgent("carol") as ua:

        async def busy(call: Call) -> None:
            await call.reject(486)

        ua.on("incoming_call", busy)
        local = await ua.listen("udp", "127.0.0.1", 0)
        result = await sipp.run("uac_busy", (local.host, local.port), service="carol")
        assert result.ok, result.report()


async def test_a_sipp_uac_cancels_a_ringing_toolkit_and_gets_487(sipp: Sipp) -> None:
    async with UserAgent("carol") as ua:
        ended: asyncio.Queue[Call] = asyncio.Queue()

        async def ring(call: Call) -> None:
            call.on("ended", lambda reason: ended.put_nowait(call))
            await call.ring()

        ua.on("incoming_call", ring)
        local = await ua.listen("udp", "127.0.0.1", 0)
        result = await sipp.run(
            "uac_cancel", (local.host, local.port), service="carol", duration_ms=200
        )
        assert result.ok, result.report()
        assert "SIP/2.0 487" in result.messages()
        call = await within(ended.get())
        assert call.end_reason is not None and call.end_reason.status == 487


async def test_the_toolkit_holds_and_resumes_a_sipp_uas_through_kamailio(
    kamailio: Kamailio, sipp: Sipp, agent: Callable[..., object]
) -> None:
    uas = await sipp.start_registered(kamailio, "bob", "uas_call", calls=1)
    async with agent("alice") as ua:  # type: ignore[attr-defined]
        call: Call = await within(ua.call(kamailio.aor("bob")))
        await within(call.hold())
        assert call.agreed[0].direction is Direction.SENDONLY
        await within(call.resume())
        assert call.agreed[0].direction is Direction.SENDRECV
        await within(call.hangup())
    result = await uas.wait(TIMEOUT)
    assert result.ok, result.report()
    assert result.messages().count("a=sendonly") >= 1


@pytest.mark.parametrize("transport", ["tcp", "tls"])
async def test_a_client_only_agent_registers_calls_and_is_called_over_its_own_connection(
    transport: str,
    kamailio: Kamailio,
    loopback_pki: LoopbackPki,
    baresip_factory: Callable[..., Baresip],
) -> None:
    # no listener at all: the agent opens one connection to Kamailio, whose local address
    # is its Via and Contact, and Kamailio sends the requests for it back on that
    # connection (connection reuse, RFC 5923; RFC 5626 §4.2 flows)
    bob = baresip_factory("bob", registrar=kamailio)
    await kamailio.wait_registered("bob")
    ua = UserAgent(
        "alice",
        domain=kamailio.domain,
        credentials=[Credentials("alice", kamailio.users["alice"])],
        outbound_proxy=kamailio.outbound_proxy(transport),
        tls_client=client_context(loopback_pki.cafile),
        transports=(transport,),
    )
    async with ua:
        await within(ua.register(kamailio.uri(transport=transport), expires=120))
        assert ua.listening == []
        (connection,) = ua.transport.connections
        local = connection.local
        (contact,) = await kamailio.contacts("alice")
        scheme = "sips" if transport == "tls" else "sip"
        assert contact.address.startswith(f"{scheme}:alice@127.0.0.1:{local.port}")

        # bob calls alice: the INVITE and bob's BYE come in on alice's connection
        calls = answer_calls(ua)
        await bob.dial(kamailio.aor("alice"))
        incoming = await within(calls.get())
        await bob.wait_established()
        assert incoming.invite is not None and incoming.invite.via[-1].transport == "UDP"
        await bob.hangup()
        assert (await within(incoming.ended())).by == "remote"

        # alice calls bob, then hangs up
        mark = bob.log_mark()
        call: Call = await within(ua.call(kamailio.aor("bob")))
        await bob.wait_established(since=mark)
        assert call.invite is not None and call.invite.via[0].transport == transport.upper()
        assert re.search(
            rf"@127\.0\.0\.1:{local.port}[;>]", str(call.invite.headers.get("Contact"))
        )
        await within(call.hangup())
        await bob.wait_closed(since=mark)
        assert ua.transport.connections == (connection,)  # one connection served it all
        await within(ua.registrations[-1].unregister())
    assert ua.listening == []
