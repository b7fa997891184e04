"""Locating SIP servers (RFC 3263 §4): a SIP or SIPS URI to the targets to try, in order.

``locate`` runs the client procedure of RFC 3263 §4 with dnspython: transport selection
(§4.1: the ``transport`` parameter, numeric hosts and explicit ports, NAPTR, SRV without
NAPTR), then port and address (§4.2: SRV ordered by RFC 2782, A and AAAA). It returns
every target in the order to try them; ``TargetList`` hands them out one after the
other as the transaction layer reports failures (§4.3).

A DNS lookup that times out, fails (SERVFAIL, REFUSED) or finds nothing counts as no
records and the procedure moves on to its next step; only when nothing at all is left
does ``locate`` raise ``LocateError``, whose message lists every lookup and its outcome.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import random
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdata
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rdtypes.IN.NAPTR
import dns.rdtypes.IN.SRV
import dns.resolver

from voip.sip.uri import HOSTNAME, SipUri, parse_uri

Transport = Literal["udp", "tcp", "tls", "ws", "wss"]
AddressType = Literal["A", "AAAA"]

# RFC 3261 §19.1.2: 5060 for UDP and TCP, 5061 for TLS; WebSocket's own 80 and 443.
DEFAULT_PORTS: dict[Transport, int] = {"udp": 5060, "tcp": 5060, "tls": 5061, "ws": 80, "wss": 443}
# RFC 3263 §4.1 and the IANA registry it creates, with RFC 7118's WebSocket services.
# SCTP services are not listed because this toolkit has no such transport; their
# records are discarded.
NAPTR_SERVICES: dict[str, Transport] = {
    "SIP+D2U": "udp",
    "SIP+D2T": "tcp",
    "SIPS+D2T": "tls",
    "SIP+D2W": "ws",
    "SIPS+D2W": "wss",
}
# RFC 3263 §4.2: "_sips" for TLS, whether the URI is SIPS or the client chose TLS.
SRV_SERVICES: dict[Transport, str] = {
    "udp": "_sip._udp",
    "tcp": "_sip._tcp",
    "tls": "_sips._tcp",
    "ws": "_sip._ws",
    "wss": "_sips._ws",
}
# The transports a SIPS URI may use: TLS, and WebSocket over TLS (RFC 7118 §5.3).
SECURE: tuple[Transport, ...] = ("tls", "wss")
# RFC 3263 §4.1 leaves the order of SRV queries without NAPTR to the client: TLS first
# because it protects the request, then TCP, which has no MTU limit.
PREFERENCE: tuple[Transport, ...] = ("tls", "tcp", "udp")
ADDRESS_TYPES: tuple[AddressType, ...] = ("A", "AAAA")
# How long a failed target stays at the back of the list: local policy, no RFC sets it.
BLACKLIST_TTL = 30.0

_RANDOM = random.Random()
_HOSTNAME_RE = re.compile(HOSTNAME)
_TRANSPORTS: dict[str, Transport] = {name: name for name in DEFAULT_PORTS}


class LocateError(Exception):
    """No target could be found for a URI; the message says what was tried."""

    def __init__(self, message: str, tried: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.tried = tuple(tried)


@dataclass(frozen=True, slots=True)
class Target:
    """One place to send a request: transport, IP address literal (IPv6 without
    brackets) and port.

    ``server_name`` is the name a TLS client sends as SNI and checks the certificate
    against: the URI's TARGET (its maddr or host), never a NAPTR replacement or SRV
    target. RFC 5922 §4 matches the certificate with the domain the URI names, since
    DNS answers are not authenticated and would otherwise let an attacker steer the
    client to a host whose certificate matches itself. For a numeric TARGET it is the
    address, which Python's ``ssl`` checks against the IP address entries.
    """

    transport: Transport
    host: str
    port: int
    server_name: str


@dataclass(frozen=True, slots=True)
class Srv:
    """The fields of an SRV record that order and address a target (RFC 2782)."""

    priority: int
    weight: int
    port: int
    target: str


class _Weighted(Protocol):
    @property
    def priority(self) -> int: ...

    @property
    def weight(self) -> int: ...


W = TypeVar("W", bound=_Weighted)


def order_srv(records: Iterable[W], rng: random.Random = _RANDOM) -> list[W]:
    """RFC 2782 order: by priority, lowest first; within a priority a weighted random
    selection, so a record is chosen next with probability proportional to its weight.
    """
    remaining = list(records)
    ordered: list[W] = []
    for priority in sorted({record.priority for record in remaining}):
        # "In any order, except that all those with weight 0 are placed at the
        # beginning": shuffled first so that equal weights share the first place fairly,
        # from a canonical order, so that one random state gives one result whatever
        # order the server listed the records in.
        level = sorted((r for r in remaining if r.priority == priority), key=repr)
        rng.shuffle(level)
        level.sort(key=lambda record: record.weight != 0)
        while level:
            # "Choose a uniform random number between 0 and the sum computed
            # (inclusive), and select the RR whose running sum value is the first in
            # the selected order which is greater than or equal to the random number."
            chosen = rng.randint(0, sum(record.weight for record in level))
            running = 0
            for index, record in enumerate(level):
                running += record.weight
                if running >= chosen:
                    ordered.append(level.pop(index))
                    break
    return ordered


def _numeric(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def _uri_transport(uri: SipUri, supported: Sequence[Transport]) -> Transport | None:
    """The transport the URI asks for (RFC 3263 §4.1 first rule), or None."""
    value = uri.transport
    if value is None:
        return None
    if uri.secure:
        # A SIPS URI is always TLS; transport=tcp says TLS over TCP, transport=ws
        # WebSocket over TLS (RFC 7118 §5.3). TLS over UDP is not possible (RFC 3263
        # §4.1), so transport=udp cannot be honoured.
        if value == "udp":
            raise LocateError(f"{uri}: a SIPS URI cannot use transport=udp (TLS needs TCP)")
        value = {"tcp": "tls", "ws": "wss"}.get(value, value)
    elif value == "ws" and "ws" not in supported and "wss" in supported:
        # "ws" is the one URI value for WebSocket (RFC 7118 §5.3), which Kamailio also
        # writes for its wss listener (Record-Route, Path): a client that speaks only
        # WebSocket over TLS reaches it over wss (the layer then uses the connection
        # open to that address, whichever kind it is).
        value = "wss"
    chosen = _TRANSPORTS.get(value)
    if chosen is None or chosen not in supported:
        raise LocateError(f"{uri}: transport={value} is not supported by this client")
    return chosen


def _default_transport(uri: SipUri, supported: Sequence[Transport]) -> Transport:
    """RFC 3263 §4.1: UDP for a SIP URI and TLS over TCP for a SIPS URI; TCP (or TLS)
    when this client has no UDP, as §4.1 allows another transport."""
    wanted: tuple[Transport, ...] = SECURE if uri.secure else ("udp", "tcp", "tls", "ws", "wss")
    for transport in wanted:
        if transport in supported:
            return transport
    raise LocateError(f"{uri}: none of {', '.join(wanted)} is supported by this client")


def _outcome(error: dns.exception.DNSException) -> str:
    if isinstance(error, dns.resolver.NXDOMAIN):
        return "no such name"
    if isinstance(error, dns.resolver.NoAnswer):
        return "no records"
    if isinstance(error, dns.exception.Timeout):
        return "timed out"
    if isinstance(error, dns.resolver.NoNameservers):
        return "server failure"
    return f"failed ({error})"


@dataclass(slots=True)
class _Lookups:
    """The DNS queries of one ``locate`` call: each asked at most once, all logged."""

    resolver: dns.asyncresolver.Resolver
    address_types: Sequence[AddressType]
    rng: random.Random
    tried: list[str] = field(init=False, default_factory=list)
    _answers: dict[tuple[str, str], tuple[dns.rdata.Rdata, ...]] = field(
        init=False, default_factory=dict
    )

    async def _query(self, name: str, rdtype: str) -> tuple[tuple[dns.rdata.Rdata, ...], str]:
        try:
            answer = await self.resolver.resolve(name, rdtype, search=False)
        except dns.exception.DNSException as error:
            return (), _outcome(error)
        return tuple(answer), f"{len(answer)} record(s)"

    async def query(self, keys: Iterable[tuple[str, str]]) -> list[tuple[dns.rdata.Rdata, ...]]:
        """Answers to (name, type) questions; the new ones are asked concurrently and
        logged in ``tried`` in the order asked, whatever order they complete in."""
        keys = list(keys)
        new = [key for key in dict.fromkeys(keys) if key not in self._answers]
        results = await asyncio.gather(*(self._query(name, rdtype) for name, rdtype in new))
        for (name, rdtype), (records, outcome) in zip(new, results, strict=True):
            self._answers[name, rdtype] = records
            self.tried.append(f"{rdtype} {name.rstrip('.')}: {outcome}")
        return [self._answers[key] for key in keys]

    async def naptr(
        self, domain: str, uri: SipUri, supported: Sequence[Transport]
    ) -> list[tuple[Transport, str]]:
        """RFC 3263 §4.1: the SRV names (with their transports) of the NAPTR records that
        this client can use, by order and then preference (RFC 3403 §4.1)."""
        (answer,) = await self.query([(domain, "NAPTR")])
        usable: list[tuple[int, int, Transport, str]] = []
        for record in answer:
            if not isinstance(record, dns.rdtypes.IN.NAPTR.NAPTR):
                continue
            service = record.service.decode("ascii", "replace").upper()
            transport = NAPTR_SERVICES.get(service)
            # A SIPS URI MUST discard services without "SIPS"; a SIP URI keeps them if
            # the client supports TLS; services of unsupported transports are discarded.
            # Only "S" records lead to SRV as §4.1 describes; the others are not SIP's.
            if (
                transport is None
                or transport not in supported
                or (uri.secure and transport not in SECURE)
                or record.flags.lower() != b"s"
            ):
                continue
            usable.append(
                (record.order, record.preference, transport, record.replacement.to_text())
            )
        # All usable records are kept, not only those of the lowest order: the later
        # ones are the domain's own fallbacks and give §4.3 failover somewhere to go.
        return [(transport, name) for *_, transport, name in sorted(usable)]

    async def srv(
        self, services: Sequence[tuple[Transport, str]]
    ) -> tuple[list[tuple[Transport, str, int]], bool]:
        """RFC 2782 usage rules for each (transport, SRV name), in the order given.

        Returns (transport, host, port) in the order to try and whether any SRV
        record was found at all, even one saying the service is unavailable.
        """
        answers = await self.query((name, "SRV") for _, name in services)
        hosts: list[tuple[Transport, str, int]] = []
        found = False
        for (transport, name), answer in zip(services, answers, strict=True):
            records = [
                Srv(record.priority, record.weight, record.port, record.target.to_text())
                for record in answer
                if isinstance(record, dns.rdtypes.IN.SRV.SRV)
            ]
            found = found or bool(records)
            # RFC 2782: a target of "." means "service decidedly not available at
            # this domain"; such a record is never contacted.
            available = [record for record in records if record.target != "."]
            if records and not available:
                self.tried.append(f"SRV {name.rstrip('.')}: service not available (target '.')")
            hosts += [
                (transport, record.target, record.port) for record in order_srv(available, self.rng)
            ]
        return hosts, found

    async def addresses(
        self, hosts: Sequence[tuple[Transport, str, int]], server_name: str
    ) -> list[Target]:
        """RFC 3263 §4.2: each host's A and AAAA addresses in ``address_types`` order,
        hosts in the order given; a target that comes twice is kept where it is first."""
        keys = [(host, rdtype) for _, host, _ in hosts for rdtype in self.address_types]
        answers = iter(await self.query(keys))
        targets: dict[Target, None] = {}
        for transport, _, port in hosts:
            for _ in self.address_types:
                for record in next(answers):
                    if isinstance(record, dns.rdtypes.IN.A.A | dns.rdtypes.IN.AAAA.AAAA):
                        targets[Target(transport, str(record.address), port, server_name)] = None
        return list(targets)


async def locate(
    uri: SipUri | str,
    *,
    resolver: dns.asyncresolver.Resolver | None = None,
    supported: Sequence[Transport] = PREFERENCE,
    address_types: Sequence[AddressType] = ADDRESS_TYPES,
    rng: random.Random = _RANDOM,
) -> list[Target]:
    """The targets for a request to ``uri``, in the order to try them (RFC 3263 §4).

    ``supported``: the transports this client has, most preferred first; the order
    only matters for the SRV queries made when the domain has no NAPTR records.
    ``address_types``: ("A", "AAAA") tries IPv4 first, ("AAAA", "A") IPv6 first, and
    ("A",) or ("AAAA",) only one family. ``rng`` draws the RFC 2782 weighted order.
    ``resolver`` defaults to one configured from the system (/etc/resolv.conf); its
    ``lifetime`` bounds each lookup, and the lookups run in at most four rounds (NAPTR,
    SRV after NAPTR, SRV without NAPTR, A and AAAA), each round's queries concurrently.

    Raises ``LocateError`` when the URI cannot be used or nothing is found.
    """
    if isinstance(uri, str):
        parsed = parse_uri(uri)
        if not isinstance(parsed, SipUri):
            raise LocateError(f"{uri}: only sip: and sips: URIs can be located")
        uri = parsed
    # RFC 3263 §4: TARGET is the maddr parameter if present, otherwise the host.
    domain = (uri.maddr or uri.host).strip("[]")
    server_name = domain.rstrip(".")
    transport = _uri_transport(uri, supported)
    address = _numeric(domain)
    if address is None and not _HOSTNAME_RE.fullmatch(domain):
        # maddr is only checked against the parameter characters when parsed.
        raise LocateError(f"{uri}: maddr {domain!r} is neither a host name nor an address")
    if address is not None:
        # §4.2: a numeric TARGET is used as it is, at the URI's port or the default.
        chosen = transport or _default_transport(uri, supported)
        return [Target(chosen, address, uri.port or DEFAULT_PORTS[chosen], address)]

    lookups = _Lookups(resolver or dns.asyncresolver.Resolver(), address_types, rng)
    fallback = transport or _default_transport(uri, supported)
    hosts: list[tuple[Transport, str, int]]
    if uri.port is not None:
        # §4.2: an explicit port skips NAPTR and SRV; only A and AAAA are looked up.
        hosts = [(fallback, domain, uri.port)]
    else:
        if transport is not None:
            # §4.2: a transport given explicitly skips NAPTR; SRV for that transport.
            hosts, found = await lookups.srv([(transport, f"{SRV_SERVICES[transport]}.{domain}")])
        else:
            hosts, found = await lookups.srv(await lookups.naptr(domain, uri, supported))
            if not found:
                # §4.1: without (usable) NAPTR records, one SRV query per transport
                # this client supports; a SIPS URI only asks for "_sips".
                wanted = [t for t in supported if t in SECURE or not uri.secure]
                hosts, found = await lookups.srv(
                    [(t, f"{SRV_SERVICES[t]}.{domain}") for t in wanted]
                )
        if not found:
            # §4.1 and §4.2: no SRV records, so A and AAAA of the domain itself, with
            # UDP for SIP and TLS for SIPS, at the transport's default port.
            hosts = [(fallback, domain, DEFAULT_PORTS[fallback])]
    targets = await lookups.addresses(hosts, server_name)
    if not targets:
        raise LocateError(
            f"no SIP server found for {uri}: tried " + "; ".join(lookups.tried), lookups.tried
        )
    return targets


class Failure(enum.Enum):
    """What makes a target fail for a request (RFC 3263 §4.3)."""

    #: Timer B or F fired without any response, provisional or final.
    TIMEOUT = "timeout"
    #: A transport failure: a fatal ICMP error on UDP, a failed TCP or TLS connection.
    TRANSPORT_ERROR = "transport error"
    #: The target answered 503 (Service Unavailable).
    SERVICE_UNAVAILABLE = "503"


@dataclass(slots=True)
class Blacklist:
    """Targets that failed recently, with the time until which they are avoided.

    Its owner (the user agent) keeps one across requests; ``clock`` gives monotonic
    seconds. RFC 3263 does not ask for this: it only spares every new request the wait
    for a target that just timed out (32 s with Timer B).
    """

    clock: Callable[[], float] = time.monotonic
    ttl: float = BLACKLIST_TTL
    _until: dict[Target, float] = field(init=False, default_factory=dict)

    def add(self, target: Target, ttl: float | None = None) -> None:
        self._until[target] = self.clock() + (self.ttl if ttl is None else ttl)

    def __contains__(self, target: object) -> bool:
        if not isinstance(target, Target) or target not in self._until:
            return False
        if self.clock() >= self._until[target]:
            del self._until[target]
            return False
        return True


@dataclass(slots=True)
class TargetList:
    """The targets of one request and the one to use now (RFC 3263 §4.3).

    ``current`` is the target to send to; when the transaction layer reports a
    ``Failure`` for it, ``failed`` moves on to the next one, for which the caller
    makes a new request with a new Via branch (a new transaction). ``current`` is None
    once every target has failed; ``failures`` then says what happened to each.

    Nothing is remembered between requests except through ``blacklist``: targets it
    holds are moved behind the others (never dropped), and targets that fail are added
    to it, for ``retry_after`` seconds when a 503 carried Retry-After.
    """

    targets: Sequence[Target]
    blacklist: Blacklist | None = None
    failures: list[tuple[Target, Failure]] = field(init=False, default_factory=list)
    _order: list[Target] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        avoided = self.blacklist if self.blacklist is not None else ()
        self._order = [t for t in self.targets if t not in avoided]
        self._order += [t for t in self.targets if t in avoided]

    @property
    def current(self) -> Target | None:
        return self._order[len(self.failures)] if len(self.failures) < len(self._order) else None

    def failed(self, failure: Failure, retry_after: float | None = None) -> Target | None:
        """Report that ``current`` failed; return the next target to try, or None."""
        target = self.current
        if target is None:
            raise LocateError("every target has already failed")
        self.failures.append((target, failure))
        if self.blacklist is not None:
            self.blacklist.add(target, retry_after)
        return self.current
