"""SIP, SIPS and tel URIs (RFC 3261 §19.1, §25.1; RFC 3966; IPv6 references per RFC 5118).

Escapes are decoded exactly where the grammar has ``escaped`` (user, password,
parameter names and values, header names and values) and only once; the host is
never unescaped. Serializing escapes again whatever the grammar does not allow bare.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from mypy_extensions import mypyc_attr

from voip.sip.errors import SipError
from voip.sip.grammar import bad, escape, split_simple_params, unescape

# user = 1*( unreserved / escaped / user-unreserved ); '#' is not in the grammar but
# is common in the wild (feature codes such as *21#) and unambiguous, so it is accepted
# on input and escaped on output.
_USER_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/#]|%[0-9A-Fa-f]{2})+")
_PASSWORD_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()&=+$,]|%[0-9A-Fa-f]{2})*")
_PARAM_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()\[\]/:&+$]|%[0-9A-Fa-f]{2})+")
_HEADER_PART_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$]|%[0-9A-Fa-f]{2})*")
# Labels of alphanumerics (and '_') joined by hyphens, dot-separated, one final dot
# allowed. Written with possessive quantifiers: the grammar is unambiguous, so no
# backtracking is ever needed, and the engine runs markedly faster without it.
_LABEL = r"[A-Za-z0-9_]++(?:-++[A-Za-z0-9_]++)*+"
HOSTNAME = f"{_LABEL}(?:\\.{_LABEL})*+\\.?+"
_HOSTNAME_RE = re.compile(HOSTNAME)
# The common case in one match: no escapes, no URI headers, no IPv6 reference. Whatever
# it accepts, the full parser below accepts alike; anything else goes to the full parser.
# Its eight groups (scheme, user, password, host, port, then the first parameter's name
# and value and the other parameters) make a SipUri with ``sip_uri_of``; name-addr
# values match it inside their own pattern.
_URI_PARAM = r"[A-Za-z0-9\-_.!~*'()\[\]/:&+$]++"
# A host in the characters of a hostname; ``is_hostname`` tells whether it is one. The
# structure of HOSTNAME costs the regex engine more than that check does afterwards.
FLAT_HOST = r"[A-Za-z0-9_.\-]++"
FAST_SIP_URI = (
    r"(sips?):(?:([A-Za-z0-9\-_.!~*'()&=+$,;?/]++)(?::([A-Za-z0-9\-_.!~*'()&=+$,]*+))?@)?"
    f"({FLAT_HOST})"
    r"(?::([0-9]{1,5}))?+"
    f"(?:;({_URI_PARAM})(?:=({_URI_PARAM}))?+)?+((?:;{_URI_PARAM}(?:={_URI_PARAM})?+)*+)"
)
_FAST_SIP_RE = re.compile(FAST_SIP_URI)
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_TEL_RE = re.compile(r"[0-9A-Fa-f*#+\-.()pPwW]+")

# What each part may carry unescaped besides alphanumerics and "-_.~" (§25.1).
_USER_SAFE = "!*'()&=+$,;?/"
_PASSWORD_SAFE = "!*'()&=+$,"
_PARAM_SAFE = "!*'()[]/:&+$"
_HEADER_SAFE = "!*'()[]/?:+$"

MAX_PORT = 65535


def _bad_uri(text: str, why: str) -> SipError:
    return bad(f"bad URI {text!r}: {why}")


def is_hostname(host: str) -> bool:
    """Whether a non-empty run of FLAT_HOST characters is a HOSTNAME. Without a hyphen
    it is one unless a label is empty, which the hot paths test inline first."""
    if "-" in host or ".." in host or host[0] == ".":
        return _HOSTNAME_RE.fullmatch(host) is not None
    return True


def check_host(host: str, text: str) -> str:
    """Validate a hostname, IPv4 address or bracketed IPv6 reference; return it unchanged."""
    if host.startswith("["):
        if not host.endswith("]"):
            raise _bad_uri(text, "IPv6 reference without ']'")
        address = host[1:-1]
        try:
            ipaddress.IPv6Address(address)
        except ValueError:
            # RFC 5118 §4.10: the RFC 3261 ABNF admits a third colon before an embedded
            # IPv4 address; tolerate it as the robustness principle asks.
            try:
                ipaddress.IPv6Address(address.replace(":::", "::", 1))
            except ValueError:
                raise _bad_uri(text, f"{host} is not an IPv6 address") from None
        return host
    if not _HOSTNAME_RE.fullmatch(host):
        raise _bad_uri(text, f"bad host {host!r}")
    return host


def split_hostport(hostport: str, text: str) -> tuple[str, int | None]:
    """``host [":" port]`` with IPv6 references in brackets (RFC 5118 §4.3)."""
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0:
            raise _bad_uri(text, "IPv6 reference without ']'")
        host, rest = hostport[: close + 1], hostport[close + 1 :]
        if not rest:
            return check_host(host, text), None
        if not rest.startswith(":"):
            raise _bad_uri(text, f"unexpected {rest!r} after IPv6 reference")
        port_text = rest[1:]
    else:
        host, colon, port_text = hostport.partition(":")
        if not colon:
            return check_host(host, text), None
    if not port_text.isdigit() or not port_text.isascii() or int(port_text) > MAX_PORT:
        raise _bad_uri(text, f"bad port {port_text!r}")
    return check_host(host, text), int(port_text)


def format_host(host: str) -> str:
    """A host for a URI or Via: bare IPv6 addresses get their brackets."""
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(slots=True)
class SipUri:
    """``sip:`` or ``sips:`` URI. ``user``, ``password``, parameter and header values are
    unescaped; ``host`` is as written (brackets kept for IPv6)."""

    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: tuple[tuple[str, str], ...] = ()
    scheme: str = "sip"

    def __init__(  # noqa: PLR0917  # positional, as @dataclass made it
        self,
        host: str,
        user: str | None = None,
        password: str | None = None,
        port: int | None = None,
        params: dict[str, str | None] | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        scheme: str = "sip",
    ) -> None:
        # Written out rather than made by @dataclass: compiled, this one is native code
        # (a call makes several URIs); the generated one stays interpreted.
        self.host = host
        self.user = user
        self.password = password
        self.port = port
        self.params = {} if params is None else params
        self.headers = headers
        self.scheme = scheme

    @property
    def secure(self) -> bool:
        return self.scheme == "sips"

    @property
    def transport(self) -> str | None:
        value = self.params.get("transport")
        return value.lower() if value else None

    @property
    def lr(self) -> bool:
        return "lr" in self.params

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(escape(self.user, _USER_SAFE))
            if self.password is not None:
                out.append(":" + escape(self.password, _PASSWORD_SAFE))
            out.append("@")
        out.append(format_host(self.host))
        if self.port is not None:
            out.append(f":{self.port}")
        for name, value in self.params.items():
            out.append(";" + escape(name, _PARAM_SAFE))
            if value is not None:
                out.append("=" + escape(value, _PARAM_SAFE))
        if self.headers:
            out.append("?")
            out.append(
                "&".join(
                    f"{escape(n, _HEADER_SAFE)}={escape(v, _HEADER_SAFE)}" for n, v in self.headers
                )
            )
        return "".join(out)


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(slots=True)
class TelUri:
    """``tel:`` URI (RFC 3966): a global (+…) or local number and its parameters."""

    number: str
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def is_global(self) -> bool:
        return self.number.startswith("+")

    def __str__(self) -> str:
        out = ["tel:", self.number]
        for name, value in self.params.items():
            out.append(f";{name}" if value is None else f";{name}={value}")
        return "".join(out)


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(slots=True)
class AbsoluteUri:
    """Any other scheme (RFC 3261 absoluteURI): kept opaque, compared by its text."""

    scheme: str
    rest: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"


Uri = SipUri | TelUri | AbsoluteUri


def _parse_uri_params(text: str, pieces: list[str]) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    for piece in pieces:
        name, eq, value = piece.partition("=")
        if not _PARAM_RE.fullmatch(name) or (eq and not _PARAM_RE.fullmatch(value)):
            raise _bad_uri(text, f"bad parameter {piece!r}")
        key = unescape(name, "URI parameter").lower()
        params[key] = unescape(value, "URI parameter") if eq else None
    return params


def parse_sip_uri(text: str, scheme: str, rest: str) -> SipUri:
    # The first '@' ends the userinfo: '@' may appear nowhere else unescaped (§25.1),
    # while ';' and '?' may appear inside the user part (RFC 4475 §3.1.1.9).
    user: str | None = None
    password: str | None = None
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user_text, colon, password_text = userinfo.partition(":")
        if not _USER_RE.fullmatch(user_text):
            raise _bad_uri(text, f"bad user part {user_text!r}")
        user = unescape(user_text, "URI user")
        if colon:
            if not _PASSWORD_RE.fullmatch(password_text):
                raise _bad_uri(text, "bad password")
            password = unescape(password_text, "URI password")
    rest, question, header_text = rest.partition("?")
    hostport, *param_pieces = rest.split(";")
    host, port = split_hostport(hostport, text)
    params = _parse_uri_params(text, param_pieces) if param_pieces else {}
    headers: tuple[tuple[str, str], ...] = ()
    if question:
        pairs = []
        for pair in header_text.split("&"):
            name, eq, value = pair.partition("=")
            if (
                not name
                or not eq
                or not _HEADER_PART_RE.fullmatch(name)
                or not _HEADER_PART_RE.fullmatch(value)
            ):
                raise _bad_uri(text, f"bad header {pair!r}")
            pairs.append((unescape(name, "URI header"), unescape(value, "URI header")))
        headers = tuple(pairs)
    return SipUri(host, user, password, port, params, headers, scheme)


def parse_tel_uri(text: str, rest: str) -> TelUri:
    number, *pieces = rest.split(";")
    if not _TEL_RE.fullmatch(number):
        raise _bad_uri(text, f"bad telephone number {number!r}")
    params: dict[str, str | None] = {}
    for piece in pieces:
        name, eq, value = piece.partition("=")
        if not name or not _PARAM_RE.fullmatch(name) or (eq and not _PARAM_RE.fullmatch(value)):
            raise _bad_uri(text, f"bad parameter {piece!r}")
        params[name.lower()] = value if eq else None
    return TelUri(number, params)


def sip_uri_of(groups: tuple[str | Any, ...]) -> SipUri | None:
    """The SipUri of the groups of ``FAST_SIP_URI``; None for a port beyond 65535."""
    scheme, user, password, host, port_text, name, value, others = groups
    if ("-" in host or ".." in host or host[0] == ".") and not is_hostname(host):
        return None
    port = None
    if port_text is not None:
        port = int(port_text)
        if port > MAX_PORT:
            return None
    params = {} if name is None else {name.lower(): value}
    if others:
        params.update(split_simple_params(others))
    return SipUri(host, user, password, port, params, (), scheme)


def parse_uri(text: str) -> Uri:
    """Parse a URI as it appears in a Request-URI or inside ``<>``; no surrounding LWS."""
    fast = _FAST_SIP_RE.fullmatch(text)
    if fast is not None:
        uri = sip_uri_of(fast.groups())
        if uri is not None:
            return uri
    scheme, colon, rest = text.partition(":")
    if not colon or not _SCHEME_RE.fullmatch(scheme):
        raise _bad_uri(text, "no scheme")
    lower = scheme.lower()
    if lower in ("sip", "sips"):
        return parse_sip_uri(text, lower, rest)
    if lower == "tel":
        return parse_tel_uri(text, rest)
    if not rest or any(c.isspace() for c in rest):
        raise _bad_uri(text, "empty or contains whitespace")
    return AbsoluteUri(lower, rest)
