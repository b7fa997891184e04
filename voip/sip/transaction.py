"""SIP transactions (RFC 3261 §17, as amended by RFC 6026), sans-I/O.

The :class:`TransactionLayer` holds every client and server transaction of a user agent.
It is driven by three inputs, each given the current time in monotonic seconds:

- :meth:`TransactionLayer.send_request` and :meth:`TransactionLayer.respond` from the
  transaction user (the UA core above),
- :meth:`TransactionLayer.receive` for each message the transport delivers, and
- :meth:`TransactionLayer.handle_timers` when :meth:`TransactionLayer.next_deadline`
  has come,

and answers with events (:class:`Transmit` for the transport, the others for the
transaction user) that the driver takes with :meth:`TransactionLayer.take_events`.
No socket and no clock inside: tests run Timer B (64·T1 = 32 s) in virtual time.

Destinations are opaque to this layer (any hashable value the transport understands);
``reliable`` says whether the hop is a stream (TCP, TLS), which switches off
retransmissions and zeroes the wait timers D, I, J and K (§17.1.1.2, §17.2.1, §17.2.2).
"""

from __future__ import annotations

import builtins
import enum
import heapq
import itertools
from collections.abc import Hashable
from dataclasses import dataclass, field

from voip.sip.errors import SipError
from voip.sip.message import BRANCH_MAGIC_COOKIE, Message, Request, Response

__all__ = [
    "AckReceived",
    "AckTimeout",
    "CancelReceived",
    "ClientTransaction",
    "RequestReceived",
    "ResponseReceived",
    "ServerTransaction",
    "State",
    "StrayResponse",
    "Timers",
    "TransactionError",
    "TransactionEvent",
    "TransactionLayer",
    "TransactionTerminated",
    "TransactionTimeout",
    "Transmit",
    "TransportFailure",
    "make_ack",
    "make_cancel",
]


@dataclass(frozen=True, slots=True)
class Timers:
    """The timer base values of RFC 3261 Table 4 (seconds); all others derive from them."""

    t1: float = 0.5  # round-trip time estimate
    t2: float = 4.0  # longest retransmit interval for non-INVITE requests and INVITE responses
    t4: float = 5.0  # longest time a message stays in the network

    @property
    def transaction_timeout(self) -> float:
        """64·T1: timers B, F, H, J, L and M (§17.1.1.2, RFC 6026 §8.4)."""
        return 64 * self.t1


class State(enum.Enum):
    """Transaction states of RFC 3261 Figures 5 to 8, with RFC 6026's Accepted."""

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    ACCEPTED = "Accepted"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


class TransactionError(Exception):
    """A transaction-user call that the transaction's state does not allow."""


# --- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transmit:
    """Send ``data`` (the serialized ``message``) to ``destination``; a response from
    ``local``, where its request arrived (RFC 3581 §4), when the transport told."""

    message: Message
    data: bytes
    destination: Hashable
    retransmission: bool = False
    local: Hashable = None

    # The events' constructors are written out rather than made by @dataclass: compiled,
    # they are native code, where the generated ones stay interpreted (several a message).
    def __init__(
        self,
        message: Message,
        data: bytes,
        destination: Hashable,
        retransmission: bool = False,
        local: Hashable = None,
    ) -> None:
        object.__setattr__(self, "message", message)
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "destination", destination)
        object.__setattr__(self, "retransmission", retransmission)
        object.__setattr__(self, "local", local)


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request: ``transaction`` answers it (an ACK for a 2xx has none, see AckReceived)."""

    transaction: ServerTransaction
    request: Request

    def __init__(self, transaction: ServerTransaction, request: Request) -> None:
        object.__setattr__(self, "transaction", transaction)
        object.__setattr__(self, "request", request)


@dataclass(frozen=True, slots=True)
class AckReceived:
    """An ACK for a 2xx (§13.3.1.4, §17.2.3): it belongs to the dialog, not to a transaction.

    ``transaction`` is the INVITE server transaction whose 2xx it acknowledges, when that
    transaction is still in Accepted; None for an ACK that matches no transaction.
    """

    request: Request
    source: Hashable
    transaction: ServerTransaction | None

    def __init__(
        self, request: Request, source: Hashable, transaction: ServerTransaction | None
    ) -> None:
        object.__setattr__(self, "request", request)
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "transaction", transaction)


@dataclass(frozen=True, slots=True)
class CancelReceived:
    """A CANCEL (§9.2). ``invite`` is the server transaction it cancels, or None (→ 481)."""

    transaction: ServerTransaction
    request: Request
    invite: ServerTransaction | None


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response for a client transaction (every 1xx, the first final, every 2xx to INVITE)."""

    transaction: ClientTransaction
    response: Response


@dataclass(frozen=True, slots=True)
class StrayResponse:
    """A response matching no transaction, e.g. a 2xx resent after Timer M (§13.2.2.4)."""

    response: Response
    source: Hashable


@dataclass(frozen=True, slots=True)
class TransactionTimeout:
    """Timer B, F or H fired (§17.1.1.2, §17.1.2.2, §17.2.1): the TU sees a 408 or a lost ACK."""

    transaction: ClientTransaction | ServerTransaction


@dataclass(frozen=True, slots=True)
class AckTimeout:
    """The 2xx to an INVITE was retransmitted for 64·T1 without an ACK (§13.3.1.4): send BYE."""

    transaction: ServerTransaction


@dataclass(frozen=True, slots=True)
class TransportFailure:
    """The transport could not deliver this transaction's message (§17.1.4, §17.2.4)."""

    transaction: ClientTransaction | ServerTransaction
    # named through its module: compiled (mypyc), a dataclass's annotations are looked
    # up in the module's globals, where the builtins are not
    error: builtins.Exception


@dataclass(frozen=True, slots=True)
class TransactionTerminated:
    """The transaction reached Terminated and has left the layer."""

    transaction: ClientTransaction | ServerTransaction


TransactionEvent = (
    Transmit
    | RequestReceived
    | AckReceived
    | CancelReceived
    | ResponseReceived
    | StrayResponse
    | TransactionTimeout
    | AckTimeout
    | TransportFailure
    | TransactionTerminated
)


# --- transactions -------------------------------------------------------------------------


def _branch(message: Message) -> str:
    via = message.via
    if not via:
        raise SipError(400, "no Via header field")
    return via[0].branch or ""


@dataclass(eq=False, slots=True)
class _Transaction:
    """What client and server transactions share: state, timers and the last message sent."""

    request: Request
    destination: Hashable
    reliable: bool
    state: State
    key: tuple[str, ...] = ()
    #: timer name -> deadline; a timer is armed while it is in here
    timers: dict[str, float] = field(default_factory=dict)
    #: name -> current interval, for the doubling retransmission timers
    intervals: dict[str, float] = field(default_factory=dict)
    last_sent: Transmit | None = None
    last_response: Response | None = None

    def __init__(  # noqa: PLR0917  # positional, as @dataclass made it
        self,
        request: Request,
        destination: Hashable,
        reliable: bool,
        state: State,
        key: tuple[str, ...] = (),
        timers: dict[str, float] | None = None,
        intervals: dict[str, float] | None = None,
        last_sent: Transmit | None = None,
        last_response: Response | None = None,
    ) -> None:
        # Written out rather than made by @dataclass: compiled, these are native code (the
        # transactions' own call it first).
        self.request = request
        self.destination = destination
        self.reliable = reliable
        self.state = state
        self.key = key
        self.timers = {} if timers is None else timers
        self.intervals = {} if intervals is None else intervals
        self.last_sent = last_sent
        self.last_response = last_response

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def is_invite(self) -> bool:
        return self.request.method == "INVITE"

    @property
    def terminated(self) -> bool:
        return self.state is State.TERMINATED


@dataclass(eq=False, slots=True)
class ClientTransaction(_Transaction):
    """A client transaction (§17.1): the request it sends and the responses it gets."""

    ack: Request | None = None

    def __init__(  # noqa: PLR0917  # positional, as @dataclass made it
        self,
        request: Request,
        destination: Hashable,
        reliable: bool,
        state: State,
        key: tuple[str, ...] = (),
        timers: dict[str, float] | None = None,
        intervals: dict[str, float] | None = None,
        last_sent: Transmit | None = None,
        last_response: Response | None = None,
        ack: Request | None = None,
    ) -> None:
        # (explicitly: a slots dataclass is a new class, which a bare super() does not know)
        _Transaction.__init__(
            self,
            request,
            destination,
            reliable,
            state,
            key,
            timers,
            intervals,
            last_sent,
            last_response,
        )
        self.ack = ack

    def __repr__(self) -> str:
        return f"<ClientTransaction {self.method} {self.state.value} {self.key[0]}>"


@dataclass(eq=False, slots=True)
class ServerTransaction(_Transaction):
    """A server transaction (§17.2): ``destination`` is where its responses go, from
    ``local``, where the request arrived."""

    source: Hashable = None
    local: Hashable = None
    acked: bool = False
    #: (Call-ID, CSeq number, To tag) of an INVITE answered with a 2xx (§13.3.1.4)
    accepted_key: tuple[str, int, str] | None = None

    def __init__(  # noqa: PLR0917  # positional, as @dataclass made it
        self,
        request: Request,
        destination: Hashable,
        reliable: bool,
        state: State,
        key: tuple[str, ...] = (),
        timers: dict[str, float] | None = None,
        intervals: dict[str, float] | None = None,
        last_sent: Transmit | None = None,
        last_response: Response | None = None,
        source: Hashable = None,
        local: Hashable = None,
        acked: bool = False,
        accepted_key: tuple[str, int, str] | None = None,
    ) -> None:
        # (explicitly: a slots dataclass is a new class, which a bare super() does not know)
        _Transaction.__init__(
            self,
            request,
            destination,
            reliable,
            state,
            key,
            timers,
            intervals,
            last_sent,
            last_response,
        )
        self.source = source
        self.local = local
        self.acked = acked
        self.accepted_key = accepted_key

    def __repr__(self) -> str:
        return f"<ServerTransaction {self.method} {self.state.value} {self.key[0]}>"


AnyTransaction = ClientTransaction | ServerTransaction


def _client_key(message: Message) -> tuple[str, ...]:
    """§17.1.3: the branch of the top Via and the CSeq method."""
    return (_branch(message), message.cseq.method)


def _server_key(request: Request) -> tuple[str, ...]:
    """§17.2.3: branch, sent-by and method (ACK matches the INVITE); RFC 2543 keys otherwise."""
    vias = request.via
    if not vias:
        raise SipError(400, "no Via header field")
    via = vias[0]
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch or ""
    sent_by = f"{via.host}:{via.port or ''}"
    if branch.startswith(BRANCH_MAGIC_COOKIE):
        return (branch, sent_by, method)
    # §17.2.3 for RFC 2543 peers: Request-URI, To tag, From tag, Call-ID, CSeq number, top Via.
    # The To tag is left out so that an ACK (which carries the tag of our response) finds
    # the INVITE it acknowledges.
    return (
        "2543",
        str(request.uri),
        request.from_.tag or "",
        request.call_id,
        str(request.cseq.number),
        str(via),
        method,
    )


def _unparsed(message: Message) -> Message:
    """The same message as text only: its header fields (shared, they are immutable
    tuples) without the typed values parsed from them, which are parsed again if read."""
    if isinstance(message, Request):
        uri_text = message._uri_text if message._uri_text is not None else str(message.uri)
        return Request._parsed(message.method, uri_text, message.headers.copy(), message.body)
    assert isinstance(message, Response)
    return Response._parsed(
        message.status, message.reason_phrase, message.headers.copy(), message.body
    )


def _settle(transaction: ServerTransaction) -> None:
    """A server transaction that has sent its final response from now on only resends
    it and absorbs retransmissions, for up to 64·T1 (Timers H, J, L): it keeps its
    messages as text. At a thousand calls a second, tens of thousands of transactions
    wait at any time, and every object they hold is walked by each full run of the
    cyclic garbage collector, a pause in which nothing is received."""
    last = transaction.last_sent
    assert last is not None
    response = _unparsed(last.message)
    assert isinstance(response, Response)
    request = _unparsed(transaction.request)
    assert isinstance(request, Request)
    transaction.request = request
    transaction.last_response = response
    transaction.last_sent = Transmit(response, last.data, last.destination, last.retransmission)


def make_ack(invite: Request, response: Response) -> Request:
    """The ACK for a non-2xx final response, built by the client transaction (§17.1.1.3).

    Request-URI, Call-ID, From, CSeq number and the top Via (its branch too) are the
    INVITE's; To is the response's (with its tag); Route is the INVITE's, and so are the
    credentials, as in the ACKs of RFC 3665 (§3.8 F20, §3.9 F11), so that a proxy that
    checks them on every request lets the ACK through as it did the INVITE.
    """
    fields = [("Via", invite.headers.first("via") or "")]
    for name, key in (("From", "from"), ("To", None), ("Call-ID", "call-id")):
        value = invite.headers.first(key) if key else response.headers.first("to")
        fields.append((name, value or ""))
    fields.append(("CSeq", f"{invite.cseq.number} ACK"))
    fields.extend(("Route", value) for value in invite.headers.get_all("route"))
    for name in ("Authorization", "Proxy-Authorization"):
        fields.extend((name, value) for value in invite.headers.get_all(name))
    fields.append(("Max-Forwards", "70"))
    fields.append(("Content-Length", "0"))
    return Request("ACK", invite.uri, fields)


def make_cancel(invite: Request) -> Request:
    """The CANCEL for a pending INVITE (§9.1): same Request-URI, Call-ID, From, To, CSeq
    number and top Via as the INVITE, and its Route header fields."""
    fields = [("Via", invite.headers.first("via") or "")]
    for name in ("From", "To", "Call-ID"):
        fields.append((name, invite.headers.get(name) or ""))
    fields.append(("CSeq", f"{invite.cseq.number} CANCEL"))
    fields.extend(("Route", value) for value in invite.headers.get_all("route"))
    for name in ("Authorization", "Proxy-Authorization"):
        fields.extend((name, value) for value in invite.headers.get_all(name))
    fields.append(("Max-Forwards", "70"))
    fields.append(("Content-Length", "0"))
    return Request("CANCEL", invite.uri, fields)


# --- the layer ----------------------------------------------------------------------------


class TransactionLayer:
    """Every transaction of one user agent, their timers and their matching rules."""

    def __init__(self, timers: Timers | None = None) -> None:
        self.timers = timers or Timers()
        self.clients: dict[tuple[str, ...], ClientTransaction] = {}
        self.servers: dict[tuple[str, ...], ServerTransaction] = {}
        #: INVITE server transactions in Accepted, by (Call-ID, CSeq number, To tag), for the
        #: ACK of a 2xx, which carries a branch of its own (§17.2.3 note, §13.3.1.4)
        self._accepted: dict[tuple[str, int, str], ServerTransaction] = {}
        self._heap: list[tuple[float, int, _Transaction, str]] = []
        self._sequence = itertools.count()
        self._events: list[TransactionEvent] = []

    # --- driver interface -----------------------------------------------------------------

    def take_events(self) -> list[TransactionEvent]:
        """The events produced since the last call, in order."""
        events, self._events = self._events, []
        return events

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timers` must next be called (None: no timer is armed)."""
        heap = self._heap
        while heap:
            deadline, _, transaction, name = heap[0]
            if transaction.timers.get(name) == deadline:
                return deadline
            heapq.heappop(heap)  # a timer cancelled or re-armed since it was pushed
        return None

    def handle_timers(self, now: float) -> None:
        """Fire every timer whose deadline is ``now`` or earlier, in deadline order and as at
        its deadline: a retransmission timer is reset from when it was due, not from when
        the driver got to it, so that a busy loop that comes late sends the same
        retransmissions before Timer B, F, H or L as one on time (§17.1.1.2: T1, 2·T1, …
        from the request), late, instead of fewer."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, transaction, name = heapq.heappop(heap)
            if transaction.timers.get(name) != deadline:
                continue
            del transaction.timers[name]
            if isinstance(transaction, ClientTransaction):
                self._client_timer(transaction, name, deadline)
            else:
                assert isinstance(transaction, ServerTransaction)
                self._server_timer(transaction, name, deadline)

    def transport_error(self, destination: Hashable, error: Exception) -> None:
        """The transport failed to reach ``destination``: every transaction sending there fails
        (§17.1.4, §17.2.4)."""
        transactions: list[AnyTransaction] = [*self.clients.values()]
        transactions.extend(self.servers.values())
        for transaction in transactions:
            if transaction.destination == destination and not transaction.terminated:
                self._emit(TransportFailure(transaction, error))
                self._terminate(transaction)

    def __len__(self) -> int:
        return len(self.clients) + len(self.servers)

    # --- client side ----------------------------------------------------------------------

    def send_request(
        self, request: Request, destination: Hashable, now: float, *, reliable: bool = False
    ) -> ClientTransaction:
        """Start a client transaction for ``request`` (not ACK: an ACK for a 2xx is sent by
        the UA core itself, one for a non-2xx by the transaction)."""
        if request.method == "ACK":
            raise TransactionError("an ACK is not sent in a transaction of its own (§17.1)")
        key = _client_key(request)
        if key in self.clients:
            raise TransactionError(f"a client transaction with branch {key[0]} exists")
        invite = request.method == "INVITE"
        transaction = ClientTransaction(
            request, destination, reliable, State.CALLING if invite else State.TRYING, key
        )
        self.clients[key] = transaction
        self._transmit(transaction, request)
        t1 = self.timers.t1
        if not reliable:  # Timer A or E: retransmissions over unreliable transports only
            self._start(transaction, "A" if invite else "E", now, t1)
        self._arm(transaction, "B" if invite else "F", now + self.timers.transaction_timeout)
        return transaction

    def _client_response(
        self, transaction: ClientTransaction, response: Response, now: float
    ) -> None:
        status = response.status
        state = transaction.state
        if transaction.is_invite:
            if state in (State.CALLING, State.PROCEEDING):
                self._cancel(transaction, "A", "B")
                if status < 200:
                    transaction.state = State.PROCEEDING
                    self._deliver(transaction, response)
                elif status < 300:
                    # RFC 6026 §7.2: Accepted absorbs nothing, passes every 2xx up, and
                    # lives for Timer M so that retransmitted 2xx still find it.
                    transaction.state = State.ACCEPTED
                    self._arm(transaction, "M", now + self.timers.transaction_timeout)
                    self._deliver(transaction, response)
                else:
                    transaction.state = State.COMPLETED
                    transaction.ack = make_ack(transaction.request, response)
                    self._transmit(transaction, transaction.ack)
                    self._deliver(transaction, response)
                    self._wait(transaction, "D", now, 32.0)
            elif state is State.ACCEPTED:
                if 200 <= status < 300:
                    self._deliver(transaction, response)
            elif state is State.COMPLETED and status >= 300 and transaction.ack is not None:
                self._transmit(transaction, transaction.ack, retransmission=True)
            return
        if state in (State.TRYING, State.PROCEEDING):
            if status < 200:
                transaction.state = State.PROCEEDING
                self._deliver(transaction, response)
                return
            self._cancel(transaction, "E", "F")
            transaction.state = State.COMPLETED
            self._deliver(transaction, response)
            self._wait(transaction, "K", now, self.timers.t4)

    def _client_timer(self, transaction: ClientTransaction, name: str, now: float) -> None:
        if name in ("A", "E"):
            if name == "E" and transaction.state is State.PROCEEDING:
                interval = self.timers.t2  # §17.1.2.2: in Proceeding, every T2
            else:
                interval = transaction.intervals[name] * 2
                if name == "E":
                    interval = min(interval, self.timers.t2)
            transaction.intervals[name] = interval
            assert transaction.last_sent is not None
            self._transmit(transaction, transaction.request, retransmission=True)
            self._arm(transaction, name, now + interval)
        elif name in ("B", "F"):
            self._emit(TransactionTimeout(transaction))
            self._terminate(transaction)
        else:  # D, K, M: the wait for stray retransmissions is over
            self._terminate(transaction)

    # --- server side ----------------------------------------------------------------------

    def respond(self, transaction: ServerTransaction, response: Response, now: float) -> None:
        """Send ``response`` through the server transaction (§17.2.1, §17.2.2).

        For an INVITE, a 2xx moves the transaction to Accepted (RFC 6026), where this
        layer retransmits it as the UAS core must (§13.3.1.4) until the ACK comes.
        """
        status = response.status
        state = transaction.state
        if state not in (State.TRYING, State.PROCEEDING):
            if transaction.is_invite and state is State.ACCEPTED and 200 <= status < 300:
                self._transmit(transaction, response)  # a 2xx from another fork of ours
                return
            raise TransactionError(f"cannot send {status} in state {state.value}")
        transaction.last_response = response
        self._transmit(transaction, response)
        if status < 200:
            transaction.state = State.PROCEEDING
            return
        if transaction.is_invite:
            if status < 300:
                transaction.state = State.ACCEPTED
                key = transaction.accepted_key = self._dialog_key(transaction.request, response)
                self._accepted[key] = transaction
                if not transaction.reliable:
                    self._start(transaction, "2xx", now, self.timers.t1)
                self._arm(transaction, "L", now + self.timers.transaction_timeout)
            else:
                transaction.state = State.COMPLETED
                if not transaction.reliable:
                    self._start(transaction, "G", now, self.timers.t1)
                self._arm(transaction, "H", now + self.timers.transaction_timeout)
            _settle(transaction)
            return
        transaction.state = State.COMPLETED
        _settle(transaction)
        self._wait(transaction, "J", now, self.timers.transaction_timeout)

    def acknowledge(self, transaction: ServerTransaction) -> None:
        """Stop retransmitting a 2xx as if its ACK had come: the TU saw a later request in
        the dialog (a BYE, a re-INVITE), which the peer sends only after it got the 2xx,
        so the ACK was lost and retransmitting on would only draw an AckTimeout."""
        if transaction.state is State.ACCEPTED and not transaction.acked:
            transaction.acked = True
            self._cancel(transaction, "2xx")

    @staticmethod
    def _dialog_key(request: Request, response: Response) -> tuple[str, int, str]:
        return (request.call_id, request.cseq.number, response.to.tag or "")

    def _server_request(self, transaction: ServerTransaction, request: Request, now: float) -> None:
        """A request that matched an existing server transaction."""
        state = transaction.state
        if request.method == "ACK":
            if state is State.COMPLETED:
                # §17.2.1: the ACK for our non-2xx; absorb retransmissions of it afterwards
                transaction.state = State.CONFIRMED
                self._cancel(transaction, "G", "H")
                self._wait(transaction, "I", now, self.timers.t4)
            return
        # A retransmitted request: resend the last response (§17.2.1, §17.2.2).
        if state in (State.PROCEEDING, State.COMPLETED) and transaction.last_response:
            self._transmit(transaction, transaction.last_response, retransmission=True)

    def _server_timer(self, transaction: ServerTransaction, name: str, now: float) -> None:
        if name in ("G", "2xx"):
            interval = min(transaction.intervals[name] * 2, self.timers.t2)
            transaction.intervals[name] = interval
            assert transaction.last_response is not None
            self._transmit(transaction, transaction.last_response, retransmission=True)
            self._arm(transaction, name, now + interval)
        elif name == "H":
            self._emit(TransactionTimeout(transaction))
            self._terminate(transaction)
        elif name == "L":
            if not transaction.acked:
                self._emit(AckTimeout(transaction))
            self._terminate(transaction)
        else:  # I, J
            self._terminate(transaction)

    # --- receiving ------------------------------------------------------------------------

    def receive(
        self,
        message: Message,
        source: Hashable,
        now: float,
        *,
        reliable: bool = False,
        reply_to: Hashable = None,
        local: Hashable = None,
    ) -> None:
        """Match a message from the transport to its transaction (§17.1.3, §17.2.3).

        ``reply_to`` is where responses to a new request go (RFC 3261 §18.2.2 with
        RFC 3581, worked out by the transport); it defaults to ``source``. ``local`` is
        where the request arrived: its responses leave from there.
        Raises SipError when the message lacks what matching needs (Via, CSeq).
        """
        if isinstance(message, Response):
            client = self.clients.get(_client_key(message))
            if client is None or client.terminated:
                self._emit(StrayResponse(message, source))
            else:
                self._client_response(client, message, now)
            return
        assert isinstance(message, Request)
        request = message
        if request.method == "ACK":
            self._receive_ack(request, source, now)
            return
        key = _server_key(request)
        server = self.servers.get(key)
        if server is not None:
            self._server_request(server, request, now)
            return
        server = ServerTransaction(
            request,
            source if reply_to is None else reply_to,
            reliable,
            State.PROCEEDING if request.method == "INVITE" else State.TRYING,
            key,
            source=source,
            local=local,
        )
        self.servers[key] = server
        if request.method == "CANCEL":
            invite = self.servers.get((*key[:-1], "INVITE"))
            self._emit(CancelReceived(server, request, invite))
        else:
            self._emit(RequestReceived(server, request))

    def _receive_ack(self, request: Request, source: Hashable, now: float) -> None:
        server = self.servers.get(_server_key(request))
        if server is not None and server.state in (State.COMPLETED, State.CONFIRMED):
            self._server_request(server, request, now)
            return
        accepted = self._accepted.get((request.call_id, request.cseq.number, request.to.tag or ""))
        if accepted is not None and not accepted.terminated:
            if not accepted.acked:
                accepted.acked = True
                self._cancel(accepted, "2xx")
        self._emit(AckReceived(request, source, accepted))

    # --- helpers --------------------------------------------------------------------------

    def _emit(self, event: TransactionEvent) -> None:
        self._events.append(event)

    def _deliver(self, transaction: ClientTransaction, response: Response) -> None:
        transaction.last_response = response
        self._emit(ResponseReceived(transaction, response))

    def _transmit(
        self, transaction: _Transaction, message: Message, *, retransmission: bool = False
    ) -> None:
        last = transaction.last_sent
        local = transaction.local if isinstance(transaction, ServerTransaction) else None
        data = last.data if last is not None and last.message is message else bytes(message)
        event = Transmit(message, data, transaction.destination, retransmission, local)
        transaction.last_sent = event
        self._emit(event)

    def _arm(self, transaction: _Transaction, name: str, deadline: float) -> None:
        transaction.timers[name] = deadline
        heapq.heappush(self._heap, (deadline, next(self._sequence), transaction, name))

    def _start(self, transaction: _Transaction, name: str, now: float, interval: float) -> None:
        """Arm a retransmission timer that doubles from ``interval``."""
        transaction.intervals[name] = interval
        self._arm(transaction, name, now + interval)

    def _wait(
        self,
        transaction: ClientTransaction | ServerTransaction,
        name: str,
        now: float,
        delay: float,
    ) -> None:
        """Arm a wait timer (D, I, J, K): zero over reliable transports (§17)."""
        if transaction.reliable:
            self._terminate(transaction)
        else:
            self._arm(transaction, name, now + delay)

    @staticmethod
    def _cancel(transaction: _Transaction, *names: str) -> None:
        for name in names:
            transaction.timers.pop(name, None)

    def _terminate(self, transaction: AnyTransaction) -> None:
        if transaction.state is State.TERMINATED:
            return
        transaction.state = State.TERMINATED
        transaction.timers.clear()
        if isinstance(transaction, ClientTransaction):
            if self.clients.get(transaction.key) is transaction:
                del self.clients[transaction.key]
        else:
            assert isinstance(transaction, ServerTransaction)
            if self.servers.get(transaction.key) is transaction:
                del self.servers[transaction.key]
            key = transaction.accepted_key
            if key is not None and self._accepted.get(key) is transaction:
                del self._accepted[key]
        self._emit(TransactionTerminated(transaction))
