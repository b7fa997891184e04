"""A session description: the session-level lines and its media descriptions (RFC 8866 §5)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mypy_extensions import mypyc_attr

from sdp._layout import arrange, crlf_text, line_entries
from sdp.attributes import Attribute, Direction
from sdp.dtls import Fingerprint, Setup
from sdp.fields import Bandwidth, Connection, Origin, TimeZoneAdjustment, Timing
from sdp.media import MediaDescription, direction_of, fingerprints_of, setup_of


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(slots=True, kw_only=True)
class SessionDescription:
    """One SDP description. ``parse`` reads one, ``serialize`` writes it with CRLF line ends.

    A description that came from :func:`sdp.parse` and has not been changed keeps its line
    order; one built or changed by code is written in the order of RFC 8866 §5.
    ``session_name`` may be empty: RFC 4317 prints ``s=`` so (the grammar wants one
    character, RFC 3264 §5 suggests ``s=-``).
    """

    origin: Origin
    session_name: str = "-"
    version: int = 0
    information: str | None = None
    uri: str | None = None
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    connection: Connection | None = None
    bandwidths: list[Bandwidth] = field(default_factory=list)
    timings: list[Timing] = field(default_factory=lambda: [Timing()])
    time_zones: list[TimeZoneAdjustment] = field(default_factory=list)
    key: str | None = None
    attributes: list[Attribute] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)
    _layout: str = field(default="", init=False, repr=False, compare=False)

    def __init__(
        self,
        *,
        origin: Origin,
        session_name: str = "-",
        version: int = 0,
        information: str | None = None,
        uri: str | None = None,
        emails: list[str] | None = None,
        phones: list[str] | None = None,
        connection: Connection | None = None,
        bandwidths: list[Bandwidth] | None = None,
        timings: list[Timing] | None = None,
        time_zones: list[TimeZoneAdjustment] | None = None,
        key: str | None = None,
        attributes: list[Attribute] | None = None,
        media: list[MediaDescription] | None = None,
    ) -> None:
        # Written out rather than made by @dataclass: compiled, this one is native code
        # (a call parses one and writes one).
        self.origin = origin
        self.session_name = session_name
        self.version = version
        self.information = information
        self.uri = uri
        self.emails = [] if emails is None else emails
        self.phones = [] if phones is None else phones
        self.connection = connection
        self.bandwidths = [] if bandwidths is None else bandwidths
        self.timings = [Timing()] if timings is None else timings
        self.time_zones = [] if time_zones is None else time_zones
        self.key = key
        self.attributes = [] if attributes is None else attributes
        self.media = [] if media is None else media
        self._layout = ""

    @classmethod
    def parse(cls, data: str | bytes | bytearray | memoryview) -> SessionDescription:
        """Same as :func:`sdp.parse`."""
        from sdp.parser import parse

        return parse(data)

    def lines(self) -> list[str]:
        """Every line of the description, without line ends."""
        zones = " ".join(str(zone) for zone in self.time_zones) if self.time_zones else None
        entries = line_entries(
            ("v", (self.version,)),
            ("o", (self.origin,)),
            ("s", (self.session_name,)),
            ("i", (self.information,)),
            ("u", (self.uri,)),
            ("e", self.emails),
            ("p", self.phones),
            ("c", (self.connection,)),
            ("b", self.bandwidths),
            ("t", self.timings),
            ("z", (zones,)),
            ("k", (self.key,)),
            ("a", self.attributes),
        )
        lines = arrange(entries, self._layout)
        if any(timing.repeat_times for timing in self.timings):
            lines = _with_repeat_times(lines, self.timings)
        for media in self.media:
            lines.extend(media.lines())
        return lines

    def serialize(self) -> str:
        """The description as text, every line ended with CRLF (RFC 8866 §5).

        Raises :class:`SdpError` when a value holds CR or LF, which would smuggle extra
        lines into the description.
        """
        return crlf_text(self.lines())

    def __str__(self) -> str:
        return self.serialize()

    def __bytes__(self) -> bytes:
        return self.serialize().encode("utf-8")

    @property
    def direction(self) -> Direction | None:
        """The session-level direction attribute, if any."""
        return direction_of(self.attributes)

    def media_direction(self, media: MediaDescription) -> Direction:
        """The direction of a stream: its own attribute, else the session's, else sendrecv."""
        return media.direction or self.direction or Direction.SENDRECV

    def media_fingerprints(self, media: MediaDescription) -> list[Fingerprint]:
        """A stream's certificate fingerprints: its own ``a=fingerprint``, else the
        session's (RFC 8122 §5: either level; media level wins)."""
        return media.fingerprints or fingerprints_of(self.attributes)

    def media_setup(self, media: MediaDescription) -> Setup | None:
        """A stream's ``a=setup``, else the session's (RFC 4145 §4: either level)."""
        return media.setup or setup_of(self.attributes)

    def media_connection(self, media: MediaDescription) -> Connection | None:
        """Where a stream's media goes: its first ``c=`` line, else the session's."""
        return media.connections[0] if media.connections else self.connection


def _with_repeat_times(lines: list[str], timings: list[Timing]) -> list[str]:
    # r= lines follow the t= line they belong to (RFC 8866 §5.10).
    remaining = iter(timings)
    result = []
    for line in lines:
        result.append(line)
        if line.startswith("t="):
            result.extend(f"r={repeat}" for repeat in next(remaining).repeat_times)
    return result
