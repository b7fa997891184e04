"""Which implementation of a compiled core runs: mypyc-compiled or pure Python.

``setup.py`` compiles the modules of a core (this package's, and the SIP syntax core of
``voip.sip``) with mypyc into extension modules next to their sources, and records the
digest of the sources it compiled in the package's ``_compiled.sha256``. Python's import
system prefers an extension module to a source file of the same name; a
:class:`CompiledCore` lets it do so only while the digest matches the sources (an edited,
pulled or rebased checkout must not run stale compiled code) and while
``VOIP_PURE_PYTHON`` is unset. Otherwise it installs a finder that loads the core's
modules from their sources. The mechanism lives here, in the lowest package, so that
both cores share it; ``sdp`` imports this module before any of its own.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Sequence
from importlib.machinery import SOURCE_SUFFIXES, FileFinder, ModuleSpec, SourceFileLoader
from pathlib import Path
from types import ModuleType

__all__ = ["COMPILED", "CORE", "MYPYC", "PURE_PYTHON", "SELECTED", "CompiledCore"]

PURE_PYTHON = "pure Python"
MYPYC = "mypyc"
DIGEST_FILE = "_compiled.sha256"


class CompiledCore:
    """The modules ``names`` of ``package`` (whose directory is ``directory``) that
    ``setup.py`` compiles; an instance is the import finder of their sources too."""

    def __init__(self, package: str, directory: Path, names: tuple[str, ...]) -> None:
        self.package = package
        self.directory = directory
        self.names = names
        self._fullnames = frozenset(f"{package}.{name}" for name in names)
        self._finder = FileFinder(str(directory), (SourceFileLoader, SOURCE_SUFFIXES))

    def source_digest(self) -> str:
        digest = hashlib.sha256()
        for name in self.names:
            digest.update((self.directory / f"{name}.py").read_bytes())
        return digest.hexdigest()

    def compiled_is_current(self) -> bool:
        """Whether compiled modules were built from the sources as they are now."""
        try:
            recorded = (self.directory / DIGEST_FILE).read_text().strip()
        except OSError:
            return False
        return recorded == self.source_digest()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        """The source of a compiled module, ahead of its extension module."""
        if fullname not in self._fullnames:
            return None
        return self._finder.find_spec(fullname, target)

    def running(self) -> str:
        """What the imported modules are: compiled, pure Python (or a mix, never by design)."""
        modules = [sys.modules[name] for name in sorted(self._fullnames)]
        compiled = [not (module.__file__ or "").endswith(".py") for module in modules]
        if all(compiled):
            return MYPYC
        if not any(compiled):
            return PURE_PYTHON
        return "mixed"  # the import tests would catch it

    def select(self) -> str:
        """Decide, before any of the modules is imported, which implementation runs."""
        if not os.environ.get("VOIP_PURE_PYTHON") and self.compiled_is_current():
            return MYPYC
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)
        return PURE_PYTHON


#: sdp's modules compiled by mypyc when the package is built (kept in step with setup.py)
COMPILED = (
    "errors",
    "_value",
    "_layout",
    "payload_types",
    "attributes",
    "crypto",
    "dtls",
    "fields",
    "formats",
    "capabilities",
    "media",
    "session",
    "parser",
    "offer_answer",
)
CORE = CompiledCore(__name__.rpartition(".")[0], Path(__file__).resolve().parent, COMPILED)
#: What the process runs; ``sdp.IMPLEMENTATION`` checks it against the modules.
SELECTED = CORE.select()
