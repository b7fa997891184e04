"""Header fields of a message: names long and compact, order and raw values kept.

Values are stored as received (unfolded, §7.3.1) so that unknown headers travel
verbatim and in order; typed values are parsed on first use and cached until the
field changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from voip.sip.errors import SipError
from voip.sip.grammar import split_list

# RFC 3261 §7.3.3 and §20, RFC 3265, RFC 3515, RFC 3892, RFC 4028, RFC 3841, RFC 4474.
COMPACT_FORMS: dict[str, str] = {
    "a": "accept-contact",
    "b": "referred-by",
    "c": "content-type",
    "d": "request-disposition",
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",
    "o": "event",
    "r": "refer-to",
    "s": "subject",
    "t": "to",
    "u": "allow-events",
    "v": "via",
    "x": "session-expires",
    "y": "identity",
}

# How this toolkit writes the names it builds itself.
CANONICAL_NAMES: dict[str, str] = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "www-authenticate": "WWW-Authenticate",
    "rack": "RAck",
    "rseq": "RSeq",
    "min-se": "Min-SE",
    "mime-version": "MIME-Version",
    "sip-etag": "SIP-ETag",
    "sip-if-match": "SIP-If-Match",
}

# Header fields whose value is a comma-separated list (§7.3.1); the others hold one
# value each, even where the value itself contains commas (Date, WWW-Authenticate …).
LIST_HEADERS = frozenset(
    {
        "accept",
        "accept-encoding",
        "accept-language",
        "alert-info",
        "allow",
        "allow-events",
        "call-info",
        "contact",
        "content-encoding",
        "content-language",
        "error-info",
        "in-reply-to",
        "path",
        "proxy-require",
        "reason",
        "record-route",
        "require",
        "route",
        "service-route",
        "supported",
        "unsupported",
        "via",
        "warning",
    }
)


def header_key(name: str) -> str:
    """The case-insensitive key of a header name, compact forms expanded."""
    key = name.lower()
    return COMPACT_FORMS.get(key, key)


def canonical_name(key: str) -> str:
    """The usual spelling of a header key: ``call-id`` → ``Call-ID``."""
    name = CANONICAL_NAMES.get(key)
    if name is None:
        name = "-".join(part.capitalize() for part in key.split("-"))
    return name


class Headers:
    """An ordered list of ``(name, value)`` header fields with case-insensitive lookup.

    Names are kept as written (``v``, ``MaX-fOrWaRdS``); lookups accept any spelling
    and compact forms. ``typed`` caches parsed values per key and is cleared for a key
    whenever a field of that key changes.
    """

    __slots__ = ("_fields", "typed")

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields: list[tuple[str, str, str]] = [
            (header_key(name), name, value) for name, value in fields
        ]
        self.typed: dict[str, Any] = {}

    @classmethod
    def _from_keyed(cls, fields: list[tuple[str, str, str]]) -> Headers:
        headers = cls.__new__(cls)
        headers._fields = fields
        headers.typed = {}
        return headers

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for _, name, value in self._fields:
            yield name, value

    def __len__(self) -> int:
        return len(self._fields)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = header_key(name)
        return any(k == key for k, _, _ in self._fields)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Headers({list(self)!r})"

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of the first field called ``name``."""
        key = header_key(name)
        for k, _, value in self._fields:
            if k == key:
                return value
        return default

    def first(self, key: str) -> str | None:
        """``get`` for a key already in canonical form (lower case, compact expanded)."""
        for k, _, value in self._fields:
            if k == key:
                return value
        return None

    def get_all(self, name: str) -> list[str]:
        """The value of every field called ``name``, one per header line."""
        key = header_key(name)
        return [value for k, _, value in self._fields if k == key]

    def values(self, name: str, allow_empty: bool = False) -> list[str]:
        """The elements of a list header across all its lines, split at top-level commas.

        An empty field is a 400 unless ``allow_empty`` (``Accept:`` empty means "no body
        types", §20.1)."""
        key = header_key(name)
        out: list[str] = []
        for k, _, value in self._fields:
            if k == key:
                if "," in value:
                    out.extend(split_list(value))
                elif value:
                    out.append(value)
                elif not allow_empty:
                    raise SipError(400, "empty header value")
        return out

    def count(self, name: str) -> int:
        key = header_key(name)
        return sum(1 for k, _, _ in self._fields if k == key)

    def keys(self) -> list[str]:
        """The distinct header keys in order of first appearance."""
        return list(dict.fromkeys(k for k, _, _ in self._fields))

    def add(self, name: str, value: str) -> None:
        """Append a field at the end."""
        key = header_key(name)
        self.typed.pop(key, None)
        self._fields.append((key, name, value))

    def insert(self, name: str, value: str) -> None:
        """Put a field before the first field of the same name (a new top Via, Route …)."""
        key = header_key(name)
        self.typed.pop(key, None)
        for i, (k, _, _) in enumerate(self._fields):
            if k == key:
                self._fields.insert(i, (key, name, value))
                return
        self._fields.append((key, name, value))

    def set(self, name: str, value: str) -> None:
        """Replace every field called ``name`` with one field, where the first one was."""
        self.set_all(name, [value])

    def set_all(self, name: str, values: Iterable[str]) -> None:
        """Replace every field called ``name`` with one field per value, in place."""
        key = header_key(name)
        self.typed.pop(key, None)
        new = [(key, name, value) for value in values]
        for i, (k, _, _) in enumerate(self._fields):
            if k == key:
                self._fields[i : i + 1] = new
                self._fields[i + len(new) :] = [
                    f for f in self._fields[i + len(new) :] if f[0] != key
                ]
                return
        self._fields.extend(new)

    def remove(self, name: str) -> None:
        key = header_key(name)
        self.typed.pop(key, None)
        self._fields = [f for f in self._fields if f[0] != key]

    def copy(self) -> Headers:
        return Headers._from_keyed(list(self._fields))

    def render(self) -> str:
        """``Name: value CRLF`` for every field, in order."""
        return "".join([f"{name}: {value}\r\n" for _, name, value in self._fields])
