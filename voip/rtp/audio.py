"""PCM audio helpers: WAV files in and out at any rate and channel count, tones, silence.

PCM in the toolkit is 16-bit signed little-endian mono at a stated sample rate. Reading a
WAV converts its sample width, channels and rate; conversion goes through ``audioop``
(``lin2lin``, ``tomono``, ``ratecv``), which costs microseconds per frame.
"""

from __future__ import annotations

import math
import struct
import warnings
import wave
from pathlib import Path

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

__all__ = ["Resampler", "WavRecorder", "read_wav", "silence", "tone"]

WIDTH = 2  # 16-bit samples


class Resampler:
    """Converts a stream of 16-bit mono PCM from one rate to another, keeping filter state
    between calls so that frame boundaries make no clicks."""

    __slots__ = ("_state", "source_rate", "target_rate")

    def __init__(self, source_rate: int, target_rate: int) -> None:
        self.source_rate = source_rate
        self.target_rate = target_rate
        self._state: tuple[int, tuple[tuple[int, int], ...]] | None = None

    def convert(self, pcm: bytes) -> bytes:
        if self.source_rate == self.target_rate:
            return pcm
        out, self._state = audioop.ratecv(
            pcm, WIDTH, 1, self.source_rate, self.target_rate, self._state
        )
        return out


def read_wav(path: str | Path, sample_rate: int = 8000) -> bytes:
    """The whole of a PCM WAV file as 16-bit mono at ``sample_rate``."""
    with wave.open(str(path), "rb") as wav:
        width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
        data = wav.readframes(wav.getnframes())
    if width == 1:
        data = audioop.bias(data, 1, -128)  # 8-bit WAV is unsigned
    if width != WIDTH:
        data = audioop.lin2lin(data, width, WIDTH)
    if channels == 2:
        data = audioop.tomono(data, WIDTH, 0.5, 0.5)
    elif channels > 2:
        frames = len(data) // (WIDTH * channels)
        samples = struct.unpack(f"<{frames * channels}h", data[: frames * channels * WIDTH])
        mixed = [
            sum(samples[i : i + channels]) // channels for i in range(0, len(samples), channels)
        ]
        data = struct.pack(f"<{frames}h", *mixed)
    if rate != sample_rate:
        data = Resampler(rate, sample_rate).convert(data)
    return data


class WavRecorder:
    """Writes 16-bit mono PCM to a WAV file as it comes."""

    __slots__ = ("_wav", "path", "sample_rate", "samples")

    def __init__(self, path: str | Path, sample_rate: int = 8000) -> None:
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.samples = 0
        self._wav: wave.Wave_write | None = wave.open(str(path), "wb")  # noqa: SIM115
        self._wav.setnchannels(1)
        self._wav.setsampwidth(WIDTH)
        self._wav.setframerate(sample_rate)

    def write(self, pcm: bytes) -> None:
        if self._wav is not None:
            self._wav.writeframesraw(pcm)
            self.samples += len(pcm) // WIDTH

    def close(self) -> None:
        if self._wav is not None:
            self._wav.close()
            self._wav = None

    def __enter__(self) -> WavRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def silence(seconds: float, sample_rate: int = 8000) -> bytes:
    return bytes(WIDTH * round(seconds * sample_rate))


def tone(
    frequencies: float | tuple[float, ...],
    seconds: float,
    sample_rate: int = 8000,
    level: float = -10.0,
) -> bytes:
    """A tone (or the sum of several, e.g. a DTMF pair) at ``level`` dBFS per component."""
    freqs = frequencies if isinstance(frequencies, tuple) else (frequencies,)
    amplitude = 32767 * 10 ** (level / 20.0)
    count = round(seconds * sample_rate)
    steps = [2 * math.pi * f / sample_rate for f in freqs]
    values = [
        max(-32768, min(32767, round(amplitude * sum(math.sin(s * n) for s in steps))))
        for n in range(count)
    ]
    return struct.pack(f"<{count}h", *values)
