"""RFC 3263 §4.3: on a timeout, a transport error or a 503, the next target is tried."""

from __future__ import annotations

import dns.asyncresolver
import pytest
from support.dns_server import DnsServer

from voip.transport.dns import Blacklist, Failure, LocateError, Target, TargetList, locate

FIRST = Target("udp", "127.0.0.1", 5060, "example.com")
SECOND = Target("udp", "127.0.0.2", 5060, "example.com")
THIRD = Target("tcp", "127.0.0.3", 5060, "example.com")
TARGETS = (FIRST, SECOND, THIRD)


class Clock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_first_target_is_tried_first() -> None:
    assert TargetList(TARGETS).current == FIRST


@pytest.mark.parametrize("failure", list(Failure))
def test_a_failure_moves_on_to_the_next_target(failure: Failure) -> None:
    attempts = TargetList(TARGETS)
    assert attempts.failed(failure) == SECOND
    assert attempts.current == SECOND


def test_when_every_target_failed_none_is_left_and_failures_say_why() -> None:
    attempts = TargetList(TARGETS)
    attempts.failed(Failure.TIMEOUT)
    attempts.failed(Failure.TRANSPORT_ERROR)
    assert attempts.failed(Failure.SERVICE_UNAVAILABLE) is None
    assert attempts.current is None
    assert attempts.failures == [
        (FIRST, Failure.TIMEOUT),
        (SECOND, Failure.TRANSPORT_ERROR),
        (THIRD, Failure.SERVICE_UNAVAILABLE),
    ]


def test_reporting_a_failure_with_no_target_left_is_an_error() -> None:
    attempts = TargetList((FIRST,))
    attempts.failed(Failure.TIMEOUT)
    with pytest.raises(LocateError, match="already failed"):
        attempts.failed(Failure.TIMEOUT)


def test_without_a_blacklist_the_next_request_starts_from_the_first_target() -> None:
    TargetList(TARGETS).failed(Failure.TIMEOUT)
    assert TargetList(TARGETS).current == FIRST


def test_a_target_that_failed_is_tried_last_by_the_next_request() -> None:
    blacklist = Blacklist(clock=Clock())
    TargetList(TARGETS, blacklist).failed(Failure.TIMEOUT)
    attempts = TargetList(TARGETS, blacklist)
    assert attempts.current == SECOND
    assert attempts.failed(Failure.TIMEOUT) == THIRD
    # Moved back, never dropped: it is still tried when the others have failed.
    assert attempts.failed(Failure.TIMEOUT) == FIRST


def test_a_blacklisted_target_is_forgiven_after_the_ttl() -> None:
    clock = Clock()
    blacklist = Blacklist(clock=clock, ttl=30.0)
    blacklist.add(FIRST)
    clock.now += 29.0
    assert FIRST in blacklist
    clock.now += 1.0
    assert FIRST not in blacklist
    assert TargetList(TARGETS, blacklist).current == FIRST


def test_retry_after_of_a_503_sets_how_long_the_target_is_avoided() -> None:
    clock = Clock()
    blacklist = Blacklist(clock=clock, ttl=30.0)
    TargetList(TARGETS, blacklist).failed(Failure.SERVICE_UNAVAILABLE, retry_after=120.0)
    clock.now += 119.0
    assert FIRST in blacklist
    clock.now += 1.0
    assert FIRST not in blacklist


async def test_failover_crosses_to_the_next_naptr_service(
    dns_server: DnsServer, resolver: dns.asyncresolver.Resolver
) -> None:
    dns_server.load(
        """
        example.com.            NAPTR 10 10 "s" "SIPS+D2T" "" _sips._tcp.example.com.
        example.com.            NAPTR 20 10 "s" "SIP+D2U"  "" _sip._udp.example.com.
        _sips._tcp.example.com. SRV 0 0 5061 example.com.
        _sip._udp.example.com.  SRV 0 0 5060 example.com.
        example.com.            A 127.0.0.1
        """
    )
    attempts = TargetList(await locate("sip:example.com", resolver=resolver))
    assert attempts.current == Target("tls", "127.0.0.1", 5061, "example.com")
    assert attempts.failed(Failure.TRANSPORT_ERROR) == FIRST
    assert attempts.failed(Failure.TIMEOUT) is None
