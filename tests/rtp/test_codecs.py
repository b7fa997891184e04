"""G.711 through audioop and RFC 3389 comfort noise."""

from __future__ import annotations

import math
import struct
import warnings

import pytest

from sdp import Codec
from voip.rtp import ComfortNoise, Pcma, Pcmu, UnsupportedCodec, codec_for

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop


def _tone(samples: int = 160, amplitude: int = 8000) -> bytes:
    values = [int(amplitude * math.sin(2 * math.pi * 440 * n / 8000)) for n in range(samples)]
    return struct.pack(f"<{samples}h", *values)


@pytest.mark.parametrize("codec", [Pcmu(), Pcma()])
def test_g711_one_octet_per_sample_and_close_round_trip(codec: Pcmu | Pcma) -> None:
    pcm = _tone()
    payload = codec.encode(pcm)
    assert len(payload) == 160
    decoded = codec.decode(payload)
    error = audioop.rms(audioop.add(pcm, audioop.mul(decoded, 2, -1), 2), 2)
    assert error < audioop.rms(pcm, 2) / 50  # G.711 is ~38 dB SNR on a loud tone


def test_pcmu_silence_is_0xff_and_pcma_silence_0xd5() -> None:
    silence = bytes(320)
    assert Pcmu().encode(silence) == b"\xff" * 160
    assert Pcma().encode(silence) == b"\xd5" * 160


def test_codec_for_negotiated_formats() -> None:
    assert isinstance(codec_for(Codec("pcmu", 8000, payload_type=0)), Pcmu)
    assert isinstance(codec_for(Codec("PCMA", 8000, payload_type=8)), Pcma)
    with pytest.raises(UnsupportedCodec):
        codec_for(Codec("GSM", 8000, payload_type=3))


def test_comfort_noise_level_follows_the_payload_rfc3389() -> None:
    cn = ComfortNoise()
    loud = audioop.rms(cn.noise(bytes([30]), 8000), 2)
    quiet = audioop.rms(cn.noise(bytes([70]), 8000), 2)
    assert len(cn.noise(bytes([30]), 160)) == 320
    # 40 dB apart: a factor of 100 in amplitude
    assert 60 < loud / max(quiet, 1) < 160
    assert abs(20 * math.log10(loud / 32767) + 30) < 3
