"""The ``voip`` command line, run as a process (``python -m voip.cli``), against real
peers on loopback: Kamailio (register, wrong password, calls through it), a SIPp UAS
(answered, busy) and UAC (calls to ``voip serve``), baresip (calls both ways)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import warnings
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.peers import Baresip, Kamailio, Linphone, LoopbackPki, Sipp
from support.peers._process import free_port, port_in_use

from voip.cli.exits import ExitCode
from voip.sip import Request
from voip.trace import read_jsonl

with warnings.catch_warnings():  # audioop: the stdlib's up to 3.12 (audioop-lts after)
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

ROOT = Path(__file__).resolve().parents[2]
BOTS = ROOT / "tests" / "cli" / "bots.py"
TIMEOUT = 60.0


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def clean_environment(home: Path, **variables: str) -> dict[str, str]:
    """The environment of a ``voip`` run: no VOIP_* of the caller's, a HOME of its own
    (so no ~/.config/voip/config.toml of the user's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOIP_")}
    env["HOME"] = str(home)
    env.update(variables)
    return env


async def voip(*args: str, env: dict[str, str], timeout: float = TIMEOUT) -> Run:
    """Run ``python -m voip.cli ARGS`` without blocking the loop (peers run on it)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voip.cli", *args,
        cwd=ROOT, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(f"voip {' '.join(args)} did not finish:\n{err.decode()}") from None
    return Run(proc.returncode or 0, out.decode(), err.decode())


def start_voip(*args: str, env: dict[str, str]) -> asyncio.Task[Run]:
    return asyncio.ensure_future(voip(*args, env=env))


async def until_listening(server: asyncio.Task[Run], port: int) -> None:
    """Wait until the ``voip`` process ``server`` has bound UDP ``port`` (its interpreter
    starting takes a second or several on a busy machine: a fixed sleep raced it)."""
    for _ in range(int(TIMEOUT / 0.1)):
        assert not server.done(), server.result()
        if port_in_use(port):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def rms(path: Path) -> int:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        return audioop.rms(wav.readframes(wav.getnframes()), 2)


def seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


async def audio_went_both_ways(bob: Baresip, recording: Path) -> None:
    """Once baresip has seen the call end: ``recording`` (what the toolkit heard) holds
    baresip's speech file, and baresip's own recording our tone."""
    await bob.wait_closed()
    bob.stop()  # closes its recordings
    assert rms(recording) > 300
    (heard,) = bob.received_recordings()
    assert rms(heard) > 300


def labels(trace: Path) -> list[str]:
    return [str(record) for record in read_jsonl(trace)]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def tone_wav(tmp_path: Path) -> Path:
    from voip.rtp import tone

    path = tmp_path / "tone.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(tone(440, 2.0))
    return path


def registrar_args(kamailio: Kamailio, user: str) -> list[str]:
    return ["--user", user, "--domain", kamailio.domain, "--listen", "127.0.0.1:0"]


# --- voip register ----------------------------------------------------------------------------


async def test_register_with_the_right_password_binds_then_unbinds(
    kamailio: Kamailio, home: Path, tmp_path: Path
) -> None:
    trace = tmp_path / "register.jsonl"
    env = clean_environment(home, VOIP_PASSWORD=kamailio.users["alice"])
    run = await voip(
        "register", kamailio.uri(), *registrar_args(kamailio, "alice"), "--trace", str(trace),
        env=env,
    )  # fmt: skip
    assert run.returncode == ExitCode.OK, run
    assert run.stdout.startswith(f"registered sip:alice@{kamailio.domain} at "), run
    assert "(this agent)" in run.stdout
    # challenged, authorized, then un-registered on the way out (RFC 3261 §10.2.2)
    assert labels(trace) == ["> REGISTER", "< 401", "> REGISTER", "< 200", "> REGISTER", "< 200"]
    last_register = [r for r in read_jsonl(trace) if r.label == "REGISTER"][-1]
    assert last_register.message.headers.get("Expires") == "0"
    assert await kamailio.contacts("alice") == []


async def test_register_with_a_wrong_password_exits_with_the_auth_failure_code(
    kamailio: Kamailio, home: Path
) -> None:
    env = clean_environment(home, VOIP_PASSWORD="not-" + kamailio.users["alice"])
    run = await voip("register", kamailio.uri(), *registrar_args(kamailio, "alice"), env=env)
    assert run.returncode == ExitCode.AUTH_FAILED, run
    assert "401 Unauthorized" in run.stderr
    assert "the server refused the password of 'alice'" in run.stderr
    assert "Check the password" in run.stderr
    assert await kamailio.contacts("alice") == []


async def test_register_refused_with_403_is_an_auth_failure(
    kamailio_factory: Callable[..., Kamailio], home: Path
) -> None:
    strict = kamailio_factory(auth_fail_403=True)
    env = clean_environment(home, VOIP_PASSWORD="not-" + strict.users["bob"])
    run = await voip("register", strict.uri(), *registrar_args(strict, "bob"), env=env)
    assert run.returncode == ExitCode.AUTH_FAILED, run
    assert "403 Forbidden" in run.stderr


async def test_register_without_a_password_says_how_to_give_one(
    kamailio: Kamailio, home: Path
) -> None:
    run = await voip(
        "register", kamailio.uri(), *registrar_args(kamailio, "alice"), env=clean_environment(home)
    )
    assert run.returncode == ExitCode.AUTH_FAILED, run
    assert "none was given" in run.stderr
    assert "VOIP_PASSWORD" in run.stderr


async def test_register_takes_the_account_from_a_toml_file_and_the_password_from_its_file(
    kamailio: Kamailio, home: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "carol.password"
    secret.write_text(kamailio.users["carol"] + "\n", encoding="utf-8")
    config = tmp_path / "voip.toml"
    config.write_text(
        "[accounts.office]\n"
        'user = "carol"\n'
        f'domain = "{kamailio.domain}"\n'
        f'registrar = "{kamailio.uri()}"\n'
        f'password_file = "{secret}"\n',
        encoding="utf-8",
    )
    env = clean_environment(home, VOIP_CONFIG=str(config), VOIP_ACCOUNT="office")
    run = await voip("register", "--listen", "127.0.0.1:0", env=env)
    assert run.returncode == ExitCode.OK, run
    assert f"registered sip:carol@{kamailio.domain}" in run.stdout


async def test_register_at_a_silent_address_is_unreachable(home: Path) -> None:
    port = free_port("udp")
    run = await voip(
        "register", f"sip:127.0.0.1:{port}", "--user", "alice", "--timeout", "1",
        "--listen", "127.0.0.1:0", env=clean_environment(home, VOIP_PASSWORD="x"),
    )  # fmt: skip
    assert run.returncode == ExitCode.UNREACHABLE, run
    assert "no response in 1 s" in run.stderr


# --- voip options -----------------------------------------------------------------------------


async def test_options_pings_kamailio_and_times_each_answer(kamailio: Kamailio, home: Path) -> None:
    run = await voip(
        "options", kamailio.uri(), "--count", "3", "--interval", "0.1",
        "--listen", "127.0.0.1:0", env=clean_environment(home),
    )  # fmt: skip
    assert run.returncode == ExitCode.OK, run
    lines = run.stdout.splitlines()
    answers = [line for line in lines if line.startswith("200 Keepalive from sip:127.0.0.1:")]
    assert len(answers) == 3, run
    assert all(line.endswith(" ms") for line in answers)
    assert "  Server: " in run.stdout  # who answered: kamailio names itself
    assert lines[-1].startswith("3 answered: min ")


# --- voip call --------------------------------------------------------------------------------


async def test_call_to_a_sipp_uas_plays_records_the_echo_and_reports_quality(
    sipp: Sipp, home: Path, tmp_path: Path, tone_wav: Path
) -> None:
    uas = sipp.start("uas_call", calls=1, rtp_echo=True)
    recording = tmp_path / "echo.wav"
    svg = tmp_path / "call.svg"
    run = await voip(
        "call", uas.uri("sipp"), "--play", str(tone_wav), "--record", str(recording),
        "--listen", "127.0.0.1:0", "--ladder", "--svg", str(svg), env=clean_environment(home),
    )  # fmt: skip
    assert run.returncode == ExitCode.OK, run
    result = await uas.wait(TIMEOUT)
    assert result.ok, result.report()
    report = run.stdout.splitlines()
    assert report[0].startswith("Call quality: P")
    sent = next(line.split() for line in report if line.strip().startswith("sent "))
    received = next(line.split() for line in report if line.strip().startswith("received "))
    assert int(received[1]) > 50  # the echo of two seconds of tone
    assert float(received[-1]) > 3.5  # a MOS for a clean loopback call
    assert int(sent[1]) >= 100
    assert "INVITE (SDP)" in run.stdout and "200 OK (BYE)" in run.stdout
    assert svg.read_text(encoding="utf-8").count('class="message"') >= 5
    assert rms(recording) > 500  # SIPp echoed our tone back
    assert "answered (P" in run.stderr


async def test_call_to_a_busy_sipp_uas_exits_with_the_busy_code(sipp: Sipp, home: Path) -> None:
    uas = sipp.start("uas_busy", calls=1)
    run = await voip(
        "call", uas.uri("sipp"), "--listen", "127.0.0.1:0", env=clean_environment(home)
    )
    assert run.returncode == ExitCode.BUSY, run
    assert "486 Busy Here" in run.stderr
    assert "try again later" in run.stderr
    result = await uas.wait(TIMEOUT)
    assert result.ok, result.report()


async def test_call_follows_a_sipp_redirect_to_a_busy_sipp_uas(sipp: Sipp, home: Path) -> None:
    """``voip call`` goes where a 302 says (RFC 3261 §8.1.3.4) and reports the final answer
    of the target it was sent to."""
    busy = sipp.start("uas_busy", calls=1)
    redirect = sipp.start("uas_redirect", calls=1, keys={"target": f"<{busy.uri('bob')}>"})
    run = await voip(
        "call", redirect.uri("bob"), "--listen", "127.0.0.1:0", env=clean_environment(home)
    )
    assert run.returncode == ExitCode.BUSY, run
    assert f"redirected to {busy.uri('bob')} (302 Moved Temporarily)" in run.stderr
    assert "486 Busy Here" in run.stderr
    for uas in (redirect, busy):
        result = await uas.wait(TIMEOUT)
        assert result.ok, result.report()


async def test_call_with_max_redirects_0_prints_where_the_302_points(
    sipp: Sipp, home: Path
) -> None:
    target = "sip:bob@127.0.0.1:9;transport=udp"
    redirect = sipp.start("uas_redirect", calls=1, keys={"target": f"<{target}>"})
    run = await voip(
        "call", redirect.uri("bob"), "--max-redirects", "0", "--listen", "127.0.0.1:0",
        env=clean_environment(home),
    )  # fmt: skip
    assert run.returncode == ExitCode.REJECTED, run
    assert "302 Moved Temporarily" in run.stderr
    assert f"It points to: {target}." in run.stderr
    assert "redirected to" not in run.stderr
    result = await redirect.wait(TIMEOUT)
    assert result.ok, result.report()


async def test_call_to_a_closed_port_over_tcp_is_unreachable(home: Path) -> None:
    port = free_port("tcp")
    run = await voip(
        "call", f"sip:bob@127.0.0.1:{port}", "--transport", "tcp", "--timeout", "5",
        "--listen", "127.0.0.1:0", env=clean_environment(home),
    )  # fmt: skip
    assert run.returncode == ExitCode.UNREACHABLE, run
    assert "Check the address and port" in run.stderr


async def test_call_to_baresip_through_kamailio_plays_a_wav_and_records_the_answer(
    kamailio: Kamailio,
    baresip_factory: Callable[..., Baresip],
    home: Path,
    tmp_path: Path,
    tone_wav: Path,
) -> None:
    bob = baresip_factory("bob", registrar=kamailio)
    await kamailio.wait_registered("bob")
    recording = tmp_path / "bob.wav"
    env = clean_environment(home, VOIP_PASSWORD=kamailio.users["alice"])
    run = await voip(
        "call", "bob", *registrar_args(kamailio, "alice"),
        "--proxy", kamailio.outbound_proxy("udp"),
        "--play", str(tone_wav), "--record", str(recording), "--duration", "3",
        env=env,
    )  # fmt: skip
    assert run.returncode == ExitCode.OK, run
    await audio_went_both_ways(bob, recording)
    assert seconds(recording) > 2.0
    assert "Call quality: " in run.stdout


async def test_call_to_linphone_through_kamailio_plays_a_wav_and_records_the_answer(
    *,
    kamailio: Kamailio,
    linphone_factory: Callable[..., Linphone],
    speech_wav: Path,
    home: Path,
    tmp_path: Path,
    tone_wav: Path,
) -> None:
    dave = linphone_factory("dave", registrar=kamailio)
    dave.play(speech_wav)
    linphone_heard, recording = tmp_path / "linphone.wav", tmp_path / "dave.wav"
    dave.record(linphone_heard)
    env = clean_environment(home, VOIP_PASSWORD=kamailio.users["alice"])
    run = await voip(
        "call", "dave", *registrar_args(kamailio, "alice"),
        "--proxy", kamailio.outbound_proxy("udp"),
        "--play", str(tone_wav), "--record", str(recording), "--duration", "3",
        env=env,
    )  # fmt: skip
    assert run.returncode == ExitCode.OK, run
    await dave.wait_closed()
    assert rms(recording) > 300 and seconds(recording) > 2.0  # linphone's speech file
    assert rms(linphone_heard) > 300  # our tone, as linphone recorded it
    assert "Call quality: " in run.stdout


async def test_call_over_tls_with_no_certificate_of_its_own_reaches_baresip_through_kamailio(
    *,
    kamailio: Kamailio,
    loopback_pki: LoopbackPki,
    baresip_factory: Callable[..., Baresip],
    home: Path,
    tmp_path: Path,
    tone_wav: Path,
) -> None:
    # a TLS client: no --cert, no listener; one connection to Kamailio's TLS port carries
    # the call both ways (every response, and the BYE), the test CA trusted with --ca
    bob = baresip_factory("bob", registrar=kamailio)
    await kamailio.wait_registered("bob")
    recording, trace = tmp_path / "bob.wav", tmp_path / "call.jsonl"
    env = clean_environment(home, VOIP_PASSWORD=kamailio.users["alice"])
    run = await voip(
        "call", "bob", "--user", "alice", "--domain", kamailio.domain, "--transport", "tls",
        "--ca", str(loopback_pki.cafile), "--proxy", kamailio.outbound_proxy("tls"),
        "--play", str(tone_wav), "--record", str(recording), "--duration", "3",
        "--trace", str(trace), env=env,
    )  # fmt: skip
    assert run.returncode == ExitCode.OK, run
    assert "from its own TLS connections" in run.stderr
    records = list(read_jsonl(trace))
    assert [str(r) for r in records][:4] == ["> INVITE", "< 407", "> ACK", "> INVITE"]
    assert {(r.peer.transport, r.peer.port) for r in records} == {("tls", kamailio.port("tls"))}
    (local,) = {r.local for r in records}
    assert local is not None and local.transport == "tls"
    invite = records[3].message
    assert isinstance(invite, Request)
    assert invite.via[0].transport == "TLS" and f":{local.port}" in str(invite.via[0])
    assert str(invite.headers.get("Contact")) == f"<sips:alice@127.0.0.1:{local.port}>"
    await audio_went_both_ways(bob, recording)


async def test_call_over_tls_reaches_baresip_directly_and_audio_goes_both_ways(
    *,
    loopback_pki: LoopbackPki,
    baresip_factory: Callable[..., Baresip],
    home: Path,
    tmp_path: Path,
    tone_wav: Path,
) -> None:
    identity = tmp_path / "baresip-identity.pem"  # baresip wants certificate and key in one
    identity.write_bytes(loopback_pki.certfile.read_bytes() + loopback_pki.keyfile.read_bytes())
    bob = baresip_factory("bob", certificate=identity)
    recording = tmp_path / "bob.wav"
    run = await voip(
        "call", bob.uri("tls"), "--transport", "tls", "--ca", str(loopback_pki.cafile),
        "--play", str(tone_wav), "--record", str(recording), "--duration", "2", "-v",
        env=clean_environment(home),
    )  # fmt: skip
    assert run.returncode == ExitCode.OK, run
    assert "SIP/2.0/TLS 127.0.0.1:" in run.stderr  # -v: our Via
    await audio_went_both_ways(bob, recording)


def tls_account(path: Path, kamailio: Kamailio, ca_file: Path | None) -> Path:
    lines = [
        "[accounts.default]",
        'user = "carol"',
        f'domain = "{kamailio.domain}"',
        f'registrar = "{kamailio.uri(transport="tls")}"',
        'transport = "tls"',
    ]
    if ca_file is not None:
        lines.append(f'ca_file = "{ca_file}"')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def test_register_over_tls_trusts_the_ca_file_of_the_toml_account(
    kamailio: Kamailio, loopback_pki: LoopbackPki, home: Path, tmp_path: Path
) -> None:
    config = tls_account(tmp_path / "voip.toml", kamailio, loopback_pki.cafile)
    env = clean_environment(home, VOIP_CONFIG=str(config), VOIP_PASSWORD=kamailio.users["carol"])
    run = await voip("register", env=env)
    assert run.returncode == ExitCode.OK, run
    assert f"registered sip:carol@{kamailio.domain} at " in run.stdout
    contact = next(line for line in run.stdout.splitlines() if "(this agent)" in line)
    assert contact.startswith("  contact sips:carol@127.0.0.1:")


async def test_register_over_tcp_with_no_listener_binds_its_connections_address(
    kamailio: Kamailio, home: Path
) -> None:
    env = clean_environment(home, VOIP_PASSWORD=kamailio.users["alice"])
    run = await voip(
        "register", kamailio.uri(transport="tcp"), "--user", "alice", "--domain",
        kamailio.domain, "--transport", "tcp", "--listen", "none", env=env,
    )  # fmt: skip
    assert run.returncode == ExitCode.OK, run
    contact = next(line for line in run.stdout.splitlines() if "(this agent)" in line)
    # a client-only agent registers with SIP Outbound (RFC 5626): ";ob" in its Contact
    assert re.match(r"  contact sip:alice@127\.0\.0\.1:\d+;transport=tcp;ob expires ", contact)


async def test_listen_none_over_udp_is_a_usage_error(home: Path) -> None:
    run = await voip(
        "options", "sip:127.0.0.1:5060", "--listen", "none", env=clean_environment(home)
    )
    assert run.returncode == ExitCode.USAGE, run
    assert "--listen none needs --transport tcp or tls" in run.stderr


async def test_register_over_tls_to_a_server_whose_ca_is_not_trusted_says_so(
    kamailio: Kamailio, home: Path, tmp_path: Path
) -> None:
    config = tls_account(tmp_path / "voip.toml", kamailio, None)  # the system's CAs only
    env = clean_environment(home, VOIP_CONFIG=str(config), VOIP_PASSWORD=kamailio.users["carol"])
    run = await voip("register", "--timeout", "3", env=env)
    assert run.returncode == ExitCode.UNREACHABLE, run
    assert "certificate verify failed" in run.stderr
    assert "not trusted: give the CA that signed it with --ca FILE" in run.stderr


# --- voip serve and voip answer -------------------------------------------------------------------


def bot_log(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def serve_echo_bot(
    home: Path, log: Path, calls: int, *options: str
) -> tuple[asyncio.Task[Run], int]:
    """``voip serve`` running the echo bot for ``calls`` calls as carol, once it listens:
    (the process, its UDP port)."""
    port = free_port("udp")
    env = clean_environment(home, VOIP_TEST_BOT_LOG=str(log))
    server = start_voip(
        "serve", "--bot", f"{BOTS}:echo", "--listen", f"127.0.0.1:{port}",
        "--calls", str(calls), "--user", "carol", *options, env=env,
    )  # fmt: skip
    await until_listening(server, port)
    assert not server.done(), server.result()
    return server, port


async def test_serve_runs_the_bot_for_each_sipp_call_concurrently(
    sipp: Sipp, home: Path, tmp_path: Path
) -> None:
    log = tmp_path / "bot.jsonl"
    server, port = await serve_echo_bot(home, log, 2)
    # two calls at once: each holds 2 s with RTP (SIPp plays its PCMA pcap)
    result = await sipp.run(
        "uac_call_audio", ("127.0.0.1", port), service="carol", calls=2, rate=10
    )
    assert result.ok, result.report()
    run = await asyncio.wait_for(server, TIMEOUT)
    assert run.returncode == ExitCode.OK, run
    entries = bot_log(log)
    starts = [e for e in entries if e["event"] == "start"]
    ends = [e for e in entries if e["event"] == "end"]
    assert len(starts) == len(ends) == 2, (entries, run)
    assert max(float(str(s["time"])) for s in starts) < min(float(str(e["time"])) for e in ends)
    assert all(int(str(e["frames"])) > 50 for e in ends)  # SIPp's audio reached each bot
    assert run.stdout.count("Call quality: ") == 2


async def test_serve_on_uvloop_runs_the_bot_for_a_sipp_call_with_its_audio(
    sipp: Sipp, home: Path, tmp_path: Path
) -> None:
    log = tmp_path / "bot.jsonl"
    server, port = await serve_echo_bot(home, log, 1, "--loop", "uvloop")
    result = await sipp.run("uac_call_audio", ("127.0.0.1", port), service="carol", calls=1)
    assert result.ok, result.report()
    run = await asyncio.wait_for(server, TIMEOUT)
    assert run.returncode == ExitCode.OK, run
    ends = [e for e in bot_log(log) if e["event"] == "end"]
    assert len(ends) == 1 and int(str(ends[0]["frames"])) > 50, (ends, run)
    assert run.stdout.count("Call quality: ") == 1


async def test_serve_registered_at_kamailio_answers_baresip_and_runs_the_bot(
    kamailio: Kamailio, baresip_factory: Callable[..., Baresip], home: Path, tmp_path: Path
) -> None:
    log = tmp_path / "bot.jsonl"
    env = clean_environment(home, VOIP_TEST_BOT_LOG=str(log), VOIP_PASSWORD=kamailio.users["carol"])
    server = start_voip(
        "serve", "--bot", f"{BOTS}:greet", "--calls", "1", "--register",
        "--registrar", kamailio.uri(), *registrar_args(kamailio, "carol"),
        env=env,
    )  # fmt: skip
    await kamailio.wait_registered("carol")
    bob = baresip_factory("bob", registrar=kamailio)
    await bob.dial(kamailio.aor("carol"))
    run = await asyncio.wait_for(server, TIMEOUT)
    assert run.returncode == ExitCode.OK, run
    await bob.wait_closed()
    bob.stop()
    entries = bot_log(log)
    assert [e["event"] for e in entries] == ["start", "end"]
    assert entries[1]["released"] == "ReleaseConfirm"  # S-RELEASE: BYE, 200
    (heard,) = bob.received_recordings()
    assert rms(heard) > 300  # the bot's tone
    assert await kamailio.contacts("carol") == []  # un-registered on the way out


async def test_serve_as_a_tls_client_at_kamailio_answers_linphone_and_echoes_its_speech(
    *,
    kamailio: Kamailio,
    loopback_pki: LoopbackPki,
    linphone_factory: Callable[..., Linphone],
    speech_wav: Path,
    home: Path,
    tmp_path: Path,
) -> None:
    # registered over its own TLS connection (no listener): linphone's INVITE comes to it
    # on that connection, through Kamailio
    log, linphone_heard = tmp_path / "bot.jsonl", tmp_path / "linphone.wav"
    env = clean_environment(home, VOIP_TEST_BOT_LOG=str(log), VOIP_PASSWORD=kamailio.users["carol"])
    server = start_voip(
        "serve", "--bot", f"{BOTS}:echo", "--calls", "1", "--transport", "tls",
        "--ca", str(loopback_pki.cafile), "--registrar", kamailio.uri(transport="tls"),
        "--user", "carol", "--domain", kamailio.domain, env=env,
    )  # fmt: skip
    (contact,) = await kamailio.wait_registered("carol")
    assert contact.address.startswith("sips:carol@127.0.0.1:")
    dave = linphone_factory("dave", registrar=kamailio)
    dave.play(speech_wav)
    dave.record(linphone_heard)
    dave.call(kamailio.aor("carol"))
    await dave.wait_established()
    await asyncio.sleep(3.0)  # three seconds of speech, echoed
    dave.terminate()
    run = await asyncio.wait_for(server, TIMEOUT)
    assert run.returncode == ExitCode.OK, run
    assert "answering calls on its own TLS connections" in run.stderr
    await dave.wait_closed()
    entries = bot_log(log)
    assert [e["event"] for e in entries] == ["start", "end"]
    assert "dave" in str(entries[0]["caller"])
    assert int(str(entries[1]["frames"])) > 100  # linphone's speech reached the bot
    assert rms(linphone_heard) > 300  # and came back to linphone
    assert await kamailio.contacts("carol") == []  # un-registered on the way out


async def test_answer_records_a_sipp_call_and_exits_after_it(
    sipp: Sipp, home: Path, tmp_path: Path
) -> None:
    port = free_port("udp")
    recording = tmp_path / "message.wav"
    server = start_voip(
        "answer", "--listen", f"127.0.0.1:{port}", "--calls", "1", "--record", str(recording),
        "--user", "carol", env=clean_environment(home),
    )  # fmt: skip
    await until_listening(server, port)
    result = await sipp.run("uac_call_audio", ("127.0.0.1", port), service="carol", calls=1)
    assert result.ok, result.report()
    run = await asyncio.wait_for(server, TIMEOUT)
    assert run.returncode == ExitCode.OK, run
    assert rms(recording) > 300  # SIPp's PCMA pcap
    assert "call 1 from sip:" in run.stderr


def screen_text(output: str) -> str:
    """What a terminal shows of ``output``, its control sequences taken out."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output)


@pytest.mark.parametrize("command", ["answer", "serve"])
async def test_live_status_shows_a_line_per_active_call_with_peer_state_codec_and_loss(
    command: str, sipp: Sipp, home: Path, tmp_path: Path
) -> None:
    port = free_port("udp")
    bot = ["--bot", f"{BOTS}:echo"] if command == "serve" else []
    # --live draws the status even though stderr is a pipe here, as on a terminal
    server = start_voip(
        command, *bot, "--listen", f"127.0.0.1:{port}", "--calls", "2", "--live",
        "--user", "carol",
        env=clean_environment(home, COLUMNS="200", VOIP_TEST_BOT_LOG=str(tmp_path / "bot.jsonl")),
    )  # fmt: skip
    await until_listening(server, port)
    # two calls at once, each 2 s of SIPp's PCMA pcap
    result = await sipp.run(
        "uac_call_audio", ("127.0.0.1", port), service="carol", calls=2, rate=10
    )
    run = await asyncio.wait_for(server, TIMEOUT)
    assert result.ok, f"{result.report()}\n{run}"
    assert run.returncode == ExitCode.OK, run
    screen = screen_text(run.stderr)
    assert "2 active calls" in screen, run
    for number in (1, 2):
        line = (
            rf"● call {number}  sip:sipp@127\.0\.0\.1(?::\d+)?  00:0\d\.\d  answered\s+PCMA  "
            r"sent \d+  received (\d+)  loss (\d+\.\d)%  jitter \d+\.\d ms"
        )
        frames = re.findall(line, screen)
        assert frames, f"no live line for call {number}:\n{screen}"
        received, loss = frames[-1]
        assert int(received) > 10 and float(loss) == 0.0  # SIPp's audio, none lost


def readme_bot(path: Path) -> Path:
    """The README's bot, as a module file."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in readme.split("```python\n")[1:]]
    (code,) = [b for b in blocks if "async def handle(session)" in b]
    path.write_text(code, encoding="utf-8")
    return path


async def test_the_readme_bot_greets_and_echoes_a_caller(
    home: Path, tmp_path: Path, tone_wav: Path
) -> None:
    bot = readme_bot(tmp_path / "mybot.py")
    port = free_port("udp")
    server = start_voip(
        "serve", "--bot", f"{bot}:handle", "--listen", f"127.0.0.1:{port}", "--calls", "1",
        env=clean_environment(home),
    )  # fmt: skip
    await until_listening(server, port)
    recording = tmp_path / "heard.wav"
    run = await voip(
        "call", f"sip:bot@127.0.0.1:{port}", "--play", str(tone_wav), "--duration", "4",
        "--record", str(recording), "--listen", "127.0.0.1:0", env=clean_environment(home),
    )  # fmt: skip
    assert run.returncode == ExitCode.OK, run
    served = await asyncio.wait_for(server, TIMEOUT)
    assert served.returncode == ExitCode.OK, served
    with wave.open(str(recording), "rb") as wav:
        pcm = wav.readframes(wav.getnframes())
    second = 16000
    assert audioop.rms(pcm[: second // 2], 2) > 1000  # the greeting's tone
    assert audioop.rms(pcm[second + second // 2 : 3 * second], 2) > 1000  # our tone, echoed


@pytest.mark.parametrize("transport", ["ws", "wss"])
async def test_call_over_websocket_reaches_baresip_through_kamailio_and_audio_goes_both_ways(
    *,
    transport: str,
    kamailio_websocket: Kamailio,
    loopback_pki: LoopbackPki,
    baresip_factory: Callable[..., Baresip],
    home: Path,
    tmp_path: Path,
    tone_wav: Path,
) -> None:
    # a SIP WebSocket client (RFC 7118): no listener; the one connection it opens to
    # Kamailio's websocket module carries the call both ways (407, the 2xx, the BYE)
    kamailio = kamailio_websocket
    bob = baresip_factory("bob", registrar=kamailio)
    await kamailio.wait_registered("bob")
    recording, trace = tmp_path / "bob.wav", tmp_path / "call.jsonl"
    env = clean_environment(home, VOIP_PASSWORD=kamailio.users["alice"])
    run = await voip(
        "call", "bob", "--user", "alice", "--domain", kamailio.domain, "--transport", transport,
        "--ca", str(loopback_pki.cafile), "--proxy", kamailio.outbound_proxy(transport),
        "--play", str(tone_wav), "--record", str(recording), "--duration", "3",
        "--trace", str(trace), env=env,
    )  # fmt: skip
    assert run.returncode == ExitCode.OK, run
    assert f"from its own {transport.upper()} connections" in run.stderr
    records = list(read_jsonl(trace))
    assert [str(r) for r in records][:4] == ["> INVITE", "< 407", "> ACK", "> INVITE"]
    assert {(r.peer.transport, r.peer.port) for r in records} == {
        (transport, kamailio.port(transport))
    }
    invite = records[3].message
    assert isinstance(invite, Request) and invite.via[0].transport == transport.upper()
    await audio_went_both_ways(bob, recording)


@pytest.mark.parametrize(
    ("mode", "modules", "mediaenc", "keyed"),
    [
        ("dtls", ("dtls_srtp.so",), "mediaenc=dtls_srtp", "SRTP keyed by DTLS"),
        ("required", ("srtp.so",), "mediaenc=srtp-mand", "SRTP keyed by SDES"),
    ],
    ids=["dtls", "sdes"],
)
async def test_call_with_srtp_reaches_baresip_and_the_report_names_the_keying(
    *,
    mode: str,
    modules: tuple[str, ...],
    mediaenc: str,
    keyed: str,
    baresip_factory: Callable[..., Baresip],
    home: Path,
    tmp_path: Path,
    tone_wav: Path,
) -> None:
    bob = baresip_factory("bob", modules=modules, account_params=mediaenc)
    recording = tmp_path / "bob.wav"
    run = await voip(
        "call", bob.uri(), "--srtp", mode, "--listen", "127.0.0.1:0", "-v",
        "--play", str(tone_wav), "--record", str(recording), "--duration", "2",
        env=clean_environment(home),
    )  # fmt: skip
    assert run.returncode == ExitCode.OK, run
    profile = "UDP/TLS/RTP/SAVP" if mode == "dtls" else "RTP/SAVP"
    assert "m=audio " in run.stderr and f" {profile} " in run.stderr  # -v: our offer
    (first,) = [line for line in run.stdout.splitlines() if line.startswith("Call quality: ")]
    assert re.search(rf", {keyed}, AES_CM_128_HMAC_SHA1_(80|32)$", first), first
    await audio_went_both_ways(bob, recording)


async def test_call_requiring_srtp_to_a_peer_without_it_is_refused_and_says_so(
    baresip_factory: Callable[..., Baresip], home: Path
) -> None:
    bob = baresip_factory("bob")  # no SRTP module: RTP/SAVP is a profile it cannot take
    run = await voip(
        "call", bob.uri(), "--srtp", "required", "--listen", "127.0.0.1:0",
        env=clean_environment(home),
    )  # fmt: skip
    assert run.returncode == ExitCode.REJECTED, run
    assert "488" in run.stderr, run
