"""The ``trialwatch`` command. Thin: load settings, build the app, call one thing, print.

Exit codes: 0 success; 1 an operational failure (CT.gov unreachable, database error, delivery
failed); 2 invalid configuration or usage, or a database that needs ``trialwatch db upgrade``
(nothing was written).

Commands live in the modules beside this one, grouped by job; each imports what it needs when
it runs, so ``--help`` and ``--version`` stay fast.
"""

from __future__ import annotations

import sys

# Importing the command modules registers their commands.
from trialwatch.cli import (  # noqa: F401
    _backfill,
    _data,
    _db,
    _init,
    _notify,
    _report,
    _serve,
    _sync,
    _watch,
)
from trialwatch.cli._common import EXIT_CONFIG, EXIT_FAILURE, cli, hoist_global_options


def main() -> None:
    """Console-script entry point."""
    cli(args=hoist_global_options(sys.argv[1:]), prog_name="trialwatch")


__all__ = ["EXIT_CONFIG", "EXIT_FAILURE", "cli", "main"]
