"""DTMF in SIP INFO: the ``application/dtmf-relay`` body, ``Signal=5`` and ``Duration=160``.

No RFC defines it: Cisco did, and most gateways and softphones read it (baresip, Asterisk,
FreeSWITCH). It is the fallback when no telephone-event (RFC 4733) was agreed, one INFO
within the dialog per digit (RFC 6086 §2: the "legacy" INFO usage, without an Info
Package). ``Duration`` is in milliseconds.
"""

from __future__ import annotations

__all__ = ["DTMF_RELAY", "dtmf_relay_body", "dtmf_relay_signal"]

DTMF_RELAY = "application/dtmf-relay"


def dtmf_relay_body(digit: str, duration: float = 0.16) -> bytes:
    """The body of one digit lasting ``duration`` seconds."""
    return f"Signal={digit}\r\nDuration={round(duration * 1000)}\r\n".encode()


def dtmf_relay_signal(body: bytes) -> str:
    """The ``Signal`` of a body ("" if it has none)."""
    for line in body.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition("=")
        if key.strip().lower() == "signal":
            return value.strip()
    return ""
