"""The syntax core's values behave alike compiled (mypyc) and as pure Python.

Which implementation runs, and the SIP suite run once more in pure Python:
``tests/test_implementation.py``.
"""

from __future__ import annotations

import copy
import json
import pickle

import pytest

from voip.sip import (
    CSeq,
    NameAddress,
    Request,
    SipError,
    SipUri,
    StreamParser,
    UaPolicy,
    Via,
    check_message,
    make_response,
    parse_message,
)
from voip.sip.dialog import Dialog

INVITE = (
    b"INVITE sip:bob@198.51.100.20:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKc7a4.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5062;received=192.0.2.10;rport=5062;branch=z9hG4bK.Pj\r\n"
    b"Max-Forwards: 69\r\n"
    b'From: "Alice" <sip:alice@example.com>;tag=9fxced76sl\r\n'
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: 3848276298220188511@192.0.2.10\r\n"
    b"CSeq: 2 INVITE\r\n"
    b"Contact: <sip:alice@192.0.2.10:5062;transport=udp>\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def test_parsed_messages_and_their_fields_copy_like_the_original() -> None:
    message = parse_message(INVITE)
    values = (message.via[1], message.from_, message.to, message.contact[0], message.cseq)
    for value in values:
        assert copy.copy(value) == value
        assert copy.deepcopy(value) == value
    for clone in (copy.copy(message), copy.deepcopy(message)):
        assert bytes(clone) == INVITE
        assert clone.from_.tag == "9fxced76sl"
        assert clone.contact[0].uri == message.contact[0].uri


def test_built_values_pickle_and_copy_to_equal_values() -> None:
    uri = SipUri("example.com", "alice", port=5062, params={"transport": "tcp"})
    values: list[object] = [
        uri,
        NameAddress(uri, "Alice", {"tag": "a1"}),
        Via("UDP", "192.0.2.1", 5060, {"branch": "z9hG4bK1"}),
        CSeq(7, "BYE"),
    ]
    for value in values:
        assert pickle.loads(pickle.dumps(value)) == value
        assert copy.copy(value) == value
    request = Request("OPTIONS", uri, [("Via", "SIP/2.0/UDP h;branch=z9hG4bK2")])
    assert bytes(pickle.loads(pickle.dumps(request))) == bytes(request)


def test_programs_may_subclass_the_syntax_classes() -> None:
    class Traced(Request):
        pass

    class Refused(SipError):
        pass

    traced = Traced("OPTIONS", SipUri("example.com"))
    assert traced.start_line() == "OPTIONS sip:example.com SIP/2.0"
    assert isinstance(Refused(403, "no"), SipError)
    assert Refused(403, "no").status == 403


def test_a_policy_copies_and_pickles_to_an_equal_policy() -> None:
    policy = UaPolicy(extensions=frozenset({"100rel"}), forwards=True)
    assert copy.copy(policy) == policy
    assert pickle.loads(pickle.dumps(policy)) == policy


def test_a_policy_given_plain_sets_keeps_them_as_frozensets_and_applies_them() -> None:
    # {"100rel"} is a set: the compiled constructor checked for frozenset and refused it.
    policy = UaPolicy(extensions={"100rel"}, schemes={"sip"})
    assert policy.extensions == frozenset({"100rel"}) and type(policy.extensions) is frozenset
    assert hash(policy) == hash(UaPolicy(extensions=frozenset({"100rel"}), schemes={"sip"}))
    assert pickle.loads(pickle.dumps(policy)) == policy
    required = parse_message(INVITE.replace(b"Max-Forwards", b"Require: foo\r\nMax-Forwards"))
    with pytest.raises(SipError) as error:
        check_message(required, policy)  # RFC 3261 §8.2.2.3: an unknown Require is a 420
    assert error.value.status == 420
    check_message(
        parse_message(INVITE.replace(b"Max-Forwards", b"Require: 100rel\r\nMax-Forwards")), policy
    )


def test_a_message_reads_from_a_buffer_a_socket_filled_as_from_bytes() -> None:
    # recv_into and BufferedProtocol fill a bytearray: the compiled parser checks its
    # declared argument type, so it must take what a socket read may give.
    for buffer in (bytearray(INVITE), memoryview(bytearray(INVITE))):
        assert bytes(parse_message(buffer)) == INVITE
        [message] = StreamParser().feed(buffer)
        assert bytes(message) == INVITE


def test_header_fields_given_as_lists_as_json_reads_them_build_the_same_message() -> None:
    # ``voip parse`` writes header fields as JSON lists of [name, value]; read back, they
    # are lists, not tuples.
    pairs = [("Subject", "lunch"), ("X-Priority", "2")]
    listed = json.loads(json.dumps(pairs))
    uri = SipUri("example.com", "bob")
    assert bytes(Request("MESSAGE", uri, listed)) == bytes(Request("MESSAGE", uri, pairs))
    invite = parse_message(INVITE)
    response = make_response(invite, 200, to_tag="t1", headers=listed)
    assert response.headers.get("Subject") == "lunch"
    dialog = Dialog.from_uas(invite, response, local_tag="t1")
    bye = dialog.create_request("BYE", headers=listed)
    assert bye.headers.get_all("X-Priority") == ["2"]


def test_a_body_given_in_a_buffer_is_sent_as_the_same_bytes() -> None:
    # A program may build a body in a bytearray or hand over a memoryview: the compiled
    # message checks the declared type of what it keeps, so it is made bytes there.
    uri = SipUri("example.com", "bob")
    text = b"Signal=5\r\nDuration=160\r\n"
    assert bytes(Request("INFO", uri, [], bytearray(text))).endswith(b"\r\n\r\n" + text)
    invite = parse_message(INVITE)
    response = make_response(invite, 200, to_tag="t1", body=memoryview(text))
    assert response.body == text and type(response.body) is bytes
    dialog = Dialog.from_uas(invite, response, local_tag="t1")
    info = dialog.create_request("INFO", body=bytearray(text), content_type="text/plain")
    assert info.body == text and info.headers.get("Content-Length") == str(len(text))
