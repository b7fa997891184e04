"""Every fault is an :class:`SdpError` that names the line (RFC 8866 §5 grammar)."""

from __future__ import annotations

import pickle

import pytest

import sdp
from sdp import SdpError

HEAD = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n"


def error_of(text: str | bytes) -> SdpError:
    with pytest.raises(SdpError) as caught:
        sdp.parse(text)
    return caught.value


def test_error_names_line_number_line_and_reason() -> None:
    error = error_of("v=0\r\no=- 1 1 IN IP4 h\r\nc=IN IP4\r\ns=-\r\n")
    assert (error.line_number, error.line) == (3, "c=IN IP4")
    assert str(error) == 'line 3: "c=IN IP4" : connection needs nettype, addrtype and address'


def test_error_is_a_value_error() -> None:
    assert isinstance(error_of("garbage"), ValueError)


def test_description_must_start_with_version() -> None:
    error = error_of("o=- 1 1 IN IP4 h\r\ns=-\r\n")
    assert (error.line_number, error.line) == (1, "o=- 1 1 IN IP4 h")


def test_empty_input_is_rejected_at_line_one() -> None:
    assert error_of("").line_number == 1


def test_version_other_than_zero_is_rejected() -> None:
    assert "version must be 0" in str(error_of("v=1\r\n"))


def test_missing_origin_is_rejected() -> None:
    error = error_of("v=0\r\ns=-\r\nt=0 0\r\n")
    assert "o=" in error.reason


def test_missing_session_name_is_rejected() -> None:
    assert '"s="' in error_of("v=0\r\no=- 1 1 IN IP4 h\r\nt=0 0\r\n").reason


def test_media_before_origin_is_rejected() -> None:
    assert error_of("v=0\r\nm=audio 1 RTP/AVP 0\r\n").line_number == 2


def test_non_numeric_port_is_rejected() -> None:
    error = error_of(HEAD + "m=audio port RTP/AVP 0\r\n")
    assert (error.line_number, error.line) == (4, "m=audio port RTP/AVP 0")
    assert "port must be a decimal number" in error.reason


def test_port_above_65535_is_rejected() -> None:
    assert "at most 65535" in error_of(HEAD + "m=audio 65536 RTP/AVP 0\r\n").reason


def test_non_ascii_digits_are_not_numbers() -> None:
    # str.isdigit() accepts "²" and Arabic-Indic digits; SDP numbers are ASCII.
    assert error_of(HEAD + "m=audio 4٩ RTP/AVP 0\r\n").line_number == 4


def test_huge_number_is_rejected_without_overflow() -> None:
    error = error_of(HEAD + "b=AS:" + "9" * 5000 + "\r\n")
    assert (error.line_number, "more than 20 digits" in error.reason) == (4, True)


def test_media_line_needs_media_port_and_proto() -> None:
    assert "media needs" in error_of(HEAD + "m=audio 49170\r\n").reason


def test_origin_needs_six_fields() -> None:
    assert error_of("v=0\r\no=- 1 1 IN IP4\r\n").reason.startswith("origin needs")


def test_timing_needs_two_numbers() -> None:
    assert error_of(HEAD + "t=0\r\n").line == "t=0"


def test_repeat_time_needs_a_timing_before_it() -> None:
    assert '"r=" must follow' in error_of(HEAD + "r=7d 1h 0\r\n").reason


def test_unknown_line_type_is_rejected() -> None:
    # RFC 8866 §5: a parser must ignore or reject a description with an unknown type.
    error = error_of(HEAD + "t=0 0\r\nf=invalid:yes\r\n")
    assert (error.line_number, error.line) == (5, "f=invalid:yes")


def test_session_only_line_inside_media_is_rejected() -> None:
    error = error_of(HEAD + "m=audio 1 RTP/AVP 0\r\nt=0 0\r\n")
    assert "before the first" in error.reason


def test_second_origin_is_rejected() -> None:
    assert error_of(HEAD + "o=- 2 2 IN IP4 h\r\n").line_number == 4


def test_second_media_information_is_rejected() -> None:
    assert error_of(HEAD + "m=audio 1 RTP/AVP 0\r\ni=a\r\ni=b\r\n").line_number == 6


def test_line_without_type_and_equals_is_rejected() -> None:
    error = error_of(HEAD + "hello\r\n")
    assert (error.line_number, error.reason) == (4, 'expected "<type>=<value>"')


def test_attribute_without_name_is_rejected() -> None:
    assert error_of(HEAD + "a=:x\r\n").line == "a=:x"


def test_ip4_ttl_above_255_is_rejected() -> None:
    assert "TTL" in error_of(HEAD + "c=IN IP4 233.252.0.1/256\r\n").reason


def test_bytes_that_are_not_utf8_name_their_line() -> None:
    error = error_of(HEAD.encode() + b"i=caf\xe9\r\nt=0 0\r\n")
    assert (error.line_number, error.line) == (4, "i=caf\ufffd")


def test_long_line_is_clipped_in_the_message_but_kept_whole() -> None:
    line = "m=audio x RTP/AVP " + "0 " * 500
    error = error_of(HEAD + line + "\r\n")
    assert error.line == line
    assert len(str(error)) < 200


def test_error_survives_pickling() -> None:
    error = error_of(HEAD + "m=audio x RTP/AVP 0\r\n")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.line_number, copy.line, str(copy)) == (error.line_number, error.line, str(error))


def test_carriage_return_inside_a_line_is_rejected() -> None:
    # RFC 8866 §9: text excludes CR; it would turn into a line break when written out.
    error = error_of(HEAD + "i=one\rtwo\r\nt=0 0\r\n")
    assert (error.line_number, error.line) == (4, "i=one\rtwo")


def test_final_line_may_end_with_a_bare_carriage_return() -> None:
    assert sdp.parse(HEAD + "t=0 0\r").timings == [sdp.Timing(0, 0)]


def test_value_holding_a_line_break_is_not_written() -> None:
    description = sdp.parse(HEAD + "t=0 0\r\n")
    description.session_name = "x\r\na=injected"
    with pytest.raises(SdpError, match="line break"):
        description.serialize()
