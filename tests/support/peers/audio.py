"""Test audio made from text: espeak-ng speaks (at 22050 Hz), sox converts it to the rate and
channel count asked for (8 kHz mono by default), 16-bit, and makes it long enough.

Wideband speech is made at 16 kHz from espeak-ng's own output, not upsampled from 8 kHz.
Its voice matters to G.722: through G.722 at 64 kbit/s (ffmpeg's and spandsp's encoders
give the same bits) wideband PESQ of the default male voice is 3.35 and of the female
variants +f2..+f5 is 4.16 to 4.45; Opus scores 4.5 with either.
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

from ._process import require_binary

SPEECH = (
    "This is a test call from the voip session interop tests. "
    "One, two, three, four, five. The quick brown fox jumps over the lazy dog."
)


def _run(argv: list[str]) -> str:
    done = subprocess.run(
        [require_binary(argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


#: the voice of wideband test speech: espeak-ng's English with its female variant 2
WIDEBAND_VOICE = "en+f2"


def make_speech_wav(
    path: Path,
    *,
    seconds: float = 300.0,
    rate: int = 8000,
    text: str = SPEECH,
    voice: str | None = None,
) -> Path:
    """Write ``seconds`` of repeated speech to ``path`` (WAV, ``rate`` Hz, mono, 16-bit),
    spoken by espeak-ng's ``voice`` (its default if None).

    Long by default: baresip's aufile source does not loop, and at the end of the file it hangs
    up the call ("menu: audio error (0,end of file)").
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    spoken = path.with_name(path.stem + ".spoken.wav")
    _run(["espeak-ng", *(["-v", voice] if voice else []), "-w", str(spoken), text])
    once = float(_run(["soxi", "-D", str(spoken)]).strip())
    repeats = max(0, math.ceil(seconds / once) - 1)
    # gain -n -3: normalised to -3 dBFS, so that resampling does not clip
    fmt = ["-r", str(rate), "-c", "1", "-b", "16"]
    effects = ["gain", "-n", "-3", "repeat", str(repeats), "trim", "0", f"{seconds:g}"]
    _run(["sox", str(spoken), *fmt, str(path), *effects])
    spoken.unlink()
    return path


def convert_wav(source: Path, path: Path, *, rate: int, channels: int = 1) -> Path:
    """``source`` converted by sox to a 16-bit WAV of ``rate`` Hz and ``channels`` at ``path``
    (e.g. for baresip's aufile, which plays a file only at the codec's rate and channels)."""
    _run(["sox", str(source), "-r", str(rate), "-c", str(channels), "-b", "16", str(path)])
    return path
