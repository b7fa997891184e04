"""The user agent's part of the RFC 3665 call flows, played against real peers.

Each test plays a flow of ``shared/conformance/callflows/rfc3665`` (manifest.json) with the
toolkit in the UA roles (Alice, Bob) and Kamailio as the proxy (one Kamailio stands in for the
flow's proxies where the UA sees only its first hop; 3.3 runs two, each challenging in its own
realm); the other UA is a second toolkit agent (both sides traced) or SIPp: the redirect server
of 3.6 and the callee of 3.10 that never answers are SIPp. What the toolkit sent and received
for the flow's call is compared with the flow, message by message: method or status, direction,
order, CSeq method and number (relative to the first request of each side), and the presence of
the headers that carry the flow's meaning (credentials and challenges, Route, Contact, an SDP
body).

Kamailio challenges REGISTER and every INVITE from a local user, as the flows' proxies do:
in 3.2 and 3.4 Alice meets the 407 in the flow; in the others her INVITE already carries
Proxy-Authorization, so there she has met Kamailio's challenge before (an OPTIONS to Bob),
and the toolkit sends credentials for a realm it knows at once (RFC 7616 §3.4). What is not
played, and why, would be listed in ``NOT_PLAYED``: every flow is played.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from support.dns_server import DnsServer
from support.peers import Kamailio, Sipp
from support.sip_trace import SipTrace, Traced, traced_agent

from voip.call import Call
from voip.sip import Credentials, Request, Response, parse_message
from voip.sip.fields import parse_auth
from voip.sip.transaction import Timers
from voip.useragent import RequestFailed, UserAgent

TIMEOUT = 15.0
T = TypeVar("T")
# Vendored from the shared corpus (tests/data/PROVENANCE.md): the flows are RFC vectors.
FLOWS = Path(__file__).resolve().parents[1] / "data" / "callflows" / "rfc3665"
KEY_HEADERS = (
    "Authorization",
    "Proxy-Authorization",
    "WWW-Authenticate",
    "Proxy-Authenticate",
    "Route",
    "Contact",
)

#: Flows (or roles) not played here, and why.
NOT_PLAYED: dict[str, str] = {}

#: Header fields RFC 3665 shows in a message by mistake, left out of the comparison:
#: (section, message) -> (field, why).
ERRATA = {
    ("3.3", "F21"): ("Contact", "the ACK Alice sent carries Bob's Contact (copied from F17)"),
}


# --- the flows --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One message of a flow as a UA sees it."""

    direction: str  # "out" or "in"
    message: Request | Response

    @property
    def label(self) -> str:
        m = self.message
        return m.method if isinstance(m, Request) else str(m.status)


def load_flow(section: str) -> list[tuple[str, str, Request | Response]]:
    """(from, to, message) of every message of the flow of ``section`` ("3.2")."""
    import json

    manifest = json.loads((FLOWS / "manifest.json").read_text(encoding="utf-8"))
    flow = next(f for f in manifest["flows"] if f["section"] == section)
    steps = []
    for entry in flow["messages"]:
        message = parse_message((FLOWS / entry["file"]).read_bytes())
        assert isinstance(message, Request | Response)
        erratum = ERRATA.get((section, Path(entry["file"]).stem.split("_")[-1]))
        if erratum is not None:
            message.headers.remove(erratum[0])
        steps.append((entry["from"], entry["to"], message))
    return steps


def part_of(section: str, role: str) -> list[Step]:
    """The messages ``role`` sends and receives in the flow, in order."""
    return [
        Step("out" if sender == role else "in", message)
        for sender, receiver, message in load_flow(section)
        if role in (sender, receiver)
    ]


Shape = list[tuple[str, str, str, int, frozenset[str], bool]]


def _mine(step: Step | Traced) -> bool:
    """Whether a message belongs to a request this side sent (its own CSeq space)."""
    is_request = isinstance(step.message, Request)
    return is_request == (step.direction == "out")


def _shape(steps: Iterable[Step | Traced]) -> Shape:
    """What is compared: direction, label, CSeq method, CSeq number relative to the first of
    its side, key headers present, body present."""
    steps = list(steps)
    bases: dict[bool, int] = {}
    shape = []
    for step in steps:
        message = step.message
        mine = _mine(step)
        base = bases.setdefault(mine, message.cseq.number)
        label = message.method if isinstance(message, Request) else str(message.status)
        headers = frozenset(h for h in KEY_HEADERS if message.headers.get_all(h))
        shape.append(
            (
                step.direction,
                label,
                message.cseq.method,
                message.cseq.number - base,
                headers,
                bool(message.body),
            )
        )
    return shape


def assert_plays(
    trace: SipTrace,
    section: str,
    role: str,
    *,
    deduplicate: bool = True,
    skip: Callable[[Traced], bool] | None = None,
    either_order: frozenset[tuple[str, str]] = frozenset(),
) -> None:
    """The toolkit's messages for one call (or registration) match ``role``'s part of the
    flow. ``deduplicate`` leaves retransmissions out; ``skip`` drops messages the flow's
    path has no place for (said why by the caller); ``either_order`` names (label, CSeq
    method) pairs of adjacent messages on different transactions whose order on the wire
    no rule fixes."""
    messages = _deduplicated(trace) if deduplicate else list(trace)
    expected = _shape(part_of(section, role))
    actual = _in_flow_order(
        _shape(t for t in messages if skip is None or not skip(t)), expected, either_order
    )
    assert _ladder(actual) == _ladder(expected), f"RFC 3665 {section} as {role}"
    for number, (want, got) in enumerate(zip(expected, actual, strict=True), start=1):
        what = f"RFC 3665 {section} as {role}, message {number} {_ladder([want])[0]}"
        assert want[4] <= got[4], f"{what}: headers {sorted(want[4] - got[4])} missing"
        assert want[5] == got[5], f"{what}: body {'expected' if want[5] else 'not expected'}"


def _in_flow_order(
    actual: Shape, expected: Shape, either_order: frozenset[tuple[str, str]]
) -> Shape:
    """``actual`` with adjacent pairs named by ``either_order`` put in the flow's order."""
    actual = list(actual)
    for i in range(min(len(actual), len(expected)) - 1):
        pair = actual[i : i + 2]
        if pair[::-1] == expected[i : i + 2] and all(
            (label, method) in either_order for _, label, method, *_ in pair
        ):
            actual[i : i + 2] = pair[::-1]
    return actual


def _ladder(shape: Shape) -> list[str]:
    return [
        f"{'>' if d == 'out' else '<'} {label} ({method} {n})" for d, label, method, n, *_ in shape
    ]


def _deduplicated(trace: SipTrace) -> list[Traced]:
    """Retransmissions (the same message again, same direction) left out."""
    seen: set[tuple[str, bytes]] = set()
    kept = []
    for traced in trace:
        key = (traced.direction, bytes(traced.message))
        if key not in seen:
            seen.add(key)
            kept.append(traced)
    return kept


# --- peers ------------------------------------------------------------------------------------


def agent(kamailio: Kamailio | None, user: str, **options: object) -> Any:
    """A traced toolkit agent for ``user``, sending through ``kamailio`` when given."""
    if kamailio is not None:
        options.setdefault("domain", kamailio.domain)
        options.setdefault("credentials", [Credentials(user, kamailio.users[user])])
        options.setdefault("outbound_proxy", kamailio.outbound_proxy("udp"))
    return traced_agent(user, **options)


def incoming(ua: UserAgent) -> asyncio.Queue[Call]:
    calls: asyncio.Queue[Call] = asyncio.Queue()
    ua.on("incoming_call", calls.put_nowait)
    return calls


@asynccontextmanager
async def alice_and_bob(
    kamailio: Kamailio, *, challenged_before: bool = False, **alice_options: object
) -> AsyncIterator[tuple[UserAgent, SipTrace, asyncio.Queue[Call], SipTrace]]:
    """Alice (to call) and Bob (registered at Kamailio; his calls in the queue).

    ``challenged_before``: Alice has met Kamailio's challenge already (an OPTIONS to Bob),
    as the Alice of most flows has: her INVITE F1 carries Proxy-Authorization at once."""
    async with (
        agent(kamailio, "bob") as (bob, bob_trace),
        agent(kamailio, "alice", **alice_options) as (alice, alice_trace),
    ):
        calls = incoming(bob)
        await asyncio.wait_for(bob.register(kamailio.uri(), expires=300), TIMEOUT)
        if challenged_before:
            await asyncio.wait_for(alice.options(kamailio.aor("bob")), TIMEOUT)
        yield alice, alice_trace, calls, bob_trace


async def answered(call: Call, calls: asyncio.Queue[Call]) -> Call:
    """Bob rings (180) and answers (200) the call; Alice has it answered; Bob's side.
    Bob answers once Alice has heard the 180: Kamailio relays each response from
    whichever of its processes took it, so a 200 sent right behind the 180 may be relayed
    first, and the 180 then absorbed (its transaction completed), out of the flow."""
    rung = asyncio.Event()
    call.on("ringing", lambda response: rung.set())
    callee: Call = await within(calls.get())
    await within(callee.ring())
    await within(rung.wait())
    await within(callee.accept())
    await within(call.answered())
    return callee


def within(awaitable: Awaitable[T]) -> Awaitable[T]:
    return asyncio.wait_for(awaitable, TIMEOUT)


# --- 2. registration ----------------------------------------------------------------------------


def registers(trace: SipTrace) -> SipTrace:
    return SipTrace([t for t in trace if t.cseq_method == "REGISTER"])


def by_cseq(trace: SipTrace, numbers: Iterable[int]) -> SipTrace:
    wanted = set(numbers)
    return SipTrace([t for t in trace if t.message.cseq.number in wanted])


async def test_2_1_successful_new_registration(kamailio: Kamailio) -> None:
    async with agent(kamailio, "bob") as (bob, trace):
        await within(bob.register(kamailio.uri(), expires=300))
        assert_plays(registers(trace), "2.1", "Bob")


async def test_2_2_update_of_contact_list(kamailio: Kamailio) -> None:
    """A second REGISTER of the same binding carries the credentials at once (F1 has
    Authorization) and is answered 200."""
    async with agent(kamailio, "bob") as (bob, trace):
        registration = await within(bob.register(kamailio.uri(), expires=300))
        first = len(registers(trace).messages)
        await within(registration.start())  # REGISTER again, e.g. with a new expiry
        assert_plays(SipTrace(registers(trace).messages[first:]), "2.2", "Bob")


async def test_2_3_request_for_current_contact_list(kamailio: Kamailio) -> None:
    """Bob asks which contacts are bound to his AoR: a REGISTER without Contact (F1, with
    the credentials of his realm at once), whose 200 lists every binding (F2): his own and
    another device's. Nothing is bound, refreshed or removed by it."""
    async with agent(kamailio, "bob") as (bob, trace), agent(kamailio, "bob") as (desk, _):
        await within(bob.register(kamailio.uri(), expires=300))
        await within(desk.register(kamailio.uri(), expires=600))
        before = {c.address: c.expires for c in await kamailio.contacts("bob")}
        first = len(registers(trace).messages)
        bindings = await within(bob.registered_bindings(kamailio.uri()))
        query = SipTrace(registers(trace).messages[first:])
        assert_plays(query, "2.3", "Bob")
        assert "contact" not in query.messages[0].message.headers
        assert "expires" not in query.messages[0].message.headers
        assert {b.contact for b in bindings} == set(before)
        assert [b.ours for b in bindings].count(True) == 1
        assert all(0 < b.expires <= 600 for b in bindings)
        after = {c.address: c.expires for c in await kamailio.contacts("bob")}
        assert after.keys() == before.keys()


async def test_2_4_cancellation_of_registration(kamailio: Kamailio) -> None:
    async with agent(kamailio, "bob") as (bob, trace):
        registration = await within(bob.register(kamailio.uri(), expires=300))
        first = len(registers(trace).messages)
        await within(registration.unregister())
        removal = SipTrace(registers(trace).messages[first:])
        assert_plays(removal, "2.4", "Bob")
        assert removal.messages[0].message.headers.get("Expires") == "0"
        await kamailio.wait_unregistered("bob")


async def test_2_5_unsuccessful_registration(kamailio: Kamailio) -> None:
    async with agent(kamailio, "bob", credentials=[Credentials("bob", "wrong")]) as (bob, trace):
        with pytest.raises(RequestFailed) as error:
            await within(bob.register(kamailio.uri()))
        assert error.value.status == 401
        assert_plays(registers(trace), "2.5", "Bob")


# --- 3. sessions ---------------------------------------------------------------------------------


async def test_3_1_successful_session_establishment_both_roles() -> None:
    """Alice calls Bob directly; Bob rings, answers, and ends the call with BYE."""
    async with agent(None, "bob") as (bob, bob_trace), agent(None, "alice") as (alice, trace):
        calls = incoming(bob)
        local = bob.listening[0]
        call = alice.dial(f"sip:bob@{local.host}:{local.port}")
        callee = await answered(call, calls)
        await within(callee.hangup())
        await within(call.ended())
        assert_plays(trace.of(call.call_id), "3.1", "Alice")
        assert_plays(bob_trace.of(call.call_id), "3.1", "Bob")


async def test_3_2_session_through_proxies_with_proxy_authentication_both_roles(
    kamailio: Kamailio,
) -> None:
    async with alice_and_bob(kamailio) as (alice, trace, calls, bob_trace):
        call = alice.dial(kamailio.aor("bob"))
        callee = await answered(call, calls)
        await within(callee.hangup())
        await within(call.ended())
        assert_plays(trace.of(call.call_id), "3.2", "Alice")
        assert_plays(bob_trace.of(call.call_id), "3.2", "Bob")


@pytest.fixture(scope="module")
def two_proxies(kamailio_factory: Callable[..., Kamailio]) -> tuple[Kamailio, Kamailio]:
    """Two Kamailios in a row, each challenging in a realm of its own: Alice's (realm
    127.0.0.1, the From domain) sends every call for its users to Bob's (realm
    biloxi.example.com), where Bob registers."""
    bobs = kamailio_factory(realm="biloxi.example.com", children=2, pki=None)
    alices = kamailio_factory(next_hop=bobs.outbound_proxy("udp"), children=2, pki=None)
    return alices, bobs


async def test_3_3_session_with_multiple_proxy_authentication_both_roles(
    two_proxies: tuple[Kamailio, Kamailio],
) -> None:
    """Alice's proxy challenges her INVITE (407, its realm); with her credentials for it the
    INVITE reaches Bob's proxy, which challenges in its realm (407 relayed by the first);
    the third INVITE carries both credentials (RFC 3261 §22.3), each proxy takes its own,
    and Bob answers at once. Alice hangs up afterwards (the flow ends with the ACK)."""
    alices, bobs = two_proxies
    bobs.clear_location_sync()
    async with (
        agent(bobs, "bob") as (bob, bob_trace),
        agent(alices, "alice") as (alice, trace),
    ):
        calls = incoming(bob)
        await within(bob.register(bobs.uri(), expires=300))
        call = alice.dial(alices.aor("bob"))
        callee: Call = await within(calls.get())
        await within(callee.accept())
        await within(call.answered())
        await within(call.hangup())
        await within(callee.ended())
        invite_and_ack = {"INVITE", "ACK"}
        mine = SipTrace([t for t in trace.of(call.call_id) if t.cseq_method in invite_and_ack])
        assert_plays(mine, "3.3", "Alice")
        realms = [
            sorted(_digest_realms(t.message, "Proxy-Authorization"))
            for t in mine
            if t.label == "INVITE"
        ]
        assert realms == [[], [alices.realm], sorted([alices.realm, bobs.realm])]
        his = bob_trace.of(call.call_id)
        assert_plays(SipTrace([t for t in his if t.cseq_method in invite_and_ack]), "3.3", "Bob")


def _digest_realms(message: Request | Response, name: str) -> set[str]:
    return {parse_auth(value).params["realm"] for value in message.headers.get_all(name)}


async def test_3_4_successful_session_with_proxy_failure(kamailio: Kamailio) -> None:
    """Alice's proxy is found by DNS SRV: the first one never answers (seven INVITEs, the
    first and six retransmissions, until Timer B), the second is Kamailio. T1 is short."""
    loop = asyncio.get_running_loop()
    hung, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    hung_port = hung.get_extra_info("sockname")[1]
    try:
        async with DnsServer() as dns:
            dns.load(
                f"""
                _sip._udp.proxies.test. SRV 10 1 {hung_port} proxy1.proxies.test.
                _sip._udp.proxies.test. SRV 20 1 {kamailio.udp_port} proxy2.proxies.test.
                proxy1.proxies.test.    A   127.0.0.1
                proxy2.proxies.test.    A   127.0.0.1
                """
            )
            async with alice_and_bob(
                kamailio,
                outbound_proxy="sip:proxies.test",
                resolver=dns.resolver(),
                timers=Timers(t1=0.02),
            ) as (alice, trace, calls, _):
                call = alice.dial(kamailio.aor("bob"))
                callee = await answered(call, calls)
                await within(callee.hangup())
                await within(call.ended())
                mine = trace.of(call.call_id)
                to_first = [t for t in mine if t.peer.port == hung_port]
                assert [t.label for t in to_first] == ["INVITE"] * 7
                # the flow lists the retransmissions F1..F7; the rest goes to Kamailio
                rest = SipTrace([t for t in mine if t.peer.port != hung_port])
                assert_plays(
                    SipTrace(to_first + _deduplicated(rest)), "3.4", "Alice", deduplicate=False
                )
    finally:
        hung.close()


async def test_3_5_session_through_an_alg_kamailio_in_its_place(kamailio: Kamailio) -> None:
    """The ALG is a proxy to Alice (a NAT's rewriting is invisible to her); Alice hangs up."""
    async with alice_and_bob(kamailio, challenged_before=True) as (alice, trace, calls, bob_trace):
        call = alice.dial(kamailio.aor("bob"))
        callee = await answered(call, calls)
        await within(call.hangup())
        await within(callee.ended())
        assert_plays(trace.of(call.call_id), "3.5", "Alice")
        assert_plays(bob_trace.of(call.call_id), "3.5", "Bob")


@pytest.fixture(scope="module")
def open_proxy(kamailio_factory: Callable[..., Kamailio]) -> Kamailio:
    """A Kamailio that challenges nobody: the flow's Proxy 3, which Alice reaches without
    credentials."""
    return kamailio_factory(noauth=True, children=2, pki=None)


async def test_3_6_session_via_redirect_and_proxy_servers_with_sdp_in_ack_both_roles(
    open_proxy: Kamailio, sipp: Sipp
) -> None:
    """Alice's INVITE without SDP goes to a redirect server (SIPp) that answers 302 with
    Bob's Contact at Proxy 3 over TCP; Alice ACKs it and sends the INVITE there (same
    Call-ID, CSeq one more, over TCP as the Contact says); Bob's 200 carries the offer and
    Alice's ACK the answer. Bob hangs up."""
    proxy = open_proxy
    proxy.clear_location_sync()
    moved_to = f"<sip:bob@{proxy.host}:{proxy.tcp_port};transport=tcp>"
    redirect_server = sipp.start("uas_redirect", keys={"target": moved_to})
    async with (
        agent(proxy, "bob", credentials=[]) as (bob, bob_trace),
        agent(None, "alice") as (alice, trace),
    ):
        await alice.listen("tcp", "127.0.0.1", 0)
        calls = incoming(bob)
        await within(bob.register(proxy.uri(), expires=300))
        redirected: list[str] = []
        call = alice.dial(redirect_server.uri("bob"), offer=False)
        call.on("redirected", lambda response, target: redirected.append(str(target)))
        callee = await within(calls.get())
        await within(callee.ring())
        # Kamailio relays the 180 (from Bob over UDP) and the 200 in whichever worker
        # reads each: Bob answers once Alice has the 180, so they reach her in the
        # flow's order
        await within(trace.wait_for("180", "in"))
        await within(callee.accept())
        await within(call.answered())
        await within(callee.hangup())
        await within(call.ended())
        assert redirected == [moved_to.strip("<>")]
        mine = trace.of(call.call_id)
        assert_plays(mine, "3.6", "Alice")
        invites = [t for t in mine if t.label == "INVITE"]
        assert [t.peer.transport for t in invites] == ["udp", "tcp"]
        assert "transport=tcp" in str(invites[1].message.contact[0].uri)
        assert_plays(bob_trace.of(call.call_id), "3.6", "Bob")
    assert (await redirect_server.wait(TIMEOUT)).ok


async def test_3_7_session_with_re_invite_both_roles(kamailio: Kamailio) -> None:
    """Bob sends a re-INVITE (a new offer, as after an address change); Alice hangs up."""
    async with alice_and_bob(kamailio, challenged_before=True) as (alice, trace, calls, bob_trace):
        call = alice.dial(kamailio.aor("bob"))
        callee = await answered(call, calls)
        await within(callee.reinvite())
        await within(trace.wait_for("ACK", "in"))  # the re-INVITE's ACK (F11) is in
        await within(call.hangup())
        await within(callee.ended())
        assert_plays(trace.of(call.call_id), "3.7", "Alice")
        # the flow's re-INVITE goes from Bob to Alice without a proxy; ours passes Kamailio
        # (it record-routed the dialog), whose 100 Trying to it the flow has no place for
        assert_plays(
            bob_trace.of(call.call_id),
            "3.7",
            "Bob",
            skip=lambda t: t.label == "100" and t.direction == "in",
        )


async def test_3_8_unsuccessful_no_answer_both_roles(kamailio: Kamailio) -> None:
    async with alice_and_bob(kamailio, challenged_before=True) as (alice, trace, calls, bob_trace):
        call = alice.dial(kamailio.aor("bob"))
        callee = await within(calls.get())
        await within(callee.ring())
        await within(trace.wait_for("180", "in"))
        await within(call.cancel())
        assert (await within(callee.ended())).status == 487
        await within(trace.wait_for("487", "in"))
        await within(bob_trace.wait_for("ACK", "in"))
        # The 200 to the CANCEL and the 487 to the INVITE end two transactions; through the
        # proxy either may arrive first (RFC 3261 §9.2 orders neither).
        cancel_answers = frozenset({("200", "CANCEL"), ("487", "INVITE")})
        assert_plays(trace.of(call.call_id), "3.8", "Alice", either_order=cancel_answers)
        assert_plays(bob_trace.of(call.call_id), "3.8", "Bob", either_order=cancel_answers)


async def test_3_9_unsuccessful_busy_both_roles(kamailio: Kamailio) -> None:
    async with alice_and_bob(kamailio, challenged_before=True) as (alice, trace, calls, bob_trace):
        call = alice.dial(kamailio.aor("bob"))
        callee = await within(calls.get())
        await within(callee.reject(486))
        with pytest.raises(RequestFailed):
            await within(call.answered())
        await within(bob_trace.wait_for("ACK", "in"))
        assert_plays(trace.of(call.call_id), "3.9", "Alice")
        assert_plays(bob_trace.of(call.call_id), "3.9", "Bob")


async def test_3_10_unsuccessful_no_response_from_user_agent(
    kamailio: Kamailio, sipp: Sipp
) -> None:
    """Bob is a SIPp UAS registered at Kamailio that never answers, not even 100 (his part:
    the INVITE and its retransmissions, F4 and F6 to F11, absorbed). Kamailio, as the flow's
    proxy, answers Alice 480 No Response when its timer for the branch fires (F14); Alice
    ACKs it with her credentials (F15)."""
    bob = await sipp.start_registered(kamailio, "bob", "uas_silent", duration_ms=30_000)
    async with agent(kamailio, "alice") as (alice, trace):
        # Alice has met Kamailio's challenge before (F1 carries Proxy-Authorization)
        with pytest.raises(RequestFailed):
            await within(alice.options(kamailio.aor("carol")))
        call = alice.dial(kamailio.aor("bob"))
        with pytest.raises(RequestFailed) as error:
            await within(call.answered())
        assert (error.value.status, error.value.reason) == (480, "No Response")
        assert_plays(trace.of(call.call_id), "3.10", "Alice")
    heard = bob.stop().messages()
    invites = heard.count(f"INVITE {kamailio.aor('bob').split(':')[0]}:")
    assert invites >= 2, heard  # the INVITE and at least one retransmission, unanswered
    assert "SIP/2.0 1" not in heard and "SIP/2.0 4" not in heard, heard


async def test_3_11_unsuccessful_temporarily_unavailable_both_roles(
    kamailio: Kamailio,
) -> None:
    async with alice_and_bob(kamailio, challenged_before=True) as (alice, trace, calls, bob_trace):
        call = alice.dial(kamailio.aor("bob"))
        callee = await within(calls.get())
        await within(callee.ring())
        await within(trace.wait_for("180", "in"))
        await within(callee.reject(480, "Temporarily Unavailable"))
        with pytest.raises(RequestFailed) as error:
            await within(call.answered())
        assert error.value.status == 480
        await within(bob_trace.wait_for("ACK", "in"))
        assert_plays(trace.of(call.call_id), "3.11", "Alice")
        assert_plays(bob_trace.of(call.call_id), "3.11", "Bob")


def test_every_flow_is_played_or_said_why_not() -> None:
    """Each flow of the manifest has a test here or an entry in NOT_PLAYED."""
    import json

    manifest = json.loads((FLOWS / "manifest.json").read_text(encoding="utf-8"))
    names = {name for name in globals() if name.startswith("test_")}
    for flow in manifest["flows"]:
        major, minor = flow["section"].split(".")
        prefix = f"test_{major}_{int(minor)}_"
        key = f"{major}.{int(minor):02d}"
        played = any(name.startswith(prefix) for name in names)
        excused = any(k.split()[0] == key for k in NOT_PLAYED)
        assert played or excused, f"RFC 3665 {flow['section']} {flow['title']}"
