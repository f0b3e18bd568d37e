"""The watch set as one table: a row per trial, filtered, sorted and cut into pages. Pure.

What the web page's ``/`` lists (:mod:`trialwatch.web`); :meth:`trialwatch.app.App.watch_overview`
fills the rows from the database, this module only decides which rows a page shows, in which
order. Nothing here reads the database, the clock or the network.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from trialwatch.models import PartialDate, Severity

__all__ = [
    "SORTS",
    "SOURCE_KINDS",
    "OverviewQuery",
    "WatchPage",
    "WatchRow",
    "next_expected",
    "select_page",
    "source_kind",
]

SORTS = ("changed", "label", "status", "id")
"""How the table may be sorted: last change newest first (the default), label, status, id."""

SOURCE_KINDS = ("config", "cli", "import", "query")
"""Where a watch comes from: the config file, ``watch add``, ``watch import``, a tracked query."""


def source_kind(source: str) -> str:
    """``"query:selinexor"`` -> ``"query"``; the other sources are their own kind."""
    return "query" if source.startswith("query:") else source


@dataclass(frozen=True, slots=True)
class WatchRow:
    """One watched trial as the table shows it. ``severity`` is that of the most severe change
    its last detection recorded; ``moved_since_print`` marks a trial whose registry status is
    no longer what an imported paper printed; ``next_date`` is filled for the page shown only
    (it needs the trial's snapshot): the next start or completion date not yet reached."""

    nct_id: str
    label: str
    title: str | None
    status: str | None
    sources: tuple[str, ...]
    last_changed_at: datetime | None
    last_change: str | None
    severity: Severity | None
    moved_since_print: bool = False
    problem: str | None = None
    next_date: tuple[str, PartialDate] | None = None


@dataclass(frozen=True, slots=True)
class OverviewQuery:
    """What a reader asked the table for (already validated): filters, sort and page."""

    status: str | None = None
    severity: Severity | None = None
    source: str | None = None
    sort: str = "changed"
    page: int = 1
    page_size: int = 1000


@dataclass(frozen=True, slots=True)
class WatchPage:
    rows: tuple[WatchRow, ...]
    matching: int  # rows that pass the filters, on every page
    watched: int  # the whole watch set
    page: int
    pages: int
    statuses: tuple[str, ...]  # every status present, for the filter's choices


def _sort_key(sort: str) -> object:
    if sort == "label":
        return lambda r: (r.label.casefold(), r.nct_id)
    if sort == "status":
        return lambda r: (r.status or "~", r.label.casefold(), r.nct_id)
    if sort == "id":
        return lambda r: r.nct_id
    # Newest change first (of those found by one sync, the most severe first); trials never
    # changed after them, by label.
    return lambda r: (
        r.last_changed_at is None,
        -(r.last_changed_at.timestamp() if r.last_changed_at else 0.0),
        -(r.severity if r.severity is not None else -1),
        r.label.casefold(),
        r.nct_id,
    )


def select_page(rows: Iterable[WatchRow], query: OverviewQuery) -> WatchPage:
    """Filter, sort and cut ``rows``; a page past the last one shows the last one."""
    every = list(rows)
    statuses = tuple(sorted({r.status for r in every if r.status}))
    chosen = [
        r
        for r in every
        if (query.status is None or r.status == query.status)
        and (query.severity is None or r.severity == query.severity)
        and (query.source is None or any(source_kind(s) == query.source for s in r.sources))
    ]
    chosen.sort(key=_sort_key(query.sort))  # type: ignore[arg-type]
    pages = max(1, -(-len(chosen) // query.page_size))
    page = min(max(1, query.page), pages)
    start = (page - 1) * query.page_size
    return WatchPage(
        rows=tuple(chosen[start : start + query.page_size]),
        matching=len(chosen),
        watched=len(every),
        page=page,
        pages=pages,
        statuses=statuses,
    )


_DATE_FIELDS = (
    ("Start", "start_date"),
    ("Primary completion", "primary_completion_date"),
    ("Completion", "completion_date"),
)


def next_expected(
    dates: Mapping[str, PartialDate | None] | None, today: date
) -> tuple[str, PartialDate] | None:
    """The first of start, primary completion and completion (``dates`` by field name) that
    is still ahead: after ``today``, or one the registry still calls estimated. ``None`` when
    all are past or unknown."""
    if not dates:
        return None
    for name, attr in _DATE_FIELDS:
        value = dates.get(attr)
        if value is None:
            continue
        if value.type == "ESTIMATED" or value.date > today.isoformat()[: len(value.date)]:
            return (name, value)
    return None


def with_next_dates(
    rows: Sequence[WatchRow], dates: Mapping[str, Mapping[str, PartialDate | None]], today: date
) -> tuple[WatchRow, ...]:
    """``rows`` with their next expected date filled from ``dates`` (by NCT id)."""
    return tuple(replace(r, next_date=next_expected(dates.get(r.nct_id), today)) for r in rows)
