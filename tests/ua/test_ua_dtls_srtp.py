"""DTLS-SRTP (RFC 5763, RFC 5764) between two agents on loopback: the handshake on the
RTP port itself, audio both ways under the keys it exports, the fingerprint of the SDP
checked, re-INVITEs that keep or restart the association, bad DTLS dropped and counted."""

from __future__ import annotations

import asyncio

import pytest
from support.session import connect as connect_sessions
from support.ua import (
    TIMEOUT,
    audio_both_ways,
    audio_both_ways_authenticated,
    connected,
    media_of,
    refusals,
    srtp_agents,
    srtp_of,
    uri_of,
)

from sdp import Fingerprint, Setup
from voip.call import Call
from voip.rtp.dtls import DtlsCertificate, DtlsError, FingerprintMismatch
from voip.rtp.dtls_srtp import DtlsSrtp
from voip.session import primitives as p
from voip.useragent import RequestFailed


def _dtls(call: Call) -> DtlsSrtp:
    dtls = media_of(call).dtls
    assert dtls is not None
    return dtls


async def _keyed(*calls: Call) -> None:
    """Until every call's DTLS-SRTP handshakes are done."""
    async with asyncio.timeout(TIMEOUT):
        while not all(_dtls(call).connected for call in calls):
            await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    ("caller_mode", "callee_mode", "proto"),
    [
        ("dtls", "dtls", "UDP/TLS/RTP/SAVP"),
        ("dtls", "optional", "UDP/TLS/RTP/SAVP"),  # accepted as the offer keys it
        ("dtls-preferred", "required", "UDP/TLS/RTP/SAVP"),
        ("dtls-preferred", "dtls-preferred", "UDP/TLS/RTP/SAVP"),
        ("required", "dtls-preferred", "RTP/SAVP"),  # SDES offer: SDES answer
    ],
)
async def test_audio_flows_both_ways_under_the_keying_the_offer_chose(
    caller_mode: str, callee_mode: str, proto: str
) -> None:
    async with srtp_agents(caller_mode, callee_mode) as (alice, bob):
        caller, callee = await connected(alice, bob)
        agreed = media_of(caller).agreed
        assert agreed is not None and agreed.proto == proto
        if agreed.dtls:
            await _keyed(caller, callee)
            # RFC 5763 §5: the answerer is active (the DTLS client), the offerer passive
            assert agreed.setup is Setup.PASSIVE
            assert media_of(callee).agreed.setup is Setup.ACTIVE  # type: ignore[union-attr]
            assert srtp_of(caller).local == srtp_of(callee).remote
        await audio_both_ways_authenticated(caller, callee)


async def test_the_offer_carries_the_agents_fingerprint_and_actpass() -> None:
    async with srtp_agents("dtls", "dtls") as (alice, bob):
        caller, _ = await connected(alice, bob)
        offer = caller.negotiation.local
        assert offer is not None
        media = offer.media[0]
        assert media.proto == "UDP/TLS/RTP/SAVP"
        assert media.setup is Setup.ACTPASS
        assert media.fingerprints == [alice.media.certificate.fingerprint()]
        assert media.tls_id and not media.crypto  # no SDES keys next to DTLS
        await caller.hangup()


async def test_srtcp_keyed_by_the_rtcp_ports_own_handshake_without_rtcp_mux() -> None:
    async with srtp_agents("dtls", "dtls") as (alice, bob):
        caller, callee = await connected(alice, bob)
        await _keyed(caller, callee)
        assert not media_of(caller).stream.rtcp_mux
        assert set(_dtls(caller).sessions) == {False, True}  # RFC 5764 §4.1: one each
        stream = media_of(callee).stream
        assert stream.srtcp is not None and stream.srtcp is not stream.srtp
        reports: asyncio.Queue[object] = asyncio.Queue()
        media_of(callee).on("rtcp", reports.put_nowait)
        await asyncio.wait_for(reports.get(), TIMEOUT)
        assert media_of(callee).statistics().rtcp_received >= 1  # unprotected: it authenticated
        await caller.hangup()


async def test_srtcp_shares_the_rtp_keys_with_rtcp_mux() -> None:
    async with srtp_agents("dtls", "dtls") as (alice, bob):
        alice.rtcp_mux = bob.rtcp_mux = True  # RFC 5761: offered and answered
        caller, callee = await connected(alice, bob)
        await _keyed(caller, callee)
        stream = media_of(caller).stream
        assert stream.rtcp_mux
        assert set(_dtls(caller).sessions) == {False}  # one association, on the RTP port
        assert stream.srtcp is stream.srtp
        reports: asyncio.Queue[object] = asyncio.Queue()
        media_of(callee).on("rtcp", reports.put_nowait)
        await audio_both_ways(caller, callee)
        await asyncio.wait_for(reports.get(), TIMEOUT)
        assert media_of(callee).statistics().rtcp_received >= 1  # unprotected: it authenticated
        await caller.hangup()


async def test_a_certificate_that_is_not_the_sdp_fingerprint_releases_the_call_with_a_reason() -> (
    None
):
    async with srtp_agents("dtls", "dtls") as (alice, bob):
        answered: asyncio.Queue[Call] = asyncio.Queue()

        async def on_call(call: Call) -> None:
            await call.accept()
            answered.put_nowait(call)

        bob.on("incoming_call", on_call)
        # bob's SDP names the agent's certificate; its handshakes present another one
        impostor = DtlsCertificate.generate()
        original = DtlsSrtp.__init__

        def presenting_another(self: DtlsSrtp, stream: object, certificate: object) -> None:
            mine = certificate is bob.media.certificate
            original(self, stream, impostor if mine else certificate)  # type: ignore[arg-type]

        failures: asyncio.Queue[Exception] = asyncio.Queue()
        caller = alice.dial(uri_of(bob))
        caller.on("media_failed", failures.put_nowait)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(DtlsSrtp, "__init__", presenting_another)
            await asyncio.wait_for(caller.answered(), TIMEOUT)
            callee = await asyncio.wait_for(answered.get(), TIMEOUT)
        # the caller finds the mismatch; its alert fails the callee's handshake as well
        assert isinstance(await asyncio.wait_for(failures.get(), TIMEOUT), FingerprintMismatch)
        reasons = [await asyncio.wait_for(call.ended(), TIMEOUT) for call in (caller, callee)]
        assert media_of(caller).stream.srtp is None  # no keys, no audio
        assert media_of(caller).statistics().packets_received == 0
        assert _dtls(caller).failures == 2  # the RTP port's association and the RTCP port's
        assert failures.empty()  # told once
        # released by a BYE with a Reason (RFC 3326), from whichever end sent it first
        released = [reason for reason in reasons if reason.by == "provider"]
        assert released
        assert all(r.status == 488 and "DTLS-SRTP failed" in r.text for r in released)
        assert all(isinstance(r.error, DtlsError) for r in released)


async def test_dtls_required_callee_refuses_an_sdes_offer_with_488() -> None:
    async with srtp_agents("required", "dtls") as (alice, bob):
        errors = refusals(bob)
        with pytest.raises(RequestFailed) as refused:
            await asyncio.wait_for(alice.call(uri_of(bob)), TIMEOUT)
        assert refused.value.status == 488
        error = await asyncio.wait_for(errors.get(), TIMEOUT)
        assert "DTLS-SRTP is required" in str(error)


async def test_a_plain_callee_refuses_a_dtls_offer_with_488() -> None:
    async with srtp_agents("dtls", "off") as (alice, bob):
        refusals(bob)
        with pytest.raises(RequestFailed) as refused:
            await asyncio.wait_for(alice.call(uri_of(bob)), TIMEOUT)
        assert refused.value.status == 488


async def test_a_re_invite_with_the_same_fingerprint_keeps_the_association() -> None:
    async with srtp_agents("dtls", "dtls") as (alice, bob):
        caller, callee = await connected(alice, bob)
        await _keyed(caller, callee)
        sessions = dict(_dtls(caller).sessions)
        before = srtp_of(caller)
        await asyncio.wait_for(caller.hold(), TIMEOUT)
        await asyncio.wait_for(caller.resume(), TIMEOUT)
        assert _dtls(caller).sessions == sessions  # RFC 5763 §5: the same association
        assert srtp_of(caller) is before
        await audio_both_ways(caller, callee)
        await caller.hangup()


async def test_a_re_invite_with_a_new_fingerprint_restarts_the_association() -> None:
    async with srtp_agents("dtls", "dtls") as (alice, bob):
        caller, callee = await connected(alice, bob)
        await _keyed(caller, callee)
        old = srtp_of(callee).remote
        # the caller moves to a new certificate: its re-offer says so (RFC 5763 §5)
        fresh = DtlsCertificate.generate()
        _dtls(caller).certificate = fresh
        caller.negotiation.media[0].fingerprints = [fresh.fingerprint()]
        await asyncio.wait_for(caller.reinvite(), TIMEOUT)
        await _keyed(caller, callee)
        assert srtp_of(callee).remote != old
        assert srtp_of(callee).remote == srtp_of(caller).local
        await audio_both_ways(caller, callee)
        await caller.hangup()


async def test_bad_dtls_datagrams_and_dtls_from_elsewhere_are_counted_and_dropped() -> None:
    async with srtp_agents("dtls", "dtls") as (alice, bob):
        caller, callee = await connected(alice, bob)
        await _keyed(caller, callee)
        # datagrams as the RTP socket hands them over: the kernel drops a stranger's once
        # the socket is connected to the peer (voip.rtp.poller), so that one is handed over
        # as an unconnected socket would, and so are the peer's, which need its socket
        stream = media_of(callee).stream
        stranger = ("127.0.0.1", 9)
        stream._on_rtp_socket(b"\x16\xfe\xfd" + bytes(20), stranger)
        peer = ("127.0.0.1", media_of(caller).stream.local_port)
        stream._on_rtp_socket(b"\x16\x01", peer)  # malformed, from the peer
        stream._on_rtp_socket(b"\x15\xfe\xfd" + bytes(8) + b"\x00\x02\x02\x28", peer)
        counters = _dtls(callee).counters
        assert counters["foreign"] == 1
        assert counters["malformed"] == 1
        assert counters["alerts"] == 1
        assert not caller.end_reason and not callee.end_reason  # the call goes on
        await audio_both_ways(caller, callee)
        await caller.hangup()


async def test_a_lost_client_hello_is_sent_again_on_the_loops_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    received = DtlsSrtp._on_datagram
    lost: list[bytes] = []

    def losing_the_first(
        self: DtlsSrtp, data: bytes, address: tuple[object, ...], rtcp: bool
    ) -> None:
        if not lost and not rtcp:
            lost.append(data)  # the first DTLS datagram to reach the RTP port of the caller
            return
        received(self, data, address, rtcp)

    monkeypatch.setattr(DtlsSrtp, "_on_datagram", losing_the_first)
    async with srtp_agents("dtls", "dtls") as (alice, bob):
        caller, callee = await connected(alice, bob)
        await _keyed(caller, callee)
        assert lost and lost[0][0] == 22  # a handshake record: the callee's ClientHello
        # RFC 6347 §4.2.4: the callee (the client) sent its flight again after its timer
        assert _dtls(callee).counters["retransmissions"] >= 1
        await audio_both_ways(caller, callee)
        await caller.hangup()


async def test_a_failed_handshake_is_an_s_p_exception_report_then_an_s_p_abort(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with srtp_agents("dtls", "dtls") as (alice, bob):
        impostor = DtlsCertificate.generate()
        original = DtlsSrtp.__init__

        def presenting_another(self: DtlsSrtp, stream: object, certificate: object) -> None:
            mine = certificate is bob.media.certificate
            original(self, stream, impostor if mine else certificate)  # type: ignore[arg-type]

        monkeypatch.setattr(DtlsSrtp, "__init__", presenting_another)
        caller, callee = await connect_sessions(alice, bob)
        report = await asyncio.wait_for(caller.wait_for(p.PExceptionReportIndication), TIMEOUT)
        assert report.status == 488 and "DTLS-SRTP failed" in report.reason
        abort = await asyncio.wait_for(caller.wait_for(p.PAbortIndication), TIMEOUT)
        assert abort.status == 488 and "DTLS-SRTP failed" in abort.reason
        await asyncio.wait_for(callee.call.ended(), TIMEOUT)


def test_a_fingerprint_parses_as_rfc_8122_writes_it() -> None:
    fingerprint = Fingerprint.parse("SHA-256 " + ":".join(["ab"] * 32))
    assert fingerprint.hash_function == "sha-256"
    assert str(fingerprint) == "sha-256 " + ":".join(["AB"] * 32)
