"""SIP over WebSocket (RFC 7118), on the ``websockets`` library: one connection.

RFC 7118 §5: each WebSocket message carries exactly one SIP message, in a text or a
binary frame; there is no stream framing, so a message that cannot be read is like a
bad datagram: it goes to ``on_malformed`` (a request is answered 400, a response
dropped) and the connection carries on. A message over ``max_size`` (the stream limits'
header and body bounds together; ``websockets`` counts the frames of a fragmented message
together) closes the connection with 1009 (RFC 6455 §7.4.1).

What a peer can hold, as on TCP: the TLS and WebSocket handshakes must be over within
the limits' ``connect_timeout`` (``websockets``' ``open_timeout``; an accepted
connection joins the layer's table only after them); a message begun, as frames or in a
frame read in part, must be finished within ``message_timeout``, since every octet
(an empty continuation frame too) keeps the idle timer from firing.

RFC 7118 §4: the client asks for the ``sip`` subprotocol and gives up on a server that
does not agree; the server refuses a handshake that does not ask for it (400). Keep-alive
is WebSocket's ping and pong (RFC 6455 §5.5.2) instead of CRLF: an outgoing connection
pings every ``keepalive_interval`` and is closed when a pong does not come back within
the limits' ``pong_timeout``; every connection is closed after ``idle_timeout`` without
an octet either way (pings and pongs count).

The connection offers what the transport layer uses of a
:class:`~voip.transport.stream.StreamConnection` (``write``, ``close``, ``abort``,
``wait_open``, ``closed``, the endpoints), so that the layer keeps both kinds in one
table and reuses them across transactions and dialogs alike.
"""

from __future__ import annotations

import asyncio
import collections
import random
import socket
import ssl
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.connection import Connection
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK
from websockets.frames import Frame, Opcode
from websockets.http11 import Request as HttpRequest
from websockets.http11 import Response as HttpResponse
from websockets.protocol import Event
from websockets.typing import DataLike, Subprotocol

from voip.transport.counters import TransportCounters
from voip.transport.endpoint import WSS, Endpoint, endpoint_of
from voip.transport.inbound import Inbound
from voip.transport.limits import StreamLimits
from voip.transport.stream import OpeningWaiters, State, Watchdog

#: RFC 7118 §4: the WebSocket subprotocol of SIP
SUBPROTOCOL = Subprotocol("sip")
#: the frames of a message: its first (text or binary) and the continuations (RFC 6455 §5.4)
_DATA = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)


class WebSocketOwner(Protocol):
    """What a connection needs from the layer that keeps the connection table."""

    def attach(self, connection: WebSocketConnection) -> bool:
        """Enter an accepted connection in the table; False refuses it (too many)."""

    def detach(self, connection: WebSocketConnection) -> None:
        """Take a connection out of the table once it is closed."""

    def report(self, remote: Endpoint, error: Exception) -> None:
        """Tell the layer above that the hop to ``remote`` failed (``on_error``)."""


class HandshakeGate(Protocol):
    """What a WebSocket server asks of the layer about connections whose handshake has
    not finished yet (``max_connections`` counts them)."""

    def opening(self, connection: ServerConnection) -> bool:
        """A TCP connection was accepted; False refuses it (too many open)."""

    def handshake_over(self, connection: ServerConnection) -> None:
        """Its handshake finished, or it closed: it no longer counts as opening."""


class _Activity(Connection):
    """Tells its connection of every octet received (pings and pongs among them), which
    ``websockets`` answers by itself: the idle timer must hear of them too. Counts the
    keep-alive pings and pongs (RFC 6455 §5.5.2, the keep-alive of RFC 7118 §6) in the
    counters the CRLF keep-alive of a stream counts in (RFC 5626 §4.4.1): ``pings_sent``
    and the ``pongs_in`` that answer them, ``keepalives_in`` and ``pongs_sent`` for the
    peer's pings (``websockets`` answers each one)."""

    #: ``on_octets(unfinished, completed)``: octets came; a message is unfinished (a frame
    #: read in part, or a fragmented message, RFC 6455 §5.4, not at its last frame yet);
    #: one was completed by them
    on_octets: Callable[[bool, bool], None] | None = None
    counters: TransportCounters | None = None
    _fragmented = False
    _completed = False

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # the frames in it go through process_event
        if self.on_octets is not None:
            unfinished = self._fragmented or bool(self.protocol.reader.buffer)
            completed, self._completed = self._completed, False
            self.on_octets(unfinished, completed)

    def process_event(self, event: Event) -> None:
        if isinstance(event, Frame) and event.opcode in _DATA:
            self._fragmented = not event.fin
            self._completed = self._completed or event.fin
        counters = self.counters
        if counters is not None and isinstance(event, Frame):
            if event.opcode is Opcode.PING:
                counters.keepalives_in += 1
                counters.pongs_sent += 1
            elif event.opcode is Opcode.PONG and bytes(event.data) in self.pending_pings:
                counters.pongs_in += 1  # unasked-for pongs are not counted
        super().process_event(event)

    async def ping(self, data: DataLike | None = None) -> Awaitable[float]:
        pong_received = await super().ping(data)
        if self.counters is not None:
            self.counters.pings_sent += 1
        return pong_received


# The handshake's classes first: they take the first event (the handshake) and hand the
# frames after it on to _Activity.
class _ClientConnection(ClientConnection, _Activity):
    pass


class _ServerConnection(ServerConnection, _Activity):
    #: the layer's say on each TCP connection accepted, before its handshake: a peer
    #: opening connections and never finishing their handshakes must meet
    #: ``max_connections`` as a TCP one does, not only ``open_timeout`` on each
    gate: HandshakeGate | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        gate = self.gate
        if gate is not None and not gate.opening(self):
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.gate is not None:
            self.gate.handshake_over(self)
        super().connection_lost(exc)


def max_message_size(limits: StreamLimits) -> int:
    """The largest WebSocket message read: a SIP message at the stream limits."""
    return limits.max_header_bytes + limits.max_body_bytes


def asks_for_sip(request: HttpRequest) -> bool:
    """Whether a WebSocket handshake asks for the ``sip`` subprotocol (RFC 7118 §4)."""
    offered = request.headers.get_all("Sec-WebSocket-Protocol")
    return any(p.strip() == SUBPROTOCOL for value in offered for p in value.split(","))


def _refuse_without_sip(connection: ServerConnection, request: HttpRequest) -> HttpResponse | None:
    if asks_for_sip(request):
        return None
    return connection.respond(
        HTTPStatus.BAD_REQUEST, "This server speaks SIP over WebSocket only (RFC 7118)\n"
    )


async def serve_websocket(
    accept: Callable[[ServerConnection], Awaitable[None]],
    host: str,
    port: int,
    *,
    limits: StreamLimits,
    context: ssl.SSLContext | None,
    gate: HandshakeGate | None = None,
) -> Server:
    """A listening WebSocket server (wss with ``context``): ``accept`` runs each
    connection whose handshake asked for ``sip``, for as long as it lasts; ``gate``
    admits or refuses each TCP connection before its handshake."""
    gated = type("_GatedServerConnection", (_ServerConnection,), {"gate": gate})
    return await serve(
        accept,
        host,
        port,
        ssl=context,
        subprotocols=[SUBPROTOCOL],
        process_request=_refuse_without_sip,
        compression=None,
        open_timeout=limits.connect_timeout,
        # The server answers the client's pings; the idle timer reclaims dead clients.
        ping_interval=None,
        close_timeout=limits.close_linger,
        max_size=max_message_size(limits),
        write_limit=limits.max_write_buffer,
        create_connection=gated,
        reuse_address=True,
    )


def _payload(data: bytes) -> str | bytes:
    """RFC 7118 §5: a text frame for a message in UTF-8 (all a SIP message needs,
    RFC 3261 §7.3.1), a binary frame for one whose body is not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


class WebSocketConnection(OpeningWaiters, Watchdog):
    """One SIP-over-WebSocket connection, incoming (accepted) or outgoing (opened here)."""

    __slots__ = (
        "_by_us",
        "_failure",
        "_inbound",
        "_keepalive_interval",
        "_limits",
        "_loop",
        "_owner",
        "_queue",
        "_queued",
        "_ready",
        "_sender",
        "_socket",
        "_waiters",
        "closed",
        "connect_task",
        "local",
        "outgoing",
        "remote",
        "server_name",
        "state",
    )

    def __init__(
        self,
        owner: WebSocketOwner,
        inbound: Inbound,
        limits: StreamLimits,
        loop: asyncio.AbstractEventLoop,
        *,
        transport: str,
        remote: Endpoint | None = None,
        local: Endpoint | None = None,
        server_name: str | None = None,
        keepalive_interval: float | None = None,
    ) -> None:
        self._owner = owner
        self._inbound = inbound
        self._limits = limits
        self._loop = loop
        self.outgoing = remote is not None
        # An accepted connection learns its addresses from its socket (accepted()).
        self.remote = remote or Endpoint(transport, "", 0)
        self.local = local or Endpoint(transport, "", 0)
        self.server_name = server_name
        self._keepalive_interval = keepalive_interval
        self.state = State.CONNECTING
        #: the task that opens (outgoing) and then reads the connection
        self.connect_task: asyncio.Task[None] | None = None
        self.closed: asyncio.Future[None] = loop.create_future()
        self._socket: Connection | None = None
        # Messages waiting for the sender task (or for the handshake), in order.
        self._queue: collections.deque[bytes] = collections.deque()
        self._queued = 0
        self._ready = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._last_activity = loop.time()
        #: when the message being read began (None: none is), for ``message_timeout``
        self._partial_since: float | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._failure: Exception | None = None
        self._by_us = False
        self._waiters: list[asyncio.Future[None]] = []

    def __repr__(self) -> str:
        direction = "to" if self.outgoing else "from"
        return f"<WebSocketConnection {direction} {self.remote} {self.state.value}>"

    @property
    def buffered(self) -> int:
        """Octets held for this connection: queued or not yet taken by the socket."""
        socket_ = self._socket
        unsent = socket_.transport.get_write_buffer_size() if socket_ is not None else 0
        return self._queued + unsent

    # --- opening -------------------------------------------------------------------------

    def start_connecting(self, sock: socket.socket, context: ssl.SSLContext | None) -> None:
        """Connect ``sock`` (bound already), run the TLS (wss) and WebSocket handshakes
        and then read, all in ``connect_task``."""
        self.connect_task = self._loop.create_task(self._run_outgoing(sock, context))

    async def _run_outgoing(self, sock: socket.socket, context: ssl.SSLContext | None) -> None:
        try:
            connection = await self._open(sock, context)
        except asyncio.CancelledError:
            sock.close()
            self._finish(None)
            raise
        except Exception as error:
            sock.close()
            self._finish(error)
            return
        await self._run(connection)

    async def _open(self, sock: socket.socket, context: ssl.SSLContext | None) -> Connection:
        timeout = self._limits.connect_timeout
        remote = self.remote
        try:
            async with asyncio.timeout(timeout):
                await self._loop.sock_connect(sock, remote.address)
        except TimeoutError:
            raise TimeoutError(f"no TCP connection to {remote} within {timeout} s") from None
        secure = remote.transport == WSS
        host = f"[{remote.host}]" if ":" in remote.host else remote.host
        uri = f"{'wss' if secure else 'ws'}://{host}:{remote.port}/"
        tls: dict[str, Any] = (
            {"ssl": context, "server_hostname": self.server_name} if secure else {}
        )
        connection = await connect(
            uri,
            sock=sock,
            subprotocols=[SUBPROTOCOL],
            compression=None,
            open_timeout=timeout,
            ping_interval=self._keepalive_interval,
            ping_timeout=self._limits.pong_timeout,
            close_timeout=self._limits.close_linger,
            max_size=max_message_size(self._limits),
            write_limit=self._limits.max_write_buffer,
            create_connection=_ClientConnection,
            **tls,
        )
        if connection.subprotocol != SUBPROTOCOL:
            connection.transport.abort()
            raise ConnectionRefusedError(
                f"{remote} did not agree to the 'sip' WebSocket subprotocol (RFC 7118 §4)"
            )
        return connection

    async def accepted(self, connection: ServerConnection) -> None:
        """Serve an accepted connection (its handshake done) until it closes."""
        name = self.remote.transport
        self.remote = endpoint_of(name, connection.remote_address)
        self.local = endpoint_of(name, connection.local_address)
        self.connect_task = asyncio.current_task()
        if not self._owner.attach(self):
            self._by_us = True
            connection.transport.abort()
            self._finish(None)
            return
        await self._run(connection)

    # --- running: reading here, writing in the sender task -------------------------------

    async def _run(self, connection: Connection) -> None:
        if self.state is not State.CONNECTING:  # closed while the handshakes ran
            connection.transport.abort()
            self._finish(None)
            return
        self._socket = connection
        if isinstance(connection, _Activity):
            connection.on_octets = self._heard
            connection.counters = self._inbound.counters
        self.state = State.OPEN
        self._touch()
        self._arm_watchdog()
        self._sender = self._loop.create_task(self._send_queued(connection))
        if self._queue:
            self._ready.set()
        self._wake(None)
        error: Exception | None = None
        try:
            while True:
                self._received(await connection.recv())
        except ConnectionClosedOK:
            pass
        except ConnectionClosed as closed:
            error = closed
        except asyncio.CancelledError:
            connection.transport.abort()
            self._finish(None)
            raise
        self._finish(error)

    def _received(self, message: str | bytes) -> None:
        data = message.encode() if isinstance(message, str) else message
        self._inbound.counters.stream_messages_in += 1
        # One WebSocket message is one SIP message (RFC 7118 §5), read as a datagram is:
        # unreadable content goes to on_malformed and nothing else is disturbed.
        self._inbound.datagram(data, self.remote, self.local)

    async def _send_queued(self, connection: Connection) -> None:
        queue = self._queue
        while True:
            while not queue:
                if self.state is not State.OPEN:
                    if self.state is State.CLOSING:
                        await connection.close()  # the closing handshake (close())
                    return
                self._ready.clear()
                await self._ready.wait()
            data = queue.popleft()
            self._queued -= len(data)
            try:
                await connection.send(_payload(data))
            except ConnectionClosed:
                return

    # --- sending -------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Send one SIP message now, or queue it while connecting; raises BufferError
        past the queue bound and ConnectionError once closed."""
        state = self.state
        if state is State.OPEN:
            self._touch()
            if self.buffered + len(data) > self._limits.max_write_buffer:
                # The peer is not reading: disconnected rather than buffered for.
                self._fail(
                    BufferError(
                        f"{self.remote} is not reading: over "
                        f"{self._limits.max_write_buffer} octets unsent"
                    )
                )
                return
        elif state is State.CONNECTING:
            if self._queued + len(data) > self._limits.max_pending_bytes:
                raise BufferError(
                    f"over {self._limits.max_pending_bytes} octets queued for {self.remote}"
                    " while connecting"
                )
        else:
            raise ConnectionResetError(f"the connection to {self.remote} is closed")
        self._queue.append(data)
        self._queued += len(data)
        if state is State.OPEN:
            self._ready.set()

    # --- closing -------------------------------------------------------------------------

    def close(self) -> None:
        """Close (WebSocket closing handshake) once the queued messages are out."""
        if self.state is State.CLOSING or self.state is State.CLOSED:
            return
        self._by_us = True
        opened = self.state is State.OPEN
        self.state = State.CLOSING
        self._cancel_watchdog()
        if opened:
            self._ready.set()  # the sender closes once the queue is empty
        elif self.connect_task is not None:
            self.connect_task.cancel()

    def abort(self) -> None:
        """Close at once, dropping unsent messages."""
        if self.state is State.CLOSED:
            return
        self._by_us = True
        self.state = State.CLOSING
        self._cancel_watchdog()
        if self._socket is not None:
            self._socket.transport.abort()
        elif self.connect_task is not None:
            self.connect_task.cancel()

    def _fail(self, error: Exception) -> None:
        """Drop the connection and report ``error`` once it is gone."""
        if self.state is State.CLOSED or self._failure is not None:
            return
        self._failure = error
        self.abort()

    def _finish(self, error: Exception | None) -> None:
        if self.state is State.CLOSED:
            return
        was_open = self._socket is not None
        self.state = State.CLOSED
        self._cancel_watchdog()
        if self._sender is not None:
            self._sender.cancel()
        self._queue.clear()
        self._queued = 0
        self._owner.detach(self)
        failure = self._failure
        if failure is None and not self._by_us:
            failure = error
            if failure is None and self.outgoing and was_open:
                # A flow this side opened is gone (RFC 5626 §4.4: the layer above may
                # open another and register again).
                failure = ConnectionResetError(f"{self.remote} closed the connection")
        if failure is not None:
            self._owner.report(self.remote, failure)
        self._wake(failure)
        if not self.closed.done():
            self.closed.set_result(None)

    def keep_alive(self, interval: float | None) -> None:
        """Ping every ``interval`` seconds from now on (WebSocket pings, RFC 6455 §5.5.2, as
        the keep-alive of an RFC 5626 flow, RFC 7118 §6), drawn once between 80 and 100 %
        of it (RFC 5626 §4.4.1); None stops pinging. A pong not back within the limits'
        ``pong_timeout`` fails the connection."""
        self._keepalive_interval = interval
        connection = self._socket
        if connection is None or self.state is not State.OPEN:
            return  # the handshake takes the interval (_open)
        if connection.keepalive_task is not None:
            connection.keepalive_task.cancel()
            connection.keepalive_task = None
        connection.ping_interval = interval * random.uniform(0.8, 1.0) if interval else None
        connection.ping_timeout = self._limits.pong_timeout
        connection.start_keepalive()

    # --- the idle timer ------------------------------------------------------------------

    def _touch(self) -> None:
        self._last_activity = self._loop.time()

    def _heard(self, unfinished: bool, completed: bool) -> None:
        """Octets came: traffic for the idle timer. A message left unfinished (frames or a
        frame trickling in) must be finished within ``message_timeout``, as on TCP: every
        octet is traffic, so the idle timer alone would let a peer hold the connection
        and its buffers for ever, one octet or one empty continuation frame at a time."""
        now = self._last_activity = self._loop.time()
        self._reading(now, unfinished=unfinished, completed=completed)

    def _cancel_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
