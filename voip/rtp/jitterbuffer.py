"""An adaptive jitter buffer for audio frames (sans-I/O).

Packets go in as they arrive (:meth:`JitterBuffer.push`); the media clock takes one frame
out per packet time (:meth:`JitterBuffer.pop`), which is either the next packet in sequence
or ``None``: a frame to conceal. The buffer:

- reorders by (extended) sequence number, drops duplicates and packets whose turn has passed
  (``late``), and counts each;
- starts playing once ``target`` frames are buffered, and adapts ``target``: an underrun (the
  next packet has not arrived, nothing later has either) holds the playout point, so the
  delay grows by one frame and a merely late packet still plays; a buffer that stays
  ``SHRINK_MARGIN`` frames above target for ``SHRINK_AFTER`` frames discards one frame (the
  one after the frame popped, left in :attr:`JitterBuffer.dropped` for a stateful decoder
  and a recording on the sender's timeline), and a long run without underruns lowers the
  target again;
- counts a missing packet as ``lost`` when later packets are already there;
- plays at once, whatever the target, when told that a silence began (:meth:`play_now`,
  for an RFC 3389 CN packet, after which the source may send nothing for a while);
- says when it is ``overdue``: holding more than ``target`` frames while playing, as after
  the media clock skipped periods (a stalled event loop) while the peer went on sending, so
  the frames due meanwhile can be played late instead of discarded as excess delay;
- goes back to buffering after ``IDLE_FRAMES`` empty frames in a row (the peer stopped
  sending: hold, silence suppression), and resets on an SSRC change (RFC 3550 §8.2) or a
  sequence jump too large to be reordering.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, Protocol

__all__ = ["Frame", "JitterBuffer", "JitterBufferCounters"]

SHRINK_MARGIN: Final = 2
SHRINK_AFTER: Final = 25  # frames (0.5 s at 20 ms)
RELAX_AFTER: Final = 500  # frames without underrun before the target drops by one (10 s)
IDLE_FRAMES: Final = 10  # empty frames in a row before the buffer waits for a new talkspurt
PLAYED_MEMORY: Final = 128  # sequence numbers remembered to tell duplicates from late packets


class Frame(Protocol):
    """An RTP packet as the buffer sees it (aiortc's ``RtpPacket`` or ``RtpHeader``)."""

    @property
    def ssrc(self) -> int: ...

    @property
    def sequence_number(self) -> int: ...

    @property
    def timestamp(self) -> int: ...

    @property
    def payload_type(self) -> int: ...

    @property
    def payload(self) -> bytes: ...


class Playout(enum.Enum):
    BUFFERING = "buffering"  # filling up to the target before playing
    PLAYING = "playing"


@dataclass(slots=True)
class JitterBufferCounters:
    received: int = 0  # packets pushed
    played: int = 0  # packets popped for playout
    lost: int = 0  # missing at their turn while later packets had come
    loss_bursts: int = 0  # runs of consecutive lost frames (for the E-model's BurstR)
    late: int = 0  # arrived after their turn
    duplicates: int = 0
    discarded: int = 0  # dropped to shrink the delay or on overflow
    concealed: int = 0  # frames with no packet while playing (lost or underrun)
    underruns: int = 0  # nothing to play at all
    resets: int = 0  # sequence jumps too large for reordering
    ssrc_changes: int = 0

    def __init__(self) -> None:
        # Written out rather than made by @dataclass: compiled, this one is native code.
        self.received = self.played = self.lost = self.loss_bursts = self.late = 0
        self.duplicates = self.discarded = self.concealed = self.underruns = 0
        self.resets = self.ssrc_changes = 0


class JitterBuffer:
    """Frames in sequence order, with an adaptive playout delay of ``target`` frames."""

    __slots__ = (
        "_above",
        "_calm",
        "_empty_run",
        "_first",
        "_losing",
        "_newest",
        "_next",
        "_packets",
        "_skipped",
        "capacity",
        "counters",
        "dropped",
        "max_delay",
        "min_delay",
        "ssrc",
        "state",
        "target",
    )

    def __init__(self, *, min_delay: int = 2, max_delay: int = 12, capacity: int = 64) -> None:
        if not 1 <= min_delay <= max_delay < capacity:
            raise ValueError("need 1 <= min_delay <= max_delay < capacity")
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.capacity = capacity
        self.target = min_delay
        self.state = Playout.BUFFERING
        self.ssrc: int | None = None
        self.counters = JitterBufferCounters()
        #: the packet discarded to shrink the delay by the last :meth:`pop` (the one due
        #: after the packet it returned), else None: not played, but still the sender's
        #: audio, and the next packet's predecessor for a decoder that keeps state
        self.dropped: Frame | None = None
        self._packets: dict[int, Frame] = {}  # by extended sequence number
        self._next = 0  # extended sequence number due next (the playout point)
        self._newest = 0  # the highest extended sequence number in _packets, when any
        # Every sequence number from _first up to _next was played (or discarded), except
        # those in _skipped (lost): what tells a duplicate from a late packet.
        self._first = 0
        self._skipped: set[int] = set()
        self._empty_run = 0
        self._above = 0
        self._calm = 0
        self._losing = False  # the last frame due was lost

    def __len__(self) -> int:
        return len(self._packets)

    @property
    def delay(self) -> int:
        """Frames between the newest packet and the playout point."""
        if not self._packets:
            return 0
        return self._newest - self._next + 1

    @property
    def overdue(self) -> bool:
        """Playing with more than ``target`` frames buffered: a frame is due already."""
        return self.state is Playout.PLAYING and self.delay > self.target

    def _extend(self, seq: int) -> int:
        """The extended sequence number nearest the playout point."""
        delta = ((seq - self._next + 0x8000) & 0xFFFF) - 0x8000
        return self._next + delta

    def _played(self, seq: int) -> bool:
        """Whether ``seq`` (before the playout point) was played, within the memory."""
        return seq >= self._first and self._next - seq <= PLAYED_MEMORY and seq not in self._skipped

    def _reset(self, seq: int) -> None:
        self._packets.clear()
        self._skipped.clear()
        self._next = self._first = seq
        self.state = Playout.BUFFERING
        self._empty_run = 0

    def push(self, packet: Frame) -> None:
        counters = self.counters
        counters.received += 1
        if packet.ssrc != self.ssrc:
            if self.ssrc is not None:
                counters.ssrc_changes += 1  # a new source: a new sequence space (§8.2)
            self.ssrc = packet.ssrc
            self._reset(packet.sequence_number)
        elif self.state is Playout.BUFFERING and not self._packets:
            self._reset(packet.sequence_number)
        seq = self._extend(packet.sequence_number)
        if (
            seq < self._next
            and self.state is Playout.BUFFERING
            and self._next - seq < self.capacity
        ):
            self._next = seq  # reordered before playout started: it still has its turn
        if seq < self._next:
            if self._played(seq):
                counters.duplicates += 1
            elif self._next - seq > self.capacity:
                counters.resets += 1  # the sender restarted its sequence
                self._reset(packet.sequence_number)
                self._packets[self._next] = packet
                self._newest = self._next
            else:
                counters.late += 1
            return
        if seq in self._packets:
            counters.duplicates += 1
            return
        if seq - self._next >= self.capacity:
            counters.resets += 1
            self._reset(packet.sequence_number)
            seq = self._next
        packets = self._packets
        packets[seq] = packet
        if seq > self._newest or len(packets) == 1:
            self._newest = seq  # (every packet buffered is at or after the playout point)

    def play_now(self) -> None:
        """Start playing what is buffered without waiting for ``target`` frames: the
        source announced a silence (RFC 3389 CN) and may send nothing more for a while."""
        if self.state is Playout.BUFFERING and self._packets:
            self._next = self._first = min(self._packets)  # nothing played since the reset
            self.state = Playout.PLAYING
            self._above = self._calm = 0

    def pop(self) -> Frame | None:
        """The frame due now, or None to conceal (or to stay silent while buffering)."""
        packets = self._packets
        counters = self.counters
        self.dropped = None
        if self.state is Playout.BUFFERING:
            if not packets or self.delay < self.target:
                return None
            self.play_now()
        packet = packets.pop(self._next, None)
        if packet is not None:
            self._empty_run = 0
            self._losing = False
            self._next += 1
            counters.played += 1
            self._adapt(packets)
            return packet
        counters.concealed += 1
        if packets:
            counters.lost += 1  # later packets are here: this one is gone
            if not self._losing:
                counters.loss_bursts += 1
                self._losing = True
            self._skip()
            return None
        # underrun: hold the playout point, so the delay grows by this frame
        counters.underruns += 1
        self._empty_run += 1
        self._calm = 0
        if self.target < self.max_delay:
            self.target += 1
        if self._empty_run >= IDLE_FRAMES:
            self.state = Playout.BUFFERING  # the source went quiet: wait for it
            self.target = max(self.min_delay, self.target - IDLE_FRAMES)
        return None

    def _skip(self) -> None:
        """Move the playout point past a lost packet."""
        skipped = self._skipped
        skipped.add(self._next)
        self._next += 1
        if len(skipped) > PLAYED_MEMORY:  # forget what is beyond the memory anyway
            oldest = self._next - PLAYED_MEMORY
            self._skipped = {seq for seq in skipped if seq >= oldest}

    def _adapt(self, packets: dict[int, Frame]) -> None:
        """Shrink a delay grown larger than needed, one frame at a time."""
        self._calm += 1
        if self._calm >= RELAX_AFTER and self.target > self.min_delay:
            self.target -= 1
            self._calm = 0
        # the delay, worked out here as the property does: this runs for every frame
        if packets and self._newest - self._next + 1 > self.target + SHRINK_MARGIN:
            self._above += 1
            if self._above >= SHRINK_AFTER:
                self._above = 0
                dropped = packets.pop(self._next, None)
                if dropped is not None:
                    self.dropped = dropped
                    self.counters.discarded += 1
                    self._next += 1
        else:
            self._above = 0
