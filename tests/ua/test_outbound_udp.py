"""RFC 5626 §4.4.2 on the agent's side over UDP, against a small STUN responder of the test's
own (a raw socket) for what Kamailio cannot show: a NAT binding that changes, and the
retransmissions of an unanswered keep-alive counted on the wire. Kamailio's answers and a
frozen Kamailio are in ``tests/interop/test_outbound_interop.py``."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator

import pytest

from voip.outbound import (
    DEFAULT_UDP_FLOW_TIMER,
    STUN_RC,
    FlowFailed,
    FlowRecovered,
    FlowRecovery,
    FlowState,
    NatBindingChanged,
    StunTimeout,
    keepalive_delay,
    stun_keepalive,
    stun_rto,
)
from voip.registration import Registration
from voip.sip import Request, parse_message, parse_uri
from voip.sip.message import make_response
from voip.transport import Endpoint
from voip.transport.stun import BindingTransaction, binding_success, decode, is_stun
from voip.useragent import UserAgent

WAIT = 5.0  # a bound on waiting on loopback, never a measurement


async def until(condition: Callable[[], bool]) -> None:
    """Wait (at most WAIT) until ``condition`` holds."""

    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), WAIT)


def test_keepalives_go_at_80_to_100_percent_of_the_interval() -> None:
    delays = [keepalive_delay(DEFAULT_UDP_FLOW_TIMER) for _ in range(1000)]
    assert all(0.8 * 29.0 <= d <= 29.0 for d in delays)
    assert max(delays) - min(delays) > 2.0  # spread, not one fixed value


def test_the_stun_transaction_ends_within_80_percent_of_a_short_flow_timer() -> None:
    assert stun_rto(120.0) == 0.5  # RFC 5389's RTO when the interval allows it
    for interval in (29.0, 2.0):
        rto = stun_rto(interval)
        assert rto < 0.5
        assert BindingTransaction.duration(rto) == pytest.approx(0.8 * interval)


@pytest.fixture
def responder() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


async def answer(sock: socket.socket, mapped: list[tuple[str, int]]) -> None:
    """Answer each Binding Request with the next of ``mapped`` as XOR-MAPPED-ADDRESS."""
    loop = asyncio.get_running_loop()
    for host, port in mapped:
        data, source = await loop.sock_recvfrom(sock, 1500)
        request = decode(data)
        await loop.sock_sendto(sock, binding_success(request.transaction_id, host, port), source)


def udp_flow(ua: UserAgent, at: Endpoint) -> Registration:
    """A registration whose outbound flow over UDP (§4.4.2) is ``at``, as a 2xx with
    ``Require: outbound`` over UDP leaves it."""
    registration = Registration(ua, parse_uri(f"sip:{at.host}:{at.port}"))
    registration.outbound = registration.outbound_in_use = True
    registration.flow = at
    registration.flow_state = FlowState.ACTIVE
    return registration


async def test_an_unanswered_keepalive_is_sent_rc_times_then_times_out(
    responder: socket.socket,
) -> None:
    """RFC 5389 §7.2.1: Rc = 7 requests, then a time-out (RFC 5626 §4.4.2: the flow failed)."""
    at = Endpoint("udp", *responder.getsockname())
    async with UserAgent("alice") as ua:
        await ua.listen("udp", "127.0.0.1", 0)
        with pytest.raises(StunTimeout):
            await asyncio.wait_for(stun_keepalive(ua.transport, at, 0.002), WAIT)
        assert ua.transport.counters.stun_out == STUN_RC
        requests = []
        while True:
            try:
                requests.append(decode(responder.recv(1500)))
            except BlockingIOError:
                break
        assert len(requests) == STUN_RC
        assert len({r.transaction_id for r in requests}) == 1  # retransmissions, one id
        assert not ua.transport._stun_waiting  # a late response finds nothing


async def test_a_changed_mapped_address_fails_the_udp_flow(responder: socket.socket) -> None:
    """§4.4.2: an XOR-MAPPED-ADDRESS other than the previous one means the NAT binding
    changed: the flow failed, ``flow_failed`` with the back-off of §4.5."""
    at = Endpoint("udp", *responder.getsockname())
    async with UserAgent("alice", flow_recovery=FlowRecovery(base_time=600.0)) as ua:
        await ua.listen("udp", "127.0.0.1", 0)
        failed: asyncio.Queue[FlowFailed] = asyncio.Queue()
        ua.on("flow_failed", failed.put_nowait)
        registration = udp_flow(ua, at)
        nat = ua.spawn(answer(responder, [("192.0.2.1", 40000)] * 2 + [("192.0.2.1", 40001)]))
        # a Flow-Timer of 0.5 s: each keep-alive's retransmissions span 0.4 s (RTO 5 ms),
        # time enough for the responder on a loaded machine (at 0.05 s they spanned 40 ms,
        # and a late answer made it a time-out)
        registration._stun = ua.spawn(registration._stun_keepalives(0.5))
        failure = await asyncio.wait_for(failed.get(), WAIT)
        assert isinstance(failure.error, NatBindingChanged), failure.error
        assert failure.endpoint == at and failure.retry_in >= 300.0
        assert registration.keepalives_answered == 3
        assert registration.flow_state is FlowState.FAILED
        await nat
        registration._stop_flow()


class Registrar:
    """A registrar on one UDP socket that requires outbound with ``Flow-Timer: 1`` and
    answers STUN on the same port only while ``stun`` is set."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.stun = True
        self.registers = 0
        self.at = Endpoint("udp", *sock.getsockname())

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data, source = await loop.sock_recvfrom(self.sock, 65536)
            if is_stun(data):
                if self.stun:
                    tid = decode(data).transaction_id
                    await loop.sock_sendto(self.sock, binding_success(tid, *source), source)
                continue
            request = parse_message(data)
            assert isinstance(request, Request) and request.method == "REGISTER"
            self.registers += 1
            fields = [("Require", "outbound"), ("Flow-Timer", "1")]
            fields += [("Contact", c) for c in request.headers.get_all("contact")]
            ok = make_response(request, 200, headers=fields)
            await loop.sock_sendto(self.sock, bytes(ok), source)


async def test_a_udp_flow_is_recovered_only_once_its_first_keepalive_is_answered(
    responder: socket.socket,
) -> None:
    """§4.5: over UDP a re-REGISTER that succeeds is not enough; the keep-alive right after
    it must be answered too. The registrar stops answering STUN: the flow fails, the
    re-REGISTERs succeed but the flow is not recovered until STUN is answered again."""
    registrar = Registrar(responder)
    ua = UserAgent("alice", outbound=True, flow_recovery=FlowRecovery(base_time=0.05))
    async with ua:
        await ua.listen("udp", "127.0.0.1", 0)
        failed: asyncio.Queue[FlowFailed] = asyncio.Queue()
        recovered: asyncio.Queue[FlowRecovered] = asyncio.Queue()
        ua.on("flow_failed", failed.put_nowait)
        ua.on("flow_recovered", recovered.put_nowait)
        serving = ua.spawn(registrar.run())
        registration = await asyncio.wait_for(
            ua.register(f"sip:{registrar.at.host}:{registrar.at.port}", expires=300), WAIT
        )
        assert registration.flow == registrar.at and registration.keepalive_interval == 1.0
        await until(lambda: registration.keepalives_answered >= 1)  # at the Flow-Timer
        registrar.stun = False
        failure = await asyncio.wait_for(failed.get(), WAIT)
        assert isinstance(failure.error, StunTimeout)
        # registered again each time, but STUN unanswered: not recovered, tried again
        await until(lambda: registration.consecutive_failures >= 2)
        assert recovered.empty() and registrar.registers >= 3
        assert registration.flow_state is not FlowState.ACTIVE
        registrar.stun = True
        event = await asyncio.wait_for(recovered.get(), WAIT)
        assert event.attempts >= 3 and registration.flow_state is FlowState.ACTIVE
        assert registration.keepalives_answered >= 2
        serving.cancel()
