"""Header fields of a message: names long and compact, order and raw values kept.

Values are stored as received (unfolded, §7.3.1) so that unknown headers travel
verbatim and in order; typed values are parsed on first use and cached until the
field changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from mypy_extensions import mypyc_attr

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


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
class Headers:
    """An ordered list of ``(name, value)`` header fields with case-insensitive lookup.

    Names are kept as written (``v``, ``MaX-fOrWaRdS``); lookups accept any spelling
    and compact forms. ``typed`` caches parsed values per key and is cleared for a key
    whenever a field of that key changes.
    """

    # Four parallel tuples, one entry per field: its key (lower case, compact forms
    # expanded), its name as written, its value and its line ``name: value`` as it is
    # sent. Lookups by key (``index``, ``count``) run in C; a change replaces the tuples,
    # so that what was read from them (a FieldList) stays as it was.
    __slots__ = ("_keys", "_lines", "_names", "_values", "typed")

    _keys: tuple[str, ...]
    _names: tuple[str, ...]
    _values: tuple[str, ...]
    _lines: tuple[str, ...]
    typed: dict[str, Any]

    def __init__(self, fields: Iterable[Sequence[str]] = ()) -> None:
        """``fields``: (name, value) pairs, as tuples or as any two-item sequence (a list
        read from JSON, such as ``voip parse`` writes; compiled code checks the declared
        type at run time, so the pairs are declared as sequences and made tuples here)."""
        if fields == ():
            self._keys = self._names = self._values = self._lines = ()
            self.typed = {}
            return
        pairs = [(name, value) for name, value in fields]
        self._keys = tuple(header_key(name) for name, _ in pairs)
        self._names = tuple(name for name, _ in pairs)
        self._values = tuple(value for _, value in pairs)
        self._lines = tuple(f"{name}: {value}" for name, value in pairs)
        self.typed = {}

    @classmethod
    def _parsed(
        cls,
        keys: tuple[str, ...],
        names: tuple[str, ...],
        values: tuple[str, ...],
        lines: tuple[str, ...],
    ) -> Headers:
        """Fields read off the wire; ``lines[i]`` must be ``f"{names[i]}: {values[i]}"``."""
        headers = cls()
        headers._keys = keys
        headers._names = names
        headers._values = values
        headers._lines = lines
        headers.typed = {}
        return headers

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return zip(self._names, self._values, strict=True)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return header_key(name) in self._keys

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._names == other._names and self._values == other._values

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Headers({list(self)!r})"

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of the first field called ``name``."""
        value = self.first(header_key(name))
        return default if value is None else value

    def first(self, key: str) -> str | None:
        """``get`` for a key already in canonical form (lower case, compact expanded)."""
        keys = self._keys
        if key in keys:
            return self._values[keys.index(key)]
        return None

    def get_all(self, name: str) -> list[str]:
        """The value of every field called ``name``, one per header line."""
        return self._all(header_key(name))

    def _all(self, key: str) -> list[str]:
        return field_values(self._keys, self._values, key)

    def values(self, name: str, allow_empty: bool = False) -> list[str]:
        """The elements of a list header across all its lines, split at top-level commas.

        An empty field is a 400 unless ``allow_empty`` (``Accept:`` empty means "no body
        types", §20.1)."""
        return self._items(header_key(name), allow_empty)

    def _items(self, key: str, allow_empty: bool = False) -> list[str]:
        return list_items(self._all(key), allow_empty)

    def count(self, name: str) -> int:
        return self._keys.count(header_key(name))

    def keys(self) -> list[str]:
        """The distinct header keys in order of first appearance."""
        return list(dict.fromkeys(self._keys))

    def _put(self, index: int, keys: list[str], names: list[str], values: list[str]) -> None:
        """Replace the fields from ``index`` on by the given ones."""
        self._keys = (*self._keys[:index], *keys)
        self._names = (*self._names[:index], *names)
        self._values = (*self._values[:index], *values)
        self._lines = (
            *self._lines[:index],
            *(f"{name}: {value}" for name, value in zip(names, values, strict=True)),
        )

    def add(self, name: str, value: str) -> None:
        """Append a field at the end."""
        key = header_key(name)
        self.typed.pop(key, None)
        self._keys = (*self._keys, key)
        self._names = (*self._names, name)
        self._values = (*self._values, value)
        self._lines = (*self._lines, f"{name}: {value}")

    def insert(self, name: str, value: str) -> None:
        """Put a field before the first field of the same name (a new top Via, Route …)."""
        key = header_key(name)
        keys = self._keys
        self._insert_at(keys.index(key) if key in keys else len(keys), name, value)

    def _insert_at(self, index: int, name: str, value: str) -> None:
        key = header_key(name)
        self.typed.pop(key, None)
        self._put(
            index,
            [key, *self._keys[index:]],
            [name, *self._names[index:]],
            [value, *self._values[index:]],
        )

    def set(self, name: str, value: str) -> None:
        """Replace every field called ``name`` with one field, where the first one was."""
        self.set_all(name, [value])

    def set_all(self, name: str, values: Iterable[str]) -> None:
        """Replace every field called ``name`` with one field per value, in place."""
        key = header_key(name)
        self.typed.pop(key, None)
        new = list(values)
        keys = self._keys
        if len(new) == 1 and keys.count(key) == 1:
            # one field for one (Content-Length when a body is set): replaced where it is
            at = keys.index(key)
            value = new[0]
            self._names = (*self._names[:at], name, *self._names[at + 1 :])
            self._values = (*self._values[:at], value, *self._values[at + 1 :])
            self._lines = (*self._lines[:at], f"{name}: {value}", *self._lines[at + 1 :])
            return
        at = keys.index(key) if key in keys else len(keys)
        rest = [i for i in range(at, len(keys)) if keys[i] != key]
        self._put(
            at,
            [key] * len(new) + [keys[i] for i in rest],
            [name] * len(new) + [self._names[i] for i in rest],
            new + [self._values[i] for i in rest],
        )

    def remove(self, name: str) -> None:
        key = header_key(name)
        self.typed.pop(key, None)
        keys = self._keys
        if key in keys:
            at = keys.index(key)
            rest = [i for i in range(at, len(keys)) if keys[i] != key]
            self._put(
                at,
                [keys[i] for i in rest],
                [self._names[i] for i in rest],
                [self._values[i] for i in rest],
            )

    def copy(self) -> Headers:
        return Headers._parsed(self._keys, self._names, self._values, self._lines)

    def render(self) -> str:
        """``Name: value CRLF`` for every field, in order."""
        return "".join([line + "\r\n" for line in self._lines])


def field_values(keys: tuple[str, ...], values: tuple[str, ...], key: str) -> list[str]:
    """The values of the fields of ``key``, in order, from a Headers' parallel tuples."""
    count = keys.count(key)
    if count == 1:
        return [values[keys.index(key)]]
    out = []
    at = -1
    for _ in range(count):
        at = keys.index(key, at + 1)
        out.append(values[at])
    return out


def list_items(lines: list[str], allow_empty: bool = False) -> list[str]:
    """The elements of a list header's lines, split at top-level commas (§7.3.1).

    An empty field is a 400 unless ``allow_empty``."""
    if "" not in lines and "," not in "".join(lines):
        return lines
    out: list[str] = []
    for value in lines:
        if "," in value:
            out.extend(split_list(value))
        elif value:
            out.append(value)
        elif not allow_empty:
            raise SipError(400, "empty header value")
    return out
