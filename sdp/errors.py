"""The one exception the SDP layer raises, with the line it could not accept."""

from __future__ import annotations

from mypy_extensions import mypyc_attr

_QUOTED_LINE_LIMIT = 80


def _clip(line: str) -> str:
    # A hostile line can be megabytes long; the message quotes only its start.
    if len(line) <= _QUOTED_LINE_LIMIT:
        return line
    return line[: _QUOTED_LINE_LIMIT - 3] + "..."


@mypyc_attr(allow_interpreted_subclasses=True)
class SdpError(ValueError):
    """A session description that cannot be accepted.

    ``line_number`` (1-based) and ``line`` name the offending line when the error comes
    from :func:`sdp.parse`; both are ``None`` when the fault is not tied to one line
    (for example an answer whose media lines do not match the offer, RFC 3264 §6).
    ``reason`` is the message without the line prefix.
    """

    reason: str
    line_number: int | None
    line: str | None

    def __init__(self, reason: str, line_number: int | None = None, line: str | None = None):
        self.reason = reason
        self.line_number = line_number
        self.line = line
        if line_number is None:
            message = reason
        else:
            message = f'line {line_number}: "{_clip(line or "")}" : {reason}'
        super().__init__(message)

    def __reduce__(self) -> tuple[type[SdpError], tuple[str, int | None, str | None]]:
        # Keeps the exception picklable (multiprocessing, pytest-xdist) despite the custom
        # __init__ signature.
        return (type(self), (self.reason, self.line_number, self.line))

    def at_line(self, line_number: int, line: str) -> SdpError:
        """The same fault, placed at ``line_number``: the parser adds where it happened."""
        return type(self)(self.reason, line_number, line)


@mypyc_attr(allow_interpreted_subclasses=True)
class OfferAnswerError(SdpError):
    """An offer or answer that breaks the RFC 3264 offer/answer rules."""
