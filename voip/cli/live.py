"""Live status of calls in the terminal (rich): state, time, codec, packets, loss, jitter;
redrawn four times a second on stderr while the calls last.

``voip call`` and ``voip demo`` show their one call (:func:`live_status`, with what is
happening now); ``voip answer`` and ``voip serve`` one line per active call
(:func:`live_calls`): its number, the peer, state, duration, codec and loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from voip.call import Call, CallState
from voip.sip import Request

__all__ = ["CallBoard", "LiveStatus", "call_line", "live_calls", "live_status"]


def _state(call: Call) -> str:
    if call.state is CallState.ANSWERED and (call.on_hold or call.remote_hold):
        return "on hold" if call.on_hold else "held by the peer"
    return call.state.value


def _peer(call: Call) -> str:
    """The far end's address: the callee of an outgoing call, the caller of an incoming."""
    invite = call.invite
    if not isinstance(invite, Request):
        return "?"
    return str((invite.to if call.outgoing else invite.from_).uri)


def call_line(call: Call, elapsed: float, *, label: str = "", peer: bool = False) -> Text:
    """One line for ``call``, ``elapsed`` seconds old: state, time, codec, packets, loss and
    jitter; after ``label`` and, with ``peer``, the far end's address."""
    line = Text()
    line.append("● ", style="bold green" if call.state is CallState.ANSWERED else "yellow")
    if label:
        line.append(f"{label}  ", style="bold")
    if peer:
        line.append(f"{_peer(call)}  ")
    line.append(f"{int(elapsed // 60):02d}:{elapsed % 60:04.1f}  ", style="bold")
    line.append(f"{_state(call):<16}", style="cyan")
    media = call.media
    if media is not None and media.agreed is not None and media.agreed.codecs:
        stats = media.statistics()
        received = stats.packets_received
        loss = stats.lost / (received + stats.lost) if received + stats.lost else 0.0
        line.append(f"{media.agreed.codecs[0].name}  ")
        line.append(f"sent {stats.packets_sent}  received {received}  ")
        line.append(f"loss {100 * loss:.1f}%  jitter {1000 * stats.jitter:.1f} ms")
    return line


class _Renderable(Protocol):
    def render(self) -> Group: ...


class LiveStatus:
    """The status lines of ``call``; ``step`` (a callable) says what is happening."""

    def __init__(self, call: Call, step: Callable[[], str] | None = None) -> None:
        self.call = call
        self.step = step
        self.started = asyncio.get_running_loop().time()

    def render(self) -> Group:
        elapsed = asyncio.get_running_loop().time() - self.started
        lines = [call_line(self.call, elapsed)]
        if self.step is not None:
            lines.append(Text(f"  {self.step()}", style="dim"))
        return Group(*lines)


class CallBoard:
    """The active calls of an answering agent, by number, each with when it came."""

    def __init__(self) -> None:
        self.calls: dict[int, tuple[Call, float]] = {}

    def add(self, number: int, call: Call) -> None:
        self.calls[number] = (call, asyncio.get_running_loop().time())

    def remove(self, number: int) -> None:
        self.calls.pop(number, None)

    def render(self) -> Group:
        now = asyncio.get_running_loop().time()
        active = [
            (n, c, t) for n, (c, t) in sorted(self.calls.items()) if c.state is not CallState.ENDED
        ]
        lines = [Text(f"{len(active)} active call{'' if len(active) == 1 else 's'}", style="dim")]
        for number, call, since in active:
            lines.append(call_line(call, now - since, label=f"call {number}", peer=True))
        return Group(*lines)


@contextlib.asynccontextmanager
async def _live(status: _Renderable, *, forced: bool) -> AsyncIterator[Console]:
    """Redraw ``status`` on stderr four times a second while the block runs. ``forced``: as
    on a terminal even when stderr is not one (the user asked for it with ``--live``).
    What is printed to stdout goes above the display when stdout is a terminal too, and
    straight to stdout (a file, a pipe) otherwise."""
    console = Console(stderr=True, force_terminal=True if forced else None)
    with Live(
        status.render(),
        console=console,
        refresh_per_second=4,
        transient=True,
        redirect_stdout=sys.stdout.isatty(),
    ) as live:

        async def redraw() -> None:
            while True:
                live.update(status.render())
                await asyncio.sleep(0.25)

        task = asyncio.ensure_future(redraw())
        try:
            yield console
        finally:
            task.cancel()


@contextlib.asynccontextmanager
async def live_status(
    call: Call, *, enabled: bool, step: Callable[[], str] | None = None, forced: bool = False
) -> AsyncIterator[Console | None]:
    """Show the live status of ``call`` on stderr while the block runs (when ``enabled``);
    yields the console to print lines above it, or None when there is no live display."""
    if not enabled:
        yield None
        return
    async with _live(LiveStatus(call, step), forced=forced) as console:
        yield console


@contextlib.asynccontextmanager
async def live_calls(*, enabled: bool, forced: bool = False) -> AsyncIterator[CallBoard]:
    """A board of active calls (``add`` each call, ``remove`` it when done), shown on
    stderr one line per call while the block runs when ``enabled``."""
    board = CallBoard()
    if not enabled:
        yield board
        return
    async with _live(board, forced=forced):
        yield board
