"""Build hook: compile the SIP syntax core (with the sans-I/O transaction and dialog
layers), SDP and the RTP media core with mypyc when a C compiler is at hand.

Everything else about the package is in pyproject.toml. The modules in
``voip.sip._implementation.COMPILED``, ``sdp._implementation.COMPILED`` and
``voip.rtp._implementation.COMPILED`` are compiled into extension modules next to their
sources (``pip install -e .`` builds them in place; ``python setup.py build_ext --inplace``
rebuilds them in a checkout); importing ``voip.sip``, ``sdp`` or ``voip.rtp`` uses them
only while they match the sources they were built from (the digest written below, one
per package), and falls back to the pure-Python modules otherwise. ``VOIP_PURE_PYTHON=1``
at build time skips the compilation, at run time skips the compiled modules.

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
# Kept in step with voip.sip._implementation.COMPILED (a test checks it).
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
# Kept in step with sdp._implementation.COMPILED (a test checks it).
SDP_COMPILED = (
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
# Kept in step with voip.rtp._implementation.COMPILED (a test checks it).
RTP_COMPILED = (
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
#: package directory -> (its compiled modules, the mypyc group that holds them)
CORES = {
    Path("voip", "sip"): (COMPILED, "voip.sip._syntax"),
    Path("sdp"): (SDP_COMPILED, "sdp._sdp"),
    Path("voip", "rtp"): (RTP_COMPILED, "voip.rtp._media"),
}
DIGEST_FILE = "_compiled.sha256"


def source_digest(root: Path, package: Path) -> str:
    """The digest a package compares with its sources before using compiled modules
    (sdp._implementation.CompiledCore)."""
    digest = hashlib.sha256()
    for name in CORES[package][0]:
        digest.update((root / package / f"{name}.py").read_bytes())
    return digest.hexdigest()


def _module(package: Path, name: str) -> str:
    return ".".join((*package.parts, name))


def ext_modules() -> list[Any]:
    if os.environ.get("VOIP_PURE_PYTHON"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError as exc:
        print(f"voip: mypyc not available ({exc}); pure-Python SIP syntax", file=sys.stderr)
        return []
    extensions = []
    for package, (names, group) in CORES.items():
        sources = [str(package / f"{name}.py") for name in names]
        try:
            built = mypycify(sources, opt_level="3", group_name=group)
        except (Exception, SystemExit) as exc:  # mypy's errors end in sys.exit
            print(f"voip: mypyc failed ({exc}); pure-Python {package}", file=sys.stderr)
            continue
        extensions.extend(built)
    for extension in extensions:
        extension.optional = True  # no compiler: warn and install pure Python
    return extensions


class BuildExt(build_ext):
    """build_ext that records the digest of a package's sources once every module of it
    (and the group library they share) is built."""

    def run(self) -> None:
        super().run()
        if not self.extensions:
            return
        root = Path(".") if self.inplace else Path(self.build_lib)
        names = {ext.name for ext in self.extensions}
        for package, (modules, group) in CORES.items():
            wanted = [_module(package, name) for name in modules]
            wanted.append(f"{group}__mypyc")
            built = all(
                name in names and Path(self.get_ext_fullpath(name)).exists() for name in wanted
            )
            target = root / package / DIGEST_FILE
            if built:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(source_digest(HERE, package) + "\n")
            else:
                print(f"voip: compiling failed; pure-Python {package}", file=sys.stderr)
                target.unlink(missing_ok=True)


setup(ext_modules=ext_modules(), cmdclass={"build_ext": BuildExt})
