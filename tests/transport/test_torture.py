"""RFC 4475 torture messages sent to a running transport over UDP and over TCP.

Each one reaches the layer above as a message or as malformed input (never as an
exception), and a call in progress with another peer carries on undisturbed. What the
UA answers then is the UA's business (tests/sip/test_sip_torture.py checks verdicts).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.conftest import DATA, load_manifest
from tests.transport.helpers import Peer, closed_by_peer, raw_connection, request, udp_socket
from voip.transport import Endpoint

TORTURE = DATA / "torture"
ENTRIES = {entry["name"]: entry for entry in load_manifest(TORTURE / "manifest.json")["messages"]}
# Over a stream the framing rules are stricter than in a datagram (RFC 3261 §18.3):
# conflicting Content-Lengths cannot frame; dblreq is a REGISTER, an INVITE and stray
# octets that cannot be framed: the two messages framed first go up, then the error.
STREAM_FRAMING = {"dblreq": ["malformed", "message", "message"], "mcl01": ["malformed"]}

Listening = Callable[..., Awaitable[Peer]]


def torture(name: str) -> bytes:
    return (TORTURE / f"{name}.dat").read_bytes()


def must_parse(name: str) -> bool:
    return bool(ENTRIES[name]["parse"] == "must_accept")


@pytest.fixture
async def bob(listening: Listening) -> AsyncIterator[Peer]:
    bob = await listening("udp")
    await bob.layer.listen("tcp", "127.0.0.1")
    yield bob


@pytest.fixture
async def alice(make_peer: Callable[..., Peer]) -> AsyncIterator[Peer]:
    """A peer in a call with Bob: her in-call requests must keep arriving."""
    alice = make_peer()
    yield alice
    assert alice.inbox.errors.empty()


async def seen_before_the_call_goes_on(
    alice: Peer, bob: Peer, destination: Endpoint, n: int
) -> list[str]:
    """Send an in-call request; what reached Bob's layer above before it did."""
    alice.layer.send(request("INFO", call_id=f"call-{n}"), destination)
    seen = []
    while (await bob.inbox.message())[0].headers.get("call-id") != f"call-{n}":
        seen.append("message")
    while not bob.inbox.malformed.empty():
        bob.inbox.malformed.get_nowait()
        seen.append("malformed")
    return sorted(seen)


async def test_each_datagram_reaches_the_layer_above_once_and_the_call_goes_on(
    alice: Peer, bob: Peer
) -> None:
    with udp_socket() as client:
        for n, name in enumerate(sorted(ENTRIES)):
            client.sendto(torture(name), bob.at.address)
            # Both datagrams go to one socket: the torture message is read first.
            seen = await seen_before_the_call_goes_on(alice, bob, bob.at, n)
            expected = [["message"]] if must_parse(name) else [["message"], ["malformed"]]
            assert seen in expected, name


@pytest.mark.parametrize("name", sorted(ENTRIES))
async def test_each_stream_message_reaches_the_layer_above_and_the_call_goes_on(
    alice: Peer, bob: Peer, name: str
) -> None:
    tcp = bob.layer.local_endpoint("tcp", bob.at)
    assert await seen_before_the_call_goes_on(alice, bob, tcp, 0) == []
    reader, writer = await raw_connection(tcp)
    writer.write(torture(name))
    writer.write_eof()
    await closed_by_peer(reader)  # the layer closes its side once the peer is done
    writer.close()
    seen = await seen_before_the_call_goes_on(alice, bob, tcp, 1)
    if name in STREAM_FRAMING:
        assert seen == STREAM_FRAMING[name]
    elif must_parse(name):
        assert seen == ["message"]
    else:
        # Some declare more body than they carry: at the end of the stream nothing
        # is framed, so nothing is delivered.
        assert seen in ([], ["message"], ["malformed"])
