"""SIP dialogs (RFC 3261 §12), sans-I/O: identity, route set, CSeq and target refresh.

A :class:`Dialog` is made from the request that created it and the response that
established it, on either side (§12.1.1 UAS, §12.1.2 UAC); it builds the requests sent
within it (§12.2.1.1, with loose and strict routing) and checks the ones received
(§12.2.2). The offer/answer state that RFC 3264 and RFC 6337 keep per dialog lives
here too, since glare (491) is a property of the dialog.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from voip.sip.errors import SipError
from voip.sip.fields import NameAddress
from voip.sip.message import BytesLike, Request, Response, new_branch
from voip.sip.uri import SipUri, Uri

__all__ = ["Dialog", "DialogId", "DialogState", "OfferAnswer"]

#: Methods that refresh the remote target (§12.2, RFC 3311 §5.1, RFC 3515 is not one).
TARGET_REFRESH = frozenset({"INVITE", "UPDATE"})
#: Requests within a dialog that carry our Contact (§12.2.1.1; RFC 6665 §4.1.1, RFC 3515 §2.4.1)
_CARRY_CONTACT = TARGET_REFRESH | {"SUBSCRIBE", "REFER"}


@dataclass(frozen=True, slots=True)
class DialogId:
    """Call-ID, local tag and remote tag (§12): what names a dialog on this side."""

    call_id: str
    local_tag: str
    remote_tag: str

    def __init__(self, call_id: str, local_tag: str, remote_tag: str) -> None:
        # Written out rather than made by @dataclass: compiled, this one is native code.
        object.__setattr__(self, "call_id", call_id)
        object.__setattr__(self, "local_tag", local_tag)
        object.__setattr__(self, "remote_tag", remote_tag)


class DialogState(enum.Enum):
    EARLY = "early"  # made by a 1xx with a To tag (§12.1)
    CONFIRMED = "confirmed"  # made or confirmed by a 2xx
    TERMINATED = "terminated"


class OfferAnswer(enum.Enum):
    """Where the dialog stands in the offer/answer exchange (RFC 6337 §2.2)."""

    STABLE = "stable"  # no offer outstanding
    LOCAL_OFFER = "local offer"  # we sent an offer, no answer yet
    REMOTE_OFFER = "remote offer"  # we got an offer and have not answered it


def _route_set(fields: Iterable[NameAddress]) -> list[NameAddress]:
    return [copy.copy(value) for value in fields]


@dataclass(eq=False, slots=True)
class Dialog:
    """One dialog's state (§12.1): what every later request within it is built from."""

    id: DialogId
    local_uri: NameAddress  # our From (without tag), as in the dialog-creating request
    remote_uri: NameAddress  # the peer's, from To or From
    remote_target: Uri  # the peer's Contact
    route_set: list[NameAddress]
    local_seq: int
    remote_seq: int | None
    secure: bool
    is_uac: bool
    state: DialogState = DialogState.EARLY
    local_contact: NameAddress | None = None
    offer_answer: OfferAnswer = OfferAnswer.STABLE
    #: the last SDP each side sent, for re-offers and hold
    local_sdp: bytes | None = None
    remote_sdp: bytes | None = None

    # --- creation (§12.1) -----------------------------------------------------------------

    @classmethod
    def from_uac(cls, request: Request, response: Response) -> Dialog:
        """The UAC's dialog from its request and a 1xx-with-tag or 2xx response (§12.1.2)."""
        contacts = response.contact
        if not contacts:
            raise SipError(400, f"{response.status} establishing a dialog has no Contact")
        to = response.to
        if not to.tag:
            raise SipError(400, f"{response.status} establishing a dialog has no To tag")
        local = request.from_
        return cls(
            id=DialogId(request.call_id, local.tag or "", to.tag),
            local_uri=_without_tag(local),
            remote_uri=_without_tag(to),
            remote_target=contacts[0].uri,
            # §12.1.2: the route set is the Record-Route of the response, reversed
            route_set=_route_set(reversed(response.record_route)),
            local_seq=request.cseq.number,
            remote_seq=None,
            secure=_is_sips(request.uri),
            is_uac=True,
            state=DialogState.CONFIRMED if 200 <= response.status < 300 else DialogState.EARLY,
            local_contact=request.contact[0] if request.contact else None,
        )

    @classmethod
    def from_uas(
        cls,
        request: Request,
        response: Response,
        *,
        local_tag: str | None = None,
        local_contact: NameAddress | None = None,
    ) -> Dialog:
        """The UAS's dialog from the request and the response it sends (§12.1.1).

        ``local_tag`` and ``local_contact``: the To tag and the Contact the UAS put in
        ``response``, when it has them at hand (they are not read back from it then:
        the response's To is the request's with that tag, §8.2.6.2)."""
        contacts = request.contact
        if not contacts:
            raise SipError(400, f"{request.method} creating a dialog has no Contact")
        remote = request.from_
        if local_tag is None:
            to = response.to
            local_tag = to.tag or ""
        else:
            to = request.to
        if local_contact is None and response.contact:
            local_contact = response.contact[0]
        return cls(
            id=DialogId(request.call_id, local_tag, remote.tag or ""),
            local_uri=_without_tag(to),
            remote_uri=_without_tag(remote),
            remote_target=contacts[0].uri,
            route_set=_route_set(request.record_route),  # §12.1.1: in order
            local_seq=0,  # "empty": the first request we send picks it
            remote_seq=request.cseq.number,
            # §12.1.1: a sips Request-URI that arrived over TLS; WSS is TLS too (RFC 7118
            # §5.2: SIP over secure WebSocket runs over TLS, RFC 6455 §10.6)
            secure=_is_sips(request.uri) and request.via[0].transport.upper() in _OVER_TLS,
            is_uac=False,
            state=DialogState.CONFIRMED if 200 <= response.status < 300 else DialogState.EARLY,
            local_contact=local_contact,
        )

    # --- requests within the dialog (§12.2.1) -----------------------------------------------

    def create_request(
        self,
        method: str,
        *,
        via: str | None = None,
        body: BytesLike = b"",
        content_type: str | None = None,
        headers: Iterable[Sequence[str]] = (),
        cseq: int | None = None,
    ) -> Request:
        """A request within the dialog (§12.2.1.1). ``via`` is the sent-by part of our Via
        (``SIP/2.0/UDP host:port;rport``), the branch added here; without it the request
        has no Via yet and the transport user adds one. ACK and CANCEL reuse
        the INVITE's CSeq number (pass ``cseq``); other requests take the next one."""
        if self.state is DialogState.TERMINATED:
            raise SipError(481, "the dialog is terminated")
        if cseq is None:
            self.local_seq += 1
            cseq = self.local_seq
        request_uri, routes = self.request_target()
        fields: list[tuple[str, str]] = (
            [] if via is None else [("Via", f"{via};branch={new_branch()}")]
        )
        fields += [
            ("Max-Forwards", "70"),
            ("From", str(with_tag(self.local_uri, self.id.local_tag))),
            ("To", str(with_tag(self.remote_uri, self.id.remote_tag))),
            ("Call-ID", self.id.call_id),
            ("CSeq", f"{cseq} {method}"),
        ]
        fields.extend(("Route", str(route)) for route in routes)
        if self.local_contact is not None and method in _CARRY_CONTACT:
            fields.append(("Contact", str(self.local_contact)))
        fields.extend((name, value) for name, value in headers)
        if content_type is not None and body:
            fields.append(("Content-Type", content_type))
        fields.append(("Content-Length", str(len(body))))
        return Request(method, request_uri, fields, body)

    def request_target(self) -> tuple[Uri, list[NameAddress]]:
        """Request-URI and Route header fields (§12.2.1.1): loose routing when the first
        route has ``lr``, otherwise the strict-routing rewrite of RFC 2543."""
        routes = self.route_set
        if not routes:
            return self.remote_target, []
        first = routes[0].uri
        if isinstance(first, SipUri) and first.lr:
            return self.remote_target, list(routes)
        strict = copy.copy(first)
        if isinstance(strict, SipUri):
            strict.headers = ()  # §12.2.1.1: parameters kept, headers not allowed
        return strict, [*routes[1:], NameAddress(self.remote_target)]

    def next_hop(self) -> Uri:
        """Where a request within the dialog goes first (§8.1.2): the first route, else the
        remote target; RFC 3263 resolves it."""
        return self.route_set[0].uri if self.route_set else self.remote_target

    # --- requests and responses received ----------------------------------------------------

    def receive_request(self, request: Request) -> None:
        """Check a request within the dialog (§12.2.2): CSeq must grow (else 500), and a
        target refresh request's Contact becomes the remote target."""
        if request.method in ("ACK", "CANCEL"):
            return
        number = request.cseq.number
        if self.remote_seq is not None and number <= self.remote_seq:
            raise SipError(500, f"CSeq {number} is not above {self.remote_seq}")
        self.remote_seq = number
        if request.method in TARGET_REFRESH and request.contact:
            self.remote_target = request.contact[0].uri

    def receive_response(self, request: Request, response: Response) -> None:
        """A response to our request in the dialog: 2xx confirms an early dialog, and a 2xx
        to a target refresh request updates the remote target (§12.2.1.2)."""
        if not 200 <= response.status < 300:
            return
        if self.state is DialogState.EARLY and request.method == "INVITE":
            self.state = DialogState.CONFIRMED
            # §12.1.2 applies again: the 2xx fixes the route set of a confirmed dialog
            self.route_set = _route_set(reversed(response.record_route))
        if request.method in TARGET_REFRESH and response.contact:
            self.remote_target = response.contact[0].uri

    def confirm(self) -> None:
        self.state = DialogState.CONFIRMED

    def terminate(self) -> None:
        self.state = DialogState.TERMINATED

    # --- offer/answer state (RFC 3264, RFC 6337) ---------------------------------------------

    def sent_offer(self, sdp: bytes) -> None:
        """We sent an offer; raises 491 if one of ours or theirs is still outstanding."""
        if self.offer_answer is not OfferAnswer.STABLE:
            raise SipError(491, f"an offer is outstanding ({self.offer_answer.value})")
        self.offer_answer = OfferAnswer.LOCAL_OFFER
        self.local_sdp = sdp

    def received_offer(self, sdp: bytes) -> None:
        """An offer arrived. Glare with our own outstanding offer is 491 (RFC 3261 §14.2,
        RFC 3311 §5.2); an offer while the peer's previous one is still unanswered is 500,
        which the UA sends with a Retry-After of 0 to 10 s (RFC 3311 §5.2)."""
        if self.offer_answer is OfferAnswer.LOCAL_OFFER:
            raise SipError(491, "our offer is outstanding")
        if self.offer_answer is OfferAnswer.REMOTE_OFFER:
            raise SipError(500, "your previous offer is not answered yet")
        self.offer_answer = OfferAnswer.REMOTE_OFFER
        self.remote_sdp = sdp

    def sent_answer(self, sdp: bytes) -> None:
        self.offer_answer = OfferAnswer.STABLE
        self.local_sdp = sdp

    def received_answer(self, sdp: bytes) -> None:
        self.offer_answer = OfferAnswer.STABLE
        self.remote_sdp = sdp

    def offer_failed(self) -> None:
        """The offer's transaction failed (a non-2xx or a timeout): back to the last
        agreed session (RFC 3261 §14.1)."""
        self.offer_answer = OfferAnswer.STABLE


def _without_tag(value: NameAddress) -> NameAddress:
    params = {k: v for k, v in value.params.items() if k != "tag"}
    return NameAddress(value.uri, value.display_name, params)


def with_tag(value: NameAddress, tag: str) -> NameAddress:
    """``value`` with ``tag`` as its tag parameter (From/To, §19.3); as it is when empty."""
    if not tag:
        return value
    return NameAddress(value.uri, value.display_name, {**value.params, "tag": tag})


#: the Via transports (sent-protocol, RFC 3261 §20.42) that run over TLS
_OVER_TLS = ("TLS", "WSS")


def _is_sips(uri: Uri) -> bool:
    return isinstance(uri, SipUri) and uri.secure
