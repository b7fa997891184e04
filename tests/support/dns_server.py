"""An authoritative DNS server on loopback, for tests that resolve names (RFC 1035).

It answers from records the test gives it, over UDP and TCP on 127.0.0.1 at one
ephemeral port, inside the test's own event loop; it can be told to let a name time
out or to answer it with SERVFAIL, and it logs every question it gets::

    async with DnsServer() as server:
        server.load('''
            example.com.             NAPTR 50 50 "s" "SIP+D2U" "" _sip._udp.example.com.
            _sip._udp.example.com.   SRV   0 1 5060 sip1.example.com.
            sip1.example.com.        A     127.0.0.2
        ''')
        targets = await locate(uri, resolver=server.resolver())
        assert Query("example.com", "NAPTR") in server.queries

Records are zone-file lines without $ORIGIN (names are absolute whether or not they
end in a dot) or a mapping from owner name to ``"TYPE rdata"`` strings. A CNAME is
followed within the records, as an authoritative server does (RFC 1034 §4.3.2).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, cast

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

HOST = "127.0.0.1"
TTL = 60
# RFC 1035 §4.2.1: without EDNS (RFC 6891) a UDP answer is at most 512 octets.
UDP_LIMIT = 512
# How often to look for a port that is free for both UDP and TCP.
BIND_ATTEMPTS = 20
# RFC 1034 §4.3.2 leaves the length of a CNAME chain open; this stops loops.
CNAME_LIMIT = 8

Misbehaviour = Literal["timeout", "servfail"]
Zone = str | Mapping[str, Iterable[str]]


@dataclass(frozen=True, slots=True)
class Query:
    """One question the server got: the name without its final dot and the type.

    ``transport`` ("udp" or "tcp") is kept but not compared, so tests can write
    ``Query("example.com", "NAPTR") in server.queries``.
    """

    name: str
    rdtype: str
    transport: str = field(default="udp", compare=False)


def _zone_lines(zone: Zone) -> list[str]:
    if isinstance(zone, str):
        return [line.strip() for line in zone.splitlines() if line.strip()]
    return [f"{name} {record}" for name, records in zone.items() for record in records]


def _key(name: str | dns.name.Name) -> str:
    text = name if isinstance(name, str) else name.to_text()
    return text.rstrip(".").lower()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        reply = self.server.reply(data, "udp")
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


class DnsServer:
    """The server; use it as ``async with DnsServer(zone) as server``.

    ``port`` is known once started; ``queries`` lists every question received, in order.
    """

    def __init__(self, zone: Zone | None = None) -> None:
        self.port = 0
        self.queries: list[Query] = []
        self._lines: list[str] = []
        self._zone = self._parse()
        self._misbehaviour: dict[tuple[str, str | None], Misbehaviour] = {}
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        if zone is not None:
            self.load(zone)

    # --- what the tests call ------------------------------------------------------

    def load(self, zone: Zone) -> None:
        """Add records (zone-file text, or a mapping of name to "TYPE rdata" strings)."""
        lines = [*self._lines, *_zone_lines(zone)]
        self._zone = self._parse(lines)
        self._lines = lines

    def time_out(self, name: str, rdtype: str | None = None) -> None:
        """Never answer questions for ``name`` (of type ``rdtype``, or of any type)."""
        self._misbehaviour[_key(name), rdtype] = "timeout"

    def servfail(self, name: str, rdtype: str | None = None) -> None:
        """Answer questions for ``name`` (of ``rdtype``, or any type) with SERVFAIL."""
        self._misbehaviour[_key(name), rdtype] = "servfail"

    def resolver(self, *, lifetime: float = 2.0) -> dns.asyncresolver.Resolver:
        """A stub resolver that asks this server only and gives up after ``lifetime``."""
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [HOST]
        resolver.port = self.port
        resolver.timeout = lifetime
        resolver.lifetime = lifetime
        return resolver

    def asked(self, name: str) -> bool:
        """Whether any question about ``name`` reached the server."""
        return any(query.name == _key(name) for query in self.queries)

    # --- life cycle -----------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(BIND_ATTEMPTS):
            udp, _protocol = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(HOST, 0)
            )
            port = udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._serve_stream, HOST, port)
            except OSError:
                # The TCP port is taken by someone else: try another UDP port.
                udp.close()
                continue
            self._udp, self.port = udp, port
            return
        raise OSError(f"no port on {HOST} free for both UDP and TCP")

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()

    async def __aenter__(self) -> DnsServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- answering ------------------------------------------------------------------

    def reply(self, wire: bytes, transport: str) -> bytes | None:
        """The answer to one query message in wire format, or None to stay silent."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if len(query.question) != 1:
            return None
        question = query.question[0]
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append(Query(_key(question.name), rdtype, transport))
        misbehaviour = self._misbehaviour.get(
            (_key(question.name), rdtype)
        ) or self._misbehaviour.get((_key(question.name), None))
        if misbehaviour == "timeout":
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if misbehaviour == "servfail":
            response.set_rcode(dns.rcode.SERVFAIL)
        else:
            self._answer(response, question.name, question.rdtype)
        limit = 65535 if transport == "tcp" else max(UDP_LIMIT, query.payload)
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            # RFC 1035 §4.2.1: too long for UDP; set TC so the client asks over TCP.
            truncated = dns.message.make_response(query)
            truncated.flags |= dns.flags.AA | dns.flags.TC
            return truncated.to_wire()

    def _answer(
        self, response: dns.message.Message, name: dns.name.Name, rdtype: dns.rdatatype.RdataType
    ) -> None:
        for _ in range(CNAME_LIMIT):
            node = self._zone.get_node(name)
            if node is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
                return
            rdataset = node.get_rdataset(dns.rdataclass.IN, rdtype)
            cname = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
            found = rdataset or (cname if rdtype != dns.rdatatype.CNAME else None)
            if not found:
                return  # NOERROR with no data: the name exists, the type does not.
            response.answer.append(dns.rrset.from_rdata_list(name, found.ttl, list(found)))
            if found is rdataset:
                return
            name = found[0].target

    async def _serve_stream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        # RFC 1035 §4.2.2: over TCP each message is preceded by its two-octet length.
        try:
            while True:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                reply = self.reply(await reader.readexactly(length), "tcp")
                if reply is not None:
                    writer.write(struct.pack("!H", len(reply)) + reply)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _parse(self, lines: Iterable[str] = ()) -> dns.zone.Zone:
        # Origin "." makes every owner name absolute, so one server holds any domain;
        # check_origin=False because a test zone has no SOA or NS at the root.
        text = "\n".join([f"$TTL {TTL}", *lines])
        return dns.zone.from_text(text, origin=dns.name.root, relativize=False, check_origin=False)
