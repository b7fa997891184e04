"""SIP Outbound (RFC 5626) from a client-only toolkit agent to Kamailio's registrar with the
outbound module (``start_kamailio(outbound=True)``): the REGISTER names the agent's instance
and its one flow, Kamailio's 200 requires outbound and sets the Flow-Timer, the flow is kept
alive with CRLF pings that Kamailio answers, and when the connection is killed in the kernel
(``ss -K``: the agent is told nothing but what its socket says) the agent registers again
over a new connection after the §4.5 back-off, and a call from baresip through Kamailio
reaches it over the new flow."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TypeVar

import pytest
from support.peers import Baresip, Kamailio, LoopbackPki
from support.session import sessions_for
from support.ua import answer_calls
from support.ua import client_only as agent_over_connections

from tests.interop.conftest import OUTBOUND_FLOW_TIMER
from voip.outbound import FlowFailed, FlowRecovered, FlowRecovery, FlowState, StunTimeout
from voip.registration import Registration
from voip.session import Session, State
from voip.sip import Credentials, Request, parse_message
from voip.transport import Endpoint
from voip.useragent import UserAgent

TIMEOUT = 15.0
#: the §4.5 back-off's base time in these tests (30 s by default)
BASE_TIME = 0.2
INSTANCE = "urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8"
T = TypeVar("T")


def within(awaitable: Awaitable[T]) -> Awaitable[T]:
    return asyncio.wait_for(awaitable, TIMEOUT)


def registers(ua: UserAgent) -> list[Request]:
    """Every REGISTER the agent hands to a socket, parsed back from the wire."""
    sent: list[Request] = []

    def trace(direction: str, message: object, peer: object, local: object) -> None:
        if direction != "out":
            return
        parsed = parse_message(message) if isinstance(message, bytes) else message
        if isinstance(parsed, Request) and parsed.method == "REGISTER":
            sent.append(parsed)

    ua.transport.add_tracer(trace)
    return sent


@asynccontextmanager
async def client_only(
    kamailio: Kamailio, pki: LoopbackPki, user: str, transport: str, **options: object
) -> AsyncIterator[UserAgent]:
    """``support.ua.client_only``, its lost flows formed again after ``BASE_TIME``."""
    async with agent_over_connections(
        kamailio, pki, user, transport, flow_recovery=FlowRecovery(base_time=BASE_TIME), **options
    ) as ua:
        yield ua


def kill_in_kernel(local_port: int) -> None:
    """Destroy the TCP socket bound to ``local_port`` (``ss -K``): the agent learns of it
    only from its socket (ECONNABORTED), Kamailio from the reset."""
    subprocess.run(
        ["ss", "-K", "-t", "src", "127.0.0.1", "sport", "=", str(local_port)],
        check=True,
        capture_output=True,
    )


@contextmanager
def frozen(kamailio: Kamailio) -> Iterator[None]:
    """Kamailio stopped (SIGSTOP to its process group) and then let go on (SIGCONT): the
    kernel still holds its connections, but nothing answers on them meanwhile."""
    os.killpg(kamailio.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(kamailio.process.pid, signal.SIGCONT)


@pytest.mark.parametrize("transport", ["tcp", "ws"])
async def test_a_client_only_agent_registers_its_instance_and_flow_and_kamailio_requires_outbound(
    transport: str, kamailio_outbound: Kamailio, loopback_pki: LoopbackPki
) -> None:
    kamailio = kamailio_outbound
    async with client_only(kamailio, loopback_pki, "alice", transport, instance_id=INSTANCE) as ua:
        sent = registers(ua)
        registration = await within(ua.register(kamailio.uri(transport=transport), expires=300))
        # RFC 5626 §4.2: Supported: path, outbound; the Contact's ;ob, reg-id and instance
        for request in sent:
            assert {"path", "outbound"} <= set(request.supported)
            (contact,) = request.contact
            assert "ob" in contact.uri.params  # type: ignore[union-attr]
            assert contact.params["reg-id"] == "1"
            assert contact.params["+sip.instance"] == f"<{INSTANCE}>"
        assert ua.instance_id == INSTANCE
        # §4.2.1: Kamailio's 200 requires outbound: the flow is in use
        assert registration.last_response is not None
        assert "outbound" in registration.last_response.require
        assert registration.outbound_in_use and registration.flow_state is FlowState.ACTIVE
        (flow,) = ua.transport.connections
        assert registration.flow == flow.remote
        (binding,) = await kamailio.contacts("alice")
        assert binding.address == f"sip:alice@127.0.0.1:{flow.local.port};transport={transport};ob"


async def test_a_listening_udp_agent_registers_without_outbound_unless_asked_to(
    kamailio_outbound: Kamailio,
) -> None:
    kamailio = kamailio_outbound
    for outbound in (None, True):
        ua = UserAgent(
            "bob",
            domain=kamailio.domain,
            credentials=[Credentials("bob", kamailio.users["bob"])],
            outbound=outbound,
        )
        async with ua:
            await ua.listen("udp", "127.0.0.1", 0)
            sent = registers(ua)
            registration = await within(ua.register(kamailio.uri(transport="udp"), expires=300))
            (contact,) = sent[-1].contact
            if outbound is None:
                assert not registration.outbound and "outbound" not in sent[-1].supported
                assert "reg-id" not in contact.params and "+sip.instance" not in contact.params
                assert "ob" not in contact.uri.params  # type: ignore[union-attr]
                assert not registration.outbound_in_use
            else:
                assert registration.outbound and "outbound" in sent[-1].supported
                assert contact.params["reg-id"] == "1"
                assert contact.params["+sip.instance"] == f"<{ua.instance_id}>"
                assert "ob" in contact.uri.params  # type: ignore[union-attr]
                assert registration.outbound_in_use  # Kamailio requires it over UDP too
                # §4.4.2: the flow is Kamailio's SIP UDP port, kept alive by STUN
                assert registration.flow == kamailio_udp(kamailio)
                assert registration.flow_state is FlowState.ACTIVE


async def answered(registration: Registration, count: int) -> None:
    while registration.keepalives_answered < count:
        await asyncio.sleep(0.1)


def kamailio_udp(kamailio: Kamailio) -> Endpoint:
    return Endpoint("udp", "127.0.0.1", kamailio.port("udp"))


@asynccontextmanager
async def udp_outbound(kamailio: Kamailio, user: str) -> AsyncIterator[tuple[UserAgent, Endpoint]]:
    """An agent listening on UDP that asks for outbound (``outbound=True``), its failed
    flows registered again after ``BASE_TIME``."""
    ua = UserAgent(
        user,
        domain=kamailio.domain,
        credentials=[Credentials(user, kamailio.users[user])],
        outbound=True,
        flow_recovery=FlowRecovery(base_time=BASE_TIME),
    )
    async with ua:
        yield ua, await ua.listen("udp", "127.0.0.1", 0)


async def test_an_outbound_flow_over_udp_is_kept_alive_by_stun_answered_by_kamailio(
    kamailio_outbound: Kamailio,
) -> None:
    """RFC 5626 §4.4.2, §8: STUN Binding Requests from the SIP UDP socket to Kamailio's SIP
    port at 80-100 % of the Flow-Timer, each answered (Kamailio's stun module) with the
    agent's address as XOR-MAPPED-ADDRESS; none of it reaches the SIP parser."""
    kamailio = kamailio_outbound
    async with udp_outbound(kamailio, "alice") as (ua, local):
        registration = await within(ua.register(kamailio.uri(transport="udp"), expires=300))
        last = registration.last_response
        assert last is not None and "outbound" in last.require
        assert last.headers.first("flow-timer") == str(OUTBOUND_FLOW_TIMER)
        assert registration.keepalive_interval == float(OUTBOUND_FLOW_TIMER)
        await within(answered(registration, 3))
        assert registration.mapped == (local.host, local.port)
        counters = ua.transport.counters
        assert counters.stun_out >= 3 and counters.stun_in >= 3
        assert counters.stun_malformed == 0 and counters.malformed == 0
        assert registration.flow_state is FlowState.ACTIVE


async def test_a_udp_flow_whose_stun_keepalive_goes_unanswered_is_registered_again(
    kamailio_outbound: Kamailio,
) -> None:
    """§4.4.2: no Binding Response within the retransmission schedule is a failed flow;
    §4.5: registered again after the back-off, and recovered only once that REGISTER
    succeeded and the first keep-alive after it was answered."""
    kamailio = kamailio_outbound
    async with udp_outbound(kamailio, "dave") as (ua, _):
        failed: asyncio.Queue[FlowFailed] = asyncio.Queue()
        recovered: asyncio.Queue[FlowRecovered] = asyncio.Queue()
        ua.on("flow_failed", failed.put_nowait)
        ua.on("flow_recovered", recovered.put_nowait)
        registration = await within(ua.register(kamailio.uri(transport="udp"), expires=300))
        sent = registers(ua)
        with frozen(kamailio):
            failure = await within(failed.get())
            assert isinstance(failure.error, StunTimeout)
            assert failure.endpoint == kamailio_udp(kamailio)
            assert registration.flow_state is not FlowState.ACTIVE
        answered = registration.keepalives_answered
        event = await within(recovered.get())
        assert event.registration is registration and event.attempts >= 1
        assert sent and registration.flow_state is FlowState.ACTIVE
        assert registration.keepalives_answered > answered
        (binding,) = await kamailio.contacts("dave")
        assert ";ob" in binding.address


async def test_the_flow_timer_of_the_200_sets_the_keepalive_interval_and_kamailio_answers(
    kamailio_outbound: Kamailio, loopback_pki: LoopbackPki
) -> None:
    kamailio = kamailio_outbound
    async with client_only(kamailio, loopback_pki, "alice", "tcp") as ua:
        registration = await within(ua.register(kamailio.uri(transport="tcp"), expires=300))
        last = registration.last_response
        assert last is not None and last.headers.first("flow-timer") == str(OUTBOUND_FLOW_TIMER)
        assert registration.keepalive_interval == float(OUTBOUND_FLOW_TIMER)
        counters = ua.transport.counters
        # RFC 5626 §4.4.1: CRLF CRLF pings at 80-100 % of the Flow-Timer, each answered
        async with asyncio.timeout(TIMEOUT):
            while counters.pongs_in < 2:
                await asyncio.sleep(0.05)
        assert counters.pings_sent >= counters.pongs_in >= 2
        assert registration.flow_state is FlowState.ACTIVE


@pytest.mark.parametrize("transport", ["tcp", "ws"])
async def test_a_killed_flow_is_registered_again_over_a_new_connection_and_baresip_reaches_it(
    transport: str,
    kamailio_outbound: Kamailio,
    loopback_pki: LoopbackPki,
    baresip_factory: Callable[..., Baresip],
) -> None:
    kamailio = kamailio_outbound
    async with client_only(kamailio, loopback_pki, "carol", transport) as ua:
        failed: list[FlowFailed] = []
        recovered: asyncio.Queue[FlowRecovered] = asyncio.Queue()
        ua.on("flow_failed", failed.append)
        ua.on("flow_recovered", recovered.put_nowait)
        registration = await within(ua.register(kamailio.uri(transport=transport), expires=300))
        (first,) = ua.transport.connections
        (before,) = await kamailio.contacts("carol")
        kill_in_kernel(first.local.port)
        event = await within(recovered.get())
        # §4.5: the loss was reported, with the back-off (50-100 % of the base time)
        (failure,) = failed
        assert failure.registration is registration and failure.endpoint == first.remote
        assert BASE_TIME * 0.5 <= failure.retry_in <= BASE_TIME
        assert event.registration is registration and event.attempts == 1
        (second,) = ua.transport.connections
        assert second is not first and second.local.port != first.local.port
        assert ua.transport.counters.connections_opened == 2
        assert registration.flow_state is FlowState.ACTIVE and registration.outbound_in_use
        # the same instance and reg-id: Kamailio replaced the binding of the lost flow
        (after,) = await kamailio.contacts("carol")
        assert after.address != before.address
        assert after.address == f"sip:carol@127.0.0.1:{second.local.port};transport={transport};ob"
        # and a call through Kamailio reaches the agent over the new flow
        answered = answer_calls(ua)
        alice = baresip_factory("alice", registrar=kamailio)
        await kamailio.wait_registered("alice")
        await alice.dial(kamailio.aor("carol"))
        call = await within(answered.get())
        await alice.wait_established()
        assert call.invite is not None and call.invite.via[0].transport == transport.upper()
        # §4.3: its Contact asks for the dialog's requests over the flow
        assert call.dialog is not None
        assert call.dialog.local_contact is not None
        assert "ob" in call.dialog.local_contact.uri.params  # type: ignore[union-attr]
        await alice.hangup()
        assert (await within(call.ended())).by == "remote"  # the BYE came over the flow
        assert ua.transport.connections == (second,)


async def test_a_registration_without_outbound_is_not_watched(
    kamailio_outbound: Kamailio, loopback_pki: LoopbackPki
) -> None:
    kamailio = kamailio_outbound
    async with client_only(kamailio, loopback_pki, "dave", "tcp", outbound=False) as ua:
        sent = registers(ua)
        registration: Registration = await within(
            ua.register(kamailio.uri(transport="tcp"), expires=300)
        )
        (contact,) = sent[-1].contact
        assert "reg-id" not in contact.params and "outbound" not in sent[-1].supported
        assert registration.flow_state is FlowState.NONE and registration.flow is None


async def test_a_flow_whose_pong_does_not_come_back_is_registered_again_over_a_new_one(
    kamailio_outbound: Kamailio, loopback_pki: LoopbackPki
) -> None:
    """§4.4.1: a keep-alive pong missing is a failed flow, as a closed connection is."""
    kamailio = kamailio_outbound
    async with client_only(kamailio, loopback_pki, "dave", "tcp") as ua:
        ua.transport.limits = dataclasses.replace(ua.transport.limits, pong_timeout=1.0)
        failed: asyncio.Queue[FlowFailed] = asyncio.Queue()
        recovered: asyncio.Queue[FlowRecovered] = asyncio.Queue()
        ua.on("flow_failed", failed.put_nowait)
        ua.on("flow_recovered", recovered.put_nowait)
        registration = await within(ua.register(kamailio.uri(transport="tcp"), expires=300))
        (first,) = ua.transport.connections
        with frozen(kamailio):
            failure = await within(failed.get())
        assert isinstance(failure.error, TimeoutError) and "pong" in str(failure.error)
        assert failure.endpoint == first.remote and first not in ua.transport.connections
        event = await within(recovered.get())
        assert event.registration is registration and event.attempts >= 1
        (second,) = ua.transport.connections
        assert second is not first and registration.flow_state is FlowState.ACTIVE
        (binding,) = await kamailio.contacts("dave")
        assert binding.address == f"sip:dave@127.0.0.1:{second.local.port};transport=tcp;ob"


async def test_the_invite_of_a_client_only_agent_carries_ob_only_when_outbound_is_in_use(
    kamailio_outbound: Kamailio,
    kamailio: Kamailio,
    loopback_pki: LoopbackPki,
    baresip_factory: Callable[..., Baresip],
) -> None:
    """§4.3: dialog-forming requests over a flow in use for outbound ask for the
    dialog's requests back over it with ``;ob``; with Kamailio's plain registrar (no
    Require: outbound in its 200) the flow is not an outbound one and the INVITE has none."""
    for registrar, in_use in ((kamailio_outbound, True), (kamailio, False)):
        bob = baresip_factory("bob", registrar=registrar)
        await registrar.wait_registered("bob")
        async with client_only(registrar, loopback_pki, "alice", "tcp") as ua:
            registration = await within(ua.register(registrar.uri(transport="tcp"), expires=300))
            assert registration.outbound and registration.outbound_in_use is in_use
            call = await within(ua.call(registrar.aor("bob")))
            await bob.wait_established()
            assert call.invite is not None
            (contact,) = call.invite.contact
            assert ("ob" in contact.uri.params) is in_use  # type: ignore[union-attr]
            await within(call.hangup())
            await bob.wait_closed()
        bob.stop()


async def test_a_session_over_a_killed_flow_is_mended_and_the_flow_registered_again(
    kamailio_outbound: Kamailio, loopback_pki: LoopbackPki
) -> None:
    """A call in progress over the flow: the session layer re-REGISTERs and re-INVITEs
    over a new connection at once (as without outbound), and the registration's flow
    recovery finds the flow formed again rather than registering a second time."""
    kamailio = kamailio_outbound
    async with (
        client_only(kamailio, loopback_pki, "alice", "tcp") as alice,
        client_only(kamailio, loopback_pki, "bob", "ws") as bob,
    ):
        recovered: asyncio.Queue[FlowRecovered] = asyncio.Queue()
        alice.on("flow_recovered", recovered.put_nowait)
        registration = await within(alice.register(kamailio.uri(transport="tcp"), expires=300))
        await within(bob.register(kamailio.uri(transport="ws"), expires=300))
        callees = sessions_for(bob)
        caller = await within(Session.connect(alice, kamailio.aor("bob")))
        callee = await within(callees.get())
        (first,) = alice.transport.connections
        kill_in_kernel(first.local.port)
        async with asyncio.timeout(TIMEOUT):
            while caller.recoveries == 0:
                await asyncio.sleep(0.02)
        event = await within(recovered.get())
        assert event.registration is registration
        (second,) = alice.transport.connections
        assert second is not first and caller.state is State.STA713
        (binding,) = await kamailio.contacts("alice")
        assert binding.address == f"sip:alice@127.0.0.1:{second.local.port};transport=tcp;ob"
        await within(caller.release())
        assert callee.state is State.STA01


async def test_an_unregister_after_the_flow_failed_removes_the_binding_as_it_was_made(
    kamailio: Kamailio, loopback_pki: LoopbackPki
) -> None:
    """Un-REGISTERing while the flow is down (before its recovery): the Expires: 0 goes
    over a new connection but names the Contact that was bound, so a registrar that
    matches bindings by URI (Kamailio without the outbound module) removes it."""
    failed: asyncio.Queue[FlowFailed] = asyncio.Queue()
    async with client_only(kamailio, loopback_pki, "carol", "tcp") as ua:
        ua.flow_recovery = FlowRecovery(base_time=600.0)  # no recovery within the test
        ua.on("flow_failed", failed.put_nowait)
        registration = await within(ua.register(kamailio.uri(transport="tcp"), expires=300))
        (first,) = ua.transport.connections
        (bound,) = await kamailio.contacts("carol")
        kill_in_kernel(first.local.port)
        await within(failed.get())
        assert registration.flow_state is FlowState.FAILED
        sent = registers(ua)
        await within(registration.unregister())
        (request,) = sent
        (contact,) = request.contact
        assert str(contact.uri) == bound.address and request.expires == 0
        assert await kamailio.contacts("carol") == []
        assert registration.flow_state is FlowState.NONE
