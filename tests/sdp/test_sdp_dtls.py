"""DTLS-SRTP in SDP (RFC 5763 §5, RFC 8122 §5, RFC 4145 §4, RFC 8842): fingerprints,
setup roles and the offer/answer rules of ``UDP/TLS/RTP/SAVP``."""

from __future__ import annotations

import pytest

import sdp
from sdp import (
    Capabilities,
    Codec,
    Fingerprint,
    MediaCapabilities,
    OfferAnswerError,
    SdpError,
    Setup,
)

OURS = Fingerprint.of_digest("sha-256", bytes(range(32)))
THEIRS = Fingerprint.of_digest("sha-256", bytes(range(32, 64)))
DTLS = ("UDP/TLS/RTP/SAVP", "UDP/TLS/RTP/SAVPF")


def capabilities(
    protos: tuple[str, ...] = DTLS, fingerprints: list[Fingerprint] | None = None
) -> Capabilities:
    audio = MediaCapabilities(
        "audio",
        4000,
        [Codec("PCMU", 8000)],
        protos=protos,
        fingerprints=[OURS] if fingerprints is None else fingerprints,
        tls_id="abcdefghijklmnopqrstuv",
    )
    return Capabilities("127.0.0.1", [audio], session_id="1")


def offer(media_lines: str, session_lines: str = "") -> sdp.SessionDescription:
    return sdp.parse(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        + session_lines
        + media_lines
    )


def dtls_media(proto: str = "UDP/TLS/RTP/SAVP", setup: str | None = "actpass") -> str:
    lines = f"m=audio 5000 {proto} 0\r\na=fingerprint:{THEIRS}\r\n"
    if setup is not None:
        lines += f"a=setup:{setup}\r\n"
    return lines


def test_a_fingerprint_reads_hash_function_and_hex_pairs() -> None:
    fingerprint = Fingerprint.parse(
        "SHA-1 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB"
    )
    assert fingerprint.hash_function == "sha-1"
    assert len(fingerprint.digest) == 20 and fingerprint.supported


@pytest.mark.parametrize(
    "value",
    [
        "sha-256",  # no fingerprint
        "sha-256 AB:CD",  # too short for sha-256
        "sha-1 ZZ:" + ":".join(["00"] * 19),  # not hex
    ],
)
def test_a_malformed_fingerprint_is_an_sdp_error(value: str) -> None:
    with pytest.raises(SdpError):
        Fingerprint.parse(value)


def test_md5_fingerprints_are_read_but_not_usable() -> None:
    fingerprint = Fingerprint.parse("md5 " + ":".join(["00"] * 16))
    assert not fingerprint.supported  # RFC 8122 §5: MD5 and MD2 MUST NOT be used


def test_setup_values_of_rfc_4145() -> None:
    assert Setup.parse("ACTPASS") is Setup.ACTPASS
    with pytest.raises(SdpError):
        Setup.parse("both")


def test_an_offer_says_actpass_with_the_fingerprint_and_no_sdes_keys() -> None:
    made = sdp.create_offer(capabilities())
    media = made.media[0]
    assert media.proto == "UDP/TLS/RTP/SAVP"
    assert media.setup is Setup.ACTPASS  # RFC 5763 §5
    assert media.fingerprints == [OURS]
    assert media.tls_id == "abcdefghijklmnopqrstuv"
    assert media.crypto == []
    again = sdp.parse(bytes(made))
    assert again.media[0].fingerprints == [OURS]


@pytest.mark.parametrize(
    ("offered", "answered", "role"),
    [
        ("actpass", Setup.ACTIVE, Setup.ACTIVE),  # RFC 5763 §5: the answerer SHOULD be active
        ("active", Setup.PASSIVE, Setup.PASSIVE),
        ("passive", Setup.ACTIVE, Setup.ACTIVE),
        (None, Setup.PASSIVE, Setup.PASSIVE),  # RFC 4145 §4: absent means active
    ],
)
def test_the_answer_takes_the_role_the_offer_leaves(
    offered: str | None, answered: Setup, role: Setup
) -> None:
    received = offer(dtls_media(setup=offered))
    answer = sdp.create_answer(received, capabilities())
    assert answer.media[0].setup is answered
    assert answer.media[0].fingerprints == [OURS]
    agreed = sdp.negotiate(answer, received)[0]
    assert agreed.accepted and agreed.dtls
    assert agreed.setup is role
    assert agreed.remote_fingerprints == (THEIRS,)


def test_the_offerer_takes_the_other_role_from_the_answer() -> None:
    made = sdp.create_offer(capabilities())
    answer = sdp.create_answer(made, capabilities())
    agreed = sdp.process_answer(made, answer)[0]
    assert agreed.setup is Setup.PASSIVE  # the answerer is active
    assert agreed.remote_fingerprints == (OURS,)
    assert agreed.remote_tls_id == "abcdefghijklmnopqrstuv"


def test_a_session_level_fingerprint_and_setup_serve_every_stream() -> None:
    received = offer(
        "m=audio 5000 UDP/TLS/RTP/SAVP 0\r\n",
        f"a=fingerprint:{THEIRS}\r\na=setup:actpass\r\n",
    )
    answer = sdp.create_answer(received, capabilities())
    agreed = sdp.negotiate(answer, received)[0]
    assert agreed.accepted and agreed.remote_fingerprints == (THEIRS,)
    assert agreed.setup is Setup.ACTIVE


def test_a_savpf_offer_is_answered_with_savpf() -> None:
    received = offer(dtls_media("UDP/TLS/RTP/SAVPF"))
    answer = sdp.create_answer(received, capabilities())
    assert answer.media[0].proto == "UDP/TLS/RTP/SAVPF"
    assert not answer.media[0].is_rejected


@pytest.mark.parametrize(
    "media",
    [
        "m=audio 5000 UDP/TLS/RTP/SAVP 0\r\na=setup:actpass\r\n",  # no fingerprint
        "m=audio 5000 UDP/TLS/RTP/SAVP 0\r\na=setup:actpass\r\na=fingerprint:md5 "
        + ":".join(["00"] * 16)
        + "\r\n",  # only a hash function that must not be used
        dtls_media(setup="holdconn"),
    ],
)
def test_a_dtls_offer_that_cannot_be_authenticated_is_refused(media: str) -> None:
    answer = sdp.create_answer(offer(media), capabilities())
    assert answer.media[0].is_rejected


def test_an_agent_without_a_certificate_refuses_dtls_offers() -> None:
    answer = sdp.create_answer(offer(dtls_media()), capabilities(fingerprints=[]))
    assert answer.media[0].is_rejected


def test_an_agent_without_dtls_refuses_a_dtls_offer() -> None:
    answer = sdp.create_answer(offer(dtls_media()), capabilities(protos=("RTP/AVP",)))
    assert answer.media[0].is_rejected


def test_a_re_offer_with_actpass_keeps_the_roles_of_the_association() -> None:
    received = offer(dtls_media(setup="active"))
    first = sdp.create_answer(received, capabilities())
    assert first.media[0].setup is Setup.PASSIVE
    # the peer re-offers with actpass (RFC 8842 §5.5): the running roles stay
    again = sdp.create_answer(offer(dtls_media()), capabilities(), first)
    assert again.media[0].setup is Setup.PASSIVE


def test_an_answer_that_names_no_roles_agrees_on_none() -> None:
    made = sdp.create_offer(capabilities())
    answer = sdp.create_answer(made, capabilities())
    answer.media[0].remove_attributes("setup")
    answer.media[0].attributes.append(sdp.Attribute("setup", "actpass"))
    agreed = sdp.process_answer(made, answer)[0]
    assert agreed.setup is None  # the media layer refuses it (voip.rtp.srtp.check_agreed)


def test_answer_with_another_proto_is_not_dtls() -> None:
    received = offer("m=audio 5000 RTP/AVP 0\r\n")
    answer = sdp.create_answer(received, capabilities(protos=("RTP/AVP", *DTLS)))
    agreed = sdp.negotiate(answer, received)[0]
    assert agreed.accepted and not agreed.dtls and agreed.setup is None
    assert answer.media[0].fingerprints == []


def test_streams_that_differ_in_number_still_fail_as_before() -> None:
    made = sdp.create_offer(capabilities())
    answer = sdp.create_answer(made, capabilities())
    answer.media.append(answer.media[0])
    with pytest.raises(OfferAnswerError):
        sdp.process_answer(made, answer)
