"""What the transport layer has seen and done, for monitoring and for tests."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TransportCounters:
    datagrams_in: int = 0
    datagrams_out: int = 0
    # UDP sends refused by a full socket buffer: the datagram is lost, as it could be on
    # the wire; transaction retransmissions (RFC 3261 §17) make up for it.
    datagrams_dropped: int = 0
    # Messages read off streams and written to them (keep-alives not counted).
    stream_messages_in: int = 0
    stream_messages_out: int = 0
    # Datagrams or stream messages that could not be read, and framing failures.
    malformed: int = 0
    # UDP keep-alive datagrams (blank lines) and stream pings received (RFC 5626 §3.5.1;
    # on WebSocket, its pings, RFC 6455 §5.5.2, answered by pongs counted in pongs_sent).
    keepalives_in: int = 0
    pings_sent: int = 0
    # STUN on the SIP UDP sockets (RFC 5626 §8): datagrams read (never given to the SIP
    # parser), those not well-formed (dropped), Binding Requests answered, and Binding
    # Requests sent as keep-alives (retransmissions included).
    stun_in: int = 0
    stun_malformed: int = 0
    stun_answered: int = 0
    stun_out: int = 0
    pongs_sent: int = 0
    # Pongs that answered our pings (RFC 5626 §4.4.1); unasked-for ones are not counted.
    pongs_in: int = 0
    connections_accepted: int = 0
    connections_opened: int = 0
    # Incoming connections closed at once because max_connections was reached.
    connections_refused: int = 0
    # Failures reported through on_error.
    errors: int = 0
    # Exceptions raised by on_message, on_malformed or on_error (sent to the loop's
    # exception handler; the transport carries on).
    callback_errors: int = 0
