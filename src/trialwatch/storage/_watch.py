"""The watch set: which trials are watched, and which sources (config, cli, import, query:…)
hold each one. A trial is watched while any source holds it; its history outlives its watch."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from trialwatch.models import WatchItem
from trialwatch.storage._engine import StoreBase, batches
from trialwatch.storage._plain import source_rank
from trialwatch.storage._schema import Trial, Watch
from trialwatch.storage._sync import ensure_trial_rows
from trialwatch.vocabulary import clip

CONFIG = "config"
_W = Watch.__table__  # type: ignore[attr-defined]
ANALYZE_AFTER = 1000
"""Watch rows added at once from which PostgreSQL's statistics of the watch set are renewed."""


@dataclass(frozen=True, slots=True)
class WatchChange:
    """What a change to the watch set did: ids added, ids already there, ids not there."""

    added: tuple[str, ...] = ()
    already: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    not_watched: tuple[str, ...] = ()
    kept_by_config: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WatchEntry:
    """One watched trial for listings: its sources, label and current status."""

    nct_id: str
    label: str | None
    sources: tuple[str, ...]
    added_at: datetime | None
    table: str | None
    reference: str | None
    overall_status: str | None
    acronym: str | None
    brief_title: str | None
    refused: str | None = None  # "refused by CT.gov: ..." (see trialwatch.ids.refused_mark)

    @property
    def display_label(self) -> str:
        return self.label or self.acronym or _short(self.brief_title) or self.nct_id


def _short(title: str | None, width: int = 60) -> str | None:
    return clip(title, width) if title else None


class WatchMixin(StoreBase):
    def sync_config_watchlist(self, items: Sequence[WatchItem], *, now: datetime) -> WatchChange:
        """Make the ``config`` source hold exactly ``items`` (labels and tables updated).

        Ids that other sources hold stay watched when the config drops them.
        """
        wanted = {w.nct_id: w for w in items}
        with self.session() as s:
            rows = {
                w.nct_id: w
                for w in s.exec(select(Watch).where(Watch.source == CONFIG).with_for_update())
            }
            added = []
            for nct_id, item in wanted.items():
                row = rows.get(nct_id)
                if row is None:
                    added.append(nct_id)
                    s.add(
                        Watch(
                            nct_id=nct_id,
                            source=CONFIG,
                            label=item.label,
                            table_ref=item.table,
                            reference=item.reference,
                            added_at=now,
                        )
                    )
                elif (row.label, row.table_ref, row.reference) != (
                    item.label,
                    item.table,
                    item.reference,
                ):
                    row.label, row.table_ref, row.reference = item.label, item.table, item.reference
                    s.add(row)
            removed = sorted(set(rows) - set(wanted))
            if removed:
                s.execute(
                    sa.delete(Watch).where(
                        col(Watch.source) == CONFIG, col(Watch.nct_id).in_(removed)
                    )
                )
            ensure_trial_rows(s, added, now)
        return WatchChange(added=tuple(added), removed=tuple(removed))

    def add_watches(
        self,
        ids: Sequence[str],
        *,
        source: str,
        now: datetime,
        labels: dict[str, str] | None = None,
    ) -> WatchChange:
        """Watch ``ids`` on behalf of ``source``; ids any source already watches are reported."""
        with self.session() as s:
            return add_watch_rows(s, ids, source=source, now=now, labels=labels)

    def remove_watches(
        self, ids: Sequence[str], *, sources: Iterable[str] | None = None
    ) -> WatchChange:
        """Stop watching ``ids`` (all sources but the config, or only ``sources``).

        The trial, its versions and its changes are kept. An id the config file lists stays
        watched (``kept_by_config``): the config is the declarative start of the watch set.
        """
        unique = list(dict.fromkeys(ids))
        with self.session() as s:
            rows = list(
                s.exec(select(Watch).where(col(Watch.nct_id).in_(unique)).with_for_update())
            )
            by_id: dict[str, list[Watch]] = {}
            for row in rows:
                by_id.setdefault(row.nct_id, []).append(row)
            allowed = None if sources is None else set(sources)
            removed, kept = [], []
            for nct_id in unique:
                for row in by_id.get(nct_id, []):
                    if row.source == CONFIG and (allowed is None or CONFIG not in allowed):
                        continue
                    if allowed is not None and row.source not in allowed:
                        continue
                    s.delete(row)
                    if nct_id not in removed:
                        removed.append(nct_id)
                if any(r.source == CONFIG for r in by_id.get(nct_id, [])) and (
                    allowed is None or CONFIG not in allowed
                ):
                    kept.append(nct_id)
        return WatchChange(
            removed=tuple(i for i in removed if i not in kept),
            not_watched=tuple(i for i in unique if i not in by_id),
            kept_by_config=tuple(kept),
        )

    def watch_entries(self, ids: Sequence[str] | None = None) -> list[WatchEntry]:
        """Every watched trial (or those of ``ids``), by id, with its sources."""
        with self.session() as s:
            query = (
                select(Watch, Trial)
                .join(Trial, col(Trial.nct_id) == col(Watch.nct_id), isouter=True)
                .order_by(col(Watch.nct_id))
            )
            if ids is not None:
                query = query.where(col(Watch.nct_id).in_(list(ids)))
            grouped: dict[str, list[tuple[Watch, Trial | None]]] = {}
            for watch, trial in s.exec(query):
                grouped.setdefault(watch.nct_id, []).append((watch, trial))
        entries = []
        for nct_id, pairs in grouped.items():
            watches = sorted((w for w, _ in pairs), key=lambda w: source_rank(w.source))
            row = pairs[0][1]
            entries.append(
                WatchEntry(
                    nct_id=nct_id,
                    label=next((w.label for w in watches if w.label), None),
                    sources=tuple(w.source for w in watches),
                    added_at=min((w.added_at for w in watches if w.added_at), default=None),
                    table=next((w.table_ref for w in watches if w.table_ref), None),
                    reference=next((w.reference for w in watches if w.reference), None),
                    overall_status=row.overall_status if row else None,
                    acronym=row.acronym if row else None,
                    brief_title=row.brief_title if row else None,
                    refused=row.refused if row else None,
                )
            )
        return entries

    def watched_count(self) -> int:
        with self.session() as s:
            return int(s.exec(select(sa.func.count(sa.distinct(col(Watch.nct_id))))).one())

    def iter_watched_ids(self, chunk: int = 1000, *, to_fetch: bool = False) -> Iterator[list[str]]:
        """Watched ids in order, ``chunk`` at a time (keyset paging: memory flat in N).

        ``to_fetch``: only those a sync asks CT.gov for — not the ones it refuses to look up,
        nor those folded into another watched trial (see :func:`_fetchable`)."""
        skipped = self._not_fetched() if to_fetch else frozenset()
        after = ""
        kept: list[str] = []
        while True:
            with self.reading() as s:
                ids = list(s.execute(_next_watched(after, chunk)).scalars())
            kept.extend(i for i in ids if i not in skipped)
            while len(kept) >= chunk or (kept and not ids):
                yield kept[:chunk]
                kept = kept[chunk:]
            if not ids:
                return
            after = ids[-1]

    def _not_fetched(self) -> frozenset[str]:
        """The trials a sync does not fetch (:func:`_fetchable`'s rule, asked once): few, if
        any. Read once, so that each page's window is an index range alone."""
        trial = Trial.__table__  # type: ignore[attr-defined]
        surviving = Watch.__table__.alias("surviving")  # type: ignore[attr-defined]
        folded = sa.exists().where(
            trial.c.canonical_id.is_not(None), surviving.c.nct_id == trial.c.canonical_id
        )
        with self.reading() as s:
            return frozenset(
                s.execute(
                    sa.select(trial.c.nct_id).where(sa.or_(trial.c.refused.is_not(None), folded))
                ).scalars()
            )

    def watched_among(self, ids: Iterable[str]) -> list[str]:
        """Which of ``ids`` are watched and fetched (of the studies CT.gov updated today)."""
        found: set[str] = set()
        for chunk in batches(sorted(set(ids))):
            with self.session() as s:
                found.update(
                    s.exec(
                        select(Watch.nct_id)
                        .where(col(Watch.nct_id).in_(chunk), _fetchable())
                        .distinct()
                    )
                )
        return sorted(found)


def _fetchable() -> sa.ColumnElement[bool]:
    """A watched trial is fetched unless CT.gov refuses to look its id up (``refused``), or
    merged it into a study that is watched too: the two are one trial then, fetched (and told
    about) once, under the surviving id."""
    trial = Trial.__table__  # type: ignore[attr-defined]
    other = Watch.__table__.alias("surviving")  # type: ignore[attr-defined]
    refused = sa.exists().where(trial.c.nct_id == col(Watch.nct_id), trial.c.refused.is_not(None))
    folded = sa.exists().where(
        trial.c.nct_id == col(Watch.nct_id),
        trial.c.canonical_id.is_not(None),
        trial.c.canonical_id == other.c.nct_id,
    )
    return sa.and_(~refused, ~folded)


def _next_watched(after: str, chunk: int) -> sa.Select[tuple[str]]:
    """The next ``chunk`` watched ids after ``after``, in order: the window a page is read in.

    An index range of the watch table and nothing else, so that PostgreSQL stops after
    ``chunk`` ids. With :func:`_fetchable`'s exclusions in the same WHERE, it anti-joined the
    whole trial table (or, before ANALYZE, sorted every remaining watched id) for every
    page: 90 ms a page at 20,000 watched, growing with N.
    """
    watch = Watch.__table__  # type: ignore[attr-defined]
    return (
        sa.select(watch.c.nct_id)
        .where(watch.c.nct_id > after)
        .distinct()
        .order_by(watch.c.nct_id)
        .limit(chunk)
    )


def add_watch_rows(
    s: Session,
    ids: Sequence[str],
    *,
    source: str,
    now: datetime,
    labels: dict[str, str] | None = None,
) -> WatchChange:
    """In ``s``'s transaction: watch ``ids`` (distinct, as every caller's are) on behalf of
    ``source`` (a label given for an id it already watches replaces the old one); ``added``:
    the ids nobody watched before, whose trial rows are made now.

    Looked up, then written, :data:`ROWS_PER_STATEMENT` ids a statement, so that what is held
    does not grow with the number of ids (only the ids already watched are kept aside); still
    one transaction (the caller's). Every lookup comes before any write: PostgreSQL plans
    from statistics that say the tables are empty until the ANALYZE below, and lookups made
    between this transaction's own inserts scanned the whole watch table each time (130 s of
    an import of 100,000 ids that takes 7).
    """
    labels = labels or {}
    watched: set[str] = set()
    mine: set[str] = set()
    for chunk in batches(ids):
        for nct_id, by in s.execute(
            sa.select(_W.c.nct_id, _W.c.source).where(_W.c.nct_id.in_(chunk))
        ):
            watched.add(nct_id)
            if by == source:
                mine.add(nct_id)
    inserted = 0
    for chunk in batches(i for i in ids if i not in mine):
        rows = [
            {
                "nct_id": i,
                "source": source,
                "label": labels.get(i),
                "table_ref": None,
                "reference": None,
                "added_at": now,
            }
            for i in chunk
        ]
        s.execute(sa.insert(_W), rows)
        inserted += len(rows)
    for nct_id, label in labels.items():
        if nct_id in mine and label:
            s.execute(
                sa.update(Watch)
                .where(col(Watch.nct_id) == nct_id, col(Watch.source) == source)
                .values(label=label)
            )
    added = tuple(i for i in ids if i not in watched)
    ensure_trial_rows(s, added, now)
    if inserted >= ANALYZE_AFTER and s.get_bind().dialect.name == "postgresql":
        # PostgreSQL plans from statistics that only ANALYZE (or autovacuum, when it runs, a
        # minute or so later) gathers: a watch set imported into empty tables looks empty to
        # the planner, which then sorts every watched id to page through a few of them.
        s.execute(sa.text("ANALYZE watch, trial"))
    return WatchChange(added=added, already=tuple(i for i in ids if i in watched))
