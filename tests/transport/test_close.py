"""close() lets go of every socket the layer held."""

from __future__ import annotations

import asyncio

import pytest
from support.peers.pki import LoopbackPki

from tests.transport.helpers import Recorder, never_reading_server, open_fds, request
from voip.transport import Endpoint, client_context, server_context


async def test_close_releases_every_socket(certificates: LoopbackPki) -> None:
    before = open_fds()
    alice, bob = Recorder(), Recorder()
    tls = {
        "tls_client": client_context(certificates.cafile),
        "tls_server": server_context(certificates.certfile, certificates.keyfile),
    }
    alice_layer, bob_layer = alice.layer(**tls), bob.layer(**tls)
    for host in ("127.0.0.1", "::1"):
        for transport in ("udp", "tcp", "tls"):
            bound = await bob_layer.listen(transport, host)
            alice_layer.send(request(), bound)
            await bob.message()
    # A connection still being opened when close() comes is let go of too: this server
    # never answers the TLS handshake.
    async with never_reading_server("tls") as mute:
        alice_layer.send(request(), mute)
        await asyncio.sleep(0.05)
        assert bob_layer.sockets_open == 2 + 4 + 4  # UDP, listening, accepted
        assert alice_layer.sockets_open == 2 + 5  # UDP, connections
        await asyncio.gather(alice_layer.close(), bob_layer.close())
    assert alice_layer.sockets_open == bob_layer.sockets_open == 0
    assert open_fds() == before
    assert alice.errors.empty()


async def test_after_close_sends_are_dropped_and_nothing_is_opened() -> None:
    alice = Recorder()
    layer = alice.layer()
    await layer.listen("udp", "127.0.0.1")
    await layer.close()
    before = open_fds()
    layer.send(request(), Endpoint("udp", "127.0.0.1", 5060))
    layer.send(request(), Endpoint("tcp", "127.0.0.1", 5060))
    with pytest.raises(RuntimeError, match="closed"):
        layer.local_endpoint("udp", Endpoint("udp", "127.0.0.1", 5060))
    assert open_fds() == before and layer.sockets_open == 0


async def test_a_connection_closed_before_its_connect_task_ran_is_let_go_of() -> None:
    # a client-only agent's first Via opens its connection; closed in the same step of
    # the loop, before the connect task ever ran, it is let go of all the same
    server, alice = Recorder(), Recorder()
    server_layer = server.layer()
    bound = await server_layer.listen("tcp", "127.0.0.1")
    before = open_fds()
    layer = alice.layer()
    local = layer.local_endpoint("tcp", bound)
    assert local.transport == "tcp" and local.port != 0 and layer.sockets_open == 1
    async with asyncio.timeout(5.0):  # no task in between: the connect task has not run
        await layer.close()
    assert layer.sockets_open == 0 and open_fds() == before
    await server_layer.close()
