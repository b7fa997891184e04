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


def test_every_row_of_the_session_mapping_table_names_a_test_that_runs_it() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| primitive | method | carried by |") :].split("\n\n")[0]
    rows = table.splitlines()[2:]
    assert len(rows) >= 19
    for row in rows:
        example = row.split(" | ")[-1]
        assert re.search(r"`(?:tests/\w+/)?test_\w+\.py::test_\w+`", example), row
