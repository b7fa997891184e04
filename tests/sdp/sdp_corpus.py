"""Where the SDP test vectors are, and how the tests read them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "sdp"
RFC4317 = DATA / "rfc4317"
RFC4317_SINGLE_SPACE = RFC4317 / "s-single-space"
RFC3264 = DATA / "rfc3264"
REAL_WORLD = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "sdp" / "real-world"


def sdp_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.sdp"))


def manifest(folder: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((folder / "manifest.json").read_text("utf-8"))
    return result


def real_world_files() -> list[Path]:
    """The real-world corpus, read in place (it is not vendored: see PROVENANCE.md)."""
    if not REAL_WORLD.is_dir():
        return []
    return sorted(path for path in REAL_WORLD.iterdir() if path.suffix in (".sdp", ".sip"))


def require_real_world() -> None:
    if not REAL_WORLD.is_dir():
        pytest.skip(f"real-world SDP corpus not present at {REAL_WORLD}")


def sdp_bytes(path: Path) -> bytes:
    """The SDP in a file: the whole file, or the body of a SIP message (``.sip``).

    The body is what the message's Content-Length counts after the blank line that ends the
    header section (RFC 3261 §7.5, §20.14); the Cisco capture carries two octets more.
    """
    data = path.read_bytes()
    if path.suffix != ".sip":
        return data
    head, _, body = data.partition(b"\r\n\r\n")
    for header in head.split(b"\r\n")[1:]:
        name, _, value = header.partition(b":")
        if name.strip().lower() in (b"content-length", b"l"):
            return body[: int(value.strip())]
    return body


def sdp_lines(text: str) -> list[str]:
    """The lines of an SDP text, whatever its line ends, blank lines left out."""
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    return [line for line in lines if line.strip()]
