"""Call transfer on the user agent: REFER (RFC 3515) with Referred-By (RFC 3892) and
Refer-Sub (RFC 4488), Replaces (RFC 3891), in the flows of RFC 5589.

The transferor: :func:`transfer` sends REFER within a call, follows the implicit
subscription's NOTIFYs (``"transfer_progress"`` events on the call) and hangs the call
up once the referee reports a 2xx. With another call as the target, the Refer-To URI
carries Replaces for that call's dialog (attended transfer).

The transferee: :func:`receive_refer` answers a REFER in a call. The call emits
``"refer"`` with a :class:`TransferRequest` the application may reject; unless it does,
the REFER gets 202, a NOTIFY ``100 Trying``, and the target is called (the new call in a
``"transfer_call"`` event), each progress of that call reported by NOTIFY until its final
status ends the subscription.

The transfer target: :func:`receive_replacing_invite` takes an INVITE whose Replaces
names one of our dialogs: the new call is answered and the old one ended (``"replaced"``
on the old call, with the new one).

The state machines and syntax live in :mod:`voip.sip.refer`; this module drives them.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from voip.sip import Replaces, Request, Response, SipError, make_response
from voip.sip.refer import (
    SIPFRAG,
    ReferNotifier,
    ReferOutcome,
    ReferralTarget,
    ReferSubscriber,
    TransferProgress,
    parse_refer_sub,
    read_referral,
    refer_to_uri,
    replaces_for,
)
from voip.useragent import RequestFailed

if TYPE_CHECKING:
    from voip.call import Call
    from voip.sip.transaction import ServerTransaction
    from voip.sip.uri import Uri
    from voip.useragent import UserAgent

__all__ = [
    "TransferFailed",
    "TransferRequest",
    "receive_notify",
    "receive_refer",
    "receive_replacing_invite",
    "transfer",
]


class TransferFailed(RequestFailed):
    """The transfer did not happen: the REFER was refused (its status), or the referee
    reported a failure of the referred call (the sipfrag's status), or went silent (408)."""


# === the transferor =======================================================================


@dataclass(eq=False, slots=True)
class _Referral:
    """One REFER we sent on a call, and the event that wakes whoever waits on it."""

    subscriber: ReferSubscriber
    changed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(eq=False, slots=True)
class Transfers:
    """A call's REFERs in progress, by the CSeq that NOTIFYs name in ``Event: refer;id=``."""

    sent: dict[int, _Referral] = field(default_factory=dict)

    def find(self, event_id: str | None) -> _Referral | None:
        if event_id is not None and event_id.isdigit() and int(event_id) in self.sent:
            return self.sent[int(event_id)]
        # no id (RFC 3515 §2.4.6 allows it for the first REFER), or the REFER was
        # re-sent with a new CSeq after a challenge: only an unambiguous match will do
        live = [r for r in self.sent.values() if not r.subscriber.done]
        return live[0] if len(live) == 1 else None


def _transfers(call: Call) -> Transfers:
    if call.transfers is None:
        call.transfers = Transfers()
    return call.transfers


async def transfer(
    call: Call,
    target: str | Uri | Call,
    *,
    hangup: bool = True,
    subscribe: bool = True,
) -> TransferProgress:
    """Transfer the peer of ``call`` to ``target`` (RFC 5589): a URI for a blind
    transfer, or another call of ours for an attended one (Replaces, RFC 3891).

    Returns the referee's final report (a 2xx) and, with ``hangup``, ends ``call`` with
    BYE after it; raises :class:`TransferFailed` when the REFER is refused or the
    referred call fails. ``subscribe=False`` asks for no NOTIFYs (RFC 4488): the 2xx to
    the REFER is then the final word."""
    from voip.call import Call, CallState
    from voip.sip import parse_uri

    dialog = call.dialog
    if call.state is not CallState.ANSWERED or dialog is None:
        raise SipError(481, f"call is {call.state.value}: nothing to transfer")
    if isinstance(target, Call):
        other = target.dialog
        if target.state is not CallState.ANSWERED or other is None:
            raise SipError(481, f"the call to replace is {target.state.value}")
        replaces = replaces_for(other.id.call_id, other.id.local_tag, other.id.remote_tag)
        refer_to = refer_to_uri(other.remote_target, replaces)
    else:
        refer_to = refer_to_uri(parse_uri(target) if isinstance(target, str) else target)
    headers = [("Refer-To", str(refer_to)), ("Referred-By", str(dialog.local_uri))]
    if not subscribe:
        headers += [("Refer-Sub", "false"), ("Supported", "norefersub")]

    ua = call.ua
    transfers = _transfers(call)
    referral: _Referral | None = None

    def sent(request: Request) -> None:
        nonlocal referral
        subscriber = ReferSubscriber(
            request.cseq.number, t1=ua.transactions.timers.t1, subscribe=subscribe
        )
        referral = transfers.sent[request.cseq.number] = _Referral(subscriber)

    try:
        response: Response = await call._request("REFER", headers=headers, sent=sent)
    except RequestFailed as error:
        if referral is not None:
            transfers.sent.pop(referral.subscriber.cseq, None)
        raise TransferFailed(error.status, error.reason, error.response) from None
    assert referral is not None
    subscriber = referral.subscriber
    if response.cseq.number != subscriber.cseq:  # re-sent with credentials: a new CSeq
        transfers.sent.pop(subscriber.cseq, None)
        subscriber.cseq = response.cseq.number
        transfers.sent[subscriber.cseq] = referral
    try:
        refer_sub = parse_refer_sub(response)
    except SipError:
        refer_sub = None
    subscriber.receive_response(
        response.status, response.reason_phrase, ua.now(), refer_sub=refer_sub
    )
    try:
        result = await _outcome(call, referral)
    finally:
        transfers.sent.pop(subscriber.cseq, None)
    if not result.succeeded:
        call.emit("transfer_failed", result)
        raise TransferFailed(result.status, result.reason)
    call.emit("transferred", result)
    if hangup:
        await call.hangup()
    return result


async def _outcome(call: Call, referral: _Referral) -> TransferProgress:
    """Wait for the subscription's final word, the call's end, or the deadline."""
    subscriber = referral.subscriber
    ended = asyncio.ensure_future(call.ended())
    try:
        while not subscriber.done:
            deadline = subscriber.deadline
            timeout = None if deadline is None else max(0.0, deadline - call.ua.now())
            referral.changed.clear()
            changed = asyncio.ensure_future(referral.changed.wait())
            await asyncio.wait({changed, ended}, timeout=timeout, return_when="FIRST_COMPLETED")
            changed.cancel()
            if subscriber.done:
                break
            if ended.done():
                return TransferProgress(487, "the call ended before the transfer did", True)
            subscriber.expire(call.ua.now())
    finally:
        ended.cancel()
    assert subscriber.result is not None
    return subscriber.result


def receive_notify(call: Call, transaction: ServerTransaction, request: Request) -> None:
    """A NOTIFY within ``call``: the progress of a REFER we sent (RFC 3515 §2.4.5)."""
    ua = call.ua
    try:
        event = request.event
    except SipError as error:
        ua.respond(transaction, make_response(request, 400, error.reason))
        return
    if event is None or event.package.lower() != "refer":
        # RFC 6665 §8.2.2: we subscribed to no other package
        ua.respond(transaction, make_response(request, 489, headers=[("Allow-Events", "refer")]))
        return
    referral = call.transfers.find(event.id) if call.transfers is not None else None
    if referral is None:
        ua.respond(transaction, make_response(request, 481, "No such refer subscription"))
        return
    subscriber = referral.subscriber
    outcome, why = subscriber.receive_notify(request, ua.now())
    ua.respond(transaction, make_response(request, outcome.value, why or None))
    if outcome is ReferOutcome.OK:
        call.emit("transfer_progress", subscriber.progress[-1])
    referral.changed.set()


# === the transferee =======================================================================


class TransferRequest:
    """A REFER received on a call: who to call (``target``), who asked (``referred_by``),
    whether it replaces a dialog (``replaces``). Reject it with :meth:`reject` from a
    ``"refer"`` handler; otherwise it is accepted and the target called."""

    def __init__(self, call: Call, request: Request, target: ReferralTarget) -> None:
        self.call = call
        self.request = request
        self.target = target
        self.new_call: Call | None = None
        self.dial = True
        self._refused: tuple[int, str | None] | None = None
        self._notifier: ReferNotifier | None = None
        self._lock = asyncio.Lock()
        self._answered = asyncio.Event()  # the REFER has its response (and 100 Trying)

    @property
    def uri(self) -> Uri:
        return self.target.uri

    @property
    def referred_by(self) -> str | None:
        referred_by = self.target.referred_by
        return None if referred_by is None else str(referred_by)

    @property
    def replaces(self) -> Replaces | None:
        return self.target.replaces

    def reject(self, status: int = 603, reason: str | None = None) -> None:
        """Refuse the REFER (603 Declined by default; 403 Forbidden for a policy)."""
        if not 300 <= status < 700:
            raise ValueError(f"a refusal is a 3xx to 6xx status, not {status}")
        self._refused = (status, reason)

    def accept(self, *, dial: bool = True) -> None:
        """Accept the REFER; with ``dial=False`` the application calls the target itself
        and reports each status with :meth:`notify`."""
        self._refused = None
        self.dial = dial

    async def notify(self, status: int, reason: str) -> None:
        """Report the referred call's status to the referrer (NOTIFY with a sipfrag);
        one at a time, as RFC 6665 §4.2.2 asks, until a final status ends it. Waits for
        the 202 and the first NOTIFY; does nothing for a refused REFER or Refer-Sub: false."""
        await self._answered.wait()
        await self._notify(status, reason)

    async def _notify(self, status: int, reason: str) -> None:
        notifier = self._notifier
        if notifier is None:
            return
        async with self._lock:
            content = notifier.notify(status, reason, self.call.ua.now())
            if content is None:
                return
            headers = content.headers()
            dialog = self.call.dialog
            if dialog is not None and dialog.local_contact is not None:
                headers.append(("Contact", str(dialog.local_contact)))  # RFC 6665 §4.2.1
            try:
                await self.call._request("NOTIFY", content.body, SIPFRAG, headers=headers)
            except (RequestFailed, SipError):
                notifier.terminated = True  # RFC 6665 §4.2.2: a failed NOTIFY ends it

    async def _run(self, transaction: ServerTransaction) -> None:
        await asyncio.sleep(0)  # the "refer" handlers (coroutines too) decide first
        call, ua = self.call, self.call.ua
        try:
            if self._refused is not None:
                status, reason = self._refused
                ua.respond(transaction, make_response(self.request, status, reason))
                return
            headers = [] if self.target.subscribe else [("Refer-Sub", "false")]
            ua.respond(transaction, make_response(self.request, 202, headers=headers))
            if self.target.subscribe:
                self._notifier = ReferNotifier(self.request.cseq.number, ua.now())
                await self._notify(100, "Trying")  # RFC 3515 §2.4.4: the first at once
        finally:
            self._answered.set()
        if self._refused is not None or not self.dial:
            return
        new_call = self.new_call = ua.dial(self.target.uri, headers=self.target.invite_headers())

        def ringing(response: Response) -> None:
            if 100 < response.status < 200:
                ua.spawn(self._notify(response.status, response.reason_phrase))

        new_call.on("ringing", ringing)
        call.emit("transfer_call", new_call)
        try:
            await new_call.answered()
        except RequestFailed as error:
            await self._notify(error.status, error.reason)
            return
        await self._notify(200, "OK")


def receive_refer(call: Call, transaction: ServerTransaction, request: Request) -> None:
    """A REFER within ``call`` (RFC 3515 §2.4.2): 400/416 for one we cannot act on, else
    the ``"refer"`` event, then 202 and the referred INVITE unless a handler rejected it."""
    try:
        target = read_referral(request)
    except SipError as error:
        call.ua.respond(transaction, make_response(request, error.status, error.reason))
        return
    referral = TransferRequest(call, request, target)
    call.emit("refer", referral)
    call.ua.spawn(referral._run(transaction))


# === the transfer target: INVITE with Replaces ==============================================


def find_replaced(ua: UserAgent, request: Request) -> Call:
    """The call whose dialog the Replaces of ``request`` names (RFC 3891 §3), or SipError:
    400 for several or a malformed Replaces, 481 when no dialog matches or it is an early
    dialog we did not start, 486 for a confirmed dialog with ``early-only``."""
    from voip.call import CallState

    if request.count("replaces") > 1:
        raise SipError(400, "more than one Replaces")
    replaces = request.replaces
    assert replaces is not None
    # the to-tag is compared with our local tag, the from-tag with the remote tag
    call = ua.calls.get((replaces.call_id, replaces.to_tag))
    if call is None:
        raise SipError(481, "no dialog matches Replaces")
    if call.state is CallState.ENDED:
        raise SipError(603, "the dialog to replace has ended")
    dialog = call.dialog
    if call.state is CallState.ANSWERED:
        if dialog is None or dialog.id.remote_tag != replaces.from_tag:
            raise SipError(481, "no dialog matches Replaces")
        if replaces.early_only:
            raise SipError(486, "the dialog to replace is confirmed (early-only)")
        return call
    if call.outgoing and replaces.from_tag in call.early:
        return call  # an early dialog we started: CANCEL it and take the new call
    raise SipError(481, "Replaces names an early dialog this agent did not start")


def receive_replacing_invite(
    ua: UserAgent, transaction: ServerTransaction, request: Request
) -> None:
    """An INVITE with Replaces (RFC 3891 §3): answer it and end the dialog it replaces
    (BYE if confirmed, CANCEL if early), or refuse it with the status of ``find_replaced``."""
    from voip.call import Call

    try:
        old = find_replaced(ua, request)
    except SipError as error:
        ua._reject(transaction, error.status, error.reason)
        return
    new = Call.from_invite(ua, transaction, request)
    ua._server_owner[transaction] = new
    ua.spawn(_replace(old, new))


async def _replace(old: Call, new: Call) -> None:
    from voip.call import CallState

    old.emit("replaced", new)
    try:
        await new.accept(wait_ack=False)
    except SipError:
        return  # refused (488): the old dialog stays as it was
    with contextlib.suppress(RequestFailed, SipError):
        if old.state is CallState.ANSWERED:
            await old.hangup("replaced")
        else:
            await old.cancel()
