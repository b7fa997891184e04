"""SIP over TLS (RFC 3261 §26.2, RFC 5922): verified by default, reused like TCP."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

import pytest
from support.peers.pki import LoopbackPki

from tests.transport.helpers import (
    WAIT,
    Peer,
    flood,
    hostport,
    never_reading_server,
    request,
    response,
)
from voip.sip import Request, Response
from voip.transport import StreamLimits, client_context, server_context


def tls_peers(
    make_peer: Callable[..., Peer], certificates: LoopbackPki, **client: object
) -> tuple[Peer, Peer]:
    alice = make_peer(tls_client=client_context(certificates.cafile), **client)
    bob = make_peer(tls_server=server_context(certificates.certfile, certificates.keyfile))
    return alice, bob


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_request_and_response_round_trip(
    make_peer: Callable[..., Peer], certificates: LoopbackPki, host: str
) -> None:
    alice, bob = tls_peers(make_peer, certificates)
    bob_at = await bob.layer.listen("tls", host)
    via = alice.layer.local_endpoint("tls", bob_at)
    alice.layer.send(request(transport="TLS", sent_by=hostport(via)), bob_at)
    message, source, local = await bob.inbox.message()
    assert isinstance(message, Request)
    assert (source, local) == (via, bob_at)
    bob.layer.send(response(), bob.layer.response_destination(message, source))
    answer, answered_from, _ = await alice.inbox.message()
    assert isinstance(answer, Response) and answered_from == bob_at
    assert bob.layer.counters.connections_accepted == 1


async def test_the_certificate_may_be_checked_against_a_domain_name(
    make_peer: Callable[..., Peer], certificates: LoopbackPki
) -> None:
    alice, bob = tls_peers(make_peer, certificates)
    bob_at = await bob.layer.listen("tls", "127.0.0.1")
    alice.layer.send(request(), bob_at, server_name="localhost")
    await bob.inbox.message()
    assert alice.inbox.errors.empty()


async def refusal(alice: Peer, bob: Peer, server_name: str) -> ssl.SSLCertVerificationError:
    """Why Alice refused Bob's certificate when reaching him as ``server_name``."""
    bob_at = await bob.layer.listen("tls", "127.0.0.1")
    alice.layer.send(request(), bob_at, server_name=server_name)
    destination, error = await alice.inbox.error()
    assert destination == bob_at
    assert isinstance(error, ssl.SSLCertVerificationError)
    assert bob.inbox.messages.empty() and alice.layer.connections == ()
    return error


async def test_a_certificate_from_an_untrusted_ca_is_refused_by_default(
    make_peer: Callable[..., Peer], certificates: LoopbackPki
) -> None:
    # No tls_client: the system's CAs, which do not include the test CA.
    alice = make_peer()
    bob = make_peer(tls_server=server_context(certificates.certfile, certificates.keyfile))
    error = await refusal(alice, bob, "localhost")
    assert error.verify_code == 20  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY


async def test_a_certificate_for_another_name_is_refused(
    make_peer: Callable[..., Peer], certificates: LoopbackPki
) -> None:
    error = await refusal(*tls_peers(make_peer, certificates), "sip.example.com")
    assert error.verify_code == 62  # X509_V_ERR_HOSTNAME_MISMATCH


async def test_a_tls_listener_needs_a_server_context(make_peer: Callable[..., Peer]) -> None:
    with pytest.raises(ValueError, match="tls_server"):
        await make_peer().layer.listen("tls", "127.0.0.1")


async def test_keepalive_pings_are_answered_across_tls(
    make_peer: Callable[..., Peer], certificates: LoopbackPki
) -> None:
    alice, bob = tls_peers(make_peer, certificates, keepalive_interval=0.05)
    bob_at = await bob.layer.listen("tls", "127.0.0.1")
    alice.layer.send(request(), bob_at)
    await bob.inbox.message()
    async with asyncio.timeout(WAIT):
        while bob.layer.counters.pongs_sent < 3:
            await asyncio.sleep(0.01)
    assert alice.inbox.errors.empty()


def test_the_default_client_context_verifies_certificates_and_names() -> None:
    context = client_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


async def test_a_tls_peer_that_does_not_read_is_disconnected_past_the_write_bound(
    make_peer: Callable[..., Peer], certificates: LoopbackPki
) -> None:
    bound = 256 * 1024
    alice = make_peer(
        tls_client=client_context(certificates.cafile), limits=StreamLimits(max_write_buffer=bound)
    )
    server = server_context(certificates.certfile, certificates.keyfile)
    async with never_reading_server("tls", server) as target:
        destination, error = await flood(alice, target, bound)
    assert destination == target and isinstance(error, BufferError)
