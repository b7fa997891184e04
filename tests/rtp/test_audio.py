"""WAV in and out at any rate and channel count; tones and silence."""

from __future__ import annotations

import struct
import warnings
import wave
from pathlib import Path

from voip.rtp import WavRecorder, read_wav, silence, tone

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop


def _write(path: Path, pcm: bytes, rate: int, channels: int, width: int = 2) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(pcm)


def test_stereo_48k_wav_read_as_8k_mono(tmp_path: Path) -> None:
    mono = tone(440.0, 1.0, sample_rate=48000)
    stereo = audioop.tostereo(mono, 2, 1, 1)
    _write(tmp_path / "s.wav", stereo, 48000, 2)
    pcm = read_wav(tmp_path / "s.wav", 8000)
    assert abs(len(pcm) - 16000) <= 4  # one second at 8 kHz, 16-bit
    assert audioop.cross(pcm, 2) in range(870, 890)  # 440 Hz: 880 zero crossings a second


def test_8_bit_unsigned_wav_becomes_16_bit_signed(tmp_path: Path) -> None:
    pcm8 = bytes(128 + (40 if n % 2 else -40) for n in range(800))
    _write(tmp_path / "u8.wav", pcm8, 8000, 1, width=1)
    pcm = read_wav(tmp_path / "u8.wav")
    values = struct.unpack("<800h", pcm)
    assert values[0] == -40 * 256 and values[1] == 40 * 256


def test_recorder_writes_a_wav_that_reads_back(tmp_path: Path) -> None:
    sound = tone((697.0, 1209.0), 0.5)
    with WavRecorder(tmp_path / "r.wav", 8000) as recorder:
        for i in range(0, len(sound), 320):
            recorder.write(sound[i : i + 320])
    assert read_wav(tmp_path / "r.wav") == sound


def test_tone_level_and_silence_length() -> None:
    assert silence(0.02) == bytes(320)
    level = 20 * __import__("math").log10(audioop.rms(tone(1000.0, 1.0, level=-10.0), 2) / 32767)
    assert abs(level - (-10 - 3.01)) < 0.1  # a sine's RMS is 3 dB below its peak
