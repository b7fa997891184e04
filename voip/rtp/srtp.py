"""SRTP and SRTCP (RFC 3711) keyed by SDES (RFC 4568) or DTLS-SRTP (RFC 5764, the
handshake in :mod:`voip.rtp.dtls`), on libsrtp through pylibsrtp.

Sans-I/O: the key material and the policy checks take and return values; the
:class:`SrtpTransform` turns plain RTP/RTCP into protected packets and back, and the
stream that owns it does the I/O.

A call's SRTP policy is one of :class:`SrtpMode`:

- ``off``: plain RTP/AVP, ``a=crypto`` in offers ignored;
- ``optional``: offers ``RTP/AVP`` with ``a=crypto`` (best-effort SRTP, as baresip's
  ``mediaenc=srtp`` and others do), answers ``RTP/SAVP`` offers and ``a=crypto`` in
  ``RTP/AVP`` offers with SRTP, plain offers with plain RTP;
- ``required``: offers and accepts only ``RTP/SAVP`` with a usable ``a=crypto``; a plain
  offer is refused (488) and a plain answer ends the call (:class:`SrtpRequired`);
- ``dtls``: offers and accepts only DTLS-SRTP (``UDP/TLS/RTP/SAVP``, RFC 5763; a
  ``UDP/TLS/RTP/SAVPF`` offer too): anything else is refused like plain RTP with
  ``required``;
- ``dtls-preferred``: offers DTLS-SRTP, and answers an offer with whichever SRTP keying
  it uses (DTLS-SRTP or SDES); a plain offer is refused.

Every mode but ``off`` answers a DTLS-SRTP offer with DTLS-SRTP: one keying per offer
(RFC 5763 would need capability negotiation, RFC 5939, to offer both on one stream).

Each side sends with its own key and receives with the peer's (RFC 4568 §6.1); a
re-offer keeps our key (§7.1.4 allows it), a new key from the peer re-keys the receiver.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Sequence

import pylibsrtp

from sdp import Crypto, KeyParam, NegotiatedMedia, OfferAnswerError

__all__ = [
    "SUITES",
    "SrtpError",
    "SrtpMode",
    "SrtpRequired",
    "SrtpTransform",
    "check_crypto",
    "dtls_crypto",
    "local_crypto",
]

#: the suites of RFC 4568 §6.2 the media engine has, in order of preference
SUITES: dict[str, int] = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}
KEY_SALT_LENGTH = 30  # 128-bit master key || 112-bit master salt (RFC 4568 §6.2)
REPLAY_WINDOW = 128  # packets (RFC 3711 §3.3.2 asks for at least 64)


class SrtpMode(enum.StrEnum):
    OFF = "off"
    OPTIONAL = "optional"
    REQUIRED = "required"
    DTLS = "dtls"
    DTLS_PREFERRED = "dtls-preferred"

    @property
    def offers_dtls(self) -> bool:
        """Offers key SRTP by DTLS (RFC 5763), not by SDES."""
        return self in (SrtpMode.DTLS, SrtpMode.DTLS_PREFERRED)

    @property
    def accepts_dtls(self) -> bool:
        return self is not SrtpMode.OFF

    @property
    def accepts_sdes(self) -> bool:
        return self not in (SrtpMode.OFF, SrtpMode.DTLS)

    @property
    def requires_srtp(self) -> bool:
        """Plain RTP is refused (488 to an offer; an answer ends the call)."""
        return self not in (SrtpMode.OFF, SrtpMode.OPTIONAL)


class SrtpError(OfferAnswerError):
    """An ``a=crypto`` the media engine cannot use (→ 488 Not Acceptable Here)."""


class SrtpRequired(SrtpError):
    """SRTP is required and the peer's description agreed to plain RTP."""


def local_crypto(suites: Sequence[str] = tuple(SUITES)) -> list[Crypto]:
    """Fresh SDES keys, one per suite, tags 1, 2, … in order of preference: each an
    inline key||salt drawn from the operating system's CSPRNG (RFC 4568 §6.1, §10.1)."""
    return [
        Crypto(tag, suite, (KeyParam.inline(secrets.token_bytes(KEY_SALT_LENGTH)),))
        for tag, suite in enumerate(suites, 1)
    ]


def check_crypto(crypto: Crypto) -> bytes:
    """The master key||salt of an ``a=crypto`` this engine can use; raises
    :class:`SrtpError` otherwise (RFC 4568 §6.3: unknown session parameters, key methods
    or suites make the attribute unusable). One inline key without MKI is supported."""
    if crypto.crypto_suite not in SUITES:
        raise SrtpError(f"crypto suite {crypto.crypto_suite} is not supported")
    if len(crypto.key_params) != 1:
        raise SrtpError("more than one master key (MKI) is not supported")
    key = crypto.key_params[0]
    if key.method != "inline":
        raise SrtpError(f"key method {key.method!r} is not supported (RFC 4568 §6.1: inline)")
    if key.mki_value is not None:
        raise SrtpError("a master key identifier (MKI) is not supported")
    if crypto.session_params:
        raise SrtpError(f"session parameters {' '.join(crypto.session_params)} not supported")
    material = key.key_salt_bytes
    if len(material) != KEY_SALT_LENGTH:
        raise SrtpError(
            f"{crypto.crypto_suite} needs {KEY_SALT_LENGTH} octets of key||salt, "
            f"not {len(material)}"
        )
    return material


def check_agreed(agreed: Sequence[NegotiatedMedia], mode: SrtpMode) -> None:
    """After offer/answer: every accepted RTP stream with keys has usable ones (or DTLS
    roles and a fingerprint to check), and with a mode that requires SRTP every accepted
    stream has them (with ``dtls``, by DTLS). Raises :class:`SrtpError`."""
    for media in agreed:
        if not media.accepted:
            continue
        if media.dtls:
            if media.setup is None:
                raise SrtpError("the descriptions agree on no DTLS roles (RFC 4145 a=setup)")
            if not any(fingerprint.supported for fingerprint in media.remote_fingerprints):
                raise SrtpError("no a=fingerprint with a usable hash function (RFC 8122 §5)")
            continue
        if mode is SrtpMode.DTLS:
            raise SrtpRequired(
                f"DTLS-SRTP is required but the {media.media} stream agreed to {media.proto}"
            )
        if media.local_crypto is None or media.remote_crypto is None:
            if mode.requires_srtp:
                raise SrtpRequired(
                    f"SRTP is required but the {media.media} stream agreed to plain "
                    f"{media.proto} without a=crypto"
                )
            continue
        check_crypto(media.local_crypto)
        check_crypto(media.remote_crypto)


class SrtpTransform:
    """Protects what one stream sends with the local key and checks what it receives
    with the peer's: SRTP for RTP, SRTCP for RTCP (RFC 3711 §3.3, §3.4)."""

    __slots__ = ("_inbound", "_outbound", "local", "remote")

    def __init__(self, local: Crypto, remote: Crypto) -> None:
        self.local = local
        self.remote = remote
        self._outbound = _session(local, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        self._inbound = _session(remote, pylibsrtp.Policy.SSRC_ANY_INBOUND)

    @classmethod
    def follow(cls, current: SrtpTransform | None, media: NegotiatedMedia) -> SrtpTransform | None:
        """The transform for what offer/answer agreed: None for plain RTP, ``current``
        when the keys did not change (the rollover counters go on), else new sessions
        for the key that changed (RFC 4568 §7.1.4 re-keying)."""
        local, remote = media.local_crypto, media.remote_crypto
        if local is None or remote is None:
            return None
        if current is None:
            return cls(local, remote)
        if _same_key(current.local, local) and _same_key(current.remote, remote):
            return current
        transform = cls.__new__(cls)
        transform.local, transform.remote = local, remote
        transform._outbound = (
            current._outbound
            if _same_key(current.local, local)
            else _session(local, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        )
        transform._inbound = (
            current._inbound
            if _same_key(current.remote, remote)
            else _session(remote, pylibsrtp.Policy.SSRC_ANY_INBOUND)
        )
        return transform

    def protect(self, packet: bytes) -> bytes:
        return self._outbound.protect(packet)

    def protect_rtcp(self, packet: bytes) -> bytes:
        return self._outbound.protect_rtcp(packet)

    def unprotect(self, packet: bytes) -> bytes:
        """The plain RTP packet; raises :class:`pylibsrtp.Error` when authentication or
        the replay check fails (the caller drops the packet)."""
        return self._inbound.unprotect(packet)

    def unprotect_rtcp(self, packet: bytes) -> bytes:
        return self._inbound.unprotect_rtcp(packet)


def dtls_crypto(suite: str, key_salt: bytes) -> Crypto:
    """Keys a DTLS-SRTP handshake exported (RFC 5764 §4.2), in the form SDES gives them:
    what :class:`SrtpTransform` takes, whichever way the keys came."""
    return Crypto(0, suite, (KeyParam.inline(key_salt),))


def _same_key(a: Crypto, b: Crypto) -> bool:
    return a.crypto_suite == b.crypto_suite and a.key_params == b.key_params


def _session(crypto: Crypto, ssrc_type: int) -> pylibsrtp.Session:
    policy = pylibsrtp.Policy(
        key=check_crypto(crypto), ssrc_type=ssrc_type, srtp_profile=SUITES[crypto.crypto_suite]
    )
    policy.window_size = REPLAY_WINDOW
    return pylibsrtp.Session(policy)
