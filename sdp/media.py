"""A media description: an ``m=`` line and the lines that follow it (RFC 8866 §5.14)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mypy_extensions import mypyc_attr

from sdp._layout import arrange, crlf_text, line_entries
from sdp.attributes import (
    DIRECTION_BY_NAME,
    DIRECTIONS,
    Attribute,
    Direction,
    Rtcp,
    RtpMap,
    format_packet_time,
    parse_packet_time,
    split_fmtp,
)
from sdp.crypto import Crypto
from sdp.dtls import Fingerprint, Setup
from sdp.errors import SdpError
from sdp.fields import Bandwidth, Connection, parse_number
from sdp.payload_types import STATIC_PAYLOAD_TYPES


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(slots=True)
class MediaDescription:
    """``m=<media> <port>[/<number of ports>] <proto> <fmt> ...`` with its i=, c=, b=, k=, a=.

    ``formats`` are the ``<fmt>`` tokens as written: RTP payload type numbers for the RTP
    profiles, other tokens (``webrtc-datachannel``, ``t38``, ``*``) otherwise.
    The typed accessors read the attributes on demand; a malformed value of a known
    attribute reads as absent, since the attribute itself is kept verbatim.
    """

    media: str
    port: int
    proto: str
    formats: list[str] = field(default_factory=list)
    port_count: int | None = None
    information: str | None = None
    connections: list[Connection] = field(default_factory=list)
    bandwidths: list[Bandwidth] = field(default_factory=list)
    key: str | None = None
    attributes: list[Attribute] = field(default_factory=list)
    _layout: str = field(default="", init=False, repr=False, compare=False)

    def __init__(  # noqa: PLR0917  # positional, as @dataclass made it
        self,
        media: str,
        port: int,
        proto: str,
        formats: list[str] | None = None,
        port_count: int | None = None,
        information: str | None = None,
        connections: list[Connection] | None = None,
        bandwidths: list[Bandwidth] | None = None,
        key: str | None = None,
        attributes: list[Attribute] | None = None,
    ) -> None:
        # Written out rather than made by @dataclass: compiled, this one is native code.
        self.media = media
        self.port = port
        self.proto = proto
        self.formats = [] if formats is None else formats
        self.port_count = port_count
        self.information = information
        self.connections = [] if connections is None else connections
        self.bandwidths = [] if bandwidths is None else bandwidths
        self.key = key
        self.attributes = [] if attributes is None else attributes
        self._layout = ""

    @classmethod
    def parse_media_line(cls, value: str) -> MediaDescription:
        """The text after ``m=``.

        An empty format list is accepted: Cisco IOS gateways send ``m=video 36924 RTP/AVP``
        although RFC 8866 §9 asks for at least one format.
        """
        fields = value.split()
        if len(fields) < 3:
            raise SdpError("media needs <media> <port> <proto> <fmt> ...")
        port_text, slash, count_text = fields[1].partition("/")
        port = parse_number(port_text, "port", 65535)
        count = parse_number(count_text, "number of ports") if slash else None
        return cls(fields[0], port, fields[2], fields[3:], count)

    # -- serialization -------------------------------------------------------------------

    def media_line(self) -> str:
        port = self.port if self.port_count is None else f"{self.port}/{self.port_count}"
        return " ".join((f"m={self.media} {port} {self.proto}", *self.formats))

    def lines(self) -> list[str]:
        """The section as lines without line ends: the ``m=`` line first."""
        entries = line_entries(
            ("i", (self.information,)),
            ("c", self.connections),
            ("b", self.bandwidths),
            ("k", (self.key,)),
            ("a", self.attributes),
        )
        return [self.media_line(), *arrange(entries, self._layout)]

    def __str__(self) -> str:
        return crlf_text(self.lines())

    # -- attributes ----------------------------------------------------------------------

    def attribute(self, name: str) -> Attribute | None:
        """The first attribute called ``name`` (names compare exactly)."""
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute
        return None

    def attribute_values(self, name: str) -> list[str]:
        """Values of every ``a=<name>:<value>`` in order (property attributes give "")."""
        return [a.value or "" for a in self.attributes if a.name == name]

    def remove_attributes(self, *names: str) -> None:
        self.attributes[:] = [a for a in self.attributes if a.name not in names]

    # -- RTP payload formats (RFC 8866 §6.6, §6.15; RFC 3551) -----------------------------

    @property
    def payload_types(self) -> list[int]:
        """The formats that are RTP payload type numbers, in order of preference."""
        return [int(f) for f in self.formats if f.isascii() and f.isdigit() and int(f) <= 127]

    def rtpmaps(self) -> dict[int, RtpMap]:
        """Well-formed ``a=rtpmap`` attributes by payload type (the first one wins)."""
        result: dict[int, RtpMap] = {}
        for value in self.attribute_values("rtpmap"):
            try:
                rtpmap = RtpMap.parse(value)
            except SdpError:
                continue
            result.setdefault(rtpmap.payload_type, rtpmap)
        return result

    def rtpmap(self, payload_type: int) -> RtpMap | None:
        """The mapping of a payload type: its ``a=rtpmap``, else the RFC 3551 static one."""
        return self.rtpmaps().get(payload_type) or STATIC_PAYLOAD_TYPES.get(payload_type)

    def codecs(self) -> list[RtpMap]:
        """Mappings of the listed payload types, in order, skipping unknown dynamic ones."""
        explicit = self.rtpmaps()
        result = []
        for payload_type in self.payload_types:
            rtpmap = explicit.get(payload_type) or STATIC_PAYLOAD_TYPES.get(payload_type)
            if rtpmap is not None:
                result.append(rtpmap)
        return result

    def fmtp(self, fmt: int | str) -> str | None:
        """The format specific parameters of ``a=fmtp:<fmt>``, if any."""
        wanted = str(fmt)
        for value in self.attribute_values("fmtp"):
            name, parameters = split_fmtp(value)
            if name == wanted:
                return parameters
        return None

    @property
    def ptime(self) -> float | None:
        """``a=ptime`` in milliseconds (RFC 8866 §6.4); assigning replaces or removes it."""
        return self._packet_time("ptime")

    @ptime.setter
    def ptime(self, milliseconds: float | None) -> None:
        self._set_packet_time("ptime", milliseconds)

    @property
    def maxptime(self) -> float | None:
        """``a=maxptime`` in milliseconds (RFC 8866 §6.5); assigning replaces or removes it."""
        return self._packet_time("maxptime")

    @maxptime.setter
    def maxptime(self, milliseconds: float | None) -> None:
        self._set_packet_time("maxptime", milliseconds)

    def _packet_time(self, name: str) -> float | None:
        attribute = self.attribute(name)
        if attribute is None or attribute.value is None:
            return None
        try:
            return parse_packet_time(attribute.value)
        except SdpError:
            return None

    def _set_packet_time(self, name: str, milliseconds: float | None) -> None:
        self._replace_attribute(
            name, None if milliseconds is None else format_packet_time(milliseconds)
        )

    def _replace_attribute(self, name: str, value: str | None) -> None:
        # Keeps the position of an existing attribute so that the other lines stay put.
        for index, attribute in enumerate(self.attributes):
            if attribute.name == name:
                if value is None:
                    del self.attributes[index]
                else:
                    self.attributes[index] = Attribute(name, value)
                return
        if value is not None:
            self.attributes.append(Attribute(name, value))

    # -- direction (RFC 8866 §6.7, RFC 3264 §5.1) -----------------------------------------

    @property
    def direction(self) -> Direction | None:
        """The media-level direction attribute; ``None`` means the session level decides.

        Assigning replaces the attribute where it stands (``None`` removes it).
        """
        return direction_of(self.attributes)

    @direction.setter
    def direction(self, direction: Direction | None) -> None:
        for index, attribute in enumerate(self.attributes):
            if attribute.value is None and attribute.name in DIRECTIONS:
                if direction is None:
                    del self.attributes[index]
                else:
                    self.attributes[index] = Attribute(direction.value)
                return
        if direction is not None:
            self.attributes.append(Attribute(direction.value))

    # -- RTCP (RFC 3605, RFC 5761) and SDES (RFC 4568) ------------------------------------

    @property
    def rtcp(self) -> Rtcp | None:
        """``a=rtcp``: where the peer wants RTCP when it is not on port + 1 (RFC 3605)."""
        attribute = self.attribute("rtcp")
        if attribute is None or attribute.value is None:
            return None
        try:
            return Rtcp.parse(attribute.value)
        except SdpError:
            return None

    @property
    def rtcp_mux(self) -> bool:
        """``a=rtcp-mux``: RTP and RTCP share one port (RFC 5761 §5.1.1)."""
        return self.attribute("rtcp-mux") is not None

    @property
    def crypto(self) -> list[Crypto]:
        """Well-formed ``a=crypto`` attributes in order of preference (RFC 4568 §9.1)."""
        result = []
        for value in self.attribute_values("crypto"):
            try:
                result.append(Crypto.parse(value))
            except SdpError:
                continue
        return result

    # -- DTLS-SRTP (RFC 5763, RFC 8842) ---------------------------------------------------

    @property
    def fingerprints(self) -> list[Fingerprint]:
        """Well-formed ``a=fingerprint`` attributes of this stream (RFC 8122 §5)."""
        return fingerprints_of(self.attributes)

    @property
    def setup(self) -> Setup | None:
        """``a=setup`` of this stream (RFC 4145 §4), if well-formed."""
        return setup_of(self.attributes)

    @property
    def tls_id(self) -> str | None:
        """``a=tls-id`` (RFC 8842 §4): a new value means a new DTLS association."""
        attribute = self.attribute("tls-id")
        return None if attribute is None else attribute.value

    @property
    def is_rejected(self) -> bool:
        """Port zero: the stream is refused or removed (RFC 3264 §6, §8.2)."""
        return self.port == 0


def direction_of(attributes: list[Attribute]) -> Direction | None:
    for attribute in attributes:
        if attribute.value is None:
            direction = DIRECTION_BY_NAME.get(attribute.name)
            if direction is not None:
                return direction
    return None


def fingerprints_of(attributes: list[Attribute]) -> list[Fingerprint]:
    result = []
    for attribute in attributes:
        if attribute.name != "fingerprint" or attribute.value is None:
            continue
        try:
            result.append(Fingerprint.parse(attribute.value))
        except SdpError:
            continue
    return result


def setup_of(attributes: list[Attribute]) -> Setup | None:
    for attribute in attributes:
        if attribute.name == "setup" and attribute.value is not None:
            try:
                return Setup.parse(attribute.value)
            except SdpError:
                return None
    return None
