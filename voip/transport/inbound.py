"""What happens to every message received, whatever carried it.

Bad input never escapes as an exception (DESIGN §2 "Errors"): unreadable datagrams and
framed-but-bad stream messages go to ``on_malformed`` (the layer above answers a
request with 400 when it can, RFC 3261 §8.2), an exception raised by a callback goes to
the event loop's exception handler, and the socket carries on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from voip.sip.errors import SipError
from voip.sip.message import Message, Request, Response
from voip.sip.parser import parse_message
from voip.transport.counters import TransportCounters
from voip.transport.endpoint import Endpoint
from voip.transport.stun import StunError, StunMessage, decode, is_stun
from voip.transport.via import stamp_received

OnMessage = Callable[[Request | Response, Endpoint, Endpoint], None]
OnMalformed = Callable[[bytes, SipError, Endpoint, Endpoint], None]
OnError = Callable[[Endpoint, Exception], None]
#: ``tracer(direction, message, peer, local)``: "out" with the message or its octets as
#: sent, "in" with the parsed message received (TransportLayer.add_tracer)
#: ``on_stun(message, source, local)``: a STUN message read off a SIP UDP socket
OnStun = Callable[[StunMessage, Endpoint, Endpoint], None]
Tracer = Callable[[str, Message | bytes, Endpoint, Endpoint], None]

# Octets a keep-alive datagram is made of: CRLF (RFC 5626 §3.5.1 names CRLF keep-alives;
# UAs send them over UDP too), and the NULs and spaces some NAT keep-alives carry.
_BLANK = b"\r\n\0 \t"


class Inbound:
    """Delivers received messages to the layer above (``on_message``/``on_malformed``)."""

    __slots__ = ("_loop", "_on_malformed", "_on_message", "counters", "on_stun", "tracers")

    def __init__(
        self,
        on_message: OnMessage,
        on_malformed: OnMalformed | None,
        counters: TransportCounters,
        loop: asyncio.AbstractEventLoop,
        tracers: list[Tracer] | None = None,
    ) -> None:
        self._on_message = on_message
        self.tracers = tracers if tracers is not None else []
        self._on_malformed = on_malformed
        self.counters = counters
        self._loop = loop
        #: where STUN read off a SIP UDP socket goes (RFC 5626 §8); None: counted, dropped
        self.on_stun: OnStun | None = None

    def datagram(self, data: bytes, source: Endpoint, local: Endpoint) -> None:
        """One UDP datagram: a message (RFC 3261 §18.3: a datagram holds one), or a
        keep-alive, which is dropped, or STUN (RFC 5626 §8), which never reaches the SIP
        parser."""
        if data and data[0] < 4 and is_stun(data):
            self.stun(data, source, local)
            return
        if not data or data[0] in _BLANK:
            if not data.strip(_BLANK):
                self.counters.keepalives_in += 1
                return
        try:
            message = parse_message(data)
        except SipError as error:
            self.malformed(data, error, source, local)
            return
        # parse_message builds a Request or a Response, typed as their base Message.
        self.message(cast(Request | Response, message), source, local)

    def stun(self, data: bytes, source: Endpoint, local: Endpoint) -> None:
        """A STUN datagram on the SIP socket (RFC 7983 §7): decoded and handed to
        ``on_stun``; a malformed one is counted and dropped."""
        self.counters.stun_in += 1
        try:
            message = decode(data)
        except StunError:
            self.counters.stun_malformed += 1
            return
        if self.on_stun is None:
            return
        try:
            self.on_stun(message, source, local)
        except Exception as error:
            self.callback_failed(error, "on_stun")

    def message(self, message: Request | Response, source: Endpoint, local: Endpoint) -> None:
        if self.tracers:  # as it came: before §18.2.1's received and rport are added
            for tracer in self.tracers:
                try:
                    tracer("in", message, source, local)
                except Exception as error:
                    self.callback_failed(error, "tracer")
        if isinstance(message, Request):
            try:
                stamp_received(message, source)
            except SipError as error:
                self.malformed(bytes(message), error, source, local)
                return
        try:
            self._on_message(message, source, local)
        except Exception as error:
            self.callback_failed(error, "on_message")

    def malformed(self, data: bytes, error: SipError, source: Endpoint, local: Endpoint) -> None:
        self.counters.malformed += 1
        if self._on_malformed is None:
            return
        try:
            self._on_malformed(data, error, source, local)
        except Exception as failure:
            self.callback_failed(failure, "on_malformed")

    def callback_failed(self, error: Exception, name: str) -> None:
        self.counters.callback_errors += 1
        self._loop.call_exception_handler(
            {"message": f"voip.transport: {name} raised", "exception": error}
        )
