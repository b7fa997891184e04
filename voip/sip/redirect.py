"""Following redirections: the target set a UAC builds from 3xx responses (RFC 3261 §8.1.3.4).

Sans-I/O: :class:`TargetSet` takes the responses to a request and says which URI to send
it to next, or that there is none (then the caller surfaces the response it has). It
keeps the §8.1.3.4 rules:

- the Contact URIs of a 3xx join the target set; they are tried in order of their
  ``q`` value, highest first (a Contact without ``q`` counts as 1.0), in the order
  they came within one ``q``; targets from a later 3xx are merged by ``q`` too;
- a target is tried once: a Contact naming the original Request-URI or a target
  already tried or queued is left out, so that two servers redirecting to each other
  end (loop protection), as does a chain of more than ``max_redirects`` 3xx;
- after a failure (4xx to 6xx, or a timeout) from a target that a 3xx gave, the next
  target of the set is tried ("the client SHOULD try the next contact address");
- a request to a ``sips:`` URI is only redirected to ``sips:`` URIs (§8.1.3.4 lets a
  client recurse to an insecure URI only after telling its user: this one does not);
  URIs of other schemes (``tel:``, ``mailto:``) are not targets of a SIP request.

Only 300 Multiple Choices, 301 Moved Permanently and 302 Moved Temporarily are followed:
305 Use Proxy names a proxy, not a target (RFC 3261 §21.3.5, and trusting it lets any
server divert calls), and 380 Alternative Service describes its alternative in the body.

The new request keeps the Call-ID, From (with its tag) and To of the first, as
§8.1.3.4 recommends, so that it is one call to the user; its CSeq is one more, so that
a target that already saw the first (a redirect back) does not take it for a merged
request (§8.2.2.2); and it goes in a new client transaction, with a new branch (§8.1.1.7).
Building it is the caller's part (:func:`redirected_request`).
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

from voip.sip.errors import SipError
from voip.sip.fields import CSeq
from voip.sip.message import Request, Response
from voip.sip.uri import SipUri, Uri

__all__ = [
    "DEFAULT_MAX_REDIRECTS",
    "FOLLOWED",
    "RedirectTarget",
    "TargetSet",
    "redirected_request",
    "targets_of",
]

#: The 3xx responses whose Contacts are targets to try (RFC 3261 §21.3).
FOLLOWED = frozenset({300, 301, 302})
#: How many 3xx in a row one request follows by default.
DEFAULT_MAX_REDIRECTS = 5
#: Header fields a redirected request does not copy from the first: the transaction's
#: own (Via), the address to reach us by on the new target's transport (Contact), and
#: credentials computed for the first Request-URI (re-added for known realms on sending).
_NOT_COPIED = ("Via", "Contact", "Authorization", "Proxy-Authorization")


@dataclass(frozen=True, slots=True)
class RedirectTarget:
    """One Contact of a 3xx: the URI to try and its preference (``q``, 0 to 1)."""

    uri: SipUri
    q: float


def _key(uri: SipUri) -> tuple[str, str | None, str, int | None, str]:
    """What makes two targets the same one (RFC 3261 §19.1.4, the parts that route):
    scheme, user, host (case-insensitive), port, transport."""
    return (uri.scheme, uri.user, uri.host.lower(), uri.port, uri.transport or "")


def targets_of(response: Response) -> list[RedirectTarget]:
    """The Contacts of a 3xx as targets, highest ``q`` first (stable within one ``q``).

    A Contact that cannot be read (a bad URI, a ``q`` outside 0..1) is left out; so are
    URIs that are not sip/sips. The URI's header components and ``method`` parameter
    are dropped: they would make the request another one (§19.1.5)."""
    try:
        contacts = list(response.contact)
    except SipError:
        return []
    targets = []
    for contact in contacts:
        try:
            uri = contact.uri
            q = contact.q
        except SipError:
            continue
        if not isinstance(uri, SipUri):
            continue
        params = {k: v for k, v in uri.params.items() if k.lower() != "method"}
        clean = SipUri(
            host=uri.host,
            user=uri.user,
            password=uri.password,
            port=uri.port,
            params=params,
            scheme=uri.scheme,
        )
        targets.append(RedirectTarget(clean, 1.0 if q is None else q))
    targets.sort(key=lambda target: -target.q)
    return targets


class TargetSet:
    """The targets of one request and its redirections (RFC 3261 §8.1.3.4).

    ``request_uri`` is the Request-URI of the first request (never a target again).
    ``max_redirects`` bounds how many 3xx are followed; 0 follows none.
    """

    def __init__(self, request_uri: Uri, *, max_redirects: int = DEFAULT_MAX_REDIRECTS) -> None:
        if max_redirects < 0:
            raise ValueError(f"max_redirects must be >= 0, not {max_redirects}")
        self.max_redirects = max_redirects
        #: how many 3xx have been followed
        self.redirects = 0
        #: the targets tried, in order (the first Request-URI not among them)
        self.tried: list[SipUri] = []
        self.secure = isinstance(request_uri, SipUri) and request_uri.secure
        self._seen: set[tuple[str, str | None, str, int | None, str]] = set()
        if isinstance(request_uri, SipUri):
            self._seen.add(_key(request_uri))
        # (-q, order, target): heapq gives the highest q first, then the earliest
        self._queue: list[tuple[float, int, RedirectTarget]] = []
        self._order = itertools.count()

    @property
    def pending(self) -> list[RedirectTarget]:
        """The targets not tried yet, in the order they will be."""
        return [target for _, _, target in sorted(self._queue)]

    def after(self, response: Response) -> SipUri | None:
        """The next target after this final response: :meth:`redirect` for a 3xx,
        :meth:`failed` for a 4xx to 6xx; None for a 2xx or when there is none."""
        if 300 <= response.status < 400:
            return self.redirect(response)
        return self.failed(response)

    def redirect(self, response: Response) -> SipUri | None:
        """A 3xx came: its Contacts join the set; the next target to send to, or None
        when the response is not one to follow (not 300-302, or the limit of 3xx in a
        row is reached) or leaves nothing new to try (a loop, no usable Contact)."""
        if response.status not in FOLLOWED or self.redirects >= self.max_redirects:
            return None
        self.redirects += 1
        for target in targets_of(response):
            key = _key(target.uri)
            if key in self._seen or (self.secure and not target.uri.secure):
                continue
            self._seen.add(key)
            heapq.heappush(self._queue, (-target.q, next(self._order), target))
        return self.next_target()

    def next_target(self) -> SipUri | None:
        """The next target to try (after a failure from the last), or None when none is left."""
        if not self._queue:
            return None
        _, _, target = heapq.heappop(self._queue)
        self.tried.append(target.uri)
        return target.uri

    def failed(self, response: Response) -> SipUri | None:
        """A final failure (4xx to 6xx) came from a target: the next one to try, if the
        request was redirected at all (a failure of the first Request-URI is final)."""
        if response.status < 400 or not self.tried:
            return None
        return self.next_target()


def redirected_request(request: Request, target: SipUri) -> Request:
    """``request`` again for ``target``: the same Call-ID, From, To, Route set and body,
    CSeq one more; no Via, Contact or credentials (the sender adds them for the new
    target and transaction)."""
    headers = request.headers.copy()
    for name in _NOT_COPIED:
        headers.remove(name)
    retry = Request(request.method, target, headers, request.body)
    retry.cseq = CSeq(request.cseq.number + 1, request.cseq.method)
    return retry
