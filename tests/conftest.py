"""Shared paths for the test suite."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# ``--import-mode=importlib`` keeps test folders off sys.path; the shared helpers in
# ``tests/support`` are imported as the package ``support``.
_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

DATA = Path(__file__).parent / "data"
# The shared conformance corpus sits beside the repository; GPL-licensed suites (PROTOS)
# are read from there and never copied in.
SHARED = Path(__file__).resolve().parents[2] / "shared" / "conformance"


def load_manifest(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
