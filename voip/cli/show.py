"""``voip ladder``: draw a JSON-lines SIP trace (``voip call --trace``) as a ladder."""

from __future__ import annotations

from pathlib import Path

import click

from voip.cli.exits import CommandFailed, ExitCode
from voip.ladder import Ladder
from voip.sip import SipError
from voip.trace import read_jsonl


@click.command("ladder")
@click.argument("trace", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--svg", type=click.Path(dir_okay=False, path_type=Path), help="Also write an SVG.")
@click.option("--call-id", help="Only the messages of this Call-ID.")
@click.option("--agent", default="voip", show_default=True, help="Name of the traced agent.")
@click.option(
    "--name",
    "names",
    multiple=True,
    metavar="ADDRESS=NAME",
    help="Name a party, e.g. --name udp:127.0.0.1:5060=kamailio (repeatable).",
)
def ladder_command(
    trace: Path, svg: Path | None, call_id: str | None, agent: str, names: tuple[str, ...]
) -> None:
    """Print the ladder diagram of TRACE, a JSON-lines SIP trace (one message a line,
    as written by --trace), and optionally write it as SVG."""
    try:
        records = read_jsonl(trace)
    except (ValueError, KeyError, SipError, AssertionError) as error:
        detail = error.reason if isinstance(error, SipError) else str(error)
        raise CommandFailed(
            ExitCode.FAILED,
            f"{trace} is not a JSON-lines SIP trace: {detail}",
            "Write one with: voip call --trace FILE ...",
        ) from error
    if call_id is not None:
        records = [r for r in records if r.message.call_id == call_id]
    mapping = dict(_name(item) for item in names)
    ladder = Ladder(records, agent=agent, names=mapping)
    click.echo(ladder.text(), nl=False)
    if svg is not None:
        svg.write_text(ladder.svg(), encoding="utf-8")
        click.echo(f"ladder written to {svg}")


def _name(item: str) -> tuple[str, str]:
    address, sep, name = item.rpartition("=")
    if not sep or not address:
        raise click.BadParameter(f"{item!r}: expected ADDRESS=NAME", param_hint="--name")
    return address, name
