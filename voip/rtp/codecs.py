"""Audio codecs for RTP payloads, PCM in and out as 16-bit signed little-endian mono.

G.711 (PCMU and PCMA) is :mod:`voip.rtp.g711`, through ``audioop``. Comfort noise (RFC
3389) is decoded into noise at the level it announces.

G.722 (RFC 3551 §4.5.2: 16 kHz audio, RTP clock 8000) and Opus (RFC 7587: opus/48000/2)
go through aiortc's codec classes (``aiortc.codecs.get_encoder``/``get_decoder``, PyAV
underneath). They take and give PCM at the stream's own rate: PyAV's resampler converts
to and from the codec's rate (16 kHz, 48 kHz stereo), so the user's rate is independent
of the codec.
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Protocol

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

import fractions
from collections import deque

import av
from aiortc.codecs import get_decoder, get_encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from sdp import Codec
from voip.rtp.g711 import Pcma, Pcmu

__all__ = [
    "CN_PAYLOAD_TYPE",
    "G722",
    "PCMA",
    "PCMU",
    "AudioCodec",
    "ComfortNoise",
    "Opus",
    "Pcma",
    "Pcmu",
    "UnsupportedCodec",
    "codec_for",
]

CN_PAYLOAD_TYPE = 13  # RFC 3551 static payload type of CN


class UnsupportedCodec(ValueError):
    """No audio codec of the toolkit handles this format."""


class AudioCodec(Protocol):
    """Encoder and decoder of one payload format.

    ``sample_rate`` is the PCM rate of its frames, ``clock_rate`` the RTP timestamp rate
    (they differ for G.722, RFC 3551 §4.5.2).
    """

    name: str
    sample_rate: int
    clock_rate: int

    def encode(self, pcm: bytes) -> bytes: ...

    def decode(self, payload: bytes) -> bytes: ...


class ComfortNoise:
    """RFC 3389 comfort noise, received: white noise at the announced level."""

    __slots__ = ("sample_rate",)

    def __init__(self, sample_rate: int = 8000) -> None:
        self.sample_rate = sample_rate

    def noise(self, payload: bytes, samples: int) -> bytes:
        """``samples`` of noise at the level the CN payload gives (RFC 3389 §3: -dBov)."""
        level = payload[0] & 0x7F if payload else 127
        # 0 dBov is a full-scale square wave: amplitude 32767; random bytes span ±32768
        gain = 10 ** (-level / 20.0) * math.sqrt(3)
        return audioop.mul(os.urandom(2 * samples), 2, min(gain, 1.0))


class _AiortcCodec:
    """A codec of aiortc at ``sample_rate`` (the stream's PCM rate), one payload per frame."""

    name: str = ""
    clock_rate: int = 8000
    channels: int = 1
    mime_type: str = ""

    def __init__(self, sample_rate: int = 8000) -> None:
        self.sample_rate = sample_rate
        parameters = RTCRtpCodecParameters(
            mimeType=self.mime_type, clockRate=self.clock_rate, channels=self.channels
        )
        self._encoder = get_encoder(parameters)
        self._decoder = get_decoder(parameters)
        self._to_user = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
        self._pts = 0
        self._time_base = fractions.Fraction(1, sample_rate)
        self._payloads: deque[bytes] = deque()
        # the resamplers hold back a few samples: one frame of silence first keeps one
        # payload out per frame in from then on
        self._encode(bytes(2 * (sample_rate // 50)))

    def _encode(self, pcm: bytes) -> None:
        samples = len(pcm) // 2
        frame = av.AudioFrame(format="s16", layout="mono", samples=samples)
        frame.planes[0].update(pcm)
        frame.sample_rate = self.sample_rate
        frame.pts = self._pts
        frame.time_base = self._time_base
        self._pts += samples
        payloads, _ = self._encoder.encode(frame)
        self._payloads.extend(payloads)

    def encode(self, pcm: bytes) -> bytes:
        self._encode(pcm)
        return self._payloads.popleft() if self._payloads else b""

    def decode(self, payload: bytes) -> bytes:
        out = []
        for frame in self._decoder.decode(JitterFrame(payload, 0)):
            for converted in self._to_user.resample(frame):  # type: ignore[arg-type]
                out.append(bytes(converted.planes[0])[: 2 * converted.samples])
        return b"".join(out)


class G722(_AiortcCodec):
    """G.722 at 64 kbit/s, static payload type 9: 16 kHz audio, an RTP clock of 8000
    (RFC 3551 §4.5.2)."""

    name = "G722"
    clock_rate = 8000
    mime_type = "audio/G722"


class Opus(_AiortcCodec):
    """Opus (RFC 7587): opus/48000/2 in SDP whatever is really sent, 20 ms frames."""

    name = "opus"
    clock_rate = 48000
    channels = 2
    mime_type = "audio/opus"


#: The G.711 codecs hold no state (audioop does the work): one instance of each serves
#: every stream.
PCMU = Pcmu()
PCMA = Pcma()

_G711: dict[str, AudioCodec] = {"PCMU": PCMU, "PCMA": PCMA}
_AIORTC: dict[str, type[G722] | type[Opus]] = {"G722": G722, "OPUS": Opus}


def codec_for(codec: Codec, sample_rate: int = 8000) -> AudioCodec:
    """The toolkit's codec for a negotiated format, for PCM at ``sample_rate`` where the
    codec converts itself (G.722, Opus); raises :class:`UnsupportedCodec`."""
    name = codec.name.upper()
    g711 = _G711.get(name)
    if g711 is not None and codec.clock_rate == g711.clock_rate and codec.channels == 1:
        return g711
    kind = _AIORTC.get(name)
    if kind is not None and codec.clock_rate == kind.clock_rate and codec.channels == kind.channels:
        return kind(sample_rate)
    raise UnsupportedCodec(f"no codec for {codec.name}/{codec.clock_rate}/{codec.channels}")
