"""Text-to-speech bot: espeak-ng says a text into a WAV, the bot plays it, then hangs up.

    TTS_TEXT="Your parcel arrives today." voip serve --bot samples.tts:handle

``speak`` is used by the other samples for their prompts.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
from pathlib import Path

from voip.rtp import read_wav
from voip.session import Session

TEXT = "Hello. This is the voip session toolkit, speaking through espeak."


def speak(text: str, voice: str = "en") -> bytes:
    """``text`` spoken by espeak-ng: 16-bit mono PCM at 8 kHz (the WAV is converted)."""
    with tempfile.TemporaryDirectory(prefix="voip-tts-") as folder:
        wav = Path(folder, "speech.wav")
        command = ["espeak-ng", "-v", voice, "-s", "150", "-w", str(wav), text]
        subprocess.run(command, check=True, capture_output=True, timeout=30)
        return read_wav(wav)


async def handle(session: Session) -> None:
    speech = await asyncio.to_thread(speak, os.environ.get("TTS_TEXT", TEXT))
    await session.activity_start("tts")  # S-ACTIVITY-START: play() is an activity's audio
    await session.play(speech)  # S-DATA, paced by the media clock
    await session.activity_end()
    # returning releases the call (S-RELEASE): the queued audio goes out, then BYE
