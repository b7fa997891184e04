"""Audio codecs for RTP payloads, PCM in and out as 16-bit signed little-endian mono.

G.711 (PCMU and PCMA, RFC 3551 §4.5.14) goes through ``audioop`` (the standard library up to
3.12, the ``audioop-lts`` package from 3.13): about 1.6 µs to encode a 20 ms frame, where
aiortc's PyAV-based G.711 costs 50 µs or more (PERF-FACTS.md). Comfort noise (RFC 3389) is
decoded into noise at the level it announces.
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Protocol

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

from sdp import Codec

__all__ = [
    "CN_PAYLOAD_TYPE",
    "AudioCodec",
    "ComfortNoise",
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


class Pcmu:
    """G.711 μ-law, static payload type 0."""

    name: str = "PCMU"
    sample_rate: int = 8000
    clock_rate: int = 8000
    payload_type: int = 0

    def encode(self, pcm: bytes) -> bytes:
        return audioop.lin2ulaw(pcm, 2)

    def decode(self, payload: bytes) -> bytes:
        return audioop.ulaw2lin(payload, 2)


class Pcma:
    """G.711 A-law, static payload type 8."""

    name: str = "PCMA"
    sample_rate: int = 8000
    clock_rate: int = 8000
    payload_type: int = 8

    def encode(self, pcm: bytes) -> bytes:
        return audioop.lin2alaw(pcm, 2)

    def decode(self, payload: bytes) -> bytes:
        return audioop.alaw2lin(payload, 2)


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


_CODECS: dict[str, type[Pcmu] | type[Pcma]] = {"PCMU": Pcmu, "PCMA": Pcma}


def codec_for(codec: Codec) -> AudioCodec:
    """The toolkit's codec for a negotiated format; raises :class:`UnsupportedCodec`."""
    kind = _CODECS.get(codec.name.upper())
    if kind is None or codec.clock_rate != kind.clock_rate or codec.channels != 1:
        raise UnsupportedCodec(f"no codec for {codec.name}/{codec.clock_rate}/{codec.channels}")
    return kind()
