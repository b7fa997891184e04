"""The SIP transport layer (RFC 3261 §18) on asyncio: listeners, connections, sending.

The layer above (transactions, the UA core) hands it messages and destinations and gets
back messages with where they came from and where they arrived. TCP, TLS and WebSocket
(RFC 7118) connections are kept in one table keyed by the remote endpoint, whichever
side opened them, so that one connection serves every transaction and dialog with that
peer (RFC 3261 §18.1.1, §18.2.2; DESIGN §3 "consecutive sessions over one transport
connection").
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable

from websockets.asyncio.server import Server, ServerConnection

from voip.sip.message import Message, Request
from voip.transport.counters import TransportCounters
from voip.transport.endpoint import (
    DEFAULT_PORTS,
    TLS,
    TRANSPORTS,
    UDP,
    WEBSOCKETS,
    WS,
    WSS,
    Endpoint,
    endpoint_of,
    is_wildcard,
    unbracket,
)
from voip.transport.inbound import Inbound, OnError, OnMalformed, OnMessage, Tracer
from voip.transport.limits import StreamLimits
from voip.transport.source import SourceAddresses
from voip.transport.stream import StreamConnection
from voip.transport.stun import StunMessage, binding_success
from voip.transport.tls import client_context
from voip.transport.udp import DatagramSocket, bind_datagram_socket
from voip.transport.via import response_destination
from voip.transport.websocket import WebSocketConnection, serve_websocket

#: a TCP or TLS connection, or a WebSocket one
Connection = StreamConnection | WebSocketConnection

_WILDCARDS = {socket.AF_INET: "0.0.0.0", socket.AF_INET6: "::"}


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def canonical(endpoint: Endpoint) -> Endpoint:
    """``endpoint`` with its host written as the socket API writes it (``[::0:1]`` → ``::1``)."""
    try:
        host = ipaddress.ip_address(unbracket(endpoint.host)).compressed
    except ValueError:
        return endpoint
    return endpoint if host == endpoint.host else Endpoint(endpoint.transport, host, endpoint.port)


class TransportLayer:
    """UDP, TCP, TLS, WS and WSS over IPv4 and IPv6, for one user agent.

    ``on_message(message, source, local)`` gets every message received, a request's top
    Via already stamped with ``received``/``rport`` (RFC 3261 §18.2.1, RFC 3581 §4).
    ``on_malformed(data, error, source, local)`` gets what could not be read.
    ``on_error(destination, error)`` hears of sends and connections that failed; it is
    never called from inside :meth:`send`.

    Tracers (:meth:`add_tracer`) see every message handed to a socket and every message
    received, for SIP traces and ladder diagrams (:mod:`voip.trace`).
    """

    def __init__(
        self,
        on_message: OnMessage,
        *,
        on_malformed: OnMalformed | None = None,
        on_error: OnError | None = None,
        tls_server: ssl.SSLContext | None = None,
        tls_client: ssl.SSLContext | None = None,
        limits: StreamLimits | None = None,
        keepalive_interval: float | None = None,
    ) -> None:
        self._on_message = on_message
        self._on_malformed = on_malformed
        self._on_error = on_error
        self._tls_server = tls_server
        self._tls_client = tls_client
        self.limits = limits or StreamLimits()
        self.keepalive_interval = keepalive_interval
        self.counters = TransportCounters()
        #: ``tracer(direction, message, peer, local)`` for each message sent ("out", the
        #: message or its octets) and received ("in", parsed); see :meth:`add_tracer`
        self.tracers: list[Tracer] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbound: Inbound | None = None
        self._addresses = SourceAddresses()
        self._datagram_sockets: list[DatagramSocket] = []
        self._datagram_by_local: dict[Endpoint, DatagramSocket] = {}
        # The socket used when a send names no local endpoint: the first bound per family.
        self._datagram_default: dict[socket.AddressFamily, DatagramSocket] = {}
        self._servers: list[asyncio.Server] = []
        self._websocket_servers: list[Server] = []
        # The first listener per (transport, family): its address goes in Via and Contact.
        self._stream_listeners: dict[tuple[str, socket.AddressFamily], Endpoint] = {}
        self._connections: dict[Endpoint, Connection] = {}
        self._live: set[Connection] = set()
        #: incoming WebSocket connections whose handshake has not finished yet
        self._handshaking: set[ServerConnection] = set()
        #: STUN responses awaited, by transaction id (RFC 5389 §7.3.3): the keep-alives of
        #: SIP Outbound flows over UDP (RFC 5626 §4.4.2)
        self._stun_waiting: dict[bytes, Callable[[StunMessage], None]] = {}
        self._closed = False

    # --- setting up ----------------------------------------------------------------------

    def _ready(self) -> Inbound:
        """The receiving side, made on first use in the running loop; not after close."""
        if self._closed:
            raise RuntimeError("the transport layer is closed")
        inbound = self._inbound
        if inbound is None:
            self._loop = asyncio.get_running_loop()
            inbound = self._inbound = Inbound(
                self._on_message, self._on_malformed, self.counters, self._loop, self.tracers
            )
            inbound.on_stun = self._on_stun
        return inbound

    async def listen(self, transport: str, host: str, port: int = 0) -> Endpoint:
        """Listen on ``host`` (an IP literal; ``0.0.0.0`` or ``::`` for every interface)
        and return the address actually bound (the port the kernel chose for 0)."""
        if transport not in TRANSPORTS:
            raise ValueError(f"unknown transport {transport!r}: expected one of {TRANSPORTS}")
        inbound = self._ready()
        host = unbracket(host)
        if transport == UDP:
            return self._bind_datagram(host, port).local
        context = None
        if transport in (TLS, WSS):
            if self._tls_server is None:
                raise ValueError(
                    f"listening on {transport.upper()} needs tls_server, a context with a"
                    " certificate"
                )
            context = self._tls_server
        loop = self._loop
        assert loop is not None
        if transport in WEBSOCKETS:
            return await self._listen_websocket(transport, host, port, context)
        server = await loop.create_server(
            lambda: StreamConnection(self, inbound, self.limits, loop, transport=transport),
            host,
            port,
            ssl=context,
            ssl_handshake_timeout=self.limits.connect_timeout if context is not None else None,
            reuse_address=True,
        )
        self._servers.append(server)
        bound = endpoint_of(transport, server.sockets[0].getsockname())
        self._stream_listeners.setdefault((transport, bound.family), bound)
        return bound

    async def _listen_websocket(
        self, transport: str, host: str, port: int, context: ssl.SSLContext | None
    ) -> Endpoint:
        inbound = self._ready()
        loop = self._loop
        assert loop is not None

        def accept(connection: ServerConnection) -> Awaitable[None]:
            self.handshake_over(connection)  # counted in _live from now on
            return WebSocketConnection(
                self, inbound, self.limits, loop, transport=transport
            ).accepted(connection)

        server = await serve_websocket(
            accept, host, port, limits=self.limits, context=context, gate=self
        )
        self._websocket_servers.append(server)
        bound = endpoint_of(transport, next(iter(server.sockets)).getsockname())
        self._stream_listeners.setdefault((transport, bound.family), bound)
        return bound

    def _bind_datagram(self, host: str, port: int) -> DatagramSocket:
        inbound = self._ready()
        assert self._loop is not None
        sock = bind_datagram_socket(host, port, self.limits.udp_socket_buffer)
        datagram = DatagramSocket(sock, inbound, self._addresses, self._loop)
        self._datagram_sockets.append(datagram)
        self._datagram_by_local[datagram.local] = datagram
        self._datagram_default.setdefault(datagram.family, datagram)
        return datagram

    def _datagram_socket(self, destination: Endpoint, local: Endpoint | None) -> DatagramSocket:
        if local is not None:
            found = self._datagram_by_local.get(local)
            if found is not None:
                return found
            for datagram in self._datagram_sockets:
                if datagram.wildcard and datagram.local.port == local.port:
                    if datagram.family == local.family:
                        # A wildcard socket seen from one of this host's addresses.
                        self._datagram_by_local[local] = datagram
                        return datagram
        family = destination.family
        default = self._datagram_default.get(family)
        if default is None:
            # A client that never listened: an ephemeral port on every interface, kept
            # for what follows so that responses come back to it.
            default = self._bind_datagram(_WILDCARDS[family], 0)
        return default

    # --- sending -------------------------------------------------------------------------

    def send(
        self,
        message: Message | bytes,
        destination: Endpoint,
        *,
        local: Endpoint | None = None,
        server_name: str | None = None,
    ) -> None:
        """Send ``message`` to ``destination`` without waiting.

        UDP leaves at once, from the socket bound to ``local`` if given (a response goes
        out where its request came in, RFC 3581 §4). TCP and TLS use the connection to
        ``destination`` whichever side opened it, or open one and queue until it is up.
        ``server_name`` is the name a TLS server's certificate must match (RFC 5922
        §7.3); without it, the destination's IP address. It is checked when a connection
        is opened; an open connection to ``destination`` is used as it is. Failures go to
        ``on_error``. After :meth:`close`, sends are dropped.
        """
        if self._closed:
            return  # a retransmission timer firing during shutdown: nothing to send on
        data = message if type(message) is bytes else bytes(message)
        if destination.transport == UDP:
            datagram = self._datagram_socket(destination, local)
            try:
                datagram.sendto(data, destination)
            except BlockingIOError:
                self.counters.datagrams_dropped += 1
                return
            except OSError as error:
                self._report_later(destination, error)
                return
            self.counters.datagrams_out += 1
            if self.tracers:
                self._trace_out(message, destination, datagram.local)
            return
        connection = (
            self._connections.get(destination)
            or self._websocket_to(destination)
            or self._connect(destination, server_name)
        )
        if connection is None:
            return
        try:
            connection.write(data)
        except (BufferError, ConnectionError) as error:
            self._report_later(destination, error)
            return
        self.counters.stream_messages_out += 1
        if self.tracers:
            self._trace_out(message, destination, connection.local)

    def send_stun(
        self,
        data: bytes,
        destination: Endpoint,
        transaction_id: bytes,
        on_response: Callable[[StunMessage], None],
    ) -> None:
        """Send a STUN Binding Request from the SIP UDP socket toward ``destination`` (a
        keep-alive on an outbound flow, RFC 5626 §4.4.2): the response with the same
        transaction id goes to ``on_response`` (until :meth:`forget_stun`). Not traced (it
        is not SIP); a full socket buffer loses it, as the wire could."""
        self._stun_waiting[transaction_id] = on_response
        if self._closed:
            return
        datagram = self._datagram_socket(destination, None)
        try:
            datagram.sendto(data, destination)
        except OSError:
            self.counters.datagrams_dropped += 1
            return
        self.counters.stun_out += 1

    def forget_stun(self, transaction_id: bytes) -> None:
        """The transaction ``transaction_id`` is over: a late response to it is dropped."""
        self._stun_waiting.pop(transaction_id, None)

    def _on_stun(self, message: StunMessage, source: Endpoint, local: Endpoint) -> None:
        """STUN read off a SIP UDP socket (RFC 5626 §8): a Binding Request is answered with
        its source as XOR-MAPPED-ADDRESS (RFC 5389 §7.3.1), a response goes to the
        keep-alive waiting for its transaction id, anything else is dropped."""
        if message.is_request:
            if message.type != 0x0001 or self._closed:
                return
            answer = binding_success(message.transaction_id, source.host, source.port)
            try:
                self._datagram_socket(source, local).sendto(answer, source)
            except OSError:
                self.counters.datagrams_dropped += 1
                return
            self.counters.stun_answered += 1
            return
        waiting = self._stun_waiting.get(message.transaction_id)
        if waiting is not None:
            waiting(message)

    def _websocket_to(self, destination: Endpoint) -> Connection | None:
        """The open WebSocket connection of the other kind (ws for wss, wss for ws) to
        ``destination``'s address. A SIP URI has the one transport value "ws" (RFC 7118
        §5.3: security comes from the sips scheme), and Kamailio names its wss listener
        ";transport=ws" in Record-Route and Path: the connection open to that address is
        the one meant, and the only way to reach a WebSocket server's client anyway."""
        transport = destination.transport
        if transport not in WEBSOCKETS:
            return None
        other = WS if transport == WSS else WSS
        return self._connections.get(Endpoint(other, destination.host, destination.port))

    def add_tracer(self, tracer: Tracer) -> Callable[[], None]:
        """Show ``tracer`` every message from now on; returns what removes it again.

        A tracer gets ``("out", message, destination, local)`` for each message handed
        to a socket (the message as given to :meth:`send`: a :class:`Message` or its
        octets), and ``("in", message, source, local)`` for each message received and
        parsed, before the layer above sees it. Retransmissions appear each time they
        leave. An exception raised by a tracer goes to the loop's exception handler.
        """
        self.tracers.append(tracer)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self.tracers.remove(tracer)

        return remove

    def _trace_out(self, message: Message | bytes, destination: Endpoint, local: Endpoint) -> None:
        for tracer in self.tracers:
            try:
                tracer("out", message, destination, local)
            except Exception as error:
                self._ready().callback_failed(error, "tracer")

    async def connect(self, destination: Endpoint, *, server_name: str | None = None) -> Connection:
        """The TCP/TLS/WebSocket connection to ``destination``, opened if need be, once it is up.

        Sends do not need this (they queue while connecting); it is for a caller that
        wants the connection first, such as an RFC 5626 flow. A failure raises here and
        is reported to ``on_error`` as well.
        """
        connection = (
            self._connections.get(destination)
            or self._websocket_to(destination)
            or self._connect(destination, server_name)
        )
        if connection is None:
            raise ConnectionRefusedError(f"no connection to {destination} could be opened")
        await connection.wait_open()
        return connection

    def _connect(self, destination: Endpoint, server_name: str | None) -> Connection | None:
        """A new outgoing connection, bound now (its local port is known at once) and
        connected in the background; None (reported) if it cannot be made."""
        inbound = self._ready()
        loop = self._loop
        assert loop is not None
        remote = canonical(destination)
        if remote != destination:
            existing = self._connections.get(remote)
            if existing is not None:
                return existing
        if remote.transport not in TRANSPORTS or remote.transport == UDP:
            raise ValueError(f"unknown transport {destination.transport!r}")
        if self._full():
            self._report_later(
                destination,
                ConnectionRefusedError(f"{self.limits.max_connections} connections open already"),
            )
            return None
        context = None
        if remote.transport in (TLS, WSS):
            # wss verifies the server as TLS does (RFC 7118 §6 relies on RFC 6455 §10.6).
            if self._tls_client is None:
                self._tls_client = client_context()
            context = self._tls_client
        sock = socket.socket(remote.family, socket.SOCK_STREAM)
        # From the address we listen on, when it is one address: the one the agent
        # is reachable at (and moved to, see :meth:`unlisten`); else the routed one
        # (also when only that one can reach the peer: a loopback listener, a peer
        # elsewhere).
        listener = self._stream_listeners.get((remote.transport, remote.family))
        source = self._addresses.toward(remote.host)
        if listener is not None and not is_wildcard(listener.host):
            if _is_loopback(listener.host) == _is_loopback(source):
                source = listener.host
        try:
            sock.setblocking(False)
            sock.bind((source, 0))
        except OSError as error:
            sock.close()
            self._report_later(destination, error)
            return None
        kind = WebSocketConnection if remote.transport in WEBSOCKETS else StreamConnection
        connection = kind(
            self,
            inbound,
            self.limits,
            loop,
            transport=remote.transport,
            remote=remote,
            local=endpoint_of(remote.transport, sock.getsockname()),
            server_name=server_name or remote.host,
            keepalive_interval=self.keepalive_interval,
        )
        self._connections[remote] = connection
        self._live.add(connection)
        self.counters.connections_opened += 1
        connection.start_connecting(sock, context)
        return connection

    async def unlisten(self, host: str) -> list[Endpoint]:
        """Stop using the local address ``host`` (the agent moves off it): its listeners
        and UDP sockets are closed, and so are the TCP/TLS connections bound on it, at
        once (closed by us: not reported to ``on_error``). Returns the listening
        endpoints closed, for the caller to open again on its new address."""
        host = unbracket(host)
        closed: list[Endpoint] = []
        for datagram in [d for d in self._datagram_sockets if d.local.host == host]:
            datagram.close()
            self._datagram_sockets.remove(datagram)
            closed.append(datagram.local)
        self._datagram_by_local = {
            k: d for k, d in self._datagram_by_local.items() if d.local.host != host
        }
        self._datagram_default = {
            k: d for k, d in self._datagram_default.items() if d.local.host != host
        }
        servers: list[asyncio.Server | Server] = []
        listeners: list[asyncio.Server | Server] = [*self._servers, *self._websocket_servers]
        for server in listeners:
            names = [endpoint_of("tcp", s.getsockname()) for s in server.sockets]
            if names and all(name.host == host for name in names):
                servers.append(server)
                if isinstance(server, Server):
                    self._websocket_servers.remove(server)
                else:
                    self._servers.remove(server)
                server.close()
        for key, bound in list(self._stream_listeners.items()):
            if bound.host == host:
                del self._stream_listeners[key]
                closed.append(bound)
        connections = [c for c in self._live if c.local.host == host]
        for connection in connections:
            connection.abort()
        await asyncio.gather(
            *(connection.closed for connection in connections),
            *(server.wait_closed() for server in servers),
        )
        return closed

    # --- addresses -----------------------------------------------------------------------

    def local_endpoint(
        self, transport: str, destination: Endpoint, *, server_name: str | None = None
    ) -> Endpoint:
        """The address for Via sent-by and Contact in a message to ``destination`` over
        ``transport`` (RFC 3261 §18.1.1, §8.1.1.8): a listener's, its wildcard address
        replaced by the local address the kernel routes ``destination`` from.

        Without a TCP/TLS listener, the connection's own address: the connection is
        bound (and opened) now, and the next send to ``destination`` uses it; a TLS
        server's certificate must then match ``server_name`` (see :meth:`send`).
        """
        self._ready()
        if transport == UDP:
            return self._datagram_socket(destination, None).local_toward(destination.host)
        # RFC 7118 §5: a WebSocket client is reached only over the connection it opened
        # (WebSocket servers such as Kamailio never open one toward a client), so a
        # request over WS names that connection's own address even when this agent
        # listens for WS too. That address is the one a server sees the connection come
        # from: Kamailio reaches the binding over it with or without nathelper's
        # aliases, where the random ".invalid" host RFC 7118 §5.2 allows would need
        # them (nat_uac_test(64) and add_contact_alias()/set_contact_alias).
        bound = None
        if transport not in WEBSOCKETS:
            bound = self._stream_listeners.get((transport, destination.family))
        if bound is not None:
            if is_wildcard(bound.host):
                return self._addresses.local_for(bound, destination.host)
            return bound
        remote = Endpoint(transport, destination.host, destination.port)
        connection = (
            self._connections.get(remote)
            or self._websocket_to(remote)
            or self._connect(remote, server_name)
        )
        if connection is None:
            return Endpoint(
                transport, self._addresses.toward(destination.host), DEFAULT_PORTS[transport]
            )
        return connection.local

    def behind(self, now: float) -> float | None:
        """How far (seconds) the receiving side is behind what arrives on UDP, while a
        drain of some socket stopped at its cap with datagrams still waiting and no drain
        has emptied it since: how long the datagram being read waited (where the kernel
        stamps arrivals, DatagramSocket.behind), else for how long the socket has not
        been emptied. None when every socket was emptied by its last drain. What the
        layer above sheds load on (RFC 3261 §21.5.4)."""
        behind = [d.behind(now) for d in self._datagram_sockets]
        return max((b for b in behind if b is not None), default=None)

    def response_destination(self, request: Request, source: Endpoint) -> Endpoint:
        """Where the response to ``request``, received from ``source``, goes (RFC 3261
        §18.2.2, RFC 3581 §4): back on its connection while that is open; otherwise as
        the (stamped) top Via says."""
        if source.transport != UDP and source in self._connections:
            return source
        destination = response_destination(request.via[0], source)
        # Usually the source itself: one object fewer for the transaction to keep.
        return source if destination == source else destination

    # --- the connection table (ConnectionOwner) ------------------------------------------

    def _full(self) -> bool:
        """``max_connections`` reached: connections open or being opened, and incoming
        WebSocket ones still in their handshake."""
        return len(self._live) + len(self._handshaking) >= self.limits.max_connections

    def opening(self, connection: ServerConnection) -> bool:
        """A WebSocket server accepted a TCP connection (HandshakeGate): it counts
        against ``max_connections`` from now, its handshake unfinished."""
        if self._closed or self._full():
            self.counters.connections_refused += 1
            return False
        self._handshaking.add(connection)
        return True

    def handshake_over(self, connection: ServerConnection) -> None:
        self._handshaking.discard(connection)

    def attach(self, connection: Connection) -> bool:
        if self._closed or self._full():
            self.counters.connections_refused += 1
            return False
        self.counters.connections_accepted += 1
        self._live.add(connection)
        # An incoming connection serves requests to the peer's address too (reuse).
        self._connections[connection.remote] = connection
        return True

    def detach(self, connection: Connection) -> None:
        self._live.discard(connection)
        if self._connections.get(connection.remote) is connection:
            del self._connections[connection.remote]

    def report(self, remote: Endpoint, error: Exception) -> None:
        self.counters.errors += 1
        if self._on_error is None:
            return
        try:
            self._on_error(remote, error)
        except Exception as failure:
            if self._inbound is not None:
                self._inbound.callback_failed(failure, "on_error")

    def _report_later(self, destination: Endpoint, error: Exception) -> None:
        # Never from inside send(): the caller may be in the middle of its own state.
        assert self._loop is not None
        self._loop.call_soon(self.report, destination, error)

    # --- state ---------------------------------------------------------------------------

    @property
    def connections(self) -> tuple[Connection, ...]:
        """The TCP/TLS/WebSocket connections open or being opened."""
        return tuple(self._live)

    def connection_to(self, remote: Endpoint) -> Connection | None:
        """The connection that a send to ``remote`` would use, if there is one."""
        return self._connections.get(remote)

    @property
    def bytes_buffered(self) -> int:
        """Octets held across connections: partly read messages, unsent and queued."""
        return sum(connection.buffered for connection in self._live)

    @property
    def sockets_open(self) -> int:
        """UDP sockets, listening sockets and connections held by this layer (incoming
        WebSocket ones in their handshake among them)."""
        listening = sum(len(server.sockets) for server in self._servers)
        listening += sum(len(list(server.sockets)) for server in self._websocket_servers)
        connections = len(self._live) + len(self._handshaking)
        return len(self._datagram_sockets) + listening + connections

    async def close(self) -> None:
        """Close every socket: listeners, UDP sockets and connections (unsent octets on
        connections are dropped)."""
        self._closed = True
        for datagram in self._datagram_sockets:
            datagram.close()
        self._datagram_sockets.clear()
        self._datagram_by_local.clear()
        self._datagram_default.clear()
        for server in self._servers:
            server.close()
        connections = list(self._live)
        for connection in connections:
            connection.abort()
        for websocket_server in self._websocket_servers:
            websocket_server.close()
        await asyncio.gather(
            *(connection.closed for connection in connections),
            *(server.wait_closed() for server in self._servers),
            *(server.wait_closed() for server in self._websocket_servers),
        )
        self._servers.clear()
        self._websocket_servers.clear()
        self._stream_listeners.clear()
