"""RFC 3264 offer/answer rules, one behaviour per test."""

from __future__ import annotations

import pytest

import sdp
from sdp import (
    Capabilities,
    Codec,
    Crypto,
    Direction,
    KeyParam,
    MediaCapabilities,
    OfferAnswerError,
    SessionDescription,
    TelephoneEvent,
    create_answer,
    create_offer,
    negotiate,
    process_answer,
)

OUR_KEY = KeyParam.inline(bytes(range(30)))
THEIR_KEY = "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"


def offer_of(*media_lines: str, connection: str = "192.0.2.1") -> SessionDescription:
    head = ["v=0", "o=alice 1 1 IN IP4 192.0.2.1", "s=-", f"c=IN IP4 {connection}", "t=0 0"]
    return sdp.parse("".join(f"{line}\r\n" for line in (*head, *media_lines)))


def audio(*codecs: Codec, **options: object) -> Capabilities:
    stream = MediaCapabilities("audio", 5004, list(codecs or [Codec("PCMU", 8000)]))
    for name, value in options.items():
        setattr(stream, name, value)
    return Capabilities(address="192.0.2.9", media=[stream], username="bob", session_id="7")


def answered(offer: SessionDescription, capabilities: Capabilities) -> sdp.MediaDescription:
    return create_answer(offer, capabilities).media[0]


# -- directions (RFC 3264 §6.1) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("offered", "preference", "expected"),
    [
        ("sendonly", Direction.SENDRECV, Direction.RECVONLY),
        ("recvonly", Direction.SENDRECV, Direction.SENDONLY),
        ("inactive", Direction.SENDRECV, Direction.INACTIVE),
        ("sendrecv", Direction.SENDONLY, Direction.SENDONLY),
    ],
    ids=[
        "test_sendonly_offer_is_answered_recvonly",
        "test_recvonly_offer_is_answered_sendonly",
        "test_inactive_offer_is_answered_inactive",
        "test_sendrecv_offer_is_answered_with_the_local_preference",
    ],
)
def test_offered_direction_is_answered_as_rfc3264_says(
    offered: str, preference: Direction, expected: Direction
) -> None:
    offer = offer_of("m=audio 4000 RTP/AVP 0", f"a={offered}")
    assert answered(offer, audio(direction=preference)).direction is expected


def test_sendonly_offer_to_a_sendonly_answerer_is_answered_inactive() -> None:
    offer = offer_of("m=audio 4000 RTP/AVP 0", "a=sendonly")
    assert answered(offer, audio(direction=Direction.SENDONLY)).direction is Direction.INACTIVE


def test_session_level_direction_of_the_offer_is_honoured() -> None:
    offer = offer_of("a=sendonly", "m=audio 4000 RTP/AVP 0")
    assert answered(offer, audio()).direction is Direction.RECVONLY


def test_sendrecv_answer_to_an_offer_without_direction_writes_none() -> None:
    assert answered(offer_of("m=audio 4000 RTP/AVP 0"), audio()).direction is None


# -- formats (RFC 3264 §6.1) -------------------------------------------------------------


def test_answer_uses_the_offer_payload_type_for_a_dynamic_codec() -> None:
    offer = offer_of("m=audio 4000 RTP/AVP 97", "a=rtpmap:97 iLBC/8000")
    answer = answered(offer, audio(Codec("iLBC", 8000, payload_type=99)))
    assert (answer.formats, answer.rtpmap(97)) == (["97"], sdp.RtpMap(97, "iLBC", 8000))


def test_codec_names_match_without_regard_to_case() -> None:
    offer = offer_of("m=audio 4000 RTP/AVP 8", "a=rtpmap:8 pcma/8000")
    assert answered(offer, audio(Codec("PCMA", 8000))).formats == ["8"]


def test_codec_with_another_clock_rate_does_not_match() -> None:
    offer = offer_of("m=audio 4000 RTP/AVP 96", "a=rtpmap:96 L16/16000")
    assert answered(offer, audio(Codec("L16", 8000))).port == 0


def test_codec_with_another_channel_count_does_not_match() -> None:
    offer = offer_of("m=audio 4000 RTP/AVP 111", "a=rtpmap:111 opus/48000/2")
    assert answered(offer, audio(Codec("opus", 48000, 1))).port == 0


def test_opus_fmtp_does_not_prevent_a_match() -> None:
    # RFC 7587 §7: opus parameters are receiver preferences.
    offer = offer_of(
        "m=audio 4000 RTP/AVP 111", "a=rtpmap:111 opus/48000/2", "a=fmtp:111 useinbandfec=1"
    )
    answer = answered(offer, audio(Codec("opus", 48000, 2, fmtp="stereo=1")))
    assert (answer.formats, answer.fmtp(111)) == (["111"], "stereo=1")


def test_h264_packetization_modes_must_agree() -> None:
    # RFC 6184 §8.2.2.
    offer = offer_of(
        "m=video 4000 RTP/AVP 97",
        "a=rtpmap:97 H264/90000",
        "a=fmtp:97 profile-level-id=42e01f;packetization-mode=1",
    )
    video = MediaCapabilities("video", 5006, [Codec("H264", 90000, fmtp="packetization-mode=0")])
    answer = create_answer(offer, Capabilities(address="192.0.2.9", media=[video]))
    assert answer.media[0].port == 0


def test_answer_lists_codecs_in_the_offer_order() -> None:
    offer = offer_of("m=audio 4000 RTP/AVP 8 0 9")
    answer = answered(offer, audio(Codec("G722", 8000), Codec("PCMU", 8000), Codec("PCMA", 8000)))
    assert answer.formats == ["8", "0", "9"]


def test_answer_contains_only_offered_codecs() -> None:
    offer = offer_of("m=audio 4000 RTP/AVP 0")
    answer = answered(offer, audio(Codec("PCMA", 8000), Codec("PCMU", 8000)))
    assert [c.encoding_name for c in answer.codecs()] == ["PCMU"]


def test_static_payload_type_without_rtpmap_is_matched() -> None:
    # RFC 3551 Table 4: 18 is G729/8000.
    assert answered(offer_of("m=audio 4000 RTP/AVP 18"), audio(Codec("G729", 8000))).formats == [
        "18"
    ]


def test_dynamic_payload_type_without_rtpmap_is_ignored() -> None:
    answer = answered(offer_of("m=audio 4000 RTP/AVP 98 0"), audio(Codec("PCMU", 8000)))
    assert answer.formats == ["0"]


def test_answer_writes_rtpmap_for_static_payload_types_too() -> None:
    # RFC 3264 §6.1: rtpmap SHOULD be present for static types as well.
    answer = answered(offer_of("m=audio 4000 RTP/AVP 0"), audio())
    assert answer.attribute_values("rtpmap") == ["0 PCMU/8000"]


# -- telephone events (RFC 4733) ---------------------------------------------------------


def test_telephone_event_is_answered_with_the_common_events() -> None:
    offer = offer_of(
        "m=audio 4000 RTP/AVP 0 101", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16"
    )
    answer = answered(offer, audio(telephone_event=TelephoneEvent(events="0-15")))
    assert (answer.formats, answer.fmtp(101)) == (["0", "101"], "0-15")


def test_telephone_event_needs_a_codec_of_its_clock_rate() -> None:
    offer = offer_of("m=audio 4000 RTP/AVP 0 110", "a=rtpmap:110 telephone-event/48000")
    assert answered(offer, audio(telephone_event=TelephoneEvent())).formats == ["0"]


def test_telephone_event_without_local_support_is_left_out() -> None:
    offer = offer_of("m=audio 4000 RTP/AVP 0 101", "a=rtpmap:101 telephone-event/8000")
    assert answered(offer, audio()).formats == ["0"]


def test_stream_of_events_alone_is_accepted_for_them() -> None:
    # RFC 4317 §2.4 / RFC 3264 §10.1: a second audio stream carrying only events.
    offer = offer_of("m=audio 4000 RTP/AVP 98", "a=rtpmap:98 telephone-event/8000")
    events_only = MediaCapabilities("audio", 5010, telephone_event=TelephoneEvent())
    answer = create_answer(offer, Capabilities(address="192.0.2.9", media=[events_only]))
    assert (answer.media[0].port, answer.media[0].formats) == (5010, ["98"])


def test_negotiated_telephone_event_is_the_peers_payload_type() -> None:
    offer = offer_of("m=audio 4000 RTP/AVP 0 101", "a=rtpmap:101 telephone-event/8000")
    answer = create_answer(offer, audio(telephone_event=TelephoneEvent()))
    [stream] = negotiate(answer, offer)
    assert stream.telephone_event_payload_type == 101


def test_events_and_codecs_are_received_by_our_own_payload_types_rfc3264_6_1() -> None:
    # we offered opus as 96 and events as 101; an answerer that numbers them 111 and 100
    # sends with ours, so the numbers to receive by are 96 and 101, to send with 111 and 100
    ours = audio(Codec("opus", 48000, 2), telephone_event=TelephoneEvent())
    offer = create_offer(ours)
    answer = offer_of(
        "m=audio 4000 RTP/AVP 111 100",
        "a=rtpmap:111 opus/48000/2",
        "a=rtpmap:100 telephone-event/48000",
    )
    [stream] = negotiate(offer, answer)
    assert [c.payload_type for c in stream.codecs] == [111]
    assert [c.payload_type for c in stream.local_codecs] == [96]
    assert stream.telephone_event_payload_type == 100
    assert stream.local_telephone_event_payload_type == 101


def test_offer_has_a_telephone_event_per_audio_clock_rate() -> None:
    offer = create_offer(
        audio(Codec("opus", 48000, 2), Codec("PCMU", 8000), telephone_event=TelephoneEvent())
    )
    assert offer.media[0].attribute_values("rtpmap") == [
        "96 opus/48000/2",
        "0 PCMU/8000",
        "101 telephone-event/48000",
        "97 telephone-event/8000",
    ]


# -- refused streams (RFC 3264 §6) -------------------------------------------------------


def test_unsupported_media_type_is_refused_with_port_zero() -> None:
    offer = offer_of("m=video 4002 RTP/AVP 31")
    assert answered(offer, audio()).port == 0


def test_stream_without_a_common_codec_is_refused_with_port_zero() -> None:
    assert answered(offer_of("m=audio 4000 RTP/AVP 8"), audio(Codec("PCMU", 8000))).port == 0


def test_refused_stream_keeps_media_proto_and_one_format() -> None:
    offer = offer_of("m=video 4002 RTP/AVP 31 32", "a=rtpmap:31 H261/90000")
    refused = answered(offer, audio())
    assert refused.media_line() == "m=video 0 RTP/AVP 31"


def test_refused_stream_without_formats_still_lists_one() -> None:
    # RFC 3264 §6: at least one format must be present; the Cisco IOS m= line has none.
    assert answered(offer_of("m=video 36924 RTP/AVP"), audio()).formats == ["0"]


def test_stream_offered_with_port_zero_is_answered_with_port_zero() -> None:
    assert answered(offer_of("m=audio 0 RTP/AVP 0"), audio()).port == 0


def test_answer_keeps_the_offer_stream_count_and_order() -> None:
    offer = offer_of("m=video 4002 RTP/AVP 31", "m=audio 4000 RTP/AVP 0", "m=image 4004 udptl t38")
    answer = create_answer(offer, audio())
    assert [(m.media, m.port) for m in answer.media] == [
        ("video", 0),
        ("audio", 5004),
        ("image", 0),
    ]


def test_second_stream_of_a_type_uses_the_next_capability() -> None:
    offer = offer_of("m=audio 4000 RTP/AVP 0", "m=audio 4010 RTP/AVP 0")
    capabilities = audio()
    capabilities.media.append(MediaCapabilities("audio", 5020, [Codec("PCMU", 8000)]))
    assert [m.port for m in create_answer(offer, capabilities).media] == [5004, 5020]


def test_stream_beyond_the_capabilities_is_refused() -> None:
    offer = offer_of("m=audio 4000 RTP/AVP 0", "m=audio 4010 RTP/AVP 0")
    assert [m.port for m in create_answer(offer, audio()).media] == [5004, 0]


def test_stream_in_an_unsupported_transport_is_refused() -> None:
    assert answered(offer_of("m=audio 4000 RTP/AVPF 0"), audio()).port == 0


# -- packet time (RFC 8866 §6.4, RFC 3264 §6.1) ------------------------------------------


def test_answer_carries_the_local_ptime_preference() -> None:
    assert answered(offer_of("m=audio 4000 RTP/AVP 0"), audio(ptime=30)).ptime == 30


def test_negotiated_ptime_is_the_peers() -> None:
    offer = offer_of("m=audio 4000 RTP/AVP 0", "a=ptime:30", "a=maxptime:60")
    answer = create_answer(offer, audio(ptime=20))
    [stream] = negotiate(answer, offer)
    assert (stream.ptime, stream.maxptime) == (30.0, 60.0)


# -- hold (RFC 3264 §8.4) ----------------------------------------------------------------


def test_legacy_hold_offer_is_reported_on_hold() -> None:
    offer = offer_of("m=audio 4000 RTP/AVP 0", connection="0.0.0.0")
    [stream] = negotiate(create_answer(offer, audio()), offer)
    assert (stream.on_hold, stream.legacy_hold, stream.direction) == (
        True,
        True,
        Direction.RECVONLY,
    )


def test_legacy_hold_answer_is_reported_on_hold() -> None:
    # RFC 4317 §5.3: the answerer gives c=IN IP4 0.0.0.0.
    offer = create_offer(audio())
    answer = offer_of("m=audio 9322 RTP/AVP 0", connection="0.0.0.0")
    [stream] = process_answer(offer, answer)
    assert (stream.legacy_hold, stream.direction.sends) == (True, False)


def test_sendonly_answer_puts_the_offerer_on_hold() -> None:
    offer = create_offer(audio())
    [stream] = process_answer(offer, offer_of("m=audio 4000 RTP/AVP 0", "a=sendonly"))
    assert (stream.on_hold, stream.direction) == (True, Direction.RECVONLY)


def test_hold_reoffer_is_sendonly_and_keeps_payload_types() -> None:
    first = create_offer(audio(Codec("iLBC", 8000)))
    hold = create_offer(audio(Codec("iLBC", 8000), direction=Direction.SENDONLY), first)
    media = hold.media[0]
    assert (media.direction, media.formats) == (Direction.SENDONLY, first.media[0].formats)


# -- session version (RFC 3264 §8) -------------------------------------------------------


def test_repeated_answer_keeps_the_session_version() -> None:
    offer = offer_of("m=audio 4000 RTP/AVP 0")
    first = create_answer(offer, audio())
    assert create_answer(offer, audio(), first).origin == first.origin


def test_changed_answer_increments_the_session_version() -> None:
    offer = offer_of("m=audio 4000 RTP/AVP 0")
    first = create_answer(offer, audio())
    second = create_answer(offer, audio(ptime=20), first)
    assert (first.origin.sess_version, second.origin.sess_version) == ("7", "8")


def test_reoffer_keeps_the_origin_but_for_the_version() -> None:
    first = create_offer(audio())
    changed = Capabilities(address="198.51.100.7", media=audio().media, username="other")
    origin = create_offer(changed, first).origin
    assert (origin.username, origin.address, origin.sess_version) == ("bob", "192.0.2.9", "8")


def test_reoffer_keeps_payload_type_numbers() -> None:
    # RFC 3264 §8.3.2: a number once used for a codec stays with it.
    first = create_offer(audio(Codec("speex", 8000), Codec("iLBC", 8000)))
    again = create_offer(audio(Codec("iLBC", 8000)), first)
    assert (first.media[0].formats, again.media[0].formats) == (["96", "97"], ["97"])


def test_reoffer_with_fewer_streams_keeps_the_removed_ones_with_port_zero() -> None:
    # RFC 3264 §8.2: a stream is removed by port zero, never by leaving its m= line out.
    capabilities = audio()
    capabilities.media.append(MediaCapabilities("video", 5006, [Codec("H261", 90000)]))
    first = create_offer(capabilities)
    again = create_offer(audio(), first)
    assert [(m.media, m.port) for m in again.media] == [("audio", 5004), ("video", 0)]


# -- offers ------------------------------------------------------------------------------


def test_offer_numbers_dynamic_codecs_from_96() -> None:
    offer = create_offer(audio(Codec("speex", 16000), Codec("iLBC", 8000)))
    assert offer.media[0].formats == ["96", "97"]


def test_offer_uses_static_payload_types_for_known_codecs() -> None:
    offer = create_offer(audio(Codec("PCMA", 8000), Codec("G722", 8000)))
    assert offer.media[0].formats == ["8", "9"]


def test_offer_skips_payload_types_claimed_by_later_codecs() -> None:
    offer = create_offer(audio(Codec("speex", 8000), Codec("iLBC", 8000, payload_type=96)))
    assert offer.media[0].formats == ["97", "96"]


def test_offer_puts_a_media_level_connection_for_another_address() -> None:
    # RFC 4317 §2.8: video on another host.
    offer = create_offer(audio(address="198.51.100.3"))
    assert [str(c) for c in offer.media[0].connections] == ["IN IP4 198.51.100.3"]


def test_offer_on_ipv6_uses_addrtype_ip6() -> None:
    capabilities = audio()
    capabilities.address = "2001:db8::9"
    offer = create_offer(capabilities)
    assert (offer.origin.addrtype, str(offer.connection)) == ("IP6", "IN IP6 2001:db8::9")


# -- SDES keys (RFC 4568) ----------------------------------------------------------------


def secure_offer() -> SessionDescription:
    return offer_of(
        "m=audio 4000 RTP/SAVP 0",
        f"a=crypto:1 AES_256_CM_HMAC_SHA1_80 {THEIR_KEY}",
        f"a=crypto:2 AES_CM_128_HMAC_SHA1_80 {THEIR_KEY}",
        f"a=crypto:3 AES_CM_128_HMAC_SHA1_32 {THEIR_KEY}",
    )


def secure_audio(*suites: str) -> Capabilities:
    keys = [Crypto(0, suite, (OUR_KEY,)) for suite in suites]
    return audio(protos=("RTP/SAVP",), crypto=keys)


def test_answer_chooses_the_first_offered_suite_it_supports() -> None:
    answer = answered(
        secure_offer(), secure_audio("AES_CM_128_HMAC_SHA1_32", "AES_CM_128_HMAC_SHA1_80")
    )
    [crypto] = answer.crypto
    assert (crypto.tag, crypto.crypto_suite, crypto.key_params) == (
        2,
        "AES_CM_128_HMAC_SHA1_80",
        (OUR_KEY,),
    )


def test_secure_stream_without_a_common_suite_is_refused() -> None:
    assert answered(secure_offer(), secure_audio("AEAD_AES_128_GCM")).port == 0


def test_negotiated_crypto_pairs_local_and_remote_keys() -> None:
    offer = secure_offer()
    answer = create_answer(offer, secure_audio("AES_CM_128_HMAC_SHA1_80"))
    [stream] = negotiate(answer, offer)
    assert stream.local_crypto is not None and stream.remote_crypto is not None
    assert (stream.local_crypto.key_params, str(stream.remote_crypto.key_params[0])) == (
        (OUR_KEY,),
        THEIR_KEY,
    )


# -- processing an answer (RFC 3264 §6, §7) ----------------------------------------------


def test_answer_with_another_stream_count_is_rejected() -> None:
    offer = create_offer(audio())
    with pytest.raises(OfferAnswerError, match="media descriptions"):
        process_answer(offer, offer_of())


def test_answer_with_another_media_type_is_rejected() -> None:
    with pytest.raises(OfferAnswerError, match="'video' in the answer"):
        process_answer(create_offer(audio()), offer_of("m=video 4000 RTP/AVP 0"))


def test_answer_codecs_that_were_not_offered_are_ignored() -> None:
    offer = create_offer(audio())
    [stream] = process_answer(offer, offer_of("m=audio 4000 RTP/AVP 8 0"))
    assert [c.name for c in stream.codecs] == ["PCMU"]


def test_negotiated_codecs_carry_the_answer_payload_types() -> None:
    # RFC 4317 §2.3: the answerer receives iLBC as 99, so 99 is sent to it.
    offer = create_offer(audio(Codec("iLBC", 8000, payload_type=97)))
    [stream] = process_answer(offer, offer_of("m=audio 4000 RTP/AVP 99", "a=rtpmap:99 iLBC/8000"))
    assert [(c.name, c.payload_type) for c in stream.codecs] == [("iLBC", 99)]


def test_negotiated_remote_address_and_port_come_from_the_answer() -> None:
    [stream] = process_answer(create_offer(audio()), offer_of("m=audio 4000 RTP/AVP 0"))
    assert (stream.remote_address, stream.remote_port) == ("192.0.2.1", 4000)


def test_remote_rtcp_defaults_to_the_next_port() -> None:
    [stream] = process_answer(create_offer(audio()), offer_of("m=audio 4000 RTP/AVP 0"))
    assert stream.remote_rtcp_port == 4001


def test_remote_rtcp_attribute_gives_its_port_and_address() -> None:
    answer = offer_of("m=audio 4000 RTP/AVP 0", "a=rtcp:4444 IN IP4 198.51.100.4")
    [stream] = process_answer(create_offer(audio()), answer)
    assert (stream.remote_rtcp_address, stream.remote_rtcp_port) == ("198.51.100.4", 4444)


def test_rtcp_mux_on_both_sides_shares_the_rtp_port() -> None:
    offer = create_offer(audio(rtcp_mux=True))
    [stream] = process_answer(offer, offer_of("m=audio 4000 RTP/AVP 0", "a=rtcp-mux"))
    assert (stream.rtcp_mux, stream.remote_rtcp_port) == (True, 4000)


def test_refused_stream_is_negotiated_as_not_accepted() -> None:
    [stream] = process_answer(create_offer(audio()), offer_of("m=audio 0 RTP/AVP 0"))
    assert (stream.accepted, stream.codecs, stream.direction) == (False, (), Direction.INACTIVE)
