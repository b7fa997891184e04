"""A call: the INVITE dialog usage on either side (RFC 3261 §13 to §15, RFC 3264).

Outgoing: INVITE, provisional responses and early dialogs (one per forked branch),
the first 2xx wins and later 2xx get ACK then BYE (§13.2.2.4), CANCEL (§9.1).
Incoming: 180/183/200 or a refusal, CANCEL → 487, the 2xx retransmitted until its ACK.
In dialog: re-INVITE with SDP (hold and resume, §14 and RFC 3264 §8.4) or without
(the offer in the 2xx), 491 glare with the §14.1 back-off, BYE, INFO, MESSAGE, OPTIONS.
Session timers (RFC 4028, :mod:`voip.sip.sessiontimer`): the interval is negotiated on
the INVITE and each re-INVITE or UPDATE, the refresher re-INVITEs at half of it, and a
session nobody refreshed ends with BYE (an S-P-ABORT).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pyee.asyncio import AsyncIOEventEmitter

import sdp
from voip.dtmf_relay import DTMF_RELAY, dtmf_relay_body
from voip.negotiation import SDP, Negotiation, default_audio
from voip.rtp.dtmf import dtmf_digits
from voip.rtp.srtp import SrtpMode
from voip.sip import CSeq, RAck, Request, Response, SipError, SipUri, make_response
from voip.sip.dialog import Dialog, OfferAnswer
from voip.sip.fields import NameAddress
from voip.sip.message import BytesLike
from voip.sip.redirect import TargetSet, redirected_request
from voip.sip.reliable import (
    OPTION_TAG,
    ProvisionalSequence,
    Rel100,
    ReliableProvisionals,
    Retransmit,
    Verdict,
    is_reliable,
    requested,
)
from voip.sip.sessiontimer import RefreshDue, SessionExpired, SessionTimer
from voip.sip.transaction import ClientTransaction, ServerTransaction
from voip.transport import Endpoint
from voip.transport.dns import Target

if TYPE_CHECKING:
    from voip.rtp.engine import CallMedia
    from voip.sip.refer import TransferProgress
    from voip.sip.uri import Uri
    from voip.transfer import Transfers
    from voip.useragent import UserAgent

__all__ = ["Call", "CallState", "EndReason", "glare_backoff"]

log = logging.getLogger(__name__)


class CallState(enum.Enum):
    CALLING = "calling"  # INVITE sent, nothing back but 100
    RINGING = "ringing"  # 1xx with a To tag: early dialog(s)
    INCOMING = "incoming"  # INVITE received, not answered
    ANSWERED = "answered"  # 2xx sent or received: the dialog is confirmed
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class EndReason:
    """Why a call ended: who ended it, and the SIP status and text that said so;
    ``error`` is the typed error behind it when the toolkit ended the call over one
    (e.g. :class:`~voip.rtp.srtp.SrtpRequired` for a plain-RTP answer)."""

    by: str  # "local", "remote" or "provider"
    status: int
    text: str
    error: Exception | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.by}: {self.status} {self.text}"


def merge_key(request: Request) -> tuple[str, str, int]:
    """What a merged request shares with the first copy (§8.2.2.2): Call-ID, From tag, CSeq."""
    return (request.call_id, request.from_.tag or "", request.cseq.number)


def _has_sdp(message: Request | Response) -> bool:
    content_type = message.content_type
    return bool(message.body) and content_type is not None and content_type.mime == SDP


class Call:
    """One call. Events (pyee): ``"ringing"`` (response), ``"early_media"`` (agreed
    streams), ``"answered"``, ``"media"`` (agreed streams after each exchange),
    ``"hold"`` / ``"resume"`` (the peer's), ``"info"`` / ``"message"`` (request),
    ``"session_timer"`` (the :class:`~voip.sip.sessiontimer.SessionTimer`, each time the
    session interval starts again), ``"session_expired"``
    (:class:`~voip.sip.sessiontimer.SessionExpired`, before the BYE it causes),
    transfer (:mod:`voip.transfer`): ``"refer"`` (a TransferRequest to reject or let be),
    ``"transfer_call"`` (the call a REFER made), ``"transfer_progress"`` /
    ``"transferred"`` / ``"transfer_failed"`` (TransferProgress of our REFER),
    ``"replaced"`` (the call that took this one's place), ``"rebound"`` (the new local
    address, once the re-INVITE after :meth:`UserAgent.rebind` is answered),
    ``"redialed"`` (the INVITE sent again from the new address when the agent moved
    before the answer),
    ``"redirected"`` (the 3xx or failure and the next target the INVITE goes to, RFC
    3261 §8.1.3.4), ``"prack"`` (request: the caller acknowledged a reliable 1xx, RFC
    3262), ``"media_failed"`` (the :class:`~voip.rtp.dtls.DtlsError` of a DTLS-SRTP
    handshake that failed: the call is then released), ``"ended"`` (:class:`EndReason`)."""

    def __init__(self, ua: UserAgent, *, outgoing: bool, negotiation: Negotiation) -> None:
        self._events: AsyncIOEventEmitter | None = None  # made when a handler is added
        self.ua = ua
        self.outgoing = outgoing
        self.negotiation = negotiation
        self.state = CallState.CALLING if outgoing else CallState.INCOMING
        self.dialog: Dialog | None = None
        self.early: dict[str, Dialog] = {}
        self.invite: Request | None = None
        self.end_reason: EndReason | None = None
        self.local_tag = ""
        #: the user whose digest credentials the INVITE carried (a challenging UAS)
        self.authenticated_user: str | None = None
        self._answered: asyncio.Future[Response | None] = ua.loop.create_future()
        self._ended: asyncio.Future[EndReason] = ua.loop.create_future()
        self._provisional = asyncio.Event()
        self._targets: list[Target] = []
        #: the provider fault the call is being released for (its BYE on the way): a BYE
        #: of the peer's that crosses ours ends the call for that reason all the same
        self._fault: EndReason | None = None
        self._ack: Request | None = None
        self._ack_target: Target | None = None
        self._cancelling = False
        self._invite_server: ServerTransaction | None = None
        self._acked: asyncio.Event = asyncio.Event()
        #: the INVITE or re-INVITE server transaction whose 2xx awaits its ACK
        self._awaiting_ack: ServerTransaction | None = None
        self._offer_in_invite = True
        self._follow_redirects = True
        #: the targets of the INVITE and its redirections (RFC 3261 §8.1.3.4)
        self._redirection: TargetSet | None = None
        #: the call's RTP stream (voip.rtp), from the first SDP on until the call ends
        self.media: CallMedia | None = None
        self.transfers: Transfers | None = None  # REFERs we sent (voip.transfer)
        #: Info Packages (RFC 6086) this call receives: name → handler of the INFO; a
        #: handler raising SipError answers with its status. Advertised with Recv-Info.
        self.info_packages: dict[str, Callable[[Request], None]] = {}
        #: Info Package parameters (RFC 6086 §10.3, ``name=value;…``) by package, put
        #: after its name in the Recv-Info of the requests and responses sent from now on
        self.info_package_parameters: dict[str, str] = {}
        #: the 2xx that answered our INVITE
        self.answer_response: Response | None = None
        #: the final response that refused our INVITE (a 3xx not followed: its Contacts)
        self.refusal: Response | None = None
        policy = ua.session_timers
        #: RFC 4028 for this call's dialog; None when the agent does not take part
        self.session_timer = SessionTimer(policy) if policy is not None else None
        self._session_handle: asyncio.TimerHandle | None = None
        self._session_at: float | None = None
        #: the methods the peer said it allows (Allow of its INVITE or of its 2xx)
        self.peer_allow: tuple[str, ...] = ()
        #: forks whose 2xx lost to the first (§13.2.2.4): To tag → their ACK, once sent
        self._forks_ended: dict[str, tuple[Request, Target] | None] = {}
        #: what the INVITE says about reliable provisional responses (RFC 3262)
        self.rel100 = Rel100.SUPPORTED
        #: the INVITE's offer/answer exchange was completed by a reliable 1xx and its PRACK
        self._early_exchange = False
        self._rseqs: dict[str, ProvisionalSequence] = {}  # UAC: per early dialog (§4)
        self._reliable: ReliableProvisionals | None = None  # UAS: our reliable 1xx (§3)
        self._reliable_timer: asyncio.TimerHandle | None = None
        self._pracked = asyncio.Event()
        #: INVITEs given up after the agent moved (:meth:`_redial`): CSeq → the request,
        #: and whether it was CANCELed yet
        self._abandoned: dict[int, tuple[Request, bool]] = {}
        #: the Contact of our last 1xx/2xx to the INVITE (UAS): the dialog's local target
        self._contact: NameAddress | None = None

    @property
    def events(self) -> AsyncIOEventEmitter:
        """The call's event emitter (pyee), made on first use: most calls of a busy UAS
        have no handler, and an emitter (its lock, its tables) costs more than the rest
        of the call object."""
        if self._events is None:
            self._events = AsyncIOEventEmitter()
        return self._events

    def on(self, event: str, handler: Callable[..., Any]) -> None:
        """Call ``handler`` on each ``event`` (pyee; coroutine functions run as tasks)."""
        self.events.on(event, handler)

    def emit(self, event: str, *args: Any) -> None:
        events = self._events
        if events is not None:
            events.emit(event, *args)
        elif event == "error":
            self.events.emit(event, *args)  # pyee raises an unhandled error

    def __repr__(self) -> str:
        side = "outgoing" if self.outgoing else "incoming"
        return f"<Call {side} {self.state.value} {self.call_id}>"

    # --- identity -----------------------------------------------------------------------

    @property
    def call_id(self) -> str:
        return self.invite.call_id if self.invite is not None else ""

    @property
    def remote_hold(self) -> bool:
        return self.negotiation.remote_hold

    @property
    def on_hold(self) -> bool:
        return self.negotiation.hold

    @property
    def agreed(self) -> list[sdp.NegotiatedMedia]:
        return self.negotiation.agreed

    def _register(self) -> None:
        self.ua.calls[(self.call_id, self.local_tag)] = self
        if not self.outgoing:
            assert self.invite is not None
            self.ua.invites[merge_key(self.invite)] = self

    def _end(
        self,
        by: str,
        status: int,
        text: str,
        error: Exception | None = None,
        *,
        response: Response | None = None,
    ) -> None:
        if self.state is CallState.ENDED:
            return
        self.state = CallState.ENDED
        self.end_reason = EndReason(by, status, text, error)
        self.refusal = response
        if self.session_timer is not None:
            self.session_timer.stop()
        self._arm_session_timer()
        if self.media is not None:
            self.media.close()

        if self.dialog is not None:
            self.dialog.terminate()
        self._close_reliable()
        self.ua.calls.pop((self.call_id, self.local_tag), None)
        if not self.outgoing and self.invite is not None:
            self.ua.invites.pop(merge_key(self.invite), None)
        if self._invite_server is not None:
            self.ua.release(self._invite_server)
        if not self._answered.done():
            from voip.useragent import RequestFailed

            self._answered.set_exception(RequestFailed(status, text, response))
            self._answered.exception()  # retrieved: nobody may be waiting
        if not self._ended.done():
            self._ended.set_result(self.end_reason)
        self.emit("ended", self.end_reason)

    def _is_answered(self) -> bool:
        return self.state is CallState.ANSWERED

    async def answered(self) -> None:
        """Wait until the call is answered; raises RequestFailed when it is not."""
        await asyncio.shield(self._answered)

    async def ended(self) -> EndReason:
        return await asyncio.shield(self._ended)

    # === outgoing ===========================================================================

    @classmethod
    def dial(
        cls,
        ua: UserAgent,
        uri: Uri,
        *,
        media_port: int = 0,
        offer: bool = True,
        headers: Iterable[tuple[str, str]] = (),
        to: str | None = None,
        session_expires: int | None = None,
        min_se: int | None = None,
        rel100: Rel100 = Rel100.SUPPORTED,
        srtp: SrtpMode | str | None = None,
        follow_redirects: bool = True,
    ) -> Call:
        """``session_expires`` and ``min_se`` (seconds) override the agent's session
        timer policy for this call (RFC 4028). ``rel100``: whether the INVITE says
        "Supported: 100rel" (the default) or "Require: 100rel", so that the callee's
        provisional responses come reliably and are acknowledged with PRACK (RFC 3262
        §4), or neither. ``srtp`` overrides the agent's SRTP policy for this call
        (:class:`~voip.rtp.srtp.SrtpMode`: ``"off"``, ``"optional"``, ``"required"``,
        ``"dtls"``, ``"dtls-preferred"``).

        ``follow_redirects``: a 300, 301 or 302 sends the INVITE on to its Contacts (RFC
        3261 §8.1.3.4: highest ``q`` first, the same Call-ID, From and To, CSeq one
        more, each target once, at most ``ua.max_redirects`` 3xx in a row; a target that
        fails makes way for the next); the ``"redirected"`` event tells of each. False:
        the 3xx ends the call, and ``answered()`` raises RequestFailed carrying it."""
        mode = SrtpMode(srtp or ua.srtp)
        call = cls(ua, outgoing=True, negotiation=Negotiation("0.0.0.0", [], srtp=mode))
        call._offer_in_invite = offer
        call._follow_redirects = follow_redirects
        timer = call.session_timer
        if timer is not None and (session_expires is not None or min_se is not None):
            policy = timer.policy
            call.session_timer = SessionTimer(
                replace(
                    policy,
                    session_expires=session_expires or policy.session_expires,
                    min_se=min_se or policy.min_se,
                )
            )
        call.rel100 = rel100
        headers = list(headers)
        if rel100 is not Rel100.DISABLED:
            headers.append(("Supported", OPTION_TAG))
        if rel100 is Rel100.REQUIRED:
            headers.append(("Require", OPTION_TAG))
        ua.spawn(call._dial(uri, media_port, headers, to))
        return call

    async def _dial(
        self, uri: Uri, media_port: int, headers: list[tuple[str, str]], to: str | None
    ) -> None:
        from voip.useragent import RequestFailed

        ua = self.ua
        try:
            if not any(name.lower() == "allow" for name, _ in headers):
                # §20.5: what the peer may send us in the dialog (UPDATE: RFC 3311 §5.1)
                headers = [*headers, ("Allow", ", ".join(_allowed()))]
            if self.session_timer is not None:
                headers = [*headers, *self.session_timer.request_headers()]
            request = ua.new_request(
                "INVITE", uri, headers=_one_supported([*headers, *self._recv_info()])
            )
            if to is not None:
                request.headers.set("To", to)
            self.invite = request
            self.local_tag = request.from_.tag or ""
            if self._follow_redirects and ua.max_redirects > 0:
                self._redirection = TargetSet(uri, max_redirects=ua.max_redirects)
            self._register()
            self._targets = await ua.resolve(ua.first_hop(request))
            local = ua.local_endpoint(self._targets[0])
            self.negotiation.address = local.host
            self.negotiation.media = [self._audio(local.host, media_port)]
            if self._offer_in_invite:
                request.body = self.negotiation.create_offer()
                request.headers.set("Content-Type", SDP)
                request.headers.set("Content-Length", str(len(request.body)))
            await ua.send_request(request, self._on_invite_response, targets=self._targets)
        except RequestFailed as error:
            self._end("provider", error.status, error.reason)
        except Exception as error:  # a resolver or transport fault: the call cannot start
            self._end("provider", 503, str(error) or type(error).__name__)

    def _on_invite_response(self, transaction: ClientTransaction, response: Response) -> None:
        if response.cseq.number in self._abandoned:
            self._on_abandoned(response)
            return
        self.invite = transaction.request  # the authorized re-send, if there was one
        status = response.status
        if status < 200:
            self._on_provisional(response)
        elif status < 300:
            self._on_2xx(response)
        elif self.state is CallState.ANSWERED:
            # the INVITE transaction waits out Timer M after its 2xx (RFC 6026 §8.4); a
            # transport failure meanwhile (its TCP flow lost) is no answer to the INVITE
            # and does not end the confirmed dialog
            return
        elif (status == 422 and self._retry_after_422(transaction.request, response)) or (
            self._redirect(transaction.request, response)
        ):
            return
        else:
            self.negotiation.offer_rejected()
            if self._cancelling and status == 487:
                self._end("local", 487, "Request Terminated")
            else:
                self._end("remote", status, response.reason_phrase, response=response)

    def _redirect(self, request: Request, response: Response) -> bool:
        """A 3xx to follow, or a failure of a target a 3xx gave with another left to
        try (RFC 3261 §8.1.3.4, :class:`~voip.sip.redirect.TargetSet`): the INVITE again
        to the next target, in a new transaction; True when it went."""
        targets = self._redirection
        if targets is None or self._cancelling:
            return False
        target = targets.after(response)
        if target is None:
            return False
        retry = redirected_request(request, target)
        for early in self.early.values():  # the early dialogs of the last target are over
            early.terminate()
        self.early.clear()
        self.state = CallState.CALLING
        self._provisional.clear()
        self.invite = retry
        self.emit("redirected", response, target)
        self.ua.spawn(self._send_redirected(retry))
        return True

    async def _send_redirected(self, request: Request) -> None:
        """Send the redirected INVITE to where its new Request-URI (or the route set)
        leads (RFC 3263 for the new target). A target that cannot be located (no DNS
        record, a transport this agent lacks) makes way for the next (§8.1.3.4); the call
        ends when none is left."""
        from voip.useragent import RequestFailed

        ua = self.ua
        while True:
            try:
                self._targets = await ua.resolve(ua.first_hop(request))
                break
            except Exception as error:
                log.info("redirect target %s not reachable: %s", request.uri, error)
                target = None if self._redirection is None else self._redirection.next_target()
                if target is None or self._cancelling or self.state is CallState.ENDED:
                    status = error.status if isinstance(error, RequestFailed) else 503
                    self._end("provider", status, str(error) or type(error).__name__)
                    return
                request = self.invite = redirected_request(request, target)
        await self._send_invite(request)

    def _retry_after_422(self, request: Request, response: Response) -> bool:
        """422 Session Interval Too Small (RFC 4028 §7.3): the INVITE again, in a new
        transaction (CSeq + 1), asking for at least the response's Min-SE."""
        timer = self.session_timer
        if timer is None or self._cancelling or not timer.receive_422(response):
            return False
        retry = Request(request.method, request.uri, request.headers.copy(), request.body)
        retry.cseq = CSeq(request.cseq.number + 1, request.cseq.method)
        for name, value in timer.request_headers():
            if name != "Supported":
                retry.headers.set(name, value)
        self.invite = retry
        self.ua.spawn(self._send_invite(retry))
        return True

    async def _send_invite(self, request: Request) -> None:
        try:
            await self.ua.send_request(request, self._on_invite_response, targets=self._targets)
        except Exception as error:  # the transport refused: the call cannot start
            self._end("provider", 503, str(error) or type(error).__name__)

    def _on_provisional(self, response: Response) -> None:
        if response.status == 100 or self.state is CallState.ANSWERED:
            return
        self._provisional.set()
        tag = response.to.tag
        assert self.invite is not None
        dialog: Dialog | None = None
        if tag and response.contact:
            dialog = self.early.get(tag)
            if dialog is None:
                dialog = self.early[tag] = Dialog.from_uac(self.invite, response)
                if _has_sdp(self.invite):
                    dialog.sent_offer(self.invite.body)  # answered by the 2xx (RFC 6337 §2.2)
            self.state = CallState.RINGING
        rack = None
        if dialog is not None and self.rel100 is not Rel100.DISABLED and is_reliable(response):
            verdict, rack = self._rseqs.setdefault(tag or "", ProvisionalSequence()).receive(
                response
            )
            if verdict is not Verdict.NEW:
                return  # RFC 3262 §4: a retransmission, or out of order: not processed
        prack_body = b""
        if _has_sdp(response):
            prack_body = self._early_sdp(response, dialog if rack is not None else None)
        if dialog is not None and rack is not None:
            self.ua.spawn(self._prack(dialog, rack, prack_body))
        self.emit("ringing", response)

    def _early_sdp(self, response: Response, reliable: Dialog | None) -> bytes:
        """SDP in a provisional response. Unreliable: a preview of the answer, for early
        media until the 2xx (RFC 3261 §13.2.1). Reliable (``reliable`` is its early
        dialog): the answer to the INVITE's offer for good, or the callee's offer when
        the INVITE had none, whose answer goes in the PRACK, returned (RFC 3262 §5)."""
        negotiation = self.negotiation
        try:
            if reliable is None:
                if negotiation.offer is not None:
                    self._early_media(negotiation.receive_early_answer(response.body))
                return b""
            if negotiation.offer is not None:
                agreed = negotiation.receive_answer(response.body)
                reliable.received_answer(response.body)
                self._early_exchange = True
                self._early_media(agreed)
            elif not self._early_exchange:
                reliable.received_offer(response.body)
                answer = negotiation.receive_offer(response.body)
                reliable.sent_answer(answer)
                self._early_exchange = True
                self._early_media(negotiation.agreed)
                return answer
        except (sdp.SdpError, sdp.OfferAnswerError, SipError) as error:
            log.info("unusable SDP in %s: %s", response.status, error)
        return b""

    def _early_media(self, agreed: list[sdp.NegotiatedMedia]) -> None:
        if self.media is not None:
            self.media.update(agreed)  # early media plays from the 18x on
        self.emit("early_media", agreed)

    async def _prack(self, dialog: Dialog, rack: RAck, body: bytes) -> None:
        """Acknowledge a reliable provisional response (RFC 3262 §4, §7.2), with the
        answer to an offer it carried."""
        from voip.useragent import RequestFailed

        try:
            await self._request(
                "PRACK",
                body,
                SDP if body else None,
                [("RAck", str(rack))],
                dialog=dialog,
                ends_dialog=False,
            )
        except (RequestFailed, SipError) as error:
            log.info("PRACK for RSeq %d failed: %s", rack.rseq, error)

    def _on_2xx(self, response: Response) -> None:
        assert self.invite is not None
        tag = response.to.tag or ""
        if self.dialog is not None:
            if tag == self.dialog.id.remote_tag:
                self._resend_ack()  # a retransmitted 2xx: the same ACK again (§13.2.2.4)
            elif tag in self._forks_ended:
                self._resend_fork_ack(tag)  # a losing fork's 2xx again: ACK it, no new BYE
            else:
                self._forks_ended[tag] = None
                self.ua.spawn(self._ack_and_bye(response))  # a second fork answered
            return
        try:
            dialog = self.early.pop(tag, None)
            if dialog is None:
                dialog = Dialog.from_uac(self.invite, response)
            else:
                dialog.receive_response(self.invite, response)
        except SipError as error:
            self.ua.spawn(self._ack_and_bye(response))
            self._end("remote", 502, f"unusable 2xx: {error.reason}")
            return
        self.dialog = dialog
        self.peer_allow = response.allow
        for early in self.early.values():
            early.terminate()
        self.early.clear()
        body: bytes = b""
        try:
            negotiation = self.negotiation
            if negotiation.offer is not None:
                if _has_sdp(response):
                    self._media_changed(self.negotiation.receive_answer(response.body))
                elif self.negotiation.remote is not None:
                    # the answer came early (183) and the 2xx does not repeat it
                    self._media_changed(
                        self.negotiation.receive_answer(bytes(self.negotiation.remote))
                    )
                else:
                    raise sdp.OfferAnswerError("the 2xx carries no answer")
            elif self._early_exchange:
                self._media_changed(negotiation.agreed)  # agreed in a reliable 1xx (RFC 3262 §5)
            elif _has_sdp(response):
                body = self.negotiation.receive_offer(response.body)  # answer in the ACK
                self._media_changed(self.negotiation.agreed)
        except (sdp.SdpError, sdp.OfferAnswerError) as error:
            self.state = CallState.ANSWERED
            self.ua.spawn(self._send_ack(body))
            self.ua.spawn(self._bye_and_end("remote", 488, f"bad SDP: {error}", error=error))
            return
        self.state = CallState.ANSWERED
        dialog.offer_answer = OfferAnswer.STABLE  # the answer came in the 2xx or goes in the ACK
        self.ua.spawn(self._send_ack(body))
        self._session_timer_response(response)
        self.answer_response = response
        if not self._answered.done():
            self._answered.set_result(response)
        self.emit("answered")

    async def _in_dialog_targets(self, dialog: Dialog) -> list[Target]:
        return await self.ua.resolve(dialog.next_hop())

    async def _send_ack(self, body: bytes = b"") -> None:
        assert self.dialog is not None and self.invite is not None
        targets = await self._in_dialog_targets(self.dialog)
        ack = self.dialog.create_request(
            "ACK", cseq=self.invite.cseq.number, body=body, content_type=SDP if body else None
        )
        _copy_credentials(self.invite, ack)
        self._ack, self._ack_target = ack, targets[0]
        self.ua.send_ack(ack, targets[0])

    def _resend_ack(self) -> None:
        if self._ack is not None and self._ack_target is not None:
            self.ua.resend(self._ack, self._ack_target)

    async def _ack_and_bye(self, response: Response, invite: Request | None = None) -> None:
        """A 2xx we do not want (another fork won, or it is unusable, or it answers an
        INVITE given up: ``invite``): ACK it, then BYE (§13.2.2.4)."""
        invite = invite or self.invite
        assert invite is not None
        try:
            dialog = Dialog.from_uac(invite, response)
        except SipError:
            return
        targets = await self._in_dialog_targets(dialog)
        ack = dialog.create_request("ACK", cseq=invite.cseq.number)
        _copy_credentials(invite, ack)
        self.ua.send_ack(ack, targets[0])
        self._forks_ended[dialog.id.remote_tag] = (ack, targets[0])
        bye = dialog.create_request("BYE")
        await self.ua.request(bye, targets=targets)

    def _resend_fork_ack(self, tag: str) -> None:
        sent = self._forks_ended.get(tag)
        if sent is not None:
            ack, target = sent
            self.ua.resend(ack, target)

    def on_stray_2xx(self, response: Response) -> None:
        """A 2xx after the INVITE transaction ended (Timer M): ACK it again."""
        if self.dialog is not None and response.to.tag == self.dialog.id.remote_tag:
            self._resend_ack()

    async def cancel(self) -> None:
        """Abandon an unanswered outgoing call (§9.1): CANCEL once a provisional came."""
        if not self.outgoing or self.state not in (CallState.CALLING, CallState.RINGING):
            return
        self._cancelling = True
        await self._provisional.wait()  # §9.1: not before a provisional response
        if self._is_answered():
            await self.hangup()  # the 2xx crossed our CANCEL
            return
        assert self.invite is not None
        self.ua.send_cancel(self.invite, self._targets)
        try:
            await asyncio.wait_for(self.ended(), 64 * self.ua.transactions.timers.t1)
        except TimeoutError:
            self._end("local", 487, "Request Terminated")

    # === incoming ===========================================================================

    @classmethod
    def from_invite(cls, ua: UserAgent, transaction: ServerTransaction, request: Request) -> Call:
        from voip.sip import new_tag

        srtp = ua.srtp
        mode = srtp if isinstance(srtp, SrtpMode) else SrtpMode(srtp)
        negotiation = Negotiation("0.0.0.0", [], srtp=mode)
        call = cls(ua, outgoing=False, negotiation=negotiation)
        call.invite = request
        call.local_tag = new_tag()
        call.rel100 = requested(request)
        call._invite_server = transaction
        call.peer_allow = request.allow
        call._register()
        return call

    def matches_merged(self, request: Request) -> bool:
        assert self.invite is not None
        return (
            not self.outgoing
            and self.state is CallState.INCOMING
            and request.from_.tag == self.invite.from_.tag
            and request.cseq.number == self.invite.cseq.number
            and request.via[0].branch != self.invite.via[0].branch
        )

    def _response(self, status: int, reason: str | None = None, body: bytes = b"") -> Response:
        assert self.invite is not None and self._invite_server is not None
        response = make_response(self.invite, status, reason, to_tag=self.local_tag)
        if status > 100 and status < 300:
            source = self._invite_server.source
            assert isinstance(source, Endpoint)
            target = Target(source.transport, source.host, source.port, source.host)  # type: ignore[arg-type]
            self._contact = self.ua.contact_for(target)
            response.headers.add("Contact", str(self._contact))
            response.headers.add("Allow", _allow_value())
            response.headers.add("Supported", _supported_value())
            for name, value in self._recv_info():
                response.headers.add(name, value)
        if body:
            response.headers.add("Content-Type", SDP)
            response.body = body
        return response

    def _prepare_media(self, media_port: int) -> None:
        assert self._invite_server is not None
        source = self._invite_server.source
        assert isinstance(source, Endpoint)
        local = self.ua.transport.local_endpoint(source.transport, source)
        self.negotiation.address = local.host
        self.negotiation.media = [self._audio(local.host, media_port)]

    def _audio(self, host: str, media_port: int) -> sdp.MediaCapabilities:
        """The call's audio stream, opened on ``host``, as the SDP describes it: with the
        fingerprint of the agent's DTLS certificate when DTLS-SRTP may be agreed."""
        port = self._open_media(host, media_port)
        assert self.media is not None
        mode = self.negotiation.srtp
        fingerprint = self.media.enable_dtls() if mode.accepts_dtls else None
        audio = default_audio(port, self.ua.codecs, mode, fingerprint)
        audio.rtcp_mux = self.ua.rtcp_mux
        return audio

    def _open_media(self, host: str, media_port: int) -> int:
        """Open the call's RTP stream on ``host``; its port goes into the SDP."""
        if self.media is None:
            media = self.media = self.ua.media.open(host, media_port or None)
            media.listen(self._on_media_event)
            # with keys in the SDP, nothing is played until they are agreed
            media.stream.awaiting_keys = self.negotiation.srtp is not SrtpMode.OFF
        return self.media.port

    def _on_media_event(self, event: str, *args: Any) -> None:
        """What the call's stream says that the call tells its own handlers."""
        if event == "dtmf":
            self.emit("dtmf", *args)
        elif event == "inactive":
            self.emit("media_inactive", *args)
        elif event == "dtls_failed":
            self._on_dtls_failed(*args)

    def _on_dtls_failed(self, error: Exception) -> None:
        """The DTLS-SRTP handshake failed (RFC 5763 §5: e.g. a certificate that is not the
        SDP's fingerprint): no keys, so no media. ``"media_failed"`` tells the user, and
        the call is released with a Reason saying why (the provider's fault, X.215's
        S-P-ABORT); ``end_reason.error`` is the :class:`~voip.rtp.dtls.DtlsError`."""
        self.emit("media_failed", error)
        if self.state is not CallState.ENDED:
            self.ua.spawn(self._release_for(error))

    async def _release_for(self, error: Exception) -> None:
        # the handshake may fail while the 2xx that started it is being taken in
        with contextlib.suppress(Exception):
            await self.answered()
        if self._is_answered() and self._fault is None:
            text = f"DTLS-SRTP failed: {error}"
            self._fault = EndReason("provider", 488, text, error)
            await self._bye_and_end("provider", 488, text, error=error)

    async def ring(
        self, *, early_media: bool = False, media_port: int = 0, reliable: bool | None = None
    ) -> None:
        """180 Ringing, or 183 Session Progress with the answer, for early media.

        Sent reliably (RFC 3262: retransmitted until the caller's PRACK) when the INVITE
        requires 100rel; when it only supports it, if ``reliable`` is True, and by default
        for early media. A reliable 183 carries the answer to the INVITE's offer for good
        (the 2xx then carries no SDP), or our offer when the INVITE had none, answered in
        the PRACK (§5). An INVITE without 100rel gets unreliable responses whatever
        ``reliable`` says."""
        if self.state is not CallState.INCOMING or self._invite_server is None:
            return
        assert self.invite is not None
        reliably = self._reliably(early_media, reliable)
        body = b""
        if early_media:
            self._prepare_media(media_port)
            if _has_sdp(self.invite) or not reliably:
                body = self._answer_invite_offer() or b""
            elif not self._early_exchange and self.negotiation.offer is None:
                body = self.negotiation.create_offer()
        response = self._response(183 if early_media else 180, body=body)
        dialog = self._uas_dialog(response)
        if not reliably:
            self.ua.respond(self._invite_server, response)
            if body and self.media is not None:
                self.media.update(self.negotiation.agreed)  # early media from the 183 on
            return
        if body and dialog.offer_answer is OfferAnswer.REMOTE_OFFER:
            dialog.sent_answer(body)  # the INVITE's exchange is complete (RFC 3262 §5)
            self._early_exchange = True
            self._media_changed(self.negotiation.agreed)
        elif body and self.negotiation.offer is not None:
            dialog.sent_offer(body)  # answered in the PRACK
        self._send_reliably(response)

    def _reliably(self, early_media: bool, reliable: bool | None) -> bool:
        """Whether a provisional response goes reliably (RFC 3262 §3)."""
        if self.rel100 is Rel100.REQUIRED:
            return True  # §3: MUST
        if self.rel100 is Rel100.DISABLED or OPTION_TAG not in self.ua.policy.extensions:
            return False
        return early_media if reliable is None else reliable

    def _send_reliably(self, response: Response) -> None:
        assert self.invite is not None and self._invite_server is not None
        if self._reliable is None:
            self._reliable = ReliableProvisionals(
                self.invite,
                t1=self.ua.transactions.timers.t1,
                retransmit=not self._invite_server.reliable,
            )
        sent = self._reliable.send(response, self.ua.now())
        if sent is not None:
            self.ua.respond(self._invite_server, sent)
        self._arm_reliable()

    def _arm_reliable(self) -> None:
        """One timer for the reliable 1xx's retransmissions and patience (§3)."""
        if self._reliable_timer is not None:
            self._reliable_timer.cancel()
        reliable = self._reliable
        deadline = reliable.next_deadline() if reliable is not None else None
        self._reliable_timer = (
            None if deadline is None else self.ua.loop.call_at(deadline, self._on_reliable_timer)
        )
        if reliable is None or not reliable.outstanding:
            self._pracked.set()
        else:
            self._pracked.clear()

    def _on_reliable_timer(self) -> None:
        self._reliable_timer = None
        if self._reliable is None:
            return
        for event in self._reliable.handle_timers(self.ua.now()):
            if isinstance(event, Retransmit):
                if self.state is CallState.INCOMING and self._invite_server is not None:
                    self.ua.respond(self._invite_server, event.response)
            else:  # §3: 64·T1 without PRACK: reject the INVITE with a 5xx
                self.reject_now(500, "No PRACK for the reliable provisional response")
        self._arm_reliable()

    def _close_reliable(self) -> None:
        """The INVITE has its final response: no more reliable 1xx (§3)."""
        if self._reliable is not None:
            self._reliable.close()
        self._arm_reliable()

    def _on_prack(self, transaction: ServerTransaction, dialog: Dialog, request: Request) -> None:
        """A PRACK (RFC 3262 §3): 200 when its RAck names our unacknowledged reliable
        1xx, else 481; an answer to the offer in that 1xx, or a new offer answered in
        the 200 (§5)."""
        rack = request.rack
        if rack is None:
            self.ua.respond(transaction, make_response(request, 400, "PRACK without RAck"))
            return
        if self._reliable is None:
            self.ua.respond(transaction, make_response(request, 481, "No Reliable Provisional"))
            return
        try:
            _, following = self._reliable.prack(rack, self.ua.now())
        except SipError as error:
            self.ua.respond(transaction, make_response(request, error.status, error.reason))
            return
        body = b""
        try:
            if _has_sdp(request) and dialog.offer_answer is OfferAnswer.LOCAL_OFFER:
                agreed = self.negotiation.receive_answer(request.body)
                dialog.received_answer(request.body)
                self._early_exchange = True
                self._media_changed(agreed)
            elif _has_sdp(request):
                dialog.received_offer(request.body)
                body = self.negotiation.receive_offer(request.body)
                dialog.sent_answer(body)
                self._media_changed(self.negotiation.agreed)
        except SipError as error:
            self.ua.respond(transaction, make_response(request, error.status, error.reason))
        except (sdp.SdpError, sdp.OfferAnswerError) as error:
            dialog.offer_failed()
            self.ua.respond(transaction, make_response(request, 488, str(error)[:100]))
        else:
            response = make_response(request, 200)
            if body:
                response.headers.add("Content-Type", SDP)
                response.body = body
            self.ua.respond(transaction, response)
            self.emit("prack", request)
        if following is not None and self.state is CallState.INCOMING:
            assert self._invite_server is not None
            self.ua.respond(self._invite_server, following)
        self._arm_reliable()

    def _answer_invite_offer(self) -> bytes | None:
        assert self.invite is not None
        if not _has_sdp(self.invite):
            return None
        if self.negotiation.agreed:
            return bytes(self.negotiation.local) if self.negotiation.local else None
        return self.negotiation.receive_offer(self.invite.body)

    def _uas_dialog(self, response: Response) -> Dialog:
        assert self.invite is not None
        if self.dialog is None:
            # our own To tag and Contact, not read back from the response just built
            self.dialog = Dialog.from_uas(
                self.invite, response, local_tag=self.local_tag, local_contact=self._contact
            )
            if _has_sdp(self.invite):
                self.dialog.received_offer(self.invite.body)
        if response.status >= 200:
            self.dialog.confirm()
        return self.dialog

    async def accept(self, *, media_port: int = 0, wait_ack: bool = True) -> None:
        """Answer with 200 OK and the SDP answer (or our offer, when the INVITE had none);
        with ``wait_ack``, return once the ACK has come."""
        if self.state is not CallState.INCOMING or self._invite_server is None:
            raise SipError(481, f"call is {self.state.value}, not incoming")
        if self._reliable is not None and self._reliable.outstanding:
            await self._pracked.wait()  # RFC 3262 §3: the 2xx waits for the PRACKs
        self.accept_now(media_port=media_port)
        if wait_ack:
            await self._acked.wait()

    def accept_now(self, *, media_port: int = 0) -> None:
        """:meth:`accept` at once, without a task: for an ``"incoming_call"`` handler that
        answers on the spot (a busy UAS saves scheduling a coroutine per call). Raises
        SipError when the call is not incoming (481), when the offer cannot be answered
        (488, after the 488 response), or while a reliable provisional response awaits
        its PRACK (500: the 2xx must wait for it, RFC 3262 §3; :meth:`accept` does)."""
        if self.state is not CallState.INCOMING or self._invite_server is None:
            raise SipError(481, f"call is {self.state.value}, not incoming")
        assert self.invite is not None
        if self._reliable is not None and self._reliable.outstanding:
            raise SipError(500, "a reliable provisional response awaits its PRACK")
        if not self.negotiation.media:
            self._prepare_media(media_port)
        try:
            answer = self._answer_invite_offer()
            body = answer if answer is not None else self.negotiation.create_offer()
        except (sdp.SdpError, sdp.OfferAnswerError) as error:
            self.reject_now(488, "Not Acceptable Here")
            raise SipError(488, f"cannot answer the offer: {error}") from None
        response = self._response(200, body=b"" if self._early_exchange else body)
        dialog = self._uas_dialog(response)
        self._session_timer_answer(self.invite, response)
        if self._early_exchange:
            pass  # agreed in a reliable 1xx and its PRACK: the 2xx has no SDP (RFC 3262 §5)
        elif answer is not None:
            dialog.sent_answer(body)
        else:
            dialog.sent_offer(body)  # the answer comes in the ACK
        self.state = CallState.ANSWERED
        self._close_reliable()
        self._awaiting_ack = self._invite_server
        self.ua.respond(self._invite_server, response)
        if answer is not None or self._early_exchange:
            self._media_changed(self.negotiation.agreed)
        if not self._answered.done():
            self._answered.set_result(None)
        self.emit("answered")

    def reject_now(self, status: int = 486, reason: str | None = None) -> None:
        if self.state is not CallState.INCOMING or self._invite_server is None:
            return
        self.ua.respond(self._invite_server, self._response(status, reason))
        self._end("local", status, reason or "")

    async def reject(self, status: int = 486, reason: str | None = None) -> None:
        """Refuse an incoming call with a 3xx to 6xx response (486 Busy Here by default)."""
        self.reject_now(status, reason)

    def on_ack(self, request: Request) -> None:
        """The ACK for our 2xx (to the INVITE or a re-INVITE)."""
        if self.state is not CallState.ANSWERED:
            return
        if _has_sdp(request) and self.negotiation.offer is not None:
            try:
                self._media_changed(self.negotiation.receive_answer(request.body))
            except (sdp.SdpError, sdp.OfferAnswerError) as error:
                self.ua.spawn(self._bye_and_end("remote", 488, f"bad SDP in ACK: {error}"))
                return
        if self.dialog is not None:
            self.dialog.offer_answer = OfferAnswer.STABLE
        self._acked.set()

    async def acknowledged(self) -> None:
        """Until the ACK of our latest 2xx to an INVITE (or re-INVITE) has come."""
        await self._acked.wait()

    def on_ack_timeout(self) -> None:
        """Our 2xx was never acknowledged (§13.3.1.4): end the call with BYE."""
        self.ua.spawn(self._bye_and_end("provider", 408, "no ACK for the 2xx"))

    def on_cancel(self, request: Request) -> None:
        """CANCEL for our pending INVITE (§9.2): 487 to the INVITE, and the call ends."""
        if self.state is CallState.INCOMING and self._invite_server is not None:
            self.ua.respond(self._invite_server, self._response(487, "Request Terminated"))
            self._end("remote", 487, "Request Terminated")

    def on_server_failure(self, transaction: ServerTransaction) -> None:
        """Timer H or a transport failure on one of our server transactions."""
        if transaction is self._invite_server and self.state is not CallState.ANSWERED:
            self._end("provider", 408, "no ACK for the final response")

    # === within the dialog ==================================================================

    def on_request(self, transaction: ServerTransaction, request: Request) -> None:
        """A request within this call's dialog (§12.2.2)."""
        ua = self.ua
        dialog = self._dialog_of(request)
        if dialog is None or self.state is CallState.ENDED:
            ua.respond(transaction, make_response(request, 481))
            return
        try:
            dialog.receive_request(request)
        except SipError as error:
            ua.respond(transaction, make_response(request, error.status, error.reason))
            return
        answered = self.state is CallState.ANSWERED
        awaiting = self._awaiting_ack
        if (
            answered
            and awaiting is not None
            and not self._acked.is_set()
            and (awaiting is self._invite_server or request.method == "BYE")
        ):
            # the peer got our 2xx to its INVITE, or it would not send this: its ACK was
            # lost; and once it says BYE, no 2xx (to a re-INVITE either) needs to reach it
            ua.transactions.acknowledge(awaiting)
            self._acked.set()
        method = request.method
        if method == "BYE":
            ua.respond(transaction, make_response(request, 200))
            self.emit("bye", request)  # its Reason (RFC 3326) says why, if it says
            fault = self._fault
            if fault is not None:
                self._end(fault.by, fault.status, fault.text, fault.error)
            else:
                self._end("remote", 200, "BYE")
        elif method == "PRACK":
            self._on_prack(transaction, dialog, request)
        elif method == "UPDATE" or (method == "INVITE" and answered):
            self._on_reoffer(transaction, dialog, request)
        elif method == "INVITE":
            # §14.2: an INVITE while the first is still in progress
            retry_after = ("Retry-After", str(random.randint(0, 10)))
            ua.respond(transaction, make_response(request, 500, headers=[retry_after]))
        elif method == "INFO" and request.headers.get("Info-Package"):
            ua.respond(transaction, self._info_package(request))
        elif method in ("INFO", "MESSAGE"):
            ua.respond(transaction, make_response(request, 200))
            self.emit(method.lower(), request)
        elif method == "OPTIONS":
            ua.respond(transaction, ua.options_response(request))
            self.emit("options", request)
        elif method in ("REFER", "NOTIFY"):
            from voip import transfer

            if method == "REFER":
                transfer.receive_refer(self, transaction, request)
            else:
                transfer.receive_notify(self, transaction, request)
        else:
            ua.respond(
                transaction,
                make_response(request, 405, headers=[("Allow", ", ".join(_allowed()))]),
            )

    def _recv_info(self) -> list[tuple[str, str]]:
        """Recv-Info (RFC 6086 §5.2.2): the Info Packages this call takes, if any."""
        if not self.info_packages:
            return []
        parameters = self.info_package_parameters
        packages = [
            f"{name};{parameters[name]}" if parameters.get(name) else name
            for name in self.info_packages
        ]
        return [("Recv-Info", ", ".join(packages))]

    def _info_package(self, request: Request) -> Response:
        """An INFO for an Info Package (RFC 6086 §4.2.2): 469 with our Recv-Info for one
        we did not advertise, else what its handler makes of it."""
        package = (request.headers.get("Info-Package") or "").split(";")[0].strip().lower()
        handler = self.info_packages.get(package)
        if handler is None:
            headers = self._recv_info() or [("Recv-Info", "")]
            return make_response(request, 469, "Bad Info Package", headers=headers)
        try:
            handler(request)
        except SipError as error:
            return make_response(request, error.status, error.reason)
        return make_response(request, 200)

    def _dialog_of(self, request: Request) -> Dialog | None:
        """The dialog a request from the peer belongs to: the call's, or, before the 2xx,
        the caller's early dialog with the callee that sent it (RFC 3311 §5.1)."""
        if self.dialog is not None:
            return self.dialog
        return self.early.get(request.from_.tag or "")

    def _on_reoffer(self, transaction: ServerTransaction, dialog: Dialog, request: Request) -> None:
        """A re-INVITE or an UPDATE (§14.2, RFC 3311 §5.2), in an early or confirmed dialog:
        answer its offer, offer in the 2xx of an SDP-less re-INVITE, or refuse: 491 while
        our own offer is outstanding, 500 with Retry-After (0 to 10 s) while the peer's
        previous offer is unanswered."""
        was_held = self.remote_hold
        timer = self._session_timer_of(dialog)
        if timer is not None:
            try:
                timer.check_request(request)  # RFC 4028 §9: 422
            except SipError as error:
                self.ua.respond(
                    transaction,
                    make_response(request, error.status, error.reason, headers=error.headers),
                )
                return
        try:
            if _has_sdp(request):
                dialog.received_offer(request.body)
                body = self.negotiation.receive_offer(request.body)
                dialog.sent_answer(body)
            elif request.method == "INVITE":
                body = self.negotiation.create_offer()  # answer comes in the ACK
                dialog.sent_offer(body)
            else:
                body = b""  # an UPDATE without an offer refreshes the target only
        except SipError as error:
            retry_after = "1" if error.status == 491 else str(random.randint(0, 10))
            self.ua.respond(
                transaction,
                make_response(request, error.status, headers=[("Retry-After", retry_after)]),
            )
            return
        except (sdp.SdpError, sdp.OfferAnswerError) as error:
            dialog.offer_answer = OfferAnswer.STABLE
            self.ua.respond(transaction, make_response(request, 488, str(error)[:100]))
            return
        response = make_response(request, 200)
        contact = dialog.local_contact
        if contact is not None:
            response.headers.add("Contact", str(contact))
        if body:
            response.headers.add("Content-Type", SDP)
            response.body = body
        if timer is not None:
            self._session_timer_answer(request, response)
        if request.method == "INVITE":
            self._acked.clear()
            self._awaiting_ack = transaction
        self.ua.respond(transaction, response)
        if _has_sdp(request):
            self._media_changed(self.negotiation.agreed, was_held)

    def _media_changed(self, agreed: list[sdp.NegotiatedMedia], was_held: bool = False) -> None:
        if self.media is not None:
            self.media.update(agreed)
        self.emit("media", agreed)
        held = self.remote_hold
        if held != was_held:
            self.emit("hold" if held else "resume")

    async def _request(
        self,
        method: str,
        body: BytesLike = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        sent: Callable[[Request], None] | None = None,
        *,
        dialog: Dialog | None = None,
        ends_dialog: bool = True,
    ) -> Response:
        """Send a request within the dialog (the call's, or ``dialog``, an early one) and
        wait for its final response (§12.2.1); ``sent`` sees the request as it is built
        (its CSeq names a REFER's NOTIFYs); a 2xx to a target refresh updates the remote
        target (§12.2.1.2)."""
        from voip.useragent import RequestFailed

        dialog = dialog or self.dialog
        if dialog is None:
            raise SipError(481, "the call has no dialog")
        targets = await self._in_dialog_targets(dialog)
        request = dialog.create_request(
            method, body=body, content_type=content_type, headers=headers
        )
        if sent is not None:
            sent(request)
        try:
            response = await self.ua.request(request, targets=targets)
        except RequestFailed as error:
            _follow_cseq(dialog, error.response)
            # §12.2.1.2: 481 or 408 to a request in the dialog ends it; not so for a
            # NOTIFY, whose failure ends only its subscription (RFC 5057 §5.1), nor for a
            # PRACK in an early dialog
            if error.status in (408, 481) and method not in ("BYE", "NOTIFY") and ends_dialog:
                self.ua.spawn(self._bye_and_end("provider", error.status, error.reason))
            raise
        _follow_cseq(dialog, response)
        dialog.receive_response(request, response)
        return response

    async def reinvite(self, *, hold: bool | None = None, refresh: bool = False) -> None:
        """Send a re-INVITE with a new offer (§14.1); retries after 491 with the back-off
        of §14.1 (2.1 to 4 s if we own the Call-ID, else 0 to 2 s). With ``refresh`` the
        offer is the session as last described, o= version unchanged (a session refresh,
        RFC 4028 §10: the media stays as it is)."""
        if self.state is not CallState.ANSWERED or self.dialog is None:
            raise SipError(481, f"call is {self.state.value}")
        await self._offer(self.dialog, self._reinvite_once, hold, refresh=refresh)

    def rebind_media(self, host: str) -> None:
        """The agent moved to the local address ``host``: RTP goes on from new ports
        there, and the next offer names them in ``c=`` and ``m=``."""
        media = self.media
        if media is None or media.closed:
            return
        port = self.ua.media.rebind(media, host)
        self.negotiation.address = host
        for stream in self.negotiation.media:
            if stream.media == "audio":
                stream.port = port

    async def refresh_target(self) -> None:
        """After the agent moved (:meth:`UserAgent.rebind
        <voip.useragent.UserAgent.rebind>`): a re-INVITE whose Contact is the new address
        (a target refresh, RFC 3261 §12.2.1.1: the peer's next requests go there) and
        whose SDP names the new RTP address (o= version one up, RFC 3264 §8); then the
        ``"rebound"`` event. An outgoing call not answered yet is dialled again from the
        new address (:meth:`_redial`)."""
        unanswered = (CallState.CALLING, CallState.RINGING)
        if self.outgoing and self.state in unanswered and not self._cancelling and self.invite:
            self._redial()
            return
        dialog = self.dialog
        if self.state is not CallState.ANSWERED or dialog is None:
            return
        targets = await self._in_dialog_targets(dialog)
        dialog.local_contact = self.ua.contact_for(targets[0])
        await self.reinvite()
        self.emit("rebound", self.negotiation.address)

    def _redial(self) -> None:
        """The agent moved while this outgoing call was unanswered: its INVITE carried
        the old address in Via, Contact and SDP, so the callee's answer and requests
        would go there. The INVITE is CANCELed (RFC 3261 §9.1: once a provisional came,
        else when one comes) and sent again from the new address as a new INVITE: the
        same Call-ID, From and To, CSeq one more, new Via and Contact, and an offer that
        names the new RTP address; the ``"redialed"`` event tells of it. What the old
        INVITE still draws is ignored, but a 2xx, which is ACKed then BYEd (§13.2.2.4)."""
        old = self.invite
        assert old is not None
        cancelled = self._provisional.is_set()
        if cancelled:
            self.ua.send_cancel(old, self._targets)
        self._abandoned[old.cseq.number] = (old, cancelled)
        target = old.uri
        assert isinstance(target, SipUri)  # UserAgent.resolve routes no other
        retry = redirected_request(old, target)
        if _has_sdp(old):
            self.negotiation.offer_rejected()
            retry.body = self.negotiation.create_offer()
            retry.headers.set("Content-Length", str(len(retry.body)))
        for early in self.early.values():  # the old INVITE's early dialogs are over
            early.terminate()
        self.early.clear()
        self._rseqs.clear()
        self.state = CallState.CALLING
        self._provisional.clear()
        self.invite = retry
        self.emit("redialed", retry)
        self.ua.spawn(self._send_invite(retry))

    def _on_abandoned(self, response: Response) -> None:
        """A response to an INVITE given up after a move (:meth:`_redial`): its first
        provisional lets the CANCEL go; a 2xx is ACKed and BYEd; the rest is ignored."""
        number = response.cseq.number
        invite, cancelled = self._abandoned[number]
        if response.status < 200 and not cancelled:  # 100 Trying too (§9.1)
            self._abandoned[number] = (invite, True)
            self.ua.send_cancel(invite, self._targets)
        elif 200 <= response.status < 300:
            self.ua.spawn(self._ack_and_bye(response, invite))

    async def update(
        self,
        *,
        hold: bool | None = None,
        offer: bool = True,
        headers: Iterable[tuple[str, str]] = (),
    ) -> Response:
        """Send an UPDATE (RFC 3311) in the confirmed dialog, or in the early dialog once
        the INVITE's offer has been answered (§5.1): with a new offer (hold and resume,
        a media change, without a re-INVITE), or without one (``offer=False``: a target
        or session refresh). ``headers`` go into the request; its 2xx is returned.
        Glare (491) is retried with the back-off of RFC 3261 §14.1, a 500 with
        Retry-After after the time it asks for."""
        dialog = self._update_dialog()

        async def send(body: bytes) -> Response:
            return await self._update_once(dialog, body, headers)

        if not offer:
            return await send(b"")
        return await self._offer(dialog, send, hold)

    def _update_dialog(self) -> Dialog:
        if self.state is CallState.ENDED:
            raise SipError(481, "call is ended")
        if self.dialog is not None:
            return self.dialog
        if self.early:
            return next(reversed(self.early.values()))  # the latest callee to answer early
        raise SipError(481, f"call is {self.state.value}, with no dialog yet")

    async def _update_once(
        self, dialog: Dialog, body: bytes, headers: Iterable[tuple[str, str]]
    ) -> Response:
        from voip.useragent import RequestFailed

        timer = self._session_timer_of(dialog)
        if timer is not None:  # RFC 4028 §7.4: every UPDATE carries the session interval
            headers = [*headers, *timer.request_headers()]
        response = await self._request(
            "UPDATE", body, SDP if body else None, headers, dialog=dialog
        )
        if timer is not None:
            self._session_timer_response(response)
        if body:
            if not _has_sdp(response):
                raise RequestFailed(488, "the 2xx to the UPDATE has no answer", response)
            was_held = self.remote_hold
            self._media_changed(self.negotiation.receive_answer(response.body), was_held)
        return response

    async def _offer(
        self,
        dialog: Dialog,
        send: Callable[[bytes], Awaitable[Response]],
        hold: bool | None,
        *,
        refresh: bool = False,
    ) -> Response:
        """One offer/answer exchange started by us (re-INVITE or UPDATE): the offer from
        the current wishes, ``send`` carries it; 491 is retried after the §14.1 back-off
        and 500 after its Retry-After (RFC 3311 §5.2), three tries in all."""
        from voip.useragent import RequestFailed

        if hold is not None:
            self.negotiation.hold = hold
        for _ in range(3):
            if refresh and hold is None:
                offer = self.negotiation.repeat_offer()
            else:
                offer = self.negotiation.create_offer()
            try:
                dialog.sent_offer(offer)
            except SipError:
                await asyncio.sleep(0.1)
                continue
            try:
                response = await send(offer)
            except (RequestFailed, SipError) as error:
                dialog.offer_failed()
                self.negotiation.offer_rejected()
                if error.status == 422 and self._may_retry_after_422(error):
                    continue  # RFC 4028 §7.3: again with the larger interval
                delay = _retry_delay(error, owner=self.outgoing)
                if delay is None:
                    raise
                await asyncio.sleep(delay)
                continue
            except BaseException:
                dialog.offer_failed()
                self.negotiation.offer_rejected()
                raise
            dialog.received_answer(response.body)
            return response
        raise RequestFailed(491, "Request Pending (glare persisted)")

    async def _reinvite_once(self, offer: bytes) -> Response:
        from voip.useragent import RequestFailed

        assert self.dialog is not None
        dialog = self.dialog
        targets = await self._in_dialog_targets(dialog)
        request = dialog.create_request(
            "INVITE", body=offer, content_type=SDP, headers=self._session_timer_headers()
        )
        try:
            sent, response = await self.ua.exchange(request, targets=targets)
        except RequestFailed as error:
            _follow_cseq(dialog, error.response)
            raise
        _follow_cseq(dialog, response)
        dialog.receive_response(sent, response)
        ack = dialog.create_request("ACK", cseq=response.cseq.number)
        _copy_credentials(sent, ack)
        self.ua.send_ack(ack, targets[0])
        self._ack, self._ack_target = ack, targets[0]
        self._session_timer_response(response)
        if not _has_sdp(response):
            raise RequestFailed(488, "the 2xx to the re-INVITE has no answer")
        was_held = self.remote_hold
        self._media_changed(self.negotiation.receive_answer(response.body), was_held)
        return response

    # --- session timers (RFC 4028) ----------------------------------------------------------

    @property
    def session_deadline(self) -> float | None:
        """When (the loop's clock) the session timer acts next: a refresh or the BYE."""
        return self._session_at

    def _session_timer_of(self, dialog: Dialog) -> SessionTimer | None:
        """The session timer, for requests in the confirmed dialog only: an early
        dialog's UPDATE does not start or refresh the session (RFC 4028 §7, §9)."""
        if dialog is not self.dialog or self.state is not CallState.ANSWERED:
            return None
        return self.session_timer

    def _session_timer_headers(self) -> list[tuple[str, str]]:
        timer = self.session_timer
        return [] if timer is None else timer.request_headers()

    def _may_retry_after_422(self, error: Exception) -> bool:
        response = getattr(error, "response", None)
        timer = self.session_timer
        return timer is not None and response is not None and timer.receive_422(response)

    def _session_timer_response(self, response: Response) -> None:
        """A 2xx to our INVITE, re-INVITE or UPDATE (RFC 4028 §7.2)."""
        if self.session_timer is not None:
            self.session_timer.receive_response(response, self.ua.now())
            self._session_timer_started()

    def _session_timer_answer(self, request: Request, response: Response) -> None:
        """Our 2xx to an INVITE, re-INVITE or UPDATE (RFC 4028 §9)."""
        if self.session_timer is not None:
            for name, value in self.session_timer.answer(request, self.ua.now()):
                response.headers.add(name, value)
            self._session_timer_started()

    def _session_timer_started(self) -> None:
        self._arm_session_timer()
        if self.session_timer is not None and self.session_timer.running:
            self.emit("session_timer", self.session_timer)

    def _arm_session_timer(self) -> None:
        """One loop timer for the session timer's next deadline; none once it has none."""
        timer = self.session_timer
        deadline = None if timer is None or self.state is CallState.ENDED else timer.next_deadline()
        if deadline == self._session_at:
            return
        if self._session_handle is not None:
            self._session_handle.cancel()
        self._session_at = deadline
        self._session_handle = (
            None if deadline is None else self.ua.loop.call_at(deadline, self._on_session_timer)
        )

    def _on_session_timer(self) -> None:
        timer = self.session_timer
        due = self._session_at
        self._session_handle = self._session_at = None
        if timer is None or due is None:
            return
        # the loop may run a timer a clock tick early: it is due at its deadline
        event = timer.handle_timer(max(self.ua.now(), due))
        if isinstance(event, RefreshDue):
            self.ua.spawn(self._refresh_session())
        elif isinstance(event, SessionExpired):
            self._expire(event)
        self._arm_session_timer()

    def _expire(self, event: SessionExpired) -> None:
        """No refresh in time (RFC 4028 §10): the session is over now (S-P-ABORT); the
        BYE tells the peer, but a peer that is gone does not hold the end up."""
        self.emit("session_expired", event)
        dialog = self.dialog
        if dialog is None or self.state is CallState.ENDED:
            return
        reason = f'SIP;cause=408;text="{event.text}"'
        bye = dialog.create_request("BYE", headers=[("Reason", reason)])
        self._end("provider", 408, event.text)
        self.ua.spawn(self._send_bye(dialog, bye))

    async def _send_bye(self, dialog: Dialog, bye: Request) -> None:
        with contextlib.suppress(Exception):  # nobody to tell: the call is over anyway
            await self.ua.request(bye, targets=await self._in_dialog_targets(dialog))

    async def _refresh_session(self) -> None:
        """Refresh the session (RFC 4028 §10): by UPDATE without an offer when the policy
        prefers it and the peer allows UPDATE, else by a re-INVITE that offers the
        session as it is (the same SDP, o= version unchanged, hold kept)."""
        from voip.useragent import RequestFailed

        timer = self.session_timer
        try:
            if self._refreshes_by_update():
                try:
                    await self._refresh_by_update()
                    return
                except RequestFailed as error:
                    if error.status in (408, 481):
                        return  # the dialog is gone: _request sends the BYE (§12.2.1.2)
                    if error.status not in (405, 501):
                        raise
                    # the peer does not take UPDATE after all: re-INVITE from now on
                    self.peer_allow = tuple(m for m in self.peer_allow if m != "UPDATE")
            await self.reinvite(refresh=True)
        except RequestFailed as error:
            if error.status in (408, 481):  # §10 and RFC 3261 §12.2.1.2: the dialog is gone
                await self._bye_and_end("provider", error.status, error.reason)
                return
            if timer is not None:
                timer.refresh_failed()
        except Exception as error:  # the call left the answered state, the transport failed
            log.info("session refresh of %s failed: %s", self.call_id, error)
            if timer is not None:
                timer.refresh_failed()
        self._arm_session_timer()

    def _refreshes_by_update(self) -> bool:
        timer = self.session_timer
        return (
            timer is not None
            and timer.policy.refresh_with == "UPDATE"
            and "UPDATE" in self.peer_allow
        )

    async def _refresh_by_update(self) -> None:
        """An UPDATE without an offer (RFC 4028 §7.4 recommends none), again with the
        larger interval after a 422 (§7.3)."""
        from voip.useragent import RequestFailed

        while True:
            try:
                await self.update(offer=False)
                return
            except RequestFailed as error:
                if error.status != 422 or not self._may_retry_after_422(error):
                    raise

    async def hold(self) -> None:
        """Put the peer on hold: re-INVITE with ``sendonly`` (``inactive`` if the peer
        holds us too), RFC 3264 §8.4."""
        await self.reinvite(hold=True)

    async def resume(self) -> None:
        """Take the peer off hold: re-INVITE with ``sendrecv``."""
        await self.reinvite(hold=False)

    async def info(
        self, body: BytesLike, content_type: str, *, headers: Iterable[tuple[str, str]] = ()
    ) -> Response:
        """INFO within the call (RFC 6086), e.g. ``application/dtmf-relay``; an Info
        Package's INFO carries ``("Info-Package", name)`` in ``headers``."""
        return await self._request("INFO", body, content_type, headers)

    async def send_dtmf(
        self, digits: str, *, via: str | None = None, duration: float = 0.16
    ) -> str:
        """Send ``digits``: as RFC 4733 events in the RTP when telephone-event was agreed
        (``via="rtp"``), otherwise (or with ``via="info"``) one INFO
        ``application/dtmf-relay`` per digit lasting ``duration`` seconds, each answered
        before the next (:mod:`voip.dtmf_relay`). Returns which carried them; ValueError for
        a character that is not a DTMF digit, before anything is sent."""
        digits = dtmf_digits(digits)
        if via not in (None, "rtp", "info"):
            raise ValueError(f"DTMF goes via 'rtp' or 'info', not {via!r}")
        media = self.media
        events = bool(self.agreed) and self.agreed[0].telephone_event is not None
        if via == "rtp" or (via is None and media is not None and events):
            if media is None:
                raise RuntimeError("the call has no media to carry RFC 4733 events")
            media.send_dtmf(digits)
            return "rtp"
        for digit in digits:
            await self.info(dtmf_relay_body(digit, duration), DTMF_RELAY)
        return "info"

    async def options(self) -> Response:
        """OPTIONS within the call (RFC 3261 §11): the peer's Allow, Accept, Supported."""
        return await self._request("OPTIONS")

    async def message(self, text: str | BytesLike, content_type: str = "text/plain") -> Response:
        body = text.encode() if isinstance(text, str) else text
        return await self._request("MESSAGE", body, content_type)

    async def transfer(
        self, target: str | Uri | Call, *, hangup: bool = True, subscribe: bool = True
    ) -> TransferProgress:
        """Transfer the peer to ``target`` with REFER (RFC 3515): a URI (blind), or another
        call of ours (attended: Replaces, RFC 3891); see :func:`voip.transfer.transfer`."""
        from voip.transfer import transfer

        return await transfer(self, target, hangup=hangup, subscribe=subscribe)

    async def hangup(self, reason: str | None = None, *, cause: int | None = None) -> None:
        """End the call whatever its state: BYE when answered, CANCEL while it rings,
        480 for an incoming call not yet answered. With ``cause`` the BYE carries
        ``Reason: SIP;cause=…;text="reason"`` (RFC 3326)."""
        state = self.state
        if state is CallState.ENDED:
            return
        if state in (CallState.CALLING, CallState.RINGING) and self.outgoing:
            await self.cancel()
        elif state is CallState.INCOMING:
            self.reject_now(480, "Temporarily Unavailable")
        elif cause is not None:
            await self._bye_and_end("local", cause, reason or "BYE", with_reason=True)
        else:
            await self._bye_and_end("local", 200, reason or "BYE")

    async def _bye_and_end(
        self,
        by: str,
        status: int,
        text: str,
        *,
        with_reason: bool = False,
        error: Exception | None = None,
    ) -> None:
        if self.state is CallState.ENDED:
            return
        quoted = text.replace("\\", "").replace('"', "'")
        reason = [("Reason", f'SIP;cause={status};text="{quoted}"')]
        headers = reason if by != "local" or with_reason else []
        if self.media is not None:
            # RFC 3261 §15.1.1: the session is over (no more media sent or listened to)
            # as soon as the BYE goes, not when it is answered
            self.media.close()
        with contextlib.suppress(Exception):  # a failed BYE ends the call all the same
            await self._request("BYE", headers=headers)
        self._end(by, status, text, error)


def glare_backoff(
    *, owns_call_id: bool, uniform: Callable[[float, float], float] = random.uniform
) -> float:
    """How long to wait before sending a re-INVITE again after 491 (RFC 3261 §14.1): the
    owner of the Call-ID (the one who generated it: the caller) 2.1 to 4 s, the other
    0 to 2 s, in units of 10 ms, so the two sides do not collide again."""
    low, high = (2.1, 4.0) if owns_call_id else (0.0, 2.0)
    return round(uniform(low, high), 2)


def _follow_cseq(dialog: Dialog, response: Response | None) -> None:
    """The dialog's CSeq counts on from the request that drew ``response``: the agent's
    re-send with credentials took the next number (§22.2, §12.2.1.1)."""
    if response is not None:
        dialog.local_seq = max(dialog.local_seq, response.cseq.number)


def _copy_credentials(invite: Request, ack: Request) -> None:
    """§13.2.2.4: the ACK of a 2xx carries the credentials the INVITE carried."""
    for name in ("Authorization", "Proxy-Authorization"):
        for value in invite.headers.get_all(name):
            ack.headers.add(name, value)


def _retry_delay(error: Exception, *, owner: bool) -> float | None:
    """How long to wait before offering again after ``error``, or None not to retry:
    491 after the back-off of RFC 3261 §14.1 (2.1 to 4 s for the Call-ID's owner, else
    0 to 2 s), 500 with Retry-After after the time it gives (RFC 3311 §5.2)."""
    status = getattr(error, "status", None)
    if status == 491:
        return glare_backoff(owns_call_id=owner)
    response = getattr(error, "response", None)
    if status == 500 and response is not None:
        retry_after = response.headers.get("retry-after")
        if retry_after:
            with contextlib.suppress(ValueError):
                return min(float(retry_after.split(";")[0].split("(")[0]), 10.0)
    return None


def _one_supported(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The option tags of every Supported field in one, where the first stood: RFC 3261
    §7.3.1 allows several fields, but some peers (SIPp's ereg) read only the first."""
    fields = [value for name, value in headers if name.lower() == "supported"]
    if len(fields) < 2:
        return headers
    tags = dict.fromkeys(tag.strip() for value in fields for tag in value.split(",") if tag.strip())
    merged: list[tuple[str, str]] = []
    for name, value in headers:
        if name.lower() != "supported":
            merged.append((name, value))
        elif tags:
            merged.append(("Supported", ", ".join(tags)))
            tags = {}
    return merged


def _allowed() -> tuple[str, ...]:
    from voip.useragent import ALLOWED_METHODS

    return ALLOWED_METHODS


def _supported() -> tuple[str, ...]:
    from voip.useragent import SUPPORTED

    return SUPPORTED


@functools.cache
def _allow_value() -> str:
    """The Allow field's value, joined once (every 2xx to an INVITE carries it)."""
    return ", ".join(_allowed())


@functools.cache
def _supported_value() -> str:
    return ", ".join(_supported())
