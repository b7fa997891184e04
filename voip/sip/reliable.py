"""Reliable provisional responses (RFC 3262, "100rel"), sans-I/O.

The UAS side, :class:`ReliableProvisionals`, belongs to one INVITE server transaction: it
numbers the reliable 1xx (RSeq, §3), keeps one of them unacknowledged at a time, tells
when to retransmit it (every T1, doubling) and when to give up (64·T1 without PRACK), and
matches each PRACK's RAck against it (no match: 481). The UAC side,
:class:`ProvisionalSequence`, belongs to one early dialog: it accepts a reliable 1xx only
in RSeq order and says what RAck the PRACK carries (§4).

No socket and no clock: the owner passes the time and arms one timer at
:meth:`ReliableProvisionals.next_deadline`, as with the transaction layer.
"""

from __future__ import annotations

import collections
import enum
import random
from dataclasses import dataclass

from voip.sip.errors import SipError
from voip.sip.fields import RAck
from voip.sip.message import Request, Response

__all__ = [
    "OPTION_TAG",
    "PrackTimeout",
    "ProvisionalSequence",
    "Rel100",
    "ReliableEvent",
    "ReliableProvisionals",
    "Retransmit",
    "Verdict",
    "is_reliable",
    "requested",
]

#: The option tag of RFC 3262 §7 (Require, Supported).
OPTION_TAG = "100rel"
#: RSeq starts anywhere from 1 to 2**31 - 1 (§3, §7.1) and never passes 2**32 - 1.
_RSEQ_MAX_START = 2**31 - 1


class Rel100(enum.Enum):
    """What a UA says about 100rel in a request (§4, §7)."""

    DISABLED = "disabled"  # neither Supported nor Require: 1xx stay unreliable
    SUPPORTED = "supported"  # "Supported: 100rel": the UAS may send them reliably
    REQUIRED = "required"  # "Require: 100rel": the UAS must send them reliably


def requested(request: Request) -> Rel100:
    """What ``request`` asks of the UAS's provisional responses (§3)."""
    if OPTION_TAG in request.require:
        return Rel100.REQUIRED
    if OPTION_TAG in request.supported:
        return Rel100.SUPPORTED
    return Rel100.DISABLED


def is_reliable(response: Response) -> bool:
    """A 101 to 199 with "Require: 100rel" and an RSeq (§4); a 100 is never reliable."""
    return (
        100 < response.status < 200 and OPTION_TAG in response.require and response.rseq is not None
    )


# --- the UAS side (§3) -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Retransmit:
    """Send this reliable provisional response again (§3: every T1, doubling)."""

    response: Response


@dataclass(frozen=True, slots=True)
class PrackTimeout:
    """No PRACK came for 64·T1: the UAS SHOULD reject the INVITE with a 5xx (§3)."""

    response: Response


ReliableEvent = Retransmit | PrackTimeout


@dataclass(eq=False, slots=True)
class _Unacknowledged:
    response: Response
    rseq: int
    interval: float  # until the next retransmission
    retransmit_at: float | None  # None over a reliable transport
    give_up_at: float


class ReliableProvisionals:
    """The reliable provisional responses to one INVITE, as its UAS sends them (§3).

    One is outstanding at a time: the next waits in a queue until the PRACK of the one
    before (§3 asks this of the first; keeping to it for all keeps RSeq order on the
    wire, so that no UAC discards one as out of order). ``retransmit`` is False over a
    reliable transport, where only the 64·T1 limit applies.
    """

    def __init__(
        self,
        invite: Request,
        *,
        t1: float = 0.5,
        retransmit: bool = True,
        first_rseq: int | None = None,
    ) -> None:
        self.cseq = invite.cseq.number
        self.t1 = t1
        self.retransmit = retransmit
        if first_rseq is None:
            first_rseq = random.randint(1, _RSEQ_MAX_START)
        self.next_rseq = first_rseq
        self.unacknowledged: _Unacknowledged | None = None
        self.queued: collections.deque[Response] = collections.deque()
        self.acknowledged = 0
        self.closed = False

    @property
    def outstanding(self) -> bool:
        """A reliable provisional response is sent or queued and not yet PRACKed."""
        return self.unacknowledged is not None or bool(self.queued)

    @property
    def unanswered_offer(self) -> bool:
        """An outstanding reliable response carries a session description: the 2xx must
        wait for its PRACK (§3)."""
        pending = [self.unacknowledged.response] if self.unacknowledged else []
        return any(response.body for response in (*pending, *self.queued))

    def send(self, response: Response, now: float) -> Response | None:
        """Make ``response`` reliable: "Require: 100rel" and the next RSeq (§3). Returns it
        when it goes out now, None when it waits for the PRACK of the one before."""
        if not 100 < response.status < 200:
            raise ValueError(f"only a 101 to 199 can be reliable, not {response.status}")
        if self.closed:
            raise SipError(500, "the INVITE has its final response")
        if OPTION_TAG not in response.require:
            response.headers.add("Require", OPTION_TAG)
        if self.unacknowledged is not None:
            self.queued.append(response)
            return None
        self._start(response, now)
        return response

    def _start(self, response: Response, now: float) -> None:
        rseq = self.next_rseq
        self.next_rseq += 1
        response.headers.set("RSeq", str(rseq))
        self.unacknowledged = _Unacknowledged(
            response,
            rseq,
            self.t1,
            now + self.t1 if self.retransmit else None,
            now + 64 * self.t1,
        )

    def prack(self, rack: RAck, now: float) -> tuple[Response, Response | None]:
        """A PRACK arrived with ``rack``: the response it acknowledges and the next one
        to send now, if one was waiting. Raises SipError 481 when it matches no
        unacknowledged reliable provisional response (§3: RSeq, CSeq and method)."""
        current = self.unacknowledged
        if (
            current is None
            or rack.rseq != current.rseq
            or rack.cseq != self.cseq
            or rack.method != "INVITE"
        ):
            raise SipError(481, f"RAck {rack} matches no unacknowledged provisional response")
        self.unacknowledged = None
        self.acknowledged += 1
        following = None
        if self.queued:
            following = self.queued.popleft()
            self._start(following, now)
        return current.response, following

    def close(self) -> None:
        """The INVITE got its final response: nothing more is retransmitted or sent."""
        self.closed = True
        self.unacknowledged = None
        self.queued.clear()

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timers` must next be called (None: nothing outstanding)."""
        current = self.unacknowledged
        if current is None:
            return None
        if current.retransmit_at is None:
            return current.give_up_at
        return min(current.retransmit_at, current.give_up_at)

    def handle_timers(self, now: float) -> list[ReliableEvent]:
        """What is due at ``now``: retransmissions, then the end of patience (§3)."""
        current = self.unacknowledged
        if current is None:
            return []
        if now >= current.give_up_at:
            self.close()
            return [PrackTimeout(current.response)]
        events: list[ReliableEvent] = []
        while current.retransmit_at is not None and current.retransmit_at <= now:
            current.interval *= 2  # §3: "starts at T1 seconds and doubles"
            current.retransmit_at += current.interval
            events.append(Retransmit(current.response))
        return events[:1]  # a late wake-up sends it once, not once per missed interval


# --- the UAC side (§4) -----------------------------------------------------------------------


class Verdict(enum.Enum):
    """What a UAC makes of a reliable provisional response (§4)."""

    NEW = "new"  # the next in order: process it and PRACK it
    RETRANSMISSION = "retransmission"  # RSeq seen already: discard, no PRACK
    OUT_OF_ORDER = "out of order"  # RSeq beyond the next: discard, no PRACK


@dataclass(slots=True)
class ProvisionalSequence:
    """The RSeq space of one early dialog, as the UAC keeps it (§4)."""

    last_rseq: int | None = None

    def receive(self, response: Response) -> tuple[Verdict, RAck | None]:
        """The verdict on a reliable 1xx, and the RAck its PRACK carries when it is new."""
        rseq = response.rseq
        if rseq is None:
            raise ValueError("a reliable provisional response has an RSeq")
        last = self.last_rseq
        if last is not None and rseq <= last:
            return Verdict.RETRANSMISSION, None
        if last is not None and rseq != last + 1:
            return Verdict.OUT_OF_ORDER, None
        self.last_rseq = rseq  # the first one sets the space (§4)
        cseq = response.cseq
        return Verdict.NEW, RAck(rseq, cseq.number, cseq.method)
