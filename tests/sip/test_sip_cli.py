"""`voip parse`: the verdict for every conformance file, in text and JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import DATA, load_manifest
from voip.cli import main

TORTURE = DATA / "torture"
TORTURE_ENTRIES = load_manifest(TORTURE / "manifest.json")["messages"]
IPV6_ENTRIES = load_manifest(DATA / "ipv6" / "manifest.json")["messages"]


def run(*args: str, stdin: bytes | None = None) -> tuple[int, list[str]]:
    result = CliRunner().invoke(main, list(args), input=stdin)
    return result.exit_code, result.output.splitlines()


def expected_last_line(entry: dict[str, object]) -> str:
    if entry["verdict"] == "accept":
        return "status: valid"
    if entry["kind"] == "response":
        return "status: discard"
    return f"status: {entry['expected_status']} "


@pytest.mark.parametrize("entry", TORTURE_ENTRIES, ids=lambda e: e["name"])
def test_parse_prints_the_torture_verdict(entry: dict[str, object]) -> None:
    code, lines = run("parse", str(TORTURE / str(entry["file"])))
    assert code == (0 if entry["verdict"] == "accept" else 1)
    assert lines[-1].startswith(expected_last_line(entry)), lines[-1]


@pytest.mark.parametrize("entry", IPV6_ENTRIES, ids=lambda e: e["name"])
def test_parse_prints_the_ipv6_verdict(entry: dict[str, object]) -> None:
    code, lines = run("parse", str(DATA / "ipv6" / str(entry["wire_file"])))
    assert code == (0 if entry["verdict"] == "accept" else 1)
    assert lines[-1].startswith(expected_last_line(entry)), lines[-1]


def test_reject_reason_is_readable() -> None:
    code, lines = run("parse", str(TORTURE / "clerr.dat"))
    assert code == 1
    assert lines[-1] == "status: 400 Content-Length 9999 exceeds body of 154 bytes"


def test_parse_reads_stdin() -> None:
    code, lines = run("parse", "-", stdin=(TORTURE / "esc01.dat").read_bytes())
    assert code == 0
    assert lines[0].startswith("request: INVITE sip:sips%3Auser%40example.com@example.net")


def test_json_output_carries_typed_fields_and_sdp() -> None:
    code, lines = run("parse", "--json", str(TORTURE / "esc01.dat"))
    assert code == 0
    out = json.loads("\n".join(lines[:-1]))
    assert out["valid"] is True
    assert out["uri"]["user"] == "sips:user@example.com"
    assert out["fields"]["Contact"][0]["uri"]["params"] == {"lr": None, "name": "value%41"}
    assert out["sdp"]["media"][0]["media"] == "audio"


def test_json_output_of_a_rejected_request() -> None:
    code, lines = run("parse", "--json", str(TORTURE / "unkscm.dat"))
    assert code == 1
    out = json.loads("\n".join(lines[:-1]))
    assert (out["valid"], out["status"]) == (False, 416)


def test_sdp_mode_valid_and_invalid(tmp_path: Path) -> None:
    good = tmp_path / "good.sdp"
    good.write_bytes(
        b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        b"m=audio 4000 RTP/AVP 0\r\n"
    )
    code, lines = run("parse", "--sdp", str(good))
    assert (code, lines[-1]) == (0, "status: valid")
    bad = tmp_path / "bad.sdp"
    bad.write_bytes(b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nm=audio port RTP/AVP 0\r\n")
    code, lines = run("parse", "--sdp", str(bad))
    assert code == 1
    assert lines[-1].startswith("status: 488 ") and "line 4" in lines[-1]


def test_installed_command_runs() -> None:
    voip = shutil.which("voip")
    command = [voip] if voip else [sys.executable, "-m", "voip.cli"]
    done = subprocess.run(
        [*command, "parse", str(TORTURE / "badvers.dat")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stdout.splitlines()[-1].startswith("status: 505 ")
