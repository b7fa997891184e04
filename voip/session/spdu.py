"""Session protocol data units as ISO 8327-1 / ITU-T X.225 §8 lays them out, sans-I/O.

An SPDU is an SPDU Identifier (SI, one octet), a Length Indicator (LI) and a parameter
field of PI units (PI, LI, PV) and PGI units (PGI, LI, then PI units, or a value for
User Data). An LI is one octet for 0 to 254; 255 is the escape for two more octets
holding 255 to 65 535 (§8.2.5).

SPDUs travel in a transport service data unit (TSDU; here the body of an in-dialog INFO)
by the concatenation rules of §6.3.7: a *category 1* SPDU stands alone; a *category 0*
SPDU (GIVE TOKENS, PLEASE TOKENS) stands alone or comes first, followed by one
*category 2* SPDU (basic concatenation) or, with extended concatenation, several. Some SI
values are shared, and position or parameters tell them apart (§8.3): SI 1 is GIVE TOKENS
in category 0 and DATA TRANSFER in category 2; SI 25/26 are ABORT / ABORT ACCEPT alone
and ACTIVITY INTERRUPT / ACK after a category 0 SPDU; SI 41 is MAJOR SYNC POINT with a Sync
Type Item ("end of activity not indicated", as sent when activity management is selected)
and ACTIVITY END without; SI 42 is MAJOR SYNC ACK or ACTIVITY END ACK, which only the state
of the receiving machine tells apart (decoded as MAA).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "PGI",
    "PI",
    "Kind",
    "Parameter",
    "ReasonCode",
    "ResyncType",
    "Spdu",
    "SpduError",
    "TokenSettings",
    "TokenSide",
    "Tokens",
    "connect_accept",
    "decode",
    "decode_serial",
    "encode",
    "encode_serial",
]

MAX_LENGTH = 65535
MAX_SERIAL = 999_999  # six IA5 digits (§8.3.1.10, Upper Limit Serial Number 6)


class SpduError(ValueError):
    """An SPDU or TSDU that breaks X.225 §8 (a protocol error, reported not crashed on)."""


class Kind(enum.Enum):
    """The SPDUs of X.225 Table 8 with their SI and category (§6.3.7)."""

    ER = ("EXCEPTION REPORT", 0, 2)
    GT = ("GIVE TOKENS", 1, 0)
    DT = ("DATA TRANSFER", 1, 2)
    PT = ("PLEASE TOKENS", 2, 0)
    EX = ("EXPEDITED", 5, 1)
    PR = ("PREPARE", 7, 1)
    NF = ("NOT FINISHED", 8, 1)
    FN = ("FINISH", 9, 1)
    DN = ("DISCONNECT", 10, 1)
    RF = ("REFUSE", 12, 1)
    CN = ("CONNECT", 13, 1)
    AC = ("ACCEPT", 14, 1)
    GTC = ("GIVE TOKENS CONFIRM", 21, 1)
    GTA = ("GIVE TOKENS ACK", 22, 1)
    AB = ("ABORT", 25, 1)
    AA = ("ABORT ACCEPT", 26, 1)
    AI = ("ACTIVITY INTERRUPT", 25, 2)
    AIA = ("ACTIVITY INTERRUPT ACK", 26, 2)
    AR = ("ACTIVITY RESUME", 29, 2)
    TD = ("TYPED DATA", 33, 1)
    RA = ("RESYNCHRONIZE ACK", 34, 2)
    MAP = ("MAJOR SYNC POINT", 41, 2)
    AE = ("ACTIVITY END", 41, 2)
    MAA = ("MAJOR SYNC ACK", 42, 2)
    AEA = ("ACTIVITY END ACK", 42, 2)
    AS = ("ACTIVITY START", 45, 2)
    ED = ("EXCEPTION DATA", 48, 2)
    MIP = ("MINOR SYNC POINT", 49, 2)
    MIA = ("MINOR SYNC ACK", 50, 2)
    RS = ("RESYNCHRONIZE", 53, 2)
    AD = ("ACTIVITY DISCARD", 57, 2)
    ADA = ("ACTIVITY DISCARD ACK", 58, 2)
    CD = ("CAPABILITY DATA", 61, 2)
    CDA = ("CAPABILITY DATA ACK", 62, 2)

    def __init__(self, title: str, si: int, category: int) -> None:
        self.title = title
        self.si = si
        self.category = category


class PI(enum.IntEnum):
    """Parameter identifiers (X.225 §8.3)."""

    CALLED_SS_USER_REFERENCE = 9
    CALLING_SS_USER_REFERENCE = 10
    COMMON_REFERENCE = 11
    ADDITIONAL_REFERENCE_INFORMATION = 12
    SYNC_TYPE_ITEM = 15
    TOKEN_ITEM = 16
    TRANSPORT_DISCONNECT = 17
    PROTOCOL_OPTIONS = 19
    SESSION_REQUIREMENT = 20
    TSDU_MAXIMUM_SIZE = 21
    VERSION_NUMBER = 22
    INITIAL_SERIAL_NUMBER = 23
    PREPARE_TYPE = 24
    ENCLOSURE_ITEM = 25
    TOKEN_SETTING_ITEM = 26
    RESYNC_TYPE = 27
    ACTIVITY_IDENTIFIER = 41
    SERIAL_NUMBER = 42
    REFLECT_PARAMETER_VALUES = 49
    REASON_CODE = 50
    CALLING_SESSION_SELECTOR = 51
    CALLED_SESSION_SELECTOR = 52
    SECOND_RESYNC_TYPE = 53
    SECOND_SERIAL_NUMBER = 54
    SECOND_INITIAL_SERIAL_NUMBER = 55
    UPPER_LIMIT_SERIAL_NUMBER = 56
    LARGE_INITIAL_SERIAL_NUMBER = 57
    LARGE_SECOND_INITIAL_SERIAL_NUMBER = 58
    DATA_OVERFLOW = 60


class PGI(enum.IntEnum):
    """Parameter group identifiers; User Data holds a value, the others PI units."""

    CONNECTION_IDENTIFIER = 1
    CONNECT_ACCEPT_ITEM = 5
    LINKING_INFORMATION = 33
    USER_DATA = 193
    EXTENDED_USER_DATA = 194


_GROUPS = frozenset({PGI.CONNECTION_IDENTIFIER, PGI.CONNECT_ACCEPT_ITEM, PGI.LINKING_INFORMATION})


class Tokens(enum.IntFlag):
    """Token Item bits (X.225 §8.3.1.16): one bit per token."""

    NONE = 0
    DATA = 0x01
    MINOR_SYNC = 0x04
    MAJOR_ACTIVITY = 0x10
    RELEASE = 0x40


class TokenSide(enum.IntEnum):
    """Where a token starts: a value of the Token Setting Item (PI 26 of the CONNECT and
    ACCEPT SPDUs, X.225 §8.3.1 and §8.3.2; X.215 §11: initiator, acceptor, or the
    acceptor's choice, which only a CONNECT may leave open)."""

    INITIATOR = 0
    ACCEPTOR = 1
    CHOICE = 2


#: a token's initial position, for each token of the session
TokenSettings = dict[Tokens, TokenSide]

#: the Token Setting Item's two bits per token, from the low-order end: data, minor
#: synchronize, major/activity, release (X.225 §8.3.1)
_SETTING_ORDER = (Tokens.DATA, Tokens.MINOR_SYNC, Tokens.MAJOR_ACTIVITY, Tokens.RELEASE)


def encode_token_settings(settings: TokenSettings) -> int:
    octet = 0
    for shift, token in enumerate(_SETTING_ORDER):
        octet |= int(settings.get(token, TokenSide.INITIATOR)) << (2 * shift)
    return octet


def decode_token_settings(octet: int, tokens: Tokens) -> TokenSettings:
    """The positions of ``tokens`` (those of the session) in a Token Setting Item."""
    settings: TokenSettings = {}
    for shift, token in enumerate(_SETTING_ORDER):
        value = (octet >> (2 * shift)) & 0b11
        if value == 0b11:
            raise SpduError(f"Token Setting Item: value 3 (reserved) for the {token.name} token")
        if token & tokens:
            settings[token] = TokenSide(value)
    return settings


class ResyncType(enum.IntEnum):
    """Resync Type (X.225 §8.3.29): the three S-RESYNCHRONIZE options of X.215."""

    RESTART = 0
    ABANDON = 1
    SET = 2


class ReasonCode(enum.IntEnum):
    """Reason Code of ACTIVITY INTERRUPT/DISCARD and EXCEPTION DATA (X.215 Table 8)."""

    NO_SPECIFIC_REASON = 0
    TEMPORARILY_UNABLE_TO_CONTINUE = 1
    SEQUENCE_ERROR = 3
    LOCAL_SS_USER_ERROR = 5
    UNRECOVERABLE_PROCEDURAL_ERROR = 6
    DEMAND_DATA_TOKEN = 128


#: Sync Type Item of MIP: bit 1 set = explicit confirmation not required (§8.3.31)
SYNC_NO_CONFIRM = 0x01
#: Sync Type Item of MAP: end of activity not indicated (§8.3.33); AE has none
SYNC_NOT_END_OF_ACTIVITY = 0x01


@dataclass(frozen=True, slots=True)
class Parameter:
    """A PI unit, or a PGI unit: a group's ``parameters``, or User Data's ``value``."""

    code: int
    value: bytes = b""
    parameters: tuple[Parameter, ...] = ()

    def encode(self) -> bytes:
        body = b"".join(p.encode() for p in self.parameters) if self.parameters else self.value
        return bytes([self.code]) + _length(len(body)) + body


@dataclass(frozen=True, slots=True)
class Spdu:
    """One SPDU: its kind and its parameter units, in order."""

    kind: Kind
    parameters: tuple[Parameter, ...] = field(default=())

    def encode(self) -> bytes:
        body = b"".join(p.encode() for p in self.parameters)
        return bytes([self.kind.si]) + _length(len(body)) + body

    # --- typed access ------------------------------------------------------------------

    def find(self, code: int) -> Parameter | None:
        for parameter in self.parameters:
            if parameter.code == code:
                return parameter
        return None

    def _byte(self, code: int) -> int | None:
        parameter = self.find(code)
        if parameter is None:
            return None
        if len(parameter.value) != 1:
            raise SpduError(f"{self.kind.name}: PI {code} must be one octet")
        return parameter.value[0]

    @property
    def serial_number(self) -> int | None:
        parameter = self.find(PI.SERIAL_NUMBER)
        return None if parameter is None else decode_serial(parameter.value)

    @property
    def tokens(self) -> Tokens:
        value = self._byte(PI.TOKEN_ITEM)
        return Tokens(value & 0x55) if value is not None else Tokens.NONE

    @property
    def sync_type(self) -> int | None:
        return self._byte(PI.SYNC_TYPE_ITEM)

    @property
    def resync_type(self) -> ResyncType | None:
        value = self._byte(PI.RESYNC_TYPE)
        if value is None:
            return None
        try:
            return ResyncType(value)
        except ValueError:
            raise SpduError(f"RS: unknown Resync Type {value}") from None

    @property
    def reason_code(self) -> int | None:
        parameter = self.find(PI.REASON_CODE)
        if parameter is None or not parameter.value:
            return None
        return parameter.value[0]

    @property
    def activity_id(self) -> bytes | None:
        parameter = self.find(PI.ACTIVITY_IDENTIFIER)
        return None if parameter is None else parameter.value

    def _in_item(self, code: int) -> Parameter | None:
        """A PI of the Connect/Accept Item (PGI 5) of a CONNECT or ACCEPT."""
        item = self.find(PGI.CONNECT_ACCEPT_ITEM)
        if item is None:
            return None
        return next((p for p in item.parameters if p.code == code), None)

    @property
    def session_requirement(self) -> int | None:
        """Session User Requirements (PI 20, X.225 §8.3.1): the functional unit bits."""
        parameter = self.find(PI.SESSION_REQUIREMENT)
        if parameter is None:
            return None
        if len(parameter.value) != 2:
            raise SpduError(f"{self.kind.name}: Session User Requirements must be two octets")
        return int.from_bytes(parameter.value, "big")

    @property
    def token_setting(self) -> int | None:
        parameter = self._in_item(PI.TOKEN_SETTING_ITEM)
        if parameter is None:
            return None
        if len(parameter.value) != 1:
            raise SpduError(f"{self.kind.name}: the Token Setting Item must be one octet")
        return parameter.value[0]

    @property
    def initial_serial(self) -> int | None:
        parameter = self._in_item(PI.INITIAL_SERIAL_NUMBER)
        return None if parameter is None else decode_serial(parameter.value)

    @property
    def linking(self) -> Parameter | None:
        return self.find(PGI.LINKING_INFORMATION)

    @property
    def user_data(self) -> bytes:
        parameter = self.find(PGI.USER_DATA)
        return b"" if parameter is None else parameter.value


# --- building SPDUs ------------------------------------------------------------------------


def encode_serial(number: int) -> bytes:
    """A serial number as IA5 decimal digits, 1 to 6 of them (X.225 §8.3.1.10)."""
    if not 0 <= number <= MAX_SERIAL:
        raise SpduError(f"serial number {number} is outside 0..{MAX_SERIAL}")
    return str(number).encode("ascii")


def decode_serial(value: bytes) -> int:
    if not 1 <= len(value) <= 6 or not value.isdigit():
        raise SpduError(f"serial number {value!r} is not 1 to 6 IA5 digits")
    return int(value)


def _user_data(data: bytes) -> tuple[Parameter, ...]:
    return (Parameter(PGI.USER_DATA, data),) if data else ()


def _serial(number: int) -> Parameter:
    return Parameter(PI.SERIAL_NUMBER, encode_serial(number))


def give_tokens(tokens: Tokens = Tokens.NONE) -> Spdu:
    """GT; with no tokens it is the category 0 prefix of a concatenation."""
    return Spdu(Kind.GT, (Parameter(PI.TOKEN_ITEM, bytes([tokens])),) if tokens else ())


def please_tokens(tokens: Tokens, data: bytes = b"") -> Spdu:
    return Spdu(Kind.PT, (Parameter(PI.TOKEN_ITEM, bytes([tokens])), *_user_data(data)))


def minor_sync_point(serial: int, *, confirm: bool = True, data: bytes = b"") -> Spdu:
    sync_type = () if confirm else (Parameter(PI.SYNC_TYPE_ITEM, bytes([SYNC_NO_CONFIRM])),)
    return Spdu(Kind.MIP, (*sync_type, _serial(serial), *_user_data(data)))


def sync_ack(kind: Kind, serial: int, data: bytes = b"") -> Spdu:
    """MIA, MAA, AEA or RA: a serial number and user data."""
    return Spdu(kind, (_serial(serial), *_user_data(data)))


def major_sync_point(serial: int, data: bytes = b"") -> Spdu:
    sync_type = Parameter(PI.SYNC_TYPE_ITEM, bytes([SYNC_NOT_END_OF_ACTIVITY]))
    return Spdu(Kind.MAP, (sync_type, _serial(serial), *_user_data(data)))


def activity_end(serial: int, data: bytes = b"") -> Spdu:
    return Spdu(Kind.AE, (_serial(serial), *_user_data(data)))


def resynchronize(kind: ResyncType, serial: int, data: bytes = b"") -> Spdu:
    return Spdu(
        Kind.RS,
        (Parameter(PI.RESYNC_TYPE, bytes([kind])), _serial(serial), *_user_data(data)),
    )


def activity_start(activity: bytes, data: bytes = b"") -> Spdu:
    return Spdu(Kind.AS, (Parameter(PI.ACTIVITY_IDENTIFIER, activity), *_user_data(data)))


def activity_resume(new: bytes, old: bytes, serial: int, data: bytes = b"") -> Spdu:
    linking = Parameter(
        PGI.LINKING_INFORMATION,
        parameters=(Parameter(PI.ACTIVITY_IDENTIFIER, old), _serial(serial)),
    )
    return Spdu(Kind.AR, (linking, Parameter(PI.ACTIVITY_IDENTIFIER, new), *_user_data(data)))


def with_reason(kind: Kind, reason: int, data: bytes = b"") -> Spdu:
    """AI, AD or ED: a Reason Code (and, for ED, user data)."""
    return Spdu(kind, (Parameter(PI.REASON_CODE, bytes([reason])), *_user_data(data)))


#: Version Number (PI 22, X.225 §8.3.1): bit 2, session protocol version 2
VERSION_2 = 0x02


def connect_accept(
    kind: Kind, requirement: int, settings: TokenSettings, initial_serial: int | None = None
) -> Spdu:
    """CONNECT (CN) or ACCEPT (AC): the Connect/Accept Item (Protocol Options, Version
    Number, Initial Serial Number, Token Setting Item) and Session User Requirements."""
    if kind not in (Kind.CN, Kind.AC):
        raise SpduError(f"{kind.name} is neither CONNECT nor ACCEPT")
    item: list[Parameter] = [
        Parameter(PI.PROTOCOL_OPTIONS, b"\x00"),
        Parameter(PI.VERSION_NUMBER, bytes([VERSION_2])),
    ]
    if initial_serial is not None:
        item.append(Parameter(PI.INITIAL_SERIAL_NUMBER, encode_serial(initial_serial)))
    if settings:
        item.append(Parameter(PI.TOKEN_SETTING_ITEM, bytes([encode_token_settings(settings)])))
    return Spdu(
        kind,
        (
            Parameter(PGI.CONNECT_ACCEPT_ITEM, parameters=tuple(item)),
            Parameter(PI.SESSION_REQUIREMENT, requirement.to_bytes(2, "big")),
        ),
    )


def exception_report(reflected: bytes = b"") -> Spdu:
    """ER: the SPM's report of a protocol error, reflecting the offending octets."""
    return Spdu(Kind.ER, (Parameter(PI.REFLECT_PARAMETER_VALUES, reflected[:255]),))


def plain(kind: Kind, data: bytes = b"") -> Spdu:
    return Spdu(kind, _user_data(data))


# --- required parameters (X.225 §8.3, "mandatory") ---------------------------------------

_REQUIRED: dict[Kind, tuple[int, ...]] = {
    Kind.PT: (PI.TOKEN_ITEM,),
    Kind.MIP: (PI.SERIAL_NUMBER,),
    Kind.MIA: (PI.SERIAL_NUMBER,),
    Kind.MAP: (PI.SERIAL_NUMBER,),
    Kind.MAA: (PI.SERIAL_NUMBER,),
    Kind.AE: (PI.SERIAL_NUMBER,),
    Kind.AEA: (PI.SERIAL_NUMBER,),
    Kind.RS: (PI.RESYNC_TYPE, PI.SERIAL_NUMBER),
    Kind.RA: (PI.SERIAL_NUMBER,),
    Kind.AS: (PI.ACTIVITY_IDENTIFIER,),
    Kind.AR: (PGI.LINKING_INFORMATION, PI.ACTIVITY_IDENTIFIER),
}


def _check(spdu: Spdu) -> Spdu:
    codes = [p.code for p in spdu.parameters]
    for code in _REQUIRED.get(spdu.kind, ()):
        if code not in codes:
            raise SpduError(f"{spdu.kind.name} lacks its mandatory parameter {code}")
    # the typed values must read (serial numbers as digits, one-octet items)
    spdu.serial_number  # noqa: B018
    spdu.tokens  # noqa: B018
    spdu.resync_type  # noqa: B018
    spdu.sync_type  # noqa: B018
    spdu.session_requirement  # noqa: B018
    spdu.initial_serial  # noqa: B018
    setting = spdu.token_setting
    if setting is not None:
        decode_token_settings(setting, ~Tokens.NONE)
    linking = spdu.linking
    if linking is not None:
        serial = next((p for p in linking.parameters if p.code == PI.SERIAL_NUMBER), None)
        if serial is None:
            raise SpduError("AR: Linking Information lacks the Serial Number")
        decode_serial(serial.value)
    return spdu


# --- lengths, units and the TSDU ---------------------------------------------------------


def _length(n: int) -> bytes:
    """LI (X.225 §8.2.5): one octet up to 254, else 255 and two octets."""
    if n < 0 or n > MAX_LENGTH:
        raise SpduError(f"length {n} does not fit an LI")
    return bytes([n]) if n < 255 else bytes([255, n >> 8, n & 0xFF])


def _read_length(data: bytes, offset: int) -> tuple[int, int]:
    if offset >= len(data):
        raise SpduError(f"LI missing at octet {offset}")
    first = data[offset]
    if first != 255:
        return first, offset + 1
    if offset + 3 > len(data):
        raise SpduError(f"two-octet LI cut short at octet {offset}")
    n = (data[offset + 1] << 8) | data[offset + 2]
    if n < 255:
        raise SpduError(f"two-octet LI holds {n}, which needs one octet")
    return n, offset + 3


def _units(data: bytes, *, groups: bool) -> tuple[Parameter, ...]:
    units: list[Parameter] = []
    offset = 0
    while offset < len(data):
        code = data[offset]
        length, start = _read_length(data, offset + 1)
        end = start + length
        if end > len(data):
            raise SpduError(f"parameter {code}: LI {length} runs past its field")
        value = data[start:end]
        if groups and code in _GROUPS:
            units.append(Parameter(code, parameters=_units(value, groups=False)))
        else:
            units.append(Parameter(code, value))
        offset = end
    return tuple(units)


_BY_SI: dict[tuple[int, int], Kind] = {}
for _kind in Kind:
    # category 0 and 1 stand first; category 2 follows a category 0 SPDU
    _BY_SI.setdefault((_kind.si, 2 if _kind.category == 2 else 0), _kind)


def _one(data: bytes, offset: int, *, first: bool) -> tuple[Spdu, int]:
    si = data[offset]
    length, start = _read_length(data, offset + 1)
    end = start + length
    if end > len(data):
        raise SpduError(f"SPDU with SI {si}: LI {length} runs past the TSDU")
    kind = _BY_SI.get((si, 0 if first else 2))
    if kind is None:
        place = "first in a TSDU" if first else "after a category 0 SPDU"
        raise SpduError(f"SI {si} is no SPDU that may come {place}")
    spdu = Spdu(kind, _units(data[start:end], groups=True))
    if kind is Kind.MAP and spdu.find(PI.SYNC_TYPE_ITEM) is None:
        spdu = Spdu(Kind.AE, spdu.parameters)
    return _check(spdu), end


def decode(data: bytes, *, extended: bool = True) -> list[Spdu]:
    """The SPDUs of one TSDU, by the concatenation rules of X.225 §6.3.7; raises
    :class:`SpduError` for anything else."""
    if not data:
        raise SpduError("empty TSDU")
    spdu, offset = _one(data, 0, first=True)
    spdus = [spdu]
    if spdu.kind.category == 1 and offset != len(data):
        raise SpduError(f"{spdu.kind.name} is category 1 and may not be concatenated")
    while offset < len(data):
        if not extended and len(spdus) == 2:
            raise SpduError("more than one category 2 SPDU without extended concatenation")
        spdu, offset = _one(data, offset, first=False)
        spdus.append(spdu)
    return spdus


def encode(spdus: Sequence[Spdu] | Spdu) -> bytes:
    """One TSDU. A category 2 SPDU given alone gets an empty GIVE TOKENS before it."""
    items: list[Spdu] = [spdus] if isinstance(spdus, Spdu) else list(spdus)
    if not items:
        raise SpduError("nothing to encode")
    if items[0].kind.category == 2:
        items.insert(0, give_tokens())
    first = items[0]
    if first.kind.category == 1 and len(items) > 1:
        raise SpduError(f"{first.kind.name} is category 1 and may not be concatenated")
    for spdu in items[1:]:
        if spdu.kind.category != 2:
            raise SpduError(f"{spdu.kind.name} may not follow {first.kind.name}")
    return b"".join(spdu.encode() for spdu in items)
