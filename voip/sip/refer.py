"""REFER and its implicit subscription, sans-I/O (RFC 3515, RFC 6665, RFC 3420, RFC 3891,
RFC 3892, RFC 4488).

Syntax: the Subscription-State header field (RFC 6665 §8.2.3), ``message/sipfrag``
bodies (RFC 3420) that carry the status of the referred request, Refer-To URIs with an
embedded Replaces header (RFC 3891 §6, escaped as RFC 3261 §19.1.5 and §25.1 ask),
Refer-Sub (RFC 4488 §7).

State: a :class:`ReferSubscriber` is the referrer's view of one REFER (sent, accepted,
progress reported by NOTIFY, terminated); a :class:`ReferNotifier` is the referee's
(REFER accepted, NOTIFYs to send until the referred request has a final response).
Both take the time from their owner, as every core here does.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field, replace

from voip.sip.errors import SipError
from voip.sip.fields import NameAddress, Replaces, parse_name_addr, parse_replaces
from voip.sip.grammar import bad, format_params, is_token, parse_params, parse_uint
from voip.sip.message import Message, Request
from voip.sip.uri import SipUri, TelUri, Uri

__all__ = [
    "SIPFRAG",
    "NotifyContent",
    "ReferNotifier",
    "ReferOutcome",
    "ReferState",
    "ReferSubscriber",
    "ReferralTarget",
    "SipFrag",
    "SubscriptionState",
    "TransferProgress",
    "parse_refer_sub",
    "parse_sipfrag",
    "parse_subscription_state",
    "read_referral",
    "refer_to_uri",
    "replaces_for",
]

SIPFRAG = "message/sipfrag"
#: How long the implicit subscription lasts when nothing says otherwise (RFC 3515 §2.4.4
#: leaves it to the notifier; 60 s is what common phones grant).
DEFAULT_EXPIRES = 60
_WSP = " \t"

# --- Subscription-State (RFC 6665 §8.2.3) ---------------------------------------------------


@dataclass(slots=True)
class SubscriptionState:
    """``substate-value *( SEMI subexp-params )``: active, pending or terminated."""

    state: str
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def terminated(self) -> bool:
        return self.state == "terminated"

    @property
    def expires(self) -> int | None:
        value = self.params.get("expires")
        return None if value is None else parse_uint(value, "Subscription-State expires")

    @property
    def reason(self) -> str | None:
        return self.params.get("reason")

    def __str__(self) -> str:
        return f"{self.state}{format_params(self.params)}"


def parse_subscription_state(value: str) -> SubscriptionState:
    state, semi, param_text = value.partition(";")
    state = state.strip(_WSP).lower()
    if not is_token(state):
        raise bad(f"Subscription-State is not a token: {state!r}")
    params = parse_params(param_text, "Subscription-State") if semi else {}
    result = SubscriptionState(state, params)
    for name in ("expires", "retry-after"):
        if params.get(name) is not None:
            parse_uint(params[name] or "", f"Subscription-State {name}")
    return result


# --- message/sipfrag (RFC 3420) ---------------------------------------------------------------

_STATUS_LINE_RE = re.compile(r"SIP/2\.0 ([1-6][0-9]{2}) ?([^\r\n]*)")
_HEADER_LINE_RE = re.compile(r"([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*:[ \t]*(.*)")


@dataclass(frozen=True, slots=True)
class SipFrag:
    """A ``message/sipfrag`` that starts with a status line (RFC 3515 §2.4.5), with the
    header fields that followed it, if any."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()

    def __bytes__(self) -> bytes:
        lines = [f"SIP/2.0 {self.status} {self.reason}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        return ("\r\n".join(lines) + "\r\n").encode()

    def __str__(self) -> str:
        return f"{self.status} {self.reason}"


def parse_sipfrag(body: bytes) -> SipFrag:
    """The status line (and header fields) of a sipfrag body; lines may end in CRLF or a
    bare LF, which some notifiers send. Anything else raises SipError 400."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise bad("sipfrag is not UTF-8") from None
    lines = text.replace("\r\n", "\n").split("\n")
    match = _STATUS_LINE_RE.fullmatch(lines[0])
    if match is None:
        raise bad(f"sipfrag does not start with a status line: {lines[0][:60]!r}")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            break  # the end of the header fields; a body fragment may follow
        header = _HEADER_LINE_RE.fullmatch(line)
        if header is None:
            raise bad(f"sipfrag header line is malformed: {line[:60]!r}")
        headers.append((header.group(1), header.group(2).strip(_WSP)))
    return SipFrag(int(match.group(1)), match.group(2).strip(_WSP), tuple(headers))


# --- Refer-Sub (RFC 4488 §7) ----------------------------------------------------------------


def parse_refer_sub(message: Message) -> bool | None:
    """The Refer-Sub value of ``message``: False asks for no implicit subscription."""
    value = message.headers.get("refer-sub")
    if value is None:
        return None
    word = value.partition(";")[0].strip(_WSP).lower()
    if word not in ("true", "false"):
        raise bad(f"Refer-Sub must be true or false: {value.strip()!r}")
    return word == "true"


# --- Refer-To with Replaces (RFC 3891 §6, RFC 3515 §2.1) ---------------------------------


def replaces_for(call_id: str, local_tag: str, remote_tag: str) -> Replaces:
    """The Replaces value that names our dialog to the UA at its other end: that UA
    compares to-tag with its local tag and from-tag with its remote one (RFC 3891 §3),
    so its tag goes in to-tag and ours in from-tag."""
    return Replaces(call_id, to_tag=remote_tag, from_tag=local_tag)


def refer_to_uri(target: Uri, replaces: Replaces | None = None) -> NameAddress:
    """A Refer-To value for ``target``; with ``replaces``, the URI carries it as an
    embedded header (``?Replaces=...``), which SipUri escapes (``;`` → %3B, ``=`` → %3D,
    ``@`` → %40) as the hvalue grammar of RFC 3261 §25.1 requires."""
    if replaces is None:
        return NameAddress(target)
    if not isinstance(target, SipUri):
        raise SipError(416, "Replaces can only ride in a SIP or SIPS URI")
    headers = tuple((n, v) for n, v in target.headers if n.lower() != "replaces")
    return NameAddress(replace(target, headers=(*headers, ("Replaces", str(replaces)))))


# Header fields a Refer-To URI must not set in the request it triggers: they belong to
# the new dialog and transaction, which the referee builds itself (RFC 3261 §19.1.5).
_NOT_FROM_URI = frozenset(
    {
        "via",
        "from",
        "to",
        "call-id",
        "cseq",
        "contact",
        "record-route",
        "route",
        "max-forwards",
        "content-length",
        "content-type",
        "body",
        "replaces",
    }
)


@dataclass(frozen=True, slots=True)
class ReferralTarget:
    """What a received REFER asks for: the URI to send the INVITE to (without headers),
    the header fields to add to it, the Replaces it carries, and who referred us."""

    uri: Uri
    headers: tuple[tuple[str, str], ...]
    replaces: Replaces | None
    referred_by: NameAddress | None
    subscribe: bool  # False when Refer-Sub: false asked for no implicit subscription

    def invite_headers(self) -> list[tuple[str, str]]:
        """The header fields of the triggered INVITE: the URI's own, Replaces (with the
        option tag in Require, RFC 3891 §4), and Referred-By copied (RFC 3892 §3)."""
        out = list(self.headers)
        if self.replaces is not None:
            out.append(("Replaces", str(self.replaces)))
            out.append(("Require", "replaces"))
        if self.referred_by is not None:
            out.append(("Referred-By", str(self.referred_by)))
        return out


def read_referral(request: Request) -> ReferralTarget:
    """Check a received REFER (RFC 3515 §2.4.2) and read its target; SipError with the
    status to answer: 400 for a missing, repeated or malformed Refer-To, Replaces,
    Referred-By or Refer-Sub; 416 for a URI scheme that cannot be called."""
    count = request.count("refer-to")
    if count != 1:
        raise SipError(400, "REFER needs exactly one Refer-To" if count else "Missing Refer-To")
    raw = request.headers.get("refer-to") or ""
    try:
        refer_to = parse_name_addr(raw)
    except SipError as error:
        raise SipError(400, f"Refer-To: {error.reason}") from None
    uri = refer_to.uri
    if not isinstance(uri, SipUri | TelUri):
        raise SipError(416, f"cannot refer to a {uri.scheme} URI")
    replaces: Replaces | None = None
    headers: list[tuple[str, str]] = []
    if isinstance(uri, SipUri) and uri.headers:
        for name, value in uri.headers:
            key = name.lower()
            if key == "replaces":
                if replaces is not None:
                    raise SipError(400, "Refer-To carries Replaces twice")
                try:
                    replaces = parse_replaces(value)
                except SipError as error:
                    raise SipError(400, f"Refer-To Replaces: {error.reason}") from None
            elif key not in _NOT_FROM_URI:
                headers.append((name, value))
        uri = replace(uri, headers=())
    referred_by = None
    referred_raw = request.headers.get("referred-by")
    if referred_raw is not None:
        try:
            referred_by = parse_name_addr(referred_raw)
        except SipError as error:
            raise SipError(400, f"Referred-By: {error.reason}") from None
    subscribe = parse_refer_sub(request) is not False
    return ReferralTarget(uri, tuple(headers), replaces, referred_by, subscribe)


# --- the referrer's subscription (RFC 3515 §2.4.4 to §2.4.7, RFC 6665 §4.1) -------------


class ReferState(enum.Enum):
    SENT = "sent"  # REFER sent, no final response yet
    ACCEPTED = "accepted"  # 2xx: NOTIFYs report the referred request's progress
    TERMINATED = "terminated"  # final status known, or the subscription is over


@dataclass(frozen=True, slots=True)
class TransferProgress:
    """What the referee reported: the status line of its sipfrag, and whether it is the
    last word (a final status, or a terminated subscription)."""

    status: int
    reason: str
    final: bool

    @property
    def succeeded(self) -> bool:
        return self.final and 200 <= self.status < 300

    def __str__(self) -> str:
        return f"{self.status} {self.reason}"


class ReferOutcome(enum.Enum):
    """How a NOTIFY was taken: the status to answer it with."""

    OK = 200
    BAD_REQUEST = 400
    UNSUPPORTED_MEDIA = 415
    NO_SUBSCRIPTION = 481
    BAD_EVENT = 489


class ReferSubscriber:
    """One REFER we sent and the implicit subscription it creates.

    ``receive_response`` takes the REFER's final response; ``receive_notify`` each NOTIFY
    of the subscription, returning the status to answer and the progress it reports;
    ``expire`` ends the subscription when its deadline passes without a final word
    (RFC 6665 §4.1.2.4: 64·T1 for the first NOTIFY after the 2xx, then the expires of
    the last Subscription-State)."""

    def __init__(self, cseq: int, *, t1: float = 0.5, subscribe: bool = True) -> None:
        self.cseq = cseq
        self.state = ReferState.SENT
        self.subscribe = subscribe
        self.result: TransferProgress | None = None
        self.progress: list[TransferProgress] = []
        self._t1 = t1
        # RFC 6665 §4.1.2.4: a NOTIFY is due within 64·T1 of the REFER's 2xx
        self.deadline: float | None = None

    @property
    def done(self) -> bool:
        return self.state is ReferState.TERMINATED

    def receive_response(
        self, status: int, reason: str, now: float, *, refer_sub: bool | None
    ) -> None:
        if self.state is not ReferState.SENT or status < 200:
            return
        if status >= 300:
            self._finish(TransferProgress(status, reason, True))
            return
        if refer_sub is False and not self.subscribe:
            # RFC 4488 §4: the referee agreed to send no NOTIFY; its 2xx is all we learn
            self._finish(TransferProgress(status, reason, True))
            return
        self.state = ReferState.ACCEPTED
        if self.deadline is None:  # no NOTIFY came before the 2xx
            self.deadline = now + 64 * self._t1

    def receive_notify(self, request: Request, now: float) -> tuple[ReferOutcome, str]:
        """Check one NOTIFY (RFC 6665 §4.1.3, RFC 3515 §2.4.5): the outcome and, when it
        is not OK, the reason for the response."""
        if self.state is ReferState.TERMINATED:
            return ReferOutcome.NO_SUBSCRIPTION, "the refer subscription is over"
        try:
            event = request.event
            raw_state = request.headers.get("subscription-state")
            if raw_state is None:
                return ReferOutcome.BAD_REQUEST, "Missing Subscription-State"
            substate = parse_subscription_state(raw_state)
            expires = substate.expires
        except SipError as error:
            return ReferOutcome.BAD_REQUEST, error.reason
        if event is None or event.package.lower() != "refer":
            return ReferOutcome.BAD_EVENT, "only the refer event package is subscribed"
        content_type = request.content_type
        if request.body and (content_type is None or content_type.mime != SIPFRAG):
            return ReferOutcome.UNSUPPORTED_MEDIA, f"NOTIFY for refer must carry {SIPFRAG}"
        frag: SipFrag | None = None
        if request.body:
            try:
                frag = parse_sipfrag(request.body)
            except SipError as error:
                return ReferOutcome.BAD_REQUEST, error.reason
        if self.state is ReferState.SENT:
            self.state = ReferState.ACCEPTED  # a NOTIFY may overtake the 2xx (RFC 6665 §4.1.2.4)
        if frag is None and not substate.terminated:
            return ReferOutcome.BAD_REQUEST, f"NOTIFY for refer needs a {SIPFRAG} body"
        final = substate.terminated or (frag is not None and frag.status >= 200)
        why = substate.reason or "no reason"
        if frag is None:
            progress = TransferProgress(487, f"subscription terminated ({why})", True)
        elif substate.terminated and frag.status < 200:
            # ended before the referred request had a final response: not a success
            progress = TransferProgress(frag.status, f"{frag.reason}; ended ({why})", True)
        else:
            progress = TransferProgress(frag.status, frag.reason, final)
        self.progress.append(progress)
        if final:
            self._finish(progress)
        else:
            self.deadline = now + (expires if expires is not None else DEFAULT_EXPIRES)
        return ReferOutcome.OK, ""

    def expire(self, now: float) -> TransferProgress | None:
        """End the subscription if its deadline has passed: the referee went silent."""
        if self.state is ReferState.ACCEPTED and self.deadline is not None and now >= self.deadline:
            self._finish(TransferProgress(408, "no final NOTIFY from the referee", True))
            return self.result
        return None

    def _finish(self, result: TransferProgress) -> None:
        self.state = ReferState.TERMINATED
        self.result = result
        self.deadline = None


# --- the referee's notifier (RFC 3515 §2.4.4, §2.4.5, RFC 6665 §4.2.2) -------------------


@dataclass(frozen=True, slots=True)
class NotifyContent:
    """The parts of one NOTIFY for the refer event: Event, Subscription-State, body."""

    event: str
    subscription_state: str
    body: bytes

    def headers(self) -> list[tuple[str, str]]:
        return [("Event", self.event), ("Subscription-State", self.subscription_state)]


class ReferNotifier:
    """The implicit subscription a REFER we accepted created: it reports the referred
    request's progress as sipfrag status lines and terminates with its final status."""

    def __init__(self, refer_cseq: int, now: float, expires: int = DEFAULT_EXPIRES) -> None:
        self.event = f"refer;id={refer_cseq}"  # RFC 3515 §2.4.6: id = CSeq of the REFER
        self.expires_at = now + expires
        self.terminated = False
        self.last: SipFrag | None = None

    def notify(self, status: int, reason: str, now: float) -> NotifyContent | None:
        """The NOTIFY for the referred request's status ``status`` (100 when we start,
        each provisional, then the final status); None once terminated."""
        if self.terminated:
            return None
        frag = SipFrag(status, reason)
        self.last = frag
        remaining = int(self.expires_at - now)
        if status >= 200:
            self.terminated = True
            state = "terminated;reason=noresource"
        elif remaining <= 0:
            self.terminated = True  # RFC 6665 §4.2.2: the subscription ran out
            state = "terminated;reason=timeout"
        else:
            state = f"active;expires={remaining}"
        return NotifyContent(self.event, state, bytes(frag))
