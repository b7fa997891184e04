"""Reading and writing descriptions: RFC 8866 §5 lines, §6 attributes, RFC 3551 types."""

from __future__ import annotations

import pytest

import sdp
from sdp import (
    Attribute,
    Bandwidth,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    RtpMap,
    SessionDescription,
    Timing,
    typed_time_seconds,
)

# RFC 8866 §5 example, with the optional session-level lines it describes.
RFC8866_EXAMPLE = (
    "v=0\r\n"
    "o=jdoe 3724394400 3724394405 IN IP4 198.51.100.1\r\n"
    "s=Call to John Smith\r\n"
    "i=SDP Offer #1\r\n"
    "u=http://www.jdoe.example.com/home.html\r\n"
    "e=Jane Doe <jane@jdoe.example.com>\r\n"
    "p=+1 617 555-6011\r\n"
    "c=IN IP4 198.51.100.1\r\n"
    "t=0 0\r\n"
    "m=audio 49170 RTP/AVP 0\r\n"
    "m=audio 49180 RTP/AVP 0\r\n"
    "m=video 51372 RTP/AVP 99\r\n"
    "c=IN IP6 2001:db8::2\r\n"
    "a=rtpmap:99 h263-1998/90000\r\n"
)


def session(*lines: str) -> str:
    head = ["v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0"]
    return "".join(line + "\r\n" for line in (*head, *lines))


def test_origin_fields_are_read() -> None:
    description = sdp.parse(RFC8866_EXAMPLE)
    assert description.origin == Origin(
        "jdoe", "3724394400", "3724394405", "IN", "IP4", "198.51.100.1"
    )


def test_optional_session_lines_are_read() -> None:
    description = sdp.parse(RFC8866_EXAMPLE)
    assert (description.information, description.uri) == (
        "SDP Offer #1",
        "http://www.jdoe.example.com/home.html",
    )
    assert description.emails == ["Jane Doe <jane@jdoe.example.com>"]
    assert description.phones == ["+1 617 555-6011"]


def test_media_descriptions_are_read_in_order() -> None:
    description = sdp.parse(RFC8866_EXAMPLE)
    assert [(m.media, m.port, m.proto, m.formats) for m in description.media] == [
        ("audio", 49170, "RTP/AVP", ["0"]),
        ("audio", 49180, "RTP/AVP", ["0"]),
        ("video", 51372, "RTP/AVP", ["99"]),
    ]


def test_media_level_connection_overrides_session_connection() -> None:
    description = sdp.parse(RFC8866_EXAMPLE)
    video = description.media[2]
    assert description.media_connection(video) == Connection("IN", "IP6", "2001:db8::2")
    assert description.media_connection(description.media[0]) == description.connection


def test_empty_session_name_is_accepted_and_kept() -> None:
    # RFC 4317 prints "s=" (manifest s_line_note); RFC 8866 §9 wants a character.
    description = sdp.parse("v=0\r\no=- 1 1 IN IP4 h\r\ns=\r\nt=0 0\r\n")
    assert description.session_name == ""
    assert "\r\ns=\r\n" in description.serialize()


def test_single_space_session_name_is_kept() -> None:
    description = sdp.parse("v=0\r\no=- 1 1 IN IP4 h\r\ns= \r\nt=0 0\r\n")
    assert description.session_name == " "


def test_lf_line_ends_are_accepted() -> None:
    # RFC 8866 §5: parsers must accept records terminated with a single newline.
    assert sdp.parse(RFC8866_EXAMPLE.replace("\r\n", "\n")) == sdp.parse(RFC8866_EXAMPLE)


def test_trailing_blanks_on_structured_lines_are_ignored() -> None:
    text = session("m=audio 49170 RTP/AVP 0 8 \t", "a=sendrecv ").replace("t=0 0", "t=0 0  ")
    media = sdp.parse(text).media[0]
    assert (media.formats, media.direction) == (["0", "8"], Direction.SENDRECV)


def test_blank_lines_are_skipped() -> None:
    description = sdp.parse(session("m=audio 49170 RTP/AVP 0") + "\r\n\r\n")
    assert len(description.media) == 1


def test_bytes_are_decoded_as_utf8() -> None:
    description = sdp.parse(session().replace("s=-", "s=Café").encode("utf-8"))
    assert description.session_name == "Café"


def test_leading_byte_order_mark_is_ignored() -> None:
    assert sdp.parse(("\ufeff" + RFC8866_EXAMPLE).encode()) == sdp.parse(RFC8866_EXAMPLE)


def test_ip4_multicast_connection_has_ttl_and_count() -> None:
    connection = Connection.parse("IN IP4 233.252.0.1/127/3")
    assert connection == Connection("IN", "IP4", "233.252.0.1", 127, 3)
    assert str(connection) == "IN IP4 233.252.0.1/127/3"


def test_ip6_multicast_connection_has_count_only() -> None:
    # RFC 8866 §5.7: IPv6 has no TTL field.
    assert Connection.parse("IN IP6 ff1e:db8::101/3") == Connection(
        "IN", "IP6", "ff1e:db8::101", None, 3
    )


def test_several_media_level_connections_are_kept_in_order() -> None:
    media = sdp.parse(session("m=video 49170 RTP/AVP 31", "c=IN IP4 a", "c=IN IP4 b")).media[0]
    assert [c.address for c in media.connections] == ["a", "b"]


def test_port_count_is_read() -> None:
    media = sdp.parse(session("m=video 49170/2 RTP/AVP 31")).media[0]
    assert (media.port, media.port_count) == (49170, 2)


def test_bandwidth_lines_are_read_at_both_levels() -> None:
    description = sdp.parse(
        session("m=audio 49170 RTP/AVP 0", "b=TIAS:64000").replace("t=0", "b=AS:128\r\nt=0")
    )
    assert description.bandwidths == [Bandwidth("AS", 128)]
    assert description.media[0].bandwidths == [Bandwidth("TIAS", 64000)]


def test_repeat_times_attach_to_the_timing_they_follow() -> None:
    text = session().replace("t=0 0", "t=3724394400 3724398000\r\nr=7d 1h 0 25h")
    timing = sdp.parse(text).timings[0]
    assert (timing.start_time, timing.stop_time) == (3724394400, 3724398000)
    assert [str(repeat) for repeat in timing.repeat_times] == ["7d 1h 0 25h"]


def test_typed_times_convert_to_seconds() -> None:
    # RFC 8866 §5.10: d, h, m and s units.
    assert [typed_time_seconds(t) for t in ("7d", "1h", "25h", "90", "-1h")] == [
        604800,
        3600,
        90000,
        90,
        -3600,
    ]


def test_time_zone_adjustments_are_read() -> None:
    text = session().replace("t=0 0", "t=0 0\r\nz=2882844526 -1h 2898848070 0")
    zones = sdp.parse(text).time_zones
    assert [(z.adjustment_time, z.offset) for z in zones] == [
        (2882844526, "-1h"),
        (2898848070, "0"),
    ]


def test_missing_timing_line_is_tolerated() -> None:
    # ONVIF cameras and RFC 4145 examples leave t= out.
    description = sdp.parse("v=0\r\no=- 1 1 IN IP4 h\r\ns=RTSP\r\nm=audio 0 RTP/AVP 0\r\n")
    assert description.timings == []


def test_media_line_without_formats_is_tolerated() -> None:
    # Cisco IOS gateways send "m=video 36924 RTP/AVP" (RFC 8866 §9 wants a format).
    assert sdp.parse(session("m=video 36924 RTP/AVP")).media[0].formats == []


def test_property_attribute_has_no_value() -> None:
    assert sdp.parse(session("a=recvonly")).attributes == [Attribute("recvonly")]


def test_attribute_value_keeps_colons_and_blanks() -> None:
    attribute = sdp.parse(session("a=X-CollabStatus: CollabState_Idle")).attributes[0]
    assert attribute == Attribute("X-CollabStatus", " CollabState_Idle")


def test_empty_attribute_value_differs_from_no_value() -> None:
    assert sdp.parse(session("a=tool:")).attributes == [Attribute("tool", "")]


def test_unknown_attributes_are_kept_in_order() -> None:
    text = session("m=audio 1 RTP/AVP 0", "a=zz:1", "a=rtpmap:0 PCMU/8000", "a=aa")
    assert [str(a) for a in sdp.parse(text).media[0].attributes] == [
        "zz:1",
        "rtpmap:0 PCMU/8000",
        "aa",
    ]


@pytest.mark.parametrize(
    ("payload_type", "expected"),
    [
        (0, RtpMap(0, "PCMU", 8000)),
        (3, RtpMap(3, "GSM", 8000)),
        (4, RtpMap(4, "G723", 8000)),
        (8, RtpMap(8, "PCMA", 8000)),
        (9, RtpMap(9, "G722", 8000)),
        (13, RtpMap(13, "CN", 8000)),
        (18, RtpMap(18, "G729", 8000)),
        (31, RtpMap(31, "H261", 90000)),
        (32, RtpMap(32, "MPV", 90000)),
        (34, RtpMap(34, "H263", 90000)),
    ],
)
def test_static_payload_type_is_known_without_rtpmap(payload_type: int, expected: RtpMap) -> None:
    media = sdp.parse(session(f"m=audio 1 RTP/AVP {payload_type}")).media[0]
    assert media.rtpmap(payload_type) == expected


def test_rtpmap_attribute_overrides_static_table() -> None:
    media = sdp.parse(session("m=audio 1 RTP/AVP 0", "a=rtpmap:0 pcmu/8000")).media[0]
    assert media.rtpmap(0) == RtpMap(0, "pcmu", 8000)


def test_rtpmap_reads_channels() -> None:
    media = sdp.parse(session("m=audio 1 RTP/SAVPF 111", "a=rtpmap:111 opus/48000/2")).media[0]
    assert media.rtpmap(111) == RtpMap(111, "opus", 48000, 2)


def test_codecs_skip_dynamic_types_without_rtpmap() -> None:
    media = sdp.parse(session("m=audio 1 RTP/AVP 0 98 97", "a=rtpmap:97 iLBC/8000")).media[0]
    assert [c.encoding_name for c in media.codecs()] == ["PCMU", "iLBC"]


def test_malformed_rtpmap_reads_as_absent_and_is_kept() -> None:
    # X-Lite sends "a=rtpmap:98 iLBC" without a clock rate.
    media = sdp.parse(session("m=audio 1 RTP/AVP 98", "a=rtpmap:98 iLBC")).media[0]
    assert media.rtpmap(98) is None
    assert media.attributes == [Attribute("rtpmap", "98 iLBC")]


def test_fmtp_is_found_per_payload_type() -> None:
    media = sdp.parse(session("m=audio 1 RTP/AVP 0 101", "a=fmtp:101 0-16", "a=fmtp:0 x=1")).media[
        0
    ]
    assert (media.fmtp(101), media.fmtp(0), media.fmtp(8)) == ("0-16", "x=1", None)


def test_fmtp_parameters_split_into_lowercase_keys() -> None:
    assert sdp.fmtp_parameters("profile-level-id=42e01f; Packetization-Mode=1") == {
        "profile-level-id": "42e01f",
        "packetization-mode": "1",
    }


def test_ptime_and_maxptime_are_milliseconds() -> None:
    media = sdp.parse(session("m=audio 1 RTP/AVP 0", "a=ptime:20", "a=maxptime:60")).media[0]
    assert (media.ptime, media.maxptime) == (20.0, 60.0)


def test_ptime_may_be_fractional() -> None:
    # RFC 8866 §9: ptime-value = non-zero-int-or-real.
    assert sdp.parse(session("m=audio 1 RTP/AVP 0", "a=ptime:0.125")).media[0].ptime == 0.125


def test_malformed_ptime_reads_as_absent() -> None:
    assert sdp.parse(session("m=audio 1 RTP/AVP 0", "a=ptime:abc")).media[0].ptime is None


def test_direction_defaults_to_sendrecv() -> None:
    description = sdp.parse(session("m=audio 1 RTP/AVP 0"))
    assert description.media_direction(description.media[0]) is Direction.SENDRECV


def test_session_level_direction_is_inherited_by_media() -> None:
    description = sdp.parse(session("a=recvonly", "m=audio 1 RTP/AVP 0"))
    assert description.media_direction(description.media[0]) is Direction.RECVONLY


def test_media_level_direction_overrides_session_level() -> None:
    description = sdp.parse(session("a=recvonly", "m=audio 1 RTP/AVP 0", "a=inactive"))
    assert description.media_direction(description.media[0]) is Direction.INACTIVE


def test_assigned_direction_replaces_the_attribute_in_place() -> None:
    media = sdp.parse(session("m=audio 1 RTP/AVP 0", "a=sendonly", "a=ptime:20")).media[0]
    media.direction = Direction.INACTIVE
    assert [str(a) for a in media.attributes] == ["inactive", "ptime:20"]


def test_assigned_ptime_replaces_the_attribute_and_none_removes_it() -> None:
    media = sdp.parse(session("m=audio 1 RTP/AVP 0", "a=ptime:20", "a=maxptime:40")).media[0]
    media.ptime = 30
    media.maxptime = None
    assert [str(a) for a in media.attributes] == ["ptime:30"]


def test_rtcp_attribute_gives_port_and_address() -> None:
    # RFC 3605 §2.1 example.
    media = sdp.parse(session("m=audio 49170 RTP/AVP 0", "a=rtcp:53020 IN IP4 126.16.64.4"))
    rtcp = media.media[0].rtcp
    assert rtcp is not None
    assert (rtcp.port, rtcp.address) == (53020, "126.16.64.4")


def test_rtcp_mux_is_recognised() -> None:
    media = sdp.parse(session("m=audio 1 RTP/AVP 0", "a=rtcp-mux")).media[0]
    assert media.rtcp_mux


def test_crypto_attributes_are_read_in_order() -> None:
    media = sdp.parse(
        session(
            "m=audio 1 RTP/SAVP 0",
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
            "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj",
        )
    ).media[0]
    assert [(c.tag, c.crypto_suite) for c in media.crypto] == [
        (1, "AES_CM_128_HMAC_SHA1_80"),
        (2, "AES_CM_128_HMAC_SHA1_32"),
    ]


def test_serialization_ends_every_line_with_crlf() -> None:
    text = sdp.parse(RFC8866_EXAMPLE.replace("\r\n", "\n")).serialize()
    assert text == RFC8866_EXAMPLE


def test_str_and_bytes_give_the_serialization() -> None:
    description = sdp.parse(RFC8866_EXAMPLE)
    assert str(description) == RFC8866_EXAMPLE
    assert bytes(description) == RFC8866_EXAMPLE.encode()


def test_description_built_in_code_is_written_in_rfc_order() -> None:
    description = SessionDescription(
        origin=Origin("-", "1", "1", "IN", "IP4", "192.0.2.1"),
        connection=Connection("IN", "IP4", "192.0.2.1"),
        attributes=[Attribute("recvonly")],
        media=[MediaDescription("audio", 49170, "RTP/AVP", ["0"])],
    )
    assert description.serialize() == (
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n"
        "t=0 0\r\na=recvonly\r\nm=audio 49170 RTP/AVP 0\r\n"
    )


def test_parsed_description_keeps_its_line_order() -> None:
    # RFC 3264 §9 Figure 1 has t= before c=.
    text = "v=0\r\no=c 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nc=IN IP4 192.0.2.4\r\n"
    assert sdp.parse(text).serialize() == text


def test_description_changed_in_code_falls_back_to_rfc_order() -> None:
    description = sdp.parse("v=0\r\no=c 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nc=IN IP4 192.0.2.4\r\n")
    description.bandwidths.append(Bandwidth("AS", 64))
    assert description.serialize().endswith("c=IN IP4 192.0.2.4\r\nb=AS:64\r\nt=0 0\r\n")


def test_line_order_does_not_affect_equality() -> None:
    reordered = sdp.parse("v=0\r\no=c 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nc=IN IP4 a\r\n")
    assert reordered == sdp.parse("v=0\r\no=c 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 a\r\nt=0 0\r\n")


def test_default_timing_is_t_0_0() -> None:
    # RFC 3264 §5: an offer's t= line should be "0 0".
    description = SessionDescription(origin=Origin("-", "1", "1", "IN", "IP4", "h"))
    assert description.timings == [Timing(0, 0)]


def test_origin_next_version_increments_by_one() -> None:
    origin = Origin("-", "7", "2890844526", "IN", "IP4", "h")
    assert origin.next_version().sess_version == "2890844527"


def test_non_numeric_origin_version_restarts_at_one() -> None:
    # Cisco 79xx phones send "o=Cisco-SIPUA (null) (null) ...".
    origin = Origin.parse("Cisco-SIPUA (null) (null) IN IP4 192.168.1.100")
    assert (origin.version_number, origin.next_version().sess_version) == (None, "1")


def test_parse_classmethod_is_sdp_parse() -> None:
    assert SessionDescription.parse(RFC8866_EXAMPLE) == sdp.parse(RFC8866_EXAMPLE)
