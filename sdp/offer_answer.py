"""The RFC 3264 offer/answer engine: offers, answers and what they agree on.

Sans-I/O: descriptions and capabilities in, descriptions and :class:`NegotiatedMedia`
out. Streams pair up by position (RFC 3264 §6); a stream is refused with port zero;
``o=`` keeps its version when a description repeats the previous one and increments it
by one otherwise (RFC 3264 §8).
"""

from __future__ import annotations

from dataclasses import dataclass

from mypy_extensions import mypyc_attr

from sdp._value import FrozenValue
from sdp.attributes import Attribute, Direction, RtpMap
from sdp.capabilities import TELEPHONE_EVENT, Capabilities, Codec, MediaCapabilities
from sdp.crypto import Crypto
from sdp.dtls import DTLS_PROTOS, Fingerprint, Setup
from sdp.errors import OfferAnswerError
from sdp.fields import Connection, Origin
from sdp.formats import (
    fmtp_compatible,
    format_telephone_events,
    telephone_events,
)
from sdp.media import MediaDescription
from sdp.payload_types import DYNAMIC_PAYLOAD_TYPES, STATIC_PAYLOAD_TYPES, static_payload_type
from sdp.session import SessionDescription

# RTP profiles whose keys travel in a=crypto (RFC 4568 §3.1.4, RFC 5124).
SECURE_PROTOS = frozenset(("RTP/SAVP", "RTP/SAVPF"))
_PREFERRED_TELEPHONE_EVENT_PT = 101


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(frozen=True, slots=True)
class NegotiatedMedia(FrozenValue):
    """What one stream became after offer and answer, seen from the local side.

    ``codecs`` are the formats to send with, in the peer's order of preference and with
    the peer's payload type numbers (RFC 3264 §6.1: send with the numbers the receiver
    listed); telephone events are apart in ``telephone_event``. ``direction`` is what the
    local side may do (``sendonly``: send, do not expect media). ``on_hold`` says the peer
    asked for no media: ``a=sendonly``/``a=inactive`` or the RFC 2543 ``c=IN IP4 0.0.0.0``
    (``legacy_hold``), after which neither RTP nor RTCP is sent to it (RFC 3264 §8.4).
    ``ptime``/``maxptime`` are the peer's wishes for the packets it receives.
    ``local_crypto`` keys what is sent, ``remote_crypto`` what is received (RFC 4568).
    ``local_codecs`` and ``local_telephone_event`` are the same formats with the local
    payload type numbers: those the peer's packets carry (§6.1), to be received by.
    With DTLS-SRTP (``UDP/TLS/RTP/SAVP``, RFC 5763) ``setup`` is the local end's role
    (``active``: the DTLS client; None when the descriptions agree on none),
    ``remote_fingerprints`` the certificate the peer must present, ``remote_tls_id`` its
    ``a=tls-id`` (RFC 8842): a change of either starts a new association.
    """

    index: int
    media: str
    accepted: bool
    proto: str
    codecs: tuple[Codec, ...] = ()
    direction: Direction = Direction.INACTIVE
    remote_address: str | None = None
    remote_port: int = 0
    remote_rtcp_address: str | None = None
    remote_rtcp_port: int = 0
    rtcp_mux: bool = False
    telephone_event: Codec | None = None
    ptime: float | None = None
    maxptime: float | None = None
    local_crypto: Crypto | None = None
    remote_crypto: Crypto | None = None
    on_hold: bool = False
    legacy_hold: bool = False
    local_codecs: tuple[Codec, ...] = ()
    local_telephone_event: Codec | None = None
    setup: Setup | None = None
    remote_fingerprints: tuple[Fingerprint, ...] = ()
    remote_tls_id: str | None = None

    def __init__(  # noqa: PLR0917  # positional, as @dataclass made it (FrozenValue pickles so)
        self,
        index: int,
        media: str,
        accepted: bool,
        proto: str,
        codecs: tuple[Codec, ...] = (),
        direction: Direction = Direction.INACTIVE,
        remote_address: str | None = None,
        remote_port: int = 0,
        remote_rtcp_address: str | None = None,
        remote_rtcp_port: int = 0,
        rtcp_mux: bool = False,
        telephone_event: Codec | None = None,
        ptime: float | None = None,
        maxptime: float | None = None,
        local_crypto: Crypto | None = None,
        remote_crypto: Crypto | None = None,
        on_hold: bool = False,
        legacy_hold: bool = False,
        local_codecs: tuple[Codec, ...] = (),
        local_telephone_event: Codec | None = None,
        setup: Setup | None = None,
        remote_fingerprints: tuple[Fingerprint, ...] = (),
        remote_tls_id: str | None = None,
    ) -> None:
        # Written out: native code compiled, where @dataclass's stays interpreted
        # (sdp.attributes.Attribute)
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "media", media)
        object.__setattr__(self, "accepted", accepted)
        object.__setattr__(self, "proto", proto)
        object.__setattr__(self, "codecs", codecs)
        object.__setattr__(self, "direction", direction)
        object.__setattr__(self, "remote_address", remote_address)
        object.__setattr__(self, "remote_port", remote_port)
        object.__setattr__(self, "remote_rtcp_address", remote_rtcp_address)
        object.__setattr__(self, "remote_rtcp_port", remote_rtcp_port)
        object.__setattr__(self, "rtcp_mux", rtcp_mux)
        object.__setattr__(self, "telephone_event", telephone_event)
        object.__setattr__(self, "ptime", ptime)
        object.__setattr__(self, "maxptime", maxptime)
        object.__setattr__(self, "local_crypto", local_crypto)
        object.__setattr__(self, "remote_crypto", remote_crypto)
        object.__setattr__(self, "on_hold", on_hold)
        object.__setattr__(self, "legacy_hold", legacy_hold)
        object.__setattr__(self, "local_codecs", local_codecs)
        object.__setattr__(self, "local_telephone_event", local_telephone_event)
        object.__setattr__(self, "setup", setup)
        object.__setattr__(self, "remote_fingerprints", remote_fingerprints)
        object.__setattr__(self, "remote_tls_id", remote_tls_id)

    @property
    def dtls(self) -> bool:
        """The stream's SRTP is keyed by a DTLS handshake on the media path (RFC 5764)."""
        return self.proto in DTLS_PROTOS

    @property
    def telephone_event_payload_type(self) -> int | None:
        """The peer's number for telephone events: what the events we send carry."""
        event = self.telephone_event
        return None if event is None else event.payload_type

    @property
    def local_telephone_event_payload_type(self) -> int | None:
        """Our number for telephone events: what the events the peer sends carry."""
        event = self.local_telephone_event
        return None if event is None else event.payload_type


# -- offers ------------------------------------------------------------------------------


def create_offer(
    capabilities: Capabilities, previous: SessionDescription | None = None
) -> SessionDescription:
    """An offer with one stream per :class:`MediaCapabilities`, in order.

    With ``previous`` (the last description this side sent in the session) the offer is a
    re-offer: streams keep their positions and payload type numbers (RFC 3264 §8.3.2),
    streams beyond the capabilities stay as refused with port zero (§8.2), and ``o=``
    follows §8.
    """
    media = []
    for index, stream in enumerate(capabilities.media):
        prior = None
        if previous is not None and index < len(previous.media):
            prior = previous.media[index]
        media.append(_offer_media(stream, capabilities, prior))
    if previous is not None:
        media.extend(_refused(old) for old in previous.media[len(capabilities.media) :])
    return _describe_session(capabilities, media, previous)


def _offer_media(
    stream: MediaCapabilities, capabilities: Capabilities, prior: MediaDescription | None
) -> MediaDescription:
    prior_maps = prior.codecs() if prior is not None else []
    reserved = {codec.payload_type for codec in stream.codecs if codec.payload_type is not None}
    used: set[int] = set()
    formats: list[tuple[RtpMap, str | None]] = []

    def number(codec: Codec, preferred: int | None) -> int:
        if codec.payload_type is not None:
            chosen = codec.payload_type
        else:
            candidates: list[int | None] = [
                rtpmap.payload_type for rtpmap in prior_maps if codec.same_codec(rtpmap)
            ]
            candidates.append(static_payload_type(codec.name, codec.clock_rate, codec.channels))
            candidates.append(preferred)
            candidates.extend(DYNAMIC_PAYLOAD_TYPES)
            free = [pt for pt in candidates if pt is not None and pt not in used | reserved]
            if not free:
                raise OfferAnswerError(f"no payload type number left for {codec.name}")
            chosen = free[0]
        used.add(chosen)
        return chosen

    for codec in stream.codecs:
        rtpmap = RtpMap(number(codec, None), codec.name, codec.clock_rate, codec.channels)
        formats.append((rtpmap, codec.fmtp))
    event = stream.telephone_event
    if event is not None:
        # RFC 4733 §2.1: events use the clock rate of the audio they go with, so one
        # telephone-event format is offered per audio clock rate (8000 without codecs).
        rates = dict.fromkeys(c.clock_rate for c in stream.codecs if not c.is_telephone_event)
        for rate in rates or (8000,):
            codec = Codec(TELEPHONE_EVENT, rate, fmtp=event.events)
            preferred = event.payload_type
            if preferred is None:
                preferred = _PREFERRED_TELEPHONE_EVENT_PT
            formats.append((RtpMap(number(codec, preferred), TELEPHONE_EVENT, rate), event.events))
    if not formats:
        raise OfferAnswerError(f"the {stream.media} stream has no codec to offer")
    description = MediaDescription(stream.media, stream.port, stream.protos[0])
    _fill_media(description, formats, stream, capabilities)
    if description.proto in DTLS_PROTOS:
        # RFC 5763 §5: the offerer says actpass, the answerer picks the DTLS roles
        _add_dtls(description, stream, Setup.ACTPASS)
    else:
        for crypto in stream.crypto:
            description.attributes.append(Attribute("crypto", str(crypto)))
    if stream.rtcp_mux:
        description.attributes.append(Attribute("rtcp-mux"))
    if stream.direction is not Direction.SENDRECV:
        description.direction = stream.direction
    return description


# -- answers -----------------------------------------------------------------------------


def create_answer(
    offer: SessionDescription,
    capabilities: Capabilities,
    previous: SessionDescription | None = None,
) -> SessionDescription:
    """The answer to ``offer``: one stream per offered stream, same order (RFC 3264 §6).

    Each offered stream takes the first unused :class:`MediaCapabilities` of its media
    type that has a format in common with it; a stream with none, or offered with port
    zero, is refused with port zero. Accepted formats keep the offer's payload type
    numbers and order (§6.1), and only offered formats appear. ``previous`` is the last
    description this side sent in the session: ``o=`` follows RFC 3264 §8.
    """
    used: set[int] = set()
    media = []
    for position, offered in enumerate(offer.media):
        answer = None
        prior = None
        if previous is not None and position < len(previous.media):
            prior = previous.media[position]
        if offered.port != 0:
            for index, stream in enumerate(capabilities.media):
                if index in used or stream.media != offered.media:
                    continue
                answer = _answer_media(offer, offered, stream, capabilities, prior)
                if answer is not None:
                    used.add(index)
                    break
        media.append(answer or _refused(offered))
    return _describe_session(capabilities, media, previous)


def _answer_media(
    offer: SessionDescription,
    offered: MediaDescription,
    stream: MediaCapabilities,
    capabilities: Capabilities,
    previous: MediaDescription | None,
) -> MediaDescription | None:
    if offered.proto not in stream.protos:
        return None
    crypto = None
    setup = None
    if offered.proto in DTLS_PROTOS:
        setup = _answer_setup(offer, offered, stream, previous)
        if setup is None:
            return None
    elif offered.proto in SECURE_PROTOS:
        crypto = _choose_crypto(offered.crypto, stream.crypto)
        if crypto is None:
            return None
    elif stream.crypto and offered.crypto:
        # best-effort SRTP: a=crypto in an RTP/AVP offer, answered in kind by an agent
        # that has keys (what baresip's mediaenc=srtp and others send); None is plain RTP
        crypto = _choose_crypto(offered.crypto, stream.crypto)
    formats = _answer_formats(offered, stream)
    if not formats:
        return None
    answer = MediaDescription(offered.media, stream.port, offered.proto)
    _fill_media(answer, formats, stream, capabilities)
    if crypto is not None:
        answer.attributes.append(Attribute("crypto", str(crypto)))
    if setup is not None:
        _add_dtls(answer, stream, setup)
    if offered.rtcp_mux and stream.rtcp_mux:
        answer.attributes.append(Attribute("rtcp-mux"))
    # RFC 3264 §6.1: sendonly is answered recvonly or inactive, recvonly sendonly or
    # inactive, inactive inactive; sendrecv leaves the choice to the answerer.
    offered_direction = offer.media_direction(offered)
    direction = offered_direction.reverse().intersect(stream.direction)
    stated = offered.direction is not None or offer.direction is not None
    if direction is not Direction.SENDRECV or stated:
        answer.direction = direction
    return answer


def _answer_formats(
    offered: MediaDescription, stream: MediaCapabilities
) -> list[tuple[RtpMap, str | None]]:
    """Offered formats the stream supports, in the offer's order, with the answer's fmtp."""
    rtpmaps = offered.rtpmaps()
    codecs: dict[int, tuple[RtpMap, str | None]] = {}
    events: list[tuple[RtpMap, str | None]] = []
    payload_types = list(dict.fromkeys(offered.payload_types))
    for payload_type in payload_types:
        rtpmap = rtpmaps.get(payload_type) or STATIC_PAYLOAD_TYPES.get(payload_type)
        if rtpmap is None:
            continue
        fmtp = offered.fmtp(payload_type)
        if rtpmap.encoding_name.casefold() == TELEPHONE_EVENT:
            events.append((rtpmap, fmtp))
            continue
        for codec in stream.codecs:
            if codec.same_codec(rtpmap) and fmtp_compatible(rtpmap.encoding_name, fmtp, codec.fmtp):
                codecs[payload_type] = (rtpmap, codec.fmtp if codec.fmtp is not None else fmtp)
                break
    accepted = dict(codecs)
    support = stream.telephone_event
    if support is not None:
        # Events go with audio of the same clock rate (RFC 4733 §2.1); a stream that
        # offers nothing but events (RFC 4317 §2.4) is accepted for them alone.
        rates = {rtpmap.clock_rate for rtpmap, _ in codecs.values()}
        events_only = len(events) == len(payload_types)
        for rtpmap, fmtp in events:
            if not (events_only or rtpmap.clock_rate in rates):
                continue
            common = telephone_events(fmtp) & telephone_events(support.events)
            if not common:
                continue
            # Without fmtp both ends mean 0-15 (RFC 4733 §2.4): say nothing more then.
            same_as_default = fmtp is None and common == telephone_events(None)
            answer_fmtp = None if same_as_default else format_telephone_events(common)
            accepted[rtpmap.payload_type] = (rtpmap, answer_fmtp)
    return [accepted[pt] for pt in payload_types if pt in accepted]


def _answer_setup(
    offer: SessionDescription,
    offered: MediaDescription,
    stream: MediaCapabilities,
    previous: MediaDescription | None,
) -> Setup | None:
    """The answer's ``a=setup`` to a DTLS-SRTP offer, or None when the stream cannot be
    accepted: no certificate of ours, no usable fingerprint of theirs (RFC 5763 §5: the
    fingerprint is what authenticates the handshake), or ``holdconn``.

    The answerer is active when it may choose (RFC 5763 §5); a re-offer with actpass that
    keeps the peer's fingerprint keeps the roles of the association that runs (RFC 8842
    §5.3: a changed role would be a new association)."""
    if not stream.fingerprints:
        return None
    if not any(fingerprint.supported for fingerprint in offer.media_fingerprints(offered)):
        return None
    offered_setup = offer.media_setup(offered) or Setup.ACTIVE  # absent: active (RFC 4145 §4)
    if offered_setup is Setup.HOLDCONN:
        return None
    if (
        offered_setup is Setup.ACTPASS
        and previous is not None
        and previous.port != 0
        and previous.proto in DTLS_PROTOS
    ):
        kept = previous.setup
        if kept is Setup.ACTIVE or kept is Setup.PASSIVE:
            return kept
    return offered_setup.answer()


def _add_dtls(description: MediaDescription, stream: MediaCapabilities, setup: Setup) -> None:
    attributes = description.attributes
    for fingerprint in stream.fingerprints:
        attributes.append(Attribute("fingerprint", str(fingerprint)))
    attributes.append(Attribute("setup", setup.value))
    if stream.tls_id is not None:
        attributes.append(Attribute("tls-id", stream.tls_id))


def _choose_crypto(offered: list[Crypto], local: list[Crypto]) -> Crypto | None:
    """RFC 4568 §7.1.2: one offered suite the answerer supports, answered with the
    offer's tag and the answerer's own key; the offer's order is its preference."""
    for theirs in offered:
        for ours in local:
            if ours.crypto_suite == theirs.crypto_suite:
                return Crypto(theirs.tag, ours.crypto_suite, ours.key_params, ours.session_params)
    return None


# -- shared construction -----------------------------------------------------------------


def _fill_media(
    description: MediaDescription,
    formats: list[tuple[RtpMap, str | None]],
    stream: MediaCapabilities,
    capabilities: Capabilities,
) -> None:
    description.formats = [str(rtpmap.payload_type) for rtpmap, _ in formats]
    if stream.address is not None and stream.address != capabilities.address:
        description.connections.append(_connection(stream.address))
    attributes = description.attributes
    for rtpmap, fmtp in formats:
        # RFC 3264 §6.1: rtpmap is a MUST for dynamic types and a SHOULD for static ones.
        if capabilities.static_rtpmap or rtpmap.payload_type not in STATIC_PAYLOAD_TYPES:
            attributes.append(Attribute("rtpmap", str(rtpmap)))
        if fmtp is not None:
            attributes.append(Attribute("fmtp", f"{rtpmap.payload_type} {fmtp}"))
    description.ptime = stream.ptime
    description.maxptime = stream.maxptime


def _refused(offered: MediaDescription) -> MediaDescription:
    """RFC 3264 §6: port zero; the formats are ignored but at least one must be present.

    The first offered format is kept with its rtpmap, as RFC 4317 writes refused streams.
    """
    fmt = offered.formats[0] if offered.formats else "0"
    refused = MediaDescription(offered.media, 0, offered.proto, [fmt])
    for value in offered.attribute_values("rtpmap"):
        if value.strip().partition(" ")[0] == fmt:
            refused.attributes.append(Attribute("rtpmap", value))
            break
    return refused


def _connection(address: str) -> Connection:
    return Connection("IN", "IP6" if ":" in address else "IP4", address)


def _describe_session(
    capabilities: Capabilities,
    media: list[MediaDescription],
    previous: SessionDescription | None,
) -> SessionDescription:
    connection = _connection(capabilities.address)
    origin = Origin(
        capabilities.username,
        capabilities.session_id,
        capabilities.session_version or capabilities.session_id,
        connection.nettype,
        connection.addrtype,
        connection.address,
    )
    description = SessionDescription(
        origin=origin,
        session_name=capabilities.session_name,
        connection=connection,
        media=media,
    )
    if previous is not None:
        # RFC 3264 §8: o= stays as before except that sess-version grows by one when
        # anything changed; a description that repeats the previous one keeps it.
        description.origin = previous.origin
        if description != previous:
            description.origin = previous.origin.next_version()
    return description


# -- results -----------------------------------------------------------------------------


def process_answer(offer: SessionDescription, answer: SessionDescription) -> list[NegotiatedMedia]:
    """Check an answer to our ``offer`` (RFC 3264 §6) and say what each stream became.

    Raises :class:`OfferAnswerError` when the answer has another number of streams or a
    stream of another media type. Formats in the answer that were not offered are ignored.
    """
    if len(answer.media) != len(offer.media):
        raise OfferAnswerError(
            f"the answer has {len(answer.media)} media descriptions, the offer "
            f"{len(offer.media)}; RFC 3264 §6 wants one answer stream per offered stream"
        )
    for index, (offered, answered) in enumerate(zip(offer.media, answer.media, strict=True)):
        if offered.media != answered.media:
            raise OfferAnswerError(
                f"media description {index + 1} is {offered.media!r} in the offer and "
                f"{answered.media!r} in the answer"
            )
    return negotiate(offer, answer)


def negotiate(local: SessionDescription, remote: SessionDescription) -> list[NegotiatedMedia]:
    """What each stream became, from the local description (offer or answer) and the
    remote one, after an offer/answer exchange completed."""
    if len(local.media) != len(remote.media):
        raise OfferAnswerError(
            f"the descriptions have {len(local.media)} and {len(remote.media)} streams"
        )
    return [
        _negotiate_media(index, local, ours, remote, theirs)
        for index, (ours, theirs) in enumerate(zip(local.media, remote.media, strict=True))
    ]


def _negotiate_media(
    index: int,
    local: SessionDescription,
    ours: MediaDescription,
    remote: SessionDescription,
    theirs: MediaDescription,
) -> NegotiatedMedia:
    if ours.port == 0 or theirs.port == 0 or ours.media != theirs.media:
        return NegotiatedMedia(index, theirs.media, False, theirs.proto)
    local_codecs = ours.codecs()
    codecs: list[Codec] = []
    events: list[Codec] = []
    for rtpmap in theirs.codecs():
        codec = Codec.from_rtpmap(rtpmap, theirs.fmtp(rtpmap.payload_type))
        if not any(codec.same_codec(mine) for mine in local_codecs):
            continue
        (events if codec.is_telephone_event else codecs).append(codec)
    # The events that go with the first codec's clock rate (RFC 4733 §2.1), else any.
    rate = codecs[0].clock_rate if codecs else None
    event = next((e for e in events if e.clock_rate == rate), events[0] if events else None)

    connection = remote.media_connection(theirs)
    address = connection.address if connection is not None else None
    legacy_hold = connection is not None and connection.is_unspecified
    remote_direction = remote.media_direction(theirs)
    direction = local.media_direction(ours).intersect(remote_direction.reverse())
    if legacy_hold:
        direction = direction.intersect(Direction.RECVONLY)

    rtcp_mux = ours.rtcp_mux and theirs.rtcp_mux
    rtcp_address, rtcp_port = address, theirs.port + 1
    rtcp = theirs.rtcp
    if rtcp_mux:
        rtcp_port = theirs.port
    elif rtcp is not None:
        rtcp_address, rtcp_port = rtcp.address or address, rtcp.port

    setup = None
    remote_fingerprints: tuple[Fingerprint, ...] = ()
    remote_tls_id = None
    if theirs.proto in DTLS_PROTOS and ours.proto == theirs.proto:
        setup = _local_role(local.media_setup(ours), remote.media_setup(theirs))
        remote_fingerprints = tuple(remote.media_fingerprints(theirs))
        remote_tls_id = theirs.tls_id

    local_crypto = remote_crypto = None
    for mine in ours.crypto:
        match = next((c for c in theirs.crypto if c.tag == mine.tag), None)
        if match is not None and match.crypto_suite == mine.crypto_suite:
            local_crypto, remote_crypto = mine, match
            break

    return NegotiatedMedia(
        index=index,
        media=theirs.media,
        accepted=True,
        proto=theirs.proto,
        codecs=tuple(codecs),
        direction=direction,
        remote_address=address,
        remote_port=theirs.port,
        remote_rtcp_address=rtcp_address,
        remote_rtcp_port=rtcp_port,
        rtcp_mux=rtcp_mux,
        telephone_event=event,
        ptime=theirs.ptime,
        maxptime=theirs.maxptime,
        local_crypto=local_crypto,
        remote_crypto=remote_crypto,
        on_hold=legacy_hold or not remote_direction.receives,
        legacy_hold=legacy_hold,
        # the peer sends with the numbers of our description (RFC 3264 §6.1)
        local_codecs=tuple(_as_listed(codec, ours, local_codecs) for codec in codecs),
        local_telephone_event=None if event is None else _as_listed(event, ours, local_codecs),
        setup=setup,
        remote_fingerprints=remote_fingerprints,
        remote_tls_id=remote_tls_id,
    )


def _local_role(ours: Setup | None, theirs: Setup | None) -> Setup | None:
    """This end's DTLS role from both descriptions' ``a=setup`` (RFC 4145 §4.1): ours when
    we answered, else the opposite of the answer's (absent: active). None for a pair that
    names no roles (actpass answered with actpass, holdconn, active with active)."""
    if ours is Setup.ACTPASS:
        if theirs is None or theirs is Setup.ACTIVE:
            return Setup.PASSIVE
        return Setup.ACTIVE if theirs is Setup.PASSIVE else None
    if ours is None:
        ours = Setup.ACTIVE
    if ours is Setup.ACTIVE and theirs in (Setup.PASSIVE, Setup.ACTPASS):
        return ours
    if ours is Setup.PASSIVE and theirs in (Setup.ACTIVE, Setup.ACTPASS, None):
        return ours
    return None


def _as_listed(codec: Codec, ours: MediaDescription, listed: list[RtpMap]) -> Codec:
    """The peer's format as our description lists it (``listed``: its codecs, worked out
    once per stream): with our payload type number."""
    rtpmap = next(mine for mine in listed if codec.same_codec(mine))
    return Codec.from_rtpmap(rtpmap, ours.fmtp(rtpmap.payload_type))
