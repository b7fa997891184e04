"""Scoring received audio against what was sent: alignment by cross-correlation, then the
correlation coefficient and PESQ (ITU-T P.862, PyPI ``pesq``) on the aligned parts."""

from __future__ import annotations

import asyncio
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np
from pesq import pesq

from voip.rtp import CallMedia, WavRecorder, read_wav

if TYPE_CHECKING:
    from support.peers import Baresip
    from voip.call import Call

__all__ = [
    "LINPHONE_SECONDS",
    "PLAYOUT_DRIFT",
    "SECURE_PROTOS",
    "Score",
    "align",
    "assert_speech_both_ways",
    "finished_recording",
    "play_speech",
    "read_recording",
    "read_wideband",
    "score",
    "speech_both_ways",
    "talk_with_linphone",
    "until_recorded",
    "windowed_correlation",
]


def _samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64)


def align(reference: np.ndarray, degraded: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The overlapping parts of both signals once the delay between them is taken out,
    and that delay in samples (positive: ``degraded`` lags ``reference``)."""
    size = 1 << (len(reference) + len(degraded)).bit_length()
    spectrum = np.fft.rfft(degraded, size) * np.conj(np.fft.rfft(reference, size))
    correlation = np.fft.irfft(spectrum, size)
    lag = int(np.argmax(correlation))
    if lag > size // 2:
        lag -= size
    if lag >= 0:
        degraded = degraded[lag:]
    else:
        reference = reference[-lag:]
    length = min(len(reference), len(degraded))
    return reference[:length], degraded[:length], lag


@dataclass(frozen=True)
class Score:
    correlation: float
    pesq: float
    delay: float  # seconds
    seconds: float  # length of the aligned audio
    # the median over one-second windows of each window's best correlation within
    # DRIFT of the overall delay: stays high when an adaptive jitter buffer moves
    # the delay mid-call (the overall correlation then drops), low for other audio
    windowed_correlation: float


DRIFT = 0.1  # seconds
# how far the delay of what a toolkit stream *played out* may move during a recording: each
# underrun (a late packet from a peer stalled on a loaded machine) adds a packet time; seen:
# 6 in one call. What was decoded, on the sender's timeline, does not move.
PLAYOUT_DRIFT = 0.5  # seconds
#: the RTP profiles of SRTP: keyed by SDES (RFC 4568) or by DTLS (RFC 5764)
SECURE_PROTOS = ("RTP/SAVP", "UDP/TLS/RTP/SAVP", "UDP/TLS/RTP/SAVPF")


def _best_correlation(part: np.ndarray, segment: np.ndarray) -> float:
    """The highest Pearson coefficient of ``part`` with any same-length stretch of
    ``segment``, every offset tried (sums by FFT and running totals, not a loop)."""
    n = len(part)
    if len(segment) < n or not part.std():
        return 0.0
    centred = part - part.mean()
    size = 1 << (len(segment) + n).bit_length()
    dots = np.fft.irfft(np.fft.rfft(segment, size) * np.conj(np.fft.rfft(centred, size)), size)
    dots = dots[: len(segment) - n + 1]  # sum(centred * stretch) for each offset
    totals = np.concatenate(([0.0], np.cumsum(segment)))
    squares = np.concatenate(([0.0], np.cumsum(segment * segment)))
    sums = totals[n:] - totals[:-n]
    variances = (squares[n:] - squares[:-n]) - sums * sums / n
    norms = np.sqrt(np.maximum(variances, 0.0)) * float(np.sqrt((centred * centred).sum()))
    # a constant stretch (silence received for speech) correlates 0, not NaN
    valid = norms > 1e-9 * max(1.0, float(norms.max()))
    if not valid.any():
        return 0.0
    return float((dots[valid] / norms[valid]).max())


def windowed_correlation(
    ref: np.ndarray, deg: np.ndarray, rate: int, drift: float = DRIFT
) -> float:
    """See :attr:`Score.windowed_correlation`; ``ref`` and ``deg`` already aligned, each
    second of ``ref`` searched for in ``deg`` within ``drift`` seconds of its place."""
    window, reach = rate, int(drift * rate)
    best: list[float] = []
    for start in range(reach, len(ref) - window - reach + 1, window):
        part = ref[start : start + window]
        if not part.any():
            continue
        best.append(_best_correlation(part, deg[start - reach : start + window + reach]))
    return float(np.median(best)) if best else 0.0


def score(reference: bytes, degraded: bytes, rate: int = 8000, drift: float = DRIFT) -> Score:
    """``degraded`` aligned with ``reference`` and scored; ``drift`` bounds how far the
    delay may have moved during the recording for :attr:`Score.windowed_correlation`."""
    ref, deg, lag = align(_samples(reference), _samples(degraded))
    correlation = float(np.corrcoef(ref, deg)[0, 1])
    mos = float(pesq(rate, ref, deg, "nb" if rate == 8000 else "wb"))
    steady = windowed_correlation(ref, deg, rate, drift)
    return Score(correlation, mos, lag / rate, len(ref) / rate, steady)


def read_recording(path: Path) -> bytes:
    """The PCM of a WAV recording, checked to be 8 kHz mono 16-bit."""
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        return wav.readframes(wav.getnframes())


def read_wideband(path: Path, rate: int = 16000) -> bytes:
    """The PCM of a WAV file of any rate and channel count as mono at ``rate`` (16 kHz for
    wideband PESQ), resampled by PyAV (libswresample, band-limited: a 48 kHz Opus recording
    folds nothing above 8 kHz into the band scored)."""
    with wave.open(str(path), "rb") as wav:
        assert wav.getsampwidth() == 2
        channels, source_rate = wav.getnchannels(), wav.getframerate()
        pcm = wav.readframes(wav.getnframes())
    if not pcm:
        raise EOFError(f"{path}: no audio (yet)")
    if source_rate == rate and channels == 1:
        return pcm
    samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(samples, format="s16", layout=f"{channels}c")
    frame.sample_rate = source_rate
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    frames = resampler.resample(frame) + resampler.resample(None)
    return b"".join(bytes(f.planes[0])[: 2 * f.samples] for f in frames)


async def finished_recording(path: Path, rate: int = 8000) -> bytes:
    """A recording baresip writes: its WAV header comes when the call's audio closes, a
    moment after the log says the call closed. 8 kHz mono checked, or any WAV resampled
    to ``rate`` (:func:`read_wideband`)."""

    def read() -> bytes:
        return read_recording(path) if rate == 8000 else read_wideband(path, rate)

    for _ in range(50):
        try:
            return read()
        except (wave.Error, EOFError):
            await asyncio.sleep(0.1)
    return read()


async def play_speech(media: CallMedia, speech: bytes, rate: int = 8000) -> None:
    """``speech`` (16-bit PCM at ``rate``) played into a call whole: a tenth of a second of
    silence before it, half a second after it, and everything sent before this returns."""
    await media.write(bytes(rate // 10 * 2))
    await media.write(speech)
    await media.drain()
    await media.write(bytes(rate // 2 * 2))
    await media.drain()


async def until_recorded(recorder: WavRecorder, samples: float) -> None:
    """Wait until ``recorder`` holds ``samples`` samples (the caller bounds the wait)."""
    while recorder.samples < samples:
        await asyncio.sleep(0.1)


async def speech_both_ways(
    bob: Baresip,
    call: Call,
    speech_wav: Path,
    tmp_path: Path,
    *,
    seconds: float = 6.0,
    pesq_target: float = 4.0,
) -> None:
    """Once baresip has the call, the toolkit plays speech while it records what baresip
    sends; after the hangup both recordings are scored against their sources. The call
    is over SRTP (keyed by SDES or DTLS-SRTP): every packet authenticates."""
    source = read_wav(speech_wav)[: int(2 * 8000 * (seconds + 10))]
    speech = source[: int(2 * 8000 * seconds)]
    media = call.media
    assert media is not None
    assert call.agreed[0].proto in SECURE_PROTOS and media.stream.srtp is not None
    await bob.wait_established()
    # PESQ on what was decoded, on baresip's timeline (as baresip's own recording is);
    # what was played out must carry the same speech, its delay free to move under load
    media.record(tmp_path / "played.wav")
    recorder = media.record(tmp_path / "received.wav", timeline="sender")
    await play_speech(media, speech)
    await until_recorded(recorder, seconds * 8000)
    await call.hangup()
    await bob.wait_closed()
    stats = media.statistics()
    # baresip 1.0 sends one RTCP APP "PING"/"PONG" in the clear as its stream starts: it
    # fails SRTCP authentication and is dropped; what it sends before its answer reaches
    # the toolkit (a caller) cannot be authenticated yet and is dropped too (unkeyed)
    assert stats.auth_failures <= 1 and stats.unkeyed <= 5 and stats.malformed == 0
    assert stats.packets_received >= seconds * 50 * 0.9
    assert stats.rtcp_sent >= 1
    sent = score(speech, await finished_recording(bob.received_recordings()[-1]))
    assert sent.windowed_correlation > 0.95 and sent.pesq >= pesq_target, sent
    received = score(source, read_recording(tmp_path / "received.wav"))
    assert received.windowed_correlation > 0.95 and received.pesq >= pesq_target, received
    played = score(source, read_recording(tmp_path / "played.wav"), drift=PLAYOUT_DRIFT)
    assert played.windowed_correlation > 0.95, played


# --- speech with linphone (tests/interop/test_linphone_interop.py) ---------------------

LINPHONE_SECONDS = 6.0
# what the toolkit hears of linphone: measured 4.08 to 4.17 (PCMA, loopback)
LINPHONE_PESQ_TARGET = 4.0
# what linphone records of the toolkit goes through linphone's adaptive playout: 4.07 to
# 4.22 on a quiet machine, 3.55 and 3.28 on busy ones when the playout delay moved
# mid-call (each second's own alignment still correlated 0.9999,
# Score.windowed_correlation); linphone records nothing before its playout
LINPHONE_PESQ_FLOOR = 3.0
# the toolkit scores what it decoded, on linphone's timeline (``timeline="sender"``); what
# it played out must carry the same speech, its delay free to move by PLAYOUT_DRIFT


async def talk_with_linphone(call: Call, speech: bytes, recording: Path) -> None:
    """Speech into ``call`` while recording what comes back, until LINPHONE_SECONDS of it: as
    decoded, on linphone's timeline (``recording``), and as played out (:func:`_played`)."""
    media = call.media
    assert media is not None
    played = media.record(_played(recording))
    recorder = media.record(recording, timeline="sender")
    await play_speech(media, speech)
    await asyncio.wait_for(until_recorded(recorder, LINPHONE_SECONDS * 8000), 15.0)
    recorder.close()
    played.close()


def _played(recording: Path) -> Path:
    return recording.with_suffix(".played.wav")


def assert_speech_both_ways(speech_wav: Path, toolkit_heard: Path, linphone_heard: Path) -> None:
    """What the toolkit heard is linphone's file, what linphone heard is the toolkit's
    speech: LINPHONE_SECONDS of each, aligned and scored."""
    speech = read_wav(speech_wav)[: int(2 * 8000 * LINPHONE_SECONDS)]
    source = read_wav(speech_wav)[: int(2 * 8000 * (LINPHONE_SECONDS + 20))]
    heard = score(source, read_recording(toolkit_heard))
    played = score(source, read_recording(_played(toolkit_heard)), drift=PLAYOUT_DRIFT)
    sent = score(speech, read_wav(linphone_heard))  # linphone records at 48 kHz
    print(f"linphone -> toolkit {heard} (played out {played}), toolkit -> linphone {sent}")
    assert heard.seconds >= LINPHONE_SECONDS - 0.5 and sent.seconds >= LINPHONE_SECONDS - 0.5
    assert heard.correlation > 0.9 and heard.windowed_correlation > 0.95, heard
    assert played.windowed_correlation > 0.95, played
    # the overall correlation of linphone's recording falls (0.85) when its playout delay
    # moves; each second's own alignment shows the speech intact
    assert sent.windowed_correlation > 0.95, sent
    assert heard.pesq >= LINPHONE_PESQ_TARGET, heard
    assert sent.pesq >= LINPHONE_PESQ_FLOOR, sent
