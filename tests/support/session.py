"""Helpers for tests of the session service between toolkit agents."""

from __future__ import annotations

import asyncio
import math
import struct
import warnings
import wave
from dataclasses import dataclass
from pathlib import Path

from support.ua import TIMEOUT, uri_of
from voip.call import Call
from voip.rtp.audio import WavRecorder
from voip.session import Session
from voip.useragent import UserAgent

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop


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


def tone(seconds: float) -> bytes:
    count = int(8000 * seconds)
    return struct.pack(
        f"<{count}h", *(int(6000 * math.sin(2 * math.pi * 440 * n / 8000)) for n in range(count))
    )


def longest_silence(path: Path) -> float:
    """Seconds of the longest run of silent 20 ms frames between the first and the last
    frame with sound."""
    with wave.open(str(path)) as recording:
        pcm = recording.readframes(recording.getnframes())
    loud = [audioop.rms(pcm[i : i + 320], 2) > 500 for i in range(0, len(pcm) - 319, 320)]
    first, last = loud.index(True), len(loud) - 1 - loud[::-1].index(True)
    run = longest = 0
    for frame in loud[first : last + 1]:
        run = 0 if frame else run + 1
        longest = max(longest, run)
    return longest * 0.02


@dataclass(slots=True)
class Prompt:
    """A prompt being played in the activity ``"prompt"`` past a confirmed major sync
    point, and recorded on the other side (see :func:`play_prompt`)."""

    pcm: bytes
    serial: int  # the major sync point's
    checkpoint: int  # its media position (samples)
    playing: asyncio.Future[None]
    recorder: WavRecorder
    recording: Path

    async def finished(self, caller: Session, timeout: float = 20.0) -> float:
        """Wait until the whole prompt is played and heard; the longest silence (s) of the
        recording between its first and last sound. Checks that exactly the prompt was
        written and that the sync point stayed where it was."""
        await asyncio.wait_for(self.playing, timeout)  # the rest, from the checkpoint
        assert caller.call.media is not None
        await caller.call.media.drain()
        await asyncio.sleep(0.3)
        self.recorder.close()
        assert caller._written == len(self.pcm) // 2
        assert caller.timeline[self.serial] == self.checkpoint
        return longest_silence(self.recording)


async def play_prompt(caller: Session, callee: Session, seconds: float, recording: Path) -> Prompt:
    """``callee`` records to ``recording``; ``caller`` starts the activity "prompt",
    sends its first second, puts a major sync point there (confirmed by the peer), then
    plays the whole prompt from that point on; returns 0.5 s into the play."""
    assert callee.call.media is not None
    recorder = callee.call.media.record(recording)
    pcm = tone(seconds)
    await caller.activity_start("prompt")
    await caller.send_data(pcm[:16000])  # 1 s
    major = await asyncio.wait_for(caller.sync_major(), TIMEOUT)
    checkpoint = caller.timeline[major.serial]
    playing = asyncio.ensure_future(caller.play(pcm))
    await asyncio.sleep(0.5)
    return Prompt(pcm, major.serial, checkpoint, playing, recorder, recording)
