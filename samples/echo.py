"""Echo bot: every 20 ms frame the caller sends comes straight back.

voip serve --bot samples.echo:handle --listen 127.0.0.1:5062
"""

from __future__ import annotations

from voip.session import Session


async def handle(session: Session) -> None:
    assert session.call.media is not None
    async for frame in session.call.media.stream:  # what the caller says, as it plays out
        await session.send_data(frame)  # S-DATA: back to the caller
    # the stream ends when the caller hangs up (S-RELEASE indication)
