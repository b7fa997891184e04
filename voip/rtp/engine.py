"""The media of calls: one :class:`MediaEngine` per user agent, one :class:`CallMedia` per call.

The engine owns what every call shares: the RTP port range and the single media clock.
A call opens its :class:`CallMedia` when it needs a port for its SDP (before the offer or
the answer), hands it each result of offer/answer (:meth:`CallMedia.update`: media starts
on answer or on early media, follows hold, resume and address or codec changes), and closes
it when it ends, which gives the ports back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from sdp import Fingerprint, NegotiatedMedia
from voip.rtp.audio import WavRecorder, read_wav
from voip.rtp.clock import MediaClock
from voip.rtp.codecs import UnsupportedCodec
from voip.rtp.dtls import DtlsCertificate
from voip.rtp.dtls_srtp import DtlsSrtp
from voip.rtp.poller import SocketPoller
from voip.rtp.ports import PortAllocator, RtpPorts
from voip.rtp.srtp import SrtpError
from voip.rtp.stats import MediaQuality, StreamStatistics
from voip.rtp.stream import MediaStream, Pcm, Wiretap
from voip.transport.udp import bind_datagram_socket

__all__ = ["CallMedia", "MediaEngine"]


class MediaEngine:
    """RTP ports from ``ports`` (a range or an allocator) and one clock for all streams."""

    __slots__ = (
        "_certificate",
        "_clock",
        "_poller",
        "inactivity_timeout",
        "ports",
        "sample_rate",
        "wiretap",
    )

    def __init__(
        self,
        ports: PortAllocator | tuple[int, int] | None = None,
        *,
        sample_rate: int = 8000,
        inactivity_timeout: float = 30.0,
    ) -> None:
        if ports is None:
            ports = PortAllocator()
        elif isinstance(ports, tuple):
            ports = PortAllocator(*ports)
        self.ports = ports
        self.sample_rate = sample_rate
        self.inactivity_timeout = inactivity_timeout
        self._clock: MediaClock | None = None
        self._poller: SocketPoller | None = None
        #: given to every stream opened from now on (:attr:`MediaStream.wiretap`)
        self.wiretap: Wiretap | None = None
        self._certificate: DtlsCertificate | None = None

    @property
    def certificate(self) -> DtlsCertificate:
        """The agent's DTLS certificate (RFC 5763 §5: self-signed, its fingerprint in the
        SDP), made on first use: one per agent, for every DTLS-SRTP call."""
        if self._certificate is None:
            self._certificate = DtlsCertificate.generate()
        return self._certificate

    @property
    def clock(self) -> MediaClock:
        loop = asyncio.get_running_loop()
        if self._clock is None or self._clock.loop is not loop:
            self._clock = MediaClock(loop)
        return self._clock

    @property
    def poller(self) -> SocketPoller:
        """What watches every stream's sockets (one per loop, like the clock)."""
        loop = asyncio.get_running_loop()
        if self._poller is None or self._poller.loop is not loop:
            self._poller = SocketPoller(loop)
        return self._poller

    def open(self, host: str, port: int | None = None) -> CallMedia:
        """Media for a call whose SDP names ``host``: a port pair from the range, or
        ``port`` (and the next one) when the caller insists on one."""
        if port:
            rtp = bind_datagram_socket(host, port, 1 << 18)
            try:
                rtcp = bind_datagram_socket(host, port + 1, 1 << 18)
            except OSError:
                rtp.close()
                raise
            pair = RtpPorts(host, port, rtp, rtcp)
        else:
            pair = self.ports.allocate(host)
        stream = MediaStream(
            pair,
            self.clock,
            sample_rate=self.sample_rate,
            inactivity_timeout=self.inactivity_timeout,
            poller=self.poller,
        )
        stream.wiretap = self.wiretap
        return CallMedia(stream, self)

    def rebind(self, media: CallMedia, host: str) -> int:
        """Move ``media`` to new RTP and RTCP ports on ``host`` (the agent's new local
        address); returns the new RTP port, for the SDP that tells the peer."""
        media.stream.rebind(self.ports.allocate(host))
        return media.port

    def close(self) -> None:
        if self._clock is not None:
            self._clock.close()
        if self._poller is not None:
            self._poller.close()
            self._poller = None


class CallMedia:
    """The audio of one call: its :class:`MediaStream` and what a bot does with it."""

    __slots__ = ("_engine", "agreed", "dtls", "error", "stream")

    def __init__(self, stream: MediaStream, engine: MediaEngine | None = None) -> None:
        self.stream = stream
        self._engine = engine
        self.agreed: NegotiatedMedia | None = None
        self.error: str | None = None  # why media could not follow the last negotiation
        #: the DTLS-SRTP handshakes of the stream, once a negotiation asked for DTLS-SRTP
        self.dtls: DtlsSrtp | None = None

    @property
    def certificate(self) -> DtlsCertificate:
        """The agent's DTLS certificate (the engine's), whose fingerprint the SDP gives."""
        if self._engine is None:
            self._engine = MediaEngine()
        return self._engine.certificate

    @property
    def port(self) -> int:
        return self.stream.local_port

    @property
    def closed(self) -> bool:
        return self.stream.closed

    def update(self, agreed: list[NegotiatedMedia]) -> None:
        """Follow the result of an offer/answer exchange (RFC 3264): the first accepted audio
        stream; none (refused, or port zero) stops media but keeps the ports."""
        audio = next((m for m in agreed if m.accepted and m.media == "audio"), None)
        if audio is None:
            self.stream.hold()
            return
        try:
            self.stream.configure(audio)
        except (UnsupportedCodec, SrtpError) as error:
            self.error = str(error)
            self.stream.hold()
            return
        if audio.dtls:
            self.enable_dtls()
        if self.dtls is not None:
            self.dtls.follow(audio)
        self.agreed, self.error = audio, None

    def enable_dtls(self) -> Fingerprint:
        """Take DTLS on the stream's ports from now on (a ClientHello may come before the
        answer that names its sender is in): the fingerprint for the SDP (RFC 5763 §5)."""
        if self.dtls is None:
            self.dtls = DtlsSrtp(self.stream, self.certificate)
        return self.certificate.fingerprint()

    def on(self, event: str, handler: Callable[..., Any]) -> None:
        """``"dtmf"``, ``"inactive"``, ``"rtcp"``, ``"bye"`` of the stream."""
        self.stream.events.on(event, handler)

    def listen(self, listener: Callable[..., None]) -> None:
        """``listener(event, *args)`` for every event of the stream, until it closes (the
        call's one listener: cheaper than an emitter with handlers per call)."""
        self.stream.listener = listener

    # --- for bots -----------------------------------------------------------------------------

    async def write(self, pcm: Pcm) -> None:
        await self.stream.write(pcm)

    async def read(self) -> bytes:
        return await self.stream.read()

    def flush(self) -> None:
        self.stream.flush()

    async def drain(self) -> None:
        await self.stream.drain()

    def send_dtmf(self, digits: str) -> None:
        self.stream.send_dtmf(digits)

    async def play(self, path: str | Path) -> None:
        """Send a WAV file (any rate or channel count); returns once it is queued to the
        end (``drain`` waits until it is sent)."""
        await self.stream.write(read_wav(path, self.stream.sample_rate))

    def record(
        self, path: str | Path, *, timeline: Literal["playout", "sender"] = "playout"
    ) -> WavRecorder:
        """Write everything received from now on to a WAV file until the recorder is closed
        or the call ends: as it was played (``timeline="playout"``), or as the peer sent
        it, each frame at its RTP timestamp, free of the local playout's adaptations to
        late packets (``timeline="sender"``; see :meth:`MediaStream.add_sink`)."""
        recorder = WavRecorder(path, self.stream.sample_rate)
        remove = self.stream.add_sink(recorder.write, timeline=timeline)

        def stop() -> None:
            remove()
            recorder.close()

        self.stream.events.once("closed", stop)
        return recorder

    def statistics(self) -> StreamStatistics:
        """Every counter of the stream (packets, loss, jitter, concealment...)."""
        return self.stream.statistics()

    def stats(self) -> MediaQuality:
        """Per direction (``.received``, ``.sent``): packets, loss, jitter, delay and the
        ITU-T G.107 E-model MOS; works during the call and after it ended."""
        return self.stream.quality()

    def close(self) -> None:
        """Stop media and give the ports back."""
        if self.dtls is not None:
            self.dtls.close()
        with contextlib.suppress(Exception):
            self.stream.close()
        # Nothing is heard from a closed stream: its handlers (which hold the call that
        # set them, and the call holds this) go, so that the call's objects are freed as
        # soon as the call lets go of them rather than by the cyclic garbage collector.
        self.stream.drop_listeners()
