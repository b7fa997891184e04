"""Which implementation of the SIP syntax core runs: mypyc-compiled or pure Python.

``setup.py`` compiles the modules of ``COMPILED`` with mypyc into extension modules
next to their sources, and records the digest of the sources it compiled; the
:class:`sdp._implementation.CompiledCore` of these modules uses them only while that
digest matches the sources and ``VOIP_PURE_PYTHON`` is unset, and loads them from
their sources otherwise. Imported by ``voip.sip`` before any of them.
"""

from __future__ import annotations

from pathlib import Path

from sdp._implementation import MYPYC, PURE_PYTHON, CompiledCore

__all__ = ["COMPILED", "CORE", "MYPYC", "PURE_PYTHON", "SELECTED"]

#: The modules compiled by mypyc when the package is built (kept in step with setup.py): the
#: syntax core and the sans-I/O transaction and dialog layers, which a UAS runs at every message
COMPILED = (
    "errors",
    "grammar",
    "uri",
    "headers",
    "fields",
    "message",
    "parser",
    "validate",
    "dialog",
    "transaction",
)
CORE = CompiledCore(__name__.rpartition(".")[0], Path(__file__).resolve().parent, COMPILED)
#: What the process runs; ``voip.sip.IMPLEMENTATION`` checks it against the modules.
SELECTED = CORE.select()
