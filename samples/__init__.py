"""Sample bots and programs built on the toolkit (run from the repository root):
``voip serve --bot samples.echo:handle``. Each has a test in ``tests/samples/``."""
