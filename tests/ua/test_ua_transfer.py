"""Call transfer between three toolkit agents on loopback: REFER (RFC 3515) with its
NOTIFYs, Referred-By (RFC 3892), Refer-Sub (RFC 4488) and Replaces (RFC 3891).

Alice, Bob and Carol are user agents on UDP sockets of 127.0.0.1; each records the
requests it receives so that the tests can read the NOTIFYs and INVITEs on the wire.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import pytest
from support.ua import connected, uri_of

from voip.call import Call, CallState
from voip.sip import Request, parse_uri
from voip.sip.refer import TransferProgress, parse_sipfrag, parse_subscription_state
from voip.sip.transaction import ServerTransaction
from voip.transfer import TransferFailed, TransferRequest
from voip.useragent import RequestFailed, UserAgent

TIMEOUT = 10.0
T = TypeVar("T")


def within(awaitable: Awaitable[T]) -> Awaitable[T]:
    return asyncio.wait_for(awaitable, TIMEOUT)


class Recording(UserAgent):
    """A user agent that keeps every request it receives."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received: list[Request] = []

    def _on_request(self, transaction: ServerTransaction, request: Request) -> None:
        self.received.append(request)
        super()._on_request(transaction, request)

    def got(self, method: str) -> list[Request]:
        return [r for r in self.received if r.method == method]


async def _agent(user: str) -> AsyncIterator[Recording]:
    ua = Recording(user)
    await ua.listen("udp", "127.0.0.1", 0)
    yield ua
    await ua.close()


@pytest.fixture
async def alice() -> AsyncIterator[Recording]:
    async for ua in _agent("alice"):
        yield ua


@pytest.fixture
async def bob() -> AsyncIterator[Recording]:
    async for ua in _agent("bob"):
        yield ua


@pytest.fixture
async def carol() -> AsyncIterator[Recording]:
    async for ua in _agent("carol"):
        yield ua


def answer_calls(ua: UserAgent, status: int = 200) -> asyncio.Queue[Call]:
    """Ring and answer (or refuse with ``status``) every incoming call."""
    calls: asyncio.Queue[Call] = asyncio.Queue()

    async def on_call(call: Call) -> None:
        await call.ring()
        if status == 200:
            await call.accept()
        else:
            await call.reject(status)
        calls.put_nowait(call)

    ua.on("incoming_call", on_call)
    return calls


def progress_of(call: Call) -> list[TransferProgress]:
    seen: list[TransferProgress] = []
    call.on("transfer_progress", seen.append)
    return seen


# --- blind transfer ------------------------------------------------------------------------


async def test_blind_transfer_connects_the_transferee_to_the_target_and_ends_the_first_call(
    alice: Recording, bob: Recording, carol: Recording
) -> None:
    a_b, b_a = await connected(alice, bob)
    transfer_calls: asyncio.Queue[Call] = asyncio.Queue()
    a_b.on("transfer_call", transfer_calls.put_nowait)
    carols = answer_calls(carol)

    result = await within(b_a.transfer(uri_of(carol)))

    assert result.status == 200 and result.final
    a_c = await within(transfer_calls.get())
    c_a = await within(carols.get())
    await within(a_c.answered())
    assert a_c.state is CallState.ANSWERED and c_a.state is CallState.ANSWERED
    assert a_c.dialog is not None and c_a.dialog is not None
    assert a_c.dialog.id.local_tag == c_a.dialog.id.remote_tag
    # the transferor hung up after the 2xx: the first call is over on both sides
    assert (await within(a_b.ended())).by == "remote"
    assert b_a.state is CallState.ENDED and not bob.calls
    # RFC 3892 §3: the referee copies Referred-By into the INVITE it sends
    invite = carol.got("INVITE")[-1]
    assert invite.headers.get("Referred-By") == str(b_a.dialog.local_uri)  # type: ignore[union-attr]


async def test_the_referee_reports_100_then_the_final_status_in_sipfrag_notifies(
    alice: Recording, bob: Recording, carol: Recording
) -> None:
    _, b_a = await connected(alice, bob)
    seen = progress_of(b_a)
    answer_calls(carol)

    await within(b_a.transfer(uri_of(carol)))

    refer = alice.got("REFER")[-1]
    assert refer.headers.get("Refer-To") == f"<{uri_of(carol)}>"
    notifies = bob.got("NOTIFY")
    assert [parse_sipfrag(n.body).status for n in notifies] == [100, 180, 200]
    for notify in notifies:
        # RFC 3515 §2.4.6: the id is the CSeq of the REFER; the body a message/sipfrag
        assert notify.headers.get("Event") == f"refer;id={refer.cseq.number}"
        assert notify.headers.get("Content-Type") == "message/sipfrag"
        assert notify.contact
    states = [parse_subscription_state(n.headers.get("Subscription-State") or "") for n in notifies]
    assert [s.state for s in states] == ["active", "active", "terminated"]
    assert states[0].expires is not None and 0 < states[0].expires <= 60
    assert states[-1].reason == "noresource"
    assert notifies[-1].body == b"SIP/2.0 200 OK\r\n"
    assert [(p.status, p.final) for p in seen] == [(100, False), (180, False), (200, True)]


async def test_a_failed_transfer_is_reported_and_the_call_goes_on(
    alice: Recording, bob: Recording, carol: Recording
) -> None:
    a_b, b_a = await connected(alice, bob)
    answer_calls(carol, status=486)
    failed: list[TransferProgress] = []
    b_a.on("transfer_failed", failed.append)

    with pytest.raises(TransferFailed) as error:
        await within(b_a.transfer(uri_of(carol)))

    assert error.value.status == 486
    assert failed and failed[0].status == 486
    assert parse_sipfrag(bob.got("NOTIFY")[-1].body).status == 486
    assert b_a.state is CallState.ANSWERED and a_b.state is CallState.ANSWERED
    await within(b_a.hangup())


async def test_a_refer_the_application_rejects_gets_its_status(
    alice: Recording, bob: Recording, carol: Recording
) -> None:
    a_b, b_a = await connected(alice, bob)
    asked: list[TransferRequest] = []

    def refuse(request: TransferRequest) -> None:
        asked.append(request)
        request.reject(603)

    a_b.on("refer", refuse)
    with pytest.raises(TransferFailed) as error:
        await within(b_a.transfer(uri_of(carol)))
    assert error.value.status == 603
    assert str(asked[0].uri) == uri_of(carol)
    assert asked[0].referred_by == str(b_a.dialog.local_uri)  # type: ignore[union-attr]
    assert not carol.got("INVITE") and not bob.got("NOTIFY")
    assert a_b.state is CallState.ANSWERED


async def test_a_coroutine_handler_may_reject_the_refer_too(
    alice: Recording, bob: Recording, carol: Recording
) -> None:
    a_b, b_a = await connected(alice, bob)

    async def refuse(request: TransferRequest) -> None:
        request.reject(403, "Transfers Not Allowed")

    a_b.on("refer", refuse)
    with pytest.raises(TransferFailed) as error:
        await within(b_a.transfer(uri_of(carol)))
    assert (error.value.status, error.value.reason) == (403, "Transfers Not Allowed")


async def test_an_application_that_dials_itself_reports_by_notify(
    alice: Recording, bob: Recording, carol: Recording
) -> None:
    a_b, b_a = await connected(alice, bob)

    async def take_over(request: TransferRequest) -> None:
        request.accept(dial=False)
        await request.notify(183, "Session Progress")
        await request.notify(200, "OK")

    a_b.on("refer", take_over)
    result = await within(b_a.transfer(uri_of(carol), hangup=False))
    assert result.succeeded
    assert [parse_sipfrag(n.body).status for n in bob.got("NOTIFY")] == [100, 183, 200]
    assert not carol.got("INVITE")


async def test_refer_sub_false_gets_202_and_no_notify(
    alice: Recording, bob: Recording, carol: Recording
) -> None:
    a_b, b_a = await connected(alice, bob)
    carols = answer_calls(carol)

    result = await within(b_a.transfer(uri_of(carol), subscribe=False))

    assert result.status == 202
    refer = alice.got("REFER")[-1]
    assert refer.headers.get("Refer-Sub") == "false"
    c_a = await within(carols.get())
    assert c_a.state is CallState.ANSWERED
    assert not bob.got("NOTIFY")  # RFC 4488 §4: no implicit subscription
    assert (await within(a_b.ended())).by == "remote"


async def test_transfer_without_hangup_keeps_the_call(
    alice: Recording, bob: Recording, carol: Recording
) -> None:
    a_b, b_a = await connected(alice, bob)
    answer_calls(carol)
    await within(b_a.transfer(uri_of(carol), hangup=False))
    assert b_a.state is CallState.ANSWERED and a_b.state is CallState.ANSWERED
    await within(b_a.hangup())


# --- malformed or unexpected REFER and NOTIFY -------------------------------------------------


async def _refer_status(call: Call, headers: list[tuple[str, str]]) -> int:
    with pytest.raises(RequestFailed) as error:
        await within(call._request("REFER", headers=headers))
    return error.value.status


async def test_a_refer_without_refer_to_gets_400(alice: Recording, bob: Recording) -> None:
    a_b, b_a = await connected(alice, bob)
    assert await _refer_status(b_a, []) == 400
    assert a_b.state is CallState.ANSWERED and b_a.state is CallState.ANSWERED


async def test_a_refer_with_two_refer_to_values_gets_400(alice: Recording, bob: Recording) -> None:
    _, b_a = await connected(alice, bob)
    headers = [("Refer-To", "<sip:x@127.0.0.1>"), ("Refer-To", "<sip:y@127.0.0.1>")]
    assert await _refer_status(b_a, headers) == 400


async def test_a_refer_with_a_malformed_replaces_gets_400(alice: Recording, bob: Recording) -> None:
    _, b_a = await connected(alice, bob)
    headers = [("Refer-To", "<sip:x@127.0.0.1?Replaces=only-a-call-id>")]
    assert await _refer_status(b_a, headers) == 400


async def test_a_refer_to_an_uncallable_scheme_gets_416(alice: Recording, bob: Recording) -> None:
    _, b_a = await connected(alice, bob)
    assert await _refer_status(b_a, [("Refer-To", "<http://example.com/>")]) == 416


async def test_a_refer_outside_a_dialog_is_refused_403(alice: Recording, bob: Recording) -> None:
    request = alice.new_request(
        "REFER", parse_uri(uri_of(bob)), headers=[("Refer-To", "<sip:x@127.0.0.1>")]
    )
    with pytest.raises(RequestFailed) as error:
        await within(alice.request(request))
    assert error.value.status == 403


async def test_a_notify_for_no_refer_gets_481_and_the_call_goes_on(
    alice: Recording, bob: Recording
) -> None:
    a_b, b_a = await connected(alice, bob)
    headers = [("Event", "refer;id=77"), ("Subscription-State", "active;expires=60")]
    with pytest.raises(RequestFailed) as error:
        await within(a_b._request("NOTIFY", b"SIP/2.0 100 Trying\r\n", "message/sipfrag", headers))
    assert error.value.status == 481
    assert a_b.state is CallState.ANSWERED and b_a.state is CallState.ANSWERED


async def test_a_notify_for_another_event_package_gets_489(
    alice: Recording, bob: Recording
) -> None:
    a_b, _ = await connected(alice, bob)
    headers = [("Event", "presence"), ("Subscription-State", "active")]
    with pytest.raises(RequestFailed) as error:
        await within(a_b._request("NOTIFY", headers=headers))
    assert error.value.status == 489


# --- attended transfer with Replaces --------------------------------------------------------


async def test_attended_transfer_replaces_the_consultation_dialog_at_the_target(
    alice: Recording, bob: Recording, carol: Recording
) -> None:
    a_b, b_a = await connected(alice, bob)  # the call to transfer
    a_c, c_a = await connected(alice, carol)  # the consultation call
    replaced: asyncio.Queue[Call] = asyncio.Queue()
    c_a.on("replaced", replaced.put_nowait)
    transfer_calls: asyncio.Queue[Call] = asyncio.Queue()
    b_a.on("transfer_call", transfer_calls.put_nowait)

    result = await within(a_b.transfer(a_c))

    assert result.status == 200
    refer_to = bob.got("REFER")[-1].headers.get("Refer-To") or ""
    assert c_a.dialog is not None
    call_id = c_a.dialog.id.call_id.replace("@", "%40")
    # RFC 3891 §6: ';' and '=' of the Replaces value escaped inside the URI header
    assert (
        f"?Replaces={call_id}%3Bto-tag%3D{c_a.dialog.id.local_tag}"
        f"%3Bfrom-tag%3D{c_a.dialog.id.remote_tag}>" in refer_to
    )
    b_c = await within(transfer_calls.get())
    c_b = await within(replaced.get())
    await within(b_c.answered())
    assert b_c.state is CallState.ANSWERED and c_b.state is CallState.ANSWERED
    invite = carol.got("INVITE")[-1]
    assert invite.replaces is not None and invite.replaces.call_id == c_a.dialog.id.call_id
    assert "replaces" in invite.require
    # Carol ended the replaced dialog with BYE; Alice hung up on Bob after the 2xx
    assert (await within(a_c.ended())).by == "remote"
    assert (await within(b_a.ended())).by == "remote"
    assert c_a.end_reason is not None and c_a.end_reason.text == "replaced"
    assert not alice.calls
    assert set(carol.calls.values()) == {c_b}


async def _invite_with_replaces(caller: UserAgent, callee: UserAgent, replaces: str) -> int:
    request = caller.new_request(
        "INVITE", parse_uri(uri_of(callee)), headers=[("Replaces", replaces)]
    )
    with pytest.raises(RequestFailed) as error:
        await within(caller.request(request))
    return error.value.status


async def test_an_invite_whose_replaces_matches_no_dialog_gets_481(
    alice: Recording, carol: Recording
) -> None:
    assert await _invite_with_replaces(alice, carol, "nope@x;to-tag=1;from-tag=2") == 481


def naming(call: Call, *, swapped: bool = False, flags: str = "") -> str:
    """A Replaces value for ``call``'s dialog as its own agent sees it (RFC 3891 §3:
    to-tag is that agent's local tag); ``swapped`` puts the tags the wrong way round."""
    assert call.dialog is not None
    ids = call.dialog.id
    local, remote = (ids.remote_tag, ids.local_tag) if swapped else (ids.local_tag, ids.remote_tag)
    return f"{ids.call_id};to-tag={local};from-tag={remote}{flags}"


async def test_replaces_with_swapped_tags_matches_nothing_481(
    alice: Recording, bob: Recording, carol: Recording
) -> None:
    _, c_a = await connected(alice, carol)
    assert await _invite_with_replaces(bob, carol, naming(c_a, swapped=True)) == 481
    assert c_a.state is CallState.ANSWERED


async def test_replaces_early_only_for_a_confirmed_dialog_gets_486(
    alice: Recording, bob: Recording, carol: Recording
) -> None:
    _, c_a = await connected(alice, carol)
    assert await _invite_with_replaces(bob, carol, naming(c_a, flags=";early-only")) == 486
    assert c_a.state is CallState.ANSWERED


async def test_replaces_naming_an_early_dialog_we_did_not_start_gets_481(
    alice: Recording, bob: Recording, carol: Recording
) -> None:
    ringing: asyncio.Queue[Call] = asyncio.Queue()

    async def ring(call: Call) -> None:
        await call.ring()
        ringing.put_nowait(call)

    carol.on("incoming_call", ring)
    alice.dial(uri_of(carol))
    c_a = await within(ringing.get())
    assert await _invite_with_replaces(bob, carol, naming(c_a)) == 481
    assert c_a.state is CallState.INCOMING


async def test_nothing_is_left_after_transfers(
    alice: Recording, bob: Recording, carol: Recording
) -> None:
    """No call, incoming INVITE or background job outlives the transfers and their calls."""
    new_calls: asyncio.Queue[Call] = asyncio.Queue()
    bobs, carols = answer_calls(bob), answer_calls(carol)
    for _ in range(3):
        a_b = await within(alice.call(uri_of(bob)))
        b_a = await within(bobs.get())
        a_b.on("transfer_call", new_calls.put_nowait)
        await within(b_a.transfer(uri_of(carol)))
        a_c = await within(new_calls.get())
        await within(a_c.answered())
        await within(a_c.hangup())
        await within(a_b.ended())
    a_b = await within(alice.call(uri_of(bob)))
    b_a = await within(bobs.get())
    a_c = await within(alice.call(uri_of(carol)))
    b_a.on("transfer_call", new_calls.put_nowait)
    await within(a_b.transfer(a_c))
    b_c = await within(new_calls.get())
    await within(b_c.answered())
    await within(b_c.hangup())
    while not carols.empty():
        await within(carols.get_nowait().ended())
    async with asyncio.timeout(TIMEOUT):
        while any(ua.resources()["jobs"] for ua in (alice, bob, carol)):
            await asyncio.sleep(0.01)
    for ua in (alice, bob, carol):
        held = ua.resources()
        assert (held["calls"], held["incoming"], held["jobs"]) == (0, 0, 0), ua.user


async def test_replaces_naming_an_early_dialog_we_started_takes_its_place_and_cancels_it(
    alice: Recording, bob: Recording, carol: Recording
) -> None:
    """RFC 3891 §3 (call pickup): an early dialog this agent initiated is replaced, the
    new INVITE answered and the old one cancelled."""
    ringing: asyncio.Queue[Call] = asyncio.Queue()

    async def ring(call: Call) -> None:
        await call.ring()
        ringing.put_nowait(call)

    carol.on("incoming_call", ring)
    a_c = alice.dial(uri_of(carol))
    c_a = await within(ringing.get())
    async with asyncio.timeout(TIMEOUT):
        while not a_c.early:
            await asyncio.sleep(0.01)
    replaced: asyncio.Queue[Call] = asyncio.Queue()
    a_c.on("replaced", replaced.put_nowait)

    b_a = await within(bob.call(uri_of(alice), headers=[("Replaces", naming_early(a_c))]))

    a_b = await within(replaced.get())
    assert b_a.state is CallState.ANSWERED and a_b.state is CallState.ANSWERED
    assert (await within(c_a.ended())).status == 487  # CANCEL reached Carol
    assert (await within(a_c.ended())).status == 487
    assert set(alice.calls.values()) == {a_b}


def naming_early(call: Call) -> str:
    """Replaces for the (only) early dialog of an outgoing call, as its caller sees it."""
    [remote_tag] = call.early
    return f"{call.call_id};to-tag={call.local_tag};from-tag={remote_tag}"
