"""A packet capture of a user agent: its SIP messages and its calls' RTP and RTCP, as pcap.

:class:`Capture` follows an agent the way a :class:`~voip.trace.SipTrace` does: SIP
through the transport layer's tracer (each message handed to a socket, each one received,
as it came), media through the engine's wiretap (each RTP and RTCP datagram of every call
opened from then on, as it is on the wire: SRTP stays encrypted). :class:`PcapWriter`
writes them to a classic libpcap file of raw IP packets (``LINKTYPE_RAW``), which
Wireshark, tshark and sngrep read like a capture taken on the interface:

- a UDP datagram is an IPv4 or IPv6 packet with its UDP header, checksums included;
- SIP over a connection (TCP, TLS) is a TCP segment per message between the connection's
  addresses, with sequence numbers that follow the bytes of each direction. The capture
  sees SIP above TLS, so a TLS connection appears as the plaintext SIP it carried, on its
  own ports; Wireshark takes TCP port 5061 for TLS unless told otherwise
  (``tshark -d tcp.port==5061,sip``, or *Decode As… SIP*).

No packet is taken from the network (no privileges are needed): the capture holds what
the agent itself sent and received, including what it retransmitted.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

from voip.sip import Message
from voip.transport import Endpoint
from voip.transport.endpoint import UDP, is_wildcard
from voip.transport.source import SourceAddresses

if TYPE_CHECKING:
    from voip.useragent import UserAgent

__all__ = ["LINKTYPE_RAW", "Capture", "PcapWriter"]

Address = tuple[str, int]

#: libpcap's link type for packets that begin with an IPv4 or IPv6 header
LINKTYPE_RAW = 101
_MAGIC = 0xA1B2C3D4  # microsecond timestamps, written in this machine's byte order
SNAPLEN = 262144
_PROTOCOL_TCP = 6
_PROTOCOL_UDP = 17
_TCP_PUSH_ACK = 0x18
#: TCP payload per segment: a message over this is written as several segments
_SEGMENT = 65000


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``, as a number to be written in this
    machine's byte order (§2(B): summing 16-bit words in either order gives the sum in
    that order, so the native sum packed natively is right on the wire)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(array("H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _packed(host: str, family: int) -> bytes:
    host = host.partition("%")[0]  # an IPv6 scope is not part of the address
    if family == socket.AF_INET6 and ":" not in host:
        host = f"::ffff:{host}"  # an IPv4 address beside an IPv6 one: as mapped
    return socket.inet_pton(family, host)


class PcapWriter:
    """Writes IP packets carrying UDP datagrams and TCP segments to a pcap file."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.packets = 0
        self._identification = 0
        #: next sequence number of each direction of a connection, (source, destination)
        self._sequence: dict[tuple[Address, Address], int] = {}
        file.write(struct.pack("=IHHiIII", _MAGIC, 2, 4, 0, 0, SNAPLEN, LINKTYPE_RAW))

    def udp(self, source: Address, destination: Address, payload: bytes, when: float) -> None:
        length = 8 + len(payload)
        header = struct.pack("!HHHH", source[1], destination[1], length, 0)
        self._ip(_PROTOCOL_UDP, (source, destination), header, payload, when, checksum_at=6)

    def tcp(self, source: Address, destination: Address, payload: bytes, when: float) -> None:
        """``payload``, the next bytes the connection carried from ``source`` to
        ``destination``, as segments that acknowledge what came the other way."""
        for start in range(0, len(payload), _SEGMENT):
            chunk = payload[start : start + _SEGMENT]
            sequence = self._sequence.get((source, destination), 1)
            self._sequence[source, destination] = (sequence + len(chunk)) & 0xFFFFFFFF
            acknowledged = self._sequence.get((destination, source), 1)
            header = struct.pack(
                "!HHIIBBHHH",
                *(source[1], destination[1], sequence, acknowledged),
                *(5 << 4, _TCP_PUSH_ACK, 65535, 0, 0),
            )
            self._ip(_PROTOCOL_TCP, (source, destination), header, chunk, when, checksum_at=16)

    def _ip(
        self,
        protocol: int,
        flow: tuple[Address, Address],
        header: bytes,
        payload: bytes,
        when: float,
        *,
        checksum_at: int,
    ) -> None:
        """An IP packet of ``header`` (UDP or TCP, checksum zero at ``checksum_at``) and
        ``payload``, its checksum computed over the pseudo-header (RFC 768, RFC 9293 §3.1,
        RFC 8200 §8.1)."""
        source, destination = flow
        family = socket.AF_INET6 if ":" in source[0] or ":" in destination[0] else socket.AF_INET
        src, dst = _packed(source[0], family), _packed(destination[0], family)
        length = len(header) + len(payload)
        if family == socket.AF_INET:
            pseudo = src + dst + struct.pack("!BBH", 0, protocol, length)
        else:
            pseudo = src + dst + struct.pack("!IxxxB", length, protocol)
        checksum = _checksum(pseudo + header + payload)
        if protocol == _PROTOCOL_UDP and checksum == 0:
            checksum = 0xFFFF  # RFC 768: zero means "no checksum"
        segment = b"".join(
            (header[:checksum_at], struct.pack("=H", checksum), header[checksum_at + 2 :])
        )
        if family == socket.AF_INET:
            self._identification = (self._identification + 1) & 0xFFFF
            ip = struct.pack(
                "!BBHHHBBH4s4s",
                *(0x45, 0, 20 + length, self._identification, 0x4000, 64, protocol, 0),
                *(src, dst),
            )
            ip = ip[:10] + struct.pack("=H", _checksum(ip)) + ip[12:]
        else:
            ip = struct.pack("!IHBB16s16s", 6 << 28, length, protocol, 64, src, dst)
        packet = ip + segment + payload
        seconds = int(when)
        microseconds = min(int((when - seconds) * 1e6), 999_999)
        size = len(packet)
        self.file.write(struct.pack("=IIII", seconds, microseconds, size, size) + packet)
        self.packets += 1

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class Capture:
    """SIP and media of one agent, written by a :class:`PcapWriter` as they happen."""

    def __init__(self, writer: PcapWriter, *, clock: Callable[[], float] = time.time) -> None:
        self.writer = writer
        self.clock = clock
        self._detach: list[Callable[[], None]] = []
        self._closed = False
        # a socket bound to the unspecified address: the address the kernel sent from
        self._addresses = SourceAddresses()

    @classmethod
    def attach(cls, agent: UserAgent, path: Path | str) -> Capture:
        """A capture of ``agent``'s SIP and of the media of every call opened from now on,
        written to the pcap file ``path``."""
        file = Path(path).open("wb")  # noqa: SIM115 (the writer owns it until close())
        capture = cls(PcapWriter(file))
        capture.follow(agent)
        return capture

    def follow(self, agent: UserAgent) -> None:
        self._detach.append(agent.transport.add_tracer(self.sip))
        engine = agent.media
        engine.wiretap = self.media

        def stop_media() -> None:
            if engine.wiretap == self.media:
                engine.wiretap = None

        self._detach.append(stop_media)

    def sip(
        self, direction: str, message: Message | bytes, peer: Endpoint, local: Endpoint
    ) -> None:
        """The transport tracer: one message sent (``"out"``) or received (``"in"``)."""
        if self._closed:
            return
        data = message if isinstance(message, bytes) else bytes(message)
        near, far = self._local(local.address, peer.host), (peer.host, peer.port)
        source, destination = (near, far) if direction == "out" else (far, near)
        if peer.transport == UDP:
            self.writer.udp(source, destination, data, self.clock())
        else:
            self.writer.tcp(source, destination, data, self.clock())
        self.writer.flush()  # signalling is rare: a capture read during the call has it

    def media(self, sent: bool, data: bytes, local: Address, remote: Address) -> None:
        """The streams' wiretap: one RTP or RTCP datagram."""
        if self._closed:
            return
        local = self._local(local, remote[0])
        source, destination = (local, remote) if sent else (remote, local)
        self.writer.udp(source, destination, data, self.clock())

    def _local(self, local: Address, peer_host: str) -> Address:
        if is_wildcard(local[0]):
            return self._addresses.toward(peer_host), local[1]
        return local

    def close(self) -> None:
        """Stop following the agent and its calls; the file is complete."""
        if self._closed:
            return
        self._closed = True
        for detach in self._detach:
            detach()
        self._detach.clear()
        with contextlib.suppress(OSError):
            self.writer.close()
