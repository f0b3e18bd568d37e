"""``watch``: the watch set in the database — list, add, remove, import from any text."""

from __future__ import annotations

import codecs
import re
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, BinaryIO

import typer

from trialwatch.cli._common import EXIT_CONFIG, cli, fail, open_app, table, when
from trialwatch.ids import fold_nct_id, nct_id_problem
from trialwatch.vocabulary import clip

watch_cli = typer.Typer(
    help=(
        "The watch set: which trials trialwatch follows, and where each came from "
        "(config, cli, import, query:<name>).\n\n"
        "Example: trialwatch watch add NCT02606461 --label SEAL && trialwatch watch list"
    ),
    no_args_is_help=True,
)
cli.add_typer(watch_cli, name="watch")

_IDS = re.compile(r"^(?:NCT[0-9]{8})+$")


def _ids(values: list[str]) -> list[str]:
    """Validate ids the user typed: all or nothing (exit 2 naming each bad one).

    Case, spaces and hyphens inside an id are forgiven (``nct0160 7905``); commas separate ids.
    """
    ids: list[str] = []
    bad: list[str] = []
    for value in values:
        for part in value.split(","):
            if not part.strip():
                continue
            compact = re.sub(r"[\s\-:]", "", fold_nct_id(part))
            if _IDS.match(compact):
                chunks = [compact[i : i + 11] for i in range(0, len(compact), 11)]
            else:
                chunks = [compact]
            for chunk in chunks:
                problem = nct_id_problem(chunk)
                if problem is None:
                    ids.append(chunk)
                else:
                    bad.append(f"{part.strip() if len(chunks) == 1 else chunk} ({problem})")
    if bad:
        fail("not NCT numbers: " + "; ".join(bad) + "; nothing changed", EXIT_CONFIG)
    if not ids:
        fail("no NCT numbers given", EXIT_CONFIG)
    return list(dict.fromkeys(ids))


@watch_cli.command("list")
def watch_list() -> None:
    """List the watched trials: id, label, sources, when added, current status.

    Example: trialwatch watch list
    """
    from trialwatch.vocabulary import status_label

    with open_app(create=False) as app:
        entries = app.watch_entries()
        rows = [
            [
                e.nct_id,
                clip(e.display_label, 40),
                ",".join(e.sources),
                when(e.added_at),
                e.refused
                or (status_label(e.overall_status) if e.overall_status else "not synced yet"),
            ]
            for e in entries
        ]
        typer.echo(table(["TRIAL", "LABEL", "SOURCE", "ADDED", "STATUS"], rows))
        typer.echo(f"\n{len(entries)} trial(s) watched.")


@watch_cli.command("add")
def watch_add(
    ids: Annotated[list[str], typer.Argument(help="NCT ids, e.g. NCT02606461.")],
    label: Annotated[
        str | None, typer.Option("--label", help="A label to show (one id only).")
    ] = None,
) -> None:
    """Start watching trials (fetched at the next sync, even if CT.gov has not refreshed).

    Example: trialwatch watch add NCT02606461 --label SEAL
    """
    wanted = _ids(ids)
    if label is not None and len(wanted) != 1:
        fail("--label goes with exactly one id", EXIT_CONFIG)
    if label is not None:
        from trialwatch.config import LABEL_MAX_LENGTH

        label = label.strip()
        # As the config file's labels: every table, email and page shows it.
        if not label or len(label) > LABEL_MAX_LENGTH or not label.isprintable():
            fail(
                f"--label: give 1 to {LABEL_MAX_LENGTH} printable characters (got "
                f"{len(label)}{'' if label.isprintable() else ', with control characters'})",
                EXIT_CONFIG,
            )
    with open_app() as app:
        change = app.add_watches(wanted, label=label)
        for nct_id in change.added:
            typer.echo(f"Watching {nct_id}.")
        for nct_id in change.already:
            typer.echo(f"{nct_id} was already watched.")
        if change.added:
            them = "it" if len(change.added) == 1 else "them"
            typer.echo(f"Run `trialwatch sync` to fetch {them} now.")


def _already_watched(ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` the database watches (none when there is no database yet: a dry run
    creates nothing)."""
    from trialwatch.cli._common import load
    from trialwatch.statusview import missing_database

    if missing_database(load()) is not None:
        return set()
    with open_app() as app:
        return app.watched_among(ids)


@watch_cli.command("remove")
def watch_remove(
    ids: Annotated[list[str], typer.Argument(help="NCT ids to stop watching.")],
) -> None:
    """Stop watching trials. Their history is kept (`trialwatch history` still shows it).

    Example: trialwatch watch remove NCT01896505
    """
    wanted = _ids(ids)
    with open_app() as app:
        change = app.remove_watches(wanted)
        for nct_id in change.removed:
            typer.echo(f"Stopped watching {nct_id} (its history is kept).")
        for nct_id in change.not_watched:
            typer.echo(f"{nct_id} was not watched.")
        for nct_id in change.kept_by_config:
            typer.echo(
                f"{nct_id} is listed in the config file's [[watchlist]]: remove it there to "
                "stop watching it."
            )
        if change.kept_by_config and not change.removed:
            raise typer.Exit(EXIT_CONFIG)  # usage: the config file, not the command, holds it


_BLOCK = 1 << 20
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _text_pieces(stream: BinaryIO, name: str) -> Iterator[str]:
    """A file's text a block at a time (UTF-8, or UTF-16 with its byte order mark, as Excel's
    "Unicode text" writes it; undecodable bytes replaced). A file whose first block holds a NUL
    byte and no UTF-16 mark is binary (a PDF, a spreadsheet, an image): refused, exit 2, since
    NCT numbers read out of compressed bytes would be chance."""
    first = stream.read(_BLOCK)
    encoding = "utf-16" if first.startswith(_UTF16_BOMS) else "utf-8"
    if encoding == "utf-8" and b"\x00" in first:
        kind = " (a PDF: copy its text out first)" if first.startswith(b"%PDF") else ""
        fail(
            f"{name} is a binary file, not text{kind}: watch import reads NCT numbers from "
            "text (a list, a CSV, an email, a paper's text)",
            EXIT_CONFIG,
        )
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    block = first
    while block:
        yield decoder.decode(block)
        block = stream.read(_BLOCK)
    yield decoder.decode(b"", final=True)


@watch_cli.command("import")
def watch_import(
    source: Annotated[str, typer.Argument(help="A file with NCT numbers in any text, or -.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be added; change nothing.")
    ] = False,
    printed_on: Annotated[
        str | None,
        typer.Option(
            "--printed-on",
            metavar="DATE",
            help="The paper's publication day (YYYY-MM-DD): `report --since-print` then names "
            "the version of each trial in force that day and every change since.",
        ),
    ] = None,
) -> None:
    """Watch every NCT number found in a text: a list, a CSV, an email, a paper's tables.

    Example: trialwatch watch import review.txt --printed-on 2019-06-01
    """
    from trialwatch.cli._data import read_day
    from trialwatch.importtext import read_import_pieces

    printed_day = read_day("--printed-on", printed_on)
    if printed_day is not None and printed_day > datetime.now(UTC).date() + timedelta(days=1):
        # A day not come yet (a typo of the year): report --since-print would name the version
        # "in force" on it, which is today's, and say nothing of what changed since the print.
        fail(
            f"--printed-on: {printed_day} has not come yet; give the day the paper was "
            "published (YYYY-MM-DD)",
            EXIT_CONFIG,
        )
    try:
        if source == "-":
            found = read_import_pieces(_text_pieces(sys.stdin.buffer, "standard input"))
        else:
            with Path(source).open("rb") as fh:
                found = read_import_pieces(_text_pieces(fh, source))
    except OSError as exc:
        fail(f"cannot read {source}: {exc.strerror or exc}", EXIT_CONFIG)
    for skipped in found.skipped:
        typer.echo(f"skipped {skipped}", err=True)
    if not found.nct_ids:
        fail(f"no NCT numbers found in {source}", EXIT_CONFIG)
    if dry_run:
        watched = _already_watched(found.nct_ids)
        for t in found:
            extra = f"  (printed: {t.printed_status_text})" if t.printed_status_text else ""
            verb = "already watched:" if t.nct_id in watched else "would watch"
            typer.echo(f"{verb} {t.nct_id}{extra}")
        typer.echo(
            f"{len(found)} NCT number(s) found: {len(found) - len(watched)} would "
            "be added, "
            f"{len(watched)} already watched; nothing changed (--dry-run)."
        )
        return
    with open_app() as app:
        change, printed = app.import_watches(
            found,
            origin="stdin" if source == "-" else Path(source).name,
            printed_on=printed_day,
        )
        # A thousand lines a write: echo flushes each call, 100,000 writes cost a second.
        for start in range(0, len(change.added), 1000):
            batch = change.added[start : start + 1000]
            typer.echo("\n".join(f"Watching {nct_id}." for nct_id in batch))
        typer.echo(
            f"{len(found)} NCT number(s) found: {len(change.added)} added, "
            f"{len(change.already)} already watched."
        )
        if printed:
            typer.echo(
                f"Read what the text printed (status, title) for {printed} of them: the next "
                "sync says how the registry moved since (and `trialwatch report --since-print`)."
            )
