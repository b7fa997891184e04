"""SIP traces (voip.trace) and ladder diagrams (voip.ladder) of real calls on loopback."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.ua import connected

from voip.ladder import Ladder
from voip.sip.transaction import Timers
from voip.trace import SipTrace, TraceRecord, first_copies, read_jsonl
from voip.useragent import RequestFailed, UserAgent

ROOT = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
async def traced() -> AsyncIterator[tuple[UserAgent, UserAgent, SipTrace, SipTrace]]:
    """alice and bob on UDP loopback, each traced from before its first message."""
    alice, bob = UserAgent("alice"), UserAgent("bob")
    alice_trace, bob_trace = SipTrace.attach(alice), SipTrace.attach(bob)
    await alice.listen("udp", "127.0.0.1", 0)
    await bob.listen("udp", "127.0.0.1", 0)
    yield alice, bob, alice_trace, bob_trace
    await alice.close()
    await bob.close()


async def a_call_with_hold(alice: UserAgent, bob: UserAgent) -> str:
    caller, _ = await connected(alice, bob)
    await caller.hold()
    await caller.resume()
    await caller.hangup()
    return caller.call_id


async def test_trace_holds_every_message_of_a_call_sent_and_received(
    traced: tuple[UserAgent, UserAgent, SipTrace, SipTrace],
) -> None:
    alice, bob, alice_trace, bob_trace = traced
    call_id = await a_call_with_hold(alice, bob)
    sent = [t.message.start_line() for t in first_copies(alice_trace.of(call_id)) if t.sent]
    received = [t.message.start_line() for t in first_copies(bob_trace.of(call_id)) if not t.sent]
    # what one agent put on the wire is what the other read off it, in the same order
    assert sent == received
    labels = [str(t) for t in first_copies(alice_trace.of(call_id))]
    invites = [label for label in labels if label == "> INVITE"]
    assert len(invites) == 3  # the call, the hold, the resume
    assert labels[-2:] == ["> BYE", "< 200"]
    assert labels.count("> ACK") == 3
    bob_endpoint = bob.listening[0]
    assert all(t.peer.port == bob_endpoint.port for t in alice_trace.of(call_id))
    assert all(t.local is not None for t in alice_trace)


async def test_trace_written_as_json_lines_reads_back_as_the_same_messages(
    traced: tuple[UserAgent, UserAgent, SipTrace, SipTrace],
) -> None:
    alice, bob, _, _ = traced
    sink = io.StringIO()
    trace = SipTrace(jsonl=sink)
    trace.follow(alice)
    await a_call_with_hold(alice, bob)
    lines = sink.getvalue().splitlines()
    assert len(lines) == len(trace) > 0
    first = json.loads(lines[0])
    assert first["direction"] == "out"
    assert first["method"] == "INVITE"
    assert first["start_line"].startswith("INVITE sip:bob@127.0.0.1:")
    assert first["call_id"] == trace.messages[0].message.call_id
    back = read_jsonl(io.StringIO(sink.getvalue()))
    assert [bytes(r.message) for r in back] == [bytes(r.message) for r in trace]
    assert [(r.direction, r.peer, r.local) for r in back] == [
        (r.direction, r.peer, r.local) for r in trace
    ]


async def test_a_failing_tracer_does_not_stop_the_call(
    traced: tuple[UserAgent, UserAgent, SipTrace, SipTrace],
) -> None:
    alice, bob, alice_trace, _ = traced

    def broken(*_: object) -> None:
        raise RuntimeError("tracer bug")

    loop = asyncio.get_running_loop()
    reported: list[str] = []
    loop.set_exception_handler(lambda _, context: reported.append(context["message"]))
    alice.transport.add_tracer(broken)
    await a_call_with_hold(alice, bob)
    assert "> BYE" in alice_trace.ladder()
    assert reported
    assert alice.transport.counters.callback_errors == len(reported)


async def test_a_removed_tracer_sees_nothing_more(
    traced: tuple[UserAgent, UserAgent, SipTrace, SipTrace],
) -> None:
    alice, bob, _, _ = traced
    trace = SipTrace()
    stop = trace.follow(alice)
    stop()
    await a_call_with_hold(alice, bob)
    assert len(trace) == 0


async def test_ladder_marks_retransmissions_of_an_unanswered_request() -> None:
    """RFC 3261 §17.1.2.2: a non-INVITE request over UDP is sent again at T1, 2·T1 …
    until Timer F; the ladder draws each copy, marked as a copy."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    try:
        ua = UserAgent("alice", timers=Timers(t1=0.02, t2=0.08, t4=0.1))
        trace = SipTrace.attach(ua)
        await ua.listen("udp", "127.0.0.1", 0)
        try:
            with pytest.raises(RequestFailed) as failure:
                await asyncio.wait_for(ua.options(f"sip:nobody@127.0.0.1:{port}"), 10)
        finally:
            await ua.close()
    finally:
        silent.close()
    assert failure.value.status == 408
    assert len(trace) > 3
    ladder = Ladder(trace, agent="alice", names={f"udp:127.0.0.1:{port}": "silent"})
    assert [a.retransmission for a in ladder.arrows] == [False] + [True] * (len(trace) - 1)
    text = ladder.text().splitlines()
    assert "alice" in text[0] and "silent" in text[0]
    rows = [line for line in text if "OPTIONS" in line]
    assert len(rows) == len(trace)
    assert "(again)" not in rows[0]
    assert all("(again)" in row and "..." in row for row in rows[1:])
    assert all(row.index("OPTIONS") < row.index(">") for row in rows)


def svg_labels(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return [t.text or "" for t in root.iter(f"{SVG}text") if t.get("class") == "message"]


async def test_svg_ladder_lists_every_message_of_the_call_in_order(
    traced: tuple[UserAgent, UserAgent, SipTrace, SipTrace], tmp_path: Path
) -> None:
    alice, bob, alice_trace, _ = traced
    call_id = await a_call_with_hold(alice, bob)
    ladder = Ladder(alice_trace.of(call_id), agent="alice")
    labels = svg_labels(ladder.svg())
    assert labels == [a.label + (" (again)" if a.retransmission else "") for a in ladder.arrows]
    assert labels[0] == "INVITE (SDP)"
    hold = labels.index("INVITE (SDP) sendonly")
    assert labels[hold + 1 : hold + 3] == ["200 OK (SDP) recvonly", "ACK"]
    assert labels[-2:] == ["BYE", "200 OK (BYE)"]
    # a real renderer draws it
    svg = tmp_path / "ladder.svg"
    svg.write_text(ladder.svg(), encoding="utf-8")
    png = tmp_path / "ladder.png"
    rsvg = shutil.which("rsvg-convert")
    assert rsvg is not None, "scripts/setup installs librsvg2-bin"
    subprocess.run([rsvg, str(svg), "-o", str(png)], check=True)
    header = png.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    assert width >= 400 and height >= 34 * len(labels)


async def test_voip_ladder_draws_a_json_lines_trace(
    traced: tuple[UserAgent, UserAgent, SipTrace, SipTrace], tmp_path: Path
) -> None:
    alice, bob, alice_trace, _ = traced
    await a_call_with_hold(alice, bob)
    path = tmp_path / "call.jsonl"
    alice_trace.write_jsonl(path)
    svg = tmp_path / "call.svg"
    bob_address = f"udp:127.0.0.1:{bob.listening[0].port}"
    result = subprocess.run(
        [sys.executable, "-m", "voip.cli", "ladder", str(path), "--svg", str(svg),
         "--agent", "alice", "--name", f"{bob_address}=bob"],
        capture_output=True, text=True, cwd=ROOT, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["alice", "bob"]
    arrows = [line for line in lines if "-" in line and "|" in line]
    assert "INVITE (SDP)" in arrows[0]
    assert "200 OK (BYE)" in arrows[-1]
    assert lines[-1] == f"ladder written to {svg}"
    assert svg_labels(svg.read_text(encoding="utf-8"))[0] == "INVITE (SDP)"


def test_voip_ladder_refuses_a_file_that_is_not_a_trace(tmp_path: Path) -> None:
    path = tmp_path / "notes.jsonl"
    path.write_text('{"direction": "out"}\n', encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "voip.cli", "ladder", str(path)],
        capture_output=True, text=True, cwd=ROOT, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "is not a JSON-lines SIP trace" in result.stderr


def test_trace_record_summary_names_the_method_a_response_answers() -> None:
    from voip.sip import parse_message

    bye_ok = parse_message(
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\n"
        b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>;tag=2\r\n"
        b"Call-ID: x\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    )
    from voip.transport import Endpoint

    record = TraceRecord("in", bye_ok, Endpoint("udp", "127.0.0.1", 5060))  # type: ignore[arg-type]
    assert record.summary == "200 OK (BYE)"
    assert str(record) == "< 200"
