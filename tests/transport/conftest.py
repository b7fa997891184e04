"""Fixtures for the transport tests: recording layers and a test CA for TLS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from support.peers.pki import LoopbackPki, make_loopback_pki

from tests.transport.helpers import Peer, Recorder


@pytest.fixture
async def make_peer() -> AsyncIterator[Callable[..., Peer]]:
    """Transport layers with recorded callbacks, all closed after the test."""
    peers: list[Peer] = []

    def make(**options: Any) -> Peer:
        inbox = Recorder()
        peer = Peer(inbox.layer(**options), inbox)
        peers.append(peer)
        return peer

    yield make
    for peer in peers:
        await peer.layer.close()


@pytest.fixture
def listening(
    make_peer: Callable[..., Peer],
) -> Callable[..., Awaitable[Peer]]:
    """``await listening(transport, host="127.0.0.1", **options)``: a peer listening there."""

    async def make(transport: str, host: str = "127.0.0.1", **options: Any) -> Peer:
        peer = make_peer(**options)
        peer.at = await peer.layer.listen(transport, host)
        return peer

    return make


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> LoopbackPki:
    """A test CA and a server certificate for 127.0.0.1, ::1 and localhost."""
    return make_loopback_pki(tmp_path_factory.mktemp("tls"))
