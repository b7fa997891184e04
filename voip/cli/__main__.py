"""``python -m voip.cli``: the ``voip`` command."""

from voip.cli import main

main(prog_name="voip")
