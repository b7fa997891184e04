"""Session timers (RFC 4028), sans-I/O: the session interval, who refreshes, and when.

One :class:`SessionTimer` per INVITE dialog. It writes the header fields of the requests
and 2xx responses that carry a session interval (Session-Expires, Min-SE, Supported and
Require ``timer``), reads those of the peer, answers too small an interval with 422
(§6, §9), retries with a larger one after a 422 (§7.3), and keeps the two deadlines of
§10: the refresher refreshes at half the interval, and either side ends the session
with BYE at ``interval - min(32, interval / 3)`` after the last refresh when none came
(or, for the refresher, when its refresh failed). Time is given by the caller
(monotonic seconds); :meth:`SessionTimer.next_deadline` says when to call
:meth:`SessionTimer.handle_timer`, which returns :class:`RefreshDue` or
:class:`SessionExpired`.

The ``refresher`` parameter names a role in the transaction that carries it (§4): in a
request we send or a response we receive, ``uac`` is us; in a request we receive or a
response we send, ``uac`` is the peer. Here the refresher is kept as ``we_refresh``,
which does not flip from one transaction to the next.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from voip.sip.errors import SipError
from voip.sip.message import Request, Response

__all__ = [
    "MIN_SE",
    "SESSION_EXPIRES",
    "TIMER",
    "RefreshDue",
    "SessionExpired",
    "SessionTimer",
    "SessionTimerPolicy",
    "TimerState",
    "bye_lead",
    "check_interval",
]

#: The option tag (§3, §4).
TIMER = "timer"
#: The smallest session interval RFC 4028 allows, and the Min-SE when none is given (§5).
MIN_SE = 90
#: The session interval RFC 4028 §4 recommends.
SESSION_EXPIRES = 1800
#: At most this many 422s are followed for one request (§7.3 leaves the count to the UAC).
MAX_422_RETRIES = 2


@dataclass(frozen=True, slots=True)
class SessionTimerPolicy:
    """A user agent's local policy for session timers.

    ``session_expires``: the interval asked for in a request or offered in a 2xx when
    the peer asked for none (None: ask for none, but still take part when the peer asks).
    ``min_se``: the smallest interval accepted (§5 says 90; tests lower it).
    ``refresher``: "uac" or "uas" to state who refreshes when this side chooses, or None
    (as UAC the parameter is then left out for the UAS to choose, §7.1; as UAS the UAC
    refreshes when it supports the extension, §9).
    ``refresh_with``: "UPDATE" or "INVITE", the method of the refreshes this side sends;
    UPDATE only goes to a peer that allows it (RFC 3311), re-INVITE otherwise.
    """

    session_expires: int | None = SESSION_EXPIRES
    min_se: int = MIN_SE
    refresher: str | None = None
    refresh_with: str = "UPDATE"

    def __post_init__(self) -> None:
        if self.min_se < 1:
            raise ValueError(f"min_se must be at least 1 second, not {self.min_se}")
        if self.session_expires is not None and self.session_expires < self.min_se:
            raise ValueError(
                f"session_expires {self.session_expires} is below min_se {self.min_se} (§4)"
            )
        if self.refresher not in (None, "uac", "uas"):
            raise ValueError(f"refresher is 'uac', 'uas' or None, not {self.refresher!r}")
        if self.refresh_with not in ("UPDATE", "INVITE"):
            raise ValueError(f"refresh_with is 'UPDATE' or 'INVITE', not {self.refresh_with!r}")


class TimerState(enum.Enum):
    INACTIVE = "inactive"  # no session interval agreed: not yet, or turned off (§7.2)
    ACTIVE = "active"  # an interval runs: refresh or watch for the peer's refresh
    REFRESHING = "refreshing"  # our refresh is sent and has no 2xx yet
    FAILED = "failed"  # our refresh failed: no more refreshes, BYE at the deadline (§10)
    EXPIRED = "expired"  # the session expired: BYE (§10)


@dataclass(frozen=True, slots=True)
class RefreshDue:
    """Half the interval has passed and we are the refresher: send a re-INVITE or UPDATE
    (§10), then report its outcome with :meth:`SessionTimer.receive_response` or
    :meth:`SessionTimer.refresh_failed`."""

    interval: int


@dataclass(frozen=True, slots=True)
class SessionExpired:
    """No refresh in time: send BYE (§10). An S-P-ABORT of the session."""

    interval: int
    we_refresh: bool

    @property
    def text(self) -> str:
        why = "our refresh failed" if self.we_refresh else "the peer did not refresh it"
        return f"session timer expired: {why} within the {self.interval} s interval (RFC 4028)"


def bye_lead(interval: float) -> float:
    """How long before the session expires the BYE goes: min(32, interval/3) (§10)."""
    return min(32.0, interval / 3)


def check_interval(request: Request, min_se: int) -> None:
    """Raise the 422 a UAS answers ``request`` with when its interval is below ``min_se``
    (§9): only to a UAC that supports the extension, which can retry; with Min-SE."""
    expires = request.session_expires
    if expires is None or expires.delta >= min_se or TIMER not in request.supported:
        return
    raise SipError(
        422,
        f"session interval {expires.delta} s is below the minimum of {min_se} s",
        headers=(("Min-SE", str(min_se)),),
    )


class SessionTimer:
    """The session timer of one dialog (RFC 4028), on either side."""

    def __init__(self, policy: SessionTimerPolicy) -> None:
        self.policy = policy
        self.state = TimerState.INACTIVE
        #: the interval asked for next: the policy's, raised by 422s (§7.3)
        self.requested: int | None = policy.session_expires
        #: our Min-SE: the policy's, raised by the 422s received (§7.3)
        self.min_se = policy.min_se
        #: the agreed session interval while a timer runs
        self.interval: int | None = None
        self.we_refresh = False
        self.refresh_at: float | None = None
        self.expire_at: float | None = None
        self._retries_422 = 0

    def __repr__(self) -> str:
        who = "we refresh" if self.we_refresh else "peer refreshes"
        return f"<SessionTimer {self.state.value} {self.interval} s, {who}>"

    @property
    def running(self) -> bool:
        return self.state in (TimerState.ACTIVE, TimerState.REFRESHING, TimerState.FAILED)

    # --- requests we send (§7.1, §7.4) -------------------------------------------------

    def request_headers(self) -> list[tuple[str, str]]:
        """Header fields for an INVITE, re-INVITE or UPDATE we send: Supported: timer,
        and while a timer runs its interval with the current refresher (§7.4), else the
        interval we ask for (§7.1), with our Min-SE."""
        headers = [("Supported", TIMER)]
        if self.running and self.interval is not None:
            refresher = "uac" if self.we_refresh else "uas"
            headers.append(("Session-Expires", f"{self.interval};refresher={refresher}"))
        elif self.requested is not None:
            wanted = self.policy.refresher
            suffix = f";refresher={wanted}" if wanted is not None else ""
            headers.append(("Session-Expires", f"{self.requested}{suffix}"))
        else:
            return headers
        headers.append(("Min-SE", str(self.min_se)))
        return headers

    def receive_422(self, response: Response) -> bool:
        """A 422 to our request (§7.3): True when the request is to be sent again with
        :meth:`request_headers`, now asking for at least the response's Min-SE."""
        minimum = response.min_se
        if minimum is None or self._retries_422 >= MAX_422_RETRIES:
            return False
        asked = self.interval if self.running else self.requested
        if asked is not None and minimum <= asked:
            return False  # a larger interval would not help: the peer is not consistent
        self._retries_422 += 1
        self.min_se = max(self.min_se, minimum)
        self.requested = max(self.requested or 0, minimum)
        if self.running and self.interval is not None:
            self.interval = max(self.interval, minimum)
        return True

    def receive_response(self, response: Response, now: float) -> None:
        """A 2xx to our INVITE, re-INVITE or UPDATE (§7.2): its Session-Expires starts or
        restarts the timer; a 2xx without one turns it off."""
        expires = response.session_expires
        self._retries_422 = 0
        if expires is None:
            self._stop()
            return
        # §7.2: without the parameter (a proxy inserted the interval for a UAS that does
        # not support timers) the UAC refreshes; "uac" in a response to us is us.
        self._start(expires.delta, expires.refresher != "uas", now)

    def refresh_failed(self) -> None:
        """Our refresh got no 2xx (§10): no more refreshes; BYE at the expiry deadline.
        Nothing changes when something else refreshed the session meanwhile."""
        if self.state is TimerState.REFRESHING:
            self.state = TimerState.FAILED
            self.refresh_at = None

    # --- requests we receive (§9) --------------------------------------------------------

    def check_request(self, request: Request) -> None:
        """Raise the 422 for a request whose interval is below our Min-SE (§9)."""
        check_interval(request, self.min_se)

    def answer(self, request: Request, now: float) -> list[tuple[str, str]]:
        """Header fields for our 2xx to an INVITE, re-INVITE or UPDATE (§9), and the timer
        started (or turned off) with what they say. Call :meth:`check_request` first."""
        expires = request.session_expires
        supported = TIMER in request.supported or TIMER in request.require
        refresher: str | None = None
        wanted = self.policy.session_expires
        if expires is not None:
            interval = expires.delta
            if wanted is not None and wanted < interval:
                # §9: the UAS may lower the interval, not below the request's Min-SE
                # (90 s when it has none) nor its own minimum
                floor = MIN_SE if request.min_se is None else request.min_se
                interval = min(interval, max(wanted, floor, self.min_se))
            refresher = expires.refresher
        elif supported and (self.running or wanted is not None):
            # §9: the UAC supports timers but asked for none; the UAS may ask for one
            # (the running interval, mid-dialog), not below the request's Min-SE
            base = self.interval if self.running and self.interval else wanted or 0
            interval = max(base, request.min_se or 0, self.min_se)
        else:
            self._stop()
            return []
        if refresher is None:
            refresher = self._choose_refresher() if supported else "uas"  # §9 Table 2
        headers = [("Session-Expires", f"{interval};refresher={refresher}")]
        if supported or refresher == "uac":
            headers.append(("Require", TIMER))  # §9: the UAC must see the response's terms
        self._start(interval, refresher == "uas", now)
        return headers

    def _choose_refresher(self) -> str:
        """The UAS's choice when the UAC left it open (§9): who refreshes now keeps on;
        else the policy; else the UAC, whose request made the session."""
        if self.running:
            return "uas" if self.we_refresh else "uac"
        return self.policy.refresher or "uac"

    # --- time (§10) ------------------------------------------------------------------

    def _start(self, interval: int, we_refresh: bool, now: float) -> None:
        interval = max(interval, 1)  # a zero interval would refresh in a busy loop
        self.state = TimerState.ACTIVE
        self.interval = interval
        self.we_refresh = we_refresh
        # §10: the refresher refreshes at half the interval; the BYE goes out
        # min(32, interval/3) before the session expires if nothing refreshed it
        self.refresh_at = now + interval / 2 if we_refresh else None
        self.expire_at = now + interval - bye_lead(interval)

    def _stop(self) -> None:
        self.state = TimerState.INACTIVE
        self.interval = None
        self.we_refresh = False
        self.refresh_at = self.expire_at = None

    def stop(self) -> None:
        """The dialog ended: no deadline is left."""
        self._stop()

    def next_deadline(self) -> float | None:
        if not self.running:
            return None
        if self.state is TimerState.ACTIVE and self.refresh_at is not None:
            return min(self.refresh_at, self.expire_at or self.refresh_at)
        return self.expire_at

    def handle_timer(self, now: float) -> RefreshDue | SessionExpired | None:
        """What is due at ``now``: the session's end, or our refresh."""
        if not self.running or self.interval is None:
            return None
        if self.expire_at is not None and now >= self.expire_at:
            expired = SessionExpired(self.interval, self.we_refresh)
            self.state = TimerState.EXPIRED
            self.refresh_at = self.expire_at = None
            return expired
        if (
            self.state is TimerState.ACTIVE
            and self.refresh_at is not None
            and now >= self.refresh_at
        ):
            self.state = TimerState.REFRESHING
            self.refresh_at = None
            return RefreshDue(self.interval)
        return None
