"""DTLS-SRTP on a call's stream (RFC 5764, RFC 5763): the thin asyncio driver of
:class:`voip.rtp.dtls.DtlsSession`.

One association per component: the RTP port's, and with RTCP on its own port (no
rtcp-mux) the RTCP port's, whose keys protect SRTCP (RFC 5764 §4.1). The stream hands
over the DTLS datagrams it reads (RFC 7983); the driver answers from the same socket,
runs the handshake timer on the loop's clock (``call_at`` on the session's deadline) and
gives the stream its SRTP keys when a handshake completes. Until then the stream sends
nothing and plays nothing.

What the driver follows is what offer/answer agreed (:meth:`DtlsSrtp.follow`): a
re-INVITE that keeps both fingerprints, the peer's ``a=tls-id`` and the roles keeps the
association and its keys; a new fingerprint, tls-id or role starts a new one (RFC 5763
§5, RFC 8842 §5). DTLS from an address that is not the peer's is counted
(``foreign``) and dropped; the handshake's failure (a certificate that is not the SDP's
fingerprint, a fatal alert, no answer) is reported to the stream's owner as the event
``"dtls_failed"`` with the :class:`~voip.rtp.dtls.DtlsError`, and no key is given out.
"""

from __future__ import annotations

import asyncio
from collections import deque

from sdp import Fingerprint, NegotiatedMedia, Setup
from voip.rtp.dtls import (
    DtlsCertificate,
    DtlsError,
    DtlsSession,
    DtlsState,
    is_client_hello,
)
from voip.rtp.srtp import SrtpTransform, dtls_crypto
from voip.rtp.stream import MediaStream, SocketAddress

__all__ = ["DtlsSrtp"]

#: DTLS datagrams kept that arrive before offer/answer completes (the answerer's
#: ClientHello may overtake its answer)
EARLY_DATAGRAMS = 8


class DtlsSrtp:
    """The DTLS-SRTP of one :class:`MediaStream`, with the agent's ``certificate``."""

    __slots__ = (
        "_early",
        "_identity",
        "_reported",
        "_timer",
        "certificate",
        "failures",
        "foreign",
        "sessions",
        "stream",
    )

    def __init__(self, stream: MediaStream, certificate: DtlsCertificate) -> None:
        self.stream = stream
        self.certificate = certificate
        #: by component: False the RTP port's association, True the RTCP port's
        self.sessions: dict[bool, DtlsSession] = {}
        self.foreign = 0  # DTLS datagrams from another address than the peer's, dropped
        self.failures = 0  # associations that failed (no keys)
        #: what the association runs for: roles, the peer's fingerprints and tls-id, mux,
        #: our own certificate's fingerprint; a change of any is a new association
        self._identity: tuple[Setup, tuple[Fingerprint, ...], str | None, bool, Fingerprint] | None
        self._identity = None
        self._early: deque[tuple[bytes, SocketAddress, bool]] = deque(maxlen=EARLY_DATAGRAMS)
        self._timer: asyncio.TimerHandle | None = None
        self._reported = False
        stream.dtls = self._on_datagram

    @property
    def connected(self) -> bool:
        return bool(self.sessions) and all(s.connected for s in self.sessions.values())

    @property
    def counters(self) -> dict[str, int]:
        """Malformed datagrams, alerts and retransmissions over the associations, and the
        datagrams from foreign addresses and the failures."""
        sessions = self.sessions.values()
        return {
            "malformed": sum(session.malformed for session in sessions),
            "alerts": sum(session.alerts for session in sessions),
            "retransmissions": sum(session.retransmissions for session in sessions),
            "foreign": self.foreign,
            "failures": self.failures,
        }

    def follow(self, media: NegotiatedMedia) -> None:
        """What offer/answer agreed for the stream (after ``stream.configure``)."""
        if not media.dtls or media.setup is None:
            self._stop()
            return
        identity = (
            media.setup,
            media.remote_fingerprints,
            media.remote_tls_id,
            media.rtcp_mux,
            self.certificate.fingerprint(),
        )
        if identity == self._identity:
            self._early.clear()  # a ClientHello kept meanwhile was a stray copy
            return  # RFC 5763 §5: same fingerprints and roles, same association
        self._stop()
        self._identity = identity
        stream = self.stream
        stream.srtp = stream.srtcp = None  # new keys come from the new handshake
        stream.awaiting_keys = True
        components = (False,) if media.rtcp_mux else (False, True)
        now = stream.loop.time()
        for rtcp in components:
            session = DtlsSession(self.certificate, media.setup, media.remote_fingerprints)
            self.sessions[rtcp] = session
            self._send(session.start(now), rtcp, None)
        early = list(self._early)
        self._early.clear()
        for data, address, rtcp in early:
            self._on_datagram(data, address, rtcp)
        self._arm()

    def close(self) -> None:
        self._stop()
        self.stream.dtls = None

    # --- datagrams ---------------------------------------------------------------------

    def _on_datagram(self, data: bytes, address: SocketAddress, rtcp: bool) -> None:
        session = self.sessions.get(rtcp)
        if session is None:
            if not self.sessions:
                self._early.append((data, address, rtcp))
            else:
                self.foreign += 1  # DTLS on the RTCP port with rtcp-mux: no association
            return
        origin = (address[0], address[1])
        if origin != self._peer(rtcp):
            self.foreign += 1
            return
        if session.connected and is_client_hello(data):
            # the peer starts a new association (a re-INVITE's new fingerprint or roles,
            # RFC 5763 §5) before its answer reached us: kept for the new one
            self._early.append((data, address, rtcp))
            return
        before = session.state
        self._send(session.receive(data, self.stream.loop.time()), rtcp, origin)
        self._settle(session, before, rtcp)
        self._arm()

    def _peer(self, rtcp: bool) -> tuple[str, int] | None:
        stream = self.stream
        if rtcp:
            return stream.remote_rtcp
        return stream.latched or stream.remote_rtp

    def _send(self, datagrams: list[bytes], rtcp: bool, address: tuple[str, int] | None) -> None:
        if not datagrams:
            return
        target = address or self._peer(rtcp)
        if target is None:
            return
        ports = self.stream.ports
        sock = ports.rtcp if rtcp else ports.rtp
        for data in datagrams:
            try:
                sock.sendto(data, target)
            except OSError:
                self.stream.stats.send_errors += 1

    def _settle(self, session: DtlsSession, before: DtlsState, rtcp: bool) -> None:
        """Keys to the stream when the handshake completes; the owner told of a failure."""
        if session.state is before:
            return
        keys = session.keys
        if session.state is DtlsState.CONNECTED and keys is not None:
            transform = SrtpTransform(
                dtls_crypto(keys.suite, keys.local), dtls_crypto(keys.suite, keys.remote)
            )
            stream = self.stream
            if rtcp:
                stream.srtcp = transform
            else:
                stream.srtp = transform
                if stream.rtcp_mux:
                    stream.srtcp = transform
        elif session.state is DtlsState.FAILED:
            self.failures += 1
            if not self._reported:  # once for the components of one association
                self._reported = True
                self.stream.notify("dtls_failed", session.error or DtlsError("DTLS failed"))

    # --- the handshake timer (RFC 6347 §4.2.4.1) on the loop's clock -------------------------

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadlines = [s.deadline for s in self.sessions.values() if s.deadline is not None]
        if deadlines:
            self._timer = self.stream.loop.call_at(min(deadlines), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = self.stream.loop.time()
        for rtcp, session in list(self.sessions.items()):
            before = session.state
            self._send(session.handle_timeout(now), rtcp, None)
            self._settle(session, before, rtcp)
        self._arm()

    def _stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.sessions = {}
        self._identity = None
        self._reported = False
