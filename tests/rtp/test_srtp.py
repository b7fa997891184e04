"""SDES key material and SRTP policy (RFC 4568, RFC 3711), without sockets."""

from __future__ import annotations

import base64
from dataclasses import replace

import pylibsrtp
import pytest
from aiortc.rtp import RtcpPacket, RtpPacket

import sdp
from sdp import Crypto, KeyParam, NegotiatedMedia
from voip.negotiation import Negotiation, default_audio
from voip.rtp.rtcp import RtcpSession
from voip.rtp.sender import RtpSender
from voip.rtp.srtp import (
    SUITES,
    SrtpError,
    SrtpMode,
    SrtpRequired,
    SrtpTransform,
    check_agreed,
    check_crypto,
    local_crypto,
)

PAYLOAD = bytes(range(160))


def _negotiation(mode: SrtpMode, port: int = 4000) -> Negotiation:
    return Negotiation("127.0.0.1", [default_audio(port, srtp=mode)], srtp=mode)


def _media(local: Crypto | None, remote: Crypto | None) -> NegotiatedMedia:
    return NegotiatedMedia(0, "audio", True, "RTP/SAVP", local_crypto=local, remote_crypto=remote)


def _rtp(sender: RtpSender) -> bytes:
    data = sender.packet(0, PAYLOAD)
    sender.advance(160)
    return data


# --- key material (RFC 4568 §6.1, §6.2) ----------------------------------------------------


def test_local_keys_are_30_octets_of_key_and_salt_per_suite_tagged_in_order() -> None:
    keys = local_crypto()
    assert [(c.tag, c.crypto_suite) for c in keys] == [
        (1, "AES_CM_128_HMAC_SHA1_80"),
        (2, "AES_CM_128_HMAC_SHA1_32"),
    ]
    for crypto in keys:
        assert len(check_crypto(crypto)) == 30
        assert str(crypto.key_params[0]).startswith("inline:")
    assert keys[0].key_params != keys[1].key_params


def test_every_call_draws_fresh_keys() -> None:
    first = {check_crypto(c) for c in local_crypto()}
    second = {check_crypto(c) for c in local_crypto()}
    assert not first & second


def test_local_keys_survive_the_sdp_round_trip() -> None:
    for crypto in local_crypto():
        assert check_crypto(Crypto.parse(str(crypto))) == check_crypto(crypto)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("1 AES_256_CM_HMAC_SHA1_80 inline:" + "A" * 62, "not supported"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(bytes(16)).decode(), "30 octets"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:" + "A" * 40 + "|2^20|1:4", "MKI"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:" + "A" * 40 + ";inline:" + "B" * 40, "MKI"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:" + "A" * 40 + " UNENCRYPTED_SRTP", "session"),
        ("1 AES_CM_128_HMAC_SHA1_80 uri:https://keys.example/1", "key method"),
    ],
)
def test_unusable_crypto_attributes_raise_a_typed_error(value: str, reason: str) -> None:
    with pytest.raises(SrtpError, match=reason):
        check_crypto(Crypto.parse(value))


def test_an_unusable_crypto_is_an_offer_answer_error_for_488() -> None:
    assert issubclass(SrtpError, sdp.OfferAnswerError)
    assert issubclass(SrtpRequired, SrtpError)


# --- SRTP and SRTCP (RFC 3711) --------------------------------------------------------------


def test_protected_rtp_has_an_encrypted_payload_and_an_authentication_tag() -> None:
    a, b = local_crypto(), local_crypto()
    for index, tag_size in ((0, 10), (1, 4)):  # HMAC_SHA1_80 / _32
        sender = SrtpTransform(a[index], b[index])
        receiver = SrtpTransform(b[index], a[index])
        plain = _rtp(RtpSender())
        protected = sender.protect(plain)
        assert len(protected) == len(plain) + tag_size
        assert protected[:12] == plain[:12]  # the header stays in the clear
        assert PAYLOAD not in protected
        assert receiver.unprotect(protected) == plain


def test_a_packet_under_another_key_fails_authentication() -> None:
    ours, theirs, wrong = local_crypto()[0], local_crypto()[0], local_crypto()[0]
    protected = SrtpTransform(theirs, ours).protect(_rtp(RtpSender()))
    with pytest.raises(pylibsrtp.Error, match="authentication"):
        SrtpTransform(ours, wrong).unprotect(protected)


def test_a_tampered_payload_fails_authentication() -> None:
    ours, theirs = local_crypto()[0], local_crypto()[0]
    protected = bytearray(SrtpTransform(theirs, ours).protect(_rtp(RtpSender())))
    protected[20] ^= 1
    with pytest.raises(pylibsrtp.Error, match="authentication"):
        SrtpTransform(ours, theirs).unprotect(bytes(protected))


def test_a_replayed_packet_is_refused() -> None:
    ours, theirs = local_crypto()[0], local_crypto()[0]
    protected = SrtpTransform(theirs, ours).protect(_rtp(RtpSender()))
    receiver = SrtpTransform(ours, theirs)
    receiver.unprotect(protected)
    with pytest.raises(pylibsrtp.Error, match="replay"):
        receiver.unprotect(protected)


def test_srtcp_protects_reports_and_they_come_back_plain() -> None:
    ours, theirs = local_crypto()[1], local_crypto()[1]
    sender = RtpSender()
    report = RtcpSession(sender, "voip@test", 8000).report(1.0, 1_700_000_000.0, 0, [])
    protected = SrtpTransform(ours, theirs).protect_rtcp(report)
    assert len(protected) > len(report)  # E flag + SRTCP index + tag (RFC 3711 §3.4)
    assert b"voip@test" not in protected
    plain = SrtpTransform(theirs, ours).unprotect_rtcp(protected)
    assert plain == report
    assert RtcpPacket.parse(plain)


def test_following_the_same_keys_keeps_the_sessions() -> None:
    ours, theirs = local_crypto()[0], local_crypto()[0]
    transform = SrtpTransform.follow(None, _media(ours, theirs))
    assert transform is not None
    assert SrtpTransform.follow(transform, _media(ours, theirs)) is transform
    assert SrtpTransform.follow(transform, _media(None, None)) is None


def test_a_new_peer_key_rekeys_the_receiver_and_keeps_the_sender() -> None:
    ours, theirs, new = local_crypto()[0], local_crypto()[0], local_crypto()[0]
    sender = RtpSender()
    transform = SrtpTransform.follow(None, _media(ours, theirs))
    assert transform is not None
    peer = SrtpTransform(theirs, ours)
    first = transform.protect(_rtp(sender))
    assert peer.unprotect(first)
    rekeyed = SrtpTransform.follow(transform, _media(ours, new))
    assert rekeyed is not None and rekeyed is not transform
    # the sender goes on with its rollover state: the peer's receiver accepts the next one
    second = RtpPacket.parse(peer.unprotect(rekeyed.protect(_rtp(sender))))
    assert second.sequence_number == RtpPacket.parse(first).sequence_number + 1
    new_peer = SrtpTransform(new, ours)
    assert rekeyed.unprotect(new_peer.protect(_rtp(RtpSender()))) is not None
    with pytest.raises(pylibsrtp.Error):
        rekeyed.unprotect(SrtpTransform(theirs, ours).protect(_rtp(RtpSender())))


# --- offer/answer policy (RFC 4568 §7) ------------------------------------------------------


def test_required_offers_rtp_savp_with_one_key_per_suite() -> None:
    offer = sdp.parse(_negotiation(SrtpMode.REQUIRED).create_offer())
    media = offer.media[0]
    assert media.proto == "RTP/SAVP"
    assert [c.crypto_suite for c in media.crypto] == list(SUITES)


def test_optional_offers_rtp_avp_with_keys_and_off_offers_none() -> None:
    optional = sdp.parse(_negotiation(SrtpMode.OPTIONAL).create_offer()).media[0]
    assert optional.proto == "RTP/AVP" and len(optional.crypto) == 2
    off = sdp.parse(_negotiation(SrtpMode.OFF).create_offer()).media[0]
    assert off.proto == "RTP/AVP" and not off.crypto


@pytest.mark.parametrize(
    ("offerer", "answerer"),
    [
        (SrtpMode.REQUIRED, SrtpMode.REQUIRED),
        (SrtpMode.REQUIRED, SrtpMode.OPTIONAL),
        (SrtpMode.OPTIONAL, SrtpMode.OPTIONAL),
        (SrtpMode.OPTIONAL, SrtpMode.REQUIRED),
    ],
)
def test_both_sides_agree_on_crossed_keys_with_the_offer_tag(
    offerer: SrtpMode, answerer: SrtpMode
) -> None:
    caller, callee = _negotiation(offerer), _negotiation(answerer, 5000)
    offer = caller.create_offer()
    if offerer is SrtpMode.OPTIONAL and answerer is SrtpMode.REQUIRED:
        # a best-effort RTP/AVP offer is plain RTP to an agent that requires RTP/SAVP
        with pytest.raises(SrtpRequired):
            callee.receive_offer(offer)
        return
    answer = callee.receive_offer(offer)
    caller.receive_answer(answer)
    mine, theirs = caller.agreed[0], callee.agreed[0]
    assert mine.local_crypto is not None and mine.remote_crypto is not None
    assert mine.local_crypto == theirs.remote_crypto
    assert mine.remote_crypto == theirs.local_crypto
    assert mine.local_crypto.tag == 1  # the offerer's first suite
    assert check_crypto(mine.local_crypto) != check_crypto(mine.remote_crypto)


def test_an_off_answerer_ignores_best_effort_keys_and_both_run_plain_rtp() -> None:
    caller, callee = _negotiation(SrtpMode.OPTIONAL), _negotiation(SrtpMode.OFF, 5000)
    answer = callee.receive_offer(caller.create_offer())
    assert b"a=crypto" not in answer
    agreed = caller.receive_answer(answer)
    assert agreed[0].accepted and agreed[0].local_crypto is None
    assert SrtpTransform.follow(None, agreed[0]) is None


def test_required_answerer_refuses_a_plain_offer() -> None:
    callee = _negotiation(SrtpMode.REQUIRED, 5000)
    with pytest.raises(SrtpRequired, match="SRTP is required"):
        callee.receive_offer(_negotiation(SrtpMode.OFF).create_offer())
    assert callee.agreed == []


def test_required_offerer_refuses_a_plain_answer_and_keeps_no_offer() -> None:
    caller = _negotiation(SrtpMode.REQUIRED)
    offer = sdp.parse(caller.create_offer())
    plain = bytes(offer).replace(b"RTP/SAVP", b"RTP/AVP")
    plain = b"".join(line for line in plain.splitlines(True) if not line.startswith(b"a=crypto"))
    with pytest.raises(SrtpRequired, match="plain RTP/AVP"):
        caller.receive_answer(plain.replace(b"o=voip", b"o=peer"))
    assert caller.offer is None and caller.agreed == []


def test_optional_offerer_takes_a_plain_answer() -> None:
    caller = _negotiation(SrtpMode.OPTIONAL)
    offer = caller.create_offer()
    plain = b"".join(line for line in offer.splitlines(True) if not line.startswith(b"a=crypto"))
    agreed = caller.receive_answer(plain)
    assert agreed[0].accepted and agreed[0].remote_crypto is None


def test_an_answer_with_an_unusable_key_is_refused() -> None:
    caller = _negotiation(SrtpMode.REQUIRED)
    offer = caller.create_offer()
    lines = offer.decode().splitlines(True)
    short = base64.b64encode(bytes(16)).decode()
    answer = "".join(
        f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{short}\r\n"
        if line.startswith("a=crypto:1")
        else line
        for line in lines
        if not line.startswith("a=crypto:2")
    )
    with pytest.raises(SrtpError, match="30 octets"):
        caller.receive_answer(answer.encode())


def test_a_re_offer_keeps_the_local_key() -> None:
    caller, callee = _negotiation(SrtpMode.REQUIRED), _negotiation(SrtpMode.REQUIRED, 5000)
    caller.receive_answer(callee.receive_offer(caller.create_offer()))
    first = caller.agreed[0].local_crypto
    caller.hold = True
    caller.receive_answer(callee.receive_offer(caller.create_offer()))
    assert caller.agreed[0].local_crypto == first
    assert callee.agreed[0].remote_crypto == first


def test_check_agreed_ignores_refused_streams() -> None:
    refused = NegotiatedMedia(0, "video", False, "RTP/AVP")
    check_agreed([refused], SrtpMode.REQUIRED)
    with pytest.raises(SrtpRequired):
        check_agreed([refused, replace(refused, media="audio", accepted=True)], SrtpMode.REQUIRED)


def test_key_param_inline_is_base64_of_key_and_salt() -> None:
    material = bytes(range(30))
    crypto = Crypto(1, "AES_CM_128_HMAC_SHA1_80", (KeyParam.inline(material),))
    assert check_crypto(crypto) == material
