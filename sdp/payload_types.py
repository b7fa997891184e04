"""Static RTP payload types, known without an ``a=rtpmap`` (RFC 3551 §6, Tables 4 and 5)."""

from __future__ import annotations

from sdp.attributes import RtpMap

# PT 1 and 2 are "reserved" in RFC 3551 (they were 1016 and G721 in RFC 1890) and 14 (MPA)
# has no fixed channel count; MPA is listed with the RTP default of one.
STATIC_PAYLOAD_TYPES: dict[int, RtpMap] = {
    rtpmap.payload_type: rtpmap
    for rtpmap in (
        RtpMap(0, "PCMU", 8000),
        RtpMap(3, "GSM", 8000),
        RtpMap(4, "G723", 8000),
        RtpMap(5, "DVI4", 8000),
        RtpMap(6, "DVI4", 16000),
        RtpMap(7, "LPC", 8000),
        RtpMap(8, "PCMA", 8000),
        RtpMap(9, "G722", 8000),
        RtpMap(10, "L16", 44100, 2),
        RtpMap(11, "L16", 44100),
        RtpMap(12, "QCELP", 8000),
        RtpMap(13, "CN", 8000),
        RtpMap(14, "MPA", 90000),
        RtpMap(15, "G728", 8000),
        RtpMap(16, "DVI4", 11025),
        RtpMap(17, "DVI4", 22050),
        RtpMap(18, "G729", 8000),
        RtpMap(25, "CelB", 90000),
        RtpMap(26, "JPEG", 90000),
        RtpMap(28, "nv", 90000),
        RtpMap(31, "H261", 90000),
        RtpMap(32, "MPV", 90000),
        RtpMap(33, "MP2T", 90000),
        RtpMap(34, "H263", 90000),
    )
}

# RFC 3551 §3: 96-127 are dynamic; 35-71 and 77-95 are unassigned and may be used
# dynamically when those run out (72-76 would collide with RTCP packet types, RFC 5761 §4).
DYNAMIC_PAYLOAD_TYPES: tuple[int, ...] = (*range(96, 128), *range(35, 72), *range(77, 96))


def static_payload_type(name: str, clock_rate: int, channels: int = 1) -> int | None:
    """The static payload type of a codec, if RFC 3551 assigns one."""
    folded = name.casefold()
    for rtpmap in STATIC_PAYLOAD_TYPES.values():
        if (
            rtpmap.encoding_name.casefold() == folded
            and rtpmap.clock_rate == clock_rate
            and rtpmap.channels == channels
        ):
            return rtpmap.payload_type
    return None
