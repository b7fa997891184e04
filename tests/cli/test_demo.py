"""``voip demo``: a real call on loopback to the built-in bot, then its ladder diagram and
quality report (MOS and loss each way)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from voip.demo import TEXTS, Prompts
from voip.trace import read_jsonl

ROOT = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    folder = tmp_path_factory.mktemp("demo")
    result = subprocess.run(
        [sys.executable, "-m", "voip.cli", "demo", "--svg", str(folder / "demo.svg"),
         "--trace", str(folder / "demo.jsonl"), "--pcap", str(folder / "demo.pcap")],
        capture_output=True, text=True, cwd=ROOT, check=False, timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("VOIP_")},
    )  # fmt: skip
    return result, folder


def test_demo_completes_the_call_with_every_step(
    demo: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    result, _ = demo
    assert result.returncode == 0, result.stderr
    steps = result.stderr
    for step in (
        "bot: caller pressed 1 (S-EXPEDITED-DATA, rtp)",
        "bot: echoing the caller",
        "caller: holding the call (re-INVITE sendonly)",
        "caller: resuming the call (re-INVITE sendrecv)",
        "bot: goodbye prompt, then release (S-RELEASE)",
    ):
        assert step in steps
    echo = re.search(r"caller: heard the echo \(RMS (\d+)\)", steps)
    assert echo is not None and int(echo.group(1)) > 300
    assert result.stdout.rstrip().endswith("released by the bot (BYE, 200).")


def test_demo_prints_the_ladder_of_every_message_in_order(
    demo: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    result, folder = demo
    lines = result.stdout.splitlines()
    top = lines.index("SIP ladder of the call:")
    assert lines[top + 1].split() == ["softphone", "demo", "bot"]
    arrows = [line for line in lines[top:] if re.match(r"\s+\d+\.\d{3}s ", line)]
    words = [re.sub(r"[-<>|.]+", " ", line.split("s", 1)[1]).split() for line in arrows]
    shown = [" ".join(w) for w in words]
    assert shown == [
        "INVITE (SDP)", "200 OK (SDP)", "ACK",
        "INVITE (SDP) sendonly", "200 OK (SDP) recvonly", "ACK",
        "INVITE (SDP)", "200 OK (SDP)", "ACK",
        "BYE", "200 OK (BYE)",
    ]  # fmt: skip
    assert arrows[-2].index("<") < arrows[-2].index("BYE")  # the bot hung up
    # the SVG shows the same messages as the JSON-lines trace, in order
    records = read_jsonl(folder / "demo.jsonl")
    root = ET.fromstring((folder / "demo.svg").read_text(encoding="utf-8"))
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "message"]
    assert len(labels) == len(records) == 11
    assert [(label or "").split()[0] for label in labels] == [r.label for r in records]


def test_demo_reports_mos_and_loss_each_way(
    demo: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    result, _ = demo
    lines = result.stdout.splitlines()
    assert any(line.startswith("Call quality: PCMU/8000, ") for line in lines)
    for direction in ("sent", "received"):
        row = next(line.split() for line in lines if line.strip().startswith(direction + " "))
        _, packets, lost, loss, jitter, unit, mos = row
        assert int(packets) > 400
        assert int(lost) >= 0 and loss.endswith("%")
        assert float(jitter) >= 0 and unit == "ms"
        assert 1.0 <= float(mos) <= 4.5
    assert "DTMF 1 sent" in result.stdout


def test_demo_capture_holds_every_sip_message_and_rtp_packet_of_the_report(
    demo: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    """``--pcap``: tshark reads the capture as the trace's messages and, each way, as many
    RTP packets as the quality report counted."""
    result, folder = demo
    assert result.returncode == 0, result.stderr
    path = folder / "demo.pcap"
    records = read_jsonl(folder / "demo.jsonl")
    labels = [
        line.replace("\t", "")
        for line in tshark(
            path, "-Y", "sip", "-T", "fields", "-e", "sip.Method", "-e", "sip.Status-Code"
        )
    ]
    assert labels == [r.label for r in records]
    reported = {
        row[0]: int(row[1])
        for row in (line.split() for line in result.stdout.splitlines())
        if row and row[0] in ("sent", "received")
    }
    softphone_port = _softphone_rtp_port(path)
    rtp = tshark(path, "-Y", "rtp", "-T", "fields", "-e", "udp.srcport")
    sent = sum(int(port) == softphone_port for port in rtp)
    assert (sent, len(rtp) - sent) == (reported["sent"], reported["received"])


def tshark(path: Path, *args: str) -> list[str]:
    result = subprocess.run(
        ["tshark", "-r", str(path), "-n", *args], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line.strip()]


def _softphone_rtp_port(path: Path) -> int:
    """The RTP port of the softphone's SDP offer (the first INVITE's m=audio line)."""
    ports = tshark(path, "-Y", "sip.Method == INVITE", "-T", "fields", "-e", "sdp.media.port")
    return int(ports[0])


def test_prompts_fall_back_to_tone_melodies_without_espeak(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "")
    prompts = Prompts.make()
    assert prompts.voice == "tone melodies (espeak-ng not found)"
    for name in TEXTS:
        pcm = getattr(prompts, name)
        assert len(pcm) > 8000 and len(pcm) % 2 == 0  # at least half a second of 16-bit


def test_demo_says_why_a_capture_cannot_be_written(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "voip.cli", "demo", "--no-live",
         "--pcap", str(tmp_path / "missing" / "demo.pcap")],
        capture_output=True, text=True, cwd=ROOT, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "cannot write the capture" in result.stderr
    assert "No such file or directory" in result.stderr
