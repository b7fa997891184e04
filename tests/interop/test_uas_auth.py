"""The toolkit's UA challenges callers (RFC 3261 §22), and real UACs answer its challenges.

SIPp (``[authentication]`` after ``auth="true"``, MD5 only) calls the toolkit directly and
answers a 401 or a 407; baresip calls it through Kamailio, answering Kamailio's 407 and
then the toolkit's 401 for another realm with the same account.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from support.peers import Baresip, Kamailio, Sipp
from support.sip_trace import SipTrace
from support.ua import answer_calls

from voip.call import Call
from voip.challenger import Challenger
from voip.sip import Credentials
from voip.sip.fields import parse_auth
from voip.useragent import UserAgent

TIMEOUT = 15.0
REALM = "toolkit.test"


def invite_ladder(trace: SipTrace) -> list[str]:
    """The INVITE requests and their final responses, as the toolkit saw them."""
    return [
        f"{t} {t.message.cseq.number}"
        for t in trace
        if t.cseq_method == "INVITE" and t.label in ("INVITE", "401", "407", "200")
    ]


@pytest.fixture
async def challenging() -> AsyncIterator[Callable[..., object]]:
    """``await challenging(challenger, user)``: a toolkit UA that challenges and answers
    every call it lets in; its trace and the calls it answered."""
    agents: list[UserAgent] = []

    async def start(
        challenger: Challenger, user: str = "carol", **options: object
    ) -> tuple[UserAgent, SipTrace, asyncio.Queue[Call]]:
        ua = UserAgent(user, challenger=challenger, **options)  # type: ignore[arg-type]
        trace = SipTrace.attach(ua)
        answered = answer_calls(ua)
        await ua.listen("udp", "127.0.0.1", 0)
        agents.append(ua)
        return ua, trace, answered

    yield start
    for ua in agents:
        await ua.close()


@pytest.mark.parametrize("proxy", [False, True], ids=["401", "407"])
async def test_a_sipp_uac_answers_the_toolkits_md5_challenge_and_the_call_goes_on(
    proxy: bool, sipp: Sipp, challenging: Callable[..., object]
) -> None:
    challenger = Challenger.for_users(REALM, {"sipp": "sippw"}, proxy=proxy, algorithms=("MD5",))
    ua, trace, answered = await challenging(challenger)  # type: ignore[operator]
    local = ua.listening[0]
    result = await sipp.run(
        "uac_call", (local.host, local.port), service="carol", auth=("sipp", "sippw"), calls=2
    )
    assert result.ok, result.report()
    assert result.successful == 2
    status = "407" if proxy else "401"
    for call_id in {t.message.call_id for t in trace}:
        assert invite_ladder(trace.of(call_id)) == [
            "< INVITE 1",
            f"> {status} 1",
            "< INVITE 2",
            "> 200 2",
        ]
    calls = [answered.get_nowait() for _ in range(answered.qsize())]
    assert [c.authenticated_user for c in calls] == ["sipp", "sipp"]
    header = "Proxy-Authorization" if proxy else "Authorization"
    retry = trace.find("INVITE", "in")[-1].message
    credentials = parse_auth(retry.headers.get_all(header)[0]).params
    assert credentials["realm"] == REALM and credentials["username"] == "sipp"


async def test_a_sipp_uac_with_a_wrong_password_gets_no_call(
    sipp: Sipp, challenging: Callable[..., object]
) -> None:
    challenger = Challenger.for_users(REALM, {"sipp": "sippw"}, algorithms=("MD5",))
    ua, trace, answered = await challenging(challenger)  # type: ignore[operator]
    local = ua.listening[0]
    result = await sipp.run(
        "uac_call", (local.host, local.port), service="carol", auth=("sipp", "nope"), timeout=5
    )
    assert not result.ok
    assert invite_ladder(trace) == ["< INVITE 1", "> 401 1", "< INVITE 2", "> 401 2"]
    assert answered.empty() and not ua.calls


async def test_baresip_answers_kamailios_407_then_the_toolkits_401_and_is_answered(
    kamailio: Kamailio,
    baresip_factory: Callable[..., Baresip],
    challenging: Callable[..., object],
) -> None:
    """Two realms on one INVITE path: Kamailio's (127.0.0.1, 407) and the toolkit's.
    baresip 1.0.0 reads only the first challenge and knows only MD5 (a SHA-256 one first
    ends its call with "Function not implemented"), so the toolkit offers MD5 alone."""
    challenger = Challenger.for_users(
        REALM, {"alice": kamailio.users["alice"]}, algorithms=("MD5",)
    )
    ua, trace, answered = await challenging(  # type: ignore[operator]
        challenger,
        "carol",
        domain=kamailio.domain,
        credentials=[Credentials("carol", kamailio.users["carol"])],
        outbound_proxy=kamailio.outbound_proxy("udp"),
    )
    await asyncio.wait_for(ua.register(kamailio.uri(), expires=300), TIMEOUT)
    alice = baresip_factory("alice", registrar=kamailio)
    await kamailio.wait_registered("alice")
    await alice.dial(kamailio.aor("carol"))
    call: Call = await asyncio.wait_for(answered.get(), TIMEOUT)
    await alice.wait_established()
    assert call.authenticated_user == "alice"
    ladder = [line.rsplit(" ", 1) for line in invite_ladder(trace.of(call.call_id))]
    assert [label for label, _ in ladder] == ["< INVITE", "> 401", "< INVITE", "> 200"]
    first = int(ladder[0][1])  # baresip starts its CSeq anywhere; the retry takes the next
    assert [int(cseq) for _, cseq in ladder] == [first, first, first + 1, first + 1]
    retry = trace.of(call.call_id).find("INVITE", "in")[-1].message
    assert parse_auth(retry.headers.get_all("Authorization")[0]).params["realm"] == REALM
    await alice.hangup()
    assert (await asyncio.wait_for(call.ended(), TIMEOUT)).by == "remote"
