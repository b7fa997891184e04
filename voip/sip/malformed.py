"""Answering a request that could not be parsed (RFC 3261 §8.2.6.2, §18.3; RFC 4475 §3.1.2).

A message can fail to parse (a bad start line, an unreadable or conflicting
Content-Length, a header line without a colon) and still name its transaction: a
response needs only the request's Via, From, To, Call-ID and CSeq, copied as they came
(§8.2.6.2). :func:`answerable` reads just those, leniently, so that the sender hears what
was wrong (a 400 whose reason phrase says it, a 505 for another SIP version) instead of
retransmitting into silence. A response is never answered (§18.1.2: it is discarded),
nor an ACK (§17.2.1), nor a request without a Via to send the answer back by.
"""

from __future__ import annotations

import re

from voip.sip.grammar import is_token
from voip.sip.headers import Headers, canonical_name, header_key
from voip.sip.message import Request

__all__ = ["answerable", "reason_phrase"]

# §8.2.6.2: what a response copies from its request.
_COPIED = frozenset({"via", "from", "to", "call-id", "cseq"})
_FOLD_RE = re.compile(r"\r?\n[ \t]+")
_LINE_RE = re.compile(r"\r?\n")
# Octets that may not appear in a header value or a reason phrase (CR, LF, NUL and the
# other controls but HTAB, §25.1 TEXT-UTF8char / LWS).
_CONTROLS_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_MAX_PHRASE = 200


def _header_section(data: bytes) -> str:
    data = data.lstrip(b"\r\n")  # §7.5: CRLFs before the start line are ignored
    for blank in (b"\r\n\r\n", b"\n\n"):
        end = data.find(blank)
        if end >= 0:
            data = data[:end]
            break
    return _FOLD_RE.sub(" ", data.decode("utf-8", "replace"))


def answerable(data: bytes) -> Request | None:
    """The request in ``data`` as far as a response to it needs: its method, its
    Request-URI as written and the header fields a response copies; None when nothing
    should be answered (a response, an ACK, no Via or no CSeq)."""
    lines = _LINE_RE.split(_header_section(data))
    start = lines[0].split(" ")
    if start[0][:4].upper() == "SIP/":
        return None
    fields: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        key = header_key(name.strip(" \t"))
        if colon and key in _COPIED and not _CONTROLS_RE.search(value):
            fields.append((canonical_name(key), value.strip(" \t")))
    keys = {header_key(name) for name, _ in fields}
    if "via" not in keys or "cseq" not in keys:
        return None
    method = start[0]
    if not is_token(method):
        # A start line that names no method: the CSeq does (§8.1.1.5).
        cseq = next(value for name, value in fields if name == "CSeq").split()
        method = cseq[-1] if len(cseq) == 2 and is_token(cseq[-1]) else ""
    if not method or method == "ACK":
        return None
    uri = start[1] if len(start) > 1 else ""
    return Request._parsed(method, uri, Headers(fields), b"")


def reason_phrase(text: str) -> str:
    """``text`` fit for a Reason-Phrase (§7.2: no CR or LF), and not too long to read."""
    phrase = " ".join(_CONTROLS_RE.sub(" ", text).split())
    return phrase if len(phrase) <= _MAX_PHRASE else phrase[: _MAX_PHRASE - 3] + "..."
