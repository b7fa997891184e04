"""The ``voip`` command line: a headless softphone and call-bot kit.

One module per group of commands: :mod:`voip.cli.parse` (``voip parse``),
:mod:`voip.cli.phone` (``voip call``, ``answer``, ``serve``, ``register``, ``options``),
:mod:`voip.cli.show` (``voip ladder``); accounts in :mod:`voip.cli.account`, what the
networked commands share in :mod:`voip.cli.agent`. Exit statuses are in :mod:`voip.cli.exits`.
"""

from __future__ import annotations

import click

from voip.cli.demo import demo_command
from voip.cli.exits import EXIT_CODES_HELP
from voip.cli.parse import parse_command
from voip.cli.phone import (
    answer_command,
    call_command,
    options_command,
    register_command,
    serve_command,
)
from voip.cli.show import ladder_command

__all__ = ["main"]


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EXIT_CODES_HELP,
)
@click.version_option(package_name="voip-session")
def main() -> None:
    """A SIP user agent and RTP media engine: a headless softphone and call-bot kit."""


for command in (
    demo_command,
    call_command,
    answer_command,
    serve_command,
    register_command,
    options_command,
    ladder_command,
    parse_command,
):
    main.add_command(command)
