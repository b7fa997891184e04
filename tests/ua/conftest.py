"""Two toolkit user agents on UDP loopback, ``alice`` and ``bob``, closed after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from voip.useragent import UserAgent


@pytest.fixture
async def alice() -> AsyncIterator[UserAgent]:
    ua = UserAgent("alice")
    await ua.listen("udp", "127.0.0.1", 0)
    yield ua
    await ua.close()


@pytest.fixture
async def bob() -> AsyncIterator[UserAgent]:
    ua = UserAgent("bob")
    await ua.listen("udp", "127.0.0.1", 0)
    yield ua
    await ua.close()
