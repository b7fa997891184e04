"""Whether an offered media format is one the local agent supports (RFC 3264 §6.1).

A format matches a local codec when encoding name (case-insensitive), clock rate and
channels agree and, for the codecs whose fmtp changes the bitstream, the parameters agree.
Telephone events (RFC 4733) match when the two event lists share an event.
"""

from __future__ import annotations

import functools

from sdp.attributes import fmtp_parameters

# RFC 4733 §2.4: without fmtp, a receiver supports the DTMF events 0-15.
DEFAULT_TELEPHONE_EVENTS = "0-15"
_MAX_EVENT = 255


def fmtp_compatible(name: str, offered: str | None, local: str | None) -> bool:
    """Whether two fmtp parameter strings of one codec can describe the same stream."""
    codec = name.casefold()
    if codec == "telephone-event":
        return bool(telephone_events(offered) & telephone_events(local))
    if codec == "h264":
        # RFC 6184 §8.2.2: packetization-mode must be equal (default 0); the profile part
        # of profile-level-id must be equal, the level may differ.
        theirs, ours = fmtp_parameters(offered or ""), fmtp_parameters(local or "")
        if theirs.get("packetization-mode", "0") != ours.get("packetization-mode", "0"):
            return False
        their_profile = theirs.get("profile-level-id", "42")[:2].lower()
        our_profile = ours.get("profile-level-id", "42")[:2].lower()
        return their_profile == our_profile
    if codec in ("amr", "amr-wb"):
        # RFC 4867 §8.3.1: octet-align must agree (default 0, bandwidth-efficient).
        theirs, ours = fmtp_parameters(offered or ""), fmtp_parameters(local or "")
        return theirs.get("octet-align", "0") == ours.get("octet-align", "0")
    # Opus (RFC 7587 §7) and the rest: parameters are receiver preferences, not a match.
    return True


@functools.lru_cache(maxsize=256)
def telephone_events(fmtp: str | None) -> frozenset[int]:
    """The events of an RFC 4733 fmtp list such as ``0-15,66,70``; bad items are ignored.

    Remembered: peers send the same few lists call after call."""
    events: set[int] = set()
    for item in (fmtp if fmtp is not None else DEFAULT_TELEPHONE_EVENTS).split(","):
        low, dash, high = item.strip().partition("-")
        if not (low.isascii() and low.isdigit()) or len(low) > 3:
            continue
        if not dash:
            high = low
        elif not (high.isascii() and high.isdigit()) or len(high) > 3:
            continue
        first, last = int(low), int(high)
        if first <= last <= _MAX_EVENT:
            events.update(range(first, last + 1))
    return frozenset(events)


@functools.lru_cache(maxsize=256)
def format_telephone_events(events: frozenset[int]) -> str:
    """Events as the shortest list of ranges: {0..15, 66} -> ``0-15,66``."""
    items = []
    ordered = sorted(events)
    index = 0
    while index < len(ordered):
        start = end = ordered[index]
        while index + 1 < len(ordered) and ordered[index + 1] == end + 1:
            index += 1
            end = ordered[index]
        items.append(str(start) if start == end else f"{start}-{end}")
        index += 1
    return ",".join(items)
