"""A user agent that challenges incoming requests (RFC 3261 §22.1, §22.4; RFC 7616).

Two toolkit agents on loopback: Bob challenges, Alice answers from her credentials.
What SIPp and baresip make of Bob's challenges is in ``tests/interop/test_uas_auth.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from support.sip_trace import SipTrace

from voip.call import Call, CallState
from voip.challenger import Challenger
from voip.sip import Credentials, DigestServer, Request, parse_uri
from voip.sip.fields import parse_auth
from voip.useragent import RequestFailed, UserAgent

TIMEOUT = 10.0
REALM = "bob.test"
USERS = {"alice": "wonderland"}

Agents = Callable[..., AsyncIterator[tuple[UserAgent, UserAgent, SipTrace]]]


async def start(ua: UserAgent) -> UserAgent:
    await ua.listen("udp", "127.0.0.1", 0)
    return ua


@pytest.fixture
async def alice() -> AsyncIterator[UserAgent]:
    ua = await start(UserAgent("alice", credentials=[Credentials("alice", "wonderland")]))
    yield ua
    await ua.close()


def challenging(challenger: Challenger) -> tuple[UserAgent, SipTrace]:
    ua = UserAgent("bob", challenger=challenger)
    return ua, SipTrace.attach(ua)


@pytest.fixture
async def bob() -> AsyncIterator[tuple[UserAgent, SipTrace]]:
    ua, trace = challenging(Challenger.for_users(REALM, USERS))
    await start(ua)
    yield ua, trace
    await ua.close()


def uri_of(ua: UserAgent) -> str:
    endpoint = ua.listening[0]
    return f"sip:{ua.user}@{endpoint.host}:{endpoint.port}"


def answer_calls(ua: UserAgent) -> asyncio.Queue[Call]:
    calls: asyncio.Queue[Call] = asyncio.Queue()

    async def on_call(call: Call) -> None:
        calls.put_nowait(call)
        await call.ring()
        await call.accept()

    ua.on("incoming_call", on_call)
    return calls


def invites(trace: SipTrace) -> list[str]:
    """Bob's side of each INVITE transaction: ``"< INVITE 1"``, ``"> 401 1"`` …"""
    return [
        f"{t} {t.message.cseq.number}"
        for t in trace
        if t.cseq_method == "INVITE" and t.label not in ("100", "180", "ACK")
    ]


async def test_an_invite_without_credentials_gets_401_and_its_retry_is_the_call(
    alice: UserAgent, bob: tuple[UserAgent, SipTrace]
) -> None:
    ua, trace = bob
    calls = answer_calls(ua)
    caller = await asyncio.wait_for(alice.call(uri_of(ua)), TIMEOUT)
    callee = await asyncio.wait_for(calls.get(), TIMEOUT)
    assert calls.empty()  # the challenged INVITE never became a call
    assert invites(trace) == ["< INVITE 1", "> 401 1", "< INVITE 2", "> 200 2"]
    challenge = trace.find("401")[0].message
    offered = [
        parse_auth(v).params["algorithm"] for v in challenge.headers.get_all("WWW-Authenticate")
    ]
    assert offered == ["SHA-256", "MD5"]
    assert callee.authenticated_user == "alice"
    assert callee.call_id == caller.call_id
    assert caller.state is CallState.ANSWERED and callee.state is CallState.ANSWERED
    # the ACK of the 401 stays in the INVITE transaction; the 2xx's ACK ends the call setup
    acks = [t.message for t in trace.find("ACK", "in")]
    assert [a.cseq.number for a in acks] == [1, 2]
    await asyncio.wait_for(caller.hangup(), TIMEOUT)
    await asyncio.wait_for(callee.ended(), TIMEOUT)


async def test_a_proxy_like_challenger_answers_407_with_proxy_authenticate(
    alice: UserAgent,
) -> None:
    ua, trace = challenging(Challenger.for_users(REALM, USERS, proxy=True))
    await start(ua)
    try:
        answer_calls(ua)
        call = await asyncio.wait_for(alice.call(uri_of(ua)), TIMEOUT)
        challenge = trace.find("407")[0].message
        assert challenge.headers.get_all("Proxy-Authenticate")
        assert not challenge.headers.get_all("WWW-Authenticate")
        retry = trace.find("INVITE", "in")[-1].message
        assert parse_auth(retry.headers.get_all("Proxy-Authorization")[0]).params["realm"] == REALM
        await asyncio.wait_for(call.hangup(), TIMEOUT)
    finally:
        await ua.close()


@pytest.mark.parametrize(
    ("user", "password"), [("alice", "guess"), ("eve", "wonderland")], ids=["wrong", "unknown"]
)
async def test_wrong_credentials_are_challenged_again_and_the_call_fails_401(
    user: str, password: str, bob: tuple[UserAgent, SipTrace]
) -> None:
    """A wrong password or an unknown user: a new challenge (not stale), which the client
    does not answer with the same credentials a third time."""
    ua, trace = bob
    answer_calls(ua)
    mallory = await start(UserAgent(user, credentials=[Credentials(user, password)]))
    try:
        with pytest.raises(RequestFailed) as error:
            await asyncio.wait_for(mallory.call(uri_of(ua)), TIMEOUT)
        assert error.value.status == 401
        assert invites(trace) == ["< INVITE 1", "> 401 1", "< INVITE 2", "> 401 2"]
        assert not ua.calls
    finally:
        await mallory.close()


async def test_later_requests_reuse_the_nonce_with_growing_nonce_counts(
    alice: UserAgent, bob: tuple[UserAgent, SipTrace]
) -> None:
    """RFC 7616 §3.4: credentials for a realm already challenged go with later requests
    (the BYE, the next call) on the same nonce, the nonce count one more each time."""
    ua, trace = bob
    answer_calls(ua)
    for _ in range(2):
        call = await asyncio.wait_for(alice.call(uri_of(ua)), TIMEOUT)
        await asyncio.wait_for(call.hangup(), TIMEOUT)
    authorized = [
        (t.label, parse_auth(t.message.headers.get_all("Authorization")[0]).params)
        for t in trace
        if t.direction == "in" and t.message.headers.get_all("Authorization")
    ]
    assert [label for label, _ in authorized] == ["INVITE", "ACK", "BYE", "INVITE", "ACK", "BYE"]
    counted = [params for label, params in authorized if label != "ACK"]
    assert [p["nc"] for p in counted] == ["00000001", "00000002", "00000003", "00000004"]
    assert len({p["nonce"] for p in counted}) == 1
    assert len(trace.find("401")) == 1  # the second call went through at once


async def test_a_stale_nonce_draws_stale_true_and_the_retry_is_answered(
    alice: UserAgent, bob: tuple[UserAgent, SipTrace]
) -> None:
    """RFC 7616 §3.3: right password, nonce not valid here (a restarted server's new
    secret): a new challenge with stale=true, which the client answers without asking."""
    ua, trace = bob
    answer_calls(ua)
    call = await asyncio.wait_for(alice.call(uri_of(ua)), TIMEOUT)
    await asyncio.wait_for(call.hangup(), TIMEOUT)
    assert ua.challenger is not None
    ua.challenger.server = DigestServer(REALM, USERS.get)  # restarted: old nonces are foreign
    call = await asyncio.wait_for(alice.call(uri_of(ua)), TIMEOUT)
    assert call.state is CallState.ANSWERED
    second = trace.of(call.call_id)
    challenges = [t.message for t in second.find("401")]
    assert len(challenges) == 1
    assert all(
        parse_auth(v).params.get("stale") == "true"
        for v in challenges[0].headers.get_all("WWW-Authenticate")
    )
    await asyncio.wait_for(call.hangup(), TIMEOUT)


async def test_a_replayed_nonce_count_is_stale(
    alice: UserAgent, bob: tuple[UserAgent, SipTrace]
) -> None:
    """RFC 7616 §3.4: the same nonce count twice is a replay; the server must refuse it."""
    ua, trace = bob
    answer_calls(ua)
    call = await asyncio.wait_for(alice.call(uri_of(ua)), TIMEOUT)
    await asyncio.wait_for(call.hangup(), TIMEOUT)
    authorized = trace.find("INVITE", "in")[-1].message
    assert ua.challenger is not None
    verdict = ua.challenger.verify(authorized, ua.now())
    assert verdict is not None and verdict.outcome.value == "stale"


async def test_in_dialog_requests_are_challenged_when_configured_and_cseq_follows_the_retry(
    alice: UserAgent,
) -> None:
    """Bob calls and challenges the requests Alice sends within the call. §22.2: the
    authorized re-send takes the next CSeq; Alice's dialog counts on from there, so her
    later requests stay in order (§12.2.1.1)."""
    ua, trace = challenging(Challenger.for_users(REALM, USERS, in_dialog=("INFO", "BYE")))
    await start(ua)
    try:
        calls = answer_calls(alice)
        caller = await asyncio.wait_for(ua.call(uri_of(alice)), TIMEOUT)
        callee = await asyncio.wait_for(calls.get(), TIMEOUT)
        infos: asyncio.Queue[object] = asyncio.Queue()
        caller.on("info", infos.put_nowait)
        for _ in range(2):
            response = await asyncio.wait_for(callee.info(b"x", "text/plain"), TIMEOUT)
            assert response.status == 200
        await asyncio.wait_for(callee.hangup(), TIMEOUT)
        assert (await asyncio.wait_for(caller.ended(), TIMEOUT)).by == "remote"
        assert infos.qsize() == 2
        in_dialog = [
            f"{t} {t.message.cseq.number}"
            for t in trace.of(caller.call_id)
            if t.cseq_method in ("INFO", "BYE")
        ]
        # the first INFO is challenged; the second and the BYE carry credentials at once
        assert in_dialog == [
            "< INFO 1",
            "> 401 1",
            "< INFO 2",
            "> 200 2",
            "< INFO 3",
            "> 200 3",
            "< BYE 4",
            "> 200 4",
        ]
    finally:
        await ua.close()


async def test_only_the_configured_methods_are_challenged(
    alice: UserAgent, bob: tuple[UserAgent, SipTrace]
) -> None:
    ua, trace = bob
    response = await asyncio.wait_for(alice.options(uri_of(ua)), TIMEOUT)
    assert response.status == 200 and not trace.find("401")
    ua.challenger = Challenger.for_users(REALM, USERS, methods=("INVITE", "OPTIONS", "MESSAGE"))
    response = await asyncio.wait_for(alice.options(uri_of(ua)), TIMEOUT)
    # one challenge; a retransmitted OPTIONS on a busy machine draws the same 401 again
    challenges = {bytes(record.message) for record in trace.find("401")}
    assert response.status == 200 and len(challenges) == 1


def test_ack_and_cancel_are_never_challenged() -> None:
    challenger = Challenger.for_users(REALM, USERS, methods=("INVITE", "ACK", "CANCEL"))
    assert challenger.methods >= {"ACK", "CANCEL"}
    for method in ("ACK", "CANCEL"):
        request = Request(
            method,
            parse_uri("sip:bob@127.0.0.1"),
            [("To", "<sip:bob@127.0.0.1>"), ("From", "<sip:a@b>;tag=1")],
        )
        assert not challenger.challenges(request)
