"""STUN (RFC 5389) as SIP Outbound uses it (RFC 5626 §8): Binding Requests sent from the SIP
UDP socket to the flow's next hop as keep-alives, and the Binding Success Response with
XOR-MAPPED-ADDRESS that answers them. Sans-I/O: bytes in, bytes and deadlines out.

Only the subset of RFC 5626 §8 is built: no authentication (no MESSAGE-INTEGRITY), no
attributes in a request, FINGERPRINT checked when present and added to what is sent.
A STUN message shares the SIP UDP socket; RFC 7983 §7 (and RFC 5626 §8) tells it from SIP
by its first two bits, 0, and its magic cookie (:func:`is_stun`).

aioice's ``aioice.stun`` is not used: it is not part of aioice's documented API (its docs
name ``Connection`` and ``Candidate`` only), and its transaction is an asyncio task rather
than a state machine that virtual time can drive.
"""

from __future__ import annotations

import ipaddress
import os
import struct
import zlib
from dataclasses import dataclass

__all__ = [
    "BINDING_REQUEST",
    "BINDING_SUCCESS",
    "MAGIC_COOKIE",
    "BindingTransaction",
    "StunError",
    "StunMessage",
    "binding_request",
    "binding_success",
    "decode",
    "is_stun",
]

#: RFC 5389 §6: the fixed value in octets 4 to 7 of every message
MAGIC_COOKIE = 0x2112A442
_COOKIE = MAGIC_COOKIE.to_bytes(4, "big")
#: message types (§6, §18.1): Binding (method 0x001) as request, success and error response
BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
BINDING_ERROR = 0x0111
# attributes (§15, §18.2)
MAPPED_ADDRESS = 0x0001
XOR_MAPPED_ADDRESS = 0x0020
FINGERPRINT = 0x8028
_FINGERPRINT_XOR = 0x5354554E  # §15.5
_HEADER = struct.Struct("!HHI12s")
_ATTRIBUTE = struct.Struct("!HH")
HEADER_SIZE = 20
# §15.1: address families of (XOR-)MAPPED-ADDRESS
_IPV4, _IPV6 = 0x01, 0x02


class StunError(ValueError):
    """A datagram that looks like STUN (RFC 7983's first octet and the magic cookie) but is
    not a well-formed message."""


@dataclass(frozen=True, slots=True)
class StunMessage:
    """One decoded message: its type (``BINDING_REQUEST``…), transaction id (96 bits) and,
    in a response, the reflexive transport address (XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS
    from an RFC 3489 server) as ``(host, port)``."""

    type: int
    transaction_id: bytes
    mapped: tuple[str, int] | None = None

    @property
    def is_request(self) -> bool:
        return self.type & 0x0110 == 0x0000

    @property
    def is_success(self) -> bool:
        return self.type & 0x0110 == 0x0100

    @property
    def is_error(self) -> bool:
        return self.type & 0x0110 == 0x0110


def is_stun(data: bytes) -> bool:
    """RFC 7983 §7 / RFC 5626 §8: a datagram on the SIP socket or on the media ports is STUN
    when its first two bits are 0 (first octet 0 to 3: never the first character of a SIP
    message, nor of RTP or RTCP, whose version 2 sets the top bit) and octets 4 to 7 hold
    the magic cookie."""
    return len(data) >= HEADER_SIZE and data[0] < 4 and data[4:8] == _COOKIE


def _fingerprint(data: bytes) -> int:
    return (zlib.crc32(data) ^ _FINGERPRINT_XOR) & 0xFFFFFFFF


def _encode(type_: int, transaction_id: bytes, attributes: bytes) -> bytes:
    """The message with FINGERPRINT appended (§15.5: its length counts in the header's)."""
    length = len(attributes) + 8
    head = _HEADER.pack(type_, length, MAGIC_COOKIE, transaction_id) + attributes
    return head + _ATTRIBUTE.pack(FINGERPRINT, 4) + struct.pack("!I", _fingerprint(head))


def new_transaction_id() -> bytes:
    """§6: 96 bits, uniformly random."""
    return os.urandom(12)


def binding_request(transaction_id: bytes | None = None) -> tuple[bytes, bytes]:
    """A Binding Request with no attributes but FINGERPRINT (RFC 5626 §8): its octets and
    its transaction id."""
    tid = transaction_id if transaction_id is not None else new_transaction_id()
    if len(tid) != 12:
        raise ValueError("a STUN transaction id is 96 bits")
    return _encode(BINDING_REQUEST, tid, b""), tid


def _xor_address(host: str, port: int, transaction_id: bytes) -> bytes:
    address = ipaddress.ip_address(host)
    xport = port ^ (MAGIC_COOKIE >> 16)
    key = _COOKIE + (transaction_id if address.version == 6 else b"")
    packed = bytes(a ^ b for a, b in zip(address.packed, key, strict=False))
    family = _IPV6 if address.version == 6 else _IPV4
    value = struct.pack("!BBH", 0, family, xport) + packed
    return _ATTRIBUTE.pack(XOR_MAPPED_ADDRESS, len(value)) + value


def binding_success(transaction_id: bytes, host: str, port: int) -> bytes:
    """The Binding Success Response (§7.3.1) to the request ``transaction_id``, with the
    request's source as XOR-MAPPED-ADDRESS (§15.2)."""
    return _encode(BINDING_SUCCESS, transaction_id, _xor_address(host, port, transaction_id))


def _address(value: bytes, transaction_id: bytes, xor: bool) -> tuple[str, int]:
    if len(value) < 4:
        raise StunError("address attribute too short")
    family = value[1]
    port = struct.unpack_from("!H", value, 2)[0]
    size = {_IPV4: 4, _IPV6: 16}.get(family)
    if size is None or len(value) != 4 + size:
        raise StunError(f"address attribute of family {family} and length {len(value)}")
    packed = value[4:]
    if xor:
        port ^= MAGIC_COOKIE >> 16
        key = _COOKIE + (transaction_id if size == 16 else b"")
        packed = bytes(a ^ b for a, b in zip(packed, key, strict=True))
    return str(ipaddress.ip_address(packed)), port


def decode(data: bytes) -> StunMessage:
    """Read a STUN message; :class:`StunError` when it is not a well-formed one (a bad
    header, length, attribute or FINGERPRINT). Unknown attributes are skipped (§7.3:
    comprehension-optional ones may be; a Binding carries no required one here)."""
    if not is_stun(data):
        raise StunError("not a STUN message (first two bits and magic cookie)")
    type_, length, _, tid = _HEADER.unpack_from(data)
    if length % 4 or HEADER_SIZE + length != len(data):
        raise StunError(f"STUN length {length} for a datagram of {len(data)} octets")
    if type_ & 0x3EEF != 0x0001:  # the method bits of Binding (§6), any class
        raise StunError(f"STUN message type {type_:#06x} is not a Binding")
    mapped: tuple[str, int] | None = None
    xor_mapped: tuple[str, int] | None = None
    offset = HEADER_SIZE
    while offset < len(data):
        if offset + 4 > len(data):
            raise StunError("truncated STUN attribute")
        kind, size = _ATTRIBUTE.unpack_from(data, offset)
        start = offset + 4
        end = start + size
        if end > len(data):
            raise StunError("STUN attribute longer than the message")
        value = data[start:end]
        if kind == FINGERPRINT:
            if size != 4 or end != len(data):
                raise StunError("FINGERPRINT not last or not 32 bits")
            # §15.5: over the message up to the attribute, the length covering it
            if struct.unpack("!I", value)[0] != _fingerprint(data[:offset]):
                raise StunError("FINGERPRINT does not match")
        elif kind == XOR_MAPPED_ADDRESS:
            xor_mapped = _address(value, tid, True)
        elif kind == MAPPED_ADDRESS:
            mapped = _address(value, tid, False)
        offset = end + (-size % 4)  # attributes are padded to 32 bits
    return StunMessage(type_, tid, xor_mapped or mapped)


class BindingTransaction:
    """The client transaction of one Binding Request over UDP (RFC 5389 §7.2.1), sans-I/O.

    The request is sent at 0 and retransmitted at RTO, 3 RTO, 7 RTO… (the interval doubling)
    until ``rc`` requests are out; then the client waits ``rm`` times RTO for a response.
    With the defaults (RTO 500 ms, Rc 7, Rm 16) that is 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s
    and a time-out at 39.5 s. Drive it with :meth:`start`, :meth:`timer` (at
    :attr:`deadline`) and :meth:`response`.
    """

    __slots__ = ("deadline", "failed", "rc", "request", "response_", "rm", "rto", "sent", "tid")

    def __init__(
        self, rto: float = 0.5, rc: int = 7, rm: int = 16, transaction_id: bytes | None = None
    ) -> None:
        self.rto, self.rc, self.rm = rto, rc, rm
        self.request, self.tid = binding_request(transaction_id)
        #: requests sent so far
        self.sent = 0
        #: when :meth:`timer` is due next (None: over)
        self.deadline: float | None = None
        self.failed = False
        self.response_: StunMessage | None = None

    @staticmethod
    def duration(rto: float = 0.5, rc: int = 7, rm: int = 16) -> float:
        """How long a transaction lasts before it times out: (2^(rc-1) - 1 + rm) RTO."""
        return (2.0 ** (rc - 1) - 1 + rm) * rto

    def start(self, now: float) -> bytes:
        """The first request to send; :attr:`deadline` is the first retransmission."""
        self.sent = 1
        self.deadline = now + self.rto
        return self.request

    def timer(self, now: float) -> bytes | None:
        """At :attr:`deadline`: the request to send again, or None when the transaction
        has timed out (:attr:`failed`) or is over."""
        if self.deadline is None:
            return None
        if self.sent >= self.rc:
            self.deadline = None
            self.failed = True
            return None
        self.sent += 1
        wait = self.rto * (self.rm if self.sent == self.rc else 2 ** (self.sent - 1))
        self.deadline = now + wait
        return self.request

    def response(self, message: StunMessage) -> bool:
        """A response received: True when it is this transaction's (then it is over)."""
        if message.transaction_id != self.tid or message.is_request or self.deadline is None:
            return False
        self.response_ = message
        self.deadline = None
        return True
