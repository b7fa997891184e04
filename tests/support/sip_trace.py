"""Every SIP message a toolkit user agent sends and receives, in order, for tests.

``SipTrace.attach(ua)`` (before ``ua.listen``) wraps the agent's transport: each message
that leaves (``transport.send``) or arrives (the transport's delivery to the agent) is
kept as a :class:`Traced` with its direction. Tests then compare the ladder with a call
flow (``trace.ladder()`` gives lines such as ``"> INVITE"`` and ``"< 180"``) or read the
messages themselves.

The wrapping is test instrumentation only: it reaches into the transport layer's
delivery callback, which the agent hands it at construction.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from voip.sip import Message, Request, Response, parse_message
from voip.transport import Endpoint
from voip.useragent import UserAgent


@dataclass(frozen=True, slots=True)
class Traced:
    """One message: ``"out"`` or ``"in"``, the message, and the far end's address."""

    direction: str
    message: Request | Response
    peer: Endpoint

    @property
    def sent(self) -> bool:
        return self.direction == "out"

    @property
    def label(self) -> str:
        """``"INVITE"`` for a request, ``"180"`` for a response."""
        message = self.message
        return message.method if isinstance(message, Request) else str(message.status)

    @property
    def cseq_method(self) -> str:
        return self.message.cseq.method

    def __str__(self) -> str:
        arrow = ">" if self.sent else "<"
        return f"{arrow} {self.label}"


@dataclass(eq=False)
class SipTrace:
    """The messages of one agent, in the order its transport saw them."""

    messages: list[Traced] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def attach(cls, ua: UserAgent) -> SipTrace:
        """Trace ``ua``; call before its first ``listen``."""
        trace = cls()
        transport = ua.transport
        send: Callable[..., None] = transport.send
        deliver: Callable[..., None] = transport._on_message

        def traced_send(message: Message | bytes, destination: Endpoint, **options: Any) -> None:
            parsed = parse_message(message) if isinstance(message, bytes) else message
            if isinstance(parsed, Request | Response):
                trace._add(Traced("out", parsed, destination))
            send(message, destination, **options)

        def traced_deliver(message: Request | Response, source: Endpoint, local: Endpoint) -> None:
            trace._add(Traced("in", message, source))
            deliver(message, source, local)

        transport.send = traced_send  # type: ignore[method-assign]
        transport._on_message = traced_deliver
        return trace

    def _add(self, traced: Traced) -> None:
        self.messages.append(traced)
        self._changed.set()

    def __iter__(self) -> Iterator[Traced]:
        return iter(self.messages)

    def ladder(self, *, retransmissions: bool = False) -> list[str]:
        """``"> INVITE"``, ``"< 100"`` …, retransmissions (the same message again in the
        same direction) left out unless asked for."""
        lines: list[str] = []
        seen: set[tuple[str, bytes]] = set()
        for traced in self.messages:
            key = (traced.direction, bytes(traced.message))
            if key in seen and not retransmissions:
                continue
            seen.add(key)
            lines.append(str(traced))
        return lines

    def of(self, call_id: str) -> SipTrace:
        """The messages of one Call-ID."""
        return SipTrace([t for t in self.messages if t.message.call_id == call_id])

    def find(self, label: str, direction: str | None = None) -> list[Traced]:
        return [
            t
            for t in self.messages
            if t.label == label and (direction is None or t.direction == direction)
        ]

    async def wait_for(
        self, label: str, direction: str | None = None, timeout: float = 10.0
    ) -> Traced:
        """The first message with ``label`` (and direction), waiting for it if need be."""

        async def first() -> Traced:
            while True:
                found = self.find(label, direction)
                if found:
                    return found[0]
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(first(), timeout)


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
