"""RFC 3263 §4.1: selecting a transport protocol."""

from __future__ import annotations

import dns.asyncresolver
import pytest
from support.dns_server import DnsServer, Query

from voip.transport.dns import LocateError, Target, Transport, locate

# The example of RFC 3263 §4.1: TLS, TCP and UDP, in that order of preference.
RFC_3263_EXAMPLE = """
example.com.             NAPTR 50  50 "s" "SIPS+D2T" "" _sips._tcp.example.com.
example.com.             NAPTR 90  50 "s" "SIP+D2T"  "" _sip._tcp.example.com.
example.com.             NAPTR 100 50 "s" "SIP+D2U"  "" _sip._udp.example.com.
_sips._tcp.example.com.  SRV 0 1 5061 tls.example.com.
_sip._tcp.example.com.   SRV 0 1 5060 tcp.example.com.
_sip._udp.example.com.   SRV 0 1 5060 udp.example.com.
tls.example.com.         A 127.0.0.1
tcp.example.com.         A 127.0.0.2
udp.example.com.         A 127.0.0.3
"""
TLS = Target("tls", "127.0.0.1", 5061, "example.com")
TCP = Target("tcp", "127.0.0.2", 5060, "example.com")
UDP = Target("udp", "127.0.0.3", 5060, "example.com")
# The same servers without NAPTR records: only the SRV records tell the transports.
SRV_ONLY = "\n".join(line for line in RFC_3263_EXAMPLE.splitlines() if "NAPTR" not in line)
ADDRESS_ONLY = "example.com. A 127.0.0.4"


async def test_naptr_records_are_followed_by_order(
    dns_server: DnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    dns_server.load(RFC_3263_EXAMPLE)
    assert await locate("sip:alice@example.com", resolver=resolver) == [TLS, TCP, UDP]
    assert dns_server.queries[0] == Query("example.com", "NAPTR")


async def test_naptr_preference_orders_records_of_equal_order(
    dns_server: DnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    dns_server.load(SRV_ONLY)
    dns_server.load(
        """
        example.com. NAPTR 10 90 "s" "SIP+D2T" "" _sip._tcp.example.com.
        example.com. NAPTR 10 20 "s" "SIP+D2U" "" _sip._udp.example.com.
        """
    )
    assert await locate("sip:example.com", resolver=resolver) == [UDP, TCP]


@pytest.mark.parametrize(
    ("uri", "supported", "expected"),
    [
        pytest.param("sips:example.com", ("tls",), [TLS], id="sips-discards-services-without-sips"),
        pytest.param("sip:example.com", ("udp", "tls"), [TLS, UDP], id="sip-retains-sips-with-tls"),
        # "Since the client supports TCP and UDP, TCP will be used".
        pytest.param("sip:example.com", ("tcp", "udp"), [TCP, UDP], id="no-tls-so-tcp-first"),
    ],
)
async def test_naptr_services_are_filtered_to_the_transports_of_the_client(
    dns_server: DnsServer,
    resolver: dns.asyncresolver.Resolver,
    uri: str,
    supported: tuple[Transport, ...],
    expected: list[Target],
) -> None:
    dns_server.load(RFC_3263_EXAMPLE)
    assert await locate(uri, resolver=resolver, supported=supported) == expected
    # The SRV records of discarded services are never asked for.
    assert dns_server.asked("_sips._tcp.example.com") == ("tls" in supported)


@pytest.mark.parametrize(
    "naptr",
    [
        '"s" "SIP+D2S" "" _sip._sctp.example.com.',  # SCTP: not a transport we have
        '"s" "SIPS+D2W" "" _sips._ws.example.com.',  # WebSocket (RFC 7118): likewise
        '"u" "SIP+D2U" "!^.*$!sip:udp.example.com!" .',  # not an SRV pointer
        '"s" "E2U+sip" "" _sip._udp.example.com.',  # ENUM, not RFC 3263
    ],
)
async def test_naptr_records_the_client_cannot_use_are_discarded(
    dns_server: DnsServer, resolver: dns.asyncresolver.Resolver, naptr: str
) -> None:
    dns_server.load(ADDRESS_ONLY)
    dns_server.load({"example.com": [f"NAPTR 10 10 {naptr}"]})
    # Nothing usable in NAPTR: on to SRV (none here) and then the domain's address.
    assert await locate("sip:example.com", resolver=resolver) == [
        Target("udp", "127.0.0.4", 5060, "example.com")
    ]


async def test_without_naptr_srv_is_asked_for_each_supported_transport(
    dns_server: DnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    dns_server.load(SRV_ONLY)
    assert await locate("sip:example.com", resolver=resolver) == [TLS, TCP, UDP]
    asked = {query.name for query in dns_server.queries if query.rdtype == "SRV"}
    assert asked == {"_sips._tcp.example.com", "_sip._tcp.example.com", "_sip._udp.example.com"}


async def test_without_naptr_srv_results_follow_the_clients_preference(
    dns_server: DnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    dns_server.load(SRV_ONLY)
    targets = await locate("sip:example.com", resolver=resolver, supported=("udp", "tcp"))
    assert targets == [UDP, TCP]


async def test_sips_uri_without_naptr_asks_only_for_sips_srv(
    dns_server: DnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    dns_server.load(SRV_ONLY)
    assert await locate("sips:example.com", resolver=resolver) == [TLS]
    assert not dns_server.asked("_sip._udp.example.com")
    assert not dns_server.asked("_sip._tcp.example.com")


@pytest.mark.parametrize(
    ("uri", "supported", "expected"),
    [
        pytest.param("sip:example.com", ("udp",), ("udp", 5060), id="sip-udp-5060"),
        pytest.param("sips:example.com", ("tls",), ("tls", 5061), id="sips-tls-5061"),
        pytest.param("sip:example.com", ("tcp",), ("tcp", 5060), id="no-udp-so-tcp"),
        pytest.param("sip:example.com;transport=TCP", ("udp", "tcp"), ("tcp", 5060), id="param"),
    ],
)
async def test_without_srv_the_domain_address_is_used_at_the_default_port(
    dns_server: DnsServer,
    resolver: dns.asyncresolver.Resolver,
    uri: str,
    supported: tuple[Transport, ...],
    expected: tuple[Transport, int],
) -> None:
    dns_server.load(ADDRESS_ONLY)
    transport, port = expected
    assert await locate(uri, resolver=resolver, supported=supported) == [
        Target(transport, "127.0.0.4", port, "example.com")
    ]


async def test_transport_parameter_skips_naptr_and_asks_srv_for_that_transport(
    dns_server: DnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    dns_server.load(RFC_3263_EXAMPLE)
    assert await locate("sip:example.com;transport=tcp", resolver=resolver) == [TCP]
    assert not dns_server.asked("example.com")
    assert [q for q in dns_server.queries if q.rdtype == "SRV"] == [
        Query("_sip._tcp.example.com", "SRV")
    ]


@pytest.mark.parametrize("uri", ["sip:example.com;transport=tls", "sips:example.com;transport=tcp"])
async def test_tls_asked_by_the_uri_uses_sips_srv(
    dns_server: DnsServer, resolver: dns.asyncresolver.Resolver, uri: str
) -> None:
    # §4.2: "_sips" for a SIPS URI, and for a SIP URI when the client uses TLS; a SIPS
    # URI with transport=tcp is TLS over TCP.
    dns_server.load(RFC_3263_EXAMPLE)
    assert await locate(uri, resolver=resolver) == [TLS]


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("sips:example.com;transport=udp", "TLS needs TCP"),
        ("sip:example.com;transport=sctp", "transport=sctp is not supported"),
        ("sip:127.0.0.1;transport=tls", "transport=tls is not supported"),
        ("sips:example.com", "none of tls, wss is supported"),
    ],
)
async def test_a_transport_the_client_cannot_use_is_refused_before_any_lookup(
    dns_server: DnsServer, resolver: dns.asyncresolver.Resolver, uri: str, why: str
) -> None:
    dns_server.load(RFC_3263_EXAMPLE)
    with pytest.raises(LocateError, match=why):
        await locate(uri, resolver=resolver, supported=("udp", "tcp"))
    assert dns_server.queries == []


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sip:127.0.0.7", Target("udp", "127.0.0.7", 5060, "127.0.0.7")),
        ("sip:alice@127.0.0.7:5070", Target("udp", "127.0.0.7", 5070, "127.0.0.7")),
        ("sips:127.0.0.7", Target("tls", "127.0.0.7", 5061, "127.0.0.7")),
        ("sip:127.0.0.7;transport=tcp", Target("tcp", "127.0.0.7", 5060, "127.0.0.7")),
        ("sip:[::1]", Target("udp", "::1", 5060, "::1")),
        ("sips:[0:0::1]:5081", Target("tls", "::1", 5081, "::1")),
    ],
)
async def test_numeric_host_is_used_without_any_lookup(
    dns_server: DnsServer, resolver: dns.asyncresolver.Resolver, uri: str, expected: Target
) -> None:
    dns_server.load(RFC_3263_EXAMPLE)
    assert await locate(uri, resolver=resolver) == [expected]
    assert dns_server.queries == []


async def test_tel_uri_cannot_be_located(resolver: dns.asyncresolver.Resolver) -> None:
    with pytest.raises(LocateError, match="only sip: and sips:"):
        await locate("tel:+15551234567", resolver=resolver)
