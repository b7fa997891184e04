"""A session: one call seen through the OSI session service (X.215), on asyncio.

:class:`Session` drives the sans-I/O :class:`~voip.session.machine.SessionMachine` with a
:class:`~voip.call.Call`. Request and response primitives are its methods (the friendly
names say which primitive they are); indication and confirm primitives are pyee events
named after the primitive (``"S-TOKEN-PLEASE indication"``, also ``"indication"`` for
all) and awaitables (:meth:`Session.wait_for`). The carriers (DESIGN.md §3):

=============================================  ==============================================
S-CONNECT                                      INVITE … 2xx … ACK (refusal: 3xx-6xx)
S-CONNECT parameters (units, tokens, serial)   CONNECT / ACCEPT SPDUs as the ``spdu``
                                               parameter of the package in Recv-Info of
                                               the INVITE and its 2xx (RFC 6086 §10.3)
S-RELEASE                                      queued audio drained, then BYE → 200;
                                               negotiated release: FINISH first, then
                                               DISCONNECT (BYE) or NOT FINISHED (refused)
S-U-ABORT                                      CANCEL before the answer, BYE with Reason after
S-P-ABORT (indication)                         Timer B/F, session timer expiry, RTP inactivity,
                                               transport loss: the call ended by the provider
S-TOKEN-GIVE (data token)                      re-INVITE (or UPDATE) swapping sendonly/recvonly
S-ACTIVITY-INTERRUPT / -RESUME                 hold / resume re-INVITE, the activity kept
S-DATA                                         RTP audio (``call.media``)
S-EXPEDITED-DATA                               RFC 4733 events, INFO application/dtmf-relay
S-TYPED-DATA                                   in-dialog MESSAGE or INFO
S-CAPABILITY-DATA                              in-dialog OPTIONS
S-U/P-EXCEPTION-REPORT (indications)           error responses (Reason, Warning), faults
token please, control give, sync points,       SPDUs (ISO 8327) in INFO of the Info Package
resynchronize, activity start/end/discard,     ``osi-session`` (RFC 6086), advertised with
user exception reports                         Recv-Info; with a peer without it, the
                                               primitive falls back (``"fallback"`` event)
                                               or raises :class:`NotCarried`
=============================================  ==============================================
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pyee.asyncio import AsyncIOEventEmitter

from sdp import Direction
from voip.dtmf_relay import DTMF_RELAY, dtmf_relay_signal
from voip.rtp.dtmf import dtmf_digits
from voip.rtp.stream import Pcm
from voip.session import primitives as p
from voip.session import spdu
from voip.session.machine import (
    PrimitiveNotAllowed,
    ProtocolError,
    SessionError,
    SessionMachine,
    State,
)
from voip.session.primitives import FunctionalUnit, SessionEvent, tokens_of
from voip.session.spdu import Kind, ReasonCode, ResyncType, Spdu, Tokens, TokenSettings, TokenSide
from voip.sip import Request, SipError

if TYPE_CHECKING:
    from voip.call import Call, EndReason
    from voip.useragent import UserAgent

__all__ = [
    "INFO_PACKAGE",
    "SPDU_CONTENT_TYPE",
    "ConnectRefused",
    "ExceptionReported",
    "NoActivity",
    "NotCarried",
    "Session",
]

log = logging.getLogger(__name__)
E = TypeVar("E", bound=SessionEvent)

#: the Info Package (RFC 6086 §10) that carries SPDUs between two toolkit peers
INFO_PACKAGE = "osi-session"
#: its body: one TSDU of ISO 8327-1 SPDUs (a vendor-tree type, not IANA-registered)
SPDU_CONTENT_TYPE = "application/vnd.voip-session.spdu"
#: recovery of a lost TCP/TLS flow: how long to try, the first and the longest pause
RECOVERY_WINDOW = 10.0
RECOVERY_FIRST_RETRY = 0.25
RECOVERY_LAST_RETRY = 2.0
#: the package's parameter in Recv-Info that carries the CONNECT or ACCEPT SPDU
SPDU_PARAMETER = "spdu"
#: every functional unit there is
_ALL_UNITS = FunctionalUnit(sum(unit.value for unit in FunctionalUnit))
#: functional units, token settings and initial serial number of a CONNECT or ACCEPT
Proposal = tuple[FunctionalUnit, TokenSettings, int | None]
SAMPLE_RATE = 8000


class NotCarried(SessionError):
    """The primitive has no SIP meaning and the peer does not take the SPDU package."""


class ConnectRefused(SessionError):
    """S-CONNECT confirm (negative): the INVITE's final status and reason."""

    def __init__(self, confirm: p.ConnectConfirm) -> None:
        super().__init__(f"S-CONNECT refused: {confirm.status} {confirm.reason}")
        self.confirm = confirm


class NoActivity(PrimitiveNotAllowed):
    """:meth:`Session.play` outside an activity: its audio is the activity's, played from
    the position kept, so there must be one (``activity_start``); ``send_data`` sends
    audio outside any activity."""


class ExceptionReported(SessionError):
    """A request failed; ``indication`` is the exception report it caused."""

    def __init__(self, indication: p.UExceptionReportIndication | p.PExceptionReportIndication):
        super().__init__(f"{indication.primitive}: {indication.status} {indication.reason}")
        self.indication = indication


class Media(Protocol):
    """What the session uses of a call's media (``voip.rtp``'s per-call object)."""

    async def write(self, pcm: Pcm) -> None: ...
    def flush(self) -> None: ...
    async def drain(self) -> None: ...
    def send_dtmf(self, digits: str) -> None: ...


class Session:
    """One session over one call. Build it with :meth:`connect` (caller) or
    :meth:`incoming` (callee), not directly."""

    def __init__(self, call: Call, *, initiator: bool) -> None:
        self.call = call
        self.machine = SessionMachine(initiator=initiator)
        self.events = AsyncIOEventEmitter()
        #: every indication and confirm so far, in order
        self.history: list[SessionEvent] = []
        #: the peer advertised the SPDU Info Package (Recv-Info)
        self.peer_takes_spdus = False
        #: respond to the peer's sync, resynchronize, end and discard at once
        self.auto_respond = True
        #: S-TOKEN-GIVE and S-ACTIVITY-* move media by UPDATE instead of re-INVITE
        self.use_update = False
        #: media positions (samples of the activity's audio sent) of its sync points
        self.timeline: dict[int, int] = {0: 0}
        self._written = 0  # samples of the activity's audio written to the media
        self._epoch = 0  # counts the flushes that drop what is queued
        self._waiters: list[tuple[type[SessionEvent], asyncio.Future[Any]]] = []
        #: the confirms our own requests await (:meth:`_confirmed`): each gets its event
        #: whoever else waits for it too, and does not take it from :meth:`wait_for`
        self._confirms: list[tuple[type[SessionEvent], asyncio.Future[Any]]] = []
        self._taken: set[int] = set()  # history entries a waiter has had
        self._sending = asyncio.Lock()
        self._offering = False
        self._direction = Direction.SENDRECV
        self._remote_hold = False
        self._bye_reason: tuple[int, str] | None = None
        self._provider_fault: tuple[int, str] | None = None
        self._aborted = False
        self._resync_kind = ResyncType.RESTART
        #: the CONNECT sent or received, and what the S-CONNECT response agreed
        self._proposal: Proposal | None = None
        self._agreed: Proposal | None = None
        self._bad_connect: ProtocolError | None = None
        call.info_packages[INFO_PACKAGE] = self._on_spdus
        call.on("ended", self._on_ended)
        call.on("bye", self._on_bye)
        call.on("media", self._on_media)
        call.on("info", self._on_info)
        call.on("message", self._on_message)
        call.on("options", lambda request: self._emit(p.CapabilityDataIndication(request.body)))
        call.on("dtmf", self._on_dtmf)
        call.on("media_inactive", self._on_media_inactive)
        call.on("media_failed", self._on_media_failed)
        call.on("rebound", self._on_rebound)
        self._recovering = False
        self._tim: asyncio.TimerHandle | None = None  # X.225's TIM, while it runs
        #: how many times a lost TCP/TLS flow was mended, or the session moved to a new
        #: local address, under this session
        self.recoveries = 0
        #: seconds to keep trying to mend a lost flow before the S-P-ABORT
        self.recovery_window = RECOVERY_WINDOW
        ua = call.ua
        ua.on("transport_error", self._on_transport_error)
        call.on("ended", lambda _: ua.remove_listener("transport_error", self._on_transport_error))

    def __repr__(self) -> str:
        return f"<Session {self.state.name} {self.call!r}>"

    @property
    def state(self) -> State:
        return self.machine.state

    @property
    def functional_units(self) -> FunctionalUnit:
        return self.machine.functional_units

    @property
    def tokens(self) -> Tokens:
        """The tokens this side holds."""
        return self.machine.held

    @property
    def media(self) -> Media | None:
        media: Media | None = getattr(self.call, "media", None)
        return media

    def on(self, event: str, handler: Callable[..., Any]) -> None:
        """``handler`` for each ``event``: a primitive's name (``"S-SYNC-MAJOR
        indication"``), ``"indication"`` for every indication and confirm, or
        ``"fallback"`` (primitive, text) when one fell back to its SIP-only meaning."""
        self.events.on(event, handler)

    async def wait_for(self, kind: type[E], timeout: float | None = None) -> E:
        """The oldest indication or confirm of ``kind`` that no ``wait_for`` has returned
        yet, waiting for it if there is none: each event is awaited once, in order."""
        for index, event in enumerate(self.history):
            if isinstance(event, kind) and index not in self._taken:
                self._taken.add(index)
                return event
        future: asyncio.Future[E] = asyncio.get_running_loop().create_future()
        self._waiters.append((kind, future))
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove((kind, future))

    def _emit(self, event: SessionEvent) -> None:
        self.history.append(event)
        for kind, future in list(self._confirms):
            if isinstance(event, kind):
                self._confirms.remove((kind, future))
                if not future.done():
                    future.set_result(event)
                break
        for kind, future in list(self._waiters):
            if isinstance(event, kind) and not future.done():
                self._taken.add(len(self.history) - 1)
                future.set_result(event)
                self._waiters.remove((kind, future))
                break
        self.events.emit(event.primitive, event)
        self.events.emit("indication", event)

    def _fallback(self, primitive: str, text: str) -> None:
        log.info("%s: %s", primitive, text)
        self.events.emit("fallback", primitive, text)

    # === S-CONNECT ========================================================================

    @classmethod
    def dial(
        cls,
        ua: UserAgent,
        uri: str,
        *,
        half_duplex: bool = False,
        requirements: FunctionalUnit | None = None,
        tokens: TokenSettings | None = None,
        initial_serial: int | None = None,
        **dial: Any,
    ) -> Session:
        """S-CONNECT request (INVITE), without waiting: the session is in STA02A until
        :meth:`connected` has the confirm. ``half_duplex``: the half-duplex functional
        unit, the data token with this side (``sendonly``) unless ``tokens`` says
        otherwise. ``requirements``: the functional units proposed (X.215 §10);
        ``tokens``: where each token starts, ``TokenSide.INITIATOR`` (the default),
        ``ACCEPTOR`` or ``CHOICE`` (the acceptor says; for the data token the offer is
        then ``sendrecv`` and the answer's direction says); ``initial_serial``: the
        first synchronization point serial number. They travel to a toolkit peer as a
        CONNECT SPDU (see :func:`connect_parameters`). ``dial`` goes to
        ``UserAgent.dial``."""
        units = requirements
        if units is None:
            half = FunctionalUnit.HALF_DUPLEX if half_duplex else FunctionalUnit.DUPLEX
            units = p.SIP_UNITS | p.SPDU_UNITS | half
        settings = dict.fromkeys(_tokens_in(tokens_of(units)), TokenSide.INITIATOR)
        for token, side in (tokens or {}).items():
            if token not in settings:
                raise PrimitiveNotAllowed(
                    "S-CONNECT request", State.STA01, f"no {token!r} token with {units!r}"
                )
            settings[token] = side
        call = ua.dial(uri, **dial)
        session = cls(call, initiator=True)
        session.machine.connect_request()
        session._proposal = (units, settings, initial_serial)
        wish = {TokenSide.INITIATOR: Direction.SENDONLY, TokenSide.ACCEPTOR: Direction.RECVONLY}
        call.negotiation.direction_wish = wish.get(settings.get(Tokens.DATA, TokenSide.CHOICE))
        connect = spdu.connect_accept(Kind.CN, units.value, settings, initial_serial)
        call.info_package_parameters[INFO_PACKAGE] = connect_parameters(connect)
        return session

    async def connected(self) -> p.ConnectConfirm:
        """The S-CONNECT confirm: positive (the 2xx) is returned, negative raises
        :class:`ConnectRefused` with the final status."""
        call = self.call
        try:
            await call.answered()
        except Exception:
            if self._aborted:
                raise SessionError("S-CONNECT: aborted by this side (S-U-ABORT)") from None
            reason = call.end_reason
            status, text = (reason.status, reason.text) if reason else (500, "no answer")
            confirm = self.machine.connect_confirm(
                False, FunctionalUnit.NONE, Tokens.NONE, status, text
            )
            assert isinstance(confirm, p.ConnectConfirm)
            self._emit(confirm)
            raise ConnectRefused(confirm) from None
        if self.state is State.STA02A:
            self._confirm_connect()
        return next(e for e in self.history if isinstance(e, p.ConnectConfirm))

    def _confirm_connect(self) -> None:
        """The positive S-CONNECT confirm, from the 2xx the call has had (and its ACCEPT
        SPDU from a toolkit peer); then the SPDUs that overtook it (kept by the machine
        in STA02A), as if they came now."""
        answer = self.call.answer_response
        recv_info = answer.headers.get_all("Recv-Info") if answer is not None else []
        self.peer_takes_spdus = _takes_spdus(recv_info)
        self.call.info_package_parameters.pop(INFO_PACKAGE, None)
        accept = self._connect_spdu(recv_info, Kind.AC)
        if accept is not None and self._proposal is not None:
            try:
                self._agreed = _accepted(self._proposal, accept)
            except ProtocolError as error:
                self._bad_connect = error
        self._connected()
        self._report_bad_connect()
        if accept is None:
            self._fallback(
                "S-CONNECT confirm",
                "no ACCEPT SPDU came: the functional units, tokens and serial number are"
                " what plain SIP implies (the SDP direction places the data token)",
            )
        for early in self.machine.take_early():
            try:
                self._deliver(early)
            except ProtocolError as error:
                self._refused_spdu(error)
                self.machine.p_exception_report_request(error.reflected)
                self.call.ua.spawn(self._carry("SPM", local_ok=True))

    def _connect_spdu(self, recv_info: list[str], kind: Kind) -> Spdu | None:
        """The CONNECT or ACCEPT SPDU in the package's parameter of Recv-Info, if any; a
        malformed one is an S-P-EXCEPTION-REPORT (after the S-CONNECT indication or
        confirm) and the session goes on without it."""
        value = _package_parameter(recv_info, SPDU_PARAMETER)
        if value is None:
            return None
        try:
            units = self.machine.decode(bytes.fromhex(value))
            if units[0].kind is not kind:
                raise ProtocolError(f"{units[0].kind.name} where {kind.name} belongs")
        except (ValueError, ProtocolError) as error:
            self._bad_connect = ProtocolError(f"{kind.title} in Recv-Info: {error}")
            return None
        return units[0]

    def _report_bad_connect(self) -> None:
        if self._bad_connect is not None:
            self._refused_spdu(self._bad_connect)
            self._bad_connect = None

    @classmethod
    async def connect(cls, ua: UserAgent, uri: str, **options: Any) -> Session:
        """:meth:`dial` (with its ``options``) and :meth:`connected`: the session once the
        positive S-CONNECT confirm (the 2xx) came; a refusal raises
        :class:`ConnectRefused`."""
        session = cls.dial(ua, uri, **options)
        await session.connected()
        return session

    @classmethod
    def incoming(cls, call: Call) -> Session:
        """S-CONNECT indication for an incoming call (``ua.on("incoming_call", …)``):
        with a toolkit peer's CONNECT SPDU, its functional units, token settings and
        initial serial number; otherwise what the SDP offer implies."""
        session = cls(call, initiator=False)
        assert call.invite is not None
        recv_info = call.invite.headers.get_all("Recv-Info")
        session.peer_takes_spdus = _takes_spdus(recv_info)
        connect = session._connect_spdu(recv_info, Kind.CN)
        if connect is not None:
            units = FunctionalUnit(connect.session_requirement or 0) & _ALL_UNITS
            setting = connect.token_setting
            available = tokens_of(units)
            settings = spdu.decode_token_settings(setting or 0, available)
            session._proposal = (units, settings, connect.initial_serial)
            indication = session.machine.connect_indication(units, settings, connect.initial_serial)
        else:
            indication = session.machine.connect_indication(session._offered_units())
        session._emit(indication)
        session._report_bad_connect()
        return session

    def _offered_units(self) -> FunctionalUnit:
        units = p.SIP_UNITS | p.SPDU_UNITS
        invite = self.call.invite
        if invite is not None and invite.body:
            text = invite.body.decode("utf-8", "replace")
            if "a=sendonly" in text or "a=recvonly" in text:
                return units | FunctionalUnit.HALF_DUPLEX
        return units | FunctionalUnit.DUPLEX

    async def accept(
        self,
        *,
        requirements: FunctionalUnit | None = None,
        tokens: TokenSettings | None = None,
        initial_serial: int | None = None,
        **options: Any,
    ) -> None:
        """S-CONNECT response, positive: 200 with the SDP answer (``call.accept``). With
        a toolkit peer's proposal: ``requirements`` keeps only those of the functional
        units proposed; ``tokens`` places the tokens the initiator left to this side's
        choice (``TokenSide.INITIATOR`` or ``ACCEPTOR``; those not placed come to this
        side); ``initial_serial`` replaces the serial number proposed. They go back as
        an ACCEPT SPDU in the 2xx's Recv-Info."""
        if self.state is not State.STA08:
            self.machine.connect_response(True, FunctionalUnit.NONE, Tokens.NONE)  # raises
        if self._proposal is not None:
            self._agreed = _response(self._proposal, requirements, tokens, initial_serial)
            units, settings, serial = self._agreed
            wish = {
                TokenSide.ACCEPTOR: Direction.SENDONLY,
                TokenSide.INITIATOR: Direction.RECVONLY,
            }
            data = settings.get(Tokens.DATA)
            if data is not None:
                self.call.negotiation.direction_wish = wish[data]
            accept = spdu.connect_accept(Kind.AC, units.value, settings, serial)
            self.call.info_package_parameters[INFO_PACKAGE] = connect_parameters(accept)
        elif requirements is not None or tokens is not None or initial_serial is not None:
            raise NotCarried(
                "S-CONNECT response: the peer sent no CONNECT SPDU, so it cannot take the"
                " requirements, tokens or serial number of an ACCEPT"
            )
        # X.225: the responder is in data transfer once its ACCEPT (the 2xx) is sent;
        # the caller may send SPDUs right behind its ACK
        options["wait_ack"] = False
        try:
            await self.call.accept(**options)
        finally:
            self.call.info_package_parameters.pop(INFO_PACKAGE, None)
        self._connected()

    async def refuse(self, status: int = 486, reason: str | None = None) -> None:
        """S-CONNECT response, negative: a 3xx-6xx final response (486 by default)."""
        self.machine.connect_response(False, FunctionalUnit.NONE, Tokens.NONE)
        await self.call.reject(status, reason)

    def _connected(self) -> None:
        """Functional units and tokens once the offer/answer is done (X.225 §7.1). The
        data token is where the SDP directions put it (its carrier); the others where
        the CONNECT/ACCEPT exchange put them or, without one, with the initiator (this
        side keeps them all with a peer that cannot take SPDUs)."""
        direction = self.call.negotiation.direction
        half = direction in (Direction.SENDONLY, Direction.RECVONLY)
        data = Tokens.DATA if direction is Direction.SENDONLY else Tokens.NONE
        serial: int | None = None
        settings: TokenSettings = {}
        if self._agreed is not None:
            units, settings, serial = self._agreed
            units &= ~(FunctionalUnit.HALF_DUPLEX | FunctionalUnit.DUPLEX)
            mine = TokenSide.INITIATOR if self.machine.initiator else TokenSide.ACCEPTOR
            held = data
            for token, side in settings.items():
                if side is mine and token is not Tokens.DATA:
                    held |= token
        else:
            units = p.SIP_UNITS | p.SPDU_UNITS
            held = data
            if self.machine.initiator or not self.peer_takes_spdus:
                held |= Tokens.MINOR_SYNC | Tokens.MAJOR_ACTIVITY
        units |= FunctionalUnit.HALF_DUPLEX if half else FunctionalUnit.DUPLEX
        if half:
            self.call.negotiation.direction_wish = direction
        else:
            self.call.negotiation.direction_wish = None
        self._direction = direction
        self._remote_hold = self.call.remote_hold
        if self.machine.state is State.STA02A:
            self._emit(
                self.machine.connect_confirm(
                    True, units, held, settings=settings, initial_serial=serial
                )
            )
        else:
            self.machine.connect_response(True, units, held, serial)

    # === release and aborts ===============================================================

    async def release(self) -> p.ReleaseConfirm:
        """S-RELEASE request (``hangup``): the audio queued is sent out, then BYE; returns
        the S-RELEASE confirm (its 200). Under the negotiated release functional unit
        (X.215 §17.2) a FINISH SPDU asks the peer first: its DISCONNECT lets the BYE go,
        its NOT FINISHED refuses (the confirm has ``accepted`` False, the session goes
        on in data transfer)."""
        self.machine.release_request()
        media = self.media
        if media is not None:
            await media.drain()
        future = self._future(p.ReleaseConfirm)
        if self.machine.release_accepted:
            await self.call.hangup()
        else:
            await self._carry("S-RELEASE request")  # FINISH; the answer decides
        return await future

    async def release_response(self, accept: bool = True) -> None:
        """S-RELEASE response to the peer's negotiated release (a ``negotiated``
        S-RELEASE indication): DISCONNECT, after which the peer's BYE ends the session,
        or NOT FINISHED (``accept`` False), which refuses it."""
        self.machine.release_response(accept)
        self._arm_release_timer()  # accepted: the peer's BYE within TIM
        await self._carry("S-RELEASE response")

    hangup = release

    async def abort(self, reason: str = "aborted by the user", cause: int = 200) -> None:
        """S-U-ABORT request: CANCEL before the answer, BYE with ``Reason: SIP;cause=…``
        (RFC 3326) after; an unanswered incoming call is refused with 480."""
        self.machine.u_abort_request()
        self._aborted = True
        media = self.media
        if media is not None:
            media.flush()
        await self.call.hangup(reason, cause=cause)

    def _arm_release_timer(self) -> None:
        """Run TIM (:meth:`SessionMachine.release_timer`) on the loop's clock while an
        accepted negotiated release waits for its end."""
        loop = asyncio.get_running_loop()
        deadline = self.machine.release_timer(loop.time())
        if deadline is not None and self._tim is None:
            self._tim = loop.call_at(deadline, self._release_timer_expired)

    def _release_timer_expired(self) -> None:
        """TIM ran out: the peer's BYE (or its 200 to ours) never came. S-P-ABORT; a
        peer that never sent its BYE gets ours, with the reason."""
        self._tim = None
        waiting_for_bye = self.machine.state is State.STA16
        event = self.machine.release_timer_expired(asyncio.get_running_loop().time())
        if event is None:
            return
        assert isinstance(event, p.PAbortIndication)
        self._emit(event)
        self._fail_waiters(event.reason)
        if waiting_for_bye:
            self.call.ua.spawn(self.call.hangup(event.reason, cause=event.status))

    def _on_bye(self, request: Request) -> None:
        cause, text = _reason_of(request.headers.get("Reason"))
        if cause is not None:
            self._bye_reason = (cause, text)

    def _on_ended(self, reason: EndReason) -> None:
        machine = self.machine
        if self._tim is not None:
            self._tim.cancel()
            self._tim = None
        if machine.state in (State.STA01, State.STA02A):
            return  # ours (abort), or a refusal that connect() reports
        if machine.state is State.STA03 and reason.by == "local":
            self._emit(machine.release_confirm())
        elif machine.state is State.STA16 and reason.by == "remote" and reason.status == 200:
            machine.transport_disconnect()  # the BYE after our DISCONNECT: indicated
        elif self._provider_fault is not None:
            self._emit(machine.p_abort_indication(*self._provider_fault))
        elif reason.by == "provider":
            self._emit(machine.p_abort_indication(reason.status, reason.text))
        elif reason.by == "remote" and self._bye_reason is None and reason.status == 200:
            self._emit(machine.release_indication())
        elif reason.by == "remote":
            status, text = self._bye_reason or (reason.status, reason.text)
            self._emit(machine.u_abort_indication(status, text))
        else:
            self._emit(machine.p_abort_indication(reason.status, reason.text))
        self._fail_waiters(str(reason))

    def _fail_waiters(self, reason: str) -> None:
        for _, future in [*self._waiters, *self._confirms]:
            if not future.done():
                future.set_exception(SessionError(f"the session ended: {reason}"))

    def _on_media_failed(self, error: Exception) -> None:
        """The media's DTLS-SRTP handshake failed (voip.rtp.dtls: e.g. a certificate that
        is not the SDP's fingerprint): S-P-EXCEPTION-REPORT, then S-P-ABORT as the call
        is released for it (a BYE with Reason, or the peer's crossing it)."""
        if self.state in (State.STA01, State.STA02A, State.STA08):
            return
        text = f"DTLS-SRTP failed: {error}"
        self._emit(p.PExceptionReportIndication(488, text))
        self._provider_fault = (488, text)

    def _on_media_inactive(self, seconds: float) -> None:
        """No RTP for ``seconds`` (the media's inactivity timer): S-P-ABORT, with a BYE
        that tells the peer why."""
        if self.state in (State.STA01, State.STA02A, State.STA08):
            return
        text = f"RTP inactivity ({seconds:g} s)"
        self._provider_fault = (408, text)
        self.call.ua.spawn(self.call.hangup(text, cause=408))

    # === recovery: one session over several transport connections ===================

    def _on_transport_error(self, destination: Any, error: Exception) -> None:
        if destination.transport not in ("tcp", "tls", "ws", "wss") or self._recovering:
            return
        if self.state in (State.STA01, State.STA02A, State.STA08):
            return
        self._recovering = True
        self.call.ua.spawn(self._recover(destination, error))

    async def _recover(self, destination: Any, error: Exception) -> None:
        """A TCP/TLS/WebSocket flow was lost (X.225's transport disconnect, which the session
        survives): when it carried this call, open a new one by re-REGISTERing and
        re-INVITEing (the same SDP, so media is untouched), again after 0.25, 0.5, 1,
        2, 2 … s while the far end is unreachable (a proxy restarting), for
        :attr:`recovery_window` seconds; then restart the activity's media from its
        last confirmed sync point (S-RESYNCHRONIZE restart). If it cannot be mended,
        S-P-ABORT."""
        call, ua = self.call, self.call.ua
        try:
            dialog = call.dialog
            if dialog is None:
                return
            targets = await ua.resolve(dialog.next_hop())
            if not any(_same_place(target, destination) for target in targets):
                return
            self._emit(p.PExceptionReportIndication(503, f"transport lost: {error}"))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.recovery_window
            delay = RECOVERY_FIRST_RETRY
            while True:
                for registration in list(ua.registrations):
                    with contextlib.suppress(Exception):
                        await registration.start()
                try:
                    await self._offer(None)
                    break
                except SessionError as failed:
                    # the far end may be coming back (a proxy restarting): again, with
                    # a back-off, until the recovery window closes
                    if self.state is State.STA01:
                        return
                    if loop.time() + delay > deadline:
                        text = f"transport lost and not recovered: {failed}"
                        self._provider_fault = (503, text)
                        await call.hangup(text, cause=503)
                        return
                    await asyncio.sleep(delay)
                    delay = min(2 * delay, RECOVERY_LAST_RETRY)
            self.recoveries += 1
            await self._restart_activity()
        except Exception as failure:  # recovery is best effort; the call may have ended
            log.info("recovery of %s failed: %s", call, failure)
        finally:
            self._recovering = False

    async def _restart_activity(self) -> None:
        """After the session moved to a new connection or address: the activity's media
        restarts from its last confirmed sync point (S-RESYNCHRONIZE restart), when this
        side may (it holds the major/activity token and resynchronize was agreed)."""
        machine = self.machine
        if (
            machine.activity is not None
            and machine.state is State.STA713
            and machine.functional_units & FunctionalUnit.RESYNCHRONIZE
            and machine.holds(Tokens.MAJOR_ACTIVITY)
        ):
            await self.resynchronize(ResyncType.RESTART, machine.vr)

    def _on_rebound(self, host: str) -> None:
        """The agent moved to the local address ``host`` and the call's re-INVITE
        carried the new Contact and SDP (:meth:`UserAgent.rebind`): the session
        survives; the provider reports the move and the media resynchronizes."""
        if self.state in (State.STA01, State.STA02A, State.STA08):
            return
        self._emit(p.PExceptionReportIndication(503, f"local address changed to {host}"))
        self.recoveries += 1
        self.call.ua.spawn(self._restart_activity())

    # === tokens ===========================================================================

    async def give_tokens(self, tokens: Tokens = Tokens.DATA) -> None:
        """S-TOKEN-GIVE request. The data token moves by a re-INVITE (UPDATE with
        ``use_update``) that makes us ``recvonly``; the others in a GIVE TOKENS SPDU."""
        self.machine.token_give_request(tokens)
        await self._carry("S-TOKEN-GIVE request", local_ok=True)
        if tokens & Tokens.DATA:
            # the token moves at once (X.215 §13.2): no more RTP from here, not even the
            # silence the stream sends until the answer makes it recvonly, which would
            # reach the peer after it has the token
            stream: Any = getattr(self.media, "stream", None)
            sending = bool(getattr(stream, "sending", False))
            if sending:
                stream.sending = False
            try:
                await self._offer(Direction.RECVONLY)
            except BaseException:
                self.machine.held |= Tokens.DATA
                if sending:
                    stream.sending = True
                raise

    async def please_tokens(self, tokens: Tokens = Tokens.DATA, data: bytes = b"") -> None:
        """S-TOKEN-PLEASE request: a PLEASE TOKENS SPDU (no SIP method does this)."""
        self._needs_package("S-TOKEN-PLEASE request")
        self.machine.token_please_request(tokens, data)
        await self._carry("S-TOKEN-PLEASE request")

    async def give_control(self) -> None:
        """S-CONTROL-GIVE request: every token, in a GIVE TOKENS CONFIRM SPDU (the peer's
        SPM acknowledges), and the data token's direction by re-INVITE."""
        self._needs_package("S-CONTROL-GIVE request")
        data = bool(self.machine.available & Tokens.DATA)
        self.machine.control_give_request()
        await self._carry("S-CONTROL-GIVE request")
        if data:
            await self._offer(Direction.RECVONLY)

    async def _offer(self, direction: Direction | None, *, hold: bool | None = None) -> None:
        """One offer/answer of ours (re-INVITE or UPDATE) with the direction wished."""
        negotiation = self.call.negotiation
        previous = negotiation.direction_wish
        if direction is not None:
            negotiation.direction_wish = direction
        self._offering = True
        try:
            if self.use_update:
                await self.call.update(hold=hold)
            else:
                await self.call.reinvite(hold=hold)
        except Exception as error:
            negotiation.direction_wish = previous
            raise self._exception(error) from error
        finally:
            self._offering = False
            self._direction = negotiation.direction
            self._remote_hold = self.call.remote_hold

    def _on_media(self, agreed: object) -> None:
        """The peer's offer changed the media: the data token moved to us, or the peer
        interrupted (hold) or resumed the activity."""
        if self._offering or self.state in (State.STA01, State.STA02A, State.STA08):
            return
        negotiation = self.call.negotiation
        before, now = self._direction, negotiation.direction
        held_before, held_now = self._remote_hold, self.call.remote_hold
        self._direction, self._remote_hold = now, held_now
        half = bool(self.functional_units & FunctionalUnit.HALF_DUPLEX)
        if half:
            interrupted = now is Direction.INACTIVE and before is not Direction.INACTIVE
            resumed = before is Direction.INACTIVE and now is not Direction.INACTIVE
        else:
            interrupted, resumed = held_now and not held_before, held_before and not held_now
        if interrupted:
            self._pause()
            self._emit(self.machine.activity_interrupt_indication(ReasonCode.NO_SPECIFIC_REASON))
            return
        if resumed:
            event = self.machine.activity_resume_indication()
            if event is not None:
                self._emit(event)
        if half and now is Direction.SENDONLY and not self.machine.held & Tokens.DATA:
            negotiation.direction_wish = Direction.SENDONLY
            self._emit(self.machine.token_give_indication(Tokens.DATA))
        elif half and now is Direction.RECVONLY:
            negotiation.direction_wish = Direction.RECVONLY

    # === activities ========================================================================

    async def activity_start(self, activity: bytes | str, data: bytes = b"") -> None:
        """S-ACTIVITY-START request: a named unit of media work begins (ACTIVITY START
        SPDU; a local mark with a peer without the package)."""
        name = activity.encode() if isinstance(activity, str) else activity
        self.machine.activity_start_request(name, data)
        self.timeline = {0: 0}
        self._written = 0
        self._epoch += 1
        await self._carry("S-ACTIVITY-START request", local_ok=True)

    async def activity_end(self, data: bytes = b"") -> p.ActivityEndConfirm:
        """S-ACTIVITY-END request: ACTIVITY END SPDU, confirmed by the peer."""
        serial = self.machine.activity_end_request(data)
        self.timeline[serial] = self.position
        return await self._confirmed(
            "S-ACTIVITY-END request", p.ActivityEndConfirm, spdu.sync_ack(Kind.AEA, serial)
        )

    async def activity_discard(
        self, reason: int = ReasonCode.NO_SPECIFIC_REASON
    ) -> p.ActivityDiscardConfirm:
        """S-ACTIVITY-DISCARD request: the activity's queued media is dropped and the
        peer told (ACTIVITY DISCARD SPDU)."""
        self.machine.activity_discard_request(reason)
        media = self.media
        if media is not None:
            media.flush()
        return await self._confirmed(
            "S-ACTIVITY-DISCARD request", p.ActivityDiscardConfirm, spdu.plain(Kind.ADA)
        )

    async def activity_interrupt(self) -> p.ActivityInterruptConfirm:
        """S-ACTIVITY-INTERRUPT request (``hold``): the activity's media stops where it
        is (that position is kept) and a re-INVITE puts the peer on hold (``sendonly``,
        ``inactive`` in a half-duplex session); its 2xx is the confirm."""
        self.machine.activity_interrupt_request()
        self._pause()
        try:
            await self._offer(None, hold=True)
        except BaseException:
            self.machine.activity_interrupt_failed()
            raise
        event = self.machine.activity_interrupt_confirm()
        assert isinstance(event, p.ActivityInterruptConfirm)
        self._emit(event)
        return event

    hold = activity_interrupt

    async def activity_resume(
        self, activity: bytes | str | None = None, old: bytes | str | None = None
    ) -> int:
        """S-ACTIVITY-RESUME request (``resume``): the interrupted activity again, by a
        re-INVITE back to ``sendrecv``; returns the serial number it resumes from. A new
        identifier travels in an ACTIVITY RESUME SPDU (the re-INVITE has no room)."""
        interrupted = self.machine.interrupted
        old_id = _octets(old) if old is not None else next(reversed(interrupted), None)
        if old_id is None:
            self.machine.activity_resume_request(b"?")  # raises: nothing to resume
            raise AssertionError
        new_id = _octets(activity) if activity is not None else old_id
        serial = self.machine.activity_resume_request(new_id, old_id)
        units = self.machine.take_outgoing()
        if new_id != old_id:
            self.machine.outgoing.extend(units)
            await self._carry("S-ACTIVITY-RESUME request")
        await self._offer(None, hold=False)
        return serial

    resume = activity_resume

    # === synchronization ==================================================================

    @property
    def position(self) -> int:
        """Samples of the activity's audio sent so far (written minus still queued)."""
        stream = getattr(self.media, "stream", None)
        queued = getattr(stream, "queued", 0.0)
        seconds = queued() if callable(queued) else float(queued)
        rate = int(getattr(stream, "sample_rate", SAMPLE_RATE))
        return max(0, self._written - round(seconds * rate))

    async def sync_minor(self, *, confirm: bool = True, data: bytes = b"") -> int:
        """S-SYNC-MINOR request: a checkpoint at the media's position; returns its serial
        number (the confirm, if asked for, comes as an event)."""
        serial = self.machine.sync_minor_request(confirm=confirm, data=data)
        self.timeline[serial] = self.position
        if not await self._carry("S-SYNC-MINOR request", local_ok=True) and confirm:
            self._emit(self.machine.receive([spdu.sync_ack(Kind.MIA, serial)])[0])
        return serial

    async def sync_major(self, data: bytes = b"") -> p.SyncMajorConfirm:
        """S-SYNC-MAJOR request: a checkpoint the peer confirms (MAJOR SYNC ACK); media
        may not be sent until then (X.215 §14.3)."""
        serial = self.machine.sync_major_request(data)
        self.timeline[serial] = self.position
        return await self._confirmed(
            "S-SYNC-MAJOR request", p.SyncMajorConfirm, spdu.sync_ack(Kind.MAA, serial)
        )

    async def resynchronize(
        self, kind: ResyncType = ResyncType.RESTART, serial: int | None = None
    ) -> p.ResynchronizeConfirm:
        """S-RESYNCHRONIZE request: restart (media goes back to the sync point, by
        default the last one confirmed), abandon or set; returns the confirm."""
        if kind is ResyncType.RESTART and serial is None:
            serial = max(self.machine.va - 1, self.machine.vr)
        serial = self.machine.resynchronize_request(kind, serial)
        self._resync_kind = kind
        return await self._confirmed(
            "S-RESYNCHRONIZE request", p.ResynchronizeConfirm, spdu.sync_ack(Kind.RA, serial)
        )

    def _resynchronized(self, kind: ResyncType, serial: int) -> None:
        self._pause()
        if kind is ResyncType.RESTART:
            self._written = self.timeline.get(serial, 0)
        self.timeline = {k: v for k, v in self.timeline.items() if k < serial}
        self.timeline[serial] = self._written

    def _pause(self) -> None:
        """Stop the media where it is; what was sent is the position kept."""
        self._written = self.position
        self._epoch += 1
        media = self.media
        if media is not None:
            media.flush()

    # === data =============================================================================

    async def send_data(self, pcm: Pcm) -> None:
        """S-DATA request: audio (16-bit PCM, 8 kHz) into the RTP stream, with the data
        token in a half-duplex session."""
        self.machine.data_request()
        media = self.media
        if media is None:
            raise NotCarried("S-DATA request: the call has no media stream")
        epoch = self._epoch
        await media.write(pcm)
        if epoch == self._epoch:  # not dropped by an interruption or a resync meanwhile
            self._written += len(pcm) // 2

    async def play(self, pcm: Pcm, *, frame: int = 320) -> None:
        """S-DATA requests for the activity's audio from the position kept: after an
        interruption or a resynchronization it goes on from there, not from the start.
        Returns once everything is written (or the activity stopped). Outside an
        activity (when the session has activity management) it raises
        :class:`NoActivity` rather than send nothing."""
        if self.functional_units & FunctionalUnit.ACTIVITY_MANAGEMENT and (
            self.machine.activity is None
        ):
            raise NoActivity(
                "S-DATA request (play)",
                self.state,
                "play() sends an activity's audio from its position: call"
                " activity_start(name) first, or send_data(pcm) outside an activity",
            )
        while self._written * 2 < len(pcm):
            if self.state in (State.STA01, State.STA03) or (
                self.functional_units & FunctionalUnit.ACTIVITY_MANAGEMENT
                and self.machine.activity is None
            ):
                return
            if self.state is not State.STA713:  # a sync point or resync awaits its ack
                await asyncio.sleep(0.01)
                continue
            start = self._written * 2
            await self.send_data(pcm[start : start + frame])

    async def send_expedited(self, digits: str) -> str:
        """S-EXPEDITED-DATA request (DTMF): RFC 4733 events when negotiated, otherwise
        INFO ``application/dtmf-relay``; returns which carried it (``"rtp"``/``"info"``)."""
        digits = dtmf_digits(digits)  # a wrong digit is the caller's error, not the peer's
        self.machine.expedited_data_request()
        return str(await self._sip(self.call.send_dtmf(digits)))

    async def send_typed(
        self, data: bytes | str, content_type: str = "text/plain", *, method: str = "MESSAGE"
    ) -> None:
        """S-TYPED-DATA request: in-dialog MESSAGE (or INFO)."""
        self.machine.typed_data_request()
        body = data.encode() if isinstance(data, str) else data
        if method == "INFO":
            await self._sip(self.call.info(body, content_type))
        else:
            await self._sip(self.call.message(body, content_type))

    async def capability_data(self) -> p.CapabilityDataConfirm:
        """S-CAPABILITY-DATA request: in-dialog OPTIONS; the confirm holds the peer's
        Allow, Accept and Supported."""
        self.machine.capability_data_request()
        try:
            response = await self._sip(self.call.options())
        except BaseException:
            self.machine.capability_data_failed()
            raise
        confirm = p.CapabilityDataConfirm(
            _list(response.headers.get_all("Allow")),
            _list(response.headers.get_all("Accept")),
            _list(response.headers.get_all("Supported")),
        )
        self._emit(self.machine.capability_data_confirm(confirm))
        return confirm

    async def report_exception(
        self, reason: int = ReasonCode.NO_SPECIFIC_REASON, text: str = ""
    ) -> None:
        """S-U-EXCEPTION-REPORT request: an EXCEPTION DATA SPDU."""
        self._needs_package("S-U-EXCEPTION-REPORT request")
        self.machine.u_exception_report_request(reason, text.encode())
        await self._carry("S-U-EXCEPTION-REPORT request")

    def _on_info(self, request: Request) -> None:
        content_type = request.content_type
        mime = content_type.mime if content_type is not None else ""
        if mime == DTMF_RELAY:
            signal = dtmf_relay_signal(request.body)
            if signal:
                self._emit(p.ExpeditedDataIndication(signal, "info"))
            return
        self._emit(p.TypedDataIndication(request.body, mime, "INFO"))

    def _on_message(self, request: Request) -> None:
        content_type = request.content_type
        mime = content_type.mime if content_type is not None else ""
        self._emit(p.TypedDataIndication(request.body, mime, "MESSAGE"))

    def _on_dtmf(self, digit: object) -> None:
        self._emit(p.ExpeditedDataIndication(str(getattr(digit, "digit", digit)), "rtp"))

    # === responses to the peer's confirmed primitives =====================================

    async def sync_minor_response(self, serial: int) -> None:
        self.machine.sync_minor_response(serial)
        await self._carry("S-SYNC-MINOR response")

    async def sync_major_response(self) -> None:
        self.machine.sync_major_response()
        await self._carry("S-SYNC-MAJOR response")

    async def resynchronize_response(self) -> None:
        resync = self.machine._resync
        self.machine.resynchronize_response()
        if resync is not None:
            self._resynchronized(*resync)
        await self._carry("S-RESYNCHRONIZE response")

    async def activity_end_response(self) -> None:
        self.machine.activity_end_response()
        await self._carry("S-ACTIVITY-END response")

    async def activity_discard_response(self) -> None:
        self.machine.activity_discard_response()
        media = self.media
        if media is not None:
            media.flush()
        await self._carry("S-ACTIVITY-DISCARD response")

    def _auto_response(self, event: SessionEvent) -> Callable[[], Any] | None:
        if isinstance(event, p.SyncMinorIndication) and event.confirm:
            return lambda: self.sync_minor_response(event.serial)
        if isinstance(event, p.ReleaseIndication) and event.negotiated:
            return self.release_response
        responses: dict[type[SessionEvent], Callable[[], Any]] = {
            p.SyncMajorIndication: self.sync_major_response,
            p.ResynchronizeIndication: self.resynchronize_response,
            p.ActivityEndIndication: self.activity_end_response,
            p.ActivityDiscardIndication: self.activity_discard_response,
        }
        return responses.get(type(event))

    # === SPDUs in INFO ====================================================================

    def _on_spdus(self, request: Request) -> None:
        """An INFO of the package: its TSDU into the machine; a malformed or misplaced
        SPDU is an S-P-EXCEPTION-REPORT here and a 400 saying why to the peer."""
        content_type = request.content_type
        if content_type is None or content_type.mime != SPDU_CONTENT_TYPE:
            raise SipError(415, f"{INFO_PACKAGE} carries {SPDU_CONTENT_TYPE}")
        try:
            units = self.machine.decode(request.body)
            if self.state is State.STA02A and self.call.answer_response is not None:
                # the 2xx came and the INFO overtook the task that confirms it: the
                # confirm is made now, so that the SPDUs follow it in order
                self._confirm_connect()
            self._deliver(units)
        except ProtocolError as error:
            self._refused_spdu(error)
            raise SipError(400, f"Bad SPDU: {error}"[:120]) from None

    def _deliver(self, units: list[Spdu]) -> None:
        """One TSDU's SPDUs into the machine and their events out (kept by the machine
        in STA02A until the confirm); raises :class:`ProtocolError`."""
        events = self.machine.receive(units)
        for event in events:
            self._confirm(event)
            if isinstance(event, p.ResynchronizeIndication | p.ActivityDiscardIndication):
                self._pause()
            respond = self._auto_response(event) if self.auto_respond else None
            if respond is not None:
                self.call.ua.spawn(self._respond(respond))
        if self.machine.outgoing:  # what the SPM answers itself (GIVE TOKENS ACK)
            self.call.ua.spawn(self._carry("SPM", local_ok=True))
        if any(unit.kind is Kind.DN for unit in units):
            self._arm_release_timer()  # the 200 to our BYE within TIM
            self.call.ua.spawn(self.call.hangup())  # the peer's DISCONNECT: the BYE goes

    def _refused_spdu(self, error: ProtocolError) -> None:
        self._emit(p.PExceptionReportIndication(400, f"SPDU refused: {error}"))

    async def _respond(self, respond: Callable[[], Any]) -> None:
        with contextlib.suppress(SessionError):
            await respond()

    def _needs_package(self, primitive: str) -> None:
        if not self.peer_takes_spdus:
            raise NotCarried(
                f"{primitive}: the peer does not take the {INFO_PACKAGE} Info Package and"
                " the primitive has no SIP-only meaning"
            )

    async def _carry(self, primitive: str, *, local_ok: bool = False) -> bool:
        """Send what the machine queued, one TSDU per INFO, in order; returns True if it
        went to the peer. Without the package: a ``"fallback"`` (``local_ok``) or
        :class:`NotCarried`."""
        units = self.machine.take_outgoing()
        if not units:
            return self.peer_takes_spdus
        if not self.peer_takes_spdus:
            text = f"the peer does not take the {INFO_PACKAGE} Info Package"
            if not local_ok:
                raise NotCarried(f"{primitive}: {text}; it has no SIP-only meaning")
            self._fallback(primitive, f"{text}: done locally, the peer was not told")
            return False
        async with self._sending:
            if not self.machine.initiator:
                await self._acknowledged()
            for unit in units:
                body = spdu.encode(unit)
                headers = [("Info-Package", INFO_PACKAGE)]
                await self._sip(self.call.info(body, SPDU_CONTENT_TYPE, headers=headers))
        return True

    async def _acknowledged(self) -> None:
        """The responder's SPDUs wait for the ACK of its 2xx: by then the initiator has
        the 2xx, so an INFO cannot reach it before the dialog it belongs to exists
        (through a proxy the 2xx and an INFO may be forwarded out of order)."""
        call = self.call
        acked = asyncio.ensure_future(call.acknowledged())
        ended = asyncio.ensure_future(call.ended())
        try:
            await asyncio.wait((acked, ended), return_when=asyncio.FIRST_COMPLETED)
        finally:
            acked.cancel()
            ended.cancel()

    async def _confirmed(self, primitive: str, kind: type[E], ack: Spdu) -> E:
        """Carry a confirmed primitive's SPDU and wait for its confirm; without the
        package the confirm is made here, from ``ack``, and a fallback reported."""
        future = self._future(kind)
        if not await self._carry(primitive, local_ok=True):
            for event in self.machine.receive([ack]):
                self._confirm(event)
        return await future

    def _confirm(self, event: SessionEvent) -> None:
        """A confirm: a resynchronization moves the media back before it is told."""
        if isinstance(event, p.ResynchronizeConfirm):
            self._resynchronized(self._resync_kind, event.serial)
        self._emit(event)

    def _future(self, kind: type[E]) -> asyncio.Future[E]:
        future: asyncio.Future[E] = asyncio.get_running_loop().create_future()
        self._confirms.append((kind, future))
        return future

    async def _sip(self, request: Any) -> Any:
        """Await an in-dialog request; a failure becomes an exception report."""
        try:
            return await request
        except Exception as error:
            raise self._exception(error) from error

    def _exception(self, error: Exception) -> ExceptionReported:
        """S-U-EXCEPTION-REPORT for the peer's error response (its Reason or phrase,
        Warning), S-P-EXCEPTION-REPORT for a fault of the provider (no response)."""
        response = getattr(error, "response", None)
        status = int(getattr(error, "status", 500))
        indication: p.UExceptionReportIndication | p.PExceptionReportIndication
        if response is not None and not _made_by_provider(response):
            _, text = _reason_of(response.headers.get("Reason"))
            indication = p.UExceptionReportIndication(
                status,
                text or response.reason_phrase,
                response.headers.get("Warning") or "",
            )
        else:
            indication = p.PExceptionReportIndication(status, str(error))
        self._emit(indication)
        return ExceptionReported(indication)

    async def events_of(self, kind: type[E]) -> AsyncIterator[E]:
        """Each indication or confirm of ``kind`` as it comes."""
        while self.state is not State.STA01:
            yield await self.wait_for(kind)


def connect_parameters(unit: Spdu) -> str:
    """A CONNECT or ACCEPT SPDU as the ``spdu`` parameter of the package in Recv-Info
    (RFC 6086 §10.3 lets a package define parameters): its octets in hexadecimal, a SIP
    token. The INVITE and its 2xx are the only requests and responses that carry it, so
    a peer without the package sees a Recv-Info it ignores and plain SIP goes on."""
    return f"{SPDU_PARAMETER}={spdu.encode(unit).hex()}"


def _package_parameter(values: list[str], name: str) -> str | None:
    for value in values:
        for package in value.split(","):
            package_name, *parameters = (part.strip() for part in package.split(";"))
            if package_name.lower() != INFO_PACKAGE:
                continue
            for parameter in parameters:
                key, _, raw = parameter.partition("=")
                if key.strip().lower() == name:
                    return raw.strip().strip('"')
    return None


def _tokens_in(tokens: Tokens) -> list[Tokens]:
    return [
        token
        for token in (Tokens.DATA, Tokens.MINOR_SYNC, Tokens.MAJOR_ACTIVITY, Tokens.RELEASE)
        if token & tokens
    ]


def _response(
    proposal: Proposal,
    requirements: FunctionalUnit | None,
    tokens: TokenSettings | None,
    initial_serial: int | None,
) -> Proposal:
    """The acceptor's S-CONNECT response to a CONNECT: the functional units proposed
    that it keeps, the tokens placed (the initiator's placements stand; those left to
    its choice go where ``tokens`` says, else to the acceptor), the serial number."""
    name = "S-CONNECT response"
    proposed, settings, serial = proposal
    units = proposed if requirements is None else proposed & requirements
    if units & FunctionalUnit.HALF_DUPLEX and units & FunctionalUnit.DUPLEX:
        units &= ~FunctionalUnit.DUPLEX  # X.215 §10: one of them; the proposal had both
    available = tokens_of(units)
    agreed = {token: side for token, side in settings.items() if token & available}
    for token, side in (tokens or {}).items():
        placed = agreed.get(token)
        if placed is None or side is TokenSide.CHOICE:
            raise PrimitiveNotAllowed(name, State.STA08, f"no choice of the {token!r} token")
        if placed is not TokenSide.CHOICE and placed is not side:
            why = f"the initiator placed the {token!r} token at the {placed.name.lower()}"
            raise PrimitiveNotAllowed(name, State.STA08, why)
        agreed[token] = side
    for token, side in agreed.items():
        if side is TokenSide.CHOICE:
            agreed[token] = TokenSide.ACCEPTOR
    return units, agreed, serial if initial_serial is None else initial_serial


def _accepted(proposal: Proposal, accept: Spdu) -> Proposal:
    """What an ACCEPT agreed to, checked against the CONNECT (X.225 §7.1.2): no unit
    that was not proposed, no token placed otherwise than the initiator placed it, and
    no choice left open."""
    proposed, settings, serial = proposal
    units = FunctionalUnit(accept.session_requirement or 0) & _ALL_UNITS
    if units & ~proposed:
        raise ProtocolError(f"ACCEPT selects {units & ~proposed!r}, which was not proposed")
    agreed = spdu.decode_token_settings(accept.token_setting or 0, tokens_of(units))
    for token, side in agreed.items():
        placed = settings.get(token, TokenSide.INITIATOR)
        if side is TokenSide.CHOICE or (placed is not TokenSide.CHOICE and placed is not side):
            raise ProtocolError(f"ACCEPT places the {token!r} token at {side.name}")
    initial = accept.initial_serial
    return units, agreed, serial if initial is None else initial


def _same_place(target: Any, endpoint: Any) -> bool:
    return (target.transport, target.host, target.port) == (
        endpoint.transport,
        endpoint.host,
        endpoint.port,
    )


def _made_by_provider(response: Any) -> bool:
    """The user agent's own final response for a request that timed out (Timer B/F,
    408) or could not be sent (503), as ``UserAgent`` words them."""
    phrase = str(response.reason_phrase)
    return (response.status == 408 and phrase == "Request Timeout") or (
        response.status == 503 and phrase.startswith("Service Unavailable (")
    )


def _takes_spdus(values: list[str]) -> bool:
    names = {name.split(";")[0].strip().lower() for value in values for name in value.split(",")}
    return INFO_PACKAGE in names


def _reason_of(value: str | None) -> tuple[int | None, str]:
    """``SIP;cause=408;text="…"`` (RFC 3326 §2) → (408, "…")."""
    if not value:
        return None, ""
    cause: int | None = None
    text = ""
    for part in value.split(";")[1:]:
        key, _, raw = part.strip().partition("=")
        if key.lower() == "cause":
            with contextlib.suppress(ValueError):
                cause = int(raw)
        elif key.lower() == "text":
            text = raw.strip().strip('"')
    return cause, text


def _list(values: list[str]) -> tuple[str, ...]:
    return tuple(v.strip() for value in values for v in value.split(",") if v.strip())


def _octets(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value
