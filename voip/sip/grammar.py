"""Lexical pieces of the RFC 3261 §25 grammar shared by every header parser.

Everything here works on header values that are already unfolded (§7.3.1: a CRLF
followed by whitespace is one SP), so LWS is spaces and tabs only.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from voip.sip.errors import SipError

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
# A value that serializes without quotes: a token, or a host such as an IPv6 reference.
_BARE_VALUE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~:\[\]]+")
_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_WSP = " \t"

MAX_UINT32 = 2**32 - 1

# The methods of RFC 3261 and its extensions (RFC 3262, 3265, 3311, 3428, 3515, 3903,
# 6086): tokens known to be valid, so that the common path need not check them.
METHODS = frozenset(
    {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "UPDATE", "INFO"}
    | {"MESSAGE", "REFER", "NOTIFY", "SUBSCRIBE", "PUBLISH"}
)


def is_token(text: str) -> bool:
    return TOKEN_RE.fullmatch(text) is not None


def bad(reason: str) -> SipError:
    """A 400 Bad Request naming what was wrong."""
    return SipError(400, reason)


def unescape(text: str, where: str) -> str:
    """Decode %HH escapes once (RFC 3261 §19.1.2), where the grammar allows ``escaped``.

    Octets are UTF-8 where they can be; others survive as surrogates so that
    escaping again gives the same octets back. ``%2541`` decodes to ``%41``, not ``A``.
    """
    if "%" not in text:
        return text
    if _BAD_ESCAPE_RE.search(text):
        raise bad(f"{where}: '%' not followed by two hex digits in {text!r}")
    return unquote(text, errors="surrogateescape")


# What urllib.parse.quote never escapes.
_ALWAYS_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~"


def escape(text: str, safe: str) -> str:
    """Escape every character outside ``unreserved`` and ``safe`` as %HH of its UTF-8."""
    if not text.rstrip(_ALWAYS_SAFE + safe):
        return text  # nothing to escape (as quote finds, without encoding the text)
    return quote(text, safe=safe, errors="surrogateescape")


def parse_uint(text: str, what: str, limit: int = MAX_UINT32) -> int:
    """A decimal number of at most ``limit`` (RFC 4475 §3.1.2.4: no silent overflow)."""
    digits = text.strip(_WSP)
    if not digits.isdigit() or not digits.isascii():
        raise bad(f"{what} is not a number: {text.strip()!r}")
    value = int(digits)
    if value > limit:
        raise bad(f"{what} {digits} exceeds {limit}")
    return value


def scan_quoted(text: str, start: int) -> tuple[str, int]:
    """Read the quoted-string that opens at ``text[start]``; return its content and end.

    quoted-pair (``\\`` followed by any octet but CR and LF) yields the octet itself.
    """
    out: list[str] = []
    i = start + 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            return "".join(out), i + 1
        if c == "\\":
            if i + 1 >= n:
                break
            out.append(text[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    raise bad(f"unterminated quoted string in {text.strip()!r}")


def quote_string(text: str) -> str:
    """The quoted-string form of ``text``, escaping ``"`` and ``\\`` (§25.1)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def split_top(text: str, sep: str) -> list[str]:
    """Split at ``sep`` outside quoted strings and angle brackets (§7.3.1)."""
    if '"' not in text and "<" not in text:
        return text.split(sep)
    parts: list[str] = []
    begin = 0
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i = scan_quoted(text, i)[1]
            continue
        if c == "<":
            close = text.find(">", i)
            if close < 0:
                raise bad(f"'<' without '>' in {text.strip()!r}")
            i = close + 1
            continue
        if c == sep:
            parts.append(text[begin:i])
            begin = i + 1
        i += 1
    parts.append(text[begin:])
    return parts


def split_list(value: str) -> list[str]:
    """The elements of a comma-separated header value, stripped; empty ones rejected."""
    if "," not in value:
        item = value.strip(_WSP)
        if not item:
            raise bad("empty header value")
        return [item]
    items = [p.strip(_WSP) for p in split_top(value, ",")]
    if "" in items:
        raise bad(f"empty element in list {value.strip()!r}")
    return items


def split_tokens(value: str) -> tuple[str, ...]:
    """A comma-separated list of tokens (Allow, Supported, Require …); may be empty."""
    items = tuple(p.strip(_WSP) for p in value.split(","))
    if items == ("",):
        return ()
    for item in items:
        if not is_token(item):
            raise bad(f"not a token: {item!r} in {value.strip()!r}")
    return items


def parse_params(text: str, where: str) -> dict[str, str | None]:
    """``*( SEMI generic-param )`` with the leading ``;`` already removed.

    Names are case-insensitive and kept lower-case; quoted values are unquoted.
    LWS is allowed around ``;`` and ``=`` (§25.1 SEMI, EQUAL).
    """
    params: dict[str, str | None] = {}
    for piece in split_top(text, ";"):
        name, eq, value = piece.partition("=")
        name = name.strip(_WSP)
        if not is_token(name):
            if not name:
                raise bad(f"{where}: empty parameter")
            raise bad(f"{where}: bad parameter name {name!r}")
        if not eq:
            params[name.lower()] = None
            continue
        value = value.strip(_WSP)
        if value.startswith('"'):
            content, end = scan_quoted(value, 0)
            if end != len(value):
                raise bad(f"{where}: text after quoted value of {name!r}")
            params[name.lower()] = content
        elif _BARE_VALUE_RE.fullmatch(value):
            params[name.lower()] = value
        else:
            raise bad(f"{where}: bad value {value!r} for parameter {name!r}")
    return params


# ";name=value" parameters with no LWS, quotes or empty parts: the common case, which
# ``split_simple_params`` reads with plain splits (``parse_params`` agrees on it).
_SIMPLE_NAME = r"[A-Za-z0-9\-.!%*_+`'~]++"
_SIMPLE_VALUE = r"[A-Za-z0-9\-.!%*_+`'~:\[\]]++"
SIMPLE_PARAMS = f"(?:;{_SIMPLE_NAME}(?:={_SIMPLE_VALUE})?+)*+"
# The same in three groups: the first parameter's name and value, then the others.
# Most values carry one parameter (a tag, a branch), which is then read without a split.
FIRST_SIMPLE_PARAMS = f"(?:;({_SIMPLE_NAME})(?:=({_SIMPLE_VALUE}))?+)?+({SIMPLE_PARAMS})"


def split_simple_params(text: str) -> dict[str, str | None]:
    """Parameters matched by ``SIMPLE_PARAMS`` (leading ``;`` included)."""
    params: dict[str, str | None] = {}
    for piece in text[1:].split(";"):
        name, eq, value = piece.partition("=")
        params[name.lower()] = value if eq else None
    return params


def format_params(params: dict[str, str | None]) -> str:
    """``;name=value`` for each parameter, quoting values that are not tokens or hosts."""
    out = []
    for name, value in params.items():
        if value is None:
            out.append(f";{name}")
        elif _BARE_VALUE_RE.fullmatch(value):
            out.append(f";{name}={value}")
        else:
            out.append(f";{name}={quote_string(value)}")
    return "".join(out)
