"""Which transports a user agent's requests may use (RFC 3263 §4.1 "supported"): those it
listens on by default; those named by ``transports``, TCP and TLS without a listener, over
a connection of its own."""

from __future__ import annotations

import pytest

from voip.sip import parse_uri
from voip.transport.dns import LocateError
from voip.useragent import UserAgent


async def test_an_agent_that_listens_on_nothing_sends_over_udp() -> None:
    async with UserAgent("alice") as ua:
        (target,) = await ua.resolve(parse_uri("sip:bob@127.0.0.1:5060"))
        assert target.transport == "udp"


async def test_a_uri_naming_a_transport_the_agent_lacks_cannot_be_reached() -> None:
    async with UserAgent("alice") as ua:
        await ua.listen("udp", "127.0.0.1", 0)
        with pytest.raises(LocateError, match="transport=tls is not supported"):
            await ua.resolve(parse_uri("sip:bob@127.0.0.1:5061;transport=tls"))


async def test_a_uri_naming_tls_is_reached_over_tls_when_listed_without_a_tls_listener() -> None:
    async with UserAgent("alice", transports=("udp", "tls")) as ua:
        await ua.listen("udp", "127.0.0.1", 0)
        (target,) = await ua.resolve(parse_uri("sip:bob@127.0.0.1:5061;transport=tls"))
        assert (target.transport, target.port) == ("tls", 5061)
        (target,) = await ua.resolve(parse_uri("sips:bob@127.0.0.1"))
        assert (target.transport, target.port) == ("tls", 5061)


@pytest.mark.parametrize("transport", ["tcp", "tls"])
async def test_the_agents_transports_decide_for_a_uri_that_names_none(transport: str) -> None:
    async with UserAgent("alice", transports=(transport,)) as ua:
        await ua.listen("udp", "127.0.0.1", 0)  # listening on UDP does not add it
        (target,) = await ua.resolve(parse_uri("sip:bob@127.0.0.1:5080"))
        assert (target.transport, target.port) == (transport, 5080)


def test_an_unknown_transport_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown transport 'sctp'"):
        UserAgent("alice", transports=("sctp",))


async def test_a_client_only_tcp_agents_via_and_contact_are_its_connections_address() -> None:
    async with UserAgent("server") as server, UserAgent("alice", transports=("tcp",)) as ua:
        listening = await server.listen("tcp", "127.0.0.1", 0)
        (target,) = await ua.resolve(parse_uri(f"sip:bob@127.0.0.1:{listening.port}"))
        via, contact = ua.via_for(target), ua.contact_for(target)
        (connection,) = ua.transport.connections
        assert via == f"SIP/2.0/TCP 127.0.0.1:{connection.local.port};rport"
        assert str(contact) == f"<sip:alice@127.0.0.1:{connection.local.port};transport=tcp>"
