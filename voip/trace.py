"""A SIP trace: every message a user agent sends and receives, in order.

:meth:`SipTrace.attach` hangs a tracer on an agent's transport layer
(:meth:`voip.transport.TransportLayer.add_tracer`); each message handed to a socket or
received from one becomes a :class:`TraceRecord` with its direction, both addresses and
the wall-clock time. A trace is written as JSON lines (one object per message, for
tools; :func:`read_jsonl` reads it back), drawn as a ladder diagram (:mod:`voip.ladder`)
and printed as the messages themselves (``voip -v``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from voip.sip import Message, Request, Response, SipError, parse_message
from voip.transport import Endpoint, TransportLayer
from voip.transport.endpoint import unbracket

__all__ = [
    "SipTrace",
    "TraceRecord",
    "cseq_method",
    "endpoint_from_text",
    "first_copies",
    "read_jsonl",
]

OUT = "out"
IN = "in"


@dataclass(frozen=True, slots=True)
class TraceRecord:
    """One message: ``"out"`` (sent) or ``"in"`` (received), the message, the far end's
    address (``peer``), the agent's own (``local``) and when (Unix time, seconds)."""

    direction: str
    message: Request | Response
    peer: Endpoint
    local: Endpoint | None = None
    time: float = 0.0

    @property
    def sent(self) -> bool:
        return self.direction == OUT

    @property
    def label(self) -> str:
        """``"INVITE"`` for a request, ``"180"`` for a response."""
        message = self.message
        return message.method if isinstance(message, Request) else str(message.status)

    @property
    def cseq_method(self) -> str:
        return self.message.cseq.method

    @property
    def summary(self) -> str:
        """What a ladder's arrow says: ``INVITE`` or ``180 Ringing``, and for a response
        the method it answers when that is not an INVITE (``200 OK (BYE)``)."""
        message = self.message
        if isinstance(message, Request):
            return message.method
        text = f"{message.status} {message.reason_phrase}"
        method = cseq_method(message)
        return text if method in ("INVITE", "") else f"{text} ({method})"

    def __str__(self) -> str:
        arrow = ">" if self.sent else "<"
        return f"{arrow} {self.label}"

    def to_json(self) -> dict[str, Any]:
        """The record as one JSON object (a line of the JSON-lines trace)."""
        message = self.message
        out: dict[str, Any] = {
            "time": round(self.time, 6),
            "direction": self.direction,
            "local": str(self.local) if self.local is not None else None,
            "peer": str(self.peer),
            "call_id": _header(message, "call-id"),
            "cseq": _header(message, "cseq"),
        }
        if isinstance(message, Request):
            out["method"] = message.method
        else:
            out["status"] = message.status
            out["reason"] = message.reason_phrase
        out["start_line"] = message.start_line()
        out["message"] = bytes(message).decode("utf-8", "replace")
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TraceRecord:
        message = parse_message(str(data["message"]).encode("utf-8"))
        assert isinstance(message, Request | Response)
        local = data.get("local")
        return cls(
            str(data["direction"]),
            message,
            endpoint_from_text(str(data["peer"])),
            endpoint_from_text(local) if local else None,
            float(data.get("time", 0.0)),
        )

    def text(self) -> str:
        """The message as a trace prints it: a header line, then the message."""
        stamp = datetime.fromtimestamp(self.time, UTC).strftime("%H:%M:%S.%f")[:-3]
        arrow = "sent to" if self.sent else "received from"
        body = bytes(self.message).decode("utf-8", "replace").replace("\r\n", "\n")
        return f"--- {stamp} {arrow} {self.peer} ---\n{body.rstrip()}\n"


def _header(message: Message, key: str) -> str:
    return message.headers.get(key) or ""


def cseq_method(message: Message) -> str:
    try:
        return message.cseq.method
    except SipError:
        return ""


def endpoint_from_text(text: str) -> Endpoint:
    """The :class:`Endpoint` that ``str(endpoint)`` wrote: ``udp:127.0.0.1:5060``."""
    transport, _, rest = text.partition(":")
    host, _, port = rest.rpartition(":")
    return Endpoint(transport, unbracket(host), int(port))


@dataclass(eq=False)
class SipTrace:
    """The messages of one agent (or several), in the order its transport saw them.

    ``on_record`` hears each record as it is made (``voip -v`` prints them); ``jsonl``,
    when given, gets each as a JSON line at once, so a trace survives a crash.
    """

    messages: list[TraceRecord] = field(default_factory=list)
    on_record: Callable[[TraceRecord], None] | None = None
    jsonl: IO[str] | None = None
    clock: Callable[[], float] = time.time
    _changed: asyncio.Event | None = None

    @classmethod
    def attach(cls, agent: Any, **options: Any) -> SipTrace:
        """A new trace of ``agent`` (a UserAgent or a TransportLayer)."""
        trace = cls(**options)
        trace.follow(agent)
        return trace

    def follow(self, agent: Any) -> Callable[[], None]:
        """Trace ``agent`` (a UserAgent or a TransportLayer) too; returns what stops it."""
        transport: TransportLayer = agent if isinstance(agent, TransportLayer) else agent.transport
        return transport.add_tracer(self.tracer)

    def tracer(
        self, direction: str, message: Message | bytes, peer: Endpoint, local: Endpoint
    ) -> None:
        """The transport tracer (:meth:`TransportLayer.add_tracer`)."""
        if isinstance(message, bytes):
            try:
                message = parse_message(message)
            except SipError:
                return  # not a SIP message (the agent sends only what it serialized)
        if not isinstance(message, Request | Response):
            return
        self.add(TraceRecord(direction, message, peer, local, self.clock()))

    def add(self, record: TraceRecord) -> None:
        self.messages.append(record)
        if self.jsonl is not None:
            self.jsonl.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
            self.jsonl.flush()
        if self.on_record is not None:
            self.on_record(record)
        if self._changed is not None:
            self._changed.set()

    def __iter__(self) -> Iterator[TraceRecord]:
        return iter(self.messages)

    def __len__(self) -> int:
        return len(self.messages)

    def ladder(self, *, retransmissions: bool = False) -> list[str]:
        """``"> INVITE"``, ``"< 100"`` …, retransmissions (the same message again in the
        same direction) left out unless asked for."""
        chosen = self.messages if retransmissions else first_copies(self.messages)
        return [str(record) for record in chosen]

    def of(self, call_id: str) -> SipTrace:
        """The messages of one Call-ID."""
        return SipTrace([t for t in self.messages if t.message.call_id == call_id])

    def find(self, label: str, direction: str | None = None) -> list[TraceRecord]:
        return [
            t
            for t in self.messages
            if t.label == label and (direction is None or t.direction == direction)
        ]

    async def wait_for(
        self, label: str, direction: str | None = None, timeout: float = 10.0
    ) -> TraceRecord:
        """The first message with ``label`` (and direction), waiting for it if need be."""
        if self._changed is None:
            self._changed = asyncio.Event()
        changed = self._changed

        async def first() -> TraceRecord:
            while True:
                found = self.find(label, direction)
                if found:
                    return found[0]
                changed.clear()
                await changed.wait()

        return await asyncio.wait_for(first(), timeout)

    def write_jsonl(self, path: str | Path) -> None:
        """Write the trace as JSON lines to ``path``."""
        with open(path, "w", encoding="utf-8") as out:
            for record in self.messages:
                out.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")


def first_copies(records: Iterable[TraceRecord]) -> list[TraceRecord]:
    """The records without retransmissions: the same octets again in the same direction
    (RFC 3261 §17.1.1.2 and §17.2.1 resend messages unchanged)."""
    seen: set[tuple[str, bytes]] = set()
    kept: list[TraceRecord] = []
    for record in records:
        key = (record.direction, bytes(record.message))
        if key in seen:
            continue
        seen.add(key)
        kept.append(record)
    return kept


def read_jsonl(source: str | Path | IO[str]) -> list[TraceRecord]:
    """The records of a JSON-lines trace (as :class:`SipTrace` writes it)."""
    if isinstance(source, str | Path):
        with open(source, encoding="utf-8") as lines:
            return read_jsonl(lines)
    return [TraceRecord.from_json(json.loads(line)) for line in source if line.strip()]
