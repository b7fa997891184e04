"""``a=crypto`` for SDES keying of SRTP (RFC 4568 §9.1, §6)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from mypy_extensions import mypyc_attr

from sdp._value import FrozenValue
from sdp.errors import SdpError
from sdp.fields import parse_number

# Octets of key||salt for the suites of RFC 4568 §6.2 and the AES-192/256 and AES-GCM
# suites that RFC 6188 and RFC 7714 register for SDES.
KEY_SALT_LENGTHS: dict[str, int] = {
    "AES_CM_128_HMAC_SHA1_80": 30,
    "AES_CM_128_HMAC_SHA1_32": 30,
    "F8_128_HMAC_SHA1_80": 30,
    "AES_192_CM_HMAC_SHA1_80": 38,
    "AES_192_CM_HMAC_SHA1_32": 38,
    "AES_256_CM_HMAC_SHA1_80": 46,
    "AES_256_CM_HMAC_SHA1_32": 46,
    "AEAD_AES_128_GCM": 28,
    "AEAD_AES_256_GCM": 44,
}


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(frozen=True, slots=True)
class KeyParam(FrozenValue):
    """``<key-method>:<key-info>``; for ``inline`` (RFC 4568 §9.2):
    ``inline:<key||salt base64>[|<lifetime>][|<MKI value>:<MKI length>]``.

    For another key method the whole key-info is kept in ``key_salt``.
    """

    key_salt: str
    lifetime: str | None = None
    mki_value: int | None = None
    mki_length: int | None = None
    method: str = "inline"

    @classmethod
    def parse(cls, text: str) -> KeyParam:
        method, colon, info = text.partition(":")
        if not colon or not method or not info:
            raise SdpError(f"crypto key parameter {text!r} needs <key-method>:<key-info>")
        if method != "inline":
            return cls(info, method=method)
        key_salt, *rest = info.split("|")
        if not key_salt or len(rest) > 2:
            raise SdpError("inline key needs <key||salt>[|<lifetime>][|<MKI>:<length>]")
        lifetime = None
        mki_value = mki_length = None
        for index, item in enumerate(rest):
            if ":" in item:
                # The MKI is the only part with a colon, and it comes last.
                if index != len(rest) - 1:
                    raise SdpError("the MKI must come after the lifetime")
                value_text, _, length_text = item.partition(":")
                mki_value = parse_number(value_text, "MKI value")
                mki_length = parse_number(length_text, "MKI length", 128)
            else:
                lifetime = item
                _lifetime_packets(item)
        return cls(key_salt, lifetime, mki_value, mki_length)

    @classmethod
    def inline(
        cls,
        key_salt: bytes,
        lifetime: str | None = None,
        mki_value: int | None = None,
        mki_length: int | None = None,
    ) -> KeyParam:
        """An inline key from raw key||salt octets (the caller draws them from a CSPRNG)."""
        return cls(base64.b64encode(key_salt).decode("ascii"), lifetime, mki_value, mki_length)

    def __str__(self) -> str:
        text = f"{self.method}:{self.key_salt}"
        if self.lifetime is not None:
            text += f"|{self.lifetime}"
        if self.mki_value is not None:
            text += f"|{self.mki_value}:{self.mki_length}"
        return text

    @property
    def key_salt_bytes(self) -> bytes:
        """The decoded master key followed by the master salt."""
        try:
            # Some agents leave the base64 padding out.
            padded = self.key_salt + "=" * (-len(self.key_salt) % 4)
            return base64.b64decode(padded, validate=True)
        except (binascii.Error, ValueError) as error:
            raise SdpError(f"crypto key {self.key_salt!r} is not base64") from error

    @property
    def lifetime_packets(self) -> int | None:
        """The master key lifetime in packets (``2^20`` means 1048576)."""
        return None if self.lifetime is None else _lifetime_packets(self.lifetime)


def _lifetime_packets(text: str) -> int:
    if text.startswith("2^"):
        return int(2 ** parse_number(text[2:], "key lifetime exponent", 64))
    return parse_number(text, "key lifetime")


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(frozen=True, slots=True)
class Crypto(FrozenValue):
    """``a=crypto:<tag> <crypto-suite> <key-params> [<session-params>]`` (RFC 4568 §9.1)."""

    tag: int
    crypto_suite: str
    key_params: tuple[KeyParam, ...]
    session_params: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: str) -> Crypto:
        fields = value.split()
        if len(fields) < 3:
            raise SdpError("crypto needs <tag> <crypto-suite> <key-params>")
        tag = parse_number(fields[0], "crypto tag", 999999999)
        key_params = tuple(KeyParam.parse(item) for item in fields[2].split(";"))
        return cls(tag, fields[1], key_params, tuple(fields[3:]))

    def __str__(self) -> str:
        keys = ";".join(str(key) for key in self.key_params)
        return " ".join((str(self.tag), self.crypto_suite, keys, *self.session_params))
