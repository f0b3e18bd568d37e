"""``history``, ``diff`` and ``export``: reading what trialwatch recorded.

Shared with ``_report``: :func:`resolve_one` (an id or a label -> one NCT id), :func:`read_day`
(a ``YYYY-MM-DD`` option) and :func:`write_output` (from ``_output``: stdout, or a file).
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated

import typer

from trialwatch.cli._common import EXIT_CONFIG, cli, echo_err, fail, open_app
from trialwatch.cli._output import write_output

if TYPE_CHECKING:
    from trialwatch.app import App
    from trialwatch.diff import ChangeFilter
    from trialwatch.records import RecordedChange

EXPORT_FORMATS = ("json", "csv", "jsonl", "atom")
_CHANGE_FORMATS = ("jsonl", "atom", "csv")

_TRIAL_ARGUMENT = typer.Argument(
    help="The trial: an NCT id or a label, e.g. SEAL.", metavar="TRIAL"
)
OUTPUT_OPTION = typer.Option(
    "--output",
    "-o",
    metavar="FILE",
    help=(
        "Write to FILE instead of stdout: a file is replaced at once (keeping its mode); "
        "a pipe or device is written through; - is stdout."
    ),
)


def resolve_one(app: App, key: str) -> str:
    """An NCT id or a label -> the one NCT id it names (exit 2 when none or several)."""
    found = app.resolve_trial(key)
    if not found:
        fail(
            f"{key.strip()!r} is not a known trial id or label; `trialwatch watch list` shows "
            "them (a trial is known after the first sync that watched it)",
            EXIT_CONFIG,
        )
    if len(found) > 1:
        titles = app.trial_titles(found)
        candidates = "".join(
            f"\n  {nct_id}  {titles.get(nct_id, (None, None))[0] or ''}".rstrip()
            for nct_id in found
        )
        fail(
            f"{key.strip()!r} names {len(found)} trials; use an id or more of a label:{candidates}",
            EXIT_CONFIG,
        )
    return found[0]


def read_day(option: str, text: str | None) -> date | None:
    """A ``YYYY-MM-DD`` option's value (``None`` when not given); exit 2 in one line if bad."""
    if text is None:
        return None
    from trialwatch.records import parse_day

    try:
        return parse_day(text)
    except ValueError as exc:
        fail(f"{option}: {exc}", EXIT_CONFIG)


_VERSION_NUMBER = re.compile(r"[vV]?(\d{1,6})")


def _day_or_version(option: str, text: str | None) -> tuple[date | None, int | None]:
    """``--from``/``--to`` of ``diff``: a ``YYYY-MM-DD`` day, or a registry version number
    (``3`` or ``v3``); exit 2 in one line if neither."""
    if text is not None:
        number = _VERSION_NUMBER.fullmatch(text.strip())
        if number is not None:
            return None, int(number.group(1))
    return read_day(option, text), None


MIN_SEVERITY_OPTION = typer.Option(
    "--min-severity",
    metavar="LEVEL",
    help="Only changes at or above this severity: critical, major or minor (default).",
)
CATEGORY_OPTION = typer.Option(
    "--category",
    metavar="CATEGORY",
    help="Only changes of this category (repeat, or comma-separate): status, dates, "
    "enrollment, results, design, sites, outcomes, administrative, discovery.",
)


def read_filter(min_severity: str | None, categories: list[str] | None) -> ChangeFilter:
    """``--min-severity`` and ``--category`` as one :class:`ChangeFilter`; a plain message and
    exit 2 for a word that is not one of the choices."""
    from trialwatch.diff import ChangeFilter
    from trialwatch.models import Category, Severity

    level = Severity.MINOR
    if min_severity is not None:
        try:
            level = Severity.parse(min_severity)
        except ValueError as exc:
            fail(f"--min-severity: {exc}", EXIT_CONFIG)
        if level is Severity.ADMIN:
            fail(
                "--min-severity admin: admin lines (last update posted) are recorded but never "
                "counted or shown as changes; the lowest is minor",
                EXIT_CONFIG,
            )
    chosen: set[Category] = set()
    for text in categories or ():
        for word in filter(None, (w.strip().lower() for w in text.split(","))):
            try:
                chosen.add(Category(word))
            except ValueError:
                names = ", ".join(c.value for c in Category)
                fail(f"--category: unknown category {word!r} (choose from {names})", EXIT_CONFIG)
    return ChangeFilter(level, frozenset(chosen))


def check_format(fmt: str, choices: tuple[str, ...], what: str) -> None:
    if fmt not in choices:
        fail(f"unknown {what} format {fmt!r} (choose from {', '.join(choices)})", EXIT_CONFIG)


def data_timestamp(app: App) -> str | None:
    """CT.gov's dataTimestamp of the last complete sync: what the current state reflects."""
    return app.data_timestamp()


@cli.command()
def history(
    trial: Annotated[str, _TRIAL_ARGUMENT],
    since: Annotated[
        str | None,
        typer.Option(
            "--since", metavar="DATE", help="Only what was recorded from this UTC day on."
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
) -> None:
    """Show every recorded version and change of one trial, newest first, with links to its
    study page and CT.gov's history tab (which has what came before trialwatch watched it).

    Example: trialwatch history SEAL --since 2026-01-01   (or: trialwatch history NCT02606461)
    """
    day = read_day("--since", since)
    check_format(fmt, ("text", "json"), "history")
    from trialwatch.history import history_json, render_history_text

    with open_app(create=False) as app:
        found = app.trial_history(resolve_one(app, trial))
    if found is None:  # resolved, then gone: a concurrent `watch remove` cannot do that
        fail(f"{trial.strip()!r} is not a known trial id or label", EXIT_CONFIG)
    if fmt == "json":
        import json

        text = json.dumps(history_json(found, since=day), ensure_ascii=False, indent=2) + "\n"
    else:
        text = render_history_text(found, since=day)
    write_output(None, lambda out: out.write(text))


@cli.command("diff")
def diff_versions(
    trial: Annotated[str, _TRIAL_ARGUMENT],
    from_day: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="DATE|VERSION",
            help="Compare from the version recorded as of the start of this UTC day, or from "
            "the registry's version of this number (v3 or 3; read by `trialwatch backfill`).",
        ),
    ] = None,
    to_day: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="DATE|VERSION",
            help="Compare to the version recorded as of the end of this day, or to the "
            "registry's version of this number.",
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
) -> None:
    """Show what changed between two recorded versions of a trial, in the emails' words.

    Without dates: the last two versions. A day before trialwatch first recorded the trial
    starts at its first version, and the output says so and links CT.gov's history tab. A
    version number is the registry's (0 is the registration), as `trialwatch backfill` read it.

    Example: trialwatch diff SEAL --from 2026-01-01 --to 2026-06-30

    Example: trialwatch diff SEAL --from v0 --to v3
    """
    older_day, older_version = _day_or_version("--from", from_day)
    newer_day, newer_version = _day_or_version("--to", to_day)
    if older_day and newer_day and newer_day < older_day:
        fail(f"--to {newer_day} is before --from {older_day}", EXIT_CONFIG)
    check_format(fmt, ("text", "json"), "diff")
    from trialwatch.history import render_version_diff_text, version_diff, version_diff_json

    with open_app(create=False) as app:
        found = app.trial_history(resolve_one(app, trial))
    if found is None:
        fail(f"{trial.strip()!r} is not a known trial id or label", EXIT_CONFIG)
    try:
        result = version_diff(
            found,
            from_day=older_day,
            to_day=newer_day,
            from_version=older_version,
            to_version=newer_version,
        )
    except ValueError as exc:  # nothing recorded yet, or no such version
        fail(str(exc), EXIT_CONFIG)
    if fmt == "json":
        import json

        text = json.dumps(version_diff_json(result), ensure_ascii=False, indent=2) + "\n"
    else:
        text = render_version_diff_text(result)
    write_output(None, lambda out: out.write(text))


@cli.command()
def export(
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="json or csv (one trial each), jsonl or csv with --changes (one change each), "
            "atom (a feed of changes).",
        ),
    ] = "json",
    changes: Annotated[
        bool,
        typer.Option(
            "--changes", help="Export change events, not trials (jsonl, csv; atom always)."
        ),
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", metavar="DATE", help="Changes detected from this UTC day on (changes)."
        ),
    ] = None,
    min_severity: Annotated[str | None, MIN_SEVERITY_OPTION] = None,
    category: Annotated[list[str] | None, CATEGORY_OPTION] = None,
    bom: Annotated[
        bool,
        typer.Option("--bom", help="Start a CSV with a UTF-8 byte order mark (for Excel)."),
    ] = False,
    output: Annotated[Path | None, OUTPUT_OPTION] = None,
) -> None:
    """Export every watched trial's current state, or the recorded changes, stamped with the
    CT.gov data timestamp they reflect (formats: docs/export-formats.md; the JSON document's
    schema: docs/export.schema.json).

    Example: trialwatch export --format csv --bom --output trials.csv
             trialwatch export --format csv --changes --min-severity major --since 2026-01-01
    """
    check_format(fmt, EXPORT_FORMATS, "export")
    if fmt == "jsonl" and not changes:
        fail("--format jsonl exports change events: add --changes", EXIT_CONFIG)
    if changes and fmt not in _CHANGE_FORMATS:
        fail("change events export as --format jsonl, csv or atom", EXIT_CONFIG)
    of_changes = changes or fmt == "atom"
    if not of_changes and (since is not None or min_severity is not None or category):
        fail(
            "--since, --min-severity and --category apply to change exports "
            "(--changes, or --format atom)",
            EXIT_CONFIG,
        )
    if bom and fmt != "csv":
        fail("--bom applies to --format csv", EXIT_CONFIG)
    day = read_day("--since", since)
    shown = read_filter(min_severity, category)

    with open_app(create=False) as app:
        if of_changes:
            count = _export_changes(app, fmt, day, output, shown=shown, bom=bom)
            what = "change" if count == 1 else "changes"
        else:
            count = _export_trials(app, fmt, bom, output)
            what = "trial" if count == 1 else "trials"
    if output is not None:
        echo_err(f"Wrote {count} {what} to {output}")


def _export_trials(app: App, fmt: str, bom: bool, output: Path | None) -> int:
    from trialwatch.export import write_csv_export, write_json_export

    generated_at, stamp = app.clock(), data_timestamp(app)
    written = 0

    def write(out: IO[str]) -> None:
        nonlocal written
        states = app.trial_states()
        if fmt == "csv":
            written = write_csv_export(
                out, states, generated_at=generated_at, data_timestamp=stamp, bom=bom
            )
        else:
            written = write_json_export(
                out, states, generated_at=generated_at, data_timestamp=stamp
            )

    write_output(output, write, newline="" if fmt == "csv" else None)
    return written


def _export_changes(
    app: App,
    fmt: str,
    since: date | None,
    output: Path | None,
    *,
    shown: ChangeFilter,
    bom: bool,
) -> int:
    from trialwatch.records import Period

    start = Period(since).start if since is not None else None
    written = 0

    def write(out: IO[str]) -> None:
        nonlocal written
        if fmt == "jsonl":
            from trialwatch.export import write_jsonl_changes

            # One event at a time, as they stream from the database: memory stays flat.
            for event, label in app.iter_changes(since=start, shown=shown):
                written += write_jsonl_changes(out, [event], labels={event.nct_id: label})
            return
        if fmt == "csv":
            from trialwatch.export import write_csv_changes

            written = write_csv_changes(out, app.iter_changes(since=start, shown=shown), bom=bom)
            return
        from trialwatch.feeds import render_atom_feed

        labels: dict[str, str | None] = {}
        events: list[RecordedChange] = []
        for event, label in app.iter_changes(since=start, shown=shown):
            labels[event.nct_id] = label
            events.append(event)
        written = len(events)
        from trialwatch.feeds import DEFAULT_TAG_AUTHORITY

        web = app.settings.web
        feed = render_atom_feed(
            events,
            generated_at=app.clock(),
            data_timestamp=data_timestamp(app),
            labels=labels,
            authority=web.feed_authority or DEFAULT_TAG_AUTHORITY,
            # The feed `trialwatch serve` publishes, when the config says where it lives.
            self_url=f"{web.public_url}/feed.atom" if web.public_url else None,
        )
        out.write(feed.decode("utf-8"))

    write_output(output, write, newline="")
    return written
