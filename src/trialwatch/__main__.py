"""``python -m trialwatch`` is the ``trialwatch`` command, and this is its console script's
entry point too.

Cheap to import on purpose: a sync's worker process (started by ``spawn``) runs the parent's
main script again before it prepares anything, and the console script imports this module.
Had it imported :mod:`trialwatch.cli` (typer, every command module), each worker would have
spent ~0.15 s on a command line it never reads.
"""


def main() -> None:
    """Console-script entry point: the command line, parsed and run."""
    from trialwatch.cli import main as run

    run()


if __name__ == "__main__":  # not when a worker process (spawn) imports it
    main()
