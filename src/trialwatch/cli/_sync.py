"""``sync``, ``status`` and ``daemon``: the main job, its health, and running it on schedule."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from trialwatch.cli._common import (
    EXIT_FAILURE,
    cli,
    fail,
    fit,
    open_app,
    open_status,
    table,
    terminal_width,
    when,
)

if TYPE_CHECKING:
    from datetime import datetime

    from trialwatch.app import App
    from trialwatch.models import SyncResult, TrialLine
    from trialwatch.sync import Progress

PROGRESS_ABOVE = 300  # studies: smaller syncs finish before a bar would be worth drawing


def _print_sync(result: SyncResult) -> None:
    from trialwatch.diff import ChangeCount
    from trialwatch.vocabulary import plural

    if result.skipped:
        typer.echo(
            f"Nothing to do: CT.gov data unchanged since the last sync "
            f"(data as of {result.data_timestamp}). Use --force to fetch anyway."
        )
        return
    what = {"recheck": "Rechecked", "incremental": "Synced (incrementally)"}.get(
        result.kind, "Synced"
    )
    typer.echo(
        f"{what} {plural(result.checked, 'trial')} (CT.gov data as of {result.data_timestamp}) "
        f"in {plural(result.requests, 'request')}: "
        f"{ChangeCount(result.change_count, result.changed).text}; {result.baselined} new, "
        f"{result.unchanged} unchanged, {len(result.failed)} failed, "
        f"{len(result.missing)} missing."
    )
    if result.rebaselined:
        typer.echo(
            f"  note: {result.rebaselined} trial(s) re-read by this release's normalizer and "
            "re-baselined silently (no notifications for that)"
        )
    if result.flooded:
        typer.echo(
            f"  note: {result.flooded_trials} trials changed at once: recipients get one "
            "summary message instead of full reports (`trialwatch report` lists everything)"
        )
    shown = 0
    for update in result.updates:  # the changes that count (admin lines are not news)
        for change in update.changes:
            if shown < 200:
                typer.echo(f"  {update.nct_id}  [{change.severity.label}] {change.summary}")
            shown += 1
    if shown > 200:
        typer.echo(f"  … and {shown - 200} more (see `trialwatch report`)")
    for alias, canonical in sorted(result.aliases.items()):
        typer.echo(f"  note: {alias} is now {canonical} on ClinicalTrials.gov (alias)")
    for failure in result.failed:
        typer.echo(f"  FAILED {failure.nct_id}: {failure.reason}", err=True)
    for query in result.refused_queries:
        typer.echo(
            f"  QUERY REFUSED {query.nct_id}: {query.reason} (the watched trials were synced; "
            "fix the query's search in the config)",
            err=True,
        )
    for refused in result.refused:
        typer.echo(
            f"  REFUSED {refused.nct_id}: {refused.reason}; left out of later syncs "
            "(`trialwatch watch remove` it, or watch the right id)",
            err=True,
        )
    for nct_id in result.newly_missing:
        typer.echo(f"  MISSING {nct_id}: not returned by ClinicalTrials.gov", err=True)
    still = len(result.missing) - len(result.newly_missing)
    if still > 0:
        typer.echo(f"  {still} trial(s) still missing (see `trialwatch status`)", err=True)


def _print_since_print(app: App) -> None:
    """The first sync after a paper's table was imported says where the registry moved."""
    drifts = app.since_print(unreported_only=True)
    if not drifts:
        return
    typer.echo("Since print (the imported table beside the registry now):")
    for drift in drifts:
        typer.echo(f"  {drift.line}")
        if drift.title_note and drift.status_moved:
            typer.echo(f"    note: {drift.title_note}")

    app.mark_since_print_reported(drifts)


@contextmanager
def _progress(mode: str) -> Iterator[Callable[[Progress], None] | None]:
    """A progress bar on stderr for long syncs — only on a terminal, never in logs."""
    if mode == "never" or (mode == "auto" and not sys.stderr.isatty()):
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as Bar

    bar: Any = None
    task: Any = None

    def update(p: Progress) -> None:
        nonlocal bar, task
        if bar is None:
            if p.total is None or p.total < PROGRESS_ABOVE:
                return
            bar = Bar(
                TextColumn("syncing"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("studies · {task.fields[pages]} pages · {task.fields[rate]}/s"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(file=sys.stderr, force_terminal=True if mode == "always" else None),
                transient=True,
            )
            bar.start()
            task = bar.add_task("sync", total=p.total, pages=0, rate="-")
        elapsed = bar.tasks[0].elapsed or 0.0
        rate = f"{p.studies / elapsed:,.0f}" if elapsed > 0 else "-"
        bar.update(task, completed=p.studies, pages=p.pages, rate=rate)

    try:
        yield update
    finally:
        if bar is not None:
            bar.stop()


@cli.command()
def sync(
    force: Annotated[
        bool, typer.Option("--force", help="Fetch even if CT.gov has not refreshed its data.")
    ] = False,
    wait: Annotated[
        float,
        typer.Option("--wait", help="Seconds to wait if another process is syncing.", min=0),
    ] = 60.0,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Fetch every watched trial, even for a watch set large enough to sync "
            "incrementally ([sync] incremental_above): the full sweep.",
        ),
    ] = False,
) -> None:
    """Fetch the watched trials once, store what changed, send notifications.

    Example: trialwatch sync --force
    """
    from trialwatch.failpoints import failpoint

    with open_app(need_watchlist=True, may_upgrade=True) as app:
        try:
            with _progress(app.settings.sync.progress) as on_progress:
                result = app.sync(
                    force=force or full, wait_s=wait, on_progress=on_progress, full=full
                )
        except KeyboardInterrupt:
            # Each page is written whole or not at all, and what it found is owed to its
            # recipients: the next sync goes on from there.
            typer.echo(
                "trialwatch: sync interrupted; the pages written so far are kept, their "
                "changes queued for their recipients: run `trialwatch sync` again to finish",
                err=True,
            )
            raise typer.Exit(130) from None
        _print_sync(result)
        if not result.skipped:
            _print_since_print(app)
        # Deliver what this sync queued, and retry what earlier deliveries left due. A failed
        # delivery is an operational failure: said plainly, exit 1 (the change is kept).
        failpoint("deliver.before_send")
        delivery = app.flush()
        if delivery.sent:
            typer.echo(f"Delivered {delivery.sent} notification(s).")
        if delivery.retrying or delivery.dead:
            for error in dict.fromkeys(delivery.errors):
                typer.echo(f"  delivery failed: {error}", err=True)
            if delivery.retrying:
                typer.echo(
                    f"trialwatch: {delivery.retrying} notification(s) not delivered yet; they "
                    "stay queued and are retried (`trialwatch notify flush` tries now)",
                    err=True,
                )
            if delivery.dead:
                typer.echo(
                    f"trialwatch: {delivery.dead} notification(s) could not be delivered "
                    "(dead letters): fix what failed, then `trialwatch notify retry`",
                    err=True,
                )
            raise typer.Exit(EXIT_FAILURE)


def _recipient(channel: str, recipient: str, subscription: str | None = None) -> str:
    """Email addresses are shown; webhooks by subscription (their URLs are secrets)."""
    if channel == "webhook":
        if recipient.startswith("webhook:"):
            return f"webhook of subscription {subscription or '(unnamed)'}"
        from urllib.parse import urlsplit

        return f"webhook {urlsplit(recipient).hostname}"
    return recipient


STATUS_LISTS_UP_TO = 50
"""A watch set this small is listed whole by ``status``; a larger one is summed up."""


@cli.command()
def status(
    check: Annotated[
        bool,
        typer.Option("--check", help="Print only health; exit 1 when unhealthy (healthchecks)."),
    ] = False,
    wide: Annotated[
        bool, typer.Option("--wide", help="Full text in every column, whatever the width.")
    ] = False,
    every: Annotated[
        bool,
        typer.Option(
            "--all", help=f"List every trial, even above {STATUS_LISTS_UP_TO} (else summed up)."
        ),
    ] = False,
) -> None:
    """Show the watched trials (status, last change, problems) and trialwatch's health; above
    50 trials, counts by status, the latest changes and the trials with problems. Fits the
    terminal's width (COLUMNS) unless --wide. Makes no request to CT.gov.

    Example: trialwatch status
    """
    from trialwatch.vocabulary import status_label

    width = None if wide else terminal_width()
    with open_status() as app:
        health = app.health()
        if check:
            if health.healthy:
                typer.echo("healthy" + "".join(f"\nwarning: {w}" for w in health.warnings))
                return
            fail("unhealthy: " + "; ".join(health.problems), EXIT_FAILURE)
        glance = app.status_glance(list_up_to=sys.maxsize if every else STATUS_LISTS_UP_TO)

        def changed(moment: datetime | None) -> str:
            # The day is enough where width is short; --wide (or a pipe) gets the minute.
            return when(moment) if width is None or moment is None else f"{moment:%Y-%m-%d}"

        def say(text: str) -> None:
            typer.echo(fit(text, width))

        def rows(lines: Sequence[TrialLine], *, problem: bool = True) -> list[list[str]]:
            return [
                [
                    line.nct_id,
                    line.label,
                    status_label(line.overall_status) if line.overall_status else "-",
                    changed(line.last_changed_at),
                    *([line.problem or ""] if problem else []),
                ]
                for line in lines
            ]

        headers = ["TRIAL", "LABEL", "STATUS", "LAST CHANGED", "PROBLEM"]
        if glance.every is not None:
            typer.echo(table(headers, rows(glance.every), width=width, flexible=(1, 4)))
        else:
            counts = ", ".join(
                f"{n:,} {status_label(s).lower() if s else 'not synced yet'}"
                for s, n in sorted(glance.by_status.items(), key=lambda kv: (-kv[1], kv[0] or ""))
            )
            say(f"{glance.watched:,} trials watched: {counts}.")
            if glance.latest:
                typer.echo(f"\nLatest changes ({len(glance.latest)} most recent):")
                typer.echo(
                    table(
                        headers[:-1], rows(glance.latest, problem=False), width=width, flexible=(1,)
                    )
                )
            if glance.problems:
                shown = len(glance.problems)
                more = f"; the first {shown}" if shown < glance.problem_count else ""
                typer.echo(f"\nTrials with problems ({glance.problem_count:,}{more}):")
                typer.echo(table(headers, rows(glance.problems), width=width, flexible=(1, 4)))
            typer.echo("")
            say(
                f"Every trial: `trialwatch status --all`, or `trialwatch watch list | less` "
                f"(all {glance.watched:,})."
            )
        typer.echo("")
        if health.last_success_at is None:
            say("No complete sync yet: run `trialwatch sync`.")
        else:
            say(
                f"Last successful sync: {when(health.last_success_at)} "
                f"(CT.gov data as of {health.data_timestamp})."
            )
        if health.consecutive_failures:
            say(
                f"Consecutive failed syncs: {health.consecutive_failures}"
                + (f" (last error: {health.last_error})" if health.last_error else "")
            )
        for name, reason in app.refused_queries().items():
            say(f"Query {name!r} refused by CT.gov at the last sync: {reason}")
        say(f"Notifications queued: {health.queued}; dead letters: {health.dead}.")
        for dead in app.dead_letters():
            say(
                f"  dead #{dead.id} to "
                f"{_recipient(dead.channel, dead.recipient, dead.subscription)}: "
                # Scrubbed again: a row an older release recorded may hold an echoed secret.
                f"{app.scrub(dead.last_error or '')} (re-queue: trialwatch notify retry)"
            )
        for warning in health.warnings:
            say(f"warning: {warning}")
        for problem in health.problems:
            say(f"UNHEALTHY: {problem}")


@cli.command()
def daemon() -> None:
    """Run in the foreground: sync on schedule, deliver notifications, send digests.

    Example: TRIALWATCH_SCHEDULE__INTERVAL_SECONDS=3600 trialwatch daemon
    """
    from trialwatch.daemon import Daemon

    with open_app(need_watchlist=True, may_upgrade=True, daemon=True) as app:
        code = Daemon(app).run()
    raise typer.Exit(code)
