"""One RTP audio stream on asyncio: the driver around the sans-I/O pieces of this package.

Receiving: the engine's :class:`SocketPoller` (or one of the stream's own) reads what
arrives on both sockets and hands each datagram over (:meth:`MediaStream._on_rtp`); the
common RTP packet is read with one ``struct`` call (:func:`parse_rtp`). RTP from the peer is
accepted from wherever it really comes and the stream sends back there (symmetric RTP,
RFC 4961): the first valid packet latches the address; packets from elsewhere are counted
and dropped, unless the latched address has been quiet for ``RELATCH_AFTER`` seconds (a NAT
rebinding). Once packets come from the latched address, the RTP socket is connected to it
(Linux, :meth:`SocketPoller.connect`): the kernel drops what others send before the stream
sees it, and both directions cost less (no source address made per packet, no route lookup
per send). When the latched address has been quiet for ``RELATCH_AFTER`` the association
is dissolved, and the stream hears anyone again; so does an address the SDP changes. With
rtcp-mux (RFC 5761 §4) RTCP shares the RTP port and is told apart by its packet type.
Telephone events go to the DTMF receiver, audio into the jitter buffer.

Sending and playout run on the process's :class:`MediaClock`: each period the stream sends
one packet (queued PCM, a DTMF event packet, or silence when the producer is behind: never a
burst afterwards; when CN was agreed, RFC 3389 §4, the silence goes as a CN packet at its start
and one each ``CN_REFRESH``, nothing between) and takes one frame out of the jitter buffer
(decoded, concealed, or comfort noise, also between the peer's CN packets). After periods
the clock skipped (the loop was held up) the frames that came meanwhile are read and played
out at once: the peer did not stall, and its audio is delivered late, not cut (the jitter
buffer would otherwise discard it as excess delay). A writer that runs ahead of the clock
waits (``write`` is back-pressured); ``flush`` drops queued audio at once (barge-in).

No packet for ``inactivity_timeout`` seconds while the peer should be sending emits
``"inactive"`` (RFC 3550 has no such rule; it is the provider fault X.215 calls
S-P-ABORT's cause, reported upwards to the call). The seconds are packet times the stream
watched: periods a held-up loop skipped do not count, as the peer's packets of that time
may be waiting unread.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, Final, Literal

import pylibsrtp
from aiortc.rtp import is_rtcp
from mypy_extensions import mypyc_attr
from pyee.asyncio import AsyncIOEventEmitter

from sdp import NegotiatedMedia
from voip.rtp.clock import MediaClock, Registration
from voip.rtp.codecs import (
    CN_PAYLOAD_TYPE,
    PCMA,
    PCMU,
    AudioCodec,
    ComfortNoise,
    UnsupportedCodec,
    codec_for,
)
from voip.rtp.dtmf import DtmfReceiver, DtmfSender, dtmf_digits
from voip.rtp.jitterbuffer import Frame, JitterBuffer
from voip.rtp.packet import is_stun, parse_rtp
from voip.rtp.plc import Concealer
from voip.rtp.poller import RECEIVE_SIZE, SocketPoller
from voip.rtp.ports import RtpPorts
from voip.rtp.rtcp import RtcpBye, RtcpIgnored, RtcpReport, RtcpSession, VoipMetrics
from voip.rtp.sender import RtpSender
from voip.rtp.source import ReceivedSource
from voip.rtp.srtp import SrtpTransform
from voip.rtp.stats import MediaQuality, StreamStatistics, media_quality
from voip.rtp.timeline import SenderTimeline

__all__ = ["MediaStream", "Pcm"]

RELATCH_AFTER: Final = 1.0
BACKLOG_DATAGRAMS: Final = 256  # read at most after a stall (5 s of packets at 20 ms)
QUEUED_FRAMES: Final = 10  # outgoing frames queued before write() waits (200 ms at 20 ms)
RECEIVED_FRAMES: Final = 100  # received frames kept for a slow reader (2 s at 20 ms)
CONCEAL_FRAMES: Final = 3  # missing frames in a row made up before silence (60 ms at 20 ms)
DTMF_DURATION: Final = 0.1
DTMF_GAP: Final = 0.05
#: RFC 3389 §4 leaves the rate of CN updates to the implementation: one at the start of a
#: silence, then one a second (the peer's inactivity timers see the stream alive)
CN_REFRESH: Final = 1.0
#: the CN payload of digital silence: a noise level of -127 dBov (§3.1)
CN_SILENCE: Final = bytes([127])

Address = tuple[str, int]
#: PCM as a program may hold it: bytes, or a buffer it fills (a bytearray, a memoryview of
#: an array); compiled code checks the declared type at run time, so it is declared wide
Pcm = bytes | bytearray | memoryview
#: a datagram's source as ``recvfrom`` gives it: IPv6 adds flow information and scope (typed
#: loosely, since compiled code checks a declared tuple shape at run time)
SocketAddress = tuple[Any, ...]
#: ``wiretap(sent, datagram, local, remote)``: every datagram of the stream's sockets as it
#: is on the wire (after SRTP protection when sent, before unprotection when received)
Wiretap = Callable[[bool, bytes, Address, SocketAddress], None]
#: What every stream decodes whatever was negotiated (stateless codecs: the instances are
#: shared by all streams)
_DECODERS: dict[int, AudioCodec] = {0: PCMU, 8: PCMA}
_NOISE: Final = ComfortNoise()


@mypyc_attr(allow_interpreted_subclasses=True)
class MediaStream:
    """An RTP audio stream between ``ports`` and the peer that ``configure`` names.

    PCM in and out is 16-bit mono at ``sample_rate``. Events (pyee): ``"dtmf"``
    (:class:`DtmfDigit`), ``"inactive"`` (seconds without media), ``"rtcp"``
    (:class:`RtcpReport`), ``"bye"`` (the peer's RTCP BYE).
    """

    def __init__(
        self,
        ports: RtpPorts,
        clock: MediaClock,
        *,
        sample_rate: int = 8000,
        cname: str | None = None,
        inactivity_timeout: float = 30.0,
        local_telephone_event: int | None = 101,
        poller: SocketPoller | None = None,
    ) -> None:
        """``poller``: the engine's :class:`SocketPoller` that watches the sockets; without
        one they go to the loop's ``add_reader``."""
        self.ports = ports
        self.clock = clock
        self.loop = clock.loop
        self.sample_rate = sample_rate
        self.inactivity_timeout = inactivity_timeout
        self._events: AsyncIOEventEmitter | None = None  # made when a handler is added
        #: the owner's callable (the call's), told ``(event, *args)`` of every event before
        #: the pyee handlers: what a call hears of its stream, without an emitter per stream
        self.listener: Callable[..., None] | None = None
        #: what sees every datagram sent and received (a packet capture), when set
        self.wiretap: Wiretap | None = None
        self.stats = StreamStatistics()
        self.sender = RtpSender()
        self.rtcp = RtcpSession(self.sender, cname or f"voip@{ports.host}", 8000)
        self.jitter = JitterBuffer()
        self.dtmf = DtmfReceiver()
        self.source: ReceivedSource | None = None
        # negotiated
        self.codec: AudioCodec = PCMU
        self.payload_type = 0
        self.telephone_event: int | None = None  # the peer's number, for what we send
        self.comfort_noise: int | None = None  # the peer's number for CN, when agreed
        # what CN arrives on: 13 (static, RFC 3551 §6) and the numbers agreed for CN at the
        # codec's clock rate, ours and the peer's (RFC 3264 §6.1; a dynamic one is legal)
        self._comfort_noise_in: set[int] = {CN_PAYLOAD_TYPE}
        self.local_telephone_event = local_telephone_event  # ours, for what we receive
        self.ptime = 0.02
        self.rtcp_mux = False
        self.srtp: SrtpTransform | None = None  # SRTP/SRTCP when a=crypto was agreed
        #: what protects RTCP: ``srtp`` with SDES and with DTLS-SRTP over rtcp-mux, the
        #: keys of the RTCP port's own handshake with DTLS-SRTP without (RFC 5764 §4.1)
        self.srtcp: SrtpTransform | None = None
        #: what takes the DTLS datagrams (RFC 7983: a first octet of 20 to 63) that
        #: arrive on the RTP port (``rtcp`` False) or the RTCP port: DTLS-SRTP's handshake
        self.dtls: Callable[[bytes, SocketAddress, bool], None] | None = None
        #: the SDP carries SRTP keys: until offer/answer completes, what arrives cannot be
        #: authenticated and is dropped (the peer may send before its answer reaches us)
        self.awaiting_keys = False
        self.sending = False
        self.receiving = False
        self.remote_rtp: Address | None = None
        self.remote_rtcp: Address | None = None
        self.latched: Address | None = None
        self._decoders = dict(_DECODERS)  # a codec negotiated later joins (G.722, Opus)
        self._noise = _NOISE
        # clocked state
        self._registration: Registration | None = None
        self._skipped = 0
        self._unsettled_skips = 0  # periods skipped, as told by a tick, for its settle
        self._outgoing: deque[bytes] = deque()
        self._pending = b""  # PCM written that does not fill a frame yet
        self._space = asyncio.Event()
        self._space.set()
        self._drained = asyncio.Event()
        self._drained.set()
        self._generation = 0  # flush() bumps it: writes waiting then are dropped
        self._incoming: deque[bytes] = deque()
        self._readable = asyncio.Event()
        self._reader_waits = False  # read() waits on _readable for the next frame
        self._dtmf_queue: deque[str] = deque()
        self._dtmf: DtmfSender | None = None
        self._dtmf_gap = 0
        self._cn_frames = 0  # frames of the current silence sent as comfort noise
        self._comfort: bytes | None = None  # the last CN payload played: the peer is silent
        self._plc = Concealer(8000, max_frames=CONCEAL_FRAMES)
        self._started_receiving = False
        self._last_received = 0.0
        self._watched = 0.0  # seconds of packet times watched since anything was received
        self._latched_heard = 0.0
        self._inactive = False
        self._next_rtcp = 0.0
        self._to_user: Callable[[bytes], bytes] = _same
        # the sender's timeline is another sequence of frames: its own resampling state
        self._timeline_to_user: Callable[[bytes], bytes] = _same
        self._from_user: Callable[[bytes], bytes] = _same
        self._closed = False
        self._sinks: list[Callable[[bytes], None]] = []
        self._timeline = SenderTimeline(sample_rate, self.codec.clock_rate)
        self._frame_samples = 160  # RTP timestamp units per packet
        self._codec_samples = 160  # samples at the codec's rate per packet
        #: the encoded silence of one packet time, for a codec without state (G.711)
        self._silence_payload: bytes | None = None
        self._follow_codec()
        self._own_poller = poller is None
        self._poller = poller if poller is not None else SocketPoller(self.loop)
        self._poller.add(ports.rtp, self._on_rtp_socket)
        self._poller.add(ports.rtcp, self._on_rtcp_socket)
        #: the RTP socket's sendto and send, looked up once (a packet per packet time)
        self._rtp_sendto: Callable[[bytes, Address], int] = ports.rtp.sendto
        self._rtp_send: Callable[[bytes], int] = ports.rtp.send
        #: the RTP socket is connected to the latched address (the poller reads it so)
        self._connected = False
        self._connects = True  # False once connecting this socket failed
        self._heard_latched = False  # packets came from the address latched now

    def __repr__(self) -> str:
        return f"<MediaStream {self.ports.host}:{self.ports.port} -> {self.remote_rtp}>"

    @property
    def events(self) -> AsyncIOEventEmitter:
        """The stream's event emitter (pyee), made on first use: a call hears its stream
        through :attr:`listener`, and an emitter per stream costs more than its packets."""
        if self._events is None:
            self._events = AsyncIOEventEmitter(self.loop)
        return self._events

    def _emit(self, event: str, *args: object) -> None:
        if self.listener is not None:
            self.listener(event, *args)
        if self._events is not None:
            self._events.emit(event, *args)

    def drop_listeners(self) -> None:
        """``"closed"`` to the handlers, then forget them and the listener: nothing is
        heard from a closed stream, and what they hold (the call) is freed with it."""
        self.listener = None
        events = self._events
        if events is not None:
            events.emit("closed")
            events.remove_all_listeners()

    # --- configuration ---------------------------------------------------------------------

    @property
    def local_port(self) -> int:
        return self.ports.port

    @property
    def frame_samples(self) -> int:
        """RTP timestamp units per packet."""
        return self._frame_samples

    @property
    def frame_bytes(self) -> int:
        """Bytes of user PCM per packet time."""
        return 2 * round(self.sample_rate * self.ptime)

    def configure(self, media: NegotiatedMedia) -> None:
        """Follow what offer/answer agreed: codec, address, ptime, direction, rtcp-mux.

        Raises :class:`UnsupportedCodec` when no agreed codec is one the toolkit has."""
        if not media.accepted or not media.codecs:
            self._set_direction(False, False)
            return
        codec = None
        for candidate in media.codecs:
            try:
                codec = codec_for(candidate, self.sample_rate)
            except ValueError:
                continue
            payload_type, codec_of = candidate.payload_type, candidate
            break
        if codec is None or payload_type is None:
            raise UnsupportedCodec(f"none of {[c.name for c in media.codecs]} is supported")
        ptime = (media.ptime or 20) / 1000.0
        if type(codec) is not type(self.codec) or ptime != self.ptime:
            self.sender.talkspurt = True
        else:
            codec = self.codec  # the same codec goes on (it may keep state)
        self.codec, self.payload_type, self.ptime = codec, payload_type, ptime
        self._follow_codec()
        if codec.name.upper() in ("G722", "OPUS"):
            # what arrives carries our number for it (RFC 3264 §6.1); the peer's as well
            for number in (
                payload_type,
                *(c.payload_type for c in media.local_codecs if c.same_codec(codec_of)),
            ):
                if number is not None:
                    self._decoders[number] = codec
        self.telephone_event = media.telephone_event_payload_type
        # CN goes with the audio of its RTP clock rate (RFC 3389 §4: CN/8000 with G.711 and
        # G.722, whose RTP clock is 8000, RFC 3551 §4.5.2), sent on the peer's number for it
        rate = codec.clock_rate
        theirs = [c for c in media.codecs if c.name.upper() == "CN" and c.clock_rate == rate]
        ours = [c for c in media.local_codecs if c.name.upper() == "CN" and c.clock_rate == rate]
        self.comfort_noise = theirs[0].payload_type if theirs else None
        self._comfort_noise_in = {CN_PAYLOAD_TYPE}
        for comfort in (*theirs, *ours):
            if comfort.payload_type is not None:
                self._comfort_noise_in.add(comfort.payload_type)
        # events arrive with our number for telephone-event, which need not be 101
        local_event = media.local_telephone_event_payload_type
        if local_event is not None:
            self.local_telephone_event = local_event
        elif self.telephone_event is not None and self.local_telephone_event is None:
            self.local_telephone_event = self.telephone_event
        self.rtcp_mux = media.rtcp_mux
        if media.dtls:
            # the keys come from the handshake on the media path (voip.rtp.dtls_srtp),
            # which sets srtp and srtcp; until then nothing is sent or played
            self.awaiting_keys = True
        else:
            self.srtp = self.srtcp = SrtpTransform.follow(self.srtp, media)
            self.awaiting_keys = False
        self._to_user = _converter(codec.sample_rate, self.sample_rate)
        self._timeline_to_user = _converter(codec.sample_rate, self.sample_rate)
        self._from_user = _converter(self.sample_rate, codec.sample_rate)
        remote: Address | None = None
        if media.remote_address and media.remote_port and not media.legacy_hold:
            remote = (media.remote_address, media.remote_port)
        if remote != self.remote_rtp:
            self._disconnect()  # the new address is heard, and sent to
            self.remote_rtp = self.latched = remote
            self._heard_latched = False
            if remote is None:
                self.remote_rtcp = None
            elif self.rtcp_mux:
                self.remote_rtcp = remote
            else:
                host = media.remote_rtcp_address or remote[0]
                self.remote_rtcp = (host, media.remote_rtcp_port or remote[1] + 1)
        direction = media.direction
        self._set_direction(
            direction.sends and remote is not None and not media.on_hold, direction.receives
        )
        if self._registration is not None and abs(self._registration.period - ptime) > 1e-9:
            self._registration.cancel()
            self._registration = None
        self._ensure_clock()

    def _follow_codec(self) -> None:
        """What follows from the codec and packet time, worked out once, not per packet."""
        codec, ptime = self.codec, self.ptime
        self._frame_samples = round(codec.clock_rate * ptime)
        self._codec_samples = round(codec.sample_rate * ptime)
        silence = bytes(2 * self._codec_samples)
        self._silence_payload = codec.encode(silence) if codec is PCMU or codec is PCMA else None
        if self._plc.sample_rate != codec.sample_rate:
            self._plc = Concealer(codec.sample_rate, max_frames=CONCEAL_FRAMES)
        self._timeline.set_clock(self.sample_rate, codec.clock_rate)

    def _set_direction(self, sending: bool, receiving: bool) -> None:
        if sending and not self.sending:
            self.sender.talkspurt = True
        self.sending, self.receiving = sending, receiving
        if receiving:
            self._last_received = self.loop.time()
            self._watched = 0.0
            self._inactive = False

    def _ensure_clock(self) -> None:
        if self._closed or self._registration is not None:
            return
        if self.sending or self.receiving:
            self._registration = self.clock.add(self, self.ptime)  # on the clock's phase grid
            self._skipped = 0  # the new registration's skipped periods seen so far
            self._next_rtcp = self.loop.time() + self.rtcp.interval(initial=True)

    def hold(self) -> None:
        """Stop sending (and expecting) media, keeping the ports (e.g. before a re-INVITE)."""
        self._set_direction(False, False)

    # --- the clock --------------------------------------------------------------------------

    def tick(self, deadline: float, now: float) -> None:
        """One packet time's on-time work: send one packet (:meth:`settle` does the rest)."""
        registration = self._registration
        if registration is not None and registration.skipped != self._skipped:
            skipped = registration.skipped - self._skipped
            self._skipped = registration.skipped
            self._unsettled_skips += skipped
            self.stats.skipped += skipped
            self.sender.advance(skipped * self._frame_samples)
        if self.sending:
            self._send_frame()
        # on hold the queue stays: the prompt goes on where it stopped when the call resumes
        self.sender.advance(self._frame_samples)

    def settle(self, now: float) -> None:
        """The rest of the packet time, once the round's packets are sent: play out one
        frame, watch for inactivity, send RTCP when due."""
        skipped, self._unsettled_skips = self._unsettled_skips, 0
        registration = self._registration
        if self.receiving:
            # the loop was held up (CPU stall) while the peer went on sending: the frames
            # due in the skipped periods are played now, late, not left in the jitter
            # buffer to be discarded one by one as excess delay (audio cut out)
            if skipped:
                self._read_backlog()
                jitter = self.jitter
                for _ in range(skipped):
                    if not jitter.overdue:
                        break
                    self._play_frame()
            self._play_frame()
            # silence is timed on the periods this stream watched: when the loop was held
            # up, what the peer sent meanwhile may still be waiting unread (or, with both
            # ends in one process, not be sent yet), which is no sign of a silent peer
            self._watched += self.ptime
            if (
                not self._inactive
                and self.inactivity_timeout > 0
                and self._watched > self.inactivity_timeout
                and now - self._last_received > self.inactivity_timeout
            ):
                self._inactive = True
                self._emit("inactive", now - self._last_received)
        if self._connected:
            if now - self._latched_heard > RELATCH_AFTER:
                self._disconnect()  # quiet: the peer may come from elsewhere now (NAT)
        elif self._heard_latched and self._connects and now - self._latched_heard < RELATCH_AFTER:
            self._connect()  # packets come from the latched address
        if now >= self._next_rtcp:
            self._next_rtcp = now + self.rtcp.interval()
            if self.remote_rtcp is not None and (self.sending or self.receiving):
                self._send_rtcp(
                    self.rtcp.report(now, time.time(), self.sender.timestamp, self._sources())
                )
        if not self.sending and not self.receiving and registration is not None:
            registration.cancel()
            self._registration = None

    def _send_frame(self) -> None:
        if (self._dtmf is not None or self._dtmf_gap or self._dtmf_queue) and self._send_event():
            return
        outgoing = self._outgoing
        if outgoing:
            pcm = outgoing.popleft()
            if len(outgoing) < QUEUED_FRAMES:
                self._space.set()
            if not outgoing:
                self._drained.set()
            if self._cn_frames:
                # speech after a silence sent as CN: a new talkspurt, marked (RFC 3551 §4.1)
                self._cn_frames = 0
                self.sender.talkspurt = True
            payload = self.codec.encode(pcm)
        else:
            # the producer is behind (or there is none): silence, never a burst later
            self.stats.silence_sent += 1
            if self.comfort_noise is not None:
                self._send_comfort_noise(self.comfort_noise)
                return
            payload = self._silence()
        self._sendto(self.sender.packet(self.payload_type, payload))

    def _send_comfort_noise(self, payload_type: int) -> None:
        """A frame of silence when CN was agreed (RFC 3389 §4): a CN packet at the start
        of the silence, then one each CN_REFRESH, nothing between (the RTP timestamp goes
        on, so the next packet's tells how long the silence was)."""
        if self._cn_frames % max(1, round(CN_REFRESH / self.ptime)) == 0:
            self._sendto(self.sender.packet(payload_type, CN_SILENCE))
            self.stats.comfort_noise_sent += 1
        self._cn_frames += 1

    def _send_event(self) -> bool:
        """Send this packet time's telephone-event packet (RFC 4733), if one is due."""
        dtmf = self._dtmf
        if (
            dtmf is None
            and self._dtmf_gap <= 0
            and self._dtmf_queue
            and self.telephone_event is not None
        ):
            dtmf = self._dtmf = DtmfSender(
                self._dtmf_queue.popleft(),
                self.sender.timestamp,
                duration=round(DTMF_DURATION * self.codec.clock_rate),
                samples_per_packet=self._frame_samples,
            )
        if dtmf is not None and self.telephone_event is not None:
            packet = dtmf.next_packet()
            data = self.sender.packet(
                self.telephone_event,
                packet.payload,
                marker=packet.marker,
                timestamp=packet.timestamp,
            )
            if dtmf.done:
                self._dtmf = None
                self.stats.dtmf_sent += 1
                self._dtmf_gap = max(1, round(DTMF_GAP / self.ptime))
                self.sender.talkspurt = True
            self._sendto(data)
            return True
        if self._dtmf_gap > 0:
            self._dtmf_gap -= 1
        return False

    def _silence(self) -> bytes:
        """A packet time of silence, encoded: for G.711 the same payload every time, so
        encoded once (:meth:`_follow_codec`); a codec with state (G.722, Opus) encodes it
        each time, its encoder's timeline going on."""
        payload = self._silence_payload
        if payload is None:
            return self.codec.encode(bytes(2 * self._codec_samples))
        return payload

    def _connect(self) -> None:
        """Connect the RTP socket to the latched address, then read with ``recvfrom`` what
        others sent before (it stays queued: after this only the peer's is delivered)."""
        latched = self.latched
        if latched is None:
            return
        if not self._poller.connect(self.ports.rtp, latched):
            self._connects = False  # not here, or not to this address: never again
            return
        self._connected = True
        self._read_backlog()

    def _disconnect(self) -> None:
        if self._connected:
            self._poller.disconnect(self.ports.rtp)
            self._connected = False

    def _sendto(self, data: bytes) -> None:
        address = self.latched
        if address is None:
            return
        size = len(data) - 12
        try:
            if self.srtp is not None:
                data = self.srtp.protect(data)
            elif self.awaiting_keys:
                self.stats.withheld += 1  # DTLS-SRTP not keyed yet: never sent in clear
                return
            if self._connected:
                self._rtp_send(data)
            else:
                self._rtp_sendto(data, address)
        except (OSError, pylibsrtp.Error):
            self.stats.send_errors += 1
            return
        if self.wiretap is not None:
            self._tap(True, data, self.ports.port, address)
        self.stats.packets_sent += 1
        self.stats.octets_sent += size

    def _send_rtcp(self, data: bytes) -> None:
        address = self.remote_rtcp
        if address is None:
            return
        sock = self.ports.rtp if self.rtcp_mux else self.ports.rtcp
        try:
            if self.srtcp is not None:
                data = self.srtcp.protect_rtcp(data)
            elif self.awaiting_keys:
                return
            sock.sendto(data, address)
        except (OSError, pylibsrtp.Error):
            self.stats.send_errors += 1
            return
        if self.wiretap is not None:
            self._tap(True, data, self.ports.port + (0 if self.rtcp_mux else 1), address)
        self.stats.rtcp_sent += 1

    def _sources(self) -> list[ReceivedSource]:
        return [] if self.source is None else [self.source]

    def _play_frame(self) -> None:
        jitter = self.jitter
        frame: bytes | None
        if self._comfort is not None and not jitter:
            # the peer sent CN and nothing since (RFC 3389 §4): its silence goes on, made
            # from the last CN, neither a loss nor an underrun of the jitter buffer
            self.stats.comfort_noise_played += 1
            frame = self._noise.noise(self._comfort, self._codec_samples)
            self._deliver(frame if self._to_user is _same else self._to_user(frame))
            return
        counters = jitter.counters
        concealed, lost = counters.concealed, counters.lost
        packet = jitter.pop()
        if packet is not None:
            payload_type = packet.payload_type
            self._comfort = None
            if payload_type in self._comfort_noise_in:
                self._comfort = packet.payload
                frame = self._noise.noise(packet.payload, self._codec_samples)
            else:
                frame = self._decoders.get(payload_type, self.codec).decode(packet.payload)
            decoded = frame
            frame = self._plc.good(frame)
            if self._timeline.sinks:
                # the fade out of a concealment belongs on the sender's timeline after a
                # lost packet, not after a late one (an underrun is the playout's own)
                timeline = self._timeline
                timeline.frame(
                    packet.ssrc,
                    packet.timestamp,
                    self._frame_samples,
                    self._timeline_to_user(frame if timeline.after_loss else decoded),
                )
            self._deliver(frame if self._to_user is _same else self._to_user(frame))
            dropped = jitter.dropped
            if dropped is not None:
                self._dropped(dropped)
            return
        if not self._started_receiving:
            return  # nothing ever arrived: no frames yet
        frame = None
        samples = self._codec_samples
        if counters.concealed > concealed:
            # packet loss concealment (G.711 Appendix I): pitch waveform substitution
            frame = self._plc.missing(samples)
            if frame is not None:
                self.stats.concealed += self.ptime
        if frame is None:
            frame = bytes(2 * samples)
        if counters.lost > lost and self._timeline.sinks:
            self._timeline.concealed(self._frame_samples, self._timeline_to_user(frame))
        self._deliver(frame if self._to_user is _same else self._to_user(frame))

    def _dropped(self, packet: Frame) -> None:
        """The packet after the one just played, discarded to shrink the delay: not
        played, but decoded (a G.722 or Opus decoder's state goes on through it to the next
        packet) and written on the sender's timeline, where it is the peer's audio."""
        if packet.payload_type in self._comfort_noise_in:
            return  # on the sender's timeline, the gap's silence
        frame = self._decoders.get(packet.payload_type, self.codec).decode(packet.payload)
        if self._timeline.sinks:
            self._timeline.frame(
                packet.ssrc, packet.timestamp, self._frame_samples, self._timeline_to_user(frame)
            )

    def _deliver(self, frame: bytes) -> None:
        for sink in self._sinks:
            sink(frame)
        incoming = self._incoming
        if len(incoming) >= RECEIVED_FRAMES:
            incoming.popleft()
            self.stats.frames_dropped += 1
        incoming.append(frame)
        if self._reader_waits:
            self._reader_waits = False
            self._readable.set()

    # --- receiving --------------------------------------------------------------------------

    def _read_backlog(self) -> None:
        """Read what queued up on the RTP port while the loop was held up: the poller
        reads one datagram per socket per wake-up, so after a stall the clock may come
        first, with most of what arrived meanwhile still in the socket."""
        recvfrom = self.ports.rtp.recvfrom
        for _ in range(BACKLOG_DATAGRAMS):
            try:
                data, address = recvfrom(RECEIVE_SIZE)
            except OSError:  # nothing more (or an ICMP error for an earlier send)
                return
            self._on_rtp_socket(data, address)

    def _on_rtp_socket(self, data: bytes, address: SocketAddress) -> None:
        """A datagram on the RTP port: RTP, or RTCP with rtcp-mux (RFC 5761 §4), or STUN."""
        if self.wiretap is not None:
            self._tap(False, data, self.ports.port, address)
        # RFC 7983 §7 by the first octet: 0-3 STUN, 20-63 DTLS, 128-191 RTP and RTCP (the
        # octet tested here first, so that RTP makes no call across modules)
        first = data[0] if data else 0
        if first < 4 and is_stun(data):
            self.stats.stun += 1
        elif 19 < first < 64:
            self._on_dtls(data, address, False)
        elif self.rtcp_mux and is_rtcp(data):
            self._on_rtcp(data)
        else:
            self._on_rtp(data, address)

    def _on_rtcp_socket(self, data: bytes, address: SocketAddress) -> None:
        if self.wiretap is not None:
            self._tap(False, data, self.ports.port + 1, address)
        if is_stun(data):
            self.stats.stun += 1
        elif data and 19 < data[0] < 64:
            self._on_dtls(data, address, True)
        else:
            self._on_rtcp(data)

    def _on_dtls(self, data: bytes, address: SocketAddress, rtcp: bool) -> None:
        handler = self.dtls
        if handler is None:
            self.stats.malformed += 1  # no DTLS-SRTP in this call: not a packet of ours
        else:
            handler(data, address, rtcp)

    def notify(self, event: str, *args: object) -> None:
        """Tell the owner and the handlers ``event`` (what the stream's DTLS-SRTP says)."""
        self._emit(event, *args)

    def _tap(self, sent: bool, data: bytes, local_port: int, remote: SocketAddress) -> None:
        tap = self.wiretap
        if tap is None:
            return
        try:
            tap(sent, data, (self.ports.host, local_port), remote)
        except Exception as error:  # a capture's fault never stops the audio
            self.wiretap = None
            failure = {"message": "media wiretap failed", "exception": error}
            self.loop.call_exception_handler(failure)

    def _on_rtp(self, data: bytes, origin: SocketAddress) -> None:
        stats = self.stats
        if self.srtp is not None:
            try:
                data = self.srtp.unprotect(data)
            except pylibsrtp.Error:
                stats.auth_failures += 1  # RFC 3711 §3.3: dropped, never played
                return
        elif self.awaiting_keys:
            stats.unkeyed += 1
            return
        try:
            packet = parse_rtp(data)
        except ValueError:
            stats.malformed += 1
            return
        payload_type = packet.payload_type
        if payload_type in self._decoders or payload_type in self._comfort_noise_in:
            dtmf = False
        elif payload_type == self.local_telephone_event:
            dtmf = True
        else:
            stats.unknown_payload += 1
            return
        now = self.clock.time()
        latched = self.latched
        # a connected socket's poller hands over the latched address itself
        if origin is not latched and (
            latched is None or origin[1] != latched[1] or origin[0] != latched[0]
        ):
            if latched is not None and now - self._latched_heard < RELATCH_AFTER:
                stats.foreign += 1
                return
            # without IPv6 flow information, scope
            address: Address = (origin[0], origin[1])
            self.latched = address  # symmetric RTP: answer where the packets come from
            if (
                self.remote_rtcp is not None
                and not self.rtcp_mux
                and self.remote_rtcp[0] != address[0]
            ):
                self.remote_rtcp = (address[0], address[1] + 1)
        self._latched_heard = self._last_received = now
        self._heard_latched = True
        self._watched = 0.0
        self._inactive = False
        stats.packets_received += 1
        stats.octets_received += len(packet.payload)
        source = self.source
        if source is None or source.ssrc != packet.ssrc:
            source = self.source = ReceivedSource.first(
                packet.ssrc, self.codec.clock_rate, packet.sequence_number
            )
        source.update_seq(packet.sequence_number)
        if dtmf:
            try:
                digit = self.dtmf.receive(packet.payload, packet.timestamp)
            except ValueError:
                stats.malformed += 1
                return
            if digit is not None:
                stats.dtmf_received += 1
                self._emit("dtmf", digit)
            return
        source.update_jitter(now, packet.timestamp)
        if self.receiving:
            self._started_receiving = True
            self.jitter.push(packet)
            if payload_type in self._comfort_noise_in:
                self.jitter.play_now()  # a silence begins: no point waiting for more

    def _on_rtcp(self, data: bytes) -> None:
        if self.srtcp is not None:
            try:
                data = self.srtcp.unprotect_rtcp(data)
            except pylibsrtp.Error:
                self.stats.auth_failures += 1  # RFC 3711 §3.4
                return
        elif self.awaiting_keys:
            self.stats.unkeyed += 1
            return
        sources = {} if self.source is None else {self.source.ssrc: self.source}
        try:
            events = self.rtcp.receive(data, self.loop.time(), time.time(), sources)
        except ValueError:
            self.stats.malformed += 1
            return
        self.stats.rtcp_received += 1
        self._last_received = self.loop.time()
        self._watched = 0.0
        for event in events:
            if isinstance(event, RtcpReport):
                if event.packets_lost is not None:
                    self.stats.remote_lost = event.packets_lost
                    self.stats.remote_jitter = event.jitter
                self._emit("rtcp", event)
            elif isinstance(event, RtcpBye):
                self._emit("bye", event)
            elif isinstance(event, RtcpIgnored):
                self.stats.rtcp_ignored += 1
            elif isinstance(event, VoipMetrics):
                self.stats.remote_metrics = event

    # --- the PCM API for bots -----------------------------------------------------------------

    async def write(self, pcm: Pcm) -> None:
        """Queue PCM to send; waits while more than ``QUEUED_FRAMES`` frames are queued.
        A ``flush()`` while waiting drops the rest of this write."""
        generation = self._generation
        data = self._pending + (pcm if isinstance(pcm, bytes) else bytes(pcm))
        size = self.frame_bytes
        convert = self._from_user
        start = 0
        while len(data) - start >= size:
            while len(self._outgoing) >= QUEUED_FRAMES:
                self._space.clear()
                await self._space.wait()
                if generation != self._generation or self._closed:
                    return
            self._outgoing.append(convert(data[start : start + size]))
            self._drained.clear()
            start += size
        self._pending = data[start:]

    def flush(self) -> None:
        """Drop every queued outgoing frame now (barge-in); waiting writes return."""
        self._outgoing.clear()
        self._pending = b""
        self._generation += 1
        self._space.set()
        self._drained.set()

    async def drain(self) -> None:
        """Wait until everything written has been sent (pads a partial frame with silence)."""
        if self._pending:
            await self.write(bytes(self.frame_bytes - len(self._pending)))
        if self.sending:
            await self._drained.wait()

    @property
    def queued(self) -> float:
        """Seconds of audio queued to send."""
        return len(self._outgoing) * self.ptime

    async def read(self) -> bytes:
        """The next received frame (PCM, one packet time), waiting for it."""
        while not self._incoming:
            if self._closed:
                raise EOFError("the media stream is closed")
            self._readable.clear()
            self._reader_waits = True
            await self._readable.wait()
        return self._incoming.popleft()

    def frames(self) -> AsyncIterator[bytes]:
        """Received frames as they are played out, until the stream closes."""
        return _Frames(self)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _Frames(self)

    def add_sink(
        self,
        sink: Callable[[bytes], None],
        *,
        timeline: Literal["playout", "sender"] = "playout",
    ) -> Callable[[], None]:
        """Also give received audio to ``sink`` (e.g. a recorder); returns a remover.

        ``timeline="playout"``: every frame as it is played, one per packet time, with the
        concealment and silence the jitter buffer plays when packets are late.
        ``timeline="sender"``: the decoded frames at the offsets their RTP timestamps give
        (:mod:`voip.rtp.timeline`): the peer's speech without the local playout's
        adaptations (frames it discarded are there), losses concealed, gaps (packets not
        sent) as silence.
        """
        if timeline == "sender":
            return self._timeline.add(sink)
        sinks = self._sinks
        sinks.append(sink)
        return lambda: sinks.remove(sink) if sink in sinks else None

    def send_dtmf(self, digits: str) -> None:
        """Send digits as RFC 4733 events, one after the other; raises ValueError for a
        character that is not a DTMF digit, RuntimeError if no telephone-event was agreed."""
        if self.telephone_event is None:
            raise RuntimeError("the peer did not agree to telephone-event (RFC 4733)")
        self._dtmf_queue.extend(dtmf_digits(digits))

    def rebind(self, ports: RtpPorts) -> None:
        """Go on from ``ports`` (new sockets on the agent's new address) instead of the
        ones bound so far, which are released: the sender, its sequence numbers and
        timestamps, what is queued and the peer's address all stay (RFC 3550 §8.2: the
        SSRC is kept, since only our transport address changed)."""
        if self._closed:
            ports.release()
            return
        poller = self._poller
        for sock in (self.ports.rtp, self.ports.rtcp):
            poller.remove(sock)
        self.ports.release()
        self.ports = ports
        self._rtp_sendto, self._rtp_send = ports.rtp.sendto, ports.rtp.send
        # the new socket is connected once the peer's packets arrive on it
        self._connected, self._connects, self._heard_latched = False, True, False
        poller.add(ports.rtp, self._on_rtp_socket)
        poller.add(ports.rtcp, self._on_rtcp_socket)

    # --- the end ------------------------------------------------------------------------------

    def close(self, *, bye: bool = True) -> None:
        """Send RTCP BYE (when there was a peer), stop the clock, release the ports."""
        if self._closed:
            return
        self._closed = True
        if bye and self.remote_rtcp is not None:
            self._send_rtcp(self.rtcp.bye(self.loop.time(), self._sources()))
        if self._registration is not None:
            self._registration.cancel()
            self._registration = None
        poller = self._poller
        for sock in (self.ports.rtp, self.ports.rtcp):
            poller.remove(sock)
        if self._own_poller:
            poller.close()
        self.ports.release()
        self._space.set()
        self._drained.set()
        self._readable.set()

    @property
    def closed(self) -> bool:
        return self._closed

    def statistics(self) -> StreamStatistics:
        """The statistics now, with the reception figures brought up to date."""
        stats = self.stats
        counters = self.jitter.counters
        stats.late, stats.duplicates = counters.late, counters.duplicates
        stats.discarded, stats.underruns = counters.discarded, counters.underruns
        stats.ssrc_changes = counters.ssrc_changes
        if self.source is not None:
            stats.lost = max(0, self.source.lost)
            stats.jitter = self.source.jitter_seconds
        stats.round_trip = self.rtcp.round_trip
        return stats

    def quality(self) -> MediaQuality:
        """Loss, jitter, delay and the G.107 E-model MOS of each direction, now."""
        counters = self.jitter.counters
        return media_quality(
            self.statistics(),
            codec=self.codec.name,
            ptime=self.ptime,
            played=counters.played,
            lost=counters.lost,
            loss_bursts=counters.loss_bursts,
            playout_delay=self.jitter.target * self.ptime,
        )


class _Frames:
    """The async iterator of :meth:`MediaStream.frames`: each received frame, until the
    stream closes."""

    def __init__(self, stream: MediaStream) -> None:
        self.stream = stream

    def __aiter__(self) -> _Frames:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.stream.read()
        except EOFError:
            raise StopAsyncIteration from None


def _same(pcm: bytes) -> bytes:
    return pcm


def _converter(source_rate: int, target_rate: int) -> Callable[[bytes], bytes]:
    if source_rate == target_rate:
        return _same
    from voip.rtp.audio import Resampler

    return Resampler(source_rate, target_rate).convert
