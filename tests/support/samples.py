"""Running the samples in tests: ``voip serve --bot samples.X`` as a process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from interop.test_cli_interop import (
    ROOT,
    Run,
    clean_environment,
    start_voip,
    until_listening,
    voip,
)

from support.peers._process import free_port

__all__ = ["ROOT", "TIMEOUT", "Run", "clean_environment", "serving", "voip"]

TIMEOUT = 60.0


@asynccontextmanager
async def serving(
    bot: str, home: Path, *args: str, calls: int = 1, **env: str
) -> AsyncIterator[tuple[str, asyncio.Task[Run]]]:
    """``voip serve --bot samples.BOT`` on a free UDP port; yields its URI and the run,
    which ends after ``calls`` calls."""
    port = free_port("udp")
    server = start_voip(
        "serve", "--bot", f"samples.{bot}", "--listen", f"127.0.0.1:{port}",
        "--calls", str(calls), "--user", "bot", *args, env=clean_environment(home, **env),
    )  # fmt: skip
    await until_listening(server, port)
    try:
        yield f"sip:bot@127.0.0.1:{port}", server
    finally:
        if not server.done():
            await asyncio.wait([server], timeout=TIMEOUT)
