"""The packet capture (voip.pcap): a call between two agents, captured on one of them,
is read back by tshark (Wireshark's command line, a real reader of the format) as the SIP
messages of the call's trace in order and RTP streams with the packets the streams
counted; over UDP, TCP and TLS, IPv4 and IPv6, and SRTP left encrypted."""

from __future__ import annotations

import asyncio
import shutil
import socket
import struct
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.peers.pki import make_loopback_pki
from support.ua import answer_calls, media_of

from voip.pcap import LINKTYPE_RAW, Capture, PcapWriter, _checksum
from voip.trace import SipTrace
from voip.transport import client_context, server_context
from voip.useragent import UserAgent

TIMEOUT = 10.0
TSHARK = shutil.which("tshark")


def tshark(path: Path, *args: str) -> list[str]:
    """tshark's output lines for the capture ``path`` (fails the test if tshark fails)."""
    assert TSHARK is not None, "tshark is installed by scripts/setup"
    result = subprocess.run(
        [TSHARK, "-r", str(path), "-n", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line.strip()]


def sip_lines(path: Path, *decode: str) -> list[str]:
    """``METHOD`` or ``STATUS CSEQ-METHOD`` per SIP message of the capture, in order."""
    fields = ["-T", "fields", "-e", "sip.Method", "-e", "sip.Status-Code", "-e", "sip.CSeq"]
    lines = tshark(path, *decode, "-Y", "sip", *fields)
    out = []
    for line in lines:
        method, status, cseq = [*line.split("\t"), "", "", ""][:3]
        out.append(method if method else f"{status} {cseq.split()[-1]}")
    return out


def trace_lines(trace: SipTrace) -> list[str]:
    return [
        record.message.method if record.label.isalpha() else f"{record.label} {record.cseq_method}"
        for record in trace
    ]


def rtp_packets(path: Path, *decode: str) -> dict[tuple[str, int, str, int], int]:
    """RTP packets per (source, destination), as tshark decodes them (RTP found by its
    heuristic, since the capture has no SDP-set-up conversation for a bare reader)."""
    lines = tshark(
        path,
        *decode,
        "-o",
        "rtp.heuristic_rtp:TRUE",
        "-Y",
        "rtp",
        "-T",
        "fields",
        "-e",
        "ip.src",
        "-e",
        "ipv6.src",
        "-e",
        "udp.srcport",
        "-e",
        "ip.dst",
        "-e",
        "ipv6.dst",
        "-e",
        "udp.dstport",
    )
    counts: dict[tuple[str, int, str, int], int] = {}
    for line in lines:
        src4, src6, sport, dst4, dst6, dport = line.split("\t")
        key = (src4 or src6, int(sport), dst4 or dst6, int(dport))
        counts[key] = counts.get(key, 0) + 1
    return counts


@pytest.fixture
async def agents(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[UserAgent, UserAgent]]:
    transport, host = request.param
    options = {}
    if transport == "tls":
        pki = make_loopback_pki(tmp_path / "pki")
        options = {
            "tls_server": server_context(pki.certfile, pki.keyfile),
            "tls_client": client_context(pki.cafile),
        }
    alice = UserAgent("alice", transports=(transport,), **options)
    bob = UserAgent("bob", transports=(transport,), **options)
    await alice.listen(transport, host, 0)
    await bob.listen(transport, host, 0)
    yield alice, bob
    await alice.close()
    await bob.close()


@pytest.mark.parametrize(
    "agents",
    [("udp", "127.0.0.1"), ("udp", "::1"), ("tcp", "127.0.0.1"), ("tls", "127.0.0.1")],
    indirect=True,
    ids=["udp", "udp-ipv6", "tcp", "tls"],
)
async def test_a_captured_call_reads_back_as_its_sip_messages_and_rtp_streams(
    agents: tuple[UserAgent, UserAgent], tmp_path: Path
) -> None:
    alice, bob = agents
    transport = alice.transports[0]
    path = tmp_path / "call.pcap"
    capture = Capture.attach(alice, path)
    trace = SipTrace.attach(alice)
    calls = answer_calls(bob)
    endpoint = bob.listening[0]
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
    scheme = "sips" if transport == "tls" else "sip"
    caller = await asyncio.wait_for(
        alice.call(f"{scheme}:bob@{host}:{endpoint.port};transport={transport}"), TIMEOUT
    )
    callee = await asyncio.wait_for(calls.get(), TIMEOUT)
    for _ in range(500):  # half a second of audio each way, or the assertions say why
        if media_of(caller).statistics().packets_received >= 25:
            break
        await asyncio.sleep(0.02)
    await asyncio.wait_for(caller.hangup(), TIMEOUT)
    await asyncio.sleep(0.1)  # the 200 to BYE, and the RTCP BYEs
    sent = media_of(caller).statistics().packets_sent
    received = media_of(caller).statistics().packets_received
    capture.close()

    # the TLS listener's port: Wireshark would take its plaintext for TLS records
    decode = ("-d", f"tcp.port=={endpoint.port},sip") if transport == "tls" else ()
    assert sip_lines(path, *decode) == trace_lines(trace)
    assert trace_lines(trace)[:1] == ["INVITE"] and "BYE" in trace_lines(trace)
    port = media_of(caller).port
    streams = rtp_packets(path)
    ours = {key: count for key, count in streams.items() if key[1] == port}
    theirs = {key: count for key, count in streams.items() if key[3] == port}
    assert list(ours.values()) == [sent], streams
    assert list(theirs.values()) == [received], streams
    (outgoing,) = ours
    assert outgoing[3] == media_of(callee).port


def test_the_file_header_says_raw_ip_and_a_udp_record_has_valid_checksums(
    tmp_path: Path,
) -> None:
    path = tmp_path / "one.pcap"
    with path.open("wb") as file:
        writer = PcapWriter(file)
        writer.udp(("127.0.0.1", 5060), ("127.0.0.2", 5070), b"OPTIONS", 1.5)
    data = path.read_bytes()
    magic, major, minor, _, _, _, linktype = struct.unpack("=IHHiIII", data[:24])
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, LINKTYPE_RAW)
    seconds, micros, captured, original = struct.unpack("=IIII", data[24:40])
    assert (seconds, micros, captured, original) == (1, 500000, 20 + 8 + 7, 35)
    packet = data[40:]
    assert _checksum(packet[:20]) == 0  # a header with its checksum sums to all ones
    pseudo = packet[12:20] + struct.pack("!BBH", 0, 17, 15)
    assert _checksum(pseudo + packet[20:]) == 0
    assert packet[28:] == b"OPTIONS"
    assert socket.inet_ntop(socket.AF_INET, packet[16:20]) == "127.0.0.2"


def test_a_tcp_direction_numbers_its_bytes_and_acknowledges_the_other(tmp_path: Path) -> None:
    path = tmp_path / "tcp.pcap"
    a, b = ("::1", 40000), ("::1", 5060)
    with path.open("wb") as file:
        writer = PcapWriter(file)
        writer.tcp(a, b, b"x" * 10, 1.0)
        writer.tcp(b, a, b"y" * 4, 1.1)
        writer.tcp(a, b, b"z" * 3, 1.2)
    lines = tshark(path, "-T", "fields", "-e", "tcp.seq_raw", "-e", "tcp.ack_raw", "-e", "tcp.len")
    assert lines == ["1\t1\t10", "1\t11\t4", "11\t5\t3"]
    bad = tshark(path, "-o", "tcp.check_checksum:TRUE", "-Y", "tcp.checksum.status == 0")
    assert bad == []


@pytest.mark.parametrize("transport", ["tcp", "tls", "ws", "wss"])
async def test_sip_sent_while_its_connection_opens_is_captured_from_the_real_local_port(
    transport: str, tmp_path: Path
) -> None:
    """The INVITE of an agent that listens on nothing leaves on a connection still being
    opened (queued until the handshakes are done): its segments carry the port the
    connection is bound to, as every later one does, never port 0."""
    pki = make_loopback_pki(tmp_path / "pki")
    tls = {"tls_client": client_context(pki.cafile)}
    alice = UserAgent("alice", transports=(transport,), **tls)
    bob = UserAgent("bob", tls_server=server_context(pki.certfile, pki.keyfile))
    path = tmp_path / "opening.pcap"
    try:
        at = await bob.listen(transport, "127.0.0.1", 0)
        capture = Capture.attach(alice, path)
        opening: list[str] = []

        def state_when_sent(direction: str, message: object, *_: object) -> None:
            if direction == "out":
                (connection,) = alice.transport.connections
                opening.append(connection.state.value)

        alice.transport.add_tracer(state_when_sent)
        calls = answer_calls(bob)
        caller = await asyncio.wait_for(
            alice.call(f"sip:bob@127.0.0.1:{at.port};transport={transport}"), TIMEOUT
        )
        await asyncio.wait_for(calls.get(), TIMEOUT)
        await asyncio.wait_for(caller.hangup(), TIMEOUT)
        (connection,) = alice.transport.connections
        capture.close()
    finally:
        await alice.close()
        await bob.close()
    assert opening[0] == "connecting"  # the INVITE was queued, the connection not up yet
    ports = tshark(path, "-T", "fields", "-e", "tcp.srcport", "-e", "tcp.dstport")
    ours = {connection.local.port, at.port}
    assert connection.local.port != 0
    assert ports and all({int(port) for port in line.split("\t")} == ours for line in ports)
