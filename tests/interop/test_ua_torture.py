"""RFC 4475 torture messages sent to a running UA while it has a call with SIPp in progress.

Every one of the 50 messages goes to the toolkit UA over UDP and over TCP. Each request
gets the response its manifest entry gives (``tests/data/torture/manifest.json``: the
status of a ``reject``, the user-agent role's status of an ``accept``, else what RFC 3261
has a UA answer an acceptable request with, see ``uas_statuses``) and every response is
dropped; meanwhile the UA's call with a SIPp UAS carries on: an INFO in the call after
each message is answered, and at the end the call is held, resumed and ended with BYE.

Over UDP a response leaves from the socket its request arrived on (RFC 3581 §4) and goes
where the top Via says (RFC 3261 §18.2.2): to the ``received`` address, the packet's
source, at the sent-by port. So each message is sent from its own loopback address,
bound at its Via's port, and followed by an OPTIONS probe from the same socket: the UA
reads a socket in order, so what came back before the probe's 200 is all the answer the
message got (nothing, for a dropped one).

Over TCP each message has a connection of its own, half-closed after it; the UA answers
what it framed and closes its side (RFC 3261 §18.3 frames a stream message by its
Content-Length, so a message never completed is never answered).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from support.peers import Sipp

from tests.conftest import DATA, load_manifest
from voip.call import Call, CallState
from voip.sip import Response, StreamParser, parse_message
from voip.sip.transaction import Timers
from voip.transport import Endpoint
from voip.useragent import UserAgent

TORTURE = DATA / "torture"
ENTRIES = {entry["name"]: entry for entry in load_manifest(TORTURE / "manifest.json")["messages"]}
WAIT = 10.0  # a bound on waiting, never a measurement

_HEAD_END = re.compile(rb"\r?\n\r?\n")
_FOLD = re.compile(rb"\r?\n[ \t]+")


def torture(name: str) -> bytes:
    return (TORTURE / ENTRIES[name]["file"]).read_bytes()


def header_section(data: bytes) -> bytes:
    return _FOLD.sub(b" ", _HEAD_END.split(data, maxsplit=1)[0])


def header(data: bytes, *names: str, section: bool = True) -> list[str]:
    """The values of the header fields called ``names`` (long or compact), unfolded, in
    the first header section (or, ``section=False``, in every message of ``data``)."""
    pattern = rb"^(?:" + b"|".join(re.escape(n.encode()) for n in names) + rb")[ \t]*:(.*)$"
    text = header_section(data) if section else _FOLD.sub(b" ", data)
    found = re.findall(pattern, text, re.IGNORECASE | re.MULTILINE)
    return [value.strip().decode("utf-8", "replace") for value in found]


def in_dialog(data: bytes) -> bool:
    return any(re.search(r";\s*tag\s*=", value) for value in header(data, "to", "t"))


def uas_statuses(entry: dict[str, Any], data: bytes) -> set[int] | None:
    """What a UA (not a proxy, not a registrar) answers this message with; None for
    "drop it" (a response matching no transaction is discarded, RFC 3261 §18.1.2).

    The manifest's own status when it gives one (``reject``: ``expected_status`` or
    ``acceptable_statuses``; ``accept``: ``uas_expected_status`` or
    ``uas_not_registrar_expected_status``), unless it has no Via to answer by; else, for
    an acceptable request, what RFC 3261
    has a UA answer: 481 in a dialog it does not know (§12.2.2), 200 to OPTIONS (§11.2) and
    MESSAGE (RFC 3428 §7), 405 to REGISTER (§8.2.1, the manifest's
    ``uas_not_registrar_expected_status``), 501 to a method it does not know (§21.5.2,
    the manifest's ``uas_expected_status`` of esc02), and to a new INVITE the
    application's answer: this one is busy in its call (486).
    """
    if entry["kind"] == "response":
        return None
    if not header(data, "via", "v"):
        # test.dat (no RFC 4475 case; the corpus editor's 400): without a Via a response
        # has nowhere to go (§18.2.2) and could match nothing (§8.2.6.2 copies the Via).
        return None
    if entry["verdict"] == "reject":
        return set(entry.get("acceptable_statuses") or [entry["expected_status"]])
    for role in ("uas_expected_status", "uas_not_registrar_expected_status"):
        if role in entry:
            return {entry[role]}
    method = entry["method"]
    if in_dialog(data):
        return {481}
    statuses = {"OPTIONS": 200, "MESSAGE": 200, "REGISTER": 405, "INVITE": 486}
    return {statuses.get(method, 501)}


def stream_frames(entry: dict[str, Any], data: bytes) -> bool:
    """Whether a stream carrying ``data`` and nothing more completes its first message
    (§18.3): its header section is closed and its Content-Length not beyond what follows."""
    if not entry["header_section_terminated"]:
        return False
    body = _HEAD_END.split(data, maxsplit=1)[1]
    lengths = [v for v in header(data, "content-length", "l") if v.isdigit()]
    return not lengths or int(lengths[0]) <= len(body)


def check_answer(name: str, answers: list[Response], data: bytes) -> None:
    """``answers`` (what came back for ``data``) are what the manifest asks."""
    entry = ENTRIES[name]
    expected = uas_statuses(entry, data)
    if expected is None:
        assert answers == [], f"{name}: a response is dropped, got {answers}"
        return
    assert answers, f"{name}: no answer, expected {expected}"
    first = answers[0]
    assert first.status in expected, f"{name}: {first.status} {first.reason_phrase}"
    if first.status == 400:
        # RFC 4475 §3.1.2 via DESIGN "Errors": the reason phrase says what was wrong.
        assert first.reason_phrase not in ("", "Bad Request"), name
    # Each answers a message sent (dblreq holds two on a stream); insuf has no Call-ID.
    call_ids = header(data, "call-id", "i", section=False) or [None]
    for answer in answers:
        assert answer.headers.get("call-id") in call_ids, f"{name}: answered {answer}"


# --- the UA and its call -------------------------------------------------------------------


@pytest.fixture
async def bob() -> AsyncIterator[UserAgent]:
    """The UA under test: its call goes out of its first UDP socket; the torture comes in
    on a second one and on TCP. Short timers (T1 20 ms) end a transaction within 1.3 s,
    so a torture request that repeats an earlier one's branch and sent-by (cparam01 and
    cparam02 do) can wait for the earlier transaction to end rather than be taken for its
    retransmission (§17.2.3)."""
    ua = UserAgent("bob", timers=Timers(t1=0.02, t4=0.2))
    ua.on("incoming_call", lambda call: call.reject_now(486, "Busy Here"))
    await ua.listen("udp", "127.0.0.1", 0)
    await ua.listen("udp", "127.0.0.1", 0)
    await ua.listen("tcp", "127.0.0.1", 0)
    yield ua
    await ua.close()


@contextlib.asynccontextmanager
async def call_with_sipp(sipp: Sipp, bob: UserAgent) -> AsyncIterator[Call]:
    """Bob's call with a SIPp UAS (which answers INFO in the call, -aa); on the way out
    the call must still be up, survive a hold and a resume, and end with BYE and 200."""
    uas = sipp.start("uas_call", calls=1, timeout=120)
    call = await asyncio.wait_for(bob.call(uas.uri("sipp")), WAIT)
    yield call
    assert call.state is CallState.ANSWERED and bob.calls
    await asyncio.wait_for(call.hold(), WAIT)
    await asyncio.wait_for(call.resume(), WAIT)
    await asyncio.wait_for(call.hangup(), WAIT)
    assert call.end_reason is not None and call.end_reason.by == "local"
    result = await uas.wait(WAIT)
    assert result.ok, result.report()


async def still_in_call(call: Call, name: str) -> None:
    assert call.state is CallState.ANSWERED, f"the call ended after {name}"
    response = await asyncio.wait_for(call.info(name.encode(), "text/plain"), WAIT)
    assert response.status == 200


async def no_server_transactions(ua: UserAgent) -> None:
    async with asyncio.timeout(WAIT):
        while ua.transactions.servers:
            await asyncio.sleep(0.05)


def transaction_id(data: bytes) -> tuple[str, str]:
    """What §17.2.3 matches a request's server transaction by: top Via and method."""
    vias = header(data, "via", "v")
    return (vias[0].split(",")[0] if vias else "", data.split(b" ", 1)[0].decode("latin-1"))


# --- over UDP ------------------------------------------------------------------------------


def reply_port(data: bytes) -> int:
    """The sent-by port of the top Via, where a UDP response goes (§18.2.2), 5060 by default."""
    vias = header(data, "via", "v")
    if vias:
        sent_by = re.match(r"SIP\s*/\s*\d\.\d\s*/\s*\w+\s+([^;,\s]+)", vias[0], re.IGNORECASE)
        if sent_by is not None:
            port = re.search(r":(\d+)$", sent_by.group(1))
            if port is not None:
                return int(port.group(1))
    return 5060


@contextlib.contextmanager
def peer_socket(port: int) -> Iterator[socket.socket]:
    """A UDP socket at ``port`` on a loopback address of its own (127.x.y.z)."""
    for _ in range(50):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        address = "127.{}.{}.{}".format(*(random.randint(1, 254) for _ in range(3)))
        try:
            sock.bind((address, port))
        except OSError:
            sock.close()
            continue
        sock.setblocking(False)
        with sock:
            yield sock
        return
    raise RuntimeError(f"no free loopback address for port {port}")


def probe(sock: socket.socket, to: Endpoint, n: int) -> tuple[bytes, str]:
    host, port = sock.getsockname()
    call_id = f"probe-{n}@{host}"
    message = (
        f"OPTIONS sip:bob@{to.host}:{to.port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK-probe-{n};rport\r\n"
        f"From: <sip:probe@{host}>;tag=probe{n}\r\nTo: <sip:bob@{to.host}>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    return message.encode(), call_id


def ack(data: bytes, response: Response) -> bytes:
    """The ACK of a non-2xx final response to an INVITE (§17.1.1.3), built from it."""
    uri = data.split(b" ")[1].decode("utf-8", "replace")
    lines = [f"ACK {uri} SIP/2.0", f"Via: {response.headers.get_all('via')[0]}"]
    lines += [f"{name}: {response.headers.get(name)}" for name in ("From", "To", "Call-ID")]
    number = (response.headers.get("cseq") or "").split()[0]
    lines += [f"CSeq: {number} ACK", "Max-Forwards: 70", "Content-Length: 0"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def same_answer(one: Response, other: Response) -> bool:
    def key(response: Response) -> tuple[str | None, str | None, int]:
        return response.headers.get("call-id"), response.headers.get("cseq"), response.status

    return key(one) == key(other)


async def over_udp(data: bytes, to: Endpoint, n: int) -> list[Response]:
    """Send ``data`` to ``to`` and return what came back before the probe's answer; each
    answer comes from ``to`` (the socket the request arrived on)."""
    loop = asyncio.get_running_loop()
    answers: list[Response] = []
    with peer_socket(reply_port(data)) as sock:
        await loop.sock_sendto(sock, data, to.address)
        probing, probe_id = probe(sock, to, n)
        await loop.sock_sendto(sock, probing, to.address)
        async with asyncio.timeout(WAIT):
            while True:
                datagram, source = await loop.sock_recvfrom(sock, 65536)
                assert source == to.address, f"answered from {source}, not from {to}"
                response = parse_message(datagram)
                assert isinstance(response, Response)
                if response.headers.get("call-id") == probe_id:
                    assert response.status == 200
                    return answers
                if any(same_answer(a, response) for a in answers):
                    continue  # a retransmission
                answers.append(response)
                cseq = (response.headers.get("cseq") or "").split()
                if cseq[-1:] == ["INVITE"] and response.status >= 300:
                    await loop.sock_sendto(sock, ack(data, response), to.address)


async def test_torture_over_udp_gets_the_manifests_answers_and_the_call_goes_on(
    sipp: Sipp, bob: UserAgent
) -> None:
    torture_at = bob.listening[1]
    async with call_with_sipp(sipp, bob) as call:
        seen: set[tuple[str, str]] = set()
        for n, name in enumerate(sorted(ENTRIES)):
            data = torture(name)
            if transaction_id(data) in seen:
                await no_server_transactions(bob)
            seen.add(transaction_id(data))
            check_answer(name, await over_udp(data, torture_at, n), data)
            await still_in_call(call, name)


# --- over TCP ------------------------------------------------------------------------------


async def over_tcp(data: bytes, to: Endpoint, *, half_close: bool = True) -> list[Response]:
    """Send ``data`` on a connection of its own; what came back until the UA closed it."""
    reader, writer = await asyncio.open_connection(to.host, to.port)
    parser = StreamParser()
    answers: list[Response] = []
    try:
        writer.write(data)
        if half_close:
            writer.write_eof()
        async with asyncio.timeout(WAIT):
            while chunk := await reader.read(65536):
                for event in parser.feed(chunk):
                    assert isinstance(event, Response), event
                    answers.append(event)
    finally:
        writer.close()
    assert not parser.buffered, "the UA left a message unfinished"
    return answers


async def test_torture_over_tcp_gets_the_manifests_answers_and_the_call_goes_on(
    sipp: Sipp, bob: UserAgent
) -> None:
    tcp = bob.listening[2]
    async with call_with_sipp(sipp, bob) as call:
        for name in sorted(ENTRIES):
            data = torture(name)
            answers = await over_tcp(data, tcp)
            if stream_frames(ENTRIES[name], data):
                check_answer(name, answers, data)
            else:
                assert answers == [], f"{name} is never complete on a stream: {answers}"
            await still_in_call(call, name)


async def test_messages_before_a_framing_error_are_answered_then_400_and_the_connection_closes(
    sipp: Sipp, bob: UserAgent
) -> None:
    """RFC 4475 §3.1.2.3 and §3.3.9: a stream with an unreadable Content-Length cannot be
    framed any further; what came before it in the same read is still answered."""
    tcp = bob.listening[2]
    before, breaking = torture("zeromf"), torture("mcl01")
    after = torture("lwsdisp")  # never answered: nothing after the error can be framed
    async with call_with_sipp(sipp, bob) as call:
        answers = await over_tcp(before + breaking + after, tcp, half_close=False)
        assert [a.status for a in answers] == [200, 400]
        assert [a.call_id for a in answers] == [
            header(before, "call-id", "i")[0],
            header(breaking, "call-id", "i")[0],
        ]
        assert "Content-Length" in answers[1].reason_phrase
        await still_in_call(call, "mcl01")
