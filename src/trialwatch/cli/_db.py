"""``db``: the database's schema — which revision it has, and upgrading it."""

from __future__ import annotations

import typer

from trialwatch.cli._common import EXIT_FAILURE, cli, describe, fail, load, startup_over

db_cli = typer.Typer(
    help=(
        "The database schema: see its revision, upgrade it after installing a new release.\n\n"
        "Example: trialwatch db current && trialwatch db upgrade"
    ),
    no_args_is_help=True,
)
cli.add_typer(db_cli, name="db")


@db_cli.command("current")
def db_current() -> None:
    """Show the database's schema revision and the one this trialwatch needs.

    Example: trialwatch db current
    """
    from trialwatch import __version__
    from trialwatch.app import made_by, needed_revision, schema_revisions
    from trialwatch.exceptions import TrialwatchError
    from trialwatch.statusview import missing_database

    settings = load()
    startup_over()
    if (missing := missing_database(settings)) is not None:
        # Asked, not made: a mistyped path must not leave an empty database behind.
        typer.echo(
            f"no database at {missing} yet (nothing was created); this trialwatch "
            f"({__version__}) needs schema {needed_revision()}"
        )
        return
    try:
        revision, head = schema_revisions(settings)
    except TrialwatchError as exc:
        fail(describe(exc), EXIT_FAILURE)
    this = f"this trialwatch ({__version__}) needs schema {head}"
    if revision is None:
        typer.echo(f"empty database (no tables yet); {this}")
    elif revision == head:
        typer.echo(f"{revision} (up to date: {made_by(revision)})")
    elif revision > head:
        typer.echo(
            f"{revision}, made by {made_by(revision)}; newer than this trialwatch knows "
            f"({__version__}, schema {head}): upgrade it"
        )
    else:
        typer.echo(f"{revision} (made by {made_by(revision)}); {this}: run `trialwatch db upgrade`")


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Upgrade the database to this release's schema, keeping every row (SQLite: backed up
    beside itself first, without webhook secrets). Two at once take turns.

    Example: trialwatch db upgrade
    """
    from datetime import UTC, datetime

    from trialwatch.app import upgrade_schema
    from trialwatch.exceptions import TrialwatchError

    settings = load()
    startup_over()  # a migration of a large database makes garbage of its own
    try:
        result = upgrade_schema(settings, now=datetime.now(UTC))
    except TrialwatchError as exc:
        fail(describe(exc), EXIT_FAILURE)
    if not result.changed:
        typer.echo(f"Already up to date (schema {result.after}).")
        return
    if result.backup is not None:
        typer.echo(
            f"Backed up the database to {result.backup} (webhook URLs and the secrets of the "
            "configured webhooks removed from the copy)"
        )
    before = "an empty database" if result.before is None else f"schema {result.before}"
    typer.echo(f"Upgraded {before} to {result.after}.")
