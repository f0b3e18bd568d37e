"""``backfill``: each trial's earlier versions, from CT.gov's record history."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from trialwatch.cli._common import EXIT_CONFIG, EXIT_FAILURE, cli, fail, open_app

if TYPE_CHECKING:
    from trialwatch.backfill import BackfillProgress


@contextmanager
def _progress(mode: str) -> Iterator[Callable[[BackfillProgress], None] | None]:
    """A progress bar on stderr, on a terminal only ([sync] progress: auto, always, never)."""
    if mode == "never" or (mode == "auto" and not sys.stderr.isatty()):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    bar = Bar(
        TextColumn("backfilling"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("trials · {task.fields[versions]} versions read · {task.fields[current]}"),
        TimeElapsedColumn(),
        console=Console(file=sys.stderr, force_terminal=True if mode == "always" else None),
        transient=True,
    )
    task: Any = None

    def update(p: BackfillProgress) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task("backfill", total=p.trials, versions=0, current="")
        bar.update(task, completed=p.trials_done, versions=p.versions, current=p.current or "")

    try:
        yield update
    finally:
        if task is not None:
            bar.stop()


@cli.command()
def backfill(
    trials: Annotated[
        list[str] | None,
        typer.Argument(
            help="Trials (NCT ids or labels); default: every watched trial whose registry "
            "history is not read yet.",
            metavar="TRIAL",
            show_default=False,
        ),
    ] = None,
    status_only: Annotated[
        bool,
        typer.Option(
            "--status-only",
            help="Read only the version list: the status history since registration, in one "
            "request per trial.",
        ),
    ] = False,
    wait: Annotated[
        float,
        typer.Option("--wait", help="Seconds to wait if another process is syncing.", min=0),
    ] = 60.0,
) -> None:
    """Read every version CT.gov kept of the trials, from registration on, into their history.

    Each change is dated by the registry's version and marked as from the registry; none is
    notified. Resumable and idempotent: run it again to finish or to do nothing. A trial must
    have been synced once first. Exit 1 when any trial failed (named; the others are kept).

    Example: trialwatch backfill SEAL
    """
    from trialwatch.exceptions import LockHeldError, UserError

    with open_app() as app:
        try:
            with _progress(app.settings.sync.progress) as on_progress:
                result = app.backfill(
                    trials or (), status_only=status_only, wait_s=wait, on_progress=on_progress
                )
        except LockHeldError:
            raise
        except UserError as exc:
            fail(str(exc), EXIT_CONFIG)
    what = "status history" if status_only else "record history"
    typer.echo(
        f"Backfilled the {what} of {len(result.read)} trial(s) in {result.requests} requests: "
        f"{result.versions_fetched} versions read, {result.events} changes recorded "
        f"(from the registry; not notified); {len(result.already)} already read, "
        f"{len(result.failed)} failed."
    )
    for nct_id in result.read:
        typer.echo(f"  {nct_id}: {result.per_trial.get(nct_id, 0)} changes")
    for failure in result.failed:
        typer.echo(f"  FAILED {failure.nct_id}: {failure.reason}", err=True)
    if result.failed:
        raise typer.Exit(EXIT_FAILURE)
