"""STUN on the SIP UDP socket (RFC 5389 as RFC 5626 §8 uses it): encoding, decoding,
XOR-MAPPED-ADDRESS, the client transaction's retransmissions in virtual time, and the
socket's demultiplexing of STUN from SIP (RFC 7983 §7)."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable

import pytest

from tests.transport.helpers import WAIT, Peer, request, udp_socket
from voip.transport.stun import (
    BINDING_REQUEST,
    BINDING_SUCCESS,
    MAGIC_COOKIE,
    BindingTransaction,
    StunError,
    StunMessage,
    binding_request,
    binding_success,
    decode,
    is_stun,
)

TID = bytes(range(1, 13))
Listening = Callable[..., Awaitable[Peer]]


def test_a_binding_request_has_the_magic_cookie_its_transaction_id_and_a_fingerprint() -> None:
    data, tid = binding_request(TID)
    assert tid == TID
    kind, length, cookie = struct.unpack_from("!HHI", data)
    assert (kind, cookie) == (BINDING_REQUEST, MAGIC_COOKIE)
    assert data[8:20] == TID
    assert length == len(data) - 20 == 8  # FINGERPRINT only (RFC 5626 §8: no other attribute)
    assert struct.unpack_from("!HH", data, 20) == (0x8028, 4)
    message = decode(data)
    assert message.is_request and message.transaction_id == TID and message.mapped is None


def test_new_transaction_ids_are_random() -> None:
    assert binding_request()[1] != binding_request()[1]


def test_xor_mapped_address_of_rfc_5769_ipv4_sample() -> None:
    # RFC 5769 §2.2: 192.0.2.1 port 32853 as XOR-MAPPED-ADDRESS
    value = bytes.fromhex("0001a147e112a643")
    tid = bytes.fromhex("b7e7a701bc34d686fa87dfae")
    data = struct.pack("!HHI12s", BINDING_SUCCESS, 12, MAGIC_COOKIE, tid)
    data += struct.pack("!HH", 0x0020, 8) + value
    assert decode(data).mapped == ("192.0.2.1", 32853)
    assert binding_success(tid, "192.0.2.1", 32853)[20:32] == data[20:32]


def test_xor_mapped_address_of_rfc_5769_ipv6_sample() -> None:
    # RFC 5769 §2.3: 2001:db8:1234:5678:11:2233:4455:6677 port 32853
    value = bytes.fromhex("0002a1470113a9faa5d3f179bc25f4b5bed2b9d9")
    tid = bytes.fromhex("b7e7a701bc34d686fa87dfae")
    data = struct.pack("!HHI12s", BINDING_SUCCESS, 24, MAGIC_COOKIE, tid)
    data += struct.pack("!HH", 0x0020, 20) + value
    host = "2001:db8:1234:5678:11:2233:4455:6677"
    assert decode(data).mapped == (host, 32853)
    assert binding_success(tid, host, 32853)[20:44] == data[20:44]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "203.0.113.9"])
def test_a_success_response_round_trips_its_mapped_address(host: str) -> None:
    message = decode(binding_success(TID, host, 5060))
    assert message == StunMessage(BINDING_SUCCESS, TID, (host, 5060))
    assert message.is_success and not message.is_request


def test_a_plain_mapped_address_is_read_when_there_is_no_xor_one() -> None:
    value = struct.pack("!BBH", 0, 1, 5060) + bytes([198, 51, 100, 7])
    data = struct.pack("!HHI12s", BINDING_SUCCESS, 12, MAGIC_COOKIE, TID)
    data += struct.pack("!HH", 0x0001, 8) + value
    assert decode(data).mapped == ("198.51.100.7", 5060)


def test_is_stun_needs_the_first_two_bits_zero_and_the_magic_cookie() -> None:
    data, _ = binding_request(TID)
    assert is_stun(data)
    assert not is_stun(request())
    assert not is_stun(b"\x40" + data[1:])  # first two bits not 0
    assert not is_stun(data[:4] + b"\x21\x12\xa4\x43" + data[8:])  # wrong cookie
    assert not is_stun(data[:19])  # shorter than a header


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: d[:-1],  # length no longer matches
        lambda d: d[:-4] + bytes(4),  # FINGERPRINT wrong
        lambda d: d[:2] + b"\x00\x0c" + d[4:] + bytes(4),  # attribute runs past the end
        lambda d: b"\x00\x02" + d[2:],  # not a Binding
        lambda d: d[:2] + b"\x00\x03" + d[4:],  # length not a multiple of 4
        lambda d: d[:2] + b"\x00\x0c" + d[4:20] + b"\x00\x20\x00\x04" + bytes(4) + d[20:],
    ],
)
def test_a_malformed_message_raises_a_typed_error(mangle: object) -> None:
    data = binding_success(TID, "192.0.2.1", 5060)
    with pytest.raises(StunError):
        decode(mangle(data))


def test_the_retransmission_schedule_of_rfc_5389_7_2_1_in_virtual_time() -> None:
    transaction = BindingTransaction(transaction_id=TID)
    now = 100.0
    sent = [now] if transaction.start(now) else []
    while transaction.deadline is not None:
        now = transaction.deadline
        if transaction.timer(now) is not None:
            sent.append(now)
    # Rc = 7 requests at 0, RTO, 3 RTO, 7 RTO, 15 RTO, 31 RTO, 63 RTO; Rm = 16: time-out at 79 RTO
    assert [t - 100.0 for t in sent] == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert transaction.failed and now - 100.0 == 39.5
    assert BindingTransaction.duration() == 39.5


def test_a_shorter_rto_scales_the_whole_schedule() -> None:
    transaction = BindingTransaction(rto=0.1, transaction_id=TID)
    transaction.start(0.0)
    while transaction.deadline is not None:
        transaction.timer(transaction.deadline)
    assert transaction.failed and transaction.sent == 7
    assert BindingTransaction.duration(0.1) == pytest.approx(7.9)


def test_the_response_with_the_transaction_id_ends_the_transaction() -> None:
    transaction = BindingTransaction(transaction_id=TID)
    transaction.start(0.0)
    assert transaction.timer(0.5) is not None
    other = StunMessage(BINDING_SUCCESS, bytes(12), ("127.0.0.1", 1))
    assert not transaction.response(other)
    assert not transaction.response(StunMessage(BINDING_REQUEST, TID))
    answer = StunMessage(BINDING_SUCCESS, TID, ("127.0.0.1", 5060))
    assert transaction.response(answer)
    assert transaction.deadline is None and not transaction.failed
    assert transaction.timer(1.5) is None and not transaction.failed
    assert transaction.response_ == answer


async def test_a_binding_request_on_the_sip_socket_is_answered_and_never_parsed(
    listening: Listening,
) -> None:
    bob: Peer = await listening("udp")
    with udp_socket() as client:
        client.setblocking(False)
        data, tid = binding_request()
        client.sendto(data, bob.at.address)
        loop = asyncio.get_running_loop()
        answer = await asyncio.wait_for(loop.sock_recv(client, 1500), WAIT)
        message = decode(answer)
        assert message.is_success and message.transaction_id == tid
        assert message.mapped == client.getsockname()[:2]
    counters = bob.layer.counters
    assert (counters.stun_in, counters.stun_answered, counters.malformed) == (1, 1, 0)
    assert bob.inbox.messages.empty() and bob.inbox.malformed.empty()


async def test_malformed_stun_is_counted_and_dropped_and_sip_still_flows(
    listening: Listening,
) -> None:
    bob: Peer = await listening("udp")
    with udp_socket() as client:
        data, _ = binding_request()
        client.sendto(data[:-4] + bytes(4), bob.at.address)  # bad FINGERPRINT
        client.sendto(data[:20] + b"\x00\x20", bob.at.address)  # length mismatch
        client.sendto(request(), bob.at.address)
        message, _, _ = await asyncio.wait_for(bob.inbox.messages.get(), WAIT)
    assert message.method == "OPTIONS"  # type: ignore[union-attr]
    counters = bob.layer.counters
    assert (counters.stun_in, counters.stun_malformed, counters.malformed) == (2, 2, 0)
    assert counters.stun_answered == 0


async def test_a_binding_response_goes_to_the_keepalive_waiting_for_its_transaction(
    listening: Listening,
) -> None:
    alice: Peer = await listening("udp")
    bob: Peer = await listening("udp")
    answers: asyncio.Queue[StunMessage] = asyncio.Queue()
    data, tid = binding_request()
    alice.layer.send_stun(data, bob.at, tid, answers.put_nowait)
    answer = await asyncio.wait_for(answers.get(), WAIT)
    assert answer.transaction_id == tid and answer.mapped == (alice.at.host, alice.at.port)
    assert alice.layer.counters.stun_out == 1 and bob.layer.counters.stun_answered == 1
    alice.layer.forget_stun(tid)
    assert tid not in alice.layer._stun_waiting
