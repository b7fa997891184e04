"""Fixtures for interop tests against real SIP peers on loopback.

kamailio_server  session: one kamailio (registrar + record-routing proxy, digest auth) on UDP and
                 TCP (one port) and TLS (another); users alice, bob, carol, dave (``.users``).
                 Registrations live in its memory for the whole session.
kamailio         the same kamailio with an empty location table: use this one in tests.
kamailio_factory session: start more kamailios with other options, e.g. ``auth_fail_403=True``.
loopback_pki     session: the CA (``.cafile``) and server certificate kamailio's TLS uses.
sipp             a ``Sipp`` for this test: ``await sipp.run(...)``, ``sipp.start(...)``,
                 ``await sipp.register(kamailio, user, contact)``.
speech_wav       session: five minutes of speech, 8 kHz mono 16-bit WAV.
wideband_speech_wav  session: five minutes of speech made at 16 kHz (mono 16-bit WAV) in
                 ``WIDEBAND_VOICE``, for wideband PESQ.
baresip_factory  ``baresip_factory("bob", registrar=kamailio)`` -> a started ``Baresip``.
linphone_factory ``linphone_factory("dave", registrar=kamailio)`` -> a started ``Linphone``.
agent            ``async with agent("alice", transport) as ua``: a toolkit UA for a Kamailio user.

Every peer is stopped by pid at the end of its fixture's scope, and anything left at the end of
the session. When a test fails, the logs of its peers are added to its report.
VOIP_INTEROP_DEBUG=1 makes kamailio log every request and reply it routes.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from support.peers import (
    WIDEBAND_VOICE,
    Baresip,
    Kamailio,
    Linphone,
    LoopbackPki,
    Phone,
    Sipp,
    make_loopback_pki,
    make_speech_wav,
    start_baresip,
    start_kamailio,
    start_linphonec,
    stop_all,
)
from support.peers._process import STARTED

from voip.sip import Credentials
from voip.transport import client_context, server_context
from voip.useragent import UserAgent

_FIRST_PEER = pytest.StashKey[int]()
P = TypeVar("P", bound=Phone)


@pytest.fixture(scope="session", autouse=True)
def _no_peer_survives() -> Iterator[None]:
    yield
    stop_all()


@pytest.fixture(autouse=True)
def _note_first_peer(request: pytest.FixtureRequest) -> None:
    request.node.stash[_FIRST_PEER] = len(STARTED)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed and _FIRST_PEER in item.stash:
        first = item.stash[_FIRST_PEER]
        # the test's own peers, and the session's (kamailio) that are still running
        peers = STARTED[first:] + [p for p in STARTED[:first] if p.alive()]
        if peers:
            lines = [f"{p.name} (pid {p.pid}): {p.log_path}" for p in peers]
            report.sections.append(("peers of this test", "\n".join(lines)))
            for peer in peers:
                report.sections.append((f"{peer.name} log", peer.log_tail(40)))
    return report


@pytest.fixture(scope="session")
def loopback_pki(tmp_path_factory: pytest.TempPathFactory) -> LoopbackPki:
    return make_loopback_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def kamailio_factory(
    tmp_path_factory: pytest.TempPathFactory, loopback_pki: LoopbackPki
) -> Iterator[Callable[..., Kamailio]]:
    """Start a kamailio with options of ``start_kamailio`` (TLS with the session's PKI)."""
    started: list[Kamailio] = []

    def start(**options: Any) -> Kamailio:
        options.setdefault("pki", loopback_pki)
        # VOIP_INTEROP_DEBUG=1: kamailio logs every request and reply it routes
        options.setdefault("debug", os.environ.get("VOIP_INTEROP_DEBUG") == "1")
        kam = start_kamailio(tmp_path_factory.mktemp("kamailio"), **options)
        started.append(kam)
        return kam

    yield start
    for kam in started:
        kam.stop()


@pytest.fixture(scope="session")
def kamailio_server(kamailio_factory: Callable[..., Kamailio]) -> Kamailio:
    return kamailio_factory()


def _fresh(server: Kamailio, which: str) -> Kamailio:
    """``server``, alive, its location table emptied of earlier tests' contacts."""
    if not server.process.alive():
        pytest.fail(f"the session's {which} has died\n{server.process.log_tail()}", pytrace=False)
    server.clear_location_sync()
    return server


@pytest.fixture
def kamailio(kamailio_server: Kamailio) -> Kamailio:
    """The session's kamailio, its location table emptied of earlier tests' contacts."""
    return _fresh(kamailio_server, "kamailio")


@pytest.fixture(scope="session")
def kamailio_websocket_server(kamailio_factory: Callable[..., Kamailio]) -> Kamailio:
    return kamailio_factory(websocket=True)


@pytest.fixture
def kamailio_websocket(kamailio_websocket_server: Kamailio) -> Kamailio:
    """A kamailio that also serves SIP over WebSocket (ws and wss, RFC 7118), started once
    per session beside the plain one, its location table emptied for each test."""
    return _fresh(kamailio_websocket_server, "websocket kamailio")


#: the Flow-Timer (s) in the 200s of ``kamailio_outbound``: short, so pings flow in a test
OUTBOUND_FLOW_TIMER = 2


@pytest.fixture(scope="session")
def kamailio_outbound_server(kamailio_factory: Callable[..., Kamailio]) -> Kamailio:
    return kamailio_factory(
        websocket=True, outbound=True, flow_timer=OUTBOUND_FLOW_TIMER, stun=True
    )


@pytest.fixture
def kamailio_outbound(kamailio_outbound_server: Kamailio) -> Kamailio:
    """A kamailio whose registrar supports SIP Outbound (RFC 5626, the outbound module;
    ``Flow-Timer: OUTBOUND_FLOW_TIMER``), also over ws, answering STUN on its SIP UDP
    port (the stun module), its location table emptied."""
    return _fresh(kamailio_outbound_server, "outbound kamailio")


@pytest.fixture
def sipp(tmp_path: Path) -> Iterator[Sipp]:
    runner = Sipp(tmp_path / "sipp")
    yield runner
    runner.stop_all()


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_speech_wav(tmp_path_factory.mktemp("audio") / "speech-8k.wav")


@pytest.fixture(scope="session")
def wideband_speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "speech-16k.wav"
    return make_speech_wav(path, rate=16000, voice=WIDEBAND_VOICE)


def _phones(
    start_phone: Callable[..., P], workdir: Path, **defaults: Any
) -> Iterator[Callable[..., P]]:
    started: list[P] = []

    def start(user: str, **options: Any) -> P:
        phone = start_phone(
            workdir / f"{user}-{len(started)}", user=user, **{**defaults, **options}
        )
        started.append(phone)
        return phone

    yield start
    for phone in started:
        phone.stop()


@pytest.fixture
def baresip_factory(tmp_path: Path, speech_wav: Path) -> Iterator[Callable[..., Baresip]]:
    """``start(user, registrar=kamailio or None, **options of start_baresip)``."""
    yield from _phones(start_baresip, tmp_path / "baresip", audio_file=speech_wav)


@pytest.fixture
def linphone_factory(tmp_path: Path) -> Iterator[Callable[..., Linphone]]:
    """``start(user, registrar=kamailio or None, **options of start_linphonec)``."""
    yield from _phones(start_linphonec, tmp_path / "linphonec")


@pytest.fixture
def agent(kamailio: Kamailio, loopback_pki: LoopbackPki) -> Callable[..., object]:
    """``async with agent("alice", transport) as ua``: a toolkit UA for a Kamailio user,
    listening on ``transport`` at 127.0.0.1 and sending through Kamailio."""

    @asynccontextmanager
    async def start(user: str, transport: str = "udp") -> AsyncIterator[UserAgent]:
        ua = UserAgent(
            user,
            domain=kamailio.domain,
            credentials=[Credentials(user, kamailio.users[user])],
            outbound_proxy=kamailio.outbound_proxy(transport),
            tls_client=client_context(loopback_pki.cafile),
            tls_server=server_context(loopback_pki.certfile, loopback_pki.keyfile),
        )
        await ua.listen(transport, "127.0.0.1", 0)
        try:
            yield ua
        finally:
            await ua.close()

    return start
