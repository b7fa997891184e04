"""The SIP user agent core (RFC 3261 §8, §12 to §15) on asyncio.

:class:`UserAgent` drives the sans-I/O transaction layer with the asyncio transports:
one timer handle for every transaction timer, the loop's monotonic clock, and a table
of what each client transaction's responses mean to the layer above (a registration,
a call, a plain request awaiting its final response). Requests go to the targets that
RFC 3263 gives for their next hop, failing over on timeout, transport error or 503;
401/407 challenges are answered from the agent's credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
import uuid
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pyee.asyncio import AsyncIOEventEmitter

from voip.outbound import FlowRecovery, instance_urn
from voip.rtp.engine import MediaEngine
from voip.rtp.ports import PortAllocator
from voip.rtp.srtp import SrtpMode
from voip.sip import (
    NameAddress,
    Request,
    Response,
    SipError,
    SipUri,
    UaPolicy,
    Uri,
    check_request,
    make_response,
    new_branch,
    new_call_id,
    new_tag,
    parse_uri,
)
from voip.sip.auth import AuthenticationFailed, Credentials, DigestClient, Verdict
from voip.sip.malformed import answerable, reason_phrase
from voip.sip.redirect import DEFAULT_MAX_REDIRECTS
from voip.sip.sessiontimer import SessionTimerPolicy, check_interval
from voip.sip.transaction import (
    AckReceived,
    AckTimeout,
    CancelReceived,
    ClientTransaction,
    RequestReceived,
    ResponseReceived,
    ServerTransaction,
    StrayResponse,
    Timers,
    TransactionEvent,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimeout,
    Transmit,
    TransportFailure,
    make_cancel,
)
from voip.transport import TRANSPORTS, UDP, Endpoint, TransportLayer
from voip.transport.addresses import Move
from voip.transport.dns import Target, locate
from voip.transport.endpoint import unbracket
from voip.transport.monitor import AddressMonitor
from voip.transport.via import stamp_received

if TYPE_CHECKING:
    from voip.call import Call
    from voip.challenger import Challenger
    from voip.registration import Binding, Registration

__all__ = ["ALLOWED_METHODS", "RequestFailed", "UserAgent"]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: What this agent answers (the Allow header field, RFC 3261 §20.5).
ALLOWED_METHODS = (
    "INVITE",
    "ACK",
    "CANCEL",
    "BYE",
    "OPTIONS",
    "INFO",
    "MESSAGE",
    "UPDATE",
    "REFER",
    "NOTIFY",
    "PRACK",
)
SUPPORTED = ("100rel", "replaces", "norefersub", "timer")
ACCEPT = "application/sdp"
DEFAULT_USER_AGENT = "voip-session/0.1"
#: RFC 4028 as §4 and §5 recommend: 1800 s asked for, 90 s at least, refresh by UPDATE
DEFAULT_SESSION_TIMERS = SessionTimerPolicy()


class RequestFailed(Exception):
    """A request got no 2xx: the final status (408 for a timeout, 503 when no target could
    be reached) and what the peer or the provider said."""

    def __init__(self, status: int, reason: str, response: Response | None = None) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.response = response


ResponseHandler = Callable[[ClientTransaction, Response], None]


@dataclass(eq=False, slots=True)
class _Pending:
    """A client transaction's owner: who hears its responses and how it fails over."""

    on_response: ResponseHandler
    targets: list[Target]
    attempt: int = 0
    auth_rounds: int = 0


@dataclass(slots=True)
class Counters:
    """What the agent saw; a running UA's health at a glance."""

    requests_in: int = 0
    responses_in: int = 0
    rejected: dict[int, int] = field(default_factory=dict)
    stray_responses: int = 0
    malformed: int = 0


class UserAgent(AsyncIOEventEmitter):
    """One SIP user agent: transports, transactions, dialogs and the calls on them.

    Events (pyee): ``"incoming_call"`` (a :class:`~voip.call.Call` to answer or reject),
    ``"transport_error"`` (the :class:`~voip.transport.Endpoint` and the error of a send
    or connection that failed: a lost TCP/TLS flow),
    ``"message"`` (a MESSAGE request out of dialog), ``"options"`` (an OPTIONS request,
    already answered), ``"rebound"`` (the new listening endpoints, once :meth:`rebind`
    has re-REGISTERed and re-INVITEd), ``"address_changed"`` (the old and the new local
    address, when the agent noticed by itself that its address left the host and is about
    to move: ``follow_address_changes``), ``"flow_failed"`` and ``"flow_recovered"``
    (a :class:`~voip.outbound.FlowFailed` or :class:`~voip.outbound.FlowRecovered`: a
    registration's RFC 5626 flow was lost, and formed again over a new connection).
    """

    def __init__(
        self,
        user: str = "voip",
        *,
        domain: str | None = None,
        display_name: str | None = None,
        credentials: Iterable[Credentials] = (),
        outbound_proxy: str | None = None,
        timers: Timers | None = None,
        policy: UaPolicy | None = None,
        tls_client: ssl.SSLContext | None = None,
        tls_server: ssl.SSLContext | None = None,
        resolver: Any = None,
        user_agent: str = DEFAULT_USER_AGENT,
        challenger: Challenger | None = None,
        session_timers: SessionTimerPolicy | None = DEFAULT_SESSION_TIMERS,
        keepalive_interval: float | None = None,
        overload_after: float | None = 0.5,
        rtp_ports: PortAllocator | tuple[int, int] | None = None,
        srtp: SrtpMode | str = SrtpMode.OFF,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
        transports: Iterable[str] | None = None,
        follow_address_changes: bool | None = None,
        outbound: bool | None = None,
        instance_id: str | uuid.UUID | None = None,
        flow_recovery: FlowRecovery | None = None,
    ) -> None:
        """``session_timers``: the RFC 4028 policy of every call (interval asked for,
        Min-SE, refresher, refresh method); None to take no part in session timers.

        ``keepalive_interval``: seconds between CRLF keep-alive pings (RFC 5626
        §4.4.1) on the TCP/TLS connections this agent opens (its outbound flows: to its
        registrar, proxy or peers); a pong not back within the transport's
        ``pong_timeout`` closes the connection and fails what was sent on it. Off (None)
        by default, because a server that does not answer pings would have its
        connections closed; set it (tens of seconds to a couple of minutes) for a server
        that answers them, as Kamailio does. A registered RFC 5626 flow (``outbound``) is
        pinged at the registrar's Flow-Timer whatever this says.

        ``overload_after``: while the agent is behind the UDP datagrams arriving (a drain
        left some waiting), a new INVITE that waited this long (seconds) in the socket is
        refused at once with 503 and Retry-After (RFC 3261 §21.5.4), before it costs a
        call, so that calls in progress finish and the peers' retransmissions do not pile
        up; None never refuses. The wait is the kernel's arrival stamp on Linux (elsewhere,
        how long the socket has not been emptied): a backlog read as fast as it grows is
        no overload. The default, T1 (0.5 s, when the peers start to retransmit), rides
        out a pause of the garbage collector or of a busy machine's scheduler, which sheds
        calls that a moment later would have been answered.

        ``rtp_ports``: the range (low, high) or :class:`PortAllocator` the calls' RTP and
        RTCP ports come from (even RTP ports; 40000 to 59999 by default).

        ``srtp``: the SRTP policy of calls (:class:`~voip.rtp.srtp.SrtpMode`): ``"off"``
        (plain RTP), ``"optional"`` (SDES keying, RFC 4568, when the peer agrees),
        ``"required"`` (plain offers refused with 488, plain answers end the call),
        ``"dtls"`` (DTLS-SRTP only, RFC 5763) or ``"dtls-preferred"`` (offers DTLS-SRTP,
        answers SDES or DTLS-SRTP offers alike); every mode but off answers a DTLS-SRTP
        offer with DTLS-SRTP. ``dial(srtp=...)`` overrides it per call.

        ``max_redirects``: how many 3xx responses in a row a call follows (RFC 3261
        §8.1.3.4, :mod:`voip.sip.redirect`): the INVITE goes again to the Contacts of a
        300, 301 or 302, highest ``q`` first, each target once; 0 follows none (the 3xx
        ends the call, its Contacts in the RequestFailed's response), as does
        ``dial(follow_redirects=False)`` for one call.

        ``transports``: the transports requests may leave by, most preferred first (the
        client's transports of RFC 3263 §4.1); by default those the agent listens on
        (UDP when it listens on none). TCP, TLS, WS and WSS need no listener: the agent
        opens the connection, puts its local address in Via and Contact, and takes the
        requests of the registration or dialog back on that connection (connection reuse
        as in RFC 5923 and the flows of RFC 5626 §4.2), so a client-only agent places
        calls and registers over TLS with ``tls_client`` and ``transports=("tls",)``, or
        through a SIP-over-WebSocket server (RFC 7118) with ``transports=("wss",)``; over
        WS and WSS that is so even when the agent listens on them too, since a WebSocket
        server never opens a connection toward its clients (RFC 7118 §5).

        ``follow_address_changes``: when the one address the agent listens on leaves the
        host (issue 5, item 8), find the new one and :meth:`rebind` to it without being
        asked (:mod:`voip.transport.monitor`: rtnetlink address events on Linux, else a
        probe every 5 s; a send failing with ``EADDRNOTAVAIL``, ``ENETUNREACH`` or
        ``EINVAL`` probes at once); the ``"address_changed"`` event and a log line say so.
        None (the default) follows when that address is a specific one that is not a
        loopback address (a wildcard has nothing to follow, and a loopback address does not
        leave); True follows a loopback address too; False never follows.

        ``outbound``: SIP Outbound (RFC 5626, :mod:`voip.outbound`) for registrations:
        the REGISTER's Contact carries ``+sip.instance``, ``reg-id=1`` and ``;ob`` with
        ``Supported: path, outbound``; once the registrar's 2xx requires outbound the
        flow is kept alive (its Flow-Timer) and, when it fails, registered again over a
        new connection after the back-off of ``flow_recovery``
        (:class:`~voip.outbound.FlowRecovery`, §4.5). None (the default) uses it over
        TCP and TLS when the agent does not listen on them (a client-only agent) and
        always over WS and WSS; True or False for every registration.
        ``instance_id``: the instance's UUID (§4.1; a :class:`uuid.UUID`, its string or
        the ``urn:uuid:`` URN) to keep across restarts; a new one per agent otherwise."""
        super().__init__()
        #: challenges incoming requests with 401/407 (RFC 3261 §22) when set
        self.challenger = challenger
        self.user = user
        self.domain = domain
        self.display_name = display_name
        self.auth = DigestClient(list(credentials))
        self.outbound_proxy = parse_uri(outbound_proxy) if outbound_proxy else None
        self.policy = policy or UaPolicy()
        self.resolver = resolver
        self.user_agent = user_agent
        self.session_timers = session_timers
        #: the audio codecs offered and accepted, in order of preference (None: all the
        #: media engine has, voip.negotiation.AUDIO_CODECS); "CN" among them offers RFC 3389
        #: comfort noise
        self.codecs: tuple[str, ...] | None = None
        #: the SRTP policy of calls (voip.rtp.srtp)
        self.srtp = SrtpMode(srtp)
        #: offer and accept rtcp-mux (RFC 5761: RTCP on the RTP port; with DTLS-SRTP one
        #: handshake instead of two, RFC 5764 §4.1)
        self.rtcp_mux = False
        #: 3xx responses in a row a call follows (voip.sip.redirect); 0: none
        self.max_redirects = max_redirects
        for name in transports or ():
            if name not in TRANSPORTS:
                raise ValueError(f"unknown transport {name!r}: expected one of {TRANSPORTS}")
        self.transports = tuple(transports) if transports else None
        self.overload_after = overload_after
        self.transactions = TransactionLayer(timers)
        self.transport = TransportLayer(
            self._on_message,
            on_malformed=self._on_malformed,
            on_error=self._on_transport_error,
            tls_client=tls_client,
            tls_server=tls_server,
            keepalive_interval=keepalive_interval,
        )
        self.counters = Counters()
        self.listening: list[Endpoint] = []
        self.calls: dict[tuple[str, str], Call] = {}  # (Call-ID, local tag) -> call
        #: incoming calls by (Call-ID, From tag, CSeq number): merged requests (§8.2.2.2)
        self.invites: dict[tuple[str, str, int], Call] = {}
        self.registrations: list[Registration] = []
        #: RTP ports and the media clock of every call (``rtp_ports``: a range of ports)
        self.media = MediaEngine(rtp_ports)
        self._pending: dict[ClientTransaction, _Pending] = {}
        self._server_owner: dict[ServerTransaction, Call] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._closed = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self.follow_address_changes = follow_address_changes
        #: watches the local address (``follow_address_changes``), once listening
        self.address_monitor: AddressMonitor | None = None
        self._move_to: str | None = None
        self._moving = asyncio.Lock()
        #: RFC 5626: None decides per registration (see ``__init__``)
        self.outbound = outbound
        #: the ``+sip.instance`` of this agent's registrations (RFC 5626 §4.1)
        self.instance_id = instance_urn(instance_id)
        #: the back-off before a failed flow is formed again (RFC 5626 §4.5)
        self.flow_recovery = flow_recovery or FlowRecovery()

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def listen(
        self, transport: str = "udp", host: str = "127.0.0.1", port: int = 0
    ) -> Endpoint:
        """Listen on ``transport`` at ``host``:``port`` (0: a free port); the address bound."""
        endpoint = await self.transport.listen(transport, host, port)
        self.listening.append(endpoint)
        if self.domain is None:
            self.domain = endpoint.host
        self._watch_address()
        return endpoint

    def _watch_address(self) -> None:
        """Start following the local address (``follow_address_changes``) when the agent
        listens on one specific address."""
        if self.address_monitor is not None or self.follow_address_changes is False:
            return
        hosts = {endpoint.host for endpoint in self.listening}
        if len(hosts) != 1:
            return
        (host,) = hosts
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return
        if address.is_unspecified or (address.is_loopback and not self.follow_address_changes):
            return
        self.address_monitor = AddressMonitor(host, peers=self._peers, on_move=self._on_move)
        self.address_monitor.start()

    def _peers(self) -> list[str]:
        """The hosts the agent talks to (its proxy, registrars, dialogs' next hops, open
        connections): where a route is probed from after its address left."""
        uris: list[Uri] = [self.outbound_proxy] if self.outbound_proxy is not None else []
        uris += [registration.registrar for registration in self.registrations]
        uris += [call.dialog.next_hop() for call in self.calls.values() if call.dialog]
        hosts = [unbracket(uri.host) for uri in uris if isinstance(uri, SipUri)]
        return hosts + [c.remote.host for c in self.transport.connections if c.remote.host]

    def _on_move(self, move: Move) -> None:
        """The local address left the host and ``move.new`` replaces it (the monitor's
        decision): rebind to it, one move at a time, the latest one winning."""
        self.emit("address_changed", move.old, move.new)
        self._move_to = move.new
        self.spawn(self._follow())

    async def _follow(self) -> None:
        async with self._moving:
            host, self._move_to = self._move_to, None
            if host is not None:
                await self.rebind(host)

    async def rebind(self, host: str) -> list[Endpoint]:
        """Move the agent to the local address ``host`` (its interface or network changed):
        the listeners, UDP sockets and connections on the old address are closed and
        the same transports listen on ``host`` (the same ports when free); each call's
        RTP goes on from ``host``; each registration re-REGISTERs, binding the new
        Contact and removing the old (RFC 3261 §10.2.2); then each confirmed dialog is
        refreshed by a re-INVITE with the new Contact and SDP
        (:meth:`Call.refresh_target <voip.call.Call.refresh_target>`), after which a
        session resynchronizes its media (:mod:`voip.session`, issue 5 item 8). A
        re-INVITE that fails ends its call as any failed re-INVITE would. Returns the
        new listening endpoints."""
        host = unbracket(host)
        if self.address_monitor is not None:
            self.address_monitor.rebound(host)
        moved = list(self.listening)
        old_hosts = {endpoint.host for endpoint in moved}
        self.listening = []
        for old in old_hosts:
            await self.transport.unlisten(old)
        for endpoint in moved:
            try:
                await self.listen(endpoint.transport, host, endpoint.port)
            except OSError:  # the port is taken on the new address: another one
                await self.listen(endpoint.transport, host, 0)
        if self.domain in old_hosts:
            self.domain = host  # it was our address, not a domain of ours
        calls = list(dict.fromkeys(self.calls.values()))
        for call in calls:
            call.rebind_media(host)  # media first: RTP resumes before the signalling
        registrations = list(self.registrations)
        renewed = await asyncio.gather(
            *(registration.rebind() for registration in registrations), return_exceptions=True
        )
        for registration, outcome in zip(registrations, renewed, strict=True):
            if isinstance(outcome, BaseException):
                log.warning("re-REGISTER of %s after the move failed: %s", registration, outcome)
        results = await asyncio.gather(
            *(call.refresh_target() for call in calls), return_exceptions=True
        )
        for call, result in zip(calls, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("re-INVITE of %s after the move failed: %s", call, result)
        self.emit("rebound", list(self.listening))
        return list(self.listening)

    async def close(self, *, timeout: float = 5.0) -> None:
        """Hang up every call, un-register every registration, then close the transports."""
        if self._closed:
            return
        self._closed = True
        if self.address_monitor is not None:
            self.address_monitor.close()
        jobs = [call.hangup() for call in list(self.calls.values())]
        jobs += [registration.unregister() for registration in list(self.registrations)]
        if jobs:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*jobs, return_exceptions=True), timeout=timeout
                )
        for task in list(self._tasks):
            task.cancel()
        if self._timer is not None:
            self._timer.cancel()
        for call in list(self.calls.values()):
            if call.media is not None:
                call.media.close()
        self.media.close()
        await self.transport.close()

    def resources(self) -> dict[str, int]:
        """What the agent holds now: for leak checks and health reports."""
        return {
            "calls": len(self.calls),
            "incoming": len(self.invites),
            "client_transactions": len(self.transactions.clients),
            "server_transactions": len(self.transactions.servers),
            "pending_requests": len(self._pending),
            "server_owners": len(self._server_owner),
            "jobs": len(self._tasks),
            "sockets": self.transport.sockets_open,
            "rtp_ports": len(self.media.ports.in_use),
        }

    async def __aenter__(self) -> UserAgent:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def spawn(self, coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run a background job that the agent cancels when it closes."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background job failed", exc_info=task.exception())

    # --- addresses ------------------------------------------------------------------------

    def aor(self) -> NameAddress:
        """Our address-of-record, for From and To (RFC 3261 §8.1.1.3)."""
        uri = SipUri(host=self.domain or "127.0.0.1", user=self.user)
        return NameAddress(uri, self.display_name)

    def local_endpoint(self, target: Target) -> Endpoint:
        return self.transport.local_endpoint(
            target.transport, self._endpoint(target), server_name=target.server_name
        )

    def via_for(self, target: Target) -> str:
        """Our Via sent-by for a request to ``target``: the socket actually used, and
        ``rport`` (RFC 3581 §3) so that replies come back through NAT."""
        local = self.local_endpoint(target)
        host = f"[{local.host}]" if ":" in local.host else local.host
        return f"SIP/2.0/{local.transport.upper()} {host}:{local.port};rport"

    def uses_outbound(self, target: Target) -> bool:
        """Whether a registration through ``target`` uses SIP Outbound (RFC 5626): the
        ``outbound`` setting, by default over TCP/TLS without a listener for them and
        over WS/WSS (a WebSocket client is reached only over its connection)."""
        if self.outbound is not None:
            return self.outbound
        if target.transport in ("ws", "wss"):
            return True
        if target.transport in ("tcp", "tls"):
            return not any(e.transport == target.transport for e in self.listening)
        return False

    def _outbound_flow_to(self, target: Target) -> bool:
        """A registration's flow toward ``target`` is in use for outbound (RFC 5626 §4.2.1)."""
        endpoint = self._endpoint(target)
        return any(r.outbound_in_use and r.flow == endpoint for r in self.registrations)

    def contact_for(
        self, target: Target, *, user: str | None = None, ob: bool | None = None
    ) -> NameAddress:
        """A Contact reaching this agent over the transport used for ``target``. ``ob``
        (RFC 5626 §4.3, §5.4): the ``;ob`` URI parameter asks for requests in the dialog to
        come back over the flow; by default set when an outbound registration's flow
        goes to ``target``."""
        local = self.local_endpoint(target)
        host = f"[{local.host}]" if ":" in local.host else local.host
        scheme = "sips" if local.transport == "tls" else "sip"
        params: dict[str, str | None] = {}
        if local.transport in ("tcp", "ws", "wss"):
            # RFC 7118 §5.2: ";transport=ws" (and "wss", which Kamailio and the toolkit
            # read as WebSocket over TLS) reaches this agent back over its connection.
            params["transport"] = local.transport
        if ob if ob is not None else self._outbound_flow_to(target):
            params["ob"] = None
        uri = SipUri(
            host=host, user=user or self.user, port=local.port, params=params, scheme=scheme
        )
        return NameAddress(uri)

    @staticmethod
    def _endpoint(target: Target) -> Endpoint:
        return Endpoint(target.transport, target.host, target.port)

    # --- resolving next hops (RFC 3263) ------------------------------------------------------

    async def resolve(self, uri: Uri) -> list[Target]:
        """The targets for ``uri`` in the order to try them (RFC 3263 §4)."""
        if not isinstance(uri, SipUri):
            raise RequestFailed(416, f"cannot route to {uri}")
        supported = self.client_transports
        return await locate(uri, resolver=self.resolver, supported=supported)  # type: ignore[arg-type]

    @property
    def client_transports(self) -> tuple[str, ...]:
        """The transports requests may use, most preferred first: ``transports`` (see
        ``__init__``), by default those listened on, else UDP. A target over another
        (a URI's ``transport=``, ``sips:``) cannot be reached (RFC 3263 §4.1)."""
        listened = tuple(dict.fromkeys(e.transport for e in self.listening))
        return self.transports or listened or (UDP,)

    def first_hop(self, request: Request) -> Uri:
        """The URI that decides where a request goes first (RFC 3261 §8.1.2)."""
        routes = request.route
        if routes:
            return routes[0].uri
        if self.outbound_proxy is not None:
            return self.outbound_proxy
        return request.uri

    # --- building requests -------------------------------------------------------------------

    def new_request(
        self,
        method: str,
        uri: Uri,
        *,
        to: NameAddress | None = None,
        from_tag: str | None = None,
        call_id: str | None = None,
        cseq: int = 1,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Request:
        """A request outside any dialog (§8.1.1); Via and Contact are filled when sent."""
        local = self.aor()
        local.params["tag"] = from_tag or new_tag()
        fields: list[tuple[str, str]] = [
            ("Max-Forwards", "70"),
            ("From", str(local)),
            ("To", str(to or NameAddress(uri))),
            ("Call-ID", call_id or new_call_id()),
            ("CSeq", f"{cseq} {method}"),
            ("User-Agent", self.user_agent),
        ]
        if self.outbound_proxy is not None:
            fields.append(("Route", f"<{self.outbound_proxy}>"))
        fields.extend(headers)
        if body and content_type:
            fields.append(("Content-Type", content_type))
        fields.append(("Content-Length", str(len(body))))
        return Request(method, uri, fields, body)

    # --- sending requests ----------------------------------------------------------------------

    async def send_request(
        self, request: Request, on_response: ResponseHandler, *, targets: list[Target] | None = None
    ) -> ClientTransaction:
        """Send ``request`` in a new client transaction; every response goes to
        ``on_response``. The agent itself fails over to the next target (timeout, transport
        error, 503) and answers 401/407 challenges, starting new transactions as needed:
        ``on_response`` then hears the responses of those too, and a final 408 or 503 when
        every target failed."""
        if targets is None:
            targets = await self.resolve(self.first_hop(request))
        if not targets:
            raise RequestFailed(503, f"no target for {self.first_hop(request)}")
        pending = _Pending(on_response, targets)
        self.auth.preauthorize(request)  # realms that challenged us before (RFC 7616 §3.4)
        return self._start(request, pending)

    def _start(self, request: Request, pending: _Pending) -> ClientTransaction:
        target = pending.targets[pending.attempt]
        self._stamp(request, target)
        transaction = self.transactions.send_request(
            request, self._endpoint(target), self.now(), reliable=target.transport != "udp"
        )
        self._pending[transaction] = pending
        self._pump()
        return transaction

    def _stamp(self, request: Request, target: Target) -> None:
        """Top Via and Contact for the socket the request leaves by (RFC 3261 §18.1.1).
        A REGISTER gets no Contact here: its Contact is the binding its registration
        chose, and a query for the bindings carries none (§10.2.3)."""
        request.headers.remove("via")
        request.headers.insert("Via", f"{self.via_for(target)};branch={new_branch()}")
        if request.method in ("INVITE", "SUBSCRIBE", "REFER", "UPDATE") and not (
            request.headers.first("contact")
        ):
            request.headers.add("Contact", str(self.contact_for(target)))

    async def request(self, request: Request, *, targets: list[Target] | None = None) -> Response:
        """Send ``request`` and wait for its final response; a non-2xx raises RequestFailed."""
        return (await self.exchange(request, targets=targets))[1]

    async def exchange(
        self, request: Request, *, targets: list[Target] | None = None
    ) -> tuple[Request, Response]:
        """:meth:`request`, with the request that drew the final response: ``request``
        itself, or the agent's re-send of it with credentials (CSeq one more, §22.2) or
        to another target. A non-2xx raises RequestFailed."""
        done: asyncio.Future[tuple[Request, Response]] = self.loop.create_future()

        def on_response(transaction: ClientTransaction, response: Response) -> None:
            if response.status >= 200 and not done.done():
                done.set_result((transaction.request, response))

        await self.send_request(request, on_response, targets=targets)
        sent, response = await done
        if response.status >= 300:
            raise RequestFailed(response.status, response.reason_phrase, response)
        return sent, response

    def send_ack(self, ack: Request, target: Target) -> None:
        """An ACK for a 2xx goes straight to the transport, outside any transaction (§13.2.2.4)."""
        self._stamp(ack, target)
        self.transport.send(ack, self._endpoint(target), server_name=target.server_name)

    def resend(self, message: Request, target: Target) -> None:
        """Send ``message`` again exactly as before, outside any transaction: an ACK for a
        retransmitted 2xx (§13.2.2.4)."""
        self.transport.send(message, self._endpoint(target), server_name=target.server_name)

    def send_cancel(self, invite: Request, targets: list[Target]) -> ClientTransaction:
        """CANCEL ``invite`` (§9.1): in a client transaction of its own, to where the
        INVITE went (the INVITE's transaction's destination while it is alive, else the
        first of ``targets``)."""
        cancel = make_cancel(invite)
        branch = invite.via[0].branch or ""
        invite_transaction = self.transactions.clients.get((branch, "INVITE"))
        if invite_transaction is not None:
            destination, reliable = invite_transaction.destination, invite_transaction.reliable
        else:
            destination, reliable = self._endpoint(targets[0]), targets[0].transport != "udp"
        transaction = self.transactions.send_request(
            cancel, destination, self.now(), reliable=reliable
        )
        self._pump()
        return transaction

    def respond(self, transaction: ServerTransaction, response: Response) -> None:
        if not response.headers.first("user-agent"):
            response.headers.add("Server", self.user_agent)
        self.transactions.respond(transaction, response, self.now())
        if response.status >= 200 and transaction.request.method != "INVITE":
            # Answered: nothing more reaches the owner of a non-INVITE transaction, which
            # need not be kept for the transaction's wait (Timer J, 64·T1).
            self._server_owner.pop(transaction, None)
        self._pump()

    def release(self, transaction: ServerTransaction) -> None:
        """The owner of ``transaction`` (a call that ended) hears nothing more of it."""
        self._server_owner.pop(transaction, None)

    # --- the event pump --------------------------------------------------------------------------

    def _pump(self) -> None:
        """Dispatch what the transaction layer produced, then see that its one timer
        fires by the layer's next deadline. A timer armed for earlier than that stays:
        it fires, finds nothing due and arms the next one, where moving it at every
        message cost a timer handle made and one cancelled (a call's messages move the
        next deadline back and forth several times)."""
        layer = self.transactions
        while events := layer.take_events():
            for event in events:
                self._dispatch(event)
        deadline = layer.next_deadline()
        if deadline is not None and (self._timer_at is None or deadline < self._timer_at):
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self.loop.call_at(deadline, self._on_timer)
            self._timer_at = deadline

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        self.transactions.handle_timers(self.now())
        self._pump()

    def _dispatch(self, event: TransactionEvent) -> None:
        if isinstance(event, Transmit):
            self.transport.send(event.data, event.destination, local=event.local)  # type: ignore[arg-type]
        elif isinstance(event, ResponseReceived):
            self._on_response(event.transaction, event.response)
        elif isinstance(event, RequestReceived):
            self._on_request(event.transaction, event.request)
        elif isinstance(event, AckReceived):
            # §13.2.2.4, §17.2.3: an ACK acknowledges the 2xx of the INVITE with its CSeq
            # number; one that matches no 2xx of ours (another CSeq, a To tag we did not
            # give) acknowledges nothing, and the 2xx is retransmitted on
            call = self._call_for(event.request)
            if call is not None and event.transaction is not None:
                call.on_ack(event.request)
        elif isinstance(event, CancelReceived):
            self._on_cancel(event)
        elif isinstance(event, StrayResponse):
            self._on_stray(event.response)
        elif isinstance(event, TransactionTimeout | TransportFailure):
            self._on_failure(event)
        elif isinstance(event, AckTimeout):
            owner = self._server_owner.get(event.transaction)
            if owner is not None:
                owner.on_ack_timeout()
        elif isinstance(event, TransactionTerminated):
            transaction = event.transaction
            if isinstance(transaction, ClientTransaction):
                self._pending.pop(transaction, None)
            else:
                self._server_owner.pop(transaction, None)

    # --- client side: responses, failover, authentication ----------------------------------------

    def _on_response(self, transaction: ClientTransaction, response: Response) -> None:
        self.counters.responses_in += 1
        pending = self._pending.get(transaction)
        if pending is None:
            return
        status = response.status
        if status == 503 and self._fail_over(transaction, pending):
            return  # RFC 3263 §4.3: a 503 sends the request to the next target
        if status in (401, 407) and pending.auth_rounds < 3:
            try:
                retry = self.auth.authorize(transaction.request, response)
            except AuthenticationFailed as error:
                log.info("%s not authorized: %s", transaction.request.method, error)
            else:
                pending.auth_rounds += 1
                self._retry(transaction, retry, pending)
                return
        pending.on_response(transaction, response)

    def _retry(self, old: ClientTransaction, request: Request, pending: _Pending) -> None:
        """Resend as a new transaction; the owner learns the new one from its responses."""
        self._pending.pop(old, None)
        self._start(request, pending)

    def _fail_over(self, transaction: ClientTransaction, pending: _Pending) -> bool:
        if pending.attempt + 1 >= len(pending.targets):
            return False
        pending.attempt += 1
        retry = transaction.request
        self._retry(transaction, _copy_request(retry), pending)
        return True

    def _on_failure(self, event: TransactionTimeout | TransportFailure) -> None:
        transaction = event.transaction
        if isinstance(transaction, ServerTransaction):
            owner = self._server_owner.get(transaction)
            if owner is not None:
                owner.on_server_failure(transaction)
            return
        pending = self._pending.get(transaction)
        if pending is None:
            return
        if self._fail_over(transaction, pending):
            return
        status, reason = (
            (408, "Request Timeout")
            if isinstance(event, TransactionTimeout)
            else (503, f"Service Unavailable ({event.error})")
        )
        response = make_response(transaction.request, status, reason)
        pending.on_response(transaction, response)

    def _on_transport_error(self, destination: Endpoint, error: Exception) -> None:
        self.transactions.transport_error(destination, error)
        self._pump()
        if self.address_monitor is not None and isinstance(error, OSError) and error.errno:
            self.address_monitor.send_failed(error.errno)  # our address may be gone
        # a lost TCP/TLS flow: the layers above may mend it (voip.session's recovery)
        self.emit("transport_error", destination, error)

    def _on_stray(self, response: Response) -> None:
        self.counters.stray_responses += 1
        if 200 <= response.status < 300 and response.cseq.method == "INVITE":
            call = self.calls.get((response.call_id, response.from_.tag or ""))
            if call is not None:
                call.on_stray_2xx(response)

    # --- server side ----------------------------------------------------------------------------

    def _on_message(self, message: Request | Response, source: Endpoint, local: Endpoint) -> None:
        reliable = source.transport != "udp"
        try:
            self.transactions.receive(
                message,
                source,
                self.now(),
                reliable=reliable,
                reply_to=(
                    self.transport.response_destination(message, source)
                    if isinstance(message, Request)
                    else None
                ),
                local=local,
            )
        except SipError as error:
            # Without what transaction matching needs (a readable Via and CSeq).
            self.counters.malformed += 1
            if isinstance(message, Request):
                self._answer_statelessly(message, error, source, local)
        self._pump()

    def _on_malformed(
        self, data: bytes, error: SipError, source: Endpoint, local: Endpoint
    ) -> None:
        """A message that could not be parsed: a response is dropped (§18.1.2); a request
        gets the error's status, with a reason phrase saying what was wrong, if enough of
        it can be read to answer (RFC 4475 §3.1.2)."""
        self.counters.malformed += 1
        log.debug("malformed message from %s: %s", source, error.reason)
        request = None if error.is_response else answerable(data)
        if request is not None:
            self._answer_statelessly(request, error, source, local)

    def _answer_statelessly(
        self, request: Request, error: SipError, source: Endpoint, local: Endpoint
    ) -> None:
        """Answer outside any transaction (§8.2.6): back where the top Via says (stamped
        with ``received``/``rport`` as the transport would, RFC 3581 §4), or to the source
        when the Via cannot be read; from the socket the request arrived on."""
        if request.method == "ACK":
            return
        self.counters.rejected[error.status] = self.counters.rejected.get(error.status, 0) + 1
        try:
            stamp_received(request, source)
            destination = self.transport.response_destination(request, source)
        except SipError:
            destination = source
        with contextlib.suppress(SipError):
            response = make_response(
                request, error.status, reason_phrase(error.reason), headers=error.headers
            )
            self.transport.send(response, destination, local=local)

    def _reject(
        self,
        transaction: ServerTransaction,
        status: int,
        reason: str | None = None,
        *,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.counters.rejected[status] = self.counters.rejected.get(status, 0) + 1
        if reason is not None:
            reason = reason_phrase(reason)
        self.respond(
            transaction, make_response(transaction.request, status, reason, headers=headers)
        )

    def _on_request(self, transaction: ServerTransaction, request: Request) -> None:
        self.counters.requests_in += 1
        if request.method == "INVITE" and self._overloaded() and _starts_a_call(request):
            # RFC 3261 §21.5.4: shed a new call before it costs anything; requests in
            # dialogs (ACK, BYE, re-INVITE) go on, so calls in progress can end
            self._reject(transaction, 503, "Overloaded", headers=[("Retry-After", "1")])
            return
        try:
            check_request(request, self.policy)
        except SipError as error:
            self._reject(transaction, error.status, error.reason, headers=error.headers)
            return
        if self._closed:
            self._reject(transaction, 503, "Shutting Down")
            return
        if request.to.tag:
            call = self._call_for(request)
            if call is None:
                self._reject(transaction, 481, "Call/Transaction Does Not Exist")
                return
            verdict = self._authorize(transaction, request)
            if verdict is not None and not verdict.authorized:
                return
            self._server_owner[transaction] = call
            call.on_request(transaction, request)
            return
        verdict = self._authorize(transaction, request)
        if verdict is not None and not verdict.authorized:
            return
        method = request.method
        if method == "INVITE":
            self._incoming_call(transaction, request, verdict.username if verdict else None)
        elif method == "OPTIONS":
            self.respond(transaction, self.options_response(request))
            self.emit("options", request)
        elif method == "MESSAGE":
            self.respond(transaction, make_response(request, 200))
            self.emit("message", request)
        elif method in ("BYE", "INFO", "UPDATE", "PRACK", "NOTIFY"):
            self._reject(transaction, 481, "Call/Transaction Does Not Exist")
        elif method == "REFER":
            self._reject(transaction, 403, "REFER outside a dialog is not accepted")
        else:
            # §8.2.1: 405 for a method this agent knows but does not take (REGISTER at a
            # UA that is no registrar, RFC 4475 §3.3.7); 501 for one it does not know
            # (§21.5.2, RFC 4475 §3.1.1.5). Both list what it takes.
            status = 405 if method in self.policy.known_methods else 501
            allow = [("Allow", ", ".join(ALLOWED_METHODS))]
            self._reject(transaction, status, None, headers=allow)

    def _authorize(self, transaction: ServerTransaction, request: Request) -> Verdict | None:
        """Judge the credentials of a request that must carry them (RFC 3261 §22.1); one
        that is not authorized gets its 401/407 (or 400) here. None: not challenged."""
        challenger = self.challenger
        if challenger is None:
            return None
        now = self.now()
        verdict = challenger.verify(request, now)
        if verdict is None or verdict.authorized:
            return verdict
        log.debug("%s challenged: %s", request.method, verdict.reason)
        response = challenger.reject(request, verdict, now)
        self.counters.rejected[response.status] = self.counters.rejected.get(response.status, 0) + 1
        self.respond(transaction, response)
        return verdict

    def _overloaded(self) -> bool:
        limit = self.overload_after
        if limit is None:
            return False
        behind = self.transport.behind(self.now())
        return behind is not None and behind >= limit

    def options_response(self, request: Request) -> Response:
        """200 to OPTIONS with what this agent can do (RFC 3261 §11.2)."""
        return make_response(
            request,
            200,
            headers=[
                ("Allow", ", ".join(ALLOWED_METHODS)),
                ("Accept", ACCEPT),
                ("Supported", ", ".join(SUPPORTED)),
            ],
        )

    def _incoming_call(
        self, transaction: ServerTransaction, request: Request, user: str | None = None
    ) -> None:
        from voip.call import Call

        if self._merged(request):
            self._reject(transaction, 482, "Loop Detected")  # §8.2.2.2
            return
        if self.session_timers is not None:
            try:
                check_interval(request, self.session_timers.min_se)  # RFC 4028 §9: 422
            except SipError as error:
                self._reject(transaction, error.status, error.reason, headers=error.headers)
                return
        if "replaces" in request.headers:
            from voip.transfer import receive_replacing_invite

            receive_replacing_invite(self, transaction, request)  # RFC 3891 §3
            return
        call = Call.from_invite(self, transaction, request)
        call.authenticated_user = user
        self._server_owner[transaction] = call
        if not self.listeners("incoming_call"):
            call.reject_now(480, "Temporarily Unavailable")
            return
        self.emit("incoming_call", call)

    def _merged(self, request: Request) -> bool:
        """A request with no To tag whose From tag, Call-ID and CSeq match a call we are
        already answering, arriving by another path (§8.2.2.2)."""
        from voip.call import merge_key

        call = self.invites.get(merge_key(request))
        return call is not None and call.matches_merged(request)

    def _on_cancel(self, event: CancelReceived) -> None:
        invite = event.invite
        owner = self._server_owner.get(invite) if invite is not None else None
        if owner is None:
            self._reject(event.transaction, 481, "Call/Transaction Does Not Exist")
            return
        self.respond(event.transaction, make_response(event.request, 200))
        owner.on_cancel(event.request)

    def _call_for(self, request: Request) -> Call | None:
        return self.calls.get((request.call_id, request.to.tag or ""))

    # --- calls and registrations ------------------------------------------------------------------

    def dial(self, uri: str | Uri, **options: Any) -> Call:
        """Start a call to ``uri`` (an INVITE); the :class:`~voip.call.Call` at once."""
        from voip.call import Call

        return Call.dial(self, parse_uri(uri) if isinstance(uri, str) else uri, **options)

    async def call(self, uri: str | Uri, **options: Any) -> Call:
        """Call ``uri`` and wait until it is answered; a refusal raises RequestFailed."""
        call = self.dial(uri, **options)
        await call.answered()
        return call

    async def register(self, registrar: str | Uri, **options: Any) -> Registration:
        """Register at ``registrar`` and keep the binding refreshed (RFC 3261 §10)."""
        from voip.registration import Registration

        registration = Registration(
            self, parse_uri(registrar) if isinstance(registrar, str) else registrar, **options
        )
        self.registrations.append(registration)
        await registration.start()
        return registration

    async def registered_bindings(
        self, registrar: str | Uri, *, aor: str | None = None
    ) -> list[Binding]:
        """The bindings ``registrar`` holds for ``aor`` (our own address-of-record by
        default), asked with a REGISTER that carries no Contact (RFC 3261 §10.2.3): nothing
        is added, refreshed or removed. A registration of ours to that registrar and AoR
        asks in its own Call-ID; otherwise a one-off Call-ID is used. Each
        :class:`~voip.registration.Binding` has the contact URI, its remaining expiry in
        seconds and whether it is this agent's Contact. A non-2xx raises
        :class:`RequestFailed` (e.g. 401 without credentials for the realm)."""
        from voip.registration import Registration

        uri = parse_uri(registrar) if isinstance(registrar, str) else registrar
        query = Registration(self, uri, aor=aor, refresh=False)
        for registration in self.registrations:
            if str(registration.registrar) == str(uri) and str(registration.aor.uri) == str(
                query.aor.uri
            ):
                return await registration.query()
        return await query.query()

    async def options(self, uri: str | Uri) -> Response:
        """Send OPTIONS (RFC 3261 §11) and return the 2xx."""
        target = parse_uri(uri) if isinstance(uri, str) else uri
        request = self.new_request("OPTIONS", target, headers=[("Accept", ACCEPT)])
        return await self.request(request)


def _starts_a_call(invite: Request) -> bool:
    """An INVITE outside any dialog (no To tag); one whose To cannot be read is left to
    check_request (400)."""
    try:
        return not invite.to.tag
    except SipError:
        return False


def _copy_request(request: Request) -> Request:
    """The same request for another target: a fresh transaction, so a fresh branch."""
    return Request(request.method, request.uri, request.headers.copy(), request.body)
