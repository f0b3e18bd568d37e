"""``report`` and ``timeline``: the watch set over a period, in words and as a picture.

Limits, so a watch set of 100,000 trials stays answerable: a report loads only the trials with
changes in the period (and, for text, markdown and JSON, only those changes and the first and
current version of each); the watch set's other trials are listed only while there are at most
:data:`trialwatch.app.QUIET_LISTED_MAX` of them, else counted. The picture draws at most
:data:`trialwatch.app.PICTURE_MAX_TRIALS` trials (one SVG each): more is refused with what to
do instead. The reading is :class:`trialwatch.app.App`'s; this module parses, renders, writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trialwatch.cli._common import EXIT_CONFIG, cli, echo_err, fail, open_app
from trialwatch.cli._data import (
    CATEGORY_OPTION,
    MIN_SEVERITY_OPTION,
    OUTPUT_OPTION,
    check_format,
    data_timestamp,
    read_day,
    read_filter,
    resolve_one,
)
from trialwatch.cli._output import write_output


def _report_since_print(fmt: str, output: Path | None) -> None:
    import json as json_lib

    check_format(fmt, ("text", "json"), "report --since-print")
    with open_app(create=False) as app:
        printed = app.printed_entries()
        drifts = app.since_print()
        stories = app.print_stories()
        stamp = data_timestamp(app)
    if not printed:
        fail("nothing imported yet: `trialwatch watch import FILE` reads a paper's table", 2)
    if fmt == "json":
        doc = {
            "data_timestamp": stamp,
            "printed": len(printed),
            "drifts": [
                {
                    "nct_id": d.nct_id,
                    "text": d.line,
                    "status_moved": d.status_moved,
                    "unknown_to_registry": d.unknown,
                    "title_note": d.title_note,
                }
                for d in drifts
            ],
            "since_printed_on": [{"nct_id": n, "lines": lines} for n, lines in stories],
        }
        text = json_lib.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    else:
        moved = [d for d in drifts if d.status_moved]
        lines = [
            f"Since print: {len(moved)} of {len(printed)} printed trials have another status "
            f"in the registry now (CT.gov data as of {stamp or 'not synced yet'}).",
            "",
        ]
        for drift in drifts:
            lines.append(drift.line)
            if drift.title_note and drift.status_moved:
                lines.append(f"  note: {drift.title_note}")
        if stories:
            lines += ["", "Since the paper was published (the version then, every change since):"]
            for _, story in stories:
                lines += story
        text = "\n".join(lines) + "\n"
    write_output(output, lambda out: out.write(text))


@cli.command()
def report(
    since: Annotated[
        str | None, typer.Option("--since", metavar="DATE", help="First UTC day of the period.")
    ] = None,
    since_print: Annotated[
        bool,
        typer.Option(
            "--since-print",
            help="Instead of a period: every trial whose registry status differs from what an "
            "imported paper printed (`trialwatch watch import`), and trials it does not know.",
        ),
    ] = False,
    until: Annotated[
        str | None,
        typer.Option("--until", metavar="DATE", help="Last UTC day of the period (default: none)."),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="text, markdown, json or html.")
    ] = "text",
    min_severity: Annotated[str | None, MIN_SEVERITY_OPTION] = None,
    category: Annotated[list[str] | None, CATEGORY_OPTION] = None,
    output: Annotated[Path | None, OUTPUT_OPTION] = None,
) -> None:
    """Every change recorded across the watch set in a period, grouped by trial, most severe
    first, each trial summed up in one line ("Completion slipped 14 months ..."). HTML adds a
    timeline picture of each trial's dates, slips and statuses.

    The period is whole UTC days, both included. Where it reaches before trialwatch first
    recorded a trial, the report says so and links CT.gov's history tab.

    Example: trialwatch report --since 2026-01-01 --format html --output report.html
             trialwatch report --since 2026-01-01 --min-severity major --category status
             trialwatch report --since-print
    """
    from trialwatch.period import REPORT_FORMATS
    from trialwatch.records import Period

    shown = read_filter(min_severity, category)
    if since_print:
        if shown.narrowed:
            fail("--since-print lists status moves: drop --min-severity/--category", 2)
        if since is not None or until is not None:
            fail("--since-print compares with the paper, not a period: drop --since/--until", 2)
        _report_since_print(fmt, output)
        return
    if since is None:
        fail("say which period: --since DATE (or --since-print)", EXIT_CONFIG)
    first = read_day("--since", since)
    last = read_day("--until", until)
    assert first is not None
    try:
        period = Period(first, last)
    except ValueError as exc:
        fail(str(exc), EXIT_CONFIG)
    check_format(fmt, REPORT_FORMATS, "report")
    from trialwatch.exceptions import UserError
    from trialwatch.period import render_period_report

    with open_app(create=False) as app:
        try:
            result = app.period_report(period, picture=fmt == "html", shown=shown)
        except UserError as exc:
            fail(str(exc), EXIT_CONFIG)
    text = render_period_report(result, fmt)
    write_output(output, lambda out: out.write(text))
    if output is not None:
        echo_err(f"Wrote the report ({result.count.text}) to {output}")


@cli.command()
def timeline(
    trials: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="TRIAL", help="Only these trials (ids or labels); default: all watched."
        ),
    ] = None,
    output: Annotated[Path | None, OUTPUT_OPTION] = None,
) -> None:
    """Draw the watched trials one row each across the page, Gantt-like: a bar from start to
    completion, the three dates marked (actual filled, estimated hollow, primary completion a
    diamond), each recorded slip as an arrow from the old date to the new, and the status
    history as a colored band: an HTML page of SVG, no script, readable on a phone, prints on A4.

    Example: trialwatch timeline --output timeline.html   (or: trialwatch timeline SEAL BOSTON)
    """
    from trialwatch.exceptions import UserError
    from trialwatch.timeline import render_timeline_page

    with open_app(create=False) as app:
        if trials:
            ids = list(dict.fromkeys(resolve_one(app, key) for key in trials))
        else:
            try:
                ids = app.timeline_ids()
            except UserError as exc:
                fail(str(exc), EXIT_CONFIG)
        histories = app.histories(ids)
        page = render_timeline_page(
            histories, generated_at=app.clock(), data_timestamp=data_timestamp(app)
        )
    write_output(output, lambda out: out.write(page))
    if output is not None:
        drawn = "trial" if len(histories) == 1 else "trials"
        echo_err(f"Wrote the timeline of {len(histories)} {drawn} to {output}")
