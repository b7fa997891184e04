"""Shared paths for the test suite."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
# The shared conformance corpus sits beside the repository; GPL-licensed suites (PROTOS)
# are read from there and never copied in.
SHARED = Path(__file__).resolve().parents[2] / "shared" / "conformance"


def load_manifest(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
