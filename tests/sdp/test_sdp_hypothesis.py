"""Property tests: garbage raises only SdpError; generated descriptions round-trip."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sdp_corpus import REAL_WORLD, RFC3264, RFC4317, real_world_files, sdp_bytes, sdp_files

import sdp
from sdp import (
    Attribute,
    Bandwidth,
    Capabilities,
    Codec,
    Connection,
    MediaCapabilities,
    MediaDescription,
    Origin,
    RepeatTime,
    SdpError,
    SessionDescription,
    TelephoneEvent,
    TimeZoneAdjustment,
    Timing,
)

CORPUS = [
    sdp_bytes(path) for path in (*sdp_files(RFC4317), *sdp_files(RFC3264), *real_world_files())
]
FUZZ_SEEDS = REAL_WORLD.parent.parent / "fuzz" / "pjproject-oss-fuzz-seeds" / "fuzz-sdp"
ANSWERER = Capabilities(
    address="192.0.2.9",
    media=[
        MediaCapabilities(
            "audio",
            5004,
            [Codec("PCMU", 8000), Codec("opus", 48000, 2)],
            telephone_event=TelephoneEvent(),
        ),
        MediaCapabilities("video", 5006, [Codec("H264", 90000), Codec("VP8", 90000)]),
    ],
)


def exercise(data: str | bytes) -> None:
    """Parse; when that works, every reader and the engine must work too."""
    try:
        description = sdp.parse(data)
    except SdpError:
        return
    assert sdp.parse(description.serialize()) == description
    for media in description.media:
        media.codecs()
        _ = (media.ptime, media.maxptime, media.rtcp, media.crypto, media.direction)
        for fmt in media.formats:
            media.fmtp(fmt)
    answer = sdp.create_answer(description, ANSWERER)
    sdp.negotiate(answer, description)


# -- garbage -----------------------------------------------------------------------------


@given(st.text())
def test_any_text_raises_only_sdp_error(text: str) -> None:
    exercise(text)


@given(st.binary())
def test_any_bytes_raise_only_sdp_error(data: bytes) -> None:
    exercise(data)


LINE_TYPES = "vosiuepcbtrzkamxf"
line = st.builds(
    "{}={}".format,
    st.sampled_from(LINE_TYPES),
    st.text(alphabet=" /:0123456789IPN4-*.abcdeftpmsx\t", max_size=30),
)


@given(st.lists(line, max_size=15), st.sampled_from(["\r\n", "\n"]))
def test_line_shaped_garbage_raises_only_sdp_error(lines: list[str], end: str) -> None:
    exercise("v=0" + end + "o=- 1 1 IN IP4 h" + end + "s=-" + end + end.join(lines))


@st.composite
def mutated_corpus(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(["delete", "insert", "replace", "duplicate"]))
        if operation == "delete":
            del data[position : position + draw(st.integers(1, 8))]
        elif operation == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif operation == "replace" and position < len(data):
            data[position] = draw(st.sampled_from(b" \r\n=:/0123456789-a\xff\x00"))
        else:
            data[position:position] = data[position : position + draw(st.integers(1, 40))]
    return bytes(data)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_corpus())
def test_mutated_corpus_descriptions_raise_only_sdp_error(data: bytes) -> None:
    exercise(data)


@pytest.mark.parametrize("path", sorted(FUZZ_SEEDS.glob("*")), ids=lambda p: p.name)
def test_oss_fuzz_seeds_raise_only_sdp_error(path: Path) -> None:
    exercise(path.read_bytes())


# -- generated descriptions --------------------------------------------------------------

token = st.text(
    alphabet=string.ascii_letters + string.digits + "-.+_!#$%&'*^`{|}~", min_size=1, max_size=10
)
number = st.integers(0, 2**32).map(str)
# Free text (s=, i=, u=, e=, p=, k=, attribute values): anything but CR and LF.
free_text = st.text(
    st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]), max_size=20
)
typed_time = st.builds(
    "{}{}".format, st.integers(0, 10**6), st.sampled_from(["", "d", "h", "m", "s"])
)


@st.composite
def connections(draw: st.DrawFn) -> Connection:
    addrtype = draw(st.sampled_from(["IP4", "IP6", "X"]))
    address = draw(token.filter(lambda t: "/" not in t))
    if addrtype == "IP4":
        ttl = draw(st.none() | st.integers(0, 255))
        count = draw(st.none() | st.integers(1, 255)) if ttl is not None else None
        return Connection("IN", addrtype, address, ttl, count)
    if addrtype == "IP6":
        return Connection("IN", addrtype, address, None, draw(st.none() | st.integers(1, 255)))
    return Connection("IN", addrtype, address)


attributes = st.builds(Attribute, token, st.none() | free_text)
bandwidths = st.builds(Bandwidth, token.filter(lambda t: ":" not in t), st.integers(0, 10**9))
repeat_times = st.builds(
    RepeatTime, typed_time, typed_time, st.lists(typed_time, min_size=1, max_size=3).map(tuple)
)
timings = st.builds(
    Timing,
    st.integers(0, 2**40),
    st.integers(0, 2**40),
    st.lists(repeat_times, max_size=2).map(tuple),
)
time_zones = st.builds(
    TimeZoneAdjustment, st.integers(0, 2**40), st.sampled_from(["0", "-1h", "25m", "3600"])
)
media_descriptions = st.builds(
    MediaDescription,
    media=token,
    port=st.integers(0, 65535),
    proto=st.builds("{}/{}".format, token, token),
    formats=st.lists(token, max_size=5),
    port_count=st.none() | st.integers(1, 8),
    information=st.none() | free_text,
    connections=st.lists(connections(), max_size=2),
    bandwidths=st.lists(bandwidths, max_size=2),
    key=st.none() | free_text,
    attributes=st.lists(attributes, max_size=6),
)
session_descriptions = st.builds(
    SessionDescription,
    origin=st.builds(
        Origin, token, number, number, st.just("IN"), st.sampled_from(["IP4", "IP6"]), token
    ),
    session_name=free_text,
    information=st.none() | free_text,
    uri=st.none() | free_text,
    emails=st.lists(free_text, max_size=2),
    phones=st.lists(free_text, max_size=2),
    connection=st.none() | connections(),
    bandwidths=st.lists(bandwidths, max_size=2),
    timings=st.lists(timings, max_size=3),
    time_zones=st.lists(time_zones, max_size=2),
    key=st.none() | free_text,
    attributes=st.lists(attributes, max_size=4),
    media=st.lists(media_descriptions, max_size=3),
)


@given(session_descriptions)
def test_parse_of_serialize_is_identity(description: SessionDescription) -> None:
    assert sdp.parse(description.serialize()) == description


@given(session_descriptions)
def test_serialize_of_parse_of_serialize_is_stable(description: SessionDescription) -> None:
    text = description.serialize()
    assert sdp.parse(text.encode("utf-8")).serialize() == text


# -- offer/answer over generated offers ---------------------------------------------------

POOL = {
    "audio": [
        ("0", "PCMU/8000"),
        ("8", "PCMA/8000"),
        ("9", "G722/8000"),
        ("18", "G729/8000"),
        ("96", "opus/48000/2"),
        ("97", "iLBC/8000"),
        ("101", "telephone-event/8000"),
        ("102", "telephone-event/48000"),
    ],
    "video": [("31", "H261/90000"), ("32", "MPV/90000"), ("98", "VP8/90000")],
}
# RFC 3264 §6.1: what may answer each offered direction.
ALLOWED_ANSWERS = {
    "sendrecv": {"sendrecv", "sendonly", "recvonly", "inactive"},
    "sendonly": {"recvonly", "inactive"},
    "recvonly": {"sendonly", "inactive"},
    "inactive": {"inactive"},
}


@st.composite
def rtp_offers(draw: st.DrawFn) -> SessionDescription:
    lines = ["v=0", "o=a 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0"]
    for _ in range(draw(st.integers(0, 4))):
        media = draw(st.sampled_from(["audio", "video", "text"]))
        formats = draw(
            st.lists(
                st.sampled_from(POOL.get(media, POOL["audio"])), min_size=1, max_size=5, unique=True
            )
        )
        port = draw(st.sampled_from([0, 4000, 4002]))
        lines.append(f"m={media} {port} RTP/AVP " + " ".join(pt for pt, _ in formats))
        lines.extend(f"a=rtpmap:{pt} {name}" for pt, name in formats)
        direction = draw(st.sampled_from([None, *ALLOWED_ANSWERS]))
        if direction is not None:
            lines.append(f"a={direction}")
    return sdp.parse("\r\n".join(lines) + "\r\n")


@st.composite
def answerers(draw: st.DrawFn) -> Capabilities:
    streams = []
    for port in range(5000, 5000 + 2 * draw(st.integers(0, 3)), 2):
        media = draw(st.sampled_from(["audio", "video"]))
        chosen = draw(st.lists(st.sampled_from(POOL[media]), max_size=4, unique=True))
        codecs = [Codec.from_rtpmap(sdp.RtpMap.parse(f"{pt} {name}")) for pt, name in chosen]
        streams.append(
            MediaCapabilities(
                media,
                port,
                [c for c in codecs if c.name != "telephone-event"],
                direction=draw(st.sampled_from(list(sdp.Direction))),
                telephone_event=draw(st.none() | st.just(TelephoneEvent())),
            )
        )
    return Capabilities(address="192.0.2.9", media=streams)


@given(rtp_offers(), answerers())
def test_any_answer_follows_rfc3264(offer: SessionDescription, answerer: Capabilities) -> None:
    answer = sdp.create_answer(offer, answerer)
    assert [m.media for m in answer.media] == [m.media for m in offer.media]
    for offered, answered in zip(offer.media, answer.media, strict=True):
        assert answered.formats, "a refused stream still lists a format (RFC 3264 §6)"
        if offered.port == 0:
            assert answered.port == 0
        if answered.port == 0:
            continue
        assert set(answered.payload_types) <= set(offered.payload_types)
        for payload_type in answered.payload_types:
            assert answered.rtpmap(payload_type) == offered.rtpmap(payload_type)
        offered_direction = offer.media_direction(offered).value
        assert answer.media_direction(answered).value in ALLOWED_ANSWERS[offered_direction]
    assert sdp.parse(answer.serialize()) == answer
    for stream in sdp.process_answer(offer, answer):
        offered_names = {c.encoding_name for c in offer.media[stream.index].codecs()}
        assert {c.name for c in stream.codecs} <= offered_names
