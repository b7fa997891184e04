"""The SDP of DTLS-SRTP (RFC 5763, RFC 8842): ``a=fingerprint``, ``a=setup``, ``a=tls-id``.

An ``m=`` line with the ``UDP/TLS/RTP/SAVP`` (or ``SAVPF``) profile keys its SRTP by a
DTLS handshake on the media path itself (RFC 5764); the SDP says which certificate each
end will present (``a=fingerprint``, RFC 8122 §5) and which end starts the handshake
(``a=setup``, RFC 4145 §4: the offerer says ``actpass``, the answerer ``active`` or
``passive``; RFC 5763 §5: the answerer SHOULD be ``active``).
"""

from __future__ import annotations

import binascii
import enum
from dataclasses import dataclass

from mypy_extensions import mypyc_attr

from sdp._value import FrozenValue
from sdp.errors import SdpError

#: the RTP profiles over DTLS (RFC 5764 §8, RFC 5124 for the feedback one)
DTLS_PROTOS = frozenset(("UDP/TLS/RTP/SAVP", "UDP/TLS/RTP/SAVPF"))
#: octets of each hash function's digest (RFC 8122 §5: the "Hash Function Textual Names"
#: registry; MD2 and MD5 are listed there but MUST NOT be used, RFC 8122 §5)
HASH_LENGTHS: dict[str, int] = {
    "sha-1": 20,
    "sha-224": 28,
    "sha-256": 32,
    "sha-384": 48,
    "sha-512": 64,
}


class Setup(enum.StrEnum):
    """``a=setup`` (RFC 4145 §4): who opens the connection, here who sends the DTLS
    ClientHello (RFC 5763 §5: ``active`` is the DTLS client)."""

    ACTIVE = "active"
    PASSIVE = "passive"
    ACTPASS = "actpass"
    HOLDCONN = "holdconn"

    @classmethod
    def parse(cls, value: str) -> Setup:
        try:
            return cls(value.strip().lower())
        except ValueError:
            known = ", ".join(setup.value for setup in cls)
            raise SdpError(f"setup {value!r} is none of {known}") from None

    def answer(self) -> Setup:
        """What an answerer says to an offer's ``a=setup`` (RFC 4145 §4.1, RFC 5763 §5:
        the answerer SHOULD be active when it may choose); an absent ``a=setup`` means
        ``active`` (RFC 4145 §4), answered ``passive``."""
        if self is Setup.ACTIVE:
            return Setup.PASSIVE
        if self is Setup.HOLDCONN:
            return Setup.HOLDCONN
        return Setup.ACTIVE

    @property
    def is_client(self) -> bool:
        """This end, having agreed to this role, sends the ClientHello."""
        return self is Setup.ACTIVE


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(frozen=True, slots=True)
class Fingerprint(FrozenValue):
    """``a=fingerprint:<hash-func> <fingerprint>`` (RFC 8122 §5): the hash of the
    certificate an end presents in the handshake, as upper-case hex pairs joined by
    colons. ``hash_function`` is kept lower-case (the registry's names)."""

    hash_function: str
    fingerprint: str

    def __init__(self, hash_function: str, fingerprint: str) -> None:
        object.__setattr__(self, "hash_function", hash_function)
        object.__setattr__(self, "fingerprint", fingerprint)

    @classmethod
    def parse(cls, value: str) -> Fingerprint:
        fields = value.split()
        if len(fields) != 2:
            raise SdpError("fingerprint needs <hash-func> <fingerprint>")
        function = fields[0].lower()
        fingerprint = cls(function, fields[1].upper())
        length = HASH_LENGTHS.get(function)
        if length is not None and len(fingerprint.digest) != length:
            raise SdpError(f"a {function} fingerprint has {length} octets")
        return fingerprint

    @classmethod
    def of_digest(cls, hash_function: str, digest: bytes) -> Fingerprint:
        return cls(hash_function, ":".join(f"{octet:02X}" for octet in digest))

    @property
    def digest(self) -> bytes:
        """The octets the hex pairs spell; raises :class:`SdpError` when they do not."""
        pairs = self.fingerprint.split(":")
        if any(len(pair) != 2 for pair in pairs):
            raise SdpError(f"fingerprint {self.fingerprint!r} is not colon-separated hex pairs")
        try:
            return binascii.unhexlify("".join(pairs))
        except (binascii.Error, ValueError):
            raise SdpError(f"fingerprint {self.fingerprint!r} is not hex") from None

    @property
    def supported(self) -> bool:
        """A hash function of the registry that is not broken (RFC 8122 §5)."""
        return self.hash_function in HASH_LENGTHS

    def __str__(self) -> str:
        return f"{self.hash_function} {self.fingerprint}"
