"""DTLS-SRTP (RFC 5763, RFC 5764) with baresip's ``dtls_srtp`` media encryption module.

baresip 1.0 with ``mediaenc=dtls_srtp`` offers ``UDP/TLS/RTP/SAVP`` with a session-level
``a=fingerprint`` (sha-256) and ``a=setup:actpass``, answers ``a=setup:active`` and runs
one handshake per component (RTP and RTCP ports, or one with rtcp-mux). Speech goes both
ways in one call, scored as over SDES (support.quality.speech_both_ways); a certificate
that is not the one the SDP names gives no keys, no audio and a counted failure.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.peers import Baresip, Kamailio, Linphone
from support.quality import (
    LINPHONE_SECONDS,
    assert_speech_both_ways,
    speech_both_ways,
    talk_with_linphone,
)
from support.ua import answer_calls, media_of

from sdp import NegotiatedMedia, Setup
from voip.call import Call
from voip.rtp import CallMedia, read_wav
from voip.rtp.dtls import DtlsCertificate, FingerprintMismatch
from voip.rtp.dtls_srtp import DtlsSrtp
from voip.rtp.srtp import SrtpMode
from voip.useragent import UserAgent

TIMEOUT = 15.0
DTLS_SRTP = ("dtls_srtp.so",)
MEDIAENC = "mediaenc=dtls_srtp"


def _keyed_by_dtls(call: Call, components: int) -> None:
    dtls = media_of(call).dtls
    assert dtls is not None and dtls.connected
    assert len(dtls.sessions) == components
    assert dtls.counters["failures"] == 0 and dtls.counters["malformed"] == 0


async def _until_keyed(call: Call) -> None:
    async with asyncio.timeout(TIMEOUT):
        while not (media_of(call).dtls is not None and media_of(call).dtls.connected):  # type: ignore[union-attr]
            await asyncio.sleep(0.02)


async def test_toolkit_calls_baresip_over_dtls_srtp_and_speech_goes_both_ways(
    speech_wav: Path, baresip_factory: Callable[..., Baresip], tmp_path: Path
) -> None:
    bob = baresip_factory("bob", modules=DTLS_SRTP, account_params=MEDIAENC)
    async with UserAgent("alice", srtp="dtls") as ua:
        await ua.listen("udp", "127.0.0.1", 0)
        call = await asyncio.wait_for(ua.call(bob.uri()), TIMEOUT)
        agreed = call.agreed[0]
        assert agreed.proto == "UDP/TLS/RTP/SAVP"
        assert agreed.setup is Setup.PASSIVE  # baresip answers active: it is the client
        await _until_keyed(call)
        _keyed_by_dtls(call, components=2)  # RTP and RTCP ports: a handshake each
        await speech_both_ways(bob, call, speech_wav, tmp_path)
        await bob.wait_for(r"DTLS-SRTP complete \(audio/RTP\)", timeout=1.0)


async def test_baresip_calls_the_toolkit_over_dtls_srtp_and_speech_goes_both_ways(
    speech_wav: Path, baresip_factory: Callable[..., Baresip], tmp_path: Path
) -> None:
    bob = baresip_factory("bob", modules=DTLS_SRTP, account_params=MEDIAENC)
    async with UserAgent("alice", srtp="dtls") as ua:
        endpoint = await ua.listen("udp", "127.0.0.1", 0)
        calls = answer_calls(ua, ring=False)
        await bob.dial(f"sip:alice@{endpoint.host}:{endpoint.port}")
        call = await asyncio.wait_for(calls.get(), TIMEOUT)
        # the toolkit answers active (RFC 5763 §5): its ClientHello starts each handshake
        assert call.agreed[0].setup is Setup.ACTIVE
        await _until_keyed(call)
        _keyed_by_dtls(call, components=2)
        await speech_both_ways(bob, call, speech_wav, tmp_path)


async def test_with_rtcp_mux_one_handshake_keys_rtp_and_rtcp(
    speech_wav: Path, baresip_factory: Callable[..., Baresip], tmp_path: Path
) -> None:
    bob = baresip_factory("bob", modules=DTLS_SRTP, account_params=MEDIAENC, rtcp_mux=True)
    async with UserAgent("alice", srtp="dtls-preferred") as ua:
        ua.rtcp_mux = True
        endpoint = await ua.listen("udp", "127.0.0.1", 0)
        calls = answer_calls(ua, ring=False)
        await bob.dial(f"sip:alice@{endpoint.host}:{endpoint.port}")
        call = await asyncio.wait_for(calls.get(), TIMEOUT)
        assert call.agreed[0].rtcp_mux
        await _until_keyed(call)
        _keyed_by_dtls(call, components=1)
        stream = media_of(call).stream
        assert stream.srtcp is stream.srtp
        await speech_both_ways(bob, call, speech_wav, tmp_path)


async def test_a_peer_certificate_that_is_not_its_sdp_fingerprint_gives_no_audio_and_a_reason(
    baresip_factory: Callable[..., Baresip], monkeypatch: pytest.MonkeyPatch
) -> None:
    bob = baresip_factory("bob", modules=DTLS_SRTP, account_params=MEDIAENC)
    stranger = DtlsCertificate.generate().fingerprint()
    update = CallMedia.update

    def with_another_fingerprint(self: CallMedia, agreed: list[NegotiatedMedia]) -> None:
        # as if baresip's SDP named a certificate other than the one it presents
        update(self, [dataclasses.replace(m, remote_fingerprints=(stranger,)) for m in agreed])

    monkeypatch.setattr(CallMedia, "update", with_another_fingerprint)
    async with UserAgent("alice", srtp="dtls") as ua:
        await ua.listen("udp", "127.0.0.1", 0)
        failures: asyncio.Queue[Exception] = asyncio.Queue()
        call = ua.dial(bob.uri())
        call.on("media_failed", failures.put_nowait)
        await asyncio.wait_for(call.answered(), TIMEOUT)
        error = await asyncio.wait_for(failures.get(), TIMEOUT)
        assert isinstance(error, FingerprintMismatch)
        reason = await asyncio.wait_for(call.ended(), TIMEOUT)
        stats = media_of(call).statistics()
        dtls = media_of(call).dtls
        assert dtls is not None and dtls.counters["failures"] >= 1
        assert media_of(call).stream.srtp is None
        assert stats.packets_received == 0 and stats.packets_sent == 0  # no audio at all
    # released with a BYE whose Reason says why (RFC 3326), or by baresip's own BYE
    # when its handshake failed first at our alert
    assert reason.by in ("provider", "remote")
    if reason.by == "provider":
        assert reason.status == 488 and "DTLS-SRTP failed" in reason.text
        assert isinstance(reason.error, FingerprintMismatch)
        await bob.wait_for('Reason: SIP;cause=488;text="DTLS-SRTP failed', timeout=5.0)


async def test_baresip_refuses_a_toolkit_certificate_that_is_not_its_sdp_fingerprint(
    baresip_factory: Callable[..., Baresip], monkeypatch: pytest.MonkeyPatch
) -> None:
    bob = baresip_factory("bob", modules=DTLS_SRTP, account_params=MEDIAENC)
    impostor = DtlsCertificate.generate()
    original = DtlsSrtp.__init__

    def presenting_another(self: DtlsSrtp, stream: object, certificate: object) -> None:
        original(self, stream, impostor)  # type: ignore[arg-type]

    # the SDP names the agent's certificate; the handshakes present another one
    monkeypatch.setattr(DtlsSrtp, "__init__", presenting_another)
    async with UserAgent("alice", srtp="dtls") as ua:
        await ua.listen("udp", "127.0.0.1", 0)
        call = await asyncio.wait_for(ua.call(bob.uri()), TIMEOUT)
        await bob.wait_for("fingerprint mismatch", timeout=TIMEOUT)
        reason = await asyncio.wait_for(call.ended(), TIMEOUT)  # baresip hangs up
        stats = media_of(call).statistics()
    assert reason.by == "remote"
    # baresip checks the fingerprint once its handshake is done, and hangs up: nothing
    # reaches the toolkit (what it may send meanwhile goes under keys baresip dropped)
    assert stats.packets_received == 0


async def _speech_with_linphone(
    call: Call, dave: Linphone, speech_wav: Path, tmp_path: Path
) -> None:
    """Speech both ways (linphone records into tmp_path/linphone.wav), the toolkit hangs
    up; both recordings scored as over plain RTP (test_linphone_interop.py)."""
    toolkit_heard = tmp_path / "toolkit.wav"
    speech = read_wav(speech_wav)[: int(2 * 8000 * LINPHONE_SECONDS)]
    await talk_with_linphone(call, speech, toolkit_heard)
    stats = media_of(call).statistics()
    await asyncio.wait_for(call.hangup(), TIMEOUT)
    await dave.wait_closed()
    assert stats.malformed == 0 and stats.packets_received >= LINPHONE_SECONDS * 50 * 0.9
    assert_speech_both_ways(speech_wav, toolkit_heard, tmp_path / "linphone.wav")


@pytest.fixture
def dave(
    kamailio: Kamailio, linphone_factory: Callable[..., Linphone], speech_wav: Path
) -> Linphone:
    """linphonec at Kamailio as dave with ``media_encryption=dtls``, mandatory (liblinphone
    offers and answers ``UDP/TLS/RTP/SAVP`` only), sending the speech file."""
    phone = linphone_factory(
        "dave",
        registrar=kamailio,
        sip_options={"media_encryption": "dtls", "media_encryption_mandatory": "1"},
    )
    phone.play(speech_wav)
    return phone


async def test_toolkit_calls_linphone_over_dtls_srtp_through_kamailio_and_speech_goes_both_ways(
    kamailio: Kamailio,
    agent: Callable[..., Any],
    dave: Linphone,
    speech_wav: Path,
    tmp_path: Path,
) -> None:
    dave.record(tmp_path / "linphone.wav")
    async with agent("alice") as ua:
        ua.srtp = SrtpMode.DTLS
        call: Call = await asyncio.wait_for(ua.call(kamailio.aor("dave")), TIMEOUT)
        await dave.wait_established()
        assert call.agreed[0].proto == "UDP/TLS/RTP/SAVP"
        assert call.agreed[0].setup is Setup.PASSIVE  # linphone answers active
        await _until_keyed(call)
        _keyed_by_dtls(call, components=2)
        await _speech_with_linphone(call, dave, speech_wav, tmp_path)


async def test_linphone_calls_the_toolkit_over_dtls_srtp_through_kamailio_and_speech_goes_both_ways(
    kamailio: Kamailio,
    agent: Callable[..., Any],
    dave: Linphone,
    speech_wav: Path,
    tmp_path: Path,
) -> None:
    async with agent("carol") as ua:
        ua.srtp = SrtpMode.DTLS
        calls = answer_calls(ua)
        await asyncio.wait_for(ua.register(kamailio.uri(), expires=300), TIMEOUT)
        dave.record(tmp_path / "linphone.wav")
        dave.call(kamailio.aor("carol"))
        call: Call = await asyncio.wait_for(calls.get(), TIMEOUT)
        await dave.wait_established()
        assert call.agreed[0].dtls and call.agreed[0].setup is Setup.ACTIVE
        await _until_keyed(call)
        await _speech_with_linphone(call, dave, speech_wav, tmp_path)
