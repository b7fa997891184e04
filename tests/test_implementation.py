"""The compiled cores (voip.sip's syntax core, sdp, voip.rtp's media core) run compiled
(mypyc) or as pure Python.

``setup.py`` compiles the modules of each core's ``COMPILED``; the compiled modules are
used only while they match their sources (the digest ``setup.py`` records), and never
with ``VOIP_PURE_PYTHON`` set (``sdp._implementation.CompiledCore``).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

import sdp
import voip.rtp
import voip.sip
from sdp import _implementation as sdp_implementation
from voip.rtp import _implementation as rtp_implementation
from voip.sip import _implementation as sip_implementation

ROOT = Path(__file__).resolve().parents[1]
#: package, its loader, the name of its list in setup.py, a module of it to import
CORES = [
    pytest.param(voip.sip, sip_implementation, "COMPILED", "fields", id="voip.sip"),
    pytest.param(sdp, sdp_implementation, "SDP_COMPILED", "media", id="sdp"),
    pytest.param(voip.rtp, rtp_implementation, "RTP_COMPILED", "source", id="voip.rtp"),
]


def run_python(code: str, cwd: Path, **env: str) -> str:
    """``code`` run by a fresh interpreter in ``cwd``: its output."""
    inherited = {k: v for k, v in os.environ.items() if k != "VOIP_PURE_PYTHON"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={**inherited, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


@pytest.mark.parametrize(("package", "implementation", "listed", "module"), CORES)
def test_a_core_is_compiled_exactly_when_the_build_matches_its_sources(
    package: ModuleType, implementation: ModuleType, listed: str, module: str
) -> None:
    core = implementation.CORE
    if core.compiled_is_current() and not os.environ.get("VOIP_PURE_PYTHON"):
        assert package.IMPLEMENTATION == implementation.MYPYC
    else:
        assert package.IMPLEMENTATION == implementation.PURE_PYTHON
    for name in implementation.COMPILED:
        loaded = sys.modules[f"{package.__name__}.{name}"]
        assert (loaded.__file__ or "").endswith(".py") == (
            package.IMPLEMENTATION == implementation.PURE_PYTHON
        ), name


@pytest.mark.parametrize(("package", "implementation", "listed", "module"), CORES)
def test_setup_compiles_the_modules_a_core_selects(
    package: ModuleType, implementation: ModuleType, listed: str, module: str
) -> None:
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    compiled = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == listed for t in node.targets)
    )
    assert tuple(compiled) == implementation.COMPILED


def test_the_build_has_every_runtime_dependency() -> None:
    # mypyc type-checks the media core against aiortc, pyee, pylibsrtp …: in pip's
    # isolated build they are there only if the build requires them
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    required = project["build-system"]["requires"]
    assert [d for d in project["project"]["dependencies"] if d not in required] == []


def test_every_sdp_module_but_the_loader_is_compiled() -> None:
    modules = {path.stem for path in (ROOT / "sdp").glob("*.py")}
    # the loader decides for the others, so it stays Python
    assert modules - set(sdp_implementation.COMPILED) == {"__init__", "_implementation"}


@pytest.mark.parametrize(("package", "implementation", "listed", "module"), CORES)
def test_pure_python_is_selected_by_the_environment(
    package: ModuleType, implementation: ModuleType, listed: str, module: str
) -> None:
    name = package.__name__
    code = f"import {name}, {name}.{module} as m; print({name}.IMPLEMENTATION, m.__file__)"
    out = run_python(code, ROOT, VOIP_PURE_PYTHON="1")
    assert out.startswith(implementation.PURE_PYTHON + " ")
    assert out.endswith(f"{module}.py")


@pytest.mark.parametrize(("package", "implementation", "listed", "module"), CORES)
def test_compiled_modules_older_than_their_sources_are_not_used(
    tmp_path: Path, package: ModuleType, implementation: ModuleType, listed: str, module: str
) -> None:
    # A copy of the packages with whatever was built, the digest recorded afresh
    # (voip.sip's loader is sdp's, so both go).
    for top in ("voip", "sdp"):
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(ROOT / top, tmp_path / top, ignore=ignore)
    directory = implementation.CORE.directory
    copied = tmp_path / directory.relative_to(ROOT)
    (copied / "_compiled.sha256").write_text(implementation.CORE.source_digest() + "\n")
    built = any(directory.glob(f"{module}.*.so"))
    name = package.__name__
    code = f"import {name}, {name}.{module} as m; print({name}.IMPLEMENTATION, m.__file__)"
    expected = implementation.MYPYC if built else implementation.PURE_PYTHON
    assert run_python(code, tmp_path).startswith(expected + " ")
    # An edit (a pull, a rebase) makes the compiled modules stale: the sources run.
    with (copied / f"{module}.py").open("a", encoding="utf-8") as source:
        source.write("\n# edited after the build\n")
    out = run_python(code, tmp_path)
    assert out.startswith(implementation.PURE_PYTHON + " ")
    assert out.endswith(str(copied / f"{module}.py"))


@pytest.mark.parametrize("tests", ["tests/sip", "tests/sdp", "tests/rtp"])
def test_the_core_tests_pass_with_the_pure_python_implementation(tests: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", tests],
        cwd=ROOT,
        env={**os.environ, "VOIP_PURE_PYTHON": "1"},
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1]
