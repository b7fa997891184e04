"""The README's code example runs and does what the README says."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.conftest import DATA

README = Path(__file__).resolve().parents[1] / "README.md"


def example() -> Any:
    code = re.search(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(code.group(1), namespace)
    return namespace["on_datagram"]


def test_readme_example_answers_a_valid_request_200() -> None:
    answer = example()((DATA / "torture" / "zeromf.dat").read_bytes())
    assert answer.startswith(b"SIP/2.0 200 OK\r\n")


def test_readme_example_answers_an_unknown_scheme_416() -> None:
    answer = example()((DATA / "torture" / "unkscm.dat").read_bytes())
    assert answer.startswith(b"SIP/2.0 416 ")


def test_readme_example_ignores_a_malformed_response() -> None:
    assert example()((DATA / "torture" / "bigcode.dat").read_bytes()) is None
