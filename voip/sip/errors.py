"""The one typed error of SIP syntax: it carries the status a UA should answer with."""

from __future__ import annotations

from mypy_extensions import mypyc_attr

# RFC 3261 §21 default reason phrases, for the statuses the parser and checks produce.
REASON_PHRASES: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}


@mypyc_attr(allow_interpreted_subclasses=True)
class SipError(ValueError):
    """A SIP message that cannot be accepted.

    ``status`` is the response a UA answers a request with (400, 505, 416, 420, 483 …);
    ``reason`` says what was wrong in words a person can act on. For a response the
    receiver has nobody to answer: ``is_response`` is set and the message is discarded
    (RFC 3261 §18.1.2). ``headers`` are header fields the answer must carry, such as
    ``Unsupported`` for a 420 (§8.2.2.3) or ``Accept`` for a 415 (§8.2.3).
    """

    def __init__(
        self,
        status: int,
        reason: str,
        *,
        is_response: bool = False,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.is_response = is_response
        self.headers = headers

    @property
    def phrase(self) -> str:
        """The RFC 3261 reason phrase of ``status`` ("Bad Request" for 400)."""
        return REASON_PHRASES.get(self.status, "Error")


@mypyc_attr(allow_interpreted_subclasses=True)
class SipFramingError(SipError):
    """A stream can no longer be framed (bad or conflicting Content-Length, size limit).

    RFC 4475 §3.1.2.3: over TCP such an error is unrecoverable; the connection is closed.
    """
