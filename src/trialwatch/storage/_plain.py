"""What storage knows without SQLAlchemy: the schema revision this code writes, the releases
that wrote each revision, and whose label names a trial. Plain Python, so that the light read
path (:mod:`trialwatch.storage._glance`) and the tables (:mod:`._schema`) share one copy.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote

HEAD_REVISION = "0006"
"""The schema revision this code writes; kept in step with the newest migration (tested)."""

RELEASES: dict[str, str] = {
    "0.1.0": "0001",  # no migrations yet: its tables, without alembic_version
    "0.2.0": "0006",  # 0005: the registry's record history (backfill); 0006: refused ids
}
"""The schema revision each release writes, oldest first: the one table that names releases in
database messages. A release that changes the schema adds its line (a test holds this
package's version to :data:`HEAD_REVISION`)."""


def made_by(revision: str) -> str:
    """Which trialwatch writes schema ``revision``, in words: "trialwatch 0.1.0", or for a
    revision no release wrote, the releases around it."""
    older = [release for release, rev in RELEASES.items() if rev < revision]
    newer = [release for release, rev in RELEASES.items() if rev > revision]
    exact = [release for release, rev in RELEASES.items() if rev == revision]
    if exact:
        return f"trialwatch {exact[0]}"
    if older and newer:
        return f"a development version between trialwatch {older[-1]} and {newer[0]}"
    if older:
        return f"a trialwatch newer than {older[-1]}"
    return "an unknown version of trialwatch"


SOURCE_ORDER = ("config", "cli", "import")
"""Whose label names a trial when several sources give one: the config file, then ``watch
add``, then an import, then queries (by name)."""


def source_rank(source: str) -> tuple[int, str]:
    return (SOURCE_ORDER.index(source) if source in SOURCE_ORDER else len(SOURCE_ORDER), source)


def best_labels(rows: Iterable[tuple[str, str, str | None]]) -> dict[str, str]:
    """(nct_id, source, label) rows -> each trial's label from its best source that has one."""
    best: dict[str, tuple[tuple[int, str], str]] = {}
    for nct_id, source, label in rows:
        if not label:
            continue
        rank = source_rank(source)
        if nct_id not in best or rank < best[nct_id][0]:
            best[nct_id] = (rank, label)
    return {nct_id: label for nct_id, (_, label) in best.items()}


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for other engines and in-memory databases), read as
    SQLAlchemy's ``make_url`` reads it (host dropped, query string dropped, %-escapes decoded)
    without importing SQLAlchemy."""
    if not url.startswith("sqlite"):
        return None
    _, sep, rest = url.partition("://")
    if not sep:
        return None
    database = unquote(rest.partition("/")[2].split("?", 1)[0])
    return Path(database) if database and database != ":memory:" else None
