"""Exit statuses of the ``voip`` commands, and the errors that carry them.

Scripts rely on these numbers: they do not change. A failure prints one line saying
what happened (with the SIP status when there is one) and a second saying what to do.
"""

from __future__ import annotations

import enum

import click

__all__ = ["EXIT_CODES_HELP", "CommandFailed", "ExitCode", "exit_code_for_status"]


class ExitCode(enum.IntEnum):
    OK = 0  # answered and completed; registered; answered OPTIONS
    FAILED = 1  # anything else: unreadable input, a media fault, an internal error
    USAGE = 2  # a wrong option or argument (click's own)
    BUSY = 3  # 486 Busy Here, 600 Busy Everywhere
    REJECTED = 4  # any other refusal: 403, 404, 480, 488, 603 …
    UNREACHABLE = 5  # no response, no route, connection refused, 503 from the provider
    AUTH_FAILED = 6  # 401/407 again after our credentials, or 403 to REGISTER
    NO_ANSWER = 7  # rang out: 408 or 487 from the far end, or --ring-timeout


EXIT_CODES_HELP = """\b
Exit status (for scripts):
  0  answered and completed (call), registered, answered (options)
  1  other failure (unreadable input, media fault)
  2  wrong usage
  3  busy (486 Busy Here, 600 Busy Everywhere)
  4  rejected (403, 404, 480, 488, 603 ...)
  5  unreachable (no response, connection refused, 503)
  6  authentication failed (wrong user name or password)
  7  no answer (408, 487, or --ring-timeout passed)
"""


def exit_code_for_status(status: int) -> ExitCode:
    """The exit status for a final SIP response to an INVITE."""
    if 200 <= status < 300:
        return ExitCode.OK
    if status in (486, 600):
        return ExitCode.BUSY
    if status in (401, 407):
        return ExitCode.AUTH_FAILED
    if status in (408, 487):
        return ExitCode.NO_ANSWER
    if status == 503:
        return ExitCode.UNREACHABLE
    return ExitCode.REJECTED


class CommandFailed(click.ClickException):
    """A command that could not do what it was asked: ``message`` says what happened,
    ``hint`` what to do about it; the process exits with ``code``."""

    def __init__(self, code: ExitCode, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.exit_code = int(code)
        self.code = code
        self.hint = hint

    def format_message(self) -> str:
        return self.message if self.hint is None else f"{self.message}\n  {self.hint}"
