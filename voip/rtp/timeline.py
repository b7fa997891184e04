"""Received audio placed on the sender's timeline (RTP timestamps), not the playout clock.

What a stream *plays* follows the local media clock: when the peer's packets come late
(its sender stalled, the network held them) the jitter buffer has nothing to play, plays a
concealment frame or silence, and grows its delay; later it may discard a frame to shrink
the delay again. That is right for a listener, who must hear something every 20 ms.

A recording of *what the peer said* wants the other clock: each decoded frame at the place
its RTP timestamp gives it (RFC 3550 §5.1: the sampling instant of the first octet), so
that the sender's stalls and the local playout's adaptations leave no trace, while what was
really lost still shows (as concealment, silence once a loss outlasts concealment), and
so do the sender's own pauses (silence where packets were never sent, e.g. between
talkspurts). This is what a decoder-side recorder such as baresip's ``sndfile`` writes, and
what a call recorder keeps.

:class:`SenderTimeline` is sans-I/O: the stream hands it each frame the jitter buffer gives
up (played, discarded to shrink the delay, concealed for a loss) with its timestamp, and it
writes PCM to its sinks.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["SenderTimeline"]

MAX_GAP_SECONDS = 10.0  # a longer jump is a new timeline (sender restart), not a silence


class SenderTimeline:
    """Writes decoded frames to sinks at the offsets their RTP timestamps give.

    ``sample_rate`` is the PCM rate of the frames written (the stream's), ``clock_rate``
    the RTP timestamp rate of the codec: G.722 counts 8,000 per second for 16 kHz audio
    (RFC 3551 §4.5.2), Opus 48,000 whatever it carries (RFC 7587 §4.1).
    """

    __slots__ = ("_expected", "_ssrc", "after_loss", "clock_rate", "sample_rate", "sinks")

    def __init__(self, sample_rate: int, clock_rate: int) -> None:
        self.sample_rate = sample_rate
        self.clock_rate = clock_rate
        self.sinks: list[Callable[[bytes], None]] = []
        self._ssrc: int | None = None
        self._expected = 0  # the timestamp the next frame should carry
        self.after_loss = False  # the last frame written was made up for a lost packet

    def set_clock(self, sample_rate: int, clock_rate: int) -> None:
        """The codec changed (a re-INVITE): timestamps from now count at ``clock_rate``."""
        if (sample_rate, clock_rate) != (self.sample_rate, self.clock_rate):
            self.sample_rate, self.clock_rate = sample_rate, clock_rate
            self._ssrc = None

    def add(self, sink: Callable[[bytes], None]) -> Callable[[], None]:
        """Give ``sink`` the frames from now on; returns a remover. The first sink starts
        the timeline afresh: frames are placed only while someone listens, so the time
        nobody did is no gap to fill."""
        if not self.sinks:
            self._ssrc = None
        self.sinks.append(sink)
        return lambda: self.sinks.remove(sink) if sink in self.sinks else None

    def _write(self, pcm: bytes) -> None:
        for sink in self.sinks:
            sink(pcm)

    def frame(self, ssrc: int, timestamp: int, ticks: int, pcm: bytes) -> None:
        """A frame decoded from the packet of ``ssrc`` stamped ``timestamp``, lasting
        ``ticks`` timestamp units. A gap before it (packets never sent) is written as
        silence; a frame from before the expected point overlaps what was written and is
        written as it comes."""
        if ssrc == self._ssrc:
            gap = ((timestamp - self._expected + 0x80000000) & 0xFFFFFFFF) - 0x80000000
            if 0 < gap <= MAX_GAP_SECONDS * self.clock_rate:
                self._write(bytes(2 * round(gap * self.sample_rate / self.clock_rate)))
        self._ssrc = ssrc
        self._expected = (timestamp + ticks) & 0xFFFFFFFF
        self.after_loss = False
        self._write(pcm)

    def concealed(self, ticks: int, pcm: bytes) -> None:
        """A frame made up for a lost packet, in that packet's place."""
        if self._ssrc is None:
            return
        self._expected = (self._expected + ticks) & 0xFFFFFFFF
        self.after_loss = True
        self._write(pcm)
