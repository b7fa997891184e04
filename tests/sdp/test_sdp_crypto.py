"""``a=crypto`` (RFC 4568 §9.1) read into :class:`Crypto` and written back."""

from __future__ import annotations

import pytest

from sdp import KEY_SALT_LENGTHS, Crypto, KeyParam, SdpError

# RFC 4568 §9.1 examples (line folding of the RFC undone).
WITH_LIFETIME_AND_MKI = (
    "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4"
)
TWO_KEYS_AND_SESSION_PARAMS = (
    "1 AES_CM_128_HMAC_SHA1_32 "
    "inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:4;"
    "inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|2^20|2:4 "
    "FEC_ORDER=FEC_SRTP"
)


def test_crypto_reads_tag_suite_and_key() -> None:
    crypto = Crypto.parse(WITH_LIFETIME_AND_MKI)
    assert (crypto.tag, crypto.crypto_suite) == (1, "AES_CM_128_HMAC_SHA1_80")
    assert crypto.key_params[0].key_salt == "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"


def test_inline_key_reads_lifetime_and_mki() -> None:
    key = Crypto.parse(WITH_LIFETIME_AND_MKI).key_params[0]
    assert (key.lifetime, key.lifetime_packets, key.mki_value, key.mki_length) == (
        "2^20",
        1048576,
        1,
        4,
    )


def test_inline_key_decodes_to_key_and_salt_octets() -> None:
    key = Crypto.parse(WITH_LIFETIME_AND_MKI).key_params[0]
    assert len(key.key_salt_bytes) == KEY_SALT_LENGTHS["AES_CM_128_HMAC_SHA1_80"] == 30


def test_several_keys_and_session_params_are_read() -> None:
    crypto = Crypto.parse(TWO_KEYS_AND_SESSION_PARAMS)
    assert [key.mki_value for key in crypto.key_params] == [1, 2]
    assert crypto.session_params == ("FEC_ORDER=FEC_SRTP",)


def test_mki_may_come_without_lifetime() -> None:
    key = KeyParam.parse("inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|1:32")
    assert (key.lifetime, key.mki_value, key.mki_length) == (None, 1, 32)


@pytest.mark.parametrize("value", [WITH_LIFETIME_AND_MKI, TWO_KEYS_AND_SESSION_PARAMS])
def test_crypto_is_written_back_as_read(value: str) -> None:
    assert str(Crypto.parse(value)) == value


def test_inline_key_is_built_from_octets() -> None:
    key = KeyParam.inline(bytes(range(30)), lifetime="2^31")
    assert str(key) == "inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd|2^31"
    assert key.key_salt_bytes == bytes(range(30))


def test_other_key_method_is_kept_whole() -> None:
    assert KeyParam.parse("uri:https://example.com/k|x").key_salt == "https://example.com/k|x"


@pytest.mark.parametrize(
    "value",
    [
        "1 AES_CM_128_HMAC_SHA1_80",
        "x AES_CM_128_HMAC_SHA1_80 inline:abc",
        "1 AES_CM_128_HMAC_SHA1_80 inline:",
        "1 AES_CM_128_HMAC_SHA1_80 inline:abc|1:4|2^20",
        "1 AES_CM_128_HMAC_SHA1_80 inline:abc|2^x",
    ],
)
def test_malformed_crypto_raises_sdp_error(value: str) -> None:
    with pytest.raises(SdpError):
        Crypto.parse(value)


def test_key_that_is_not_base64_raises_sdp_error() -> None:
    with pytest.raises(SdpError, match="base64"):
        _ = KeyParam("%%%%").key_salt_bytes
