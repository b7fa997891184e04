"""Fixtures for RFC 3263 tests: a DNS server on loopback and a resolver that asks it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import dns.asyncresolver
import pytest
from support.dns_server import DnsServer


@pytest.fixture
async def dns_server() -> AsyncIterator[DnsServer]:
    """An empty authoritative server on 127.0.0.1; tests ``load`` their records."""
    async with DnsServer() as server:
        yield server


@pytest.fixture
def resolver(dns_server: DnsServer) -> dns.asyncresolver.Resolver:
    """A stub resolver that asks ``dns_server`` only."""
    return dns_server.resolver()
