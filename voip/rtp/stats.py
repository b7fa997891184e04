"""Per-stream statistics, available during and after a call."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StreamStatistics"]


@dataclass(slots=True)
class StreamStatistics:
    """What one media stream sent, received, lost and repaired.

    Times are in seconds; ``jitter`` is the RFC 3550 A.8 estimate for the received source,
    ``round_trip`` the last RTCP-measured round-trip time, ``remote_lost`` and
    ``remote_jitter`` what the peer reported about our packets.
    """

    packets_sent: int = 0
    octets_sent: int = 0
    packets_received: int = 0
    octets_received: int = 0
    lost: int = 0  # RFC 3550 A.3 cumulative, for the current source
    jitter: float = 0.0
    round_trip: float | None = None
    remote_lost: int | None = None
    remote_jitter: float | None = None
    late: int = 0
    duplicates: int = 0
    discarded: int = 0
    concealed: float = 0.0  # seconds of audio made up for missing packets
    underruns: int = 0
    ssrc_changes: int = 0
    malformed: int = 0  # datagrams that are not RTP/RTCP
    unknown_payload: int = 0  # RTP with a payload type not negotiated
    foreign: int = 0  # RTP from an address other than the latched one
    silence_sent: int = 0  # frames sent as silence because the producer had none
    frames_dropped: int = 0  # received frames nobody read in time
    dtmf_received: int = 0
    dtmf_sent: int = 0
    rtcp_sent: int = 0
    rtcp_received: int = 0
    send_errors: int = 0
    skipped: int = 0  # clock periods skipped because the event loop was late
