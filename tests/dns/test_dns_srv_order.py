"""RFC 2782 ordering of SRV records, which RFC 3263 §4.2 and §4.3 follow."""

from __future__ import annotations

import itertools
import random
from collections import Counter

import dns.asyncresolver
import pytest
from support.dns_server import DnsServer, Query

from voip.transport.dns import LocateError, Srv, locate, order_srv

DRAWS = 6000
# Four standard deviations of a frequency over DRAWS draws is below 0.026.
TOLERANCE = 0.03
# Two servers sharing the load 90:10 and a backup of a higher priority value.
WEIGHTED = """
_sip._udp.example.com. SRV 10 90  5060 heavy.example.com.
_sip._udp.example.com. SRV 10 10  5060 light.example.com.
_sip._udp.example.com. SRV 20 100 5070 backup.example.com.
heavy.example.com.     A 127.0.0.1
light.example.com.     A 127.0.0.2
backup.example.com.    A 127.0.0.3
"""


def srv(priority: int, weight: int, target: str) -> Srv:
    return Srv(priority, weight, 5060, target)


def first_choices(records: list[Srv]) -> Counter[str]:
    rng = random.Random(2782)
    return Counter(order_srv(records, rng)[0].target for _ in range(DRAWS))


def test_lower_priority_always_comes_first() -> None:
    records = [srv(20, 100, "c"), srv(10, 1, "a"), srv(30, 50, "d"), srv(10, 1, "b")]
    for seed in range(200):
        ordered = order_srv(records, random.Random(seed))
        assert [record.priority for record in ordered] == [10, 10, 20, 30]


def test_each_choice_is_drawn_with_probability_weight_over_weight_left() -> None:
    records = [srv(0, 60, "a"), srv(0, 30, "b"), srv(0, 10, "c")]
    weights = {record.target: record.weight for record in records}
    rng = random.Random(3263)
    orders = Counter(
        tuple(record.target for record in order_srv(records, rng)) for _ in range(DRAWS)
    )
    for order in itertools.permutations(weights):
        # First with probability w1/100, then second with w2/(100 - w1).
        expected = weights[order[0]] / 100 * weights[order[1]] / (100 - weights[order[0]])
        assert abs(orders[order] / DRAWS - expected) < TOLERANCE, order


def test_weight_zero_is_rarely_first_but_never_dropped() -> None:
    records = [srv(0, 0, "zero"), srv(0, 100, "heavy")]
    firsts = first_choices(records)
    # "Very small chance of being selected": here one in 101.
    assert 0 < firsts["zero"] < DRAWS * TOLERANCE
    assert sorted(record.target for record in order_srv(records)) == ["heavy", "zero"]


def test_records_all_of_weight_zero_share_the_first_place() -> None:
    records = [srv(0, 0, name) for name in "abcd"]
    firsts = first_choices(records)
    for name in "abcd":
        assert abs(firsts[name] / DRAWS - 1 / 4) < TOLERANCE, name


def test_one_random_state_gives_one_order_whatever_order_the_records_came_in() -> None:
    records = [srv(10, 90, "heavy"), srv(10, 10, "light"), srv(10, 0, "zero"), srv(20, 5, "b")]
    for seed in range(50):
        orders = {
            tuple(r.target for r in order_srv(list(permutation), random.Random(seed)))
            for permutation in itertools.permutations(records)
        }
        assert len(orders) == 1, (seed, orders)


async def test_srv_priority_puts_the_backup_last_whatever_its_weight(
    dns_server: DnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    dns_server.load(WEIGHTED)
    targets = await locate("sip:example.com;transport=udp", resolver=resolver)
    assert {t.host for t in targets[:2]} == {"127.0.0.1", "127.0.0.2"}
    assert (targets[2].host, targets[2].port) == ("127.0.0.3", 5070)


async def test_srv_weight_steers_which_target_comes_first(
    dns_server: DnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    dns_server.load(WEIGHTED)
    rng = random.Random(5060)
    draws = 600
    heavy_first = 0
    for _ in range(draws):
        targets = await locate("sip:example.com;transport=udp", resolver=resolver, rng=rng)
        heavy_first += targets[0].host == "127.0.0.1"
    # 0.9 expected; 0.06 is about five standard deviations over 600 draws (and the draws
    # no longer depend on the order the server lists the records in).
    assert abs(heavy_first / draws - 0.9) < 0.06


async def test_srv_target_dot_means_the_service_is_not_available(
    dns_server: DnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    dns_server.load(
        """
        _sips._tcp.example.com. SRV 0 0 0 .
        _sip._udp.example.com.  SRV 0 0 5060 sip.example.com.
        sip.example.com.        A 127.0.0.1
        """
    )
    targets = await locate("sip:example.com", resolver=resolver)
    assert [(t.transport, t.host) for t in targets] == [("udp", "127.0.0.1")]


async def test_srv_target_dot_stops_the_fallback_to_the_domain_address(
    dns_server: DnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    dns_server.load(
        """
        _sips._tcp.example.com. SRV 0 0 0 .
        example.com.            A 127.0.0.1
        """
    )
    with pytest.raises(LocateError, match=r"_sips\._tcp\.example\.com: service not available"):
        await locate("sips:example.com", resolver=resolver)
    assert Query("example.com", "A") not in dns_server.queries
