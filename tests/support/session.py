"""Helpers for tests of the session service between toolkit agents."""

from __future__ import annotations

import asyncio

from support.ua import TIMEOUT, uri_of
from voip.call import Call
from voip.session import Session
from voip.useragent import UserAgent


def sessions_for(ua: UserAgent) -> asyncio.Queue[Session]:
    """Accept every incoming call as a session (S-CONNECT response, positive)."""
    queue: asyncio.Queue[Session] = asyncio.Queue()

    async def on_call(call: Call) -> None:
        session = Session.incoming(call)
        await session.accept()
        queue.put_nowait(session)

    ua.on("incoming_call", on_call)
    return queue


async def connect(
    alice: UserAgent, bob: UserAgent, *, half_duplex: bool = False
) -> tuple[Session, Session]:
    """A session from ``alice`` to ``bob``: (initiator's, responder's)."""
    queue = sessions_for(bob)
    caller = await asyncio.wait_for(
        Session.connect(alice, uri_of(bob), half_duplex=half_duplex), TIMEOUT
    )
    callee = await asyncio.wait_for(queue.get(), TIMEOUT)
    return caller, callee
