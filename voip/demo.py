"""The demo call: the softphone calls a built-in bot on loopback, no server needed.

The bot (:func:`demo_bot`, an ``async def bot(session)`` as ``voip serve`` runs them)
speaks a welcome prompt and a DTMF menu, waits for the caller's digit (S-EXPEDITED-DATA),
echoes the caller's voice back, waits while the caller holds and resumes the call
(S-ACTIVITY-INTERRUPT and -RESUME, by re-INVITE), says goodbye and releases the call in
order (S-RELEASE: its audio drained, then BYE). The caller (:func:`demo_caller`) acts as a
person would: it listens until a prompt ends, presses 1, speaks, holds, resumes and
waits for the bot to hang up.

Prompts are spoken by espeak-ng when it is installed; otherwise they are tone melodies
synthesized here, so the demo runs on any machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from voip.call import Call
from voip.rtp import read_wav, silence, tone
from voip.rtp.engine import CallMedia
from voip.session import Session, SessionError
from voip.session.primitives import ExpeditedDataIndication

with warnings.catch_warnings():  # audioop: the stdlib's up to 3.12 (audioop-lts after)
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

__all__ = ["DemoProgress", "Prompts", "demo_bot", "demo_caller"]

SAMPLE_RATE = 8000
#: what the bot says, and what the caller says into the echo
TEXTS = {
    "welcome": "Welcome to the voip session demo. For an echo test, press 1.",
    "echo": "Echo test. Speak after the tone.",
    "goodbye": "Thank you for calling. Goodbye.",
    "caller": "Hello, hello. One, two, three.",
}
# Loudness (RMS of 16-bit samples) that counts as sound, and the quiet that ends a prompt.
SPEECH_RMS = 300
PROMPT_END_SILENCE = 0.7
ECHO_SECONDS = 3.5


@dataclass(frozen=True, slots=True)
class Prompts:
    """16-bit mono PCM at 8 kHz for each text of :data:`TEXTS`; ``voice`` says how."""

    welcome: bytes
    echo: bytes
    goodbye: bytes
    caller: bytes
    voice: str

    @classmethod
    def make(cls) -> Prompts:
        """Spoken by espeak-ng when it is installed, else tone melodies."""
        espeak = shutil.which("espeak-ng")
        if espeak is not None:
            with contextlib.suppress(OSError, subprocess.SubprocessError, ValueError):
                return cls._spoken(espeak)
        return cls._melodies()

    @classmethod
    def _spoken(cls, espeak: str) -> Prompts:
        spoken: dict[str, bytes] = {}
        with tempfile.TemporaryDirectory(prefix="voip-demo-") as folder:
            for name, text in TEXTS.items():
                path = Path(folder, f"{name}.wav")
                voice = "en+f3" if name != "caller" else "en+m3"
                subprocess.run(
                    [espeak, "-v", voice, "-s", "150", "-w", str(path), text],
                    check=True,
                    capture_output=True,
                    timeout=30,
                )
                spoken[name] = read_wav(path, SAMPLE_RATE)
        return cls(voice="espeak-ng", **spoken)

    @classmethod
    def _melodies(cls) -> Prompts:
        def melody(*notes: float) -> bytes:
            return b"".join(tone(f, 0.25) + silence(0.05) for f in notes)

        return cls(
            welcome=melody(523, 659, 784, 1047, 784, 659, 523, 659),
            echo=melody(784, 659),
            goodbye=melody(1047, 784, 659, 523),
            caller=melody(440, 494, 523, 587, 659, 587),
            voice="tone melodies (espeak-ng not found)",
        )


@dataclass
class DemoProgress:
    """What happened, for the live status and for the summary after the call."""

    step: str = "starting"
    digit: str | None = None
    echo_rms: int = 0
    held: bool = False
    log: list[str] = field(default_factory=list)
    on_step: Callable[[str], None] | None = None

    def say(self, text: str) -> None:
        self.step = text
        self.log.append(text)
        if self.on_step is not None:
            self.on_step(text)


BEEP = tone(1000, 0.3)


async def demo_bot(session: Session, prompts: Prompts, progress: DemoProgress) -> None:
    """The IVR of the demo, one S-primitive per step."""
    call = session.call
    media = call.media
    assert media is not None
    held, resumed = asyncio.Event(), asyncio.Event()
    call.on("hold", held.set)
    call.on("resume", resumed.set)
    echoing = asyncio.Event()
    reader = asyncio.ensure_future(_echo_while_asked(session, media, echoing))
    try:
        progress.say("bot: welcome prompt and menu (S-DATA)")
        await session.send_data(prompts.welcome)
        event = await session.wait_for(ExpeditedDataIndication, timeout=20)
        progress.digit = event.data
        progress.say(f"bot: caller pressed {event.data} (S-EXPEDITED-DATA, {event.carrier})")
        await session.send_data(prompts.echo + silence(0.2) + BEEP)
        await media.drain()
        progress.say("bot: echoing the caller")
        echoing.set()
        await asyncio.sleep(ECHO_SECONDS)
        echoing.clear()
        progress.say("bot: waiting for the caller to hold and resume")
        await asyncio.wait_for(held.wait(), 20)
        await asyncio.wait_for(resumed.wait(), 20)
        progress.say("bot: goodbye prompt, then release (S-RELEASE)")
        await session.send_data(silence(0.3) + prompts.goodbye)
        await session.release()
    finally:
        reader.cancel()


async def _echo_while_asked(session: Session, media: CallMedia, echoing: asyncio.Event) -> None:
    """Read every frame as it plays out; send it back while ``echoing`` is set."""
    with contextlib.suppress(EOFError, SessionError):
        while True:
            frame = await media.read()
            if echoing.is_set():
                await session.send_data(frame)


class _Listener:
    """The caller's ear: every frame received, how loud, and when a prompt ends."""

    def __init__(self, media: CallMedia) -> None:
        self.media = media
        self.frames: list[bytes] = []
        self.loud_frames = 0
        self._quiet = 0.0
        self._heard_since = False
        self._changed = asyncio.Event()
        self.task = asyncio.ensure_future(self._listen())

    async def _listen(self) -> None:
        with contextlib.suppress(EOFError):
            while True:
                frame = await self.media.read()
                self.frames.append(frame)
                loud = audioop.rms(frame, 2) > SPEECH_RMS
                if loud:
                    self.loud_frames += 1
                    self._heard_since = True
                    self._quiet = 0.0
                else:
                    self._quiet += len(frame) / (2 * SAMPLE_RATE)
                self._changed.set()

    async def prompt_end(self, timeout: float = 20.0) -> None:
        """Wait until something was heard and then ``PROMPT_END_SILENCE`` of quiet."""

        async def wait() -> None:
            while not (self._heard_since and self._quiet >= PROMPT_END_SILENCE):
                self._changed.clear()
                await self._changed.wait()
            self._heard_since = False

        await asyncio.wait_for(wait(), timeout)

    def loudness_since(self, index: int) -> int:
        return audioop.rms(b"".join(self.frames[index:]), 2) if self.frames[index:] else 0


async def demo_caller(call: Call, prompts: Prompts, progress: DemoProgress) -> None:
    """The person at the softphone: listen, press 1, speak, hold, resume, wait for BYE."""
    media = call.media
    assert media is not None
    ear = _Listener(media)
    try:
        progress.say("caller: listening to the welcome prompt")
        await ear.prompt_end()
        progress.say("caller: pressing 1 (RFC 4733)")
        media.send_dtmf("1")
        await ear.prompt_end()
        progress.say("caller: speaking into the echo")
        mark = len(ear.frames)
        await media.write(prompts.caller)
        await media.drain()
        await asyncio.sleep(1.0)  # the last words come back
        progress.echo_rms = ear.loudness_since(mark)
        progress.say(f"caller: heard the echo (RMS {progress.echo_rms})")
        await asyncio.sleep(0.5)
        progress.say("caller: holding the call (re-INVITE sendonly)")
        await call.hold()
        progress.held = True
        await asyncio.sleep(1.5)
        progress.say("caller: resuming the call (re-INVITE sendrecv)")
        await call.resume()
        progress.held = False
        progress.say("caller: waiting for the bot to say goodbye and hang up")
        await asyncio.wait_for(call.ended(), 30)
    finally:
        ear.task.cancel()
