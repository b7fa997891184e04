"""SIP over TCP and TLS (RFC 3261 §18.3, RFC 5626 §4.4.1): one connection.

Each connection frames its octets with a :class:`~voip.sip.parser.StreamParser`. A
framing error (no readable Content-Length, a header section or body over the limits)
leaves nothing to resynchronize on, so the connection is closed (RFC 4475 §3.1.2.3); a
framed message with bad content goes to ``on_malformed`` and the connection stays.
A double CRLF is answered with a CRLF (RFC 5626 §4.4.1); with a keep-alive interval,
an outgoing connection pings and is closed if the pong does not come back.
"""

from __future__ import annotations

import asyncio
import enum
import random
import socket
import ssl
from typing import Protocol, cast

from voip.sip.errors import SipFramingError
from voip.sip.message import Request, Response
from voip.sip.parser import KeepAlivePing, KeepAlivePong, MalformedMessage, StreamParser
from voip.transport.endpoint import Endpoint, endpoint_of
from voip.transport.inbound import Inbound
from voip.transport.limits import StreamLimits

PING = b"\r\n\r\n"
PONG = b"\r\n"


class State(enum.Enum):
    CONNECTING = "connecting"  # outgoing: TCP connect and TLS handshake under way
    OPEN = "open"
    CLOSING = "closing"  # closed by this side, waiting for the socket to go
    CLOSED = "closed"


class ConnectionOwner(Protocol):
    """What a connection needs from the layer that keeps the connection table."""

    def attach(self, connection: StreamConnection) -> bool:
        """Enter an accepted connection in the table; False refuses it (too many)."""

    def detach(self, connection: StreamConnection) -> None:
        """Take a connection out of the table once it is closed."""

    def report(self, remote: Endpoint, error: Exception) -> None:
        """Tell the layer above that the hop to ``remote`` failed (``on_error``)."""


class OpeningWaiters:
    """``wait_open`` for a connection (stream or WebSocket) whose opening others await:
    futures made only when someone waits, woken by ``_wake`` once it is up or gone."""

    __slots__ = ()
    state: State
    remote: Endpoint
    _loop: asyncio.AbstractEventLoop
    _waiters: list[asyncio.Future[None]]

    async def wait_open(self) -> None:
        """Return once the connection is up (handshakes done); raise why it is not."""
        if self.state is State.OPEN:
            return
        if self.state is not State.CONNECTING:
            raise ConnectionResetError(f"the connection to {self.remote} is closed")
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        await waiter

    def _wake(self, error: Exception | None) -> None:
        for waiter in self._waiters:
            if waiter.done():
                continue
            if error is None and self.state is State.OPEN:
                waiter.set_result(None)
            else:
                waiter.set_exception(
                    error or ConnectionResetError(f"the connection to {self.remote} is closed")
                )
        self._waiters.clear()


class Watchdog:
    """The idle timer and the unfinished-message timer of a connection (stream or
    WebSocket): closed after ``idle_timeout`` without an octet either way, failed when a
    message begun is not finished within ``message_timeout`` (a peer cannot hold a buffer
    by sending one octet at a time). One timer for both, re-armed lazily when it fires."""

    __slots__ = ("_last_activity", "_partial_since", "_watchdog")
    state: State
    remote: Endpoint
    _loop: asyncio.AbstractEventLoop
    _limits: StreamLimits
    _last_activity: float
    _partial_since: float | None
    _watchdog: asyncio.TimerHandle | None

    def close(self) -> None:
        raise NotImplementedError

    def _fail(self, error: Exception) -> None:
        raise NotImplementedError

    def _reading(self, now: float, *, unfinished: bool, completed: bool) -> None:
        """What was read at ``now`` leaves a message ``unfinished`` (begun, not complete);
        ``completed`` one or more: the next message's time runs from now."""
        if not unfinished:
            self._partial_since = None
        elif completed or self._partial_since is None:
            started = self._partial_since is None
            self._partial_since = now
            watchdog = self._watchdog
            if started and (
                watchdog is None or watchdog.when() > now + self._limits.message_timeout
            ):
                self._arm_watchdog()

    def _arm_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        deadlines = []
        if self._partial_since is not None:
            deadlines.append(self._partial_since + self._limits.message_timeout)
        if self._limits.idle_timeout is not None:
            deadlines.append(self._last_activity + self._limits.idle_timeout)
        if deadlines:
            self._watchdog = self._loop.call_at(min(deadlines), self._watch)

    def _watch(self) -> None:
        # Deadlines move with traffic; the timer is re-armed lazily when it fires rather
        # than on every read and write.
        self._watchdog = None
        if self.state is not State.OPEN:
            return
        now = self._loop.time()
        limits = self._limits
        if self._partial_since is not None and now >= self._partial_since + limits.message_timeout:
            self._fail(
                TimeoutError(
                    f"{self.remote} left a message unfinished for {limits.message_timeout} s"
                )
            )
            return
        if limits.idle_timeout is not None and now >= self._last_activity + limits.idle_timeout:
            self.close()
            return
        self._arm_watchdog()


class StreamConnection(OpeningWaiters, Watchdog, asyncio.Protocol):
    """One TCP or TLS connection, incoming (accepted) or outgoing (opened here)."""

    __slots__ = (
        "_by_us",
        "_failure",
        "_inbound",
        "_keepalive_interval",
        "_limits",
        "_linger",
        "_loop",
        "_owner",
        "_parser",
        "_pending",
        "_pending_size",
        "_ping_timer",
        "_pong_timer",
        "_transport",
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
        owner: ConnectionOwner,
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
        # An accepted connection learns its addresses in connection_made.
        self.remote = remote or Endpoint(transport, "", 0)
        self.local = local or Endpoint(transport, "", 0)
        self.server_name = server_name
        self._keepalive_interval = keepalive_interval
        self.state = State.CONNECTING
        self.connect_task: asyncio.Task[None] | None = None
        self.closed: asyncio.Future[None] = loop.create_future()
        self._transport: asyncio.Transport | None = None
        self._parser = StreamParser(limits.max_header_bytes, limits.max_body_bytes)
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._last_activity = loop.time()
        self._partial_since: float | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._linger: asyncio.TimerHandle | None = None
        self._failure: Exception | None = None
        self._by_us = False
        # Futures of wait_open callers, made only when someone waits.
        self._waiters: list[asyncio.Future[None]] = []

    def __repr__(self) -> str:
        direction = "to" if self.outgoing else "from"
        return f"<StreamConnection {direction} {self.remote} {self.state.value}>"

    @property
    def buffered(self) -> int:
        """Octets held for this connection: partly read, unsent, or queued."""
        unsent = self._pending_size
        if self._transport is not None:
            unsent = self._transport.get_write_buffer_size()
        return self._parser.buffered + unsent

    # --- opening -------------------------------------------------------------------------

    def start_connecting(self, sock: socket.socket, context: ssl.SSLContext | None) -> None:
        """Connect ``sock`` in the background (:meth:`connect`, as ``connect_task``)."""
        task = self.connect_task = self._loop.create_task(self.connect(sock, context))

        def finished(done: asyncio.Task[None]) -> None:
            # A task cancelled before its first step (closed at once, as an agent closed
            # right after it made the connection) never ran connect's own clean-up.
            if done.cancelled() and self.state is not State.CLOSED:
                sock.close()
                self._connect_failed(None)

        task.add_done_callback(finished)

    async def connect(self, sock: socket.socket, context: ssl.SSLContext | None) -> None:
        """Connect ``sock`` (bound already) and run the TLS handshake if ``context``."""
        timeout = self._limits.connect_timeout
        try:
            try:
                async with asyncio.timeout(timeout):
                    await self._loop.sock_connect(sock, self.remote.address)
            except TimeoutError:
                raise TimeoutError(
                    f"no TCP connection to {self.remote} within {timeout} s"
                ) from None
            await self._loop.create_connection(
                lambda: self,
                sock=sock,
                ssl=context,
                server_hostname=self.server_name if context is not None else None,
                ssl_handshake_timeout=timeout if context is not None else None,
            )
        except asyncio.CancelledError:
            sock.close()
            self._connect_failed(None)
            raise
        except Exception as error:
            sock.close()
            self._connect_failed(error)

    def _connect_failed(self, error: Exception | None) -> None:
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        self._pending.clear()
        self._pending_size = 0
        self._owner.detach(self)
        if error is not None and not self._by_us:
            self._owner.report(self.remote, error)
        self._wake(error)
        self.closed.set_result(None)

    # --- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = stream = cast(asyncio.Transport, transport)
        if not self.outgoing:
            name = self.remote.transport
            self.remote = endpoint_of(name, stream.get_extra_info("peername"))
            self.local = endpoint_of(name, stream.get_extra_info("sockname"))
            if not self._owner.attach(self):
                self._by_us = True
                self.state = State.CLOSING
                stream.abort()
                return
        if self.state is not State.CONNECTING:
            stream.abort()  # closed while the handshake ran
            return
        # Beyond this many unsent octets asyncio calls pause_writing: the peer is not
        # reading, and is disconnected rather than buffered for without bound.
        stream.set_write_buffer_limits(high=self._limits.max_write_buffer)
        self.state = State.OPEN
        self._last_activity = self._loop.time()
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            self._pending_size = 0
            stream.write(data)
        if self.state is State.OPEN:
            self._arm_watchdog()
            if self.outgoing and self._keepalive_interval:
                self._schedule_ping()
        self._wake(None)

    def data_received(self, data: bytes) -> None:
        if self.state is not State.OPEN:
            return
        self._last_activity = now = self._loop.time()
        inbound = self._inbound
        parser = self._parser
        try:
            events = parser.feed(data)
        except SipFramingError as error:
            self._framing_failed(error)
            return
        for event in events:
            if self.state is not State.OPEN:
                return
            if isinstance(event, (Request, Response)):
                inbound.counters.stream_messages_in += 1
                inbound.message(event, self.remote, self.local)
            elif isinstance(event, KeepAlivePing):
                inbound.counters.keepalives_in += 1
                inbound.counters.pongs_sent += 1
                self.write(PONG)
            elif isinstance(event, KeepAlivePong):
                self._pong_received()
            elif isinstance(event, MalformedMessage):
                inbound.malformed(event.data, event.error, self.remote, self.local)
        if parser.failed is not None:
            # The messages framed before the error went up first (RFC 4475 §3.1.1.8).
            if self.state is State.OPEN:
                self._framing_failed(parser.failed)
            return
        self._reading(now, unfinished=bool(parser.buffered), completed=bool(events))

    def _framing_failed(self, error: SipFramingError) -> None:
        """Nothing after a framing error can be framed (RFC 4475 §3.1.2.3): the layer
        above hears of the message that caused it, to answer it if it can, and the
        connection is closed once that answer is out."""
        self._inbound.malformed(self._parser.unframed, error, self.remote, self.local)
        self.close()

    def eof_received(self) -> bool | None:
        return None  # the peer is done sending: close our side too

    def pause_writing(self) -> None:
        self._fail(
            BufferError(
                f"{self.remote} is not reading: over {self._limits.max_write_buffer} octets unsent"
            )
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.state = State.CLOSED
        self._cancel_timers()
        self._owner.detach(self)
        error = self._failure
        if error is None and not self._by_us:
            if exc is not None:
                error = exc
            elif self.outgoing:
                # A flow this side opened is gone (RFC 5626 §4.4: the layer above may
                # open another and register again).
                error = ConnectionResetError(f"{self.remote} closed the connection")
        if error is not None:
            self._owner.report(self.remote, error)
        self._wake(error)
        if not self.closed.done():
            self.closed.set_result(None)

    # --- sending -------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Send now, or queue while connecting; raises BufferError past the queue bound
        and ConnectionError once closed."""
        state = self.state
        if state is State.OPEN:
            cast(asyncio.Transport, self._transport).write(data)
            self._last_activity = self._loop.time()
            return
        if state is State.CONNECTING:
            size = self._pending_size + len(data)
            if size > self._limits.max_pending_bytes:
                raise BufferError(
                    f"over {self._limits.max_pending_bytes} octets queued for {self.remote}"
                    " while connecting"
                )
            self._pending.append(data)
            self._pending_size = size
            return
        raise ConnectionResetError(f"the connection to {self.remote} is closed")

    # --- closing -------------------------------------------------------------------------

    def close(self) -> None:
        """Close once unsent octets are out, or after ``close_linger`` seconds."""
        if self.state is State.CLOSING or self.state is State.CLOSED:
            return
        self._by_us = True
        self.state = State.CLOSING
        self._cancel_timers()
        transport = self._transport
        if transport is None:
            if self.connect_task is not None:
                self.connect_task.cancel()
            return
        transport.close()
        self._linger = self._loop.call_later(self._limits.close_linger, transport.abort)

    def abort(self) -> None:
        """Close at once, dropping unsent octets."""
        if self.state is State.CLOSED:
            return
        self._by_us = True
        self.state = State.CLOSING
        self._cancel_timers()
        if self._transport is not None:
            self._transport.abort()
        elif self.connect_task is not None:
            self.connect_task.cancel()

    def _fail(self, error: Exception) -> None:
        """Drop the connection and report ``error`` once it is gone."""
        if self.state is State.CLOSED or self._failure is not None:
            return
        self._failure = error
        self.abort()

    def _cancel_timers(self) -> None:
        for timer in (self._watchdog, self._ping_timer, self._pong_timer, self._linger):
            if timer is not None:
                timer.cancel()
        self._watchdog = self._ping_timer = self._pong_timer = self._linger = None

    # --- timers: idle, stalled message, keep-alive ---------------------------------------

    def _schedule_ping(self) -> None:
        interval = cast(float, self._keepalive_interval)
        # RFC 5626 §4.4.1: each wait drawn between 80% and 100% of the interval, so that
        # clients started together do not ping in step.
        delay = interval * random.uniform(0.8, 1.0)
        self._ping_timer = self._loop.call_later(delay, self._ping)

    def keep_alive(self, interval: float | None) -> None:
        """Ping every ``interval`` seconds from now on (RFC 5626 §4.4.1), such as the
        Flow-Timer a registrar asked for on a registered flow; None stops pinging. A pong
        awaited still fails the connection if it does not come back."""
        self._keepalive_interval = interval
        if self._ping_timer is not None:
            self._ping_timer.cancel()
            self._ping_timer = None
        if interval and self.state is State.OPEN and self._pong_timer is None:
            self._schedule_ping()

    def _ping(self) -> None:
        self._ping_timer = None
        if self.state is not State.OPEN:
            return
        self._inbound.counters.pings_sent += 1
        self._pong_timer = self._loop.call_later(self._limits.pong_timeout, self._pong_missing)
        self.write(PING)

    def _pong_received(self) -> None:
        if self._pong_timer is None:
            return  # not asked for (RFC 5626 §4.4.1 pongs answer pings): ignored
        self._inbound.counters.pongs_in += 1
        self._pong_timer.cancel()
        self._pong_timer = None
        if self._keepalive_interval:
            self._schedule_ping()

    def _pong_missing(self) -> None:
        self._pong_timer = None
        self._fail(
            TimeoutError(
                f"no CRLF keep-alive pong from {self.remote} within "
                f"{self._limits.pong_timeout} s (RFC 5626 §4.4.1)"
            )
        )
