"""RFC 3263 §4.2: determining port and IP address."""

from __future__ import annotations

import dns.asyncresolver
import pytest
from support.dns_server import DnsServer

from voip.transport.dns import AddressType, LocateError, Target, locate

TWO_SERVERS = """
example.com.            NAPTR 10 10 "s" "SIP+D2U" "" _sip._udp.example.com.
_sip._udp.example.com.  SRV 10 1 5060 a.example.com.
_sip._udp.example.com.  SRV 20 1 5070 b.example.com.
a.example.com.          A    127.0.0.1
a.example.com.          A    127.0.0.2
a.example.com.          AAAA ::1
b.example.com.          A    127.0.0.3
example.com.            A    127.0.0.4
example.com.            AAAA ::4
"""


async def test_each_srv_target_is_expanded_to_all_its_addresses_in_srv_order(
    dns_server: DnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    dns_server.load(TWO_SERVERS)
    targets = await locate("sip:example.com", resolver=resolver)
    # a's addresses, IPv4 before IPv6 (the RRset's own order is the server's), then b.
    assert {(t.host, t.port) for t in targets[:2]} == {("127.0.0.1", 5060), ("127.0.0.2", 5060)}
    assert [(t.host, t.port) for t in targets[2:]] == [("::1", 5060), ("127.0.0.3", 5070)]


@pytest.mark.parametrize(
    ("address_types", "expected"),
    [
        (("A", "AAAA"), ["127.0.0.4", "::4"]),
        (("AAAA", "A"), ["::4", "127.0.0.4"]),
        (("A",), ["127.0.0.4"]),
        (("AAAA",), ["::4"]),
    ],
)
async def test_address_types_choose_and_order_the_families(
    dns_server: DnsServer,
    resolver: dns.asyncresolver.Resolver,
    address_types: tuple[AddressType, ...],
    expected: list[str],
) -> None:
    dns_server.load(TWO_SERVERS)
    targets = await locate("sip:example.com:5080", resolver=resolver, address_types=address_types)
    assert [t.host for t in targets] == expected


@pytest.mark.parametrize(
    ("uri", "transport"), [("sip:example.com:5080", "udp"), ("sips:example.com:5080", "tls")]
)
async def test_explicit_port_skips_naptr_and_srv(
    dns_server: DnsServer, resolver: dns.asyncresolver.Resolver, uri: str, transport: str
) -> None:
    dns_server.load(TWO_SERVERS)
    targets = await locate(uri, resolver=resolver)
    assert {(t.transport, t.host, t.port) for t in targets} == {
        (transport, "127.0.0.4", 5080),
        (transport, "::4", 5080),
    }
    assert {query.rdtype for query in dns_server.queries} == {"A", "AAAA"}


async def test_maddr_replaces_the_host_as_the_name_looked_up(
    dns_server: DnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    dns_server.load(TWO_SERVERS)
    targets = await locate("sip:alice@elsewhere.example;maddr=example.com", resolver=resolver)
    assert [t.host for t in targets][-1] == "127.0.0.3"
    assert {t.server_name for t in targets} == {"example.com"}
    assert not dns_server.asked("elsewhere.example")


async def test_numeric_maddr_is_used_without_any_lookup(
    dns_server: DnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    dns_server.load(TWO_SERVERS)
    targets = await locate("sip:alice@example.com:5090;maddr=127.0.0.9", resolver=resolver)
    assert targets == [Target("udp", "127.0.0.9", 5090, "127.0.0.9")]
    assert dns_server.queries == []


async def test_server_name_is_the_uri_domain_not_the_srv_target(
    dns_server: DnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    # RFC 5922 §4: the certificate is matched with the domain the URI names.
    dns_server.load(
        """
        _sips._tcp.example.com. SRV 0 0 5061 tls.provider.example.
        tls.provider.example.   A 127.0.0.1
        """
    )
    assert await locate("sips:alice@example.com", resolver=resolver) == [
        Target("tls", "127.0.0.1", 5061, "example.com")
    ]


async def test_srv_target_behind_a_cname_is_followed(
    dns_server: DnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    dns_server.load(
        """
        _sip._udp.example.com. SRV 0 0 5060 alias.example.com.
        alias.example.com.     CNAME real.example.com.
        real.example.com.      A 127.0.0.1
        """
    )
    targets = await locate("sip:example.com;transport=udp", resolver=resolver)
    assert [t.host for t in targets] == ["127.0.0.1"]


async def test_a_target_reached_twice_is_tried_once_where_it_first_comes(
    dns_server: DnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    dns_server.load(
        """
        _sip._udp.example.com. SRV 10 0 5060 one.example.com.
        _sip._udp.example.com. SRV 20 0 5060 two.example.com.
        _sip._udp.example.com. SRV 30 0 5060 also-one.example.com.
        one.example.com.       A 127.0.0.1
        also-one.example.com.  A 127.0.0.1
        two.example.com.       A 127.0.0.2
        """
    )
    targets = await locate("sip:example.com;transport=udp", resolver=resolver)
    assert [t.host for t in targets] == ["127.0.0.1", "127.0.0.2"]


async def test_maddr_that_is_not_a_host_is_refused(
    dns_server: DnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    with pytest.raises(LocateError, match="maddr"):
        await locate("sip:alice@example.com;maddr=example.com:5080", resolver=resolver)
    assert dns_server.queries == []
