"""Following the agent's local address when it changes (issue 5, item 8), sans-I/O.

An agent bound to one specific address (its listeners, and so the sent-by of its Via
and the host of its Contact, RFC 3261 §18.1.1 and §8.1.1.8) is stranded when that
address leaves the host: a laptop moves to another network, DHCP hands out another
lease, an interface is reconfigured. :class:`AddressFollower` decides what to do from
what the host says about its addresses:

- an address event (Linux rtnetlink ``RTM_NEWADDR`` / ``RTM_DELADDR``, parsed here by
  :func:`parse_netlink` from the bytes of an ``AF_NETLINK`` socket);
- a send that failed with an error that means "this source address is no more"
  (``EADDRNOTAVAIL``, ``ENETUNREACH``, ``EINVAL``);
- a probe's outcome: whether the bound address can still be bound, and which source
  address the routing table now picks towards the agent's peers (``getsockname()`` of
  a UDP socket ``connect()``-ed to each).

It answers with an action: :class:`Probe` (the driver looks, then reports
:class:`Probed`), :class:`Move` (the driver calls :meth:`UserAgent.rebind
<voip.useragent.UserAgent.rebind>`) or nothing. The new address is, first, one that
appeared on the interface that lost the old one (most recent first: the same link's new
lease), else the source the routing table picks towards a peer (a remote peer: a peer
on this host is reached from its own address, which says nothing about ours).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from dataclasses import dataclass

__all__ = [
    "MOVING_ERRORS",
    "AddressAdded",
    "AddressEvent",
    "AddressFollower",
    "AddressRemoved",
    "Move",
    "Probe",
    "Probed",
    "SendFailed",
    "dump_request",
    "parse_netlink",
]

#: send errors after which the bound address is checked at once
MOVING_ERRORS = frozenset({errno.EADDRNOTAVAIL, errno.ENETUNREACH, errno.EINVAL})

# rtnetlink (linux/rtnetlink.h, linux/if_addr.h, linux/netlink.h)
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
IFA_ADDRESS, IFA_LOCAL = 1, 2
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
#: the multicast groups of IPv4 and IPv6 address changes
RTMGRP_IFADDR = 0x10 | 0x100
_NLMSGHDR = struct.Struct("=IHHII")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTATTR = struct.Struct("=HH")


@dataclass(frozen=True, slots=True)
class AddressAdded:
    """``address`` is (now) assigned to the interface of index ``interface``."""

    address: str
    interface: int


@dataclass(frozen=True, slots=True)
class AddressRemoved:
    """``address`` was taken off the interface of index ``interface``."""

    address: str
    interface: int


@dataclass(frozen=True, slots=True)
class SendFailed:
    """A send from the agent's sockets failed with ``errno``."""

    errno: int


@dataclass(frozen=True, slots=True)
class Probed:
    """What the driver found: whether the bound address can still be bound
    (``present``), and for each peer address the source address the routing table picks
    towards it (None: no route)."""

    present: bool
    sources: tuple[tuple[str, str | None], ...] = ()


AddressEvent = AddressAdded | AddressRemoved | SendFailed | Probed


@dataclass(frozen=True, slots=True)
class Probe:
    """Action: look whether the bound address is still there and where the routes to the
    peers lead now, and report it as :class:`Probed`."""


@dataclass(frozen=True, slots=True)
class Move:
    """Action: move the agent from ``old`` to ``new`` (``UserAgent.rebind(new)``)."""

    old: str
    new: str
    reason: str


def _same(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a == b


def _family(address: str) -> int:
    try:
        return ipaddress.ip_address(address).version
    except ValueError:
        return 0


class AddressFollower:
    """The decisions of an agent bound to ``bound`` (see the module's description)."""

    def __init__(self, bound: str) -> None:
        self.bound = bound
        #: the bound address left the host and no new one was chosen yet
        self.lost = False
        #: the host's addresses by interface index, in the order they appeared
        self.addresses: dict[str, int] = {}
        self._interface: int | None = None  # the bound address's, once known

    def rebound(self, host: str) -> None:
        """The agent now uses ``host`` (after a :class:`Move`, or moved by its user)."""
        self.bound, self.lost = host, False
        self._interface = self.addresses.get(host, self._interface)

    def relisting(self) -> None:
        """Events were lost and the host's addresses are being listed again (the driver
        asked for a dump): what was known of them is forgotten, the list's answers
        replace it."""
        self.addresses.clear()

    def handle(self, event: AddressEvent) -> Probe | Move | None:
        if isinstance(event, AddressAdded):
            self.addresses.pop(event.address, None)
            self.addresses[event.address] = event.interface  # the most recent last
            if _same(event.address, self.bound):
                self._interface = event.interface
                self.lost = False  # it came back (or is still there: a dump)
                return None
            return self._find("address added") if self.lost else None
        if isinstance(event, AddressRemoved):
            self.addresses.pop(event.address, None)
            if not _same(event.address, self.bound) or self.lost:
                return None
            self.lost, self._interface = True, event.interface
            return self._find(f"{self.bound} removed")
        if isinstance(event, SendFailed):
            return Probe() if event.errno in MOVING_ERRORS else None
        if event.present:
            self.lost = False
            return None
        self.lost = True
        return self._find(f"{self.bound} cannot be bound", event)

    def _find(self, why: str, probed: Probed | None = None) -> Probe | Move | None:
        """The new address; else a probe of the routes towards the peers, unless this is
        a probe's outcome (then nothing: the next address event, or poll, tells)."""
        sources = probed.sources if probed is not None else ()
        new = self._on_same_interface()
        if new is None:
            for peer, source in sources:
                if source is not None and not _same(source, self.bound) and not _same(source, peer):
                    new = source
                    break
        if new is None:
            return Probe() if probed is None else None
        old = self.bound
        self.rebound(new)
        return Move(old, new, why)

    def _on_same_interface(self) -> str | None:
        if self._interface is None:
            return None
        family = _family(self.bound)
        for address in reversed(self.addresses):
            if self.addresses[address] != self._interface or _same(address, self.bound):
                continue
            parsed = ipaddress.ip_address(address)
            if parsed.version == family and not parsed.is_link_local:
                return address
        return None


def dump_request(sequence: int = 1) -> bytes:
    """An rtnetlink request for every address of the host (answered with one
    ``RTM_NEWADDR`` each, then ``NLMSG_DONE``)."""
    body = _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
    return (
        _NLMSGHDR.pack(
            _NLMSGHDR.size + len(body), RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, sequence, 0
        )
        + body
    )


def parse_netlink(data: bytes) -> list[AddressAdded | AddressRemoved]:
    """The address events in ``data`` (one read of an rtnetlink socket: messages one
    after the other, each 4-octet aligned). Other messages are skipped; a truncated one
    ends the parse (the kernel does not split a message across reads)."""
    events: list[AddressAdded | AddressRemoved] = []
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size or offset + length > len(data):
            break
        if kind in (RTM_NEWADDR, RTM_DELADDR):
            event = _address_message(kind, data[offset + _NLMSGHDR.size : offset + length])
            if event is not None:
                events.append(event)
        offset += (length + 3) & ~3
    return events


def _address_message(kind: int, body: bytes) -> AddressAdded | AddressRemoved | None:
    if len(body) < _IFADDRMSG.size:
        return None
    family, _prefix, _flags, _scope, index = _IFADDRMSG.unpack_from(body)
    size = {socket.AF_INET: 4, socket.AF_INET6: 16}.get(family)
    if size is None:
        return None
    found: dict[int, bytes] = {}
    offset = _IFADDRMSG.size
    while offset + _RTATTR.size <= len(body):
        length, attribute = _RTATTR.unpack_from(body, offset)
        if length < _RTATTR.size or offset + length > len(body):
            break
        found[attribute] = body[offset + _RTATTR.size : offset + length]
        offset += (length + 3) & ~3
    # IFA_LOCAL is the interface's own address (IFA_ADDRESS the peer's on point-to-point
    # links); IPv6 sends IFA_ADDRESS only
    raw = found.get(IFA_LOCAL) or found.get(IFA_ADDRESS)
    if raw is None or len(raw) != size:
        return None
    address = socket.inet_ntop(family, raw)
    return (AddressAdded if kind == RTM_NEWADDR else AddressRemoved)(address, index)
