"""The ``trialwatch`` command. Thin: load settings, build the app, call one thing, print.

Exit codes: 0 success; 1 an operational failure (CT.gov unreachable, database error, delivery
failed); 2 invalid configuration or usage (nothing was written).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from trialwatch import __version__
from trialwatch.app import App, build_app
from trialwatch.config import Settings, config_path, load_settings
from trialwatch.exceptions import ConfigError, DeliveryError, TrialwatchError, UserError
from trialwatch.export import write_json_export
from trialwatch.logs import configure_logging
from trialwatch.models import Severity, SyncResult
from trialwatch.outbox import FlushResult
from trialwatch.vocabulary import history_url, status_label, study_url

cli = typer.Typer(
    name="trialwatch",
    help=(
        "Watch ClinicalTrials.gov records and hear, once, when they change.\n\n"
        "Example: trialwatch sync && trialwatch status"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)

EXIT_FAILURE = 1
EXIT_CONFIG = 2


class _State:
    config: Path | None = None


_state = _State()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"trialwatch {__version__}")
        raise typer.Exit()


@cli.callback()
def _main(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Settings file (default: $TRIALWATCH_CONFIG, else ./config/trialwatch.toml).",
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    _state.config = config


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"trialwatch: {message}", err=True)
    raise typer.Exit(code)


def _settings(*, need_watchlist: bool = False) -> Settings:
    try:
        settings = load_settings(_state.config, os.environ)
    except ConfigError as exc:
        _fail(str(exc), EXIT_CONFIG)
    if need_watchlist and not settings.watchlist:
        path = config_path(_state.config, os.environ)
        where = f"the watchlist in {path} is empty" if path.exists() else f"no {path} here"
        _fail(
            f"nothing to watch: {where}. Run from the directory holding config/trialwatch.toml, "
            "or point --config or TRIALWATCH_CONFIG at your settings file.",
            EXIT_CONFIG,
        )
    configure_logging(settings.logging.level, settings.logging.format)
    return settings


@contextmanager
def _app(*, need_watchlist: bool = False) -> Iterator[App]:
    """Settings -> app, mapping every expected failure to a message and an exit code."""
    settings = _settings(need_watchlist=need_watchlist)
    try:
        app = build_app(settings)
    except TrialwatchError as exc:
        _fail(str(exc), EXIT_FAILURE)
    try:
        yield app
    except ConfigError as exc:
        _fail(str(exc), EXIT_CONFIG)
    except UserError as exc:
        _fail(str(exc), EXIT_FAILURE)
    except TrialwatchError as exc:
        _fail(str(exc), EXIT_FAILURE)
    finally:
        app.close()


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def _print_sync(result: SyncResult) -> None:
    if result.skipped:
        typer.echo(
            f"Nothing to do: CT.gov data unchanged since the last sync "
            f"(data as of {result.data_timestamp}). Use --force to fetch anyway."
        )
        return
    typer.echo(
        f"Synced {result.checked} trials (CT.gov data as of {result.data_timestamp}) "
        f"in {result.requests} requests: {result.changed} changed "
        f"({result.change_count} changes), {result.baselined} new, "
        f"{result.unchanged} unchanged, {len(result.failed)} failed, "
        f"{len(result.missing)} missing."
    )
    for update in result.updates:
        for change in update.changes:
            if change.severity > Severity.ADMIN:  # "last update posted" alone is not news
                typer.echo(f"  {update.nct_id}  [{change.severity.label}] {change.summary}")
    for alias, canonical in sorted(result.aliases.items()):
        typer.echo(f"  note: {alias} is now {canonical} on ClinicalTrials.gov (alias)")
    for failure in result.failed:
        typer.echo(f"  FAILED {failure.nct_id}: {failure.reason}", err=True)
    for nct_id in result.missing:
        typer.echo(f"  MISSING {nct_id}: not returned by ClinicalTrials.gov", err=True)


@cli.command()
def sync(
    force: Annotated[
        bool, typer.Option("--force", help="Fetch even if CT.gov has not refreshed its data.")
    ] = False,
    wait: Annotated[
        float,
        typer.Option("--wait", help="Seconds to wait if another process is syncing.", min=0),
    ] = 60.0,
) -> None:
    """Fetch the watched trials once, store what changed, send notifications.

    Example: trialwatch sync --force
    """
    with _app(need_watchlist=True) as app:
        result = app.sync(force=force, wait_s=wait)
        _print_sync(result)
        counts = app.store.outbox_counts()
        if counts.get("pending") and app.settings.email.enabled:
            typer.echo(f"{counts['pending']} notification(s) queued for retry.", err=True)


@cli.command()
def status(
    check: Annotated[
        bool,
        typer.Option("--check", help="Print only health; exit 1 when unhealthy (healthchecks)."),
    ] = False,
) -> None:
    """Show every watched trial (status, last change, last check) and trialwatch's health.

    Example: trialwatch status
    """
    with _app() as app:
        health = app.health()
        if check:
            if health.healthy:
                typer.echo("healthy")
                return
            _fail("unhealthy: " + "; ".join(health.problems), EXIT_FAILURE)
        rows = []
        for state in app.trial_states():
            snap = state.snapshot
            rows.append(
                [
                    state.nct_id,
                    _clip(state.label, 40),
                    status_label(snap.overall_status) if snap else "-",
                    _when(state.last_changed_at),
                    _when(state.last_synced_at),
                    _clip(state.problem or "", 70),
                ]
            )
        headers = ["TRIAL", "LABEL", "STATUS", "LAST CHANGED", "LAST CHECKED", "PROBLEM"]
        typer.echo(_table(headers, rows))
        typer.echo("")
        if health.last_success_at is None:
            typer.echo("No complete sync yet: run `trialwatch sync`.")
        else:
            typer.echo(
                f"Last successful sync: {_when(health.last_success_at)} "
                f"(CT.gov data as of {health.data_timestamp})."
            )
        if health.consecutive_failures:
            typer.echo(
                f"Consecutive failed syncs: {health.consecutive_failures}"
                + (f" (last error: {health.last_error})" if health.last_error else "")
            )
        typer.echo(f"Notifications queued: {health.queued}; dead letters: {health.dead}.")
        for dead in app.store.notifications("dead"):
            typer.echo(
                f"  dead #{dead.id} to {_recipient(dead.channel, dead.recipient)}: "
                f"{dead.last_error} (re-queue: trialwatch notify retry)"
            )
        for problem in health.problems:
            typer.echo(f"UNHEALTHY: {problem}")


def _recipient(channel: str, recipient: str) -> str:
    """Email addresses are shown; webhook URLs are secrets, only their host is."""
    if channel == "webhook":
        from urllib.parse import urlsplit

        return f"webhook {urlsplit(recipient).hostname}"
    return recipient


@cli.command()
def history(
    nct_id: Annotated[str, typer.Argument(help="The trial, e.g. NCT02606461.")],
) -> None:
    """Show the timeline of changes of one trial.

    Example: trialwatch history NCT02606461
    """
    nct_id = nct_id.strip().upper()
    with _app() as app:
        trial = app.store.trial(nct_id)
        if trial is None:
            _fail(f"{nct_id} is not known; is it in the watchlist, and has `sync` run?", 1)
        typer.echo(f"{trial.nct_id}  {trial.label}  {trial.brief_title or ''}".rstrip())
        typer.echo(f"{study_url(nct_id)}  (registry history: {history_url(nct_id)})")
        events = app.store.history(nct_id)
        versions = app.store.versions(nct_id)
        if versions:
            typer.echo(f"{_when(versions[0].first_seen_at)}  first recorded (baseline)")
        for event, run in events:
            typer.echo(
                f"{_when(event.detected_at)}  [{event.category}/"
                f"{_severity_name(event.severity)}] {event.summary}"
                f"  (data {run.data_timestamp})"
            )
        if not events:
            typer.echo("No changes recorded since the baseline.")


def _severity_name(value: int) -> str:
    return Severity(value).label


@cli.command()
def export(
    fmt: Annotated[str, typer.Option("--format", "-f", help="Output format: json.")] = "json",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to FILE instead of stdout.")
    ] = None,
) -> None:
    """Export the current status of every watched trial (schema: docs/export.schema.json).

    Example: trialwatch export --format json --output statuses.json
    """
    if fmt != "json":
        _fail(f"unknown export format {fmt!r} (supported: json)", EXIT_CONFIG)
    with _app() as app:
        last = app.store.last_complete_run()
        data_timestamp = last.data_timestamp if last else None
        if output is None:
            write_json_export(
                sys.stdout,
                app.trial_states(),
                generated_at=app.clock(),
                data_timestamp=data_timestamp,
            )
            return
        tmp = output.with_name(output.name + ".tmp")
        try:
            with tmp.open("w", encoding="utf-8") as fh:
                count = write_json_export(
                    fh,
                    app.trial_states(),
                    generated_at=app.clock(),
                    data_timestamp=data_timestamp,
                )
            tmp.replace(output)  # atomic: a reader never sees half a file
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            _fail(f"cannot write {output}: {exc.strerror}", EXIT_FAILURE)
        typer.echo(f"Wrote {count} trials to {output}", err=True)


notify_cli = typer.Typer(
    help="Deliver, retry and test notifications (email and webhooks).",
    no_args_is_help=True,
)
cli.add_typer(notify_cli, name="notify")


def _print_flush(result: FlushResult) -> None:
    typer.echo(
        f"Delivered {result.sent}; {result.retrying} will be retried; "
        f"{result.dead} dead-lettered; {result.busy} being sent by another process."
    )
    for error in result.errors:
        typer.echo(f"  error: {error}", err=True)


@notify_cli.command("flush")
def notify_flush() -> None:
    """Deliver every queued notification now, without waiting for its retry time.

    Example: trialwatch notify flush
    """
    with _app() as app:
        result = app.flush(ignore_backoff=True)
        _print_flush(result)
        if result.retrying or result.dead:
            raise typer.Exit(EXIT_FAILURE)


@notify_cli.command("retry")
def notify_retry(
    ids: Annotated[
        list[int] | None, typer.Argument(help="Dead letters to retry (default: all).")
    ] = None,
) -> None:
    """Re-queue dead letters (after fixing what made them fail) and deliver them.

    Example: trialwatch notify retry
    """
    with _app() as app:
        count = app.store.requeue_dead(app.clock(), ids or ())
        typer.echo(f"Re-queued {count} dead letter(s).")
        if count:
            _print_flush(app.flush(ignore_backoff=True))


@notify_cli.command("digest")
def notify_digest(
    mode: Annotated[str, typer.Argument(help="daily or weekly.")] = "daily",
) -> None:
    """Send the daily or weekly digest now (the daemon does this on its schedule).

    Example: trialwatch notify digest weekly
    """
    if mode not in {"daily", "weekly"}:
        _fail(f"unknown digest {mode!r} (daily or weekly)", EXIT_CONFIG)
    with _app() as app:
        created = app.fold_digests(mode)
        typer.echo(f"Prepared {created} {mode} digest(s).")
        _print_flush(app.flush())


@notify_cli.command("test")
def notify_test() -> None:
    """Send a test email to the configured recipients and say clearly what failed.

    Example: TRIALWATCH_EMAIL__TO='["me@example.org"]' trialwatch notify test
    """
    with _app() as app:
        email = app.settings.email
        typer.echo(
            f"Sending a test message via {email.smtp_host}:{email.smtp_port} "
            f"({email.security}) from {email.sender} ..."
        )
        try:
            recipients = app.send_test_message()
        except DeliveryError as exc:
            _fail(f"test message NOT sent: {exc}", EXIT_FAILURE)
        typer.echo(f"Test message accepted for {', '.join(recipients)}.")
        if not email.enabled:
            typer.echo("Note: [email] enabled is false: change reports are not emailed yet.")


@cli.command()
def daemon() -> None:
    """Run in the foreground: sync on schedule, deliver notifications, send digests.

    Example: TRIALWATCH_SCHEDULE__INTERVAL_SECONDS=3600 trialwatch daemon
    """
    from trialwatch.daemon import Daemon

    with _app(need_watchlist=True) as app:
        code = Daemon(app).run()
    raise typer.Exit(code)


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
