"""The C library through ctypes, for the few Linux calls the standard library does not
name (timerfd, dissolving a datagram socket's association): loaded on first use, once per
process, since finding it (``ctypes.util.find_library``) costs milliseconds."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys

__all__ = ["errno_error", "libc"]


@functools.cache
def libc() -> ctypes.CDLL | None:
    """The C library, with ``errno`` kept for :func:`errno_error`; None but on Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    except OSError:
        return None


def errno_error() -> OSError:
    """The OSError of the last failed call through :func:`libc`."""
    error = ctypes.get_errno()
    return OSError(error, os.strerror(error))
