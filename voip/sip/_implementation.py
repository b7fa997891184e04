"""Which implementation of the SIP syntax core runs: mypyc-compiled or pure Python.

``setup.py`` compiles the modules of ``COMPILED`` with mypyc into extension modules
next to their sources, and records the digest of the sources it compiled. Python's
import system prefers an extension module to a source file of the same name; this
module lets it do so only while the digest matches the sources (an edited, pulled or
rebased checkout must not run stale compiled code) and while ``VOIP_PURE_PYTHON`` is
unset. Otherwise it installs a finder that loads these modules from their sources.
Imported by ``voip.sip`` before any of them.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Sequence
from importlib.machinery import SOURCE_SUFFIXES, FileFinder, ModuleSpec, SourceFileLoader
from pathlib import Path
from types import ModuleType

#: The modules compiled by mypyc when the package is built (kept in step with setup.py).
COMPILED = ("errors", "grammar", "uri", "headers", "fields", "message", "parser")
PURE_PYTHON = "pure Python"
MYPYC = "mypyc"

_HERE = Path(__file__).resolve().parent
_PACKAGE = __name__.rpartition(".")[0]
_DIGEST_FILE = "_compiled.sha256"


def source_digest() -> str:
    digest = hashlib.sha256()
    for name in COMPILED:
        digest.update((_HERE / f"{name}.py").read_bytes())
    return digest.hexdigest()


def compiled_is_current() -> bool:
    """Whether compiled modules were built from the sources as they are now."""
    try:
        recorded = (_HERE / _DIGEST_FILE).read_text().strip()
    except OSError:
        return False
    return recorded == source_digest()


class _SourceFinder:
    """Finds the compiled modules' sources, ahead of their extension modules."""

    _names = frozenset(f"{_PACKAGE}.{name}" for name in COMPILED)
    _finder = FileFinder(str(_HERE), (SourceFileLoader, SOURCE_SUFFIXES))

    @classmethod
    def find_spec(
        cls, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in cls._names:
            return None
        return cls._finder.find_spec(fullname, target)


def _select() -> str:
    if not os.environ.get("VOIP_PURE_PYTHON") and compiled_is_current():
        return MYPYC
    if _SourceFinder not in sys.meta_path:
        sys.meta_path.insert(0, _SourceFinder)
    return PURE_PYTHON


#: What the process runs; ``voip.sip.IMPLEMENTATION`` checks it against the modules.
SELECTED = _select()
