"""``python -m trialwatch`` is the ``trialwatch`` command, and this is its console script's
entry point too.

Cheap to import on purpose: a sync's worker process (started by ``spawn``) runs the parent's
main script again before it prepares anything, and the console script imports this module.
Had it imported :mod:`trialwatch.cli` (typer, every command module), each worker would have
spent ~0.15 s on a command line it never reads.
"""

import gc


def main() -> None:
    """Console-script entry point: the command line, parsed and run."""
    from trialwatch.cli import main as run
    from trialwatch.cli._common import state

    state.own_process = True
    try:
        run()
    finally:
        # The interpreter's shutdown collects garbage over every object still alive: ~90,000
        # once SQLAlchemy, pydantic and typer are loaded, 0.3 to 0.5 s of every command here (a
        # fifth of an idle poll), for memory the process is about to give back anyway.
        # Frozen objects are left out of those collections. Nothing is lost: atexit handlers
        # (logging's flush) and the flush of stdout and stderr run as before, and the command
        # closed its database and connections when it returned.
        gc.freeze()


if __name__ == "__main__":  # not when a worker process (spawn) imports it
    main()
