"""Build hook: compile the SIP syntax core with mypyc when a C compiler is at hand.

Everything else about the package is in pyproject.toml. The modules in
``voip.sip.COMPILED`` are compiled into extension modules next to their sources
(``pip install -e .`` builds them in place); importing ``voip.sip`` uses them only
while they match the sources they were built from (the digest written below), and
falls back to the pure-Python modules otherwise. ``VOIP_PURE_PYTHON=1`` at build time
skips the compilation, at run time skips the compiled modules.

A failed compilation (no compiler, no Python headers, no mypy) leaves a working
pure-Python install: the extensions are optional.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
# Kept in step with voip.sip.COMPILED (a test checks it).
COMPILED = ("errors", "grammar", "uri", "headers", "fields", "message", "parser")
PACKAGE = Path("voip", "sip")
DIGEST_FILE = "_compiled.sha256"


def source_digest(root: Path) -> str:
    """The digest voip.sip compares with its sources before using compiled modules."""
    digest = hashlib.sha256()
    for name in COMPILED:
        digest.update((root / PACKAGE / f"{name}.py").read_bytes())
    return digest.hexdigest()


def ext_modules() -> list[Any]:
    if os.environ.get("VOIP_PURE_PYTHON"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError as exc:
        print(f"voip: mypyc not available ({exc}); pure-Python SIP syntax", file=sys.stderr)
        return []
    sources = [str(PACKAGE / f"{name}.py") for name in COMPILED]
    try:
        extensions = mypycify(sources, opt_level="3", group_name="voip.sip._syntax")
    except Exception as exc:  # a mypyc that cannot compile these sources
        print(f"voip: mypyc failed ({exc}); pure-Python SIP syntax", file=sys.stderr)
        return []
    for extension in extensions:
        extension.optional = True  # no compiler: warn and install pure Python
    return extensions


class BuildExt(build_ext):
    """build_ext that records the digest of the sources once every module is built."""

    def run(self) -> None:
        super().run()
        if not self.extensions:
            return
        built = all(Path(self.get_ext_fullpath(ext.name)).exists() for ext in self.extensions)
        root = Path(".") if self.inplace else Path(self.build_lib)
        target = root / PACKAGE / DIGEST_FILE
        if built:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(source_digest(HERE) + "\n")
        else:
            print("voip: compiling failed; pure-Python SIP syntax", file=sys.stderr)
            target.unlink(missing_ok=True)


setup(ext_modules=ext_modules(), cmdclass={"build_ext": BuildExt})
