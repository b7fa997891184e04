"""The session service's primitives (ITU-T X.215 §11 to §19) as events and names, sans-I/O.

Request and response primitives are the methods of :class:`~voip.session.machine.
SessionMachine` (and of :class:`~voip.session.Session`); indication and confirm primitives
are the small event classes here, each naming the primitive it is.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import ClassVar

from voip.session.spdu import ResyncType, Tokens, TokenSettings

__all__ = [
    "ActivityDiscardConfirm",
    "ActivityDiscardIndication",
    "ActivityEndConfirm",
    "ActivityEndIndication",
    "ActivityInterruptConfirm",
    "ActivityInterruptIndication",
    "ActivityResumeIndication",
    "ActivityStartIndication",
    "CapabilityDataConfirm",
    "CapabilityDataIndication",
    "ConnectConfirm",
    "ConnectIndication",
    "ControlGiveIndication",
    "ExpeditedDataIndication",
    "FunctionalUnit",
    "PAbortIndication",
    "PExceptionReportIndication",
    "ReleaseConfirm",
    "ReleaseIndication",
    "ResynchronizeConfirm",
    "ResynchronizeIndication",
    "SessionEvent",
    "SyncMajorConfirm",
    "SyncMajorIndication",
    "SyncMinorConfirm",
    "SyncMinorIndication",
    "TokenGiveIndication",
    "TokenPleaseIndication",
    "TypedDataIndication",
    "UAbortIndication",
    "UExceptionReportIndication",
]


class FunctionalUnit(enum.Flag):
    """The functional units of X.215 §10, with the bits of X.225's Session Requirement."""

    NONE = 0
    HALF_DUPLEX = 0x0001
    DUPLEX = 0x0002
    EXPEDITED_DATA = 0x0004
    MINOR_SYNCHRONIZE = 0x0008
    MAJOR_SYNCHRONIZE = 0x0010
    RESYNCHRONIZE = 0x0020
    ACTIVITY_MANAGEMENT = 0x0040
    NEGOTIATED_RELEASE = 0x0080
    CAPABILITY_DATA = 0x0100
    EXCEPTIONS = 0x0200
    TYPED_DATA = 0x0400


#: what every call has: the units plain SIP carries (X.215 §10's kernel is implied)
SIP_UNITS = (
    FunctionalUnit.EXPEDITED_DATA
    | FunctionalUnit.TYPED_DATA
    | FunctionalUnit.CAPABILITY_DATA
    | FunctionalUnit.EXCEPTIONS
    | FunctionalUnit.ACTIVITY_MANAGEMENT
)
#: what two toolkit peers add with the SPDU Info Package: synchronization and recovery
SPDU_UNITS = (
    FunctionalUnit.MINOR_SYNCHRONIZE
    | FunctionalUnit.MAJOR_SYNCHRONIZE
    | FunctionalUnit.RESYNCHRONIZE
)


def tokens_of(units: FunctionalUnit) -> Tokens:
    """The tokens that exist with ``units`` (X.215 §13.1)."""
    tokens = Tokens.NONE
    if units & FunctionalUnit.HALF_DUPLEX:
        tokens |= Tokens.DATA
    if units & FunctionalUnit.MINOR_SYNCHRONIZE:
        tokens |= Tokens.MINOR_SYNC
    if units & (FunctionalUnit.MAJOR_SYNCHRONIZE | FunctionalUnit.ACTIVITY_MANAGEMENT):
        tokens |= Tokens.MAJOR_ACTIVITY
    if units & FunctionalUnit.NEGOTIATED_RELEASE:
        tokens |= Tokens.RELEASE
    return tokens


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """An indication or confirm primitive."""

    primitive: ClassVar[str] = ""


@dataclass(frozen=True, slots=True)
class ConnectIndication(SessionEvent):
    """The functional units proposed; from a toolkit peer (its CONNECT SPDU) also where
    each token starts (``TokenSide.CHOICE``: the acceptor says, in its response) and the
    initial synchronization point serial number."""

    primitive: ClassVar[str] = "S-CONNECT indication"
    functional_units: FunctionalUnit
    tokens: TokenSettings = field(default_factory=dict)
    initial_serial: int | None = None


@dataclass(frozen=True, slots=True)
class ConnectConfirm(SessionEvent):
    """Positive (``accepted``) or negative: the SIP final status and reason of a refusal.
    From a toolkit peer (its ACCEPT SPDU), where each token starts and the initial
    serial number it agreed to."""

    primitive: ClassVar[str] = "S-CONNECT confirm"
    accepted: bool
    functional_units: FunctionalUnit = FunctionalUnit.NONE
    status: int = 200
    reason: str = ""
    tokens: TokenSettings = field(default_factory=dict)
    initial_serial: int | None = None


@dataclass(frozen=True, slots=True)
class ReleaseIndication(SessionEvent):
    """The peer releases: its BYE, or (``negotiated``, the negotiated release functional
    unit) its FINISH SPDU, which waits for this side's S-RELEASE response."""

    primitive: ClassVar[str] = "S-RELEASE indication"
    negotiated: bool = False


@dataclass(frozen=True, slots=True)
class ReleaseConfirm(SessionEvent):
    """The release is done (the BYE's 200), or, under negotiated release, the peer
    refused it (NOT FINISHED): ``accepted`` False and the session goes on."""

    primitive: ClassVar[str] = "S-RELEASE confirm"
    accepted: bool = True


@dataclass(frozen=True, slots=True)
class UAbortIndication(SessionEvent):
    """The peer ended the session abruptly (CANCEL, BYE with Reason): its reason."""

    primitive: ClassVar[str] = "S-U-ABORT indication"
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class PAbortIndication(SessionEvent):
    """The provider ended the session: transaction timeout, session timer expiry, RTP
    inactivity, transport loss; the SIP status that stands for it and what happened."""

    primitive: ClassVar[str] = "S-P-ABORT indication"
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class TokenGiveIndication(SessionEvent):
    primitive: ClassVar[str] = "S-TOKEN-GIVE indication"
    tokens: Tokens


@dataclass(frozen=True, slots=True)
class TokenPleaseIndication(SessionEvent):
    primitive: ClassVar[str] = "S-TOKEN-PLEASE indication"
    tokens: Tokens
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class ControlGiveIndication(SessionEvent):
    primitive: ClassVar[str] = "S-CONTROL-GIVE indication"


@dataclass(frozen=True, slots=True)
class SyncMinorIndication(SessionEvent):
    primitive: ClassVar[str] = "S-SYNC-MINOR indication"
    serial: int
    confirm: bool
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class SyncMinorConfirm(SessionEvent):
    primitive: ClassVar[str] = "S-SYNC-MINOR confirm"
    serial: int


@dataclass(frozen=True, slots=True)
class SyncMajorIndication(SessionEvent):
    primitive: ClassVar[str] = "S-SYNC-MAJOR indication"
    serial: int
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class SyncMajorConfirm(SessionEvent):
    primitive: ClassVar[str] = "S-SYNC-MAJOR confirm"
    serial: int


@dataclass(frozen=True, slots=True)
class ResynchronizeIndication(SessionEvent):
    primitive: ClassVar[str] = "S-RESYNCHRONIZE indication"
    type: ResyncType
    serial: int
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class ResynchronizeConfirm(SessionEvent):
    primitive: ClassVar[str] = "S-RESYNCHRONIZE confirm"
    serial: int


@dataclass(frozen=True, slots=True)
class ActivityStartIndication(SessionEvent):
    primitive: ClassVar[str] = "S-ACTIVITY-START indication"
    activity: bytes
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class ActivityResumeIndication(SessionEvent):
    primitive: ClassVar[str] = "S-ACTIVITY-RESUME indication"
    activity: bytes
    old_activity: bytes
    serial: int


@dataclass(frozen=True, slots=True)
class ActivityInterruptIndication(SessionEvent):
    primitive: ClassVar[str] = "S-ACTIVITY-INTERRUPT indication"
    reason: int


@dataclass(frozen=True, slots=True)
class ActivityInterruptConfirm(SessionEvent):
    primitive: ClassVar[str] = "S-ACTIVITY-INTERRUPT confirm"


@dataclass(frozen=True, slots=True)
class ActivityDiscardIndication(SessionEvent):
    primitive: ClassVar[str] = "S-ACTIVITY-DISCARD indication"
    reason: int


@dataclass(frozen=True, slots=True)
class ActivityDiscardConfirm(SessionEvent):
    primitive: ClassVar[str] = "S-ACTIVITY-DISCARD confirm"


@dataclass(frozen=True, slots=True)
class ActivityEndIndication(SessionEvent):
    primitive: ClassVar[str] = "S-ACTIVITY-END indication"
    serial: int
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class ActivityEndConfirm(SessionEvent):
    primitive: ClassVar[str] = "S-ACTIVITY-END confirm"
    serial: int


@dataclass(frozen=True, slots=True)
class ExpeditedDataIndication(SessionEvent):
    """DTMF: the digit(s), from RFC 4733 events or an INFO."""

    primitive: ClassVar[str] = "S-EXPEDITED-DATA indication"
    data: str
    carrier: str = "rtp"


@dataclass(frozen=True, slots=True)
class TypedDataIndication(SessionEvent):
    primitive: ClassVar[str] = "S-TYPED-DATA indication"
    data: bytes
    content_type: str
    method: str = "INFO"


@dataclass(frozen=True, slots=True)
class CapabilityDataIndication(SessionEvent):
    primitive: ClassVar[str] = "S-CAPABILITY-DATA indication"
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class CapabilityDataConfirm(SessionEvent):
    """The peer's capabilities: what its 200 to OPTIONS allows, accepts and supports."""

    primitive: ClassVar[str] = "S-CAPABILITY-DATA confirm"
    allow: tuple[str, ...] = ()
    accept: tuple[str, ...] = ()
    supported: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UExceptionReportIndication(SessionEvent):
    """The peer reported an exception: an error response (status, Reason, Warning) to a
    request that did not end the session, or an EXCEPTION DATA SPDU."""

    primitive: ClassVar[str] = "S-U-EXCEPTION-REPORT indication"
    status: int
    reason: str
    warning: str = ""


@dataclass(frozen=True, slots=True)
class PExceptionReportIndication(SessionEvent):
    """The provider saw a fault that did not end the session: a request that timed out
    or could not be sent, a malformed or misplaced SPDU, media that fell silent."""

    primitive: ClassVar[str] = "S-P-EXCEPTION-REPORT indication"
    status: int
    reason: str
