"""Test audio made from text: espeak-ng speaks, sox makes it 8 kHz mono 16-bit and long enough."""

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


def make_speech_wav(
    path: Path, *, seconds: float = 300.0, rate: int = 8000, text: str = SPEECH
) -> Path:
    """Write ``seconds`` of repeated speech to ``path`` (WAV, ``rate`` Hz, mono, 16-bit).

    Long by default: baresip's aufile source does not loop, and at the end of the file it hangs
    up the call ("menu: audio error (0,end of file)").
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    spoken = path.with_name(path.stem + ".spoken.wav")
    _run(["espeak-ng", "-w", str(spoken), text])
    once = float(_run(["soxi", "-D", str(spoken)]).strip())
    repeats = max(0, math.ceil(seconds / once) - 1)
    # gain -n -3: normalised to -3 dBFS, so that resampling does not clip
    fmt = ["-r", str(rate), "-c", "1", "-b", "16"]
    effects = ["gain", "-n", "-3", "repeat", str(repeats), "trim", "0", f"{seconds:g}"]
    _run(["sox", str(spoken), *fmt, str(path), *effects])
    spoken.unlink()
    return path
