"""SIP digest authentication (RFC 3261 §22, RFC 7616, RFC 8760), both roles, sans-I/O.

A UAC keeps one :class:`DigestClient` per account: given a request and the 401/407 it
drew, :meth:`DigestClient.authorize` returns the request to send again, with an
``Authorization`` (401) or ``Proxy-Authorization`` (407) value per challenged realm;
:meth:`DigestClient.preauthorize` puts credentials for realms already challenged into a
new request (a REGISTER refresh, an in-dialog BYE through a challenging proxy).

A UAS, registrar or proxy that challenges keeps one :class:`DigestServer` per realm:
:meth:`DigestServer.verify` judges the credentials of a request, and
:meth:`DigestServer.reject` builds the 400, 401 or 407 for a verdict that is not OK.

No socket and no clock: the server takes ``now`` (its owner's monotonic seconds) and
mints stateless nonces from it; randomness comes from :mod:`secrets`.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import math
import re
import secrets
import struct
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field, replace
from urllib.parse import unquote

from voip.sip.errors import SipError
from voip.sip.fields import AuthField, CSeq, parse_auth
from voip.sip.message import Request, Response, make_response, new_branch

# --- algorithms (RFC 7616 §3.2, §6.1; RFC 8760 §2.1) --------------------------------------


@dataclass(frozen=True, slots=True)
class Algorithm:
    """A digest algorithm of the IANA "HTTP Digest Hash Algorithms" registry.

    ``session`` marks the ``-sess`` variants, whose HA1 is bound to the nonce and
    cnonce (RFC 7616 §3.4.2). ``strength`` orders the hashes for a client that must
    choose among several challenges, SHA-512-256 > SHA-256 > MD5: a local policy, which
    RFC 7616 §3.7 and RFC 8760 §2.4 allow over the server's topmost-first order.
    """

    name: str
    hash_name: str
    session: bool
    strength: int

    def digest(self, data: bytes) -> str:
        """H(data) in lower-case hex (RFC 7616 §3.3)."""
        # Digest uses MD5 as a protocol function, not for new security: FIPS builds allow it so.
        return hashlib.new(self.hash_name, data, usedforsecurity=False).hexdigest()

    def h(self, *parts: str) -> str:
        """H of the parts joined by ':' in UTF-8 (RFC 7616 §3.4.1, §4)."""
        return self.digest(":".join(parts).encode("utf-8"))


# SHA-512-256 is SHA-512/256 of FIPS 180-4 (its own initial values), not SHA-512 cut short
# (RFC 7616 §3.2); Python ≥ 3.10 requires OpenSSL 1.1.1, which provides it.
ALGORITHMS: dict[str, Algorithm] = {
    algorithm.name.lower(): algorithm
    for algorithm in (
        Algorithm("MD5", "md5", False, 1),
        Algorithm("MD5-sess", "md5", True, 1),
        Algorithm("SHA-256", "sha256", False, 2),
        Algorithm("SHA-256-sess", "sha256", True, 2),
        Algorithm("SHA-512-256", "sha512_256", False, 3),
        Algorithm("SHA-512-256-sess", "sha512_256", True, 3),
    )
}
QOP_VALUES = ("auth", "auth-int")


def request_digest(
    algorithm: Algorithm,
    *,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None = None,
    nc: str = "",
    cnonce: str = "",
    body: bytes = b"",
) -> str:
    """The ``response`` value: RFC 7616 §3.4.1 with qop, RFC 2069 (RFC 3261 §22.4) without.

    ``uri`` is the digest-uri as written in the credentials and ``nc`` the nonce count as
    sent (8 hex digits); ``body`` counts only for ``auth-int``, where H(entity-body) is
    the hash of the SIP message body, H("") when there is none (RFC 3261 §22.4).
    """
    ha1 = algorithm.h(username, realm, password)
    if algorithm.session:
        ha1 = algorithm.h(ha1, nonce, cnonce)
    if qop == "auth-int":
        ha2 = algorithm.h(method, uri, algorithm.digest(body))
    else:
        ha2 = algorithm.h(method, uri)
    if qop is None:
        return algorithm.h(ha1, nonce, ha2)
    return algorithm.h(ha1, nonce, nc, cnonce, qop, ha2)


# --- challenges (RFC 7616 §3.3) ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Challenge:
    """One digest challenge this toolkit can answer, from a WWW- or Proxy-Authenticate value.

    ``algorithm_token`` is the algorithm as the server wrote it (None when absent, which
    means MD5): the credentials echo it unchanged (RFC 7616 §3.4). ``qop_options`` empty
    means a challenge without qop, answered the RFC 2069 way (RFC 3261 §22.4).
    """

    realm: str
    nonce: str
    algorithm: Algorithm
    algorithm_token: str | None = None
    qop_options: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    userhash: bool = False
    proxy: bool = False

    @property
    def qop(self) -> str | None:
        """The qop to answer with: ``auth`` whenever offered, ``auth-int`` only when alone.

        ``auth-int`` covers the body, which B2BUAs and SDP-rewriting proxies change on the
        way; ``auth`` is what pjsip, libre and Kamailio use, so it is preferred.
        """
        if not self.qop_options:
            return None
        return "auth" if "auth" in self.qop_options else "auth-int"


def parse_challenge(value: AuthField, *, proxy: bool = False) -> Challenge | None:
    """The digest challenge in ``value``, or None if it is not one this toolkit can answer.

    Other schemes, unknown algorithms (RFC 8760 §2.4: the UAC MUST ignore them), qop
    options without ``auth`` or ``auth-int``, and a missing realm or nonce give None, as
    does a ``-sess`` algorithm without qop: its HA1 needs a cnonce, and the cnonce only
    travels with qop (RFC 2617 §3.2.2).
    """
    if value.scheme.lower() != "digest":
        return None
    params = value.params
    realm, nonce = params.get("realm"), params.get("nonce")
    if realm is None or nonce is None:
        return None
    token = params.get("algorithm")
    algorithm = ALGORITHMS.get((token or "MD5").lower())
    if algorithm is None:
        return None
    options: tuple[str, ...] = ()
    if "qop" in params:
        options = tuple(o for o in (p.strip().lower() for p in params["qop"].split(",")) if o)
        if not set(options) & set(QOP_VALUES):
            return None
    if algorithm.session and not options:
        return None
    return Challenge(
        realm,
        nonce,
        algorithm,
        token,
        options,
        params.get("opaque"),
        params.get("stale", "").lower() == "true",
        params.get("userhash", "").lower() == "true",
        proxy,
    )


# Which parameters RFC 7616 §3.3/§3.4 write as quoted-strings; algorithm, stale, qop in
# credentials, nc and userhash are bare tokens.
_CHALLENGE_QUOTED = frozenset({"realm", "nonce", "opaque", "qop", "domain"})
_CREDENTIALS_QUOTED = frozenset(
    {"username", "realm", "nonce", "uri", "response", "cnonce", "opaque"}
)
_HEADER = {False: "Authorization", True: "Proxy-Authorization"}
_CHALLENGE_HEADER = {False: "WWW-Authenticate", True: "Proxy-Authenticate"}
# ACK and CANCEL cannot be resubmitted with credentials, so they are never challenged
# (RFC 3261 §22.1).
_UNCHALLENGED = frozenset({"ACK", "CANCEL"})


def _request_uri_text(request: Request) -> str:
    # The digest-uri must be the Request-URI exactly as it goes on the wire (RFC 3261 §22.4).
    return request.start_line().split(" ", 2)[1]


# --- the client (RFC 3261 §22.2, §22.3) -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credentials:
    """A username and password, for one realm or (``realm`` None) for any realm."""

    username: str
    password: str = field(repr=False)
    realm: str | None = None


class AuthenticationFailed(Exception):
    """The request cannot be authorized: the reason says why, in words a person can act on."""

    def __init__(self, reason: str, realm: str | None = None) -> None:
        super().__init__(reason if realm is None else f"realm {realm!r}: {reason}")
        self.reason = reason
        self.realm = realm


def new_cnonce() -> str:
    """A client nonce with 128 random bits (RFC 7616 §3.4: unpredictable by the server)."""
    return secrets.token_hex(16)


@dataclass(slots=True)
class _ProtectionSpace:
    """The state kept per challenged realm: its last challenge, cnonce and nonce count."""

    challenge: Challenge
    credentials: Credentials
    cnonce: str
    nc: int = 0


# (realm, from Proxy-Authenticate): a registrar and a proxy may share a realm.
_SpaceKey = tuple[str, bool]
# How many of its own retries a client remembers, to tell "rejected twice" (give up) from
# "credentials sent pre-emptively were refused" (answer once): older ones cost one more try.
_RETRIES_KEPT = 64


class DigestClient:
    """Answers digest challenges for one account (RFC 3261 §22.2, §22.3; RFC 8760 §2.4).

    ``credentials`` are tried by realm: one whose realm equals the challenge's first,
    else one with realm None. ``cnonce`` makes client nonces (tests inject fixed ones).
    """

    def __init__(
        self,
        credentials: Credentials | Iterable[Credentials],
        *,
        cnonce: Callable[[], str] = new_cnonce,
    ) -> None:
        if isinstance(credentials, Credentials):
            credentials = (credentials,)
        self._credentials = tuple(credentials)
        self._new_cnonce = cnonce
        self._spaces: dict[_SpaceKey, _ProtectionSpace] = {}
        # (Call-ID, CSeq) of each retry built here → for each realm answered in it, whether
        # that answer was already a retry after stale=true.
        self._retries: OrderedDict[tuple[str, int], dict[_SpaceKey, bool]] = OrderedDict()

    def credentials_for(self, realm: str) -> Credentials | None:
        for credentials in self._credentials:
            if credentials.realm == realm:
                return credentials
        return next((c for c in self._credentials if c.realm is None), None)

    def authorize(
        self, request: Request, response: Response, *, cseq: int | None = None
    ) -> Request:
        """The request to send again in answer to ``response`` (a 401 or 407 to ``request``).

        The retry is a copy with CSeq ``cseq`` (default: one more, RFC 3261 §22.2; a dialog
        passes its next local CSeq) and a new top Via branch, since it is a new transaction
        (§8.1.3.5); Call-ID, tags, Route and body stay. It carries credentials for every
        realm challenged in ``response``, WWW- and Proxy-Authenticate alike (a forking proxy
        gathers both into one response, §16.7), and fresh ones for the realms ``request``
        already answered. Per realm the strongest supported algorithm is used, the
        server's order breaking ties: RFC 8760 §2.4 and RFC 7616 §3.7 let local policy
        override the topmost-first default.

        Raises :class:`AuthenticationFailed` when there is nothing to answer, no credentials
        for any challenged realm, or the server refused credentials this client computed
        for its own challenge: without ``stale=true`` that means a wrong username or
        password (RFC 7616 §3.3), and a second stale in a row means a server that will not
        take any, so the request is not sent again in either case.
        """
        if response.status not in (401, 407):
            raise ValueError(f"{response.status} is not a challenge (401 or 407)")
        if request.method in _UNCHALLENGED:
            raise AuthenticationFailed(f"{request.method} cannot be resubmitted with credentials")
        chosen = _strongest_challenges(response)
        if not chosen:
            offered = "; ".join(
                response.headers.get_all("www-authenticate")
                + response.headers.get_all("proxy-authenticate")
            )
            raise AuthenticationFailed(f"no digest challenge this client can answer in {offered!r}")
        answered = self._retries.get((request.call_id, request.cseq.number), {})
        learned: dict[_SpaceKey, bool] = {}
        for key, challenge in chosen.items():
            previous = answered.get(key)
            if previous is not None and not challenge.stale:
                raise AuthenticationFailed(
                    "credentials rejected: wrong username or password", key[0]
                )
            if previous:
                raise AuthenticationFailed("nonce stale again right after a stale retry", key[0])
            credentials = self.credentials_for(challenge.realm)
            if credentials is not None:
                self._learn(key, challenge, credentials)
                learned[key] = challenge.stale
        if not learned:
            realms = ", ".join(repr(realm) for realm, _ in chosen)
            raise AuthenticationFailed(f"no credentials for realm {realms}")
        retry = Request(request.method, request.uri, request.headers.copy(), request.body)
        retry.cseq = CSeq(request.cseq.number + 1 if cseq is None else cseq, request.cseq.method)
        vias = list(request.via)
        if vias:
            top = vias[0]
            retry.via = [replace(top, params={**top.params, "branch": new_branch()}), *vias[1:]]
        carried = _credential_realms(request) & self._spaces.keys()
        self._write(retry, [*learned, *(key for key in carried if key not in learned)])
        self._retries[(retry.call_id, retry.cseq.number)] = learned
        while len(self._retries) > _RETRIES_KEPT:
            self._retries.popitem(last=False)
        return retry

    def preauthorize(self, request: Request, *, realms: Collection[str] | None = None) -> None:
        """Add credentials for the realms already challenged (or those of ``realms``).

        Each gets the next nonce count of its last challenge (RFC 7616 §3.4), so a REGISTER
        refresh or an in-dialog request through a challenging proxy needs no extra round
        trip; a server that has let the nonce expire answers stale=true, which
        :meth:`authorize` retries. RFC 3261 §22.3 keeps proxy credentials to one dialog
        unless the realm is the configured outbound proxy's: name realms to stay in it.
        """
        keys = [key for key in self._spaces if realms is None or key[0] in realms]
        self._write(request, keys)

    def forget(self, realm: str | None = None) -> None:
        """Drop the challenges kept for ``realm`` (all realms when None)."""
        for key in [k for k in self._spaces if realm is None or k[0] == realm]:
            del self._spaces[key]

    def _learn(self, key: _SpaceKey, challenge: Challenge, credentials: Credentials) -> None:
        space = self._spaces.get(key)
        if (
            space is None
            or space.challenge.nonce != challenge.nonce
            or space.credentials != credentials
        ):
            # A new nonce starts its count at 1 and gets its own cnonce (RFC 7616 §3.4).
            self._spaces[key] = _ProtectionSpace(challenge, credentials, self._new_cnonce())
        else:
            space.challenge = challenge

    def _write(self, request: Request, keys: Iterable[_SpaceKey]) -> None:
        """Replace the credentials of ``request`` for ``keys`` by freshly computed ones."""
        keys = list(keys)
        for proxy, name in _HEADER.items():
            realms = {realm for realm, is_proxy in keys if is_proxy == proxy}
            kept = [v for v in request.headers.get_all(name) if _digest_realm(v) not in realms]
            request.headers.remove(name)
            for value in kept:
                request.headers.add(name, value)
        for key in keys:
            request.headers.add(
                _HEADER[key[1]], str(self._credentials_field(self._spaces[key], request))
            )

    def _credentials_field(self, space: _ProtectionSpace, request: Request) -> AuthField:
        challenge, credentials = space.challenge, space.credentials
        algorithm, qop = challenge.algorithm, challenge.qop
        space.nc += 1
        nc = f"{space.nc:08x}"
        uri = _request_uri_text(request)
        username = credentials.username
        if challenge.userhash:
            # RFC 7616 §3.4.4: the username travels as H(username:realm); A1 keeps the name.
            username = algorithm.h(credentials.username, challenge.realm)
        params = {
            "username": username,
            "realm": challenge.realm,
            "nonce": challenge.nonce,
            "uri": uri,
        }
        params["response"] = request_digest(
            algorithm,
            username=credentials.username,
            realm=challenge.realm,
            password=credentials.password,
            method=request.method,
            uri=uri,
            nonce=challenge.nonce,
            qop=qop,
            nc=nc,
            cnonce=space.cnonce,
            body=request.body,
        )
        if challenge.algorithm_token is not None:
            params["algorithm"] = challenge.algorithm_token
        if challenge.opaque is not None:
            params["opaque"] = challenge.opaque
        if qop is not None:
            params.update(qop=qop, nc=nc, cnonce=space.cnonce)
        if challenge.userhash:
            params["userhash"] = "true"
        return AuthField("Digest", params, _CREDENTIALS_QUOTED)


def _strongest_challenges(response: Response) -> dict[_SpaceKey, Challenge]:
    chosen: dict[_SpaceKey, Challenge] = {}
    for proxy, name in _CHALLENGE_HEADER.items():
        for value in response.headers.get_all(name):
            try:
                challenge = parse_challenge(parse_auth(value), proxy=proxy)
            except SipError:
                continue  # a malformed challenge is skipped; the others may still be answered
            if challenge is None:
                continue
            key = (challenge.realm, proxy)
            current = chosen.get(key)
            if current is None or challenge.algorithm.strength > current.algorithm.strength:
                chosen[key] = challenge
    return chosen


def _digest_realm(value: str) -> str | None:
    try:
        credentials = parse_auth(value)
    except SipError:
        return None
    return credentials.params.get("realm") if credentials.scheme.lower() == "digest" else None


def _credential_realms(request: Request) -> set[_SpaceKey]:
    return {
        (realm, proxy)
        for proxy, name in _HEADER.items()
        for realm in map(_digest_realm, request.headers.get_all(name))
        if realm is not None
    }


# --- the server (RFC 3261 §22.1, §22.3; RFC 7616 §3.3, §3.4) -----------------------------


class Outcome(enum.Enum):
    """What a server makes of a request's credentials."""

    AUTHORIZED = "authorized"
    MISSING = "missing"  # no credentials for this realm: challenge
    STALE = "stale"  # right password, nonce expired, foreign or replayed: challenge, stale=true
    REJECTED = "rejected"  # wrong password or unknown user: challenge again (or 403)
    MALFORMED = "malformed"  # credentials that cannot be checked: 400


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome, the final status to answer with (None when authorized) and why.

    ``username`` is the authenticated (or claimed) user; a registrar or proxy still
    checks that it may act for the To or From user (RFC 3261 §10.3 step 4).
    """

    outcome: Outcome
    status: int | None
    reason: str
    username: str | None = None

    @property
    def authorized(self) -> bool:
        return self.outcome is Outcome.AUTHORIZED


_NC_RE = re.compile(r"[0-9A-Fa-f]{8}")
# Nonce = timestamp (ms, 8 octets) | salt (8 octets) | HMAC-SHA-256 truncated to 16 octets.
_STAMP = struct.Struct(">q")
_SALT_SIZE = 8
_MAC_SIZE = 16
# Anti-replay window per nonce, as in RFC 4303 §3.4.3: nc values this far below the
# highest seen may still arrive late (parallel transactions over UDP).
_NC_WINDOW = 64
_WINDOW_MASK = (1 << _NC_WINDOW) - 1


@dataclass(slots=True)
class _NonceUse:
    """The nonce counts a server has accepted for one nonce: the highest and a window below."""

    issued: float
    highest: int = 0
    window: int = 0  # bit i set: highest - i was seen

    def accept(self, nc: int) -> bool:
        if nc > self.highest:
            shift = nc - self.highest  # up to 2**32: shift no further than the window
            self.window = (self.window << shift | 1) & _WINDOW_MASK if shift < _NC_WINDOW else 1
            self.highest = nc
            return True
        offset = self.highest - nc
        if offset >= _NC_WINDOW or self.window >> offset & 1:
            return False
        self.window |= 1 << offset
        return True


class DigestServer:
    """Challenges requests and verifies their credentials for one realm (RFC 3261 §22).

    ``lookup`` gives the password of a username (None: no such user). A UAS or registrar
    answers 401 with WWW-Authenticate; with ``proxy`` the server answers 407 with
    Proxy-Authenticate and reads Proxy-Authorization (§22.3). ``algorithms`` are offered
    one challenge each, most preferred first (RFC 8760 §2.3): SIPp 3.6 answers only MD5
    and only the first challenge, so offer ``("MD5",)`` to it. ``qop`` empty offers the
    RFC 2069 form without qop (no replay protection beyond the nonce lifetime).

    Nonces are stateless: a timestamp and salt under HMAC(``secret``), so an expired or
    foreign nonce is known without a table, and a restart with a new secret turns old
    nonces stale. Nonce counts are checked for replay per nonce (RFC 7616 §3.4) in a table
    of at most ``max_nonces`` nonces; a nonce that had to be evicted is stale from then on.
    """

    def __init__(
        self,
        realm: str,
        lookup: Callable[[str], str | None],
        *,
        proxy: bool = False,
        algorithms: Iterable[str] = ("SHA-256", "MD5"),
        qop: Iterable[str] = ("auth",),
        secret: bytes | None = None,
        nonce_lifetime: float = 300.0,
        max_nonces: int = 4096,
    ) -> None:
        self.realm = realm
        self.proxy = proxy
        self.algorithms = tuple(_known_algorithm(name) for name in algorithms)
        self.qop = tuple(qop)
        if not self.algorithms:
            raise ValueError("a digest server needs at least one algorithm")
        if not set(self.qop) <= set(QOP_VALUES):
            raise ValueError(f"qop must be among {QOP_VALUES}, not {self.qop}")
        if not self.qop and any(a.session for a in self.algorithms):
            raise ValueError("-sess algorithms need qop: their HA1 uses the cnonce")
        if max_nonces < 1:
            raise ValueError("max_nonces must be at least 1")
        self._lookup = lookup
        self._secret = secrets.token_bytes(32) if secret is None else secret
        self._lifetime = nonce_lifetime
        self._max_nonces = max_nonces
        self._uses: OrderedDict[str, _NonceUse] = OrderedDict()
        self._horizon = float("-inf")  # nonces issued up to here may have been evicted

    @property
    def status(self) -> int:
        return 407 if self.proxy else 401

    def challenge(self, request: Request, now: float, *, stale: bool = False) -> Response:
        """A 401 (or 407 for a proxy) with one challenge per algorithm, one fresh nonce."""
        nonce = self._new_nonce(now)
        fields = []
        for algorithm in self.algorithms:
            params = {"realm": self.realm, "nonce": nonce, "algorithm": algorithm.name}
            if self.qop:
                params["qop"] = ",".join(self.qop)
            if stale:
                params["stale"] = "true"
            value = AuthField("Digest", params, _CHALLENGE_QUOTED)
            fields.append((_CHALLENGE_HEADER[self.proxy], str(value)))
        return make_response(request, self.status, headers=fields)

    def reject(self, request: Request, verdict: Verdict, now: float) -> Response:
        """The response for a verdict that is not OK: 400 naming the fault, or a challenge."""
        if verdict.authorized:
            raise ValueError("an authorized request is not rejected")
        if verdict.outcome is Outcome.MALFORMED:
            return make_response(request, 400, verdict.reason)
        return self.challenge(request, now, stale=verdict.outcome is Outcome.STALE)

    def verify(self, request: Request, now: float) -> Verdict:
        """Judge the credentials ``request`` carries for this realm; never raises for bad input."""
        if request.method in _UNCHALLENGED:
            return Verdict(Outcome.AUTHORIZED, None, f"{request.method} is not challenged")
        name = _HEADER[self.proxy]
        for value in request.headers.get_all(name):
            try:
                credentials = parse_auth(value)
            except SipError as error:
                return self._malformed(f"{name}: {error.reason}")
            if (
                credentials.scheme.lower() == "digest"
                and credentials.params.get("realm") == self.realm
            ):
                return self._check(request, credentials.params, now)
        return Verdict(Outcome.MISSING, self.status, f"no credentials for realm {self.realm!r}")

    def _malformed(self, reason: str, username: str | None = None) -> Verdict:
        return Verdict(Outcome.MALFORMED, 400, reason, username)

    def _check(self, request: Request, params: dict[str, str], now: float) -> Verdict:
        username = _username(params)
        if username is None:
            return self._malformed("credentials need one of username or username* (UTF-8)")
        for required in ("nonce", "uri", "response"):
            if required not in params:
                return self._malformed(f"credentials without {required}", username)
        token = params.get("algorithm", "MD5")
        algorithm = ALGORITHMS.get(token.lower())
        if algorithm is None or algorithm not in self.algorithms:
            return self._malformed(f"algorithm {token!r} was not offered", username)
        if params.get("userhash", "false").lower() != "false":
            return self._malformed("userhash was not offered", username)
        qop = params.get("qop")
        nc = params.get("nc", "")
        if qop is None:
            if self.qop:
                return self._malformed(f"qop missing; offered {','.join(self.qop)}", username)
        elif qop not in self.qop:
            return self._malformed(f"qop {qop!r} was not offered", username)
        elif "cnonce" not in params or not _NC_RE.fullmatch(nc) or int(nc, 16) == 0:
            return self._malformed("qop needs a cnonce and an nc of 8 hex digits, not 0", username)
        password = self._lookup(username)
        expected = None
        if password is not None:
            expected = request_digest(
                algorithm,
                username=username,
                realm=self.realm,
                password=password,
                method=request.method,
                uri=params["uri"],
                nonce=params["nonce"],
                qop=qop,
                nc=nc,
                cnonce=params.get("cnonce", ""),
                body=request.body,
            )
        given = params["response"].lower().encode("utf-8", "replace")
        if expected is None or not hmac.compare_digest(expected.encode(), given):
            why = "unknown user" if password is None else "wrong response (password)"
            return Verdict(Outcome.REJECTED, self.status, f"{why} for {username!r}", username)
        # RFC 7616 §3.3: stale only once the digest is right, so a wrong password never
        # loops through stale retries.
        nonce = params["nonce"]
        issued = self._issued(nonce)
        if issued is None:
            return Verdict(Outcome.STALE, self.status, "nonce not issued here", username)
        if not 0.0 <= now - issued <= self._lifetime:
            return Verdict(Outcome.STALE, self.status, "nonce expired", username)
        if qop is not None and not self._count(nonce, issued, int(nc, 16), now):
            return Verdict(Outcome.STALE, self.status, f"nonce count {nc} replayed", username)
        return Verdict(Outcome.AUTHORIZED, None, "authorized", username)

    def _mac(self, stamp_and_salt: bytes) -> bytes:
        message = stamp_and_salt + self.realm.encode("utf-8")
        return hmac.new(self._secret, message, hashlib.sha256).digest()[:_MAC_SIZE]

    def _new_nonce(self, now: float) -> str:
        # Truncated, not rounded: a stamp rounded up lies after ``now``, and an answer
        # within that half millisecond would read as expired.
        stamp_and_salt = _STAMP.pack(math.floor(now * 1000)) + secrets.token_bytes(_SALT_SIZE)
        raw = stamp_and_salt + self._mac(stamp_and_salt)
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    def _issued(self, nonce: str) -> float | None:
        """When this server issued ``nonce`` (seconds), or None if it did not."""
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (binascii.Error, ValueError):
            return None
        head = _STAMP.size + _SALT_SIZE
        if len(raw) != head + _MAC_SIZE or not hmac.compare_digest(
            raw[head:], self._mac(raw[:head])
        ):
            return None
        stamp: int = _STAMP.unpack(raw[: _STAMP.size])[0]
        return stamp / 1000

    def _count(self, nonce: str, issued: float, nc: int, now: float) -> bool:
        """Record ``nc`` for ``nonce``; False if it was seen before or cannot be told apart."""
        while self._uses:
            oldest = next(iter(self._uses.values()))
            if now - oldest.issued <= self._lifetime:
                break
            self._uses.popitem(last=False)  # expired: refused by lifetime from now on
        use = self._uses.get(nonce)
        if use is None:
            if issued <= self._horizon:
                return False
            use = self._uses[nonce] = _NonceUse(issued)
            while len(self._uses) > self._max_nonces:
                _, evicted = self._uses.popitem(last=False)
                self._horizon = max(self._horizon, evicted.issued)
        return use.accept(nc)


def _known_algorithm(name: str) -> Algorithm:
    algorithm = ALGORITHMS.get(name.lower())
    if algorithm is None:
        raise ValueError(f"unknown digest algorithm {name!r}; known: {', '.join(ALGORITHMS)}")
    return algorithm


def _username(params: dict[str, str]) -> str | None:
    """``username``, or ``username*`` decoded from RFC 8187 UTF-8 (RFC 7616 §3.4.4)."""
    extended = params.get("username*")
    if extended is None:
        return params.get("username")
    if "username" in params:
        return None  # RFC 7616 §3.4.4: never both
    charset, _, rest = extended.partition("'")
    _, _, encoded = rest.partition("'")
    if charset.lower() != "utf-8":
        return None
    try:
        return unquote(encoded, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        return None
