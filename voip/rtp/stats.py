"""Per-stream statistics, available during and after a call, and the quality of each
direction with its ITU-T G.107 E-model MOS (:class:`MediaQuality`)."""

from __future__ import annotations

from dataclasses import dataclass

from voip.rtp.emodel import CODEC_IMPAIRMENTS, burst_ratio, estimate_r, mos_from_r
from voip.rtp.rtcp import VoipMetrics

__all__ = ["DirectionQuality", "MediaQuality", "StreamStatistics"]


@dataclass(slots=True)
class StreamStatistics:
    """What one media stream sent, received, lost and repaired.

    Times are in seconds; ``jitter`` is the RFC 3550 A.8 estimate for the received source,
    ``round_trip`` the last RTCP-measured round-trip time, ``remote_lost`` and
    ``remote_jitter`` what the peer reported about our packets, ``remote_metrics`` its
    last RTCP XR VoIP Metrics about them (RFC 3611 §4.7), when it sends any.
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
    remote_metrics: VoipMetrics | None = None
    late: int = 0
    duplicates: int = 0
    discarded: int = 0
    concealed: float = 0.0  # seconds of audio made up for missing packets
    underruns: int = 0
    ssrc_changes: int = 0
    malformed: int = 0  # datagrams that are not RTP/RTCP
    auth_failures: int = 0  # SRTP/SRTCP packets that failed authentication or replay check
    unkeyed: int = 0  # packets dropped because they came before the SRTP keys were agreed
    withheld: int = 0  # packets not sent: the DTLS-SRTP handshake has not keyed them yet
    unknown_payload: int = 0  # RTP with a payload type not negotiated
    foreign: int = 0  # RTP from an address other than the latched one (that reached the
    # stream: once its socket is connected to the peer the kernel drops it, voip.rtp.poller)
    silence_sent: int = 0  # frames sent as silence because the producer had none
    comfort_noise_sent: int = 0  # RFC 3389 CN packets sent for those frames (when agreed)
    comfort_noise_played: int = 0  # frames of comfort noise made between the peer's CN packets
    frames_dropped: int = 0  # received frames nobody read in time
    dtmf_received: int = 0
    dtmf_sent: int = 0
    rtcp_sent: int = 0
    rtcp_received: int = 0
    # packets of received compounds the toolkit does not use (APP, feedback, XR without
    # VoIP Metrics about us, unknown types): skipped, RFC 3550 §6.1
    rtcp_ignored: int = 0
    stun: int = 0  # STUN on the media ports (RFC 7983 §7), e.g. keep-alives: not answered
    send_errors: int = 0
    skipped: int = 0  # clock periods skipped because the event loop was late

    def __init__(  # noqa: PLR0917  # positional, as @dataclass made it
        self,
        packets_sent: int = 0,
        octets_sent: int = 0,
        packets_received: int = 0,
        octets_received: int = 0,
        lost: int = 0,
        jitter: float = 0.0,
        round_trip: float | None = None,
        remote_lost: int | None = None,
        remote_jitter: float | None = None,
        remote_metrics: VoipMetrics | None = None,
        late: int = 0,
        duplicates: int = 0,
        discarded: int = 0,
        concealed: float = 0.0,
        underruns: int = 0,
        ssrc_changes: int = 0,
        malformed: int = 0,
        auth_failures: int = 0,
        unkeyed: int = 0,
        withheld: int = 0,
        unknown_payload: int = 0,
        foreign: int = 0,
        silence_sent: int = 0,
        comfort_noise_sent: int = 0,
        comfort_noise_played: int = 0,
        frames_dropped: int = 0,
        dtmf_received: int = 0,
        dtmf_sent: int = 0,
        rtcp_sent: int = 0,
        rtcp_received: int = 0,
        rtcp_ignored: int = 0,
        stun: int = 0,
        send_errors: int = 0,
        skipped: int = 0,
    ) -> None:
        # Written out rather than made by @dataclass: compiled, this one is native code
        # (a stream makes one)
        self.packets_sent = packets_sent
        self.octets_sent = octets_sent
        self.packets_received = packets_received
        self.octets_received = octets_received
        self.lost = lost
        self.jitter = jitter
        self.round_trip = round_trip
        self.remote_lost = remote_lost
        self.remote_jitter = remote_jitter
        self.remote_metrics = remote_metrics
        self.late = late
        self.duplicates = duplicates
        self.discarded = discarded
        self.concealed = concealed
        self.underruns = underruns
        self.ssrc_changes = ssrc_changes
        self.malformed = malformed
        self.auth_failures = auth_failures
        self.unkeyed = unkeyed
        self.withheld = withheld
        self.unknown_payload = unknown_payload
        self.foreign = foreign
        self.silence_sent = silence_sent
        self.comfort_noise_sent = comfort_noise_sent
        self.comfort_noise_played = comfort_noise_played
        self.frames_dropped = frames_dropped
        self.dtmf_received = dtmf_received
        self.dtmf_sent = dtmf_sent
        self.rtcp_sent = rtcp_sent
        self.rtcp_received = rtcp_received
        self.rtcp_ignored = rtcp_ignored
        self.stun = stun
        self.send_errors = send_errors
        self.skipped = skipped


@dataclass(frozen=True, slots=True)
class DirectionQuality:
    """One direction of a call's audio.

    ``packets``: RTP packets that arrived (received) or were sent (sent). ``lost``: packets
    lost to the listener: for the received direction those missing at their playout turn
    (lost in the network or arrived too late to play), for the sent direction what the
    peer's last RTCP report said (None until it sent one). ``loss`` is the fraction of
    packets lost, ``burst_ratio`` G.107's BurstR (1 for random loss; only measured on the
    received side), ``jitter`` the RFC 3550 interarrival jitter in seconds,
    ``one_way_delay`` the estimated mouth-to-ear delay in seconds, and ``r`` and ``mos`` the
    E-model's rating and its MOS (G.107 Annex B), None when there is nothing to rate.
    """

    packets: int
    lost: int | None
    loss: float | None
    burst_ratio: float
    jitter: float | None
    one_way_delay: float
    r: float | None
    mos: float | None


@dataclass(frozen=True, slots=True)
class MediaQuality:
    """Both directions of a call's audio now (``CallMedia.stats()``), with the codec and the
    RTCP round-trip time in seconds (None until measured)."""

    codec: str
    received: DirectionQuality
    sent: DirectionQuality
    round_trip: float | None


def _rate(codec: str, loss: float, burst: float, delay: float) -> tuple[float | None, float | None]:
    if codec.upper() not in CODEC_IMPAIRMENTS:
        return None, None
    r = estimate_r(codec, loss, burst=burst, one_way_delay=delay)
    return r, mos_from_r(r)


def media_quality(
    stats: StreamStatistics,
    *,
    codec: str,
    ptime: float,
    played: int,
    lost: int,
    loss_bursts: int,
    playout_delay: float,
) -> MediaQuality:
    """Rate both directions of a stream from its statistics and its jitter buffer's
    ``played``, ``lost`` and ``loss_bursts`` frames and ``playout_delay`` (seconds).

    The one-way delay is half the RTCP round trip (0 until measured) plus one packet time
    (packetization) plus the playout delay; the peer's playout delay is not known, so ours
    stands in for it in the sent direction."""
    network = stats.round_trip / 2 if stats.round_trip is not None else 0.0
    delay = network + ptime + playout_delay
    due = played + lost
    received_loss = lost / due if due else None
    burst = burst_ratio(played, lost, loss_bursts)
    r_in, mos_in = (None, None)
    if received_loss is not None:
        r_in, mos_in = _rate(codec, received_loss, burst, delay)
    received = DirectionQuality(
        stats.packets_received,
        lost if due else None,
        received_loss,
        burst,
        stats.jitter if stats.packets_received else None,
        delay,
        r_in,
        mos_in,
    )
    remote_lost = None if stats.remote_lost is None else max(0, stats.remote_lost)
    sent_loss = None
    r_out, mos_out = (None, None)
    if remote_lost is not None and stats.packets_sent:
        sent_loss = min(1.0, remote_lost / stats.packets_sent)
        r_out, mos_out = _rate(codec, sent_loss, 1.0, delay)
    sent = DirectionQuality(
        stats.packets_sent,
        remote_lost,
        sent_loss,
        1.0,
        stats.remote_jitter,
        delay,
        r_out,
        mos_out,
    )
    return MediaQuality(codec, received, sent, stats.round_trip)
