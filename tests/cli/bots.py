"""Bots for ``voip serve --bot`` in the tests: each notes what it did in the JSON-lines
file named by ``VOIP_TEST_BOT_LOG``."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from voip.rtp import tone
from voip.session import Session, SessionError


def note(**entry: Any) -> None:
    with open(os.environ["VOIP_TEST_BOT_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps({"time": time.time(), **entry}) + "\n")


async def echo(session: Session) -> None:
    """Send back what is heard, until the caller hangs up (or 20 s)."""
    invite = session.call.invite
    caller = str(invite.from_.uri) if invite is not None else "?"
    note(event="start", caller=caller, call_id=session.call.call_id)
    media = session.call.media
    assert media is not None
    frames = 0
    try:
        async with asyncio.timeout(20):
            while True:
                frame = await media.read()
                frames += 1
                await session.send_data(frame)
    except (EOFError, TimeoutError, SessionError):
        pass  # the caller hung up (the media closed, or S-DATA no longer allowed)
    note(event="end", call_id=session.call.call_id, frames=frames)


async def greet(session: Session) -> None:
    """Send two seconds of a 440 Hz tone (S-DATA), then release the call (S-RELEASE)."""
    note(event="start", call_id=session.call.call_id)
    await session.send_data(tone(440, 2.0))
    confirm = await session.release()
    note(event="end", call_id=session.call.call_id, released=type(confirm).__name__)
