"""Which implementation of the RTP media core runs: mypyc-compiled or pure Python.

The modules every packet goes through (building a packet, reading one, the receiver's
sequence and jitter accounting, the jitter buffer, concealment history, the media clock's
rounds, the socket poller's reads and the stream that drives them all,
:mod:`voip.rtp.stream`) are compiled by ``setup.py`` with mypyc like the SIP syntax core
and SDP; the :class:`sdp._implementation.CompiledCore` of these modules uses them only
while the digest ``setup.py`` recorded matches the sources and ``VOIP_PURE_PYTHON`` is
unset, and loads them from their sources otherwise. Imported by ``voip.rtp`` before any of them.
"""

from __future__ import annotations

from pathlib import Path

from sdp._implementation import MYPYC, PURE_PYTHON, CompiledCore

__all__ = ["COMPILED", "CORE", "MYPYC", "PURE_PYTHON", "SELECTED"]

#: The modules compiled by mypyc when the package is built (kept in step with setup.py).
COMPILED = (
    "packet",
    "sender",
    "source",
    "plc",
    "jitterbuffer",
    "clock",
    "poller",
    "stats",
    "g711",
    "stream",
)
CORE = CompiledCore(__name__.rpartition(".")[0], Path(__file__).resolve().parent, COMPILED)
#: What the process runs; ``voip.rtp.IMPLEMENTATION`` checks it against the modules.
SELECTED = CORE.select()
