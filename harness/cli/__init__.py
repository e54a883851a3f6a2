"""The command line: one module per subcommand (``run``, ``list``, ``show``, ``data``, ``compare``,
``report``, ``history``, ``docker``), argparse types in :mod:`.types`, the entry point and the
one-line user-error rule in :mod:`.main`."""

from harness.cli.main import main

__all__ = ["main"]
