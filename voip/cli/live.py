"""Live status of a call in the terminal (rich): state, time, codec, packets, loss, jitter,
and what is happening now; redrawn four times a second on stderr while the call lasts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from voip.call import Call, CallState

__all__ = ["LiveStatus", "live_status"]


class LiveStatus:
    """The status lines of ``call``; ``step`` (a callable) says what is happening."""

    def __init__(self, call: Call, step: Callable[[], str] | None = None) -> None:
        self.call = call
        self.step = step
        self.started = asyncio.get_running_loop().time()

    def render(self) -> Group:
        call = self.call
        elapsed = asyncio.get_running_loop().time() - self.started
        state = call.state.value
        if call.state is CallState.ANSWERED and (call.on_hold or call.remote_hold):
            state = "on hold" if call.on_hold else "held by the peer"
        line = Text()
        line.append("● ", style="bold green" if call.state is CallState.ANSWERED else "yellow")
        line.append(f"{int(elapsed // 60):02d}:{elapsed % 60:04.1f}  ", style="bold")
        line.append(f"{state:<16}", style="cyan")
        media = call.media
        if media is not None and media.agreed is not None and media.agreed.codecs:
            stats = media.statistics()
            received = stats.packets_received
            loss = stats.lost / (received + stats.lost) if received + stats.lost else 0.0
            line.append(f"{media.agreed.codecs[0].name}  ")
            line.append(f"sent {stats.packets_sent}  received {received}  ")
            line.append(f"loss {100 * loss:.1f}%  jitter {1000 * stats.jitter:.1f} ms")
        lines = [line]
        if self.step is not None:
            lines.append(Text(f"  {self.step()}", style="dim"))
        return Group(*lines)


@contextlib.asynccontextmanager
async def live_status(
    call: Call, *, enabled: bool, step: Callable[[], str] | None = None
) -> AsyncIterator[Console | None]:
    """Show the live status of ``call`` on stderr while the block runs (when ``enabled``);
    yields the console to print lines above it, or None when there is no live display."""
    if not enabled:
        yield None
        return
    console = Console(stderr=True)
    status = LiveStatus(call, step)
    with Live(status.render(), console=console, refresh_per_second=4, transient=True) as live:

        async def redraw() -> None:
            while True:
                live.update(status.render())
                await asyncio.sleep(0.25)

        task = asyncio.ensure_future(redraw())
        try:
            yield console
        finally:
            task.cancel()
