"""Packet loss concealment for 16-bit mono PCM frames, after ITU-T G.711 Appendix I (sans-I/O).

A lost frame is replaced by the last pitch period of the audio before it, repeated
(waveform substitution, App. I §I.2): the period is found by matching the last 5 ms of
history against the 5 to 15 ms before it (``audioop.findfit``, normalized
cross-correlation in C). The substitute is not attenuated for the first 10 ms, then loses
20 % per 10 ms (§I.2.4), and after ``max_frames`` lost frames in a row the output is
silence. The first good frame after a loss is cross-faded from the substitute (§I.2.6) so
that no step is heard.
"""

from __future__ import annotations

import warnings
from array import array
from typing import Final

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

__all__ = ["Concealer"]

WIDTH: Final = 2


class Concealer:
    """Keeps the recent history of played frames and makes up the missing ones."""

    __slots__ = (
        "_history_bytes",
        "_kept",
        "_lost",
        "_offset",
        "_period",
        "_recent",
        "max_frames",
        "sample_rate",
    )

    def __init__(self, sample_rate: int = 8000, *, max_frames: int = 3) -> None:
        self.sample_rate = sample_rate
        self.max_frames = max_frames
        # the last frames of output, at least 48.75 ms of them (App. I: 390 samples at
        # 8 kHz), joined only when a frame is lost
        self._history_bytes = WIDTH * (sample_rate * 39 // 800)
        self._recent: list[bytes] = []  # a few frames: a list is cheapest from compiled code
        self._kept = 0  # bytes in _recent
        self._lost = 0  # frames concealed in a row
        self._period = b""  # one pitch period of the audio before the loss
        self._offset = 0  # where in the period the substitute goes on

    @property
    def _history(self) -> bytes:
        """The last 48.75 ms of output (or what there is of it)."""
        return b"".join(self._recent)[-self._history_bytes :]

    def good(self, frame: bytes) -> bytes:
        """A frame that arrived: returned as is, or cross-faded after a loss."""
        if self._lost and self._period:
            fade = min(len(frame) // WIDTH, self.sample_rate // 200)  # 5 ms
            synthetic = self._substitute(fade, 1.0)
            frame = _crossfade(synthetic, frame, fade)
        self._lost = 0
        # _remember, inline: this runs for every frame played
        recent = self._recent
        recent.append(frame)
        self._kept += len(frame)
        if self._kept - len(recent[0]) >= self._history_bytes:
            self._forget()
        return frame

    def missing(self, samples: int) -> bytes | None:
        """A frame of ``samples`` made up for a lost packet; None once ``max_frames`` were
        concealed in a row or there is nothing to go on (the caller plays silence)."""
        if self._lost >= self.max_frames or self._kept < self._history_bytes:
            self._lost += 1
            return None
        if self._lost == 0:
            self._period = self._pitch_period()
            self._offset = 0
        self._lost += 1
        rate = self.sample_rate
        elapsed = (self._lost - 1) * samples  # samples concealed before this frame
        out = []
        chunk = rate // 200  # 5 ms steps of gain
        done = 0
        while done < samples:
            n = min(chunk, samples - done)
            t = (elapsed + done) / rate
            gain = 1.0 if t < 0.01 else max(0.0, 1.0 - 0.2 * (t - 0.01) / 0.01)
            out.append(self._substitute(n, gain))
            done += n
        frame = b"".join(out)
        self._remember(frame)
        return frame

    def _substitute(self, samples: int, gain: float) -> bytes:
        period = self._period
        size = len(period)
        out = bytearray()
        need = WIDTH * samples
        while len(out) < need:
            take = min(size - self._offset, need - len(out))
            out += period[self._offset : self._offset + take]
            self._offset = (self._offset + take) % size
        return audioop.mul(bytes(out), WIDTH, gain) if gain != 1.0 else bytes(out)

    def _pitch_period(self) -> bytes:
        """The last pitch period of the history (5 to 15 ms, App. I §I.2.2)."""
        history = self._history
        rate = self.sample_rate
        short, longest = rate // 200, rate * 15 // 1000  # 5 ms and 15 ms in samples
        n = len(history) // WIDTH
        reference = history[WIDTH * (n - short) :]
        fragment = history[WIDTH * (n - short - longest) : WIDTH * (n - short)]
        if audioop.rms(reference, WIDTH) == 0:
            return history[WIDTH * (n - short) :]
        # offset o in fragment: a lag of longest - o samples, from 'longest' down to 'short'
        offset, _ = audioop.findfit(fragment, reference)
        lag = max(short, longest - offset)
        return history[WIDTH * (n - lag) :]

    def _remember(self, frame: bytes) -> None:
        self._recent.append(frame)
        self._kept += len(frame)
        self._forget()

    def _forget(self) -> None:
        """Keep the fewest frames that still hold the history."""
        recent = self._recent
        while self._kept - len(recent[0]) >= self._history_bytes:
            self._kept -= len(recent.pop(0))


def _crossfade(old: bytes, new: bytes, samples: int) -> bytes:
    """The first ``samples`` of ``new`` faded in over ``old``, the rest of ``new`` as is."""
    a = array("h", old[: WIDTH * samples])
    b = array("h", new[: WIDTH * samples])
    mixed = array(
        "h",
        (
            max(-32768, min(32767, round(x + (y - x) * (i + 1) / (samples + 1))))
            for i, (x, y) in enumerate(zip(a, b, strict=True))
        ),
    )
    return mixed.tobytes() + new[WIDTH * samples :]
