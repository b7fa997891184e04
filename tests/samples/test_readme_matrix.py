"""The README's interoperability matrix and samples table name tests that exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from support.samples import ROOT

TESTS = ROOT / "tests"


def _test_file(name: str) -> Path:
    """``tests/x/test_y.py`` as written, else ``test_y.py`` in tests/interop or tests/samples."""
    if name.startswith("tests/"):
        return ROOT / name
    (path,) = [p for p in (TESTS / "interop" / name, TESTS / "samples" / name) if p.exists()]
    return path


def test_every_test_the_readme_names_exists() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:tests/\w+/)?test_\w+\.py)::(test_\w+)`", readme))
    assert len(named) > 40
    for file, test in named:
        tree = ast.parse(_test_file(file).read_text(encoding="utf-8"))
        defined = {
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        assert test in defined, f"README names {file}::{test}, which is not defined"
