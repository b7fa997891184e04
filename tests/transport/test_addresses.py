"""Following the local address (voip.transport.addresses): the decisions, sans-I/O, and
the rtnetlink messages they come from."""

from __future__ import annotations

import errno
import socket
import struct

from voip.transport.addresses import (
    IFA_ADDRESS,
    IFA_LOCAL,
    NLMSG_DONE,
    RTM_DELADDR,
    RTM_GETADDR,
    RTM_NEWADDR,
    AddressAdded,
    AddressFollower,
    AddressRemoved,
    Move,
    Probe,
    Probed,
    SendFailed,
    dump_request,
    parse_netlink,
)
from voip.transport.monitor import probe

VETH, OTHER = 7, 3


def follower(bound: str = "10.99.0.1") -> AddressFollower:
    following = AddressFollower(bound)
    for event in (AddressAdded("127.0.0.1", 1), AddressAdded(bound, VETH)):
        assert following.handle(event) is None  # the dump: nothing to do
    return following


def test_an_address_added_while_the_bound_one_stays_changes_nothing() -> None:
    following = follower()
    assert following.handle(AddressAdded("10.99.0.2", VETH)) is None
    assert following.handle(AddressRemoved("10.99.0.2", VETH)) is None
    assert following.bound == "10.99.0.1" and not following.lost


def test_the_bound_address_removed_then_a_new_one_on_its_interface_is_a_move() -> None:
    following = follower()
    # gone, nothing else on that interface yet: look at the routes
    assert following.handle(AddressRemoved("10.99.0.1", VETH)) == Probe()
    assert following.lost
    # the routes give nothing new (no peer, or a peer on this host reached from itself)
    assert following.handle(Probed(False, (("10.99.1.1", "10.99.1.1"),))) is None
    # the new lease on the same link: move there
    assert following.handle(AddressAdded("10.99.0.2", VETH)) == Move(
        "10.99.0.1", "10.99.0.2", "address added"
    )
    assert following.bound == "10.99.0.2" and not following.lost
    # the old address's late removal, or another removal, is no second move
    assert following.handle(AddressRemoved("10.99.0.1", VETH)) is None


def test_a_replacement_added_before_the_removal_is_taken_at_once() -> None:
    following = follower()
    assert following.handle(AddressAdded("10.99.0.2", VETH)) is None
    assert following.handle(AddressRemoved("10.99.0.1", VETH)) == Move(
        "10.99.0.1", "10.99.0.2", "10.99.0.1 removed"
    )


def test_the_newest_address_of_the_interface_and_family_is_chosen() -> None:
    following = follower()
    following.handle(AddressAdded("10.99.0.7", VETH))
    following.handle(AddressAdded("fd00::7", VETH))  # another family
    following.handle(AddressAdded("fe80::1", VETH))
    following.handle(AddressAdded("192.168.5.5", OTHER))  # another interface
    following.handle(AddressAdded("10.99.0.9", VETH))
    move = following.handle(AddressRemoved("10.99.0.1", VETH))
    assert isinstance(move, Move) and move.new == "10.99.0.9"
    six = AddressFollower("fd00::1")
    for event in (
        AddressAdded("fd00::1", VETH),
        AddressAdded("fd00::2", VETH),
        AddressAdded("fe80::1", VETH),  # link-local: never a Contact
    ):
        six.handle(event)
    assert six.handle(AddressRemoved("fd00::1", VETH)) == Move(
        "fd00::1", "fd00::2", "fd00::1 removed"
    )


def test_with_no_new_address_on_the_link_the_route_towards_a_peer_decides() -> None:
    following = follower()
    assert following.handle(AddressRemoved("10.99.0.1", VETH)) == Probe()
    sources = (("10.99.1.1", "10.99.1.1"), ("192.0.2.10", None), ("198.51.100.5", "172.16.0.4"))
    assert following.handle(Probed(False, sources)) == Move(
        "10.99.0.1", "172.16.0.4", "10.99.0.1 cannot be bound"
    )


def test_a_failed_send_probes_only_for_errors_that_mean_a_lost_address() -> None:
    following = follower()
    for code in (errno.EADDRNOTAVAIL, errno.ENETUNREACH, errno.EINVAL):
        assert following.handle(SendFailed(code)) == Probe()
    for code in (errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH):
        assert following.handle(SendFailed(code)) is None
    # the probe finds the address still there: nothing moves
    assert following.handle(Probed(True, (("192.0.2.10", "10.99.0.1"),))) is None
    assert not following.lost
    # or finds it gone (an address change whose event was missed): move by the route
    move = following.handle(Probed(False, (("192.0.2.10", "10.99.0.3"),)))
    assert move == Move("10.99.0.1", "10.99.0.3", "10.99.0.1 cannot be bound")


def test_a_bound_address_that_comes_back_ends_the_search() -> None:
    following = follower()
    following.handle(AddressRemoved("10.99.0.1", VETH))
    assert following.handle(AddressAdded("10.99.0.1", VETH)) is None
    assert not following.lost and following.bound == "10.99.0.1"
    assert following.handle(AddressAdded("10.99.0.2", VETH)) is None  # no move: not lost


def test_a_move_by_the_user_is_followed_from_its_address() -> None:
    following = follower()
    following.handle(AddressAdded("10.99.0.5", VETH))
    following.rebound("10.99.0.5")
    assert following.handle(AddressRemoved("10.99.0.1", VETH)) is None  # not ours any more
    assert following.handle(AddressAdded("10.99.0.6", VETH)) is None
    move = following.handle(AddressRemoved("10.99.0.5", VETH))
    assert move == Move("10.99.0.5", "10.99.0.6", "10.99.0.5 removed")


def _attribute(kind: int, value: bytes) -> bytes:
    attribute = struct.pack("=HH", 4 + len(value), kind) + value
    return attribute + b"\0" * (-len(attribute) % 4)


def _message(kind: int, family: int, index: int, *attributes: bytes) -> bytes:
    body = struct.pack("=BBBBI", family, 24, 0, 0, index) + b"".join(attributes)
    return struct.pack("=IHHII", 16 + len(body), kind, 0, 0, 0) + body


def test_rtnetlink_address_messages_become_address_events() -> None:
    v4 = socket.inet_pton(socket.AF_INET, "10.99.0.2")
    peer = socket.inet_pton(socket.AF_INET, "10.99.0.254")
    v6 = socket.inet_pton(socket.AF_INET6, "fd00::2")
    data = b"".join(
        [
            # point-to-point: IFA_ADDRESS is the far end, IFA_LOCAL ours
            _message(
                RTM_NEWADDR,
                socket.AF_INET,
                VETH,
                _attribute(IFA_ADDRESS, peer),
                _attribute(IFA_LOCAL, v4),
            ),
            _message(RTM_DELADDR, socket.AF_INET6, VETH, _attribute(IFA_ADDRESS, v6)),
            _message(RTM_NEWADDR, socket.AF_PACKET, VETH, _attribute(IFA_ADDRESS, b"\1" * 6)),
            _message(RTM_NEWADDR, socket.AF_INET, VETH, _attribute(IFA_LOCAL, b"\1\2")),
            struct.pack("=IHHII", 20, NLMSG_DONE, 0, 0, 0) + b"\0" * 4,
        ]
    )
    assert parse_netlink(data) == [
        AddressAdded("10.99.0.2", VETH),
        AddressRemoved("fd00::2", VETH),
    ]


def test_truncated_or_garbage_rtnetlink_data_gives_what_is_whole_and_no_error() -> None:
    whole = _message(
        RTM_NEWADDR, socket.AF_INET, VETH, _attribute(IFA_LOCAL, socket.inet_aton("10.0.0.1"))
    )
    assert parse_netlink(whole + whole[:20]) == [AddressAdded("10.0.0.1", VETH)]
    assert parse_netlink(b"\xff" * 40) == []
    assert parse_netlink(struct.pack("=IHHII", 3, RTM_NEWADDR, 0, 0, 0)) == []
    # an attribute claiming more than the message holds
    bad = _message(RTM_NEWADDR, socket.AF_INET, VETH, struct.pack("=HH", 200, IFA_LOCAL))
    assert parse_netlink(bad) == []


def test_the_dump_request_asks_for_every_address() -> None:
    request = dump_request(5)
    length, kind, flags, sequence, _ = struct.unpack_from("=IHHII", request)
    assert (length, kind, sequence) == (len(request), RTM_GETADDR, 5)
    assert flags & 0x300 == 0x300


def test_a_probe_tells_a_bound_address_that_is_gone_from_one_that_is_there() -> None:
    assert probe("127.0.0.1", ["127.0.0.5", "::1", "example.org"]) == Probed(
        True,
        (("127.0.0.5", "127.0.0.1"),),  # the loopback route's source
    )
    assert not probe("192.0.2.77", []).present  # TEST-NET-1: on no interface here
