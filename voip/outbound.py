"""SIP Outbound (RFC 5626 §4), the user agent's side: one registered flow, kept alive and
mended when it fails.

A client-only agent (TCP, TLS or WebSocket, with no listener a registrar could reach) is
reachable only over the connection it opened. Outbound names that connection a *flow*: the
REGISTER's Contact carries the agent's ``+sip.instance`` (a URN that stays the same for the
agent's lifetime, §4.1), ``reg-id=1`` (its one flow) and ``;ob`` in the Contact URI, with
``Supported: path, outbound`` (§4.2). When the registrar's 2xx carries ``Require: outbound``
(§4.2.1) outbound is in use: the agent pings the flow with CRLF keep-alives (WebSocket
pings over WS/WSS) at 80 to 100 % of the 2xx's ``Flow-Timer`` (§4.4.1), its dialog-forming
requests and responses carry ``;ob`` in their Contact URI (§4.3), and when the flow fails (the
connection closed or reset, or a pong that did not come back) it registers again over a new
one after the back-off of §4.5.

:class:`Flow` is the state machine of one registration's flow; the registration drives it
(:mod:`voip.registration`). The agent hears of it as ``"flow_failed"`` (a
:class:`FlowFailed`) and ``"flow_recovered"`` (a :class:`FlowRecovered`).
"""

from __future__ import annotations

import asyncio
import enum
import random
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voip.registration import Registration
    from voip.sip import Response
    from voip.transport import Endpoint, TransportLayer

__all__ = [
    "DEFAULT_FLOW_TIMER",
    "DEFAULT_UDP_FLOW_TIMER",
    "OPTION_TAG",
    "REG_ID",
    "FlowFailed",
    "FlowRecovered",
    "FlowRecovery",
    "FlowState",
    "NatBindingChanged",
    "StunTimeout",
    "flow_timer",
    "instance_urn",
    "keepalive_delay",
    "outbound_in_use",
    "stun_keepalive",
    "stun_rto",
]

#: the option tag of RFC 5626 (§11.4)
OPTION_TAG = "outbound"
#: the one flow each registration has (§4.2: reg-id numbers the flows of an instance)
REG_ID = "1"
#: keep-alive interval (s) when the registrar's 2xx names no Flow-Timer (§4.4.1 leaves it to
#: the UA; 120 s for connection-oriented transports)
DEFAULT_FLOW_TIMER = 120.0
#: the same over UDP (§4.4.2: NAT bindings of UDP last far less; 29 s as §4.4.1 suggests)
DEFAULT_UDP_FLOW_TIMER = 29.0
#: RFC 5389 §7.2.1's defaults: the first retransmission time-out (s), requests sent, and
#: the wait after the last one in RTOs; a transaction lasts (2^(Rc-1) - 1 + Rm) = 79 RTO
STUN_RTO, STUN_RC, STUN_RM = 0.5, 7, 16


def keepalive_delay(interval: float) -> float:
    """§4.4.1: the next keep-alive goes out at a random 80 to 100 % of the interval."""
    return interval * random.uniform(0.8, 1.0)


def stun_rto(interval: float) -> float:
    """The RTO of a STUN keep-alive transaction on a flow kept alive every ``interval``
    seconds: RFC 5389's 500 ms, shortened so that the whole transaction (79 RTO, Rc=7,
    Rm=16) is over within 80 % of the interval, the earliest the next keep-alive is due;
    the flow's failure is then known before the registrar's Flow-Timer runs out (for the
    29 s default: RTO 294 ms, failure after 23.2 s)."""
    from voip.transport.stun import BindingTransaction

    return min(STUN_RTO, 0.8 * interval / BindingTransaction.duration(1.0, STUN_RC, STUN_RM))


class StunTimeout(TimeoutError):
    """No STUN Binding Response within the retransmission schedule (RFC 5389 §7.2.1): the
    flow over UDP failed (RFC 5626 §4.4.2)."""


class NatBindingChanged(ConnectionError):
    """The XOR-MAPPED-ADDRESS of a keep-alive's response differs from the previous one: a
    NAT between the agent and the registrar rebound the flow (RFC 5626 §4.4.2)."""


async def stun_keepalive(
    transport: TransportLayer, destination: Endpoint, rto: float
) -> tuple[str, int] | None:
    """One STUN keep-alive (RFC 5626 §4.4.2, §8) from the SIP UDP socket to ``destination``:
    the Binding Request retransmitted on RFC 5389 §7.2.1's schedule until its response
    comes; returns the response's mapped address, raises :class:`StunTimeout` when none
    came. The schedule is :class:`~voip.transport.stun.BindingTransaction`'s."""
    from voip.transport.stun import BindingTransaction, StunMessage

    loop = asyncio.get_running_loop()
    transaction = BindingTransaction(rto=rto, rc=STUN_RC, rm=STUN_RM)
    answered: asyncio.Future[StunMessage] = loop.create_future()

    def on_response(message: StunMessage) -> None:
        if transaction.response(message) and not answered.done():
            answered.set_result(message)

    transport.send_stun(transaction.start(loop.time()), destination, transaction.tid, on_response)
    try:
        while transaction.deadline is not None:
            wait = max(0.0, transaction.deadline - loop.time())
            done, _ = await asyncio.wait([answered], timeout=wait)
            if done:
                break
            again = transaction.timer(loop.time())
            if again is not None:
                transport.send_stun(again, destination, transaction.tid, on_response)
    finally:
        transport.forget_stun(transaction.tid)
    if not answered.done():
        answered.cancel()
        raise StunTimeout(
            f"no STUN Binding Response from {destination} after {transaction.sent} requests"
        )
    return answered.result().mapped


def instance_urn(instance_id: str | uuid.UUID | None = None) -> str:
    """The instance-id of §4.1, ``urn:uuid:…`` (RFC 4122): from ``instance_id`` (a UUID, its
    string, or a whole ``urn:uuid:`` URN), a new random one when None."""
    if instance_id is None:
        return f"urn:uuid:{uuid.uuid4()}"
    if isinstance(instance_id, uuid.UUID):
        return f"urn:uuid:{instance_id}"
    text = instance_id.strip()
    if text.lower().startswith("urn:"):
        if not text.lower().startswith("urn:uuid:"):
            return text  # another URN scheme (§4.1 allows any URN); kept as given
        text = text[len("urn:uuid:") :]
    return f"urn:uuid:{uuid.UUID(text)}"


def outbound_in_use(response: Response) -> bool:
    """§4.2.1: a registrar (or the edge proxy before it) that supports outbound says so with
    the ``outbound`` option tag in a Require header field of its 2xx; without it the
    registration is an ordinary one and the flow is not used for outbound. A bare
    ``Supported: outbound`` only says the server knows the extension."""
    return OPTION_TAG in (tag.lower() for tag in response.require)


def flow_timer(response: Response) -> float | None:
    """The ``Flow-Timer`` of a 2xx to REGISTER (§4.4.1, §10.4): the longest the server lets
    the flow go without a keep-alive (s); None when absent or not a positive integer."""
    value = response.headers.first("flow-timer")
    if value is None:
        return None
    try:
        seconds = int(value.strip())
    except ValueError:
        return None
    return float(seconds) if seconds > 0 else None


@dataclass(frozen=True, slots=True)
class FlowRecovery:
    """The back-off of §4.5 before a failed flow is formed again:
    ``wait-time = min(max-time, base-time * 2 ^ consecutive-failures)``, waited for a random
    50 to 100 % of it. ``base_time`` is for when every flow failed (the one flow of a
    registration: always so here; 30 s by default), ``max_time`` the bound (1800 s)."""

    base_time: float = 30.0
    max_time: float = 1800.0

    def wait_time(self, consecutive_failures: int) -> float:
        """The wait-time of §4.5 before the random factor."""
        return min(self.max_time, self.base_time * 2.0 ** min(consecutive_failures, 32))

    def delay(self, consecutive_failures: int) -> float:
        """How long to wait before forming the flow again: 50 to 100 % of the wait-time."""
        return self.wait_time(consecutive_failures) * random.uniform(0.5, 1.0)


class FlowState(enum.Enum):
    """A registration's flow (§4.2, §4.5)."""

    NONE = "none"  # not registered with outbound (yet, or the registrar does not use it)
    ACTIVE = "active"  # registered, Require: outbound seen, kept alive
    FAILED = "failed"  # the connection failed; waiting the back-off to form it again
    RECOVERING = "recovering"  # registering again over a new connection


@dataclass(frozen=True, slots=True)
class FlowFailed:
    """A registered flow failed (§4.5): ``endpoint`` is the registrar's end of the lost
    connection, ``error`` why, and a new flow is formed after ``retry_in`` seconds."""

    registration: Registration
    endpoint: Endpoint
    error: Exception
    retry_in: float


@dataclass(frozen=True, slots=True)
class FlowRecovered:
    """A registration's flow was formed again: registered over the new connection to
    ``endpoint`` after ``attempts`` tries."""

    registration: Registration
    endpoint: Endpoint
    attempts: int
