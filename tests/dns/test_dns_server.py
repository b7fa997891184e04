"""The loopback DNS server the tests use answers as an authoritative server does."""

from __future__ import annotations

import dns.asyncresolver
import dns.resolver
import pytest
from support.dns_server import DnsServer, Query


async def test_records_given_as_a_mapping_are_served_like_zone_text(
    dns_server: DnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    dns_server.load({"sip.example.com": ["A 127.0.0.1", "AAAA ::1"]})
    answer = await resolver.resolve("sip.example.com", "AAAA")
    assert [record.to_text() for record in answer] == ["::1"]


async def test_an_answer_too_long_for_udp_is_truncated_and_asked_again_over_tcp(
    dns_server: DnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    dns_server.load({"many.example.com": [f"A 127.0.{i // 250}.{i % 250}" for i in range(200)]})
    answer = await resolver.resolve("many.example.com", "A")
    assert len(answer) == 200
    assert [query.transport for query in dns_server.queries] == ["udp", "tcp"]


@pytest.mark.parametrize(
    ("name", "error"),
    [("unknown.example.com", dns.resolver.NXDOMAIN), ("sip.example.com", dns.resolver.NoAnswer)],
)
async def test_a_missing_name_is_nxdomain_and_a_missing_type_is_no_answer(
    dns_server: DnsServer,
    resolver: dns.asyncresolver.Resolver,
    name: str,
    error: type[Exception],
) -> None:
    dns_server.load({"sip.example.com": ["A 127.0.0.1"]})
    with pytest.raises(error):
        await resolver.resolve(name, "SRV")


async def test_a_name_made_to_time_out_does_so_for_the_given_type_only(
    dns_server: DnsServer,
) -> None:
    dns_server.load({"sip.example.com": ["A 127.0.0.1", "AAAA ::1"]})
    dns_server.time_out("sip.example.com", "AAAA")
    resolver = dns_server.resolver(lifetime=0.3)
    assert len(await resolver.resolve("sip.example.com", "A")) == 1
    with pytest.raises(dns.resolver.LifetimeTimeout):
        await resolver.resolve("sip.example.com", "AAAA")
    assert Query("sip.example.com", "AAAA") in dns_server.queries
