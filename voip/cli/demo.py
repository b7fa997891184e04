"""``voip demo``: a real call on loopback between the softphone and a built-in bot, then
its ladder diagram and quality report. No server, no configuration."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
from pathlib import Path

import click

from voip.call import Call, CallState
from voip.cli.agent import open_capture
from voip.cli.exits import CommandFailed, ExitCode
from voip.cli.live import live_status
from voip.demo import DemoProgress, Prompts, demo_bot, demo_caller
from voip.ladder import Ladder
from voip.report import QualityReport
from voip.session import Session
from voip.trace import SipTrace, TraceRecord
from voip.useragent import UserAgent

__all__ = ["demo_command"]

DEFAULT_SVG = Path(tempfile.gettempdir(), "voip-demo-ladder.svg")


@click.command("demo")
@click.option(
    "--svg",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_SVG,
    show_default=True,
    help="Where to write the SVG ladder diagram.",
)
@click.option(
    "--trace",
    "trace_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write every SIP message as JSON lines.",
)
@click.option(
    "--pcap",
    "pcap_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the softphone's SIP messages and RTP/RTCP to this pcap file.",
)
@click.option("-v", "--verbose", is_flag=True, help="Print every SIP message (stderr).")
@click.option(
    "--live/--no-live",
    default=None,
    help="Live status while the call runs (default: when stderr is a terminal).",
)
def demo_command(
    svg: Path, trace_path: Path | None, pcap_path: Path | None, verbose: bool, live: bool | None
) -> None:
    """Place a real call on loopback to a built-in bot: a spoken prompt (espeak-ng, or
    tones without it), a DTMF menu, an echo test, hold and resume, and an orderly release
    by the bot. Then print the ladder diagram of its SIP messages and the quality report
    (codec, packets, loss, jitter, MOS each way). Needs no server and no configuration."""
    enabled = sys.stderr.isatty() if live is None else live
    asyncio.run(_demo(svg, trace_path, pcap_path, verbose, enabled))


async def _demo(
    svg: Path, trace_path: Path | None, pcap_path: Path | None, verbose: bool, live: bool
) -> None:
    loop = asyncio.get_running_loop()
    prompts = await loop.run_in_executor(None, Prompts.make)
    progress = DemoProgress(on_step=lambda text: click.echo(f"  {text}", err=True))
    jsonl = trace_path.open("w", encoding="utf-8") if trace_path is not None else None
    softphone = UserAgent("softphone")
    bot_agent = UserAgent("demo-bot")
    trace = SipTrace.attach(softphone, jsonl=jsonl, on_record=_show if verbose else None)
    capture = None
    bot_done: asyncio.Future[None] = loop.create_future()
    try:
        if pcap_path is not None:
            capture = open_capture(softphone, pcap_path)
        await softphone.listen("udp", "127.0.0.1", 0)
        bot_address = await bot_agent.listen("udp", "127.0.0.1", 0)

        async def answer(call: Call) -> None:
            try:
                session = Session.incoming(call)
                await session.accept()
                await demo_bot(session, prompts, progress)
            except Exception as error:
                if not bot_done.done():
                    bot_done.set_exception(error)
            else:
                if not bot_done.done():
                    bot_done.set_result(None)

        bot_agent.on("incoming_call", answer)
        target = f"sip:demo@127.0.0.1:{bot_address.port}"
        click.echo(f"voip demo: calling the built-in bot at {target} (prompts: {prompts.voice})")
        call = softphone.dial(target)
        try:
            await asyncio.wait_for(call.answered(), 10)
        except Exception as error:
            raise CommandFailed(ExitCode.FAILED, f"the demo bot did not answer: {error}") from None
        answered_at = loop.time()
        async with live_status(call, enabled=live, step=lambda: progress.step) as console:
            if console is not None:
                progress.on_step = lambda text: console.print(f"  {text}")
            try:
                await demo_caller(call, prompts, progress)
                await asyncio.wait_for(bot_done, 10)
            except (TimeoutError, Exception) as error:
                raise CommandFailed(
                    ExitCode.FAILED,
                    f"the demo call went wrong at '{progress.step}': "
                    f"{type(error).__name__}: {error}",
                    "Run voip demo -v to see the SIP messages.",
                ) from None
            finally:
                if call.state is not CallState.ENDED:
                    await call.hangup()
        duration = loop.time() - answered_at
        _summary(
            call, trace, bot_port=bot_address.port, svg=svg, duration=duration, progress=progress
        )
    finally:
        await softphone.close(timeout=2.0)
        await bot_agent.close(timeout=2.0)
        if capture is not None:
            capture.close()
            click.echo(f"(pcap: {pcap_path}, {capture.writer.packets} packets)", err=True)
        if jsonl is not None:
            jsonl.close()


def _show(record: TraceRecord) -> None:
    click.echo(record.text(), err=True)


def _summary(
    call: Call,
    trace: SipTrace,
    *,
    bot_port: int,
    svg: Path,
    duration: float,
    progress: DemoProgress,
) -> None:
    names = {f"udp:127.0.0.1:{bot_port}": "demo bot"}
    ladder = Ladder(trace.of(call.call_id), agent="softphone", names=names)
    click.echo()
    click.echo("SIP ladder of the call:")
    click.echo(ladder.text(), nl=False)
    with contextlib.suppress(OSError):
        svg.write_text(ladder.svg(), encoding="utf-8")
        click.echo(f"(SVG: {svg})")
    click.echo()
    report = QualityReport.of_call(call, duration)
    if report is not None:
        click.echo(report.text(), nl=False)
    reason = call.end_reason
    released = reason is not None and reason.by == "remote" and reason.status == 200
    click.echo()
    click.echo(
        f"demo: DTMF {progress.digit or '-'} reached the bot; echo heard "
        f"(RMS {progress.echo_rms}); held and resumed; "
        + ("released by the bot (BYE, 200)." if released else f"ended: {reason}.")
    )
    if not released:
        raise CommandFailed(ExitCode.FAILED, f"the demo call did not end as planned: {reason}")
