"""G.711 through audioop, RFC 3389 comfort noise, and G.722 against spandsp's."""

from __future__ import annotations

import ctypes
import ctypes.util
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


def _spandsp() -> ctypes.CDLL:
    """spandsp's G.722 (ITU-T reference behaviour), the codec baresip's g722 module uses."""
    name = ctypes.util.find_library("spandsp")
    assert name is not None, "libspandsp (a dependency of baresip) is not installed"
    lib = ctypes.CDLL(name)
    for function in ("g722_encode_init", "g722_decode_init"):
        getattr(lib, function).restype = ctypes.c_void_p
        getattr(lib, function).argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    for function in ("g722_encode", "g722_decode"):
        getattr(lib, function).argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
    return lib


def _sweep(seconds: float, rate: int = 16000) -> bytes:
    """A loud sweep from 100 Hz to 7.5 kHz: both G.722 sub-bands at work."""
    count = round(seconds * rate)
    phase, values = 0.0, []
    for n in range(count):
        phase += 2 * math.pi * (100 + 7400 * n / count) / rate
        values.append(int(12000 * math.sin(phase)))
    return struct.pack(f"<{count}h", *values)


def test_g722_at_16_khz_is_bit_exact_with_spandsp_both_ways_rfc3551_4_5_2() -> None:
    # the toolkit's G.722 path (aiortc's codec, PyAV/ffmpeg underneath) loses nothing of its
    # own: at a 16 kHz user rate its payloads and decoded PCM are spandsp's, bit for bit.
    # Its first payload is one frame of silence (the encoder is primed with it).
    spandsp = _spandsp()
    pcm = _sweep(1.0)
    codec = codec_for(Codec("G722", 8000, payload_type=9), 16000)
    frame = 2 * 320
    sent = b"".join(codec.encode(pcm[i : i + frame]) for i in range(0, len(pcm), frame))
    primed = bytes(frame) + pcm
    reference = ctypes.create_string_buffer(len(primed) // 4)
    encoder = spandsp.g722_encode_init(None, 64000, 0)
    octets = spandsp.g722_encode(encoder, reference, primed, len(primed) // 2)
    assert len(sent) == len(pcm) // 4
    assert sent == reference.raw[: len(sent)] and octets > len(sent)
    decoded = b"".join(codec.decode(sent[i : i + 160]) for i in range(0, len(sent), 160))
    expected = ctypes.create_string_buffer(4 * len(sent))
    decoder = spandsp.g722_decode_init(None, 64000, 0)
    samples = spandsp.g722_decode(decoder, expected, sent, len(sent))
    assert decoded == expected.raw[: 2 * samples] and samples == 2 * len(sent)
