"""Voicemail bot: a greeting and a beep, then the caller's message is recorded until they
hang up or press #; the WAV is saved with its metadata beside it (JSON: caller, time,
duration, digits pressed).

    VOICEMAIL_DIR=/var/spool/voicemail voip serve --bot samples.voicemail:handle
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from samples.tts import speak
from voip.call import CallState
from voip.rtp import tone
from voip.session import Session, SessionError
from voip.session.primitives import ExpeditedDataIndication

GREETING = "Nobody can take your call. Please leave a message after the tone."
LONGEST = 120.0  # seconds of message at most


async def handle(session: Session) -> None:
    call, media = session.call, session.call.media
    assert media is not None and call.invite is not None
    digits: list[str] = []
    done = asyncio.Event()  # the caller hung up or pressed #

    def on_digit(event: ExpeditedDataIndication) -> None:  # S-EXPEDITED-DATA indication
        digits.append(event.data)
        if event.data == "#":
            done.set()

    session.on(ExpeditedDataIndication.primitive, on_digit)
    call.on("ended", lambda reason: done.set())
    greeting = await asyncio.to_thread(speak, GREETING) + tone(1000, 0.4)
    with contextlib.suppress(SessionError):  # the caller may hang up during the greeting
        await session.send_data(greeting)
    await media.drain()  # the greeting has gone out: now the message

    started = datetime.now(UTC)
    folder = Path(os.environ.get("VOICEMAIL_DIR", "voicemail"))
    folder.mkdir(parents=True, exist_ok=True)
    wav = folder / f"{started:%Y%m%dT%H%M%S}-{call.call_id[:8]}.wav"
    # as the caller said it: each frame at its RTP timestamp, without the gaps and delay
    # changes a late packet makes in the playout
    with (
        media.record(wav, timeline="sender") as recorder,
        contextlib.suppress(TimeoutError),
    ):
        if call.state is not CallState.ENDED:  # every frame received from now on
            await asyncio.wait_for(done.wait(), LONGEST)
    metadata = {
        "caller": str(call.invite.from_.uri),
        "time": started.isoformat(),
        "duration": recorder.samples / recorder.sample_rate,
        "digits": "".join(digits),
        "wav": wav.name,
    }
    wav.with_suffix(".json").write_text(json.dumps(metadata, indent=2) + "\n")
    print(f"voicemail from {metadata['caller']}: {wav}")
