"""The OSI session service (ITU-T X.215, X.225) as the call API, carried by SIP and RTP.

:mod:`voip.session.machine` is the sans-I/O session protocol machine, :mod:`voip.session.spdu`
the SPDU codec (ISO 8327-1), :mod:`voip.session.primitives` the indication and confirm events.
"""

from voip.session.machine import (
    FunctionalUnitNotSelected,
    PrimitiveNotAllowed,
    ProtocolError,
    SessionError,
    SessionMachine,
    State,
    TokenNotHeld,
)
from voip.session.primitives import FunctionalUnit
from voip.session.session import (
    INFO_PACKAGE,
    SPDU_CONTENT_TYPE,
    ConnectRefused,
    ExceptionReported,
    NoActivity,
    NotCarried,
    Session,
)
from voip.session.spdu import (
    ReasonCode,
    ResyncType,
    Spdu,
    SpduError,
    Tokens,
    TokenSettings,
    TokenSide,
)

__all__ = [
    "INFO_PACKAGE",
    "SPDU_CONTENT_TYPE",
    "ConnectRefused",
    "ExceptionReported",
    "FunctionalUnit",
    "FunctionalUnitNotSelected",
    "NoActivity",
    "NotCarried",
    "PrimitiveNotAllowed",
    "ProtocolError",
    "ReasonCode",
    "ResyncType",
    "Session",
    "SessionError",
    "SessionMachine",
    "Spdu",
    "SpduError",
    "State",
    "TokenNotHeld",
    "TokenSettings",
    "TokenSide",
    "Tokens",
]
