"""Call transfer (REFER, RFC 3515) between the toolkit and real peers on loopback.

baresip 1.0 follows a REFER (202, NOTIFY sipfrag, a new INVITE to the Refer-To target) and
sends one with its ``transfer`` command, so it plays the transferee and the transferor
against the toolkit. SIPp scenarios play the referee that reports by NOTIFY
(``uac_transferee``) and the referrer that expects the toolkit's NOTIFYs
(``uas_transferor``), also with Replaces in its Refer-To; ``uac_replaces`` sends an INVITE
with Replaces that takes the place of a ``uac_replaced`` call. The transfer target is a
toolkit agent that answers; one test runs the whole transfer through Kamailio.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest
from support.peers import Baresip, Kamailio, Sipp

from voip.call import Call, CallState
from voip.sip import parse_uri
from voip.sip.refer import TransferProgress, refer_to_uri, replaces_for
from voip.transfer import TransferRequest
from voip.useragent import UserAgent

TIMEOUT = 15.0
T = TypeVar("T")


def within(awaitable: Awaitable[T]) -> Awaitable[T]:
    return asyncio.wait_for(awaitable, TIMEOUT)


def uri_of(ua: UserAgent) -> str:
    endpoint = ua.listening[0]
    return f"sip:{ua.user}@{endpoint.host}:{endpoint.port}"


async def _answering(
    user: str, *, ring: bool
) -> AsyncIterator[tuple[UserAgent, asyncio.Queue[Call]]]:
    ua = UserAgent(user)
    calls: asyncio.Queue[Call] = asyncio.Queue()

    async def answer(call: Call) -> None:
        if ring:
            await call.ring()
        await call.accept()
        calls.put_nowait(call)

    ua.on("incoming_call", answer)
    await ua.listen("udp", "127.0.0.1", 0)
    yield ua, calls
    await ua.close()


@pytest.fixture
async def carol() -> AsyncIterator[tuple[UserAgent, asyncio.Queue[Call]]]:
    """The transfer target: a toolkit agent that rings, then answers every call."""
    async for pair in _answering("carol", ring=True):
        yield pair


@pytest.fixture
async def quiet_carol() -> AsyncIterator[tuple[UserAgent, asyncio.Queue[Call]]]:
    """A transfer target that answers at once (no 180): exactly two NOTIFYs follow."""
    async for pair in _answering("carol", ring=False):
        yield pair


@pytest.fixture
async def alice() -> AsyncIterator[UserAgent]:
    ua = UserAgent("alice")
    await ua.listen("udp", "127.0.0.1", 0)
    yield ua
    await ua.close()


# --- baresip --------------------------------------------------------------------------------


async def test_baresip_follows_the_toolkits_refer_to_the_target(
    alice: UserAgent,
    carol: tuple[UserAgent, asyncio.Queue[Call]],
    baresip_factory: Callable[..., Baresip],
) -> None:
    target, answered = carol
    bob = baresip_factory("bob", registrar=None)
    call = await within(alice.call(bob.uri()))
    await bob.wait_established()
    seen: list[TransferProgress] = []
    call.on("transfer_progress", seen.append)

    result = await within(call.transfer(uri_of(target)))

    assert result.succeeded
    c_b = await within(answered.get())
    assert c_b.state is CallState.ANSWERED
    assert c_b.invite is not None and c_b.invite.from_.uri.user == "bob"  # type: ignore[union-attr]
    assert seen[0].status == 100 and seen[-1].status == 200 and seen[-1].final
    # the transferor hung up after the 2xx; baresip's new call goes on with carol
    assert (await within(call.ended())).by == "local"
    assert not alice.calls
    await within(c_b.hangup())
    await bob.wait_closed()


async def test_baresip_reports_a_failed_transfer_and_keeps_the_call(
    alice: UserAgent, baresip_factory: Callable[..., Baresip]
) -> None:
    from voip.transfer import TransferFailed

    busy = UserAgent("dave")

    async def refuse(call: Call) -> None:
        await call.reject(486)

    busy.on("incoming_call", refuse)
    await busy.listen("udp", "127.0.0.1", 0)
    try:
        bob = baresip_factory("bob", registrar=None)
        call = await within(alice.call(bob.uri()))
        await bob.wait_established()
        with pytest.raises(TransferFailed) as error:
            await within(call.transfer(uri_of(busy)))
        assert error.value.status == 486
        assert call.state is CallState.ANSWERED
        await within(call.hangup())
    finally:
        await busy.close()


async def test_baresip_transfers_the_toolkit_to_the_target(
    alice: UserAgent,
    carol: tuple[UserAgent, asyncio.Queue[Call]],
    baresip_factory: Callable[..., Baresip],
) -> None:
    target, answered = carol
    bob = baresip_factory("bob", registrar=None)
    call = await within(alice.call(bob.uri()))
    await bob.wait_established()
    asked: asyncio.Queue[TransferRequest] = asyncio.Queue()
    call.on("refer", asked.put_nowait)
    new_calls: asyncio.Queue[Call] = asyncio.Queue()
    call.on("transfer_call", new_calls.put_nowait)

    await bob.command("transfer", uri_of(target))

    request = await within(asked.get())
    assert str(request.uri) == uri_of(target)
    a_c = await within(new_calls.get())
    c_a = await within(answered.get())
    await within(a_c.answered())
    assert c_a.state is CallState.ANSWERED
    # baresip ends the first call once our NOTIFY says 200 OK
    assert (await within(call.ended())).by == "remote"
    assert a_c.state is CallState.ANSWERED
    await within(a_c.hangup())


# --- SIPp -----------------------------------------------------------------------------------


async def test_a_sipp_referee_reports_by_notify_and_the_toolkit_hangs_up(
    sipp: Sipp, carol: tuple[UserAgent, asyncio.Queue[Call]]
) -> None:
    target, _ = carol
    async with UserAgent("alice") as ua:
        local = await ua.listen("udp", "127.0.0.1", 0)
        results: asyncio.Queue[TransferProgress] = asyncio.Queue()

        async def transfer(call: Call) -> None:
            await call.accept()
            results.put_nowait(await call.transfer(uri_of(target)))

        ua.on("incoming_call", transfer)
        run = asyncio.ensure_future(
            sipp.run("uac_transferee", (local.host, local.port), service="alice")
        )
        result = await within(run)
        assert result.ok, result.report()
        progress = await within(results.get())
        assert progress.status == 200 and progress.final
        messages = result.messages()
        assert f"Refer-To: <{uri_of(target)}>" in messages
        assert "Referred-By: <sip:alice@" in messages
        await asyncio.sleep(0.1)
        assert not ua.calls


async def test_the_toolkit_follows_a_sipp_refer_and_reports_by_notify(
    sipp: Sipp, alice: UserAgent, quiet_carol: tuple[UserAgent, asyncio.Queue[Call]]
) -> None:
    target, answered = quiet_carol
    uas = sipp.start("uas_transferor", calls=1, keys={"target": uri_of(target)})
    call = await within(alice.call(uas.uri("sipp")))
    new_calls: asyncio.Queue[Call] = asyncio.Queue()
    call.on("transfer_call", new_calls.put_nowait)
    a_c = await within(new_calls.get())
    await within(a_c.answered())
    await within(answered.get())
    assert (await within(call.ended())).by == "remote"
    result = await uas.wait(TIMEOUT)
    assert result.ok, result.report()
    messages = result.messages()
    assert "SIP/2.0 100 Trying" in messages and "Subscription-State: terminated" in messages
    await within(a_c.hangup())


async def test_the_toolkit_follows_a_sipp_refer_with_replaces_to_an_attended_transfer(
    sipp: Sipp,
    alice: UserAgent,
    quiet_carol: tuple[UserAgent, asyncio.Queue[Call]],
) -> None:
    target, answered = quiet_carol
    async with UserAgent("dave") as dave:
        await dave.listen("udp", "127.0.0.1", 0)
        d_c = await within(dave.call(uri_of(target)))
        c_d = await within(answered.get())
        assert d_c.dialog is not None
        ids = d_c.dialog.id
        refer_to = refer_to_uri(
            parse_uri(uri_of(target)), replaces_for(ids.call_id, ids.local_tag, ids.remote_tag)
        )
        replaced: asyncio.Queue[Call] = asyncio.Queue()
        c_d.on("replaced", replaced.put_nowait)
        uas = sipp.start("uas_transferor", calls=1, keys={"target": str(refer_to.uri)})

        call = await within(alice.call(uas.uri("sipp")))
        new_calls: asyncio.Queue[Call] = asyncio.Queue()
        call.on("transfer_call", new_calls.put_nowait)
        a_c = await within(new_calls.get())
        await within(a_c.answered())
        c_a = await within(replaced.get())

        assert c_a.invite is not None and c_a.invite.replaces is not None
        assert c_a.state is CallState.ANSWERED
        assert (await within(d_c.ended())).by == "remote"  # Carol's BYE on the old dialog
        assert c_d.end_reason is not None and c_d.end_reason.text == "replaced"
        result = await uas.wait(TIMEOUT)
        assert result.ok, result.report()
        assert "?Replaces=" in result.messages()
        await within(a_c.hangup())


async def test_a_sipp_invite_with_replaces_takes_over_a_dialog_of_the_toolkit(
    sipp: Sipp, quiet_carol: tuple[UserAgent, asyncio.Queue[Call]]
) -> None:
    target, answered = quiet_carol
    local = target.listening[0]
    first = asyncio.ensure_future(
        sipp.run("uac_replaced", (local.host, local.port), service="carol", timeout=TIMEOUT)
    )
    c_s = await within(answered.get())
    assert c_s.dialog is not None
    ids = c_s.dialog.id
    # as SIPp sees the dialog: Carol's tag is its remote tag, so the to-tag
    value = str(replaces_for(ids.call_id, ids.remote_tag, ids.local_tag))
    replaced: asyncio.Queue[Call] = asyncio.Queue()
    c_s.on("replaced", replaced.put_nowait)

    second = await within(
        sipp.run(
            "uac_replaces", (local.host, local.port), service="carol", keys={"replaces": value}
        )
    )

    assert second.ok, second.report()
    new = await within(replaced.get())
    assert new.invite is not None and new.invite.replaces is not None
    assert str(new.invite.replaces) == value
    result = await within(first)
    assert result.ok, result.report()  # the replaced call got Carol's BYE
    assert c_s.end_reason is not None and c_s.end_reason.text == "replaced"


# --- through Kamailio -----------------------------------------------------------------------


async def test_baresip_at_kamailio_is_transferred_to_a_registered_toolkit_agent(
    kamailio: Kamailio, agent: Callable[..., object], baresip_factory: Callable[..., Baresip]
) -> None:
    bob = baresip_factory("bob", registrar=kamailio)
    await kamailio.wait_registered("bob")
    async with agent("alice") as ua, agent("carol") as target:  # type: ignore[attr-defined]
        answered: asyncio.Queue[Call] = asyncio.Queue()

        async def answer(call: Call) -> None:
            await call.ring()
            await call.accept()
            answered.put_nowait(call)

        target.on("incoming_call", answer)
        await within(target.register(kamailio.uri(), expires=300))
        call: Call = await within(ua.call(kamailio.aor("bob")))
        await bob.wait_established()

        result = await within(call.transfer(kamailio.aor("carol")))

        assert result.succeeded
        c_b = await within(answered.get())
        assert c_b.invite is not None and c_b.invite.from_.uri.user == "bob"  # type: ignore[union-attr]
        assert c_b.state is CallState.ANSWERED
        assert (await within(call.ended())).by == "local"
        await within(c_b.hangup())
        await bob.wait_closed()
