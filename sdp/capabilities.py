"""What the local agent can do, as the offer/answer engine needs it (RFC 3264 §5, §6)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mypy_extensions import mypyc_attr

from sdp._value import FrozenValue
from sdp.attributes import Direction, RtpMap
from sdp.crypto import Crypto
from sdp.dtls import Fingerprint

TELEPHONE_EVENT = "telephone-event"


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(frozen=True, slots=True)
class Codec(FrozenValue):
    """A media format: encoding name (case-insensitive), clock rate, channels, fmtp.

    ``payload_type`` is the number to offer it with; ``None`` takes the RFC 3551 static
    number when there is one, else a free dynamic one. In a negotiated result it is the
    number the peer expects in the packets sent to it.
    """

    name: str
    clock_rate: int
    channels: int = 1
    fmtp: str | None = None
    payload_type: int | None = None

    def __init__(
        self,
        name: str,
        clock_rate: int,
        channels: int = 1,
        fmtp: str | None = None,
        payload_type: int | None = None,
    ) -> None:
        # Native code when compiled, where @dataclass's would be interpreted (Attribute)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "clock_rate", clock_rate)
        object.__setattr__(self, "channels", channels)
        object.__setattr__(self, "fmtp", fmtp)
        object.__setattr__(self, "payload_type", payload_type)

    @classmethod
    def from_rtpmap(cls, rtpmap: RtpMap, fmtp: str | None = None) -> Codec:
        return cls(
            rtpmap.encoding_name, rtpmap.clock_rate, rtpmap.channels, fmtp, rtpmap.payload_type
        )

    def same_codec(self, other: Codec | RtpMap) -> bool:
        """Same encoding, clock rate and channels, whatever the payload type numbers."""
        if isinstance(other, RtpMap):
            name, clock_rate, channels = other.encoding_name, other.clock_rate, other.channels
        else:
            name, clock_rate, channels = other.name, other.clock_rate, other.channels
        return (
            self.name.casefold() == name.casefold()
            and self.clock_rate == clock_rate
            and self.channels == channels
        )

    @property
    def is_telephone_event(self) -> bool:
        return self.name.casefold() == TELEPHONE_EVENT


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(frozen=True, slots=True)
class TelephoneEvent(FrozenValue):
    """Support for RFC 4733 named telephone events (DTMF) in an audio stream.

    ``events`` is the fmtp event list to offer or accept (RFC 4733 §2.4);
    ``payload_type`` the number to offer it with (``None``: 101 when free).
    """

    events: str = "0-16"
    payload_type: int | None = None


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(slots=True)
class MediaCapabilities:
    """One stream the agent can run: media type, local port, codecs and preferences.

    ``protos`` are the transports accepted in an answer; offers use the first.
    ``address`` puts a media-level ``c=`` in the description when it differs from the
    session address (RFC 4317 §2.8). ``direction`` is the local preference: hold is
    ``sendonly`` (RFC 3264 §8.4). ``crypto`` holds local SDES keys, one per suite, in
    order of preference (RFC 4568); an answer picks the first suite the offer lists that
    is among them. ``fingerprints`` are those of the certificate the agent presents in
    DTLS-SRTP handshakes (RFC 5763 §5), offered and answered with ``UDP/TLS/RTP/SAVP``;
    ``tls_id`` its ``a=tls-id`` (RFC 8842 §4), a new one for each new association.
    """

    media: str
    port: int
    codecs: list[Codec] = field(default_factory=list)
    protos: tuple[str, ...] = ("RTP/AVP",)
    address: str | None = None
    direction: Direction = Direction.SENDRECV
    telephone_event: TelephoneEvent | None = None
    ptime: float | None = None
    maxptime: float | None = None
    rtcp_mux: bool = False
    crypto: list[Crypto] = field(default_factory=list)
    fingerprints: list[Fingerprint] = field(default_factory=list)
    tls_id: str | None = None


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(slots=True)
class Capabilities:
    """The local side of a session: origin, connection address and streams in order.

    ``session_id`` and ``session_version`` start the ``o=`` line (RFC 8866 §5.2 suggests
    an NTP timestamp; sans-I/O, the caller supplies it). ``session_version`` defaults to
    ``session_id``. ``static_rtpmap`` writes ``a=rtpmap`` for static payload types too,
    which RFC 3264 §6.1 recommends for answers.
    """

    address: str
    media: list[MediaCapabilities]
    username: str = "-"
    session_id: str = "0"
    session_version: str | None = None
    session_name: str = "-"
    static_rtpmap: bool = True
