"""One call's SDP offer/answer state (RFC 3264), hold included (§8.4).

:class:`Negotiation` turns the local media capabilities and the hold wishes of the user
into offers and answers, reads the peer's, and keeps what was agreed as
:class:`sdp.NegotiatedMedia`, which the media engine follows.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import sdp
from sdp import (
    Capabilities,
    Codec,
    Direction,
    Fingerprint,
    MediaCapabilities,
    NegotiatedMedia,
    SessionDescription,
    TelephoneEvent,
)
from voip.rtp.srtp import SrtpMode, SrtpRequired, check_agreed, local_crypto

__all__ = ["AUDIO_CODECS", "COMFORT_NOISE", "SDP", "Negotiation", "default_audio"]

SDP = "application/sdp"


#: the audio codecs the media engine has (voip.rtp.codecs), in order of preference: G.711
#: first (microseconds per packet, where G.722 and Opus through PyAV cost tens)
AUDIO_CODECS = ("PCMU", "PCMA", "G722", "OPUS")
#: comfort noise (RFC 3389, CN/8000, static payload type 13): offered when named among the
#: codecs; agreed, silence is sent as CN packets rather than as encoded silence. CN/8000
#: serves every codec the engine has: CN takes the RTP clock rate of the audio it goes with
#: (RFC 3389 §4), and that of G.711 and of G.722 is 8000 (RFC 3551 §4.5.2: G.722 samples
#: at 16 kHz, its RTP clock is 8000); Opus has DTX of its own (RFC 7587 §3.1.3) and takes
#: no CN. A ``CN/16000`` on a dynamic payload type would go with a codec whose RTP clock is
#: 16 kHz, which the engine has none of. A peer's CN/8000 on a dynamic number is accepted,
#: and the stream sends and receives CN on the numbers agreed.
COMFORT_NOISE = "CN"
#: their SDP formats (RFC 3551 §4.5.2: G.722 has an RTP clock of 8000; RFC 7587 §7: opus/48000/2)
_FORMATS = {
    "PCMU": (8000, 1),
    "PCMA": (8000, 1),
    "G722": (8000, 1),
    "OPUS": (48000, 2),
    COMFORT_NOISE: (8000, 1),
}


def default_audio(
    port: int,
    codecs: Sequence[str] | None = None,
    srtp: SrtpMode = SrtpMode.OFF,
    fingerprint: Fingerprint | None = None,
) -> MediaCapabilities:
    """Audio with PCMU, PCMA, G.722 and Opus (or ``codecs``, a choice among them in order
    of preference, and "CN" for RFC 3389 comfort noise) and RFC 4733 telephone events, 20 ms
    packets. ``srtp`` other than off draws fresh SDES keys (RFC 4568) and offers
    ``RTP/AVP`` with them (optional) or ``RTP/SAVP`` (required), or offers
    ``UDP/TLS/RTP/SAVP`` with ``fingerprint`` (that of the agent's DTLS certificate,
    RFC 5763 §5; needed by every mode but off, which answer DTLS-SRTP offers)."""
    names = [name.upper() for name in codecs] if codecs else list(AUDIO_CODECS)
    unknown = [name for name in names if name not in AUDIO_CODECS and name != COMFORT_NOISE]
    if unknown:
        raise ValueError(
            f"unknown codecs {unknown}: the engine has {', '.join(AUDIO_CODECS)} and CN"
        )
    return MediaCapabilities(
        "audio",
        port,
        [Codec("opus" if name == "OPUS" else name, *_FORMATS[name]) for name in names],
        telephone_event=TelephoneEvent(),
        ptime=20,
        protos=_PROTOS[srtp],
        crypto=local_crypto() if srtp.accepts_sdes else [],
        fingerprints=[fingerprint] if fingerprint is not None and srtp.accepts_dtls else [],
        # RFC 8842 §4: an identifier of the association this description asks for
        tls_id=secrets.token_urlsafe(18) if srtp.accepts_dtls else None,
    )


# offers use the first; answers accept any (voip.rtp.srtp for the modes)
_DTLS = ("UDP/TLS/RTP/SAVP", "UDP/TLS/RTP/SAVPF")
_PROTOS = {
    SrtpMode.OFF: ("RTP/AVP",),
    SrtpMode.OPTIONAL: ("RTP/AVP", "RTP/SAVP", *_DTLS),
    SrtpMode.REQUIRED: ("RTP/SAVP", *_DTLS),
    SrtpMode.DTLS: _DTLS,
    SrtpMode.DTLS_PREFERRED: (*_DTLS, "RTP/SAVP"),
}


@dataclass(slots=True)
class Negotiation:
    """Offers, answers and the agreed streams of one call.

    ``hold`` is the local wish (RFC 3264 §8.4: hold offers ``sendonly``, or ``inactive``
    when the peer holds us too); ``remote_hold`` what the peer's last description said.
    """

    address: str
    media: list[MediaCapabilities]
    username: str = "voip"
    hold: bool = False
    local: SessionDescription | None = None  # the last description we sent
    remote: SessionDescription | None = None  # the last one we received
    offer: SessionDescription | None = None  # ours, while it waits for its answer
    agreed: list[NegotiatedMedia] = field(default_factory=list)
    on_change: Callable[[list[NegotiatedMedia]], None] | None = None
    #: the direction our offers ask for when not on hold (``sendonly``/``recvonly`` for a
    #: half-duplex session, X.215's data token); None offers ``sendrecv``
    direction_wish: Direction | None = None
    #: SRTP policy (voip.rtp.srtp): with ``required``, an answer or offer that agrees to
    #: plain RTP raises :class:`SrtpRequired`
    srtp: SrtpMode = SrtpMode.OFF
    #: o= sess-id: an NTP-style timestamp, as RFC 8866 §5.2 suggests
    session_id: str = field(default_factory=lambda: str(int(time.time()) + 2208988800))

    def _capabilities(self, direction: Direction) -> Capabilities:
        for stream in self.media:
            stream.direction = direction
        return Capabilities(
            self.address, self.media, username=self.username, session_id=self.session_id
        )

    def _wanted(self) -> Direction:
        if not self.hold:
            return self.direction_wish or Direction.SENDRECV
        if self.direction_wish is not None:
            return Direction.INACTIVE  # a half-duplex session on hold: nothing flows
        # holding a peer that holds us too: nothing flows either way (RFC 6337 §5.3)
        return Direction.INACTIVE if self.remote_hold else Direction.SENDONLY

    @property
    def remote_hold(self) -> bool:
        return any(stream.on_hold for stream in self.agreed if stream.accepted)

    # --- offers ------------------------------------------------------------------------

    def create_offer(self) -> bytes:
        offer = sdp.create_offer(self._capabilities(self._wanted()), self.local)
        self.offer = offer
        return bytes(offer)

    def repeat_offer(self) -> bytes:
        """The last description we sent, offered again as it is (o= version unchanged,
        RFC 3264 §8): a re-offer that changes nothing, for a session refresh."""
        if self.local is None:
            return self.create_offer()
        self.offer = self.local
        return bytes(self.local)

    def receive_answer(self, body: bytes) -> list[NegotiatedMedia]:
        """The answer to our outstanding offer; raises SdpError / OfferAnswerError."""
        if self.offer is None:
            raise sdp.OfferAnswerError("an answer arrived with no offer outstanding")
        answer = sdp.parse(body)
        agreed = sdp.process_answer(self.offer, answer)
        self._check_srtp(agreed)
        self.local, self.remote, self.offer = self.offer, answer, None
        self._agree(agreed)
        return agreed

    def receive_early_answer(self, body: bytes) -> list[NegotiatedMedia]:
        """An answer in an unreliable provisional response (a 183 without 100rel): early
        media follows it, but our offer stays outstanding, since the answer that counts
        is the one in the 2xx (RFC 3261 §13.2.1; RFC 6337 §3.1.1 asks the UAS to repeat
        it there). Each fork may preview its own. Raises SdpError / OfferAnswerError."""
        if self.offer is None:
            raise sdp.OfferAnswerError("an early answer arrived with no offer outstanding")
        answer = sdp.parse(body)
        agreed = sdp.process_answer(self.offer, answer)
        check_agreed(agreed, self.srtp)
        self.remote = answer
        self._agree(agreed)
        return agreed

    def _check_srtp(self, agreed: list[NegotiatedMedia]) -> None:
        """An answer that agrees to plain RTP when SRTP is required, or to keys the
        engine cannot use, fails our offer (the last agreed session stays)."""
        try:
            check_agreed(agreed, self.srtp)
        except sdp.OfferAnswerError:
            self.offer = None
            raise

    def offer_rejected(self) -> None:
        """Our offer failed (non-2xx, 491): the last agreed session stays (RFC 3264 §8)."""
        self.offer = None

    # --- answers -----------------------------------------------------------------------

    def receive_offer(self, body: bytes) -> bytes:
        """Answer the peer's offer; raises SdpError or OfferAnswerError (→ 488)."""
        offer = sdp.parse(body)
        # RFC 3264 §8.4 / RFC 6337: a peer that sends us sendonly/inactive holds us;
        # what we answer follows from its direction and ours.
        answer = sdp.create_answer(offer, self._capabilities(self._wanted_for(offer)), self.local)
        agreed = sdp.negotiate(answer, offer)
        if not any(stream.accepted for stream in agreed):
            if self.srtp is SrtpMode.DTLS:
                raise SrtpRequired("DTLS-SRTP is required: no UDP/TLS/RTP/SAVP stream")
            if self.srtp.requires_srtp:
                raise SrtpRequired("SRTP is required: no RTP/SAVP stream with a usable a=crypto")
            raise sdp.OfferAnswerError("no offered stream can be accepted")
        check_agreed(agreed, self.srtp)
        self.local, self.remote = answer, offer
        self._agree(agreed)
        return bytes(answer)

    def _wanted_for(self, offer: SessionDescription) -> Direction:
        if not self.hold:
            # an offer that leaves the direction to us (sendrecv) gets the half-duplex
            # wish: the acceptor's choice of the data token (X.215 §11)
            leaves_it = all(
                offer.media_direction(media) is Direction.SENDRECV for media in offer.media
            )
            return (self.direction_wish if leaves_it else None) or Direction.SENDRECV
        receives = any(offer.media_direction(media).receives for media in offer.media)
        return Direction.SENDONLY if receives else Direction.INACTIVE

    def _agree(self, agreed: list[NegotiatedMedia]) -> None:
        self.agreed = agreed
        if self.on_change is not None:
            self.on_change(agreed)

    @property
    def direction(self) -> Direction:
        """What the local side may do on the first accepted stream."""
        for stream in self.agreed:
            if stream.accepted:
                return stream.direction
        return Direction.INACTIVE
