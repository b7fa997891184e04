"""Every SIP message a toolkit user agent sends and receives, in order, for tests.

``SipTrace.attach(ua)`` hangs :mod:`voip.trace`'s tracer on the agent's transport
(``TransportLayer.add_tracer``): each message that leaves or arrives is kept as a
:class:`Traced` (``voip.trace.TraceRecord``) with its direction. Tests compare the
ladder with a call flow (``trace.ladder()`` gives lines such as ``"> INVITE"`` and
``"< 180"``) or read the messages themselves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from voip.trace import SipTrace
from voip.trace import TraceRecord as Traced
from voip.useragent import UserAgent

__all__ = ["SipTrace", "Traced", "traced_agent"]


@asynccontextmanager
async def traced_agent(user: str, **options: Any) -> AsyncIterator[tuple[UserAgent, SipTrace]]:
    """A toolkit agent for ``user`` (options of ``UserAgent``) on UDP at 127.0.0.1, traced;
    closed at the end of the block."""
    ua = UserAgent(user, **options)
    trace = SipTrace.attach(ua)
    await ua.listen("udp", "127.0.0.1", 0)
    try:
        yield ua, trace
    finally:
        await ua.close()
