"""Helpers for tests that run toolkit user agents against each other on loopback."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from aiortc.rtp import is_rtcp

from voip.call import Call
from voip.rtp import CallMedia, tone
from voip.rtp.srtp import SrtpTransform
from voip.sip import Credentials, Request, Response, SipError
from voip.transport import client_context
from voip.useragent import UserAgent

if TYPE_CHECKING:
    from support.peers import Kamailio, LoopbackPki

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

TIMEOUT = 10.0
LOUD = 2000  # RMS of a frame that carries a tone, not silence or noise


def media_of(call: Call) -> CallMedia:
    """The call's media, which an answered call has."""
    assert call.media is not None
    return call.media


def uri_of(ua: UserAgent) -> str:
    endpoint = ua.listening[0]
    return f"sip:{ua.user}@{endpoint.host}:{endpoint.port}"


def answer_calls(ua: UserAgent, *, ring: bool = True) -> asyncio.Queue[Call]:
    """Answer every incoming call (after a 180); the calls go into the queue."""
    calls: asyncio.Queue[Call] = asyncio.Queue()

    async def on_call(call: Call) -> None:
        if ring:
            await call.ring()
        await call.accept()
        calls.put_nowait(call)

    ua.on("incoming_call", on_call)
    return calls


async def connected(alice: UserAgent, bob: UserAgent) -> tuple[Call, Call]:
    """A call from ``alice`` to ``bob``, answered: (caller's call, callee's call)."""
    calls = answer_calls(bob)
    caller = await asyncio.wait_for(alice.call(uri_of(bob)), TIMEOUT)
    callee = await asyncio.wait_for(calls.get(), TIMEOUT)
    return caller, callee


async def ringing(alice: UserAgent, bob: UserAgent, **ring: Any) -> tuple[Call, Call]:
    """A call from ``alice`` to ``bob`` that rings (``call.ring(**ring)``), unanswered,
    once the caller holds the early dialog: (caller's call, callee's call)."""
    incoming: asyncio.Queue[Call] = asyncio.Queue()

    async def on_call(call: Call) -> None:
        await call.ring(**ring)
        incoming.put_nowait(call)

    bob.on("incoming_call", on_call)
    caller = alice.dial(uri_of(bob))
    callee = await asyncio.wait_for(incoming.get(), TIMEOUT)
    async with asyncio.timeout(TIMEOUT):
        while not caller.early and caller.dialog is None:
            await asyncio.sleep(0.01)
    return caller, callee


def received(ua: UserAgent) -> list[Request | Response]:
    """Every message that reaches ``ua``'s transaction layer from now on, in order (the
    transport's tracers see each one just before it goes up; the layer itself, compiled,
    cannot be wrapped)."""
    messages: list[Request | Response] = []

    def spy(direction: str, message: Any, *args: Any) -> None:
        if direction == "in":
            messages.append(message)

    ua.transport.add_tracer(spy)
    return messages


@asynccontextmanager
async def registered_at(
    kam: Kamailio, user: str, transport: str, host: str, *, timeout: float = 20.0
) -> AsyncIterator[UserAgent]:
    """A toolkit agent for ``user`` listening on ``host``, with ``kam`` as its outbound
    proxy, registered there; closed afterwards."""
    ua = UserAgent(
        user,
        domain=kam.domain,
        credentials=[Credentials(user, kam.users[user])],
        outbound_proxy=kam.outbound_proxy(transport),
    )
    await ua.listen(transport, host, 0)
    try:
        await asyncio.wait_for(ua.register(kam.uri(transport=transport), expires=300), timeout)
        yield ua
    finally:
        await ua.close()


@asynccontextmanager
async def client_only(
    kamailio: Kamailio, pki: LoopbackPki, user: str, transport: str, **options: Any
) -> AsyncIterator[UserAgent]:
    """A toolkit agent that listens on nothing: every request leaves over a connection it
    opens to Kamailio (its proxy and registrar) over ``transport``."""
    ua = UserAgent(
        user,
        domain=kamailio.domain,
        credentials=[Credentials(user, kamailio.users[user])],
        outbound_proxy=kamailio.outbound_proxy(transport),
        transports=(transport,),
        tls_client=client_context(pki.cafile),
        **options,
    )
    async with ua:
        yield ua


def refusals(ua: UserAgent) -> asyncio.Queue[SipError]:
    """Try to accept every call; each refusal (the SipError of accept) goes in the queue."""
    errors: asyncio.Queue[SipError] = asyncio.Queue()

    async def on_call(call: Call) -> None:
        try:
            await call.accept()
        except SipError as error:
            errors.put_nowait(error)

    ua.on("incoming_call", on_call)
    return errors


async def loud_frames(media: CallMedia, frames: int) -> int:
    loud = 0
    for _ in range(frames):
        frame = await asyncio.wait_for(media.read(), TIMEOUT)
        loud += audioop.rms(frame, 2) > LOUD
    return loud


async def tones_both_ways(caller: Call, callee: Call, frames: int = 50) -> tuple[int, int]:
    """Tones each way at once; the loud frames heard by the callee and by the caller."""
    for call in (caller, callee):
        media_of(call).flush()
        while media_of(call).stream._incoming:  # only what arrives from now on counts
            media_of(call).stream._incoming.popleft()
    writers = [
        asyncio.create_task(media_of(caller).write(tone(440, 1.2))),
        asyncio.create_task(media_of(callee).write(tone(1000, 1.2))),
    ]
    heard = await asyncio.gather(
        loud_frames(media_of(callee), frames), loud_frames(media_of(caller), frames)
    )
    await asyncio.gather(*writers)
    return heard[0], heard[1]


@asynccontextmanager
async def srtp_agents(
    caller_mode: str, callee_mode: str
) -> AsyncIterator[tuple[UserAgent, UserAgent]]:
    """Two agents on UDP loopback with these SRTP policies (voip.rtp.srtp.SrtpMode)."""
    alice = UserAgent("alice", srtp=caller_mode)
    bob = UserAgent("bob", srtp=callee_mode)
    try:
        await alice.listen("udp", "127.0.0.1", 0)
        await bob.listen("udp", "127.0.0.1", 0)
        yield alice, bob
    finally:
        await alice.close()
        await bob.close()


async def audio_both_ways(caller: Call, callee: Call) -> None:
    """Tones each way at once are heard at each end (most frames of them loud)."""
    at_callee, at_caller = await tones_both_ways(caller, callee)
    assert at_callee >= 30 and at_caller >= 30


def srtp_of(call: Call) -> SrtpTransform:
    """The SRTP transform protecting the call's RTP (SDES or DTLS-SRTP keys)."""
    transform = media_of(call).stream.srtp
    assert transform is not None
    return transform


async def audio_both_ways_authenticated(
    caller: Call, callee: Call
) -> dict[Call, list[tuple[bytes, tuple[str, int]]]]:
    """:func:`audio_both_ways`, and every RTP datagram each end got from the other
    authenticated and was taken (RFC 3711 §3.3); on a shared machine a port can also get
    strays another process still sends to it, which fail as they must and are no failure
    of this call's keys. Returns what reached each call's port (:func:`rtp_wire`)."""
    wires = {call: rtp_wire(call) for call in (caller, callee)}
    before = {call: media_of(call).statistics().packets_received for call in wires}
    await audio_both_ways(caller, callee)
    for call, peer in ((caller, callee), (callee, caller)):
        source = ("127.0.0.1", media_of(peer).stream.local_port)
        from_peer = [data for data, address in wires[call] if address == source]
        taken = media_of(call).statistics().packets_received - before[call]
        assert taken == len(from_peer) >= 30
    return wires


def rtp_wire(call: Call) -> list[tuple[bytes, tuple[str, int]]]:
    """The RTP datagrams that reach the call's RTP port from now on, as on the wire (SRTP
    still protected), with where they came from (DTLS, STUN and RTCP left out): seen by
    the stream's wiretap, so those read after a stall (its backlog) are seen too."""
    stream = media_of(call).stream
    wire: list[tuple[bytes, tuple[str, int]]] = []

    def tap(sent: bool, data: bytes, local: tuple[str, int], remote: tuple[object, ...]) -> None:
        if not sent and local[1] == stream.local_port and 127 < data[0] < 192:
            if not (stream.rtcp_mux and is_rtcp(data)):
                wire.append((data, (str(remote[0]), int(str(remote[1])))))

    stream.wiretap = tap
    return wire
