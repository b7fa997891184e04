"""Line order of a parsed description, so that serialize(parse(x)) gives x back.

RFC 8866 §5 fixes the order of the lines, but real descriptions put ``t=`` before ``c=``
(RFC 3264 §9 Figure 1 does) or mix ``c=`` among ``a=`` lines. The parser remembers the
order of line types only when it differs from the RFC's; serialization follows it while
the description still holds the same number of lines of each type, and falls back to the
RFC order once code has added or removed lines.
"""

from __future__ import annotations

from collections.abc import Iterable

from sdp.errors import SdpError

# r= lines travel with the t= line they follow; m= sections are laid out separately.
SESSION_ORDER = "vosiuepcbtzka"
MEDIA_ORDER = "icbka"


def in_order(letters: Iterable[str], order: str) -> bool:
    """Whether line types appear in ``order`` (repeats allowed)."""
    rest = "".join(letters)
    for letter in order:
        # Peel off the run of each type in turn; what is left came out of order.
        rest = rest.lstrip(letter)
        if not rest:
            return True
    return False


def line_entries(*groups: tuple[str, Iterable[object]]) -> list[tuple[str, str]]:
    """(type letter, line) for every value of each (letter, values) group; None is skipped."""
    return [
        (letter, f"{letter}={value}")
        for letter, values in groups
        for value in values
        if value is not None
    ]


def arrange(entries: list[tuple[str, str]], layout: str) -> list[str]:
    """Lines of ``entries`` (type letter, text; in RFC order) in the remembered ``layout``."""
    if not layout:
        return [text for _, text in entries]
    queues: dict[str, list[str]] = {}
    for letter, text in entries:
        queues.setdefault(letter, []).append(text)
    if len(layout) != len(entries) or any(
        layout.count(letter) != len(queue) for letter, queue in queues.items()
    ):
        return [text for _, text in entries]
    for queue in queues.values():
        queue.reverse()
    return [queues[letter].pop() for letter in layout]


def crlf_text(lines: list[str]) -> str:
    """Lines joined, each ended with CRLF; a value holding CR or LF is refused."""
    text = "".join(line + "\r\n" for line in lines)
    if text.count("\n") != len(lines) or text.count("\r") != len(lines):
        raise SdpError("a value holds a line break; it would add lines to the description")
    return text
