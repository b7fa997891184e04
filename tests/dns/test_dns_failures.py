"""Lookups that time out or fail move on to the next step; nothing left is one error."""

from __future__ import annotations

import dns.asyncresolver
import pytest
from support.dns_server import DnsServer

from voip.transport.dns import LocateError, Target, locate

# Short, so that a silent server costs the test little; answers on loopback take far less.
LIFETIME = 0.3
MISBEHAVIOURS = ["time_out", "servfail"]
NOWHERE = [
    "nowhere.example",
    "_sips._tcp.nowhere.example",
    "_sip._tcp.nowhere.example",
    "_sip._udp.nowhere.example",
]

ZONE = """
example.com.            NAPTR 10 10 "s" "SIP+D2T" "" _sip._tcp.example.com.
_sip._tcp.example.com.  SRV 0 0 5060 tcp.example.com.
_sip._udp.example.com.  SRV 10 0 5060 udp1.example.com.
_sip._udp.example.com.  SRV 20 0 5060 udp2.example.com.
tcp.example.com.        A 127.0.0.1
udp1.example.com.       A 127.0.0.2
udp2.example.com.       A 127.0.0.3
example.com.            A 127.0.0.4
"""
TCP = Target("tcp", "127.0.0.1", 5060, "example.com")
UDP1 = Target("udp", "127.0.0.2", 5060, "example.com")
UDP2 = Target("udp", "127.0.0.3", 5060, "example.com")


@pytest.fixture
def impatient(dns_server: DnsServer) -> dns.asyncresolver.Resolver:
    """A resolver that gives up soon, asking a server that holds ZONE."""
    dns_server.load(ZONE)
    return dns_server.resolver(lifetime=LIFETIME)


@pytest.mark.parametrize("misbehaviour", MISBEHAVIOURS)
async def test_failed_naptr_lookup_falls_through_to_srv(
    dns_server: DnsServer, impatient: dns.asyncresolver.Resolver, misbehaviour: str
) -> None:
    getattr(dns_server, misbehaviour)("example.com", "NAPTR")
    assert await locate("sip:example.com", resolver=impatient) == [TCP, UDP1, UDP2]


@pytest.mark.parametrize("misbehaviour", MISBEHAVIOURS)
async def test_failed_srv_lookup_leaves_the_other_transports(
    dns_server: DnsServer, impatient: dns.asyncresolver.Resolver, misbehaviour: str
) -> None:
    # The only NAPTR service leads nowhere, so the SRV queries without NAPTR follow.
    getattr(dns_server, misbehaviour)("_sip._tcp.example.com")
    assert await locate("sip:example.com", resolver=impatient) == [UDP1, UDP2]


@pytest.mark.parametrize("misbehaviour", MISBEHAVIOURS)
async def test_failed_srv_lookup_for_a_given_transport_falls_back_to_the_domain_address(
    dns_server: DnsServer, impatient: dns.asyncresolver.Resolver, misbehaviour: str
) -> None:
    getattr(dns_server, misbehaviour)("_sip._udp.example.com")
    assert await locate("sip:example.com;transport=udp", resolver=impatient) == [
        Target("udp", "127.0.0.4", 5060, "example.com")
    ]


@pytest.mark.parametrize("misbehaviour", MISBEHAVIOURS)
async def test_failed_address_lookup_of_one_srv_target_leaves_the_next(
    dns_server: DnsServer, impatient: dns.asyncresolver.Resolver, misbehaviour: str
) -> None:
    getattr(dns_server, misbehaviour)("udp1.example.com")
    assert await locate("sip:example.com;transport=udp", resolver=impatient) == [UDP2]


@pytest.mark.parametrize(
    ("misbehaviour", "outcome"),
    [(None, "no such name"), ("time_out", "timed out"), ("servfail", "server failure")],
)
async def test_nothing_found_is_one_error_naming_the_host_and_each_lookup(
    dns_server: DnsServer,
    impatient: dns.asyncresolver.Resolver,
    misbehaviour: str | None,
    outcome: str,
) -> None:
    if misbehaviour is not None:
        for name in NOWHERE:
            getattr(dns_server, misbehaviour)(name)
    with pytest.raises(LocateError, match=r"^no SIP server found for sip:nowhere\.example: ") as e:
        await locate("sip:nowhere.example", resolver=impatient)
    assert e.value.tried == (
        f"NAPTR nowhere.example: {outcome}",
        f"SRV _sips._tcp.nowhere.example: {outcome}",
        f"SRV _sip._tcp.nowhere.example: {outcome}",
        f"SRV _sip._udp.nowhere.example: {outcome}",
        f"A nowhere.example: {outcome}",
        f"AAAA nowhere.example: {outcome}",
    )
    assert "; ".join(e.value.tried) in str(e.value)
