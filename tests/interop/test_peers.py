"""The peers' fixtures work: real peers against each other, no toolkit code involved."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.peers import Baresip, Kamailio, Linphone, LoopbackPki, Sipp, start_kamailio
from support.peers._process import bound_ports, port_in_use


async def test_sipp_registers_with_digest_auth_at_kamailio(kamailio: Kamailio, sipp: Sipp) -> None:
    contact = "sip:alice@127.0.0.1:39999"
    result = await sipp.register(kamailio, "alice", contact, expires=120)

    assert "SIP/2.0 401" in result.messages()
    contacts = await kamailio.contacts("alice")
    assert [c.address for c in contacts] == [contact]
    assert 0 < contacts[0].expires <= 120

    await sipp.register(kamailio, "alice", contact, expires=0)
    await kamailio.wait_unregistered("alice")


async def test_a_wrong_password_gets_403_with_auth_fail_403(
    kamailio_factory: Callable[..., Kamailio], sipp: Sipp
) -> None:
    strict = kamailio_factory(auth_fail_403=True)
    result = await sipp.run(
        "register",
        (strict.host, strict.udp_port),
        service="bob",
        auth=("bob", "not-" + strict.users["bob"]),
        timeout=5,
    )

    assert not result.ok
    assert "SIP/2.0 403 Forbidden" in result.messages()
    assert await strict.contacts("bob") == []


async def test_sipp_uac_calls_sipp_uas_through_kamailio_with_auth(
    kamailio: Kamailio, sipp: Sipp
) -> None:
    uas = await sipp.start_registered(kamailio, "bob", "uas_call", calls=1)

    uac = await sipp.call(kamailio, "alice", "bob", "uac_call")
    assert uac.ok, uac.report()
    assert uac.successful == 1
    assert "SIP/2.0 407" in uac.messages()
    assert "Record-Route:" in uac.messages()
    answered = await uas.wait()
    assert answered.ok, answered.report()


async def test_sipp_uac_gets_486_from_a_busy_sipp_uas(kamailio: Kamailio, sipp: Sipp) -> None:
    uas = await sipp.start_registered(kamailio, "carol", "uas_busy", calls=1)

    uac = await sipp.call(kamailio, "alice", "carol", "uac_busy")
    assert uac.ok, uac.report()
    assert (await uas.wait()).ok


async def test_sipp_uac_cancels_a_ringing_sipp_uas(kamailio: Kamailio, sipp: Sipp) -> None:
    uas = await sipp.start_registered(kamailio, "dave", "uas_ring_cancel", calls=1)

    uac = await sipp.call(kamailio, "alice", "dave", "uac_cancel", duration_ms=200)
    assert uac.ok, uac.report()
    assert "SIP/2.0 487" in uac.messages()
    assert (await uas.wait()).ok


async def test_baresip_registers_at_kamailio_and_answers_a_sipp_call(
    kamailio: Kamailio, sipp: Sipp, baresip_factory: Callable[..., Baresip]
) -> None:
    bob = baresip_factory("bob", registrar=kamailio)
    contacts = await kamailio.wait_registered("bob")
    assert contacts[0].user_agent.startswith("baresip")

    uac = await sipp.call(kamailio, "alice", "bob", "uac_call", rtp_echo=True)
    assert uac.ok, uac.report()
    await bob.wait_established()
    await bob.wait_closed()
    assert {p.name[-7:] for p in bob.recordings()} == {"enc.wav", "dec.wav"}


async def test_sipp_calls_baresip_directly_without_registrar(
    sipp: Sipp, baresip_factory: Callable[..., Baresip]
) -> None:
    carol = baresip_factory("carol")

    uac = await sipp.run("uac_call", f"127.0.0.1:{carol.sip_port}", service="carol")
    assert uac.ok, uac.report()
    await carol.wait_closed()


async def test_baresip_over_tls_calls_baresip_over_udp_with_hold_and_resume(
    kamailio: Kamailio, baresip_factory: Callable[..., Baresip]
) -> None:
    carol = baresip_factory("carol", registrar=kamailio, transport="tls")
    bob = baresip_factory("bob", registrar=kamailio)

    await carol.dial(kamailio.aor("bob"))
    await bob.wait_established()
    await carol.wait_established()
    # baresip 1.0 stops writing *-dec.wav after a hold and resume: the speech is checked on
    # what it decoded before the hold
    await asyncio.sleep(1.0)
    mark = bob.log_mark()
    await carol.hold()
    await bob.wait_for(r"a=sendonly", since=mark)
    mark = bob.log_mark()
    await carol.resume()
    await bob.wait_for(r"a=sendrecv", since=mark)
    await carol.hangup()
    await bob.wait_closed()
    await carol.wait_closed()

    for phone in (bob, carol):
        phone.stop()  # closes the recordings
        (received,) = phone.received_recordings()
        # at least half a second of the other's speech: 8000 bytes at 8 kHz, 16 bit, + header
        assert received.stat().st_size > 44 + 8000, phone.recordings()


async def test_sipp_uas_holds_and_resumes_a_call_from_baresip(
    kamailio: Kamailio, sipp: Sipp, baresip_factory: Callable[..., Baresip]
) -> None:
    uas = await sipp.start_registered(
        kamailio, "dave", "uas_hold_resume", calls=1, duration_ms=300, rtp_echo=True
    )
    alice = baresip_factory("alice", registrar=kamailio)

    mark = alice.log_mark()
    await alice.dial(kamailio.aor("dave"))
    await alice.wait_established(since=mark)
    # baresip traces SIP (-s): the resume re-INVITE from sipp carries o= version 3
    await alice.wait_for(r"o=sipp \d+ 3 IN IP4", since=mark)
    await alice.hangup()
    result = await uas.wait()
    assert result.ok, result.report()


async def test_sipp_sends_speech_that_baresip_decodes(
    kamailio: Kamailio, sipp: Sipp, baresip_factory: Callable[..., Baresip]
) -> None:
    bob = baresip_factory("bob", registrar=kamailio)

    uac = await sipp.call(kamailio, "alice", "bob", "uac_call_audio")
    assert uac.ok, uac.report()
    await bob.wait_closed()
    bob.stop()  # closes the recordings
    (received,) = bob.received_recordings()
    # 236 packets of 20 ms = 4.7 s and more at 8 kHz, 16 bit
    assert received.stat().st_size > 44 + 2 * 8000 * 4, bob.recordings()


async def test_linphonec_answers_sipp_and_calls_baresip_through_kamailio(
    kamailio: Kamailio,
    sipp: Sipp,
    linphone_factory: Callable[..., Linphone],
    baresip_factory: Callable[..., Baresip],
) -> None:
    dave = linphone_factory("dave", registrar=kamailio)
    bob = baresip_factory("bob", registrar=kamailio)

    uac = await sipp.call(kamailio, "alice", "dave", "uac_call", rtp_echo=True)
    assert uac.ok, uac.report()
    await dave.wait_closed()

    mark = dave.log_mark()
    dave.call(kamailio.aor("bob"))
    await dave.wait_established(since=mark)
    await bob.wait_established()
    dave.terminate()
    await bob.wait_closed()


def test_kamailio_tls_port_accepts_a_client_that_trusts_the_fixture_ca(
    kamailio: Kamailio, loopback_pki: LoopbackPki
) -> None:
    assert kamailio.tls_port is not None and kamailio.cafile == loopback_pki.cafile
    context = ssl.create_default_context(cafile=str(kamailio.cafile))
    with (
        socket.create_connection((kamailio.host, kamailio.tls_port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=kamailio.host) as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        port = tls.getsockname()[1]
        tls.sendall(
            (
                f"OPTIONS sip:{kamailio.host}:{kamailio.tls_port};transport=tls SIP/2.0\r\n"
                f"Via: SIP/2.0/TLS 127.0.0.1:{port};branch=z9hG4bK-tls-smoke;rport\r\n"
                "Max-Forwards: 70\r\n"
                "From: <sip:smoke@127.0.0.1>;tag=smoke\r\n"
                "To: <sip:127.0.0.1>\r\n"
                "Call-ID: tls-smoke@127.0.0.1\r\n"
                "CSeq: 1 OPTIONS\r\n"
                "Content-Length: 0\r\n\r\n"
            ).encode()
        )
        reply = tls.recv(4096).decode()
    assert reply.startswith("SIP/2.0 200 Keepalive"), reply


def test_kamailio_starts_without_tls_and_stops_by_pid(tmp_path: Path) -> None:
    kam = start_kamailio(tmp_path, children=1)
    try:
        assert kam.tls_port is None and kam.cafile is None
        assert kam.users.keys() >= {"alice", "bob", "carol", "dave"}
        assert os.getpgid(kam.pid) == kam.process.pid  # its workers share the group
    finally:
        kam.stop()
    assert not kam.process.alive()
    with pytest.raises(ProcessLookupError):
        os.killpg(kam.process.pid, 0)  # nothing of its process group is left


class PortTaken:
    """A port that another socket took after it was found free: the ``call``-th port
    ``module.function`` (free_port or free_port_range) gives is one this holds (``kind``
    "udp", or "tcp" listening); ``given`` lists every port that function gave."""

    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        module: object,
        function: str,
        *,
        call: int = 0,
        kind: str = "udp",
    ) -> None:
        self.socket = socket.socket(
            socket.AF_INET, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
        )
        self.socket.bind(("127.0.0.1", 0))
        if kind == "tcp":
            self.socket.listen()
        self.port: int = self.socket.getsockname()[1]
        self.given: list[int] = []
        found_free = getattr(module, function)

        def give(*args: Any, **kwargs: Any) -> int:
            port = self.port if len(self.given) == call else found_free(*args, **kwargs)
            self.given.append(port)
            return port

        monkeypatch.setattr(module, function, give)

    def close(self) -> None:
        self.socket.close()


def test_kamailio_started_on_a_port_taken_meanwhile_starts_again_on_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from support.peers import kamailio as module

    taken = PortTaken(monkeypatch, module, "free_port")
    try:
        kam = start_kamailio(tmp_path, children=1)
    finally:
        taken.close()
    try:
        assert len(taken.given) == 2 and taken.given[0] == taken.port
        assert kam.udp_port == taken.given[1] and port_in_use(kam.udp_port, "udp")
    finally:
        kam.stop()


@pytest.mark.parametrize(
    ("function", "call", "port"),
    [("free_port", 0, "port"), ("free_port_range", 0, "media_port"), ("free_port", 1, "control")],
    ids=["sip", "media", "control"],
)
def test_sipp_started_on_a_port_taken_meanwhile_starts_again_on_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, function: str, call: int, port: str
) -> None:
    """sipp exits with "Unable to bind main socket" (-p), "... audio RTP socket" (-mp) or
    "... remote control socket" (-cp), "(Address already in use)": started again."""
    from support.peers import sipp as module

    taken = PortTaken(monkeypatch, module, function, call=call)
    try:
        uas = module.start_sipp("uas_call", log_dir=tmp_path, calls=1)
    finally:
        taken.close()
    try:
        assert taken.given[call] == taken.port
        command = uas.command
        ports = {"port": command.port, "media_port": command.media_port}
        ports["control"] = command.control_port
        assert ports[port] in taken.given[call + 1 :] and ports[port] != taken.port
        assert command.bound() <= bound_ports(uas.pid)  # sipp's own sockets
    finally:
        uas.stop()


async def test_a_sipp_run_whose_port_was_taken_meanwhile_runs_again_on_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from support.peers import sipp as module

    uas = module.start_sipp("uas_call", log_dir=tmp_path / "uas", calls=1)
    taken = PortTaken(monkeypatch, module, "free_port")
    try:
        uac = await module.run_sipp("uac_call", uas.address, log_dir=tmp_path, service="sipp")
    finally:
        taken.close()
        uas.stop()
    assert uac.ok, uac.report()
    assert taken.given[0] == taken.port and f"-p {taken.port} " not in " ".join(uac.argv)


@pytest.mark.parametrize(("kind", "call"), [("udp", 0), ("tcp", 1)], ids=["sip", "ctrl_tcp"])
def test_baresip_started_on_a_port_taken_meanwhile_starts_again_on_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, speech_wav: Path, kind: str, call: int
) -> None:
    """baresip exits on "SIP Transport failed: Address already in use" (sip_listen) and
    runs on without its control port on "ctrl_tcp: failed to listen on TCP ... (Address
    already in use)": in both cases it is started again, on fresh ports."""
    from support.peers import baresip as module

    taken = PortTaken(monkeypatch, module, "free_port", call=call, kind=kind)
    try:
        phone = module.start_baresip(tmp_path, user="erin", audio_file=speech_wav)
    finally:
        taken.close()
    try:
        assert taken.given[call] == taken.port and len(taken.given) == 4
        assert taken.port not in (phone.sip_port, phone.ctrl_port)
        assert {("udp", phone.sip_port), ("tcp", phone.ctrl_port)} <= bound_ports(phone.pid)
    finally:
        phone.stop()
