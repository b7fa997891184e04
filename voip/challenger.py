"""Challenging incoming requests (RFC 3261 §22.1, §22.3, §22.4): the UAS side of digest.

A :class:`Challenger` says which requests an agent challenges and holds the
:class:`~voip.sip.auth.DigestServer` that judges them: requests outside a dialog by method
(INVITE by default; MESSAGE, OPTIONS, SUBSCRIBE … when asked), and requests within a
dialog by method too (none by default, since the far end of a call this agent placed
has no reason to hold credentials for it). ACK and CANCEL are never challenged: they
cannot be resubmitted (§22.1).

The UAC answers a 401 with the same request again (same Call-ID and From tag, CSeq one
more, a new branch), so a challenged INVITE leaves nothing behind here: its retry is the
call. The nonces are the digest server's stateless ones; it counts nonce uses (replay),
and a nonce past its lifetime, foreign, or replayed draws a challenge with
``stale=true`` (RFC 7616 §3.3) once the digest itself is right.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from voip.sip import Request, Response
from voip.sip.auth import DigestServer, Verdict

__all__ = ["DEFAULT_CHALLENGED", "Challenger"]

#: Requests outside a dialog that are challenged unless told otherwise.
DEFAULT_CHALLENGED = frozenset({"INVITE"})
_NEVER = frozenset({"ACK", "CANCEL"})


@dataclass(slots=True)
class Challenger:
    """Which requests to challenge and the digest server that judges their credentials."""

    server: DigestServer
    methods: frozenset[str] = DEFAULT_CHALLENGED
    in_dialog: frozenset[str] = frozenset()

    @classmethod
    def for_users(
        cls,
        realm: str,
        users: Mapping[str, str] | Callable[[str], str | None],
        *,
        methods: Collection[str] = DEFAULT_CHALLENGED,
        in_dialog: Collection[str] = (),
        proxy: bool = False,
        algorithms: Collection[str] = ("SHA-256", "MD5"),
        nonce_lifetime: float = 300.0,
        secret: bytes | None = None,
    ) -> Challenger:
        """A challenger for ``users`` (username → password, or a lookup) in ``realm``.

        ``proxy`` answers 407 with Proxy-Authenticate (§22.3) instead of 401. SIPp 3.6
        answers only an MD5 challenge, and only the first: give it ``("MD5",)``.
        """
        lookup = users.get if isinstance(users, Mapping) else users
        server = DigestServer(
            realm,
            lookup,
            proxy=proxy,
            algorithms=tuple(algorithms),
            nonce_lifetime=nonce_lifetime,
            secret=secret,
        )
        return cls(server, _methods(methods), _methods(in_dialog))

    def challenges(self, request: Request) -> bool:
        """Whether ``request`` must carry credentials (a To tag marks it within a dialog)."""
        method = request.method
        if method in _NEVER:
            return False
        return method in (self.in_dialog if request.to.tag else self.methods)

    def verify(self, request: Request, now: float) -> Verdict | None:
        """The digest server's verdict on a challenged request; None when not challenged."""
        if not self.challenges(request):
            return None
        return self.server.verify(request, now)

    def reject(self, request: Request, verdict: Verdict, now: float) -> Response:
        """The 401/407 (a fresh nonce; ``stale=true`` when the nonce was the fault) or 400."""
        return self.server.reject(request, verdict, now)


def _methods(methods: Collection[str]) -> frozenset[str]:
    return frozenset(method.upper() for method in methods)
