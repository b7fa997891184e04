"""The session protocol machine (SPM) after ITU-T X.225 Annex A, sans-I/O.

It knows which primitive is allowed in which state and with which tokens (X.215 §13 and
X.225 Table A.2), keeps the synchronization point serial numbers (V(A), V(M), V(R),
X.225 §7.11) and the activity in progress (Vact), and turns the peer's SPDUs into
indication and confirm events. It does no I/O: request methods raise
:class:`PrimitiveNotAllowed` or change state and queue the SPDUs to carry in
:attr:`SessionMachine.outgoing`; :meth:`SessionMachine.receive` takes an SPDU and returns
events. Primitives that plain SIP carries (S-CONNECT, S-RELEASE, the aborts, the data
token and activity interrupt/resume by re-INVITE) enter by the ``*_indication`` and
``*_confirm`` methods that the asyncio driver calls when the SIP event happens.

States keep X.225's names; only those the SIP mapping can reach exist (there is no
transport connection of its own to wait for, STA01B/C). SIP's BYE cannot be refused, so
a plain S-RELEASE needs no response; under the negotiated release functional unit the
FINISH SPDU asks first (STA09 waits for the response, STA16 for the BYE after the
DISCONNECT).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from voip.session import primitives as p
from voip.session import spdu
from voip.session.primitives import FunctionalUnit, SessionEvent, tokens_of
from voip.session.spdu import (
    Kind,
    ReasonCode,
    ResyncType,
    Spdu,
    SpduError,
    Tokens,
    TokenSettings,
)

__all__ = [
    "FunctionalUnitNotSelected",
    "PrimitiveNotAllowed",
    "ProtocolError",
    "SessionError",
    "SessionMachine",
    "State",
    "TokenNotHeld",
]


class State(enum.Enum):
    """SPM states (X.225 Table A.2)."""

    STA01 = "idle"
    STA02A = "wait for the ACCEPT (S-CONNECT confirm)"
    STA03 = "wait for the DISCONNECT (S-RELEASE confirm)"
    STA04A = "wait for the MAJOR SYNC ACK"
    STA04B = "wait for the ACTIVITY END ACK"
    STA05A = "wait for the RESYNCHRONIZE ACK"
    STA05B = "wait for the ACTIVITY INTERRUPT ACK"
    STA05C = "wait for the ACTIVITY DISCARD ACK"
    STA08 = "wait for the S-CONNECT response"
    STA09 = "wait for the S-RELEASE response"
    STA10A = "wait for the S-SYNC-MAJOR response"
    STA10B = "wait for the S-ACTIVITY-END response"
    STA11A = "wait for the S-RESYNCHRONIZE response"
    STA11B = "wait for the S-ACTIVITY-INTERRUPT response"
    STA11C = "wait for the S-ACTIVITY-DISCARD response"
    STA18 = "wait for the GIVE TOKENS ACK"
    STA21 = "wait for the CAPABILITY DATA ACK"
    STA16 = "wait for the transport disconnect (the BYE)"
    STA19 = "wait for a recovery request (after the peer's exception report)"
    STA20 = "wait for a recovery SPDU or an abort (after our exception report)"
    STA713 = "data transfer"


class SessionError(Exception):
    """Base of the session service's errors."""


class PrimitiveNotAllowed(SessionError):
    """A request or response primitive the user may not issue now (X.215 §13 to §19)."""

    def __init__(self, primitive: str, state: State, why: str = "") -> None:
        text = f"{primitive} is not allowed in {state.name} ({state.value})"
        super().__init__(f"{text}: {why}" if why else text)
        self.primitive = primitive
        self.state = state
        self.why = why


class TokenNotHeld(PrimitiveNotAllowed):
    """The primitive needs a token that the peer holds (X.215 §13.1)."""


class FunctionalUnitNotSelected(PrimitiveNotAllowed):
    """The primitive belongs to a functional unit this session did not agree on."""


class ProtocolError(SessionError):
    """The peer sent an SPDU the protocol does not allow here (X.225 §7.1, S-P-EXCEPTION-
    REPORT); ``reflected`` are its octets for the EXCEPTION REPORT SPDU."""

    def __init__(self, text: str, reflected: bytes = b"") -> None:
        super().__init__(text)
        self.reflected = reflected


#: TSDUs kept in STA02A at most (a peer cannot make the SPM hoard)
MAX_EARLY_TSDUS = 16
#: seconds an accepted negotiated release waits for its end (X.225's TIM, a local matter):
#: the peer's BYE after our DISCONNECT, or the 200 to our BYE after its DISCONNECT; then
#: S-P-ABORT. Below RFC 3261's Timer F (64*T1, 32 s), above a few BYE retransmissions.
RELEASE_TIMER = 10.0

#: states of a running connection in which the peer may still end it or send data
_CONNECTED = frozenset(State) - {State.STA01, State.STA02A, State.STA08}
#: where an exception report makes the session wait for recovery (X.225 Annex A: data
#: transfer and the waits for the peer's acknowledgement or the user's response); in the
#: release states it is told only, in STA19 and STA20 recovery is awaited already
_REPORTABLE = _CONNECTED - {State.STA03, State.STA09, State.STA16, State.STA19, State.STA20}


@dataclass(slots=True)
class SessionMachine:
    """One side of one session. ``initiator`` is the caller (X.225's initiator)."""

    initiator: bool
    state: State = State.STA01
    functional_units: FunctionalUnit = FunctionalUnit.NONE
    #: tokens that exist (by the functional units) and the ones this side holds
    available: Tokens = Tokens.NONE
    held: Tokens = Tokens.NONE
    #: synchronization (X.225 §7.11): next serial, lowest unconfirmed, lowest to restart at
    vm: int = 1
    va: int = 1
    vr: int = 0
    #: an activity is in progress (Vact) and its identifier
    activity: bytes | None = None
    #: interrupted activities kept for S-ACTIVITY-RESUME: identifier → last serial
    interrupted: dict[bytes, int] = field(default_factory=dict)
    outgoing: list[Spdu] = field(default_factory=list)
    #: the serial and type of the resynchronization in progress (either side's)
    _resync: tuple[ResyncType, int] | None = None
    _pending_major: int | None = None
    #: the peer's DISCONNECT came (or no negotiation was needed): the BYE may go
    release_accepted: bool = False
    #: TSDUs that came in STA02A, before the ACCEPT (see :meth:`receive`)
    _early: list[list[Spdu]] = field(default_factory=list)
    #: X.225's TIM (seconds; see RELEASE_TIMER) and when it runs out, while it runs
    tim: float = RELEASE_TIMER
    tim_deadline: float | None = None

    # --- helpers ------------------------------------------------------------------------

    def take_outgoing(self) -> list[Spdu]:
        """The SPDUs to carry to the peer, in order (each list is one TSDU's worth)."""
        out, self.outgoing = self.outgoing, []
        return out

    def _require(self, primitive: str, *states: State) -> None:
        if self.state not in states:
            raise PrimitiveNotAllowed(primitive, self.state)

    def _unit(self, primitive: str, unit: FunctionalUnit) -> None:
        if not self.functional_units & unit:
            raise FunctionalUnitNotSelected(
                primitive, self.state, f"the {unit.name} functional unit was not selected"
            )

    def _tokens(self, primitive: str, tokens: Tokens) -> None:
        """The requestor must hold ``tokens`` where they exist (X.215 §13.1 Table 4)."""
        missing = tokens & self.available & ~self.held
        if missing:
            raise TokenNotHeld(primitive, self.state, f"the peer holds the {missing!r} token")

    def _activity(self, primitive: str, *, in_progress: bool) -> None:
        if not self.functional_units & FunctionalUnit.ACTIVITY_MANAGEMENT:
            return
        if (self.activity is not None) != in_progress:
            why = "an activity is in progress" if self.activity else "no activity is in progress"
            raise PrimitiveNotAllowed(primitive, self.state, why)

    def _existing(self, primitive: str, tokens: Tokens) -> None:
        if not tokens or tokens & ~self.available:
            why = f"{tokens!r} are not tokens of this session"
            raise PrimitiveNotAllowed(primitive, self.state, why)

    def holds(self, tokens: Tokens) -> bool:
        """True if this side may use what ``tokens`` guard (held or not in this session)."""
        return not (tokens & self.available & ~self.held)

    def _all_tokens(self) -> Tokens:
        return self.available

    # --- S-CONNECT (INVITE … ACK) ----------------------------------------------------------

    def _connected(self, units: FunctionalUnit, held: Tokens, initial_serial: int | None) -> None:
        """X.225 §7.1: V(M) and V(A) start at the initial serial number agreed (1 when
        none was), V(R) at 0."""
        self.functional_units = units
        self.available = tokens_of(units)
        self.held = held & self.available
        self.vm = self.va = 1 if initial_serial is None else initial_serial
        self.vr = 0
        self.state = State.STA713

    def connect_request(self) -> None:
        """S-CONNECT request (INVITE sent)."""
        self._require("S-CONNECT request", State.STA01)
        self.state = State.STA02A

    def connect_confirm(
        self,
        accepted: bool,
        units: FunctionalUnit,
        held: Tokens,
        status: int = 200,
        reason: str = "",
        *,
        settings: TokenSettings | None = None,
        initial_serial: int | None = None,
    ) -> SessionEvent:
        """The INVITE's final response: 2xx (positive) or a refusal (negative); with the
        ACCEPT SPDU of a toolkit peer, the token ``settings`` and ``initial_serial`` it
        agreed."""
        self._require("S-CONNECT confirm", State.STA02A)
        if not accepted:
            self.state = State.STA01
            self._early.clear()  # a refused connection has no data transfer to deliver
            return p.ConnectConfirm(False, FunctionalUnit.NONE, status, reason)
        self._connected(units, held, initial_serial)
        return p.ConnectConfirm(True, units, status, reason, dict(settings or {}), initial_serial)

    def connect_indication(
        self,
        units: FunctionalUnit,
        settings: TokenSettings | None = None,
        initial_serial: int | None = None,
    ) -> SessionEvent:
        """An INVITE arrived (with the CONNECT SPDU's proposal from a toolkit peer)."""
        self._require("S-CONNECT indication", State.STA01)
        self.state = State.STA08
        return p.ConnectIndication(units, dict(settings or {}), initial_serial)

    def connect_response(
        self,
        accept: bool,
        units: FunctionalUnit,
        held: Tokens,
        initial_serial: int | None = None,
    ) -> None:
        """S-CONNECT response: 2xx (``accept``) or a refusal."""
        self._require("S-CONNECT response", State.STA08)
        if accept:
            self._connected(units, held, initial_serial)
        else:
            self.state = State.STA01

    # --- release and aborts ------------------------------------------------------------

    def release_request(self) -> None:
        """S-RELEASE request (BYE after the media is flushed). X.215 §17: with every
        available token held and, under activity management, outside an activity. Under
        negotiated release a FINISH SPDU goes first and the BYE waits for the peer's
        DISCONNECT (:attr:`release_accepted`); a NOT FINISHED refuses it."""
        name = "S-RELEASE request"
        self._require(name, State.STA713)
        self._tokens(name, self._all_tokens())
        self._activity(name, in_progress=False)
        self.release_accepted = not self.functional_units & FunctionalUnit.NEGOTIATED_RELEASE
        if not self.release_accepted:
            self.outgoing.append(spdu.plain(Kind.FN))
        self.state = State.STA03

    def release_response(self, accept: bool = True) -> None:
        """S-RELEASE response to a FINISH: DISCONNECT (then the peer's BYE, STA16) or
        NOT FINISHED (refused, data transfer goes on; X.215 §17.2)."""
        self._require("S-RELEASE response", State.STA09)
        if accept:
            self.outgoing.append(spdu.plain(Kind.DN))
            self.state = State.STA16
        else:
            self.outgoing.append(spdu.plain(Kind.NF))
            self.state = State.STA713

    def transport_disconnect(self) -> None:
        """The BYE that follows our DISCONNECT: the release is complete."""
        self._require("T-DISCONNECT", State.STA16)
        self._end()

    def _release_ending(self) -> bool:
        """An accepted negotiated release waits for its end: STA16 (our DISCONNECT sent,
        the peer's BYE to come) or STA03 with the peer's DISCONNECT in (our BYE's 200 to
        come)."""
        if self.state is State.STA16:
            return True
        negotiated = bool(self.functional_units & FunctionalUnit.NEGOTIATED_RELEASE)
        return self.state is State.STA03 and negotiated and self.release_accepted

    def release_timer(self, now: float) -> float | None:
        """TIM (X.225 Annex A, STA16): the driver calls this after each step with the
        time ``now``; it starts TIM when an accepted negotiated release begins to wait
        for its end, and returns its deadline while it runs (None otherwise)."""
        if not self._release_ending():
            self.tim_deadline = None
        elif self.tim_deadline is None:
            self.tim_deadline = now + self.tim
        return self.tim_deadline

    def release_timer_expired(self, now: float) -> SessionEvent | None:
        """TIM ran out at ``now`` with the release still unfinished: the peer's BYE (or
        its 200 to ours) never came; the session ends with S-P-ABORT. None when TIM is
        not due (stopped, or the release finished)."""
        deadline = self.tim_deadline
        if deadline is None or now < deadline or not self._release_ending():
            return None
        waited = (
            "BYE after our DISCONNECT"
            if self.state is State.STA16
            else "200 to our BYE after the DISCONNECT"
        )
        return self.p_abort_indication(408, f"release timer TIM expired: no {waited}")

    def release_confirm(self) -> SessionEvent:
        self._require("S-RELEASE confirm", State.STA03)
        self._end()
        return p.ReleaseConfirm()

    def release_indication(self) -> SessionEvent:
        """A BYE without Reason: the peer released (SIP answers it at once, 200)."""
        if self.state not in _CONNECTED:
            raise ProtocolError(f"a release in {self.state.name}")
        self._end()
        return p.ReleaseIndication()

    def u_abort_request(self) -> None:
        """S-U-ABORT request: allowed in every state but idle (X.215 §18)."""
        if self.state is State.STA01:
            raise PrimitiveNotAllowed("S-U-ABORT request", self.state, "no session")
        self._end()

    def u_abort_indication(self, status: int, reason: str) -> SessionEvent:
        self._end()
        return p.UAbortIndication(status, reason)

    def p_abort_indication(self, status: int, reason: str) -> SessionEvent:
        self._end()
        return p.PAbortIndication(status, reason)

    def _end(self) -> None:
        self.state = State.STA01
        self.tim_deadline = None
        self.activity = None
        self.outgoing.clear()
        self._early.clear()

    # --- data (S-DATA, S-EXPEDITED-DATA, S-TYPED-DATA, S-CAPABILITY-DATA) ---------------

    def data_request(self) -> None:
        """S-DATA request (RTP audio): data transfer state, the data token if it exists."""
        name = "S-DATA request"
        self._require(name, State.STA713, State.STA10A, State.STA11A)
        self._tokens(name, Tokens.DATA)

    def expedited_data_request(self) -> None:
        name = "S-EXPEDITED-DATA request"
        if self.state not in _CONNECTED:
            raise PrimitiveNotAllowed(name, self.state)
        self._unit(name, FunctionalUnit.EXPEDITED_DATA)

    def typed_data_request(self) -> None:
        name = "S-TYPED-DATA request"
        if self.state not in _CONNECTED or self.state is State.STA03:
            raise PrimitiveNotAllowed(name, self.state)
        self._unit(name, FunctionalUnit.TYPED_DATA)

    def capability_data_request(self) -> None:
        """S-CAPABILITY-DATA request (OPTIONS): outside an activity (X.215 §19.1)."""
        name = "S-CAPABILITY-DATA request"
        self._require(name, State.STA713)
        self._unit(name, FunctionalUnit.CAPABILITY_DATA)
        self._activity(name, in_progress=False)
        self.state = State.STA21

    def capability_data_confirm(self, event: SessionEvent) -> SessionEvent:
        self._require("S-CAPABILITY-DATA confirm", State.STA21)
        self.state = State.STA713
        return event

    def capability_data_failed(self) -> None:
        if self.state is State.STA21:
            self.state = State.STA713

    # --- tokens ---------------------------------------------------------------------------

    def token_give_request(self, tokens: Tokens) -> None:
        """S-TOKEN-GIVE request: give held tokens; they move at once (X.215 §13.2). In
        STA19 giving the data token is a recovery (X.215 §19.3)."""
        name = "S-TOKEN-GIVE request"
        if self.state is State.STA19 and tokens & Tokens.DATA:
            self.state = State.STA713
        self._require(name, State.STA713)
        if not tokens or tokens & ~self.available:
            raise PrimitiveNotAllowed(
                name, self.state, f"{tokens!r} are not tokens of this session"
            )
        self._tokens(name, tokens)
        self.held &= ~tokens
        other = tokens & ~Tokens.DATA
        if other:
            self.outgoing.append(spdu.give_tokens(other))

    def token_give_indication(self, tokens: Tokens) -> SessionEvent:
        """Tokens came: a GT SPDU, or the data token by a re-INVITE that made us the
        sender."""
        if self.state not in _CONNECTED:
            raise ProtocolError(f"tokens given in {self.state.name}")
        tokens &= self.available
        self.held |= tokens
        self._recovered()
        return p.TokenGiveIndication(tokens)

    def token_please_request(self, tokens: Tokens, data: bytes = b"") -> None:
        name = "S-TOKEN-PLEASE request"
        if self.state not in _CONNECTED or self.state is State.STA03:
            raise PrimitiveNotAllowed(name, self.state)
        if not tokens or tokens & ~self.available:
            raise PrimitiveNotAllowed(
                name, self.state, f"{tokens!r} are not tokens of this session"
            )
        if tokens & self.held:
            raise PrimitiveNotAllowed(name, self.state, f"this side holds {tokens & self.held!r}")
        self.outgoing.append(spdu.please_tokens(tokens, data))

    def control_give_request(self) -> None:
        """S-CONTROL-GIVE request: all tokens, outside an activity (X.215 §16.7)."""
        name = "S-CONTROL-GIVE request"
        self._require(name, State.STA713)
        self._unit(name, FunctionalUnit.ACTIVITY_MANAGEMENT)
        self._activity(name, in_progress=False)
        self._tokens(name, self._all_tokens())
        self.held = Tokens.NONE
        self.outgoing.append(spdu.plain(Kind.GTC))
        self.state = State.STA18

    # --- synchronization ----------------------------------------------------------------

    def sync_minor_request(self, *, confirm: bool = True, data: bytes = b"") -> int:
        """S-SYNC-MINOR request; returns the serial number (X.215 §14.2)."""
        name = "S-SYNC-MINOR request"
        self._require(name, State.STA713)
        self._unit(name, FunctionalUnit.MINOR_SYNCHRONIZE)
        self._tokens(name, Tokens.MINOR_SYNC | Tokens.DATA)
        self._activity(name, in_progress=True)
        serial = self._next_serial()
        self.outgoing.append(spdu.minor_sync_point(serial, confirm=confirm, data=data))
        return serial

    def sync_minor_response(self, serial: int, data: bytes = b"") -> None:
        name = "S-SYNC-MINOR response"
        self._require(name, State.STA713, State.STA04A, State.STA04B)
        if not self.vm > serial >= self.va:
            raise PrimitiveNotAllowed(name, self.state, f"no unconfirmed sync point {serial}")
        self.va = serial + 1
        self.outgoing.append(spdu.sync_ack(Kind.MIA, serial, data))

    def sync_major_request(self, data: bytes = b"") -> int:
        name = "S-SYNC-MAJOR request"
        self._require(name, State.STA713)
        self._unit(name, FunctionalUnit.MAJOR_SYNCHRONIZE)
        self._tokens(name, Tokens.MAJOR_ACTIVITY | Tokens.MINOR_SYNC | Tokens.DATA)
        self._activity(name, in_progress=True)
        serial = self._next_serial()
        self._pending_major = serial
        self.outgoing.append(spdu.major_sync_point(serial, data))
        self.state = State.STA04A
        return serial

    def sync_major_response(self, data: bytes = b"") -> None:
        name = "S-SYNC-MAJOR response"
        self._require(name, State.STA10A)
        serial = self.vm - 1
        self.va = self.vm
        self.vr = serial
        self.outgoing.append(spdu.sync_ack(Kind.MAA, serial, data))
        self.state = State.STA713

    def _next_serial(self) -> int:
        if self.vm > spdu.MAX_SERIAL:
            raise PrimitiveNotAllowed("S-SYNC", self.state, "serial numbers are used up")
        serial = self.vm
        self.vm += 1
        return serial

    def resynchronize_request(
        self, kind: ResyncType, serial: int | None = None, data: bytes = b""
    ) -> int:
        """S-RESYNCHRONIZE request (X.215 §15): restart at a sync point from V(R) on,
        abandon to a new serial number from V(M) on, or set any serial number."""
        name = "S-RESYNCHRONIZE request"
        allowed = (State.STA713, State.STA04A, State.STA21, State.STA19)
        if self.state not in allowed:
            raise PrimitiveNotAllowed(name, self.state)
        self._unit(name, FunctionalUnit.RESYNCHRONIZE)
        self._activity(name, in_progress=True)
        if kind is ResyncType.RESTART:
            serial = self.vm - 1 if serial is None else serial
            if not self.vr <= serial < self.vm:
                raise PrimitiveNotAllowed(
                    name, self.state, f"restart at {serial} is outside {self.vr}..{self.vm - 1}"
                )
        elif kind is ResyncType.ABANDON:
            serial = self.vm if serial is None else serial
            if serial < self.vm:
                raise PrimitiveNotAllowed(name, self.state, f"abandon needs {self.vm} or more")
        elif serial is None:
            raise PrimitiveNotAllowed(name, self.state, "set needs a serial number")
        self._resync = (kind, serial)
        self.outgoing.append(spdu.resynchronize(kind, serial, data))
        self.state = State.STA05A
        return serial

    def resynchronize_response(self, data: bytes = b"") -> None:
        self._require("S-RESYNCHRONIZE response", State.STA11A)
        assert self._resync is not None
        serial = self._resynchronized()
        self.outgoing.append(spdu.sync_ack(Kind.RA, serial, data))

    def _resynchronized(self) -> int:
        """Both sides agree on the resynchronization: the point is confirmed and the next
        serial follows it (X.225 §7.16)."""
        assert self._resync is not None
        _, serial = self._resync
        self._resync = None
        self.vm = self.va = serial + 1
        self.vr = serial
        self.state = State.STA713
        return serial

    # --- activities ---------------------------------------------------------------------

    def activity_start_request(self, activity: bytes, data: bytes = b"") -> None:
        name = "S-ACTIVITY-START request"
        self._require(name, State.STA713)
        self._unit(name, FunctionalUnit.ACTIVITY_MANAGEMENT)
        self._activity(name, in_progress=False)
        self._tokens(name, Tokens.MAJOR_ACTIVITY | Tokens.MINOR_SYNC | Tokens.DATA)
        if not 1 <= len(activity) <= 6:
            raise PrimitiveNotAllowed(name, self.state, "an activity identifier is 1 to 6 octets")
        self._start(activity)
        self.outgoing.append(spdu.activity_start(activity, data))

    def _start(self, activity: bytes, serial: int = 0) -> None:
        self.activity = activity
        self.vm = self.va = serial + 1
        self.vr = serial

    def activity_resume_request(self, activity: bytes, old: bytes | None = None) -> int:
        """S-ACTIVITY-RESUME request: an interrupted activity again, under ``activity``
        (a new identifier, X.215 §16.4), from the serial number it had reached."""
        name = "S-ACTIVITY-RESUME request"
        self._require(name, State.STA713)
        self._unit(name, FunctionalUnit.ACTIVITY_MANAGEMENT)
        self._activity(name, in_progress=False)
        self._tokens(name, Tokens.MAJOR_ACTIVITY | Tokens.MINOR_SYNC | Tokens.DATA)
        old = activity if old is None else old
        if old not in self.interrupted:
            raise PrimitiveNotAllowed(name, self.state, f"no interrupted activity {old!r}")
        serial = self.interrupted.pop(old)
        self._start(activity, serial)
        self.outgoing.append(spdu.activity_resume(activity, old, serial))
        return serial

    def activity_interrupt_request(self) -> None:
        """S-ACTIVITY-INTERRUPT request (hold): the activity stops, kept for resuming."""
        name = "S-ACTIVITY-INTERRUPT request"
        self._require(name, State.STA713, State.STA04A, State.STA21, State.STA19)
        self._unit(name, FunctionalUnit.ACTIVITY_MANAGEMENT)
        self._activity(name, in_progress=True)
        self._tokens(name, Tokens.MAJOR_ACTIVITY)
        self.state = State.STA05B

    def activity_interrupt_confirm(self) -> SessionEvent:
        """The 2xx of the hold re-INVITE (the ACTIVITY INTERRUPT ACK)."""
        self._require("S-ACTIVITY-INTERRUPT confirm", State.STA05B)
        self._keep_interrupted()
        self.state = State.STA713
        return p.ActivityInterruptConfirm()

    def activity_interrupt_failed(self) -> None:
        if self.state is State.STA05B:
            self.state = State.STA713

    def _keep_interrupted(self) -> None:
        if self.activity is not None:
            self.interrupted[self.activity] = max(self.va - 1, self.vr)
        self.activity = None

    def activity_interrupt_indication(self, reason: int) -> SessionEvent:
        """The peer interrupted (held us). SIP answers the re-INVITE at once, so the
        response follows the indication without a wait (STA11B is passed through)."""
        if self.state not in _CONNECTED:
            raise ProtocolError(f"an activity interrupt in {self.state.name}")
        self._keep_interrupted()
        self._recovered()
        return p.ActivityInterruptIndication(reason)

    def activity_resume_indication(self) -> SessionEvent | None:
        """The peer resumed by re-INVITE (``sendrecv`` again): the activity interrupted
        last comes back under its own identifier, from the serial number it reached;
        None when no activity was interrupted (a plain hold and resume)."""
        if self.state not in _CONNECTED:
            raise ProtocolError(f"an activity resume in {self.state.name}")
        if self.activity is not None or not self.interrupted:
            return None
        activity, serial = self.interrupted.popitem()
        self._start(activity, serial)
        return p.ActivityResumeIndication(activity, activity, serial)

    def activity_discard_request(self, reason: int = ReasonCode.NO_SPECIFIC_REASON) -> None:
        name = "S-ACTIVITY-DISCARD request"
        self._require(name, State.STA713, State.STA04A, State.STA21, State.STA19)
        self._unit(name, FunctionalUnit.ACTIVITY_MANAGEMENT)
        self._activity(name, in_progress=True)
        self._tokens(name, Tokens.MAJOR_ACTIVITY)
        self.outgoing.append(spdu.with_reason(Kind.AD, reason))
        self.state = State.STA05C

    def activity_discard_response(self) -> None:
        self._require("S-ACTIVITY-DISCARD response", State.STA11C)
        self.activity = None
        self.outgoing.append(spdu.plain(Kind.ADA))
        self.state = State.STA713

    def activity_end_request(self, data: bytes = b"") -> int:
        name = "S-ACTIVITY-END request"
        self._require(name, State.STA713)
        self._unit(name, FunctionalUnit.ACTIVITY_MANAGEMENT)
        self._activity(name, in_progress=True)
        self._tokens(name, Tokens.MAJOR_ACTIVITY | Tokens.MINOR_SYNC | Tokens.DATA)
        serial = self._next_serial()
        self.outgoing.append(spdu.activity_end(serial, data))
        self.state = State.STA04B
        return serial

    def activity_end_response(self, data: bytes = b"") -> None:
        self._require("S-ACTIVITY-END response", State.STA10B)
        serial = self.vm - 1
        self.activity = None
        self.va = self.vm
        self.outgoing.append(spdu.sync_ack(Kind.AEA, serial, data))
        self.state = State.STA713

    # --- exceptions ---------------------------------------------------------------------

    def u_exception_report_request(self, reason: int, data: bytes = b"") -> None:
        """S-U-EXCEPTION-REPORT request: the exceptions unit; X.215 §19.3 lets the side
        without the data token report (an EXCEPTION DATA SPDU)."""
        name = "S-U-EXCEPTION-REPORT request"
        self._require(name, State.STA713)
        self._unit(name, FunctionalUnit.EXCEPTIONS)
        if Tokens.DATA & self.available & self.held:
            raise PrimitiveNotAllowed(name, self.state, "the data token holder may not report")
        self.outgoing.append(spdu.with_reason(Kind.ED, reason, data))
        if self._exception_states():
            self.state = State.STA20

    def p_exception_report_request(self, reflected: bytes = b"") -> None:
        """Our SPM refused an SPDU of the peer (X.225 §7.1): an EXCEPTION REPORT SPDU
        reflecting its octets; where exception states apply the session then waits for
        the peer's recovery SPDU or an abort (STA20), as after our user's report."""
        self.outgoing.append(spdu.exception_report(reflected))
        if self._exception_states() and self.state in _REPORTABLE:
            self.state = State.STA20

    def _exception_states(self) -> bool:
        """X.215 §10 puts the exceptions functional unit with half-duplex: only there
        does a report wait for recovery (STA19, STA20). In a duplex session (where SIP's
        error responses are the reports) it is told and data transfer goes on."""
        return bool(self.functional_units & FunctionalUnit.HALF_DUPLEX)

    def _recovered(self) -> None:
        """A recovery from the peer (the data token, an interrupt, a resynchronization or
        a discard) ends the wait after our exception report."""
        if self.state is State.STA20:
            self.state = State.STA713

    # --- the peer's SPDUs ---------------------------------------------------------------

    def receive(self, spdus: list[Spdu]) -> list[SessionEvent]:
        """The SPDUs of one TSDU from the peer: their indications and confirms; raises
        :class:`ProtocolError` for one the state does not allow (nothing changes then).

        In STA02A the TSDU is kept, not refused: X.225 gets the ACCEPT and the SPDUs that
        follow it in order on one transport connection, but SIP carries the ACCEPT (the
        2xx) and each SPDU (an INFO) on transactions of their own, which proxies and
        the network may reorder; the responder is in data transfer once its 2xx is sent.
        :meth:`take_early` gives them back once the S-CONNECT confirm is made; a
        refusal drops them."""
        if self.state is State.STA02A and spdus:
            if len(self._early) >= MAX_EARLY_TSDUS:
                raise ProtocolError(
                    f"more than {MAX_EARLY_TSDUS} TSDUs before the ACCEPT (STA02A)",
                    spdus[0].encode(),
                )
            self._early.append(list(spdus))
            return []
        events: list[SessionEvent] = []
        for unit in spdus:
            event = self._receive(unit)
            if event is not None:
                events.append(event)
        return events

    def take_early(self) -> list[list[Spdu]]:
        """The TSDUs kept in STA02A, in the order they came, for :meth:`receive` now that
        the session is connected (empty before the confirm and after a refusal)."""
        if self.state is State.STA02A:
            return []
        early, self._early = self._early, []
        return early

    def _misplaced(self, unit: Spdu) -> ProtocolError:
        return ProtocolError(
            f"{unit.kind.title} ({unit.kind.name}) is not allowed in {self.state.name}"
            f" ({self.state.value})",
            unit.encode(),
        )

    def _receive(self, unit: Spdu) -> SessionEvent | None:
        kind = unit.kind
        state = self.state
        if state not in _CONNECTED:
            raise self._misplaced(unit)
        if kind is Kind.GT:
            return self.token_give_indication(unit.tokens) if unit.tokens else None
        if kind is Kind.PT:
            return p.TokenPleaseIndication(unit.tokens & self.available, unit.user_data)
        if kind is Kind.GTC:
            if state is not State.STA713 or self.activity is not None:
                raise self._misplaced(unit)
            self.held = self.available
            self.outgoing.append(spdu.plain(Kind.GTA))
            return p.ControlGiveIndication()
        if kind is Kind.GTA:
            if state is not State.STA18:
                raise self._misplaced(unit)
            self.state = State.STA713
            return None
        if kind is Kind.MIP:
            serial = self._peer_serial(unit)
            confirm = not (unit.sync_type or 0) & spdu.SYNC_NO_CONFIRM
            return p.SyncMinorIndication(serial, confirm, unit.user_data)
        if kind is Kind.MIA:
            serial = self._confirmed_serial(unit)
            self.va = serial + 1
            return p.SyncMinorConfirm(serial)
        if kind is Kind.MAP:
            if state is not State.STA713:
                raise self._misplaced(unit)
            serial = self._peer_serial(unit)
            self.state = State.STA10A
            return p.SyncMajorIndication(serial, unit.user_data)
        if kind is Kind.AE:
            if state is not State.STA713 or self.activity is None:
                raise self._misplaced(unit)
            serial = self._peer_serial(unit)
            self.state = State.STA10B
            return p.ActivityEndIndication(serial, unit.user_data)
        if kind in (Kind.MAA, Kind.AEA):
            serial = self._confirmed_serial(unit)
            if state is State.STA04A:
                self.va = self.vm
                self.vr = serial
                self.state = State.STA713
                return p.SyncMajorConfirm(serial)
            if state is State.STA04B:
                self.va = self.vm
                self.activity = None
                self.state = State.STA713
                return p.ActivityEndConfirm(serial)
            raise self._misplaced(unit)
        if kind is Kind.RS:
            return self._resync_indication(unit)
        if kind is Kind.RA:
            if state is not State.STA05A or self._resync is None:
                raise self._misplaced(unit)
            if unit.serial_number != self._resync[1]:
                raise ProtocolError(
                    f"RESYNCHRONIZE ACK for {unit.serial_number}, not {self._resync[1]}",
                    unit.encode(),
                )
            return p.ResynchronizeConfirm(self._resynchronized())
        if kind is Kind.AS:
            if state is not State.STA713 or self.activity is not None:
                raise self._misplaced(unit)
            activity = unit.activity_id or b""
            self._start(activity)
            return p.ActivityStartIndication(activity, unit.user_data)
        if kind is Kind.AR:
            return self._resume_indication(unit)
        if kind is Kind.AD:
            allowed = (State.STA713, State.STA04A, State.STA21, State.STA20)
            if self.activity is None or state not in allowed:
                raise self._misplaced(unit)
            self.state = State.STA11C
            return p.ActivityDiscardIndication(unit.reason_code or 0)
        if kind is Kind.ADA:
            if state is not State.STA05C:
                raise self._misplaced(unit)
            self.activity = None
            self.state = State.STA713
            return p.ActivityDiscardConfirm()
        if kind is Kind.FN:
            if state is not State.STA713 or not self.functional_units & (
                FunctionalUnit.NEGOTIATED_RELEASE
            ):
                raise self._misplaced(unit)
            self.state = State.STA09
            return p.ReleaseIndication(negotiated=True)
        if kind is Kind.DN:
            if state is not State.STA03 or self.release_accepted:
                raise self._misplaced(unit)
            self.release_accepted = True
            return None
        if kind is Kind.NF:
            if state is not State.STA03 or self.release_accepted:
                raise self._misplaced(unit)
            self.state = State.STA713
            return p.ReleaseConfirm(accepted=False)
        if kind is Kind.ED:
            if state is not State.STA713:
                raise self._misplaced(unit)
            if self._exception_states():
                self.state = State.STA19  # the user must recover: X.215 §19.3
            return p.UExceptionReportIndication(
                unit.reason_code or 0, "EXCEPTION DATA", unit.user_data.decode("utf-8", "replace")
            )
        if kind is Kind.ER:
            reflected = unit.find(spdu.PI.REFLECT_PARAMETER_VALUES)
            text = reflected.value.hex() if reflected is not None else ""
            if self._exception_states() and state in _REPORTABLE:
                # S-P-EXCEPTION-REPORT indication: the user must recover (resynchronize,
                # interrupt or discard the activity, give the data token) or abort, as
                # after the peer's user report (X.225 Annex A, ER in STA713: STA19)
                self.state = State.STA19
            return p.PExceptionReportIndication(400, f"the peer's SPM refused an SPDU {text}")
        raise self._misplaced(unit)

    def _peer_serial(self, unit: Spdu) -> int:
        """A sync point the peer placed: it must be our V(M) (X.225 §7.11)."""
        serial = unit.serial_number
        if serial != self.vm:
            raise ProtocolError(
                f"{unit.kind.name} serial number {serial}, expected {self.vm}", unit.encode()
            )
        self.vm += 1
        return serial

    def _confirmed_serial(self, unit: Spdu) -> int:
        serial = unit.serial_number
        if serial is None or not self.va <= serial < self.vm:
            raise ProtocolError(
                f"{unit.kind.name} confirms {serial}, outside {self.va}..{self.vm - 1}",
                unit.encode(),
            )
        return serial

    def _resync_indication(self, unit: Spdu) -> SessionEvent:
        state = self.state
        allowed = (State.STA713, State.STA04A, State.STA05A, State.STA10A, State.STA21)
        if state not in (*allowed, State.STA20):
            raise self._misplaced(unit)
        kind = unit.resync_type
        serial = unit.serial_number
        assert kind is not None and serial is not None  # mandatory, checked by decode
        if state is State.STA05A and self._resync is not None and self.initiator:
            # collision (X.225 §7.16.2): the initiator's resynchronization wins
            return p.PExceptionReportIndication(491, "resynchronization collision, ours wins")
        if kind is ResyncType.RESTART and not self.vr <= serial < self.vm:
            raise ProtocolError(f"restart at {serial}, outside {self.vr}..{self.vm - 1}")
        self._resync = (kind, serial)
        self.state = State.STA11A
        return p.ResynchronizeIndication(kind, serial, unit.user_data)

    def _resume_indication(self, unit: Spdu) -> SessionEvent:
        if self.state is not State.STA713 or self.activity is not None:
            raise self._misplaced(unit)
        linking = unit.linking
        assert linking is not None
        old = next(
            (x.value for x in linking.parameters if x.code == spdu.PI.ACTIVITY_IDENTIFIER), b""
        )
        number = next(x.value for x in linking.parameters if x.code == spdu.PI.SERIAL_NUMBER)
        serial = spdu.decode_serial(number)
        activity = unit.activity_id or b""
        self.interrupted.pop(old, None)
        self._start(activity, serial)
        return p.ActivityResumeIndication(activity, old, serial)

    def decode(self, data: bytes) -> list[Spdu]:
        """A TSDU's SPDUs; a malformed one raises :class:`ProtocolError`."""
        try:
            return spdu.decode(data)
        except SpduError as error:
            raise ProtocolError(str(error), data[:64]) from None
