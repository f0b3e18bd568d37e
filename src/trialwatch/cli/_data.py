"""``history`` and ``export``: reading what trialwatch recorded."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from trialwatch.cli._common import EXIT_CONFIG, EXIT_FAILURE, cli, fail, open_app, when


def resolve_one(app: object, key: str) -> str:
    """An NCT id or a label -> the one NCT id it names (exit 2 when none or several)."""
    from trialwatch.app import App

    assert isinstance(app, App)
    found = app.store.resolve_trial(key)
    if not found:
        fail(
            f"{key.strip()!r} is not a known trial id or label; `trialwatch watch list` shows "
            "them (a trial is known after the first sync that watched it)",
            EXIT_CONFIG,
        )
    if len(found) > 1:
        fail(f"{key.strip()!r} names several trials ({', '.join(found)}): use an id", EXIT_CONFIG)
    return found[0]


@cli.command()
def history(
    trial: Annotated[str, typer.Argument(help="The trial: an NCT id or a label, e.g. SEAL.")],
) -> None:
    """Show the timeline of changes of one trial.

    Example: trialwatch history NCT02606461   (or: trialwatch history SEAL)
    """
    from trialwatch.models import Severity
    from trialwatch.vocabulary import history_url, study_url

    with open_app() as app:
        nct_id = resolve_one(app, trial)
        row = app.store.trial(nct_id)
        assert row is not None
        label = app.store.trial_titles([nct_id]).get(nct_id, (None, None))[0] or ""
        typer.echo(f"{row.nct_id}  {label}  {row.brief_title or ''}".rstrip())
        typer.echo(f"{study_url(nct_id)}  (registry history: {history_url(nct_id)})")
        events = app.store.history(nct_id)
        versions = app.store.versions(nct_id)
        if versions:
            typer.echo(f"{when(versions[0].first_seen_at)}  first recorded (baseline)")
        for event, run in events:
            typer.echo(
                f"{when(event.detected_at)}  [{event.category}/"
                f"{Severity(event.severity).label}] {event.summary}"
                f"  (data {run.data_timestamp})"
            )
        if not events:
            typer.echo("No changes recorded since the baseline.")


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
    from trialwatch.export import write_json_export

    if fmt != "json":
        fail(f"unknown export format {fmt!r} (supported: json)", EXIT_CONFIG)
    with open_app() as app:
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
            fail(f"cannot write {output}: {exc.strerror}", EXIT_FAILURE)
        typer.echo(f"Wrote {count} trials to {output}", err=True)
