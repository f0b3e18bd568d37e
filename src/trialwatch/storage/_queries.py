"""Read queries for the commands that show things: status, history, export, watch list.

The history reads fill :mod:`trialwatch.records`' value types, one query per type (trials,
their versions, their change events) for a batch of trials at a time, so a report or an export
over a large watch set holds one batch of rows in the database driver at a time, never the
whole set: callers that keep every history (a report must sort them) decide how many they load.
Each batch is its own short transaction: on SQLite a transaction holds the write lock (see
``_engine``), and a long read would keep a sync waiting.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, select

from trialwatch.exceptions import StorageError
from trialwatch.ids import match_trial_names
from trialwatch.models import PartialDate, Snapshot
from trialwatch.records import (
    Period,
    RecordedChange,
    RecordedVersion,
    TrialHistory,
    assemble_histories,
)
from trialwatch.storage._engine import StoreBase
from trialwatch.storage._plain import SOURCE_ORDER, best_labels, source_rank
from trialwatch.storage._schema import (
    ChangeEvent,
    RecordVersion,
    SyncRun,
    Trial,
    Watch,
)

HISTORY_BATCH = 100
"""Trials per batch of history reads: each batch is three queries with this many ids bound.
A batch's records are held whole while it is read (some 40 KB of objects a trial, its first and
last versions): 500 a batch made a report of 1,000 changed trials peak at 106 MiB, 100 at 85
(the same report, the same output); the queries cost nothing to speak of more."""

CHANGES_BATCH = 1000
"""Change events per query when streaming them (``export --format jsonl|atom``)."""

# Whose label names a trial when several sources give one (as ``WatchEntry`` decides).
_SOURCE_RANK = sa.case(
    *((col(Watch.source) == source, rank) for rank, source in enumerate(SOURCE_ORDER)),
    else_=len(SOURCE_ORDER),
)


def _label_of(nct_id: Any, acronym: Any) -> Any:
    """The name a trial goes by, as a SQL expression correlated on its ``nct_id`` column: the
    label of its best source (config, cli, import, then queries), else its ``acronym``."""
    best = (
        select(Watch.label)
        .where(
            col(Watch.nct_id) == nct_id,
            col(Watch.label).is_not(None),
            col(Watch.label) != "",
        )
        .order_by(_SOURCE_RANK, col(Watch.source))
        .limit(1)
        .scalar_subquery()
    )
    return sa.func.coalesce(best, acronym)


def _is_watched(nct_id: Any) -> Any:
    # EXISTS is one index probe per row on both engines; ``IN (SELECT ... FROM watch)`` would
    # read the whole watch set again for every batch on SQLite.
    return sa.exists().where(col(Watch.nct_id) == nct_id)


def _recorded_change(event: ChangeEvent) -> RecordedChange:
    assert event.id is not None and event.detected_at is not None
    return RecordedChange(
        id=event.id,
        nct_id=event.nct_id,
        detected_at=event.detected_at,
        data_timestamp=event.data_timestamp,
        change=event.to_change(),
        from_version_id=event.from_version_id,
        to_version_id=event.to_version_id,
        origin=event.origin,
    )


def _as_utc(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite returns an aggregate of a datetime column as text
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _in_period(column: Any, period: Period) -> list[Any]:
    clauses = [column >= period.start]
    if period.end is not None:
        clauses.append(column < period.end)
    return clauses


DATE_FIELDS = ("start_date", "primary_completion_date", "completion_date")


@dataclass(frozen=True, slots=True)
class WatchedRow:
    """One watched trial's line in a listing: its sources (best first), its best label, what
    the trial row says now, and the severity of the most severe change its last detection
    recorded."""

    nct_id: str
    sources: tuple[str, ...]
    label: str | None
    acronym: str | None
    brief_title: str | None
    overall_status: str | None
    last_changed_at: datetime | None
    last_change_summary: str | None
    last_error: str | None
    last_severity: int | None

    @property
    def display_label(self) -> str:
        return self.label or self.acronym or _short(self.brief_title) or self.nct_id


def _short(title: str | None, width: int = 60) -> str | None:
    if not title:
        return None
    return title if len(title) <= width else title[: width - 1] + "…"


class QueriesMixin(StoreBase):
    def trial(self, nct_id: str) -> Trial | None:
        with self.session() as s:
            return s.get(Trial, nct_id)

    def resolve_trial(self, key: str) -> list[str]:
        """The NCT ids a user may mean by ``key``: an id, or a label or acronym by
        :func:`~trialwatch.ids.match_trial_names`'s rule (any case, before a colon, a prefix)."""
        text = key.strip()
        if not text:
            return []
        upper = text.upper()
        with self.session() as s:
            if s.get(Trial, upper) is not None:
                return [upper]
            labels = s.exec(select(Watch.nct_id, Watch.label).where(col(Watch.label).is_not(None)))
            names: list[tuple[str, str | None]] = list(labels)
            names += s.exec(
                select(Trial.nct_id, Trial.acronym).where(col(Trial.acronym).is_not(None))
            )
        return match_trial_names(text, names)

    def trial_titles(self, ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        """nct_id -> (label, brief title) for just these trials (a report's, not all N)."""
        if not ids:
            return {}
        wanted = sorted(set(ids))
        with self.session() as s:
            trials = {
                t.nct_id: t for t in s.exec(select(Trial).where(col(Trial.nct_id).in_(wanted)))
            }
            labels = best_labels(
                s.exec(
                    select(Watch.nct_id, Watch.source, Watch.label).where(
                        col(Watch.nct_id).in_(wanted)
                    )
                )
            )
        out: dict[str, tuple[str | None, str | None]] = {}
        for nct_id in wanted:
            trial = trials.get(nct_id)
            label = labels.get(nct_id) or (trial.acronym if trial else None)
            out[nct_id] = (label, trial.brief_title if trial else None)
        return out

    def trial_rows(self, ids: Sequence[str]) -> dict[str, Trial]:
        """The trial rows of ``ids`` (those that have one), in one query."""
        if not ids:
            return {}
        with self.session() as s:
            rows = s.exec(select(Trial).where(col(Trial.nct_id).in_(list(ids))))
            return {t.nct_id: t for t in rows}

    def current_snapshots(self, ids: Sequence[str]) -> dict[str, Snapshot]:
        """Each trial's current snapshot, for those of ``ids`` that have one: one query."""
        if not ids:
            return {}
        with self.session() as s:
            rows = s.execute(
                select(Trial.nct_id, RecordVersion.snapshot_json)
                .join(RecordVersion, col(RecordVersion.id) == col(Trial.current_version_id))
                .where(col(Trial.nct_id).in_(list(ids)))
            ).all()
        return {nct_id: _snapshot_of(text) for nct_id, text in rows}

    def snapshot(self, version_id: int) -> Snapshot:
        with self.session() as s:
            version = s.get(RecordVersion, version_id)
            if version is None:
                raise StorageError(f"record version {version_id} is missing")
            return _snapshot_of(version.snapshot_json)

    # --- history: trials, their versions and their changes -----------------------------------

    def trial_history(self, nct_id: str) -> TrialHistory | None:
        """Everything recorded of one trial (``trialwatch history``, ``diff``): every version
        and every change event. ``None`` when the trial is not known at all."""
        return next(self.histories([nct_id]), None)

    def histories(
        self,
        ids: Iterable[str],
        *,
        changes_in: Period | None = None,
        all_versions: bool = True,
        batch: int = HISTORY_BATCH,
    ) -> Iterator[TrialHistory]:
        """The recorded history of each known trial of ``ids``, in that order (unknown ids are
        skipped), ``batch`` trials at a time: three queries per batch.

        ``changes_in`` keeps only the change events detected in that period (a text report
        needs no others). ``all_versions=False`` loads only the first and the current version
        of each trial: when its record starts and what it says now, which is all a text report
        shows; the timeline picture needs them all (its status spans)."""
        pending: list[str] = []
        for nct_id in ids:
            pending.append(nct_id.strip().upper())
            if len(pending) >= batch:
                yield from self._history_batch(pending, changes_in, all_versions)
                pending = []
        if pending:
            yield from self._history_batch(pending, changes_in, all_versions)

    def _history_batch(
        self, ids: Sequence[str], changes_in: Period | None, all_versions: bool
    ) -> list[TrialHistory]:
        wanted = list(dict.fromkeys(ids))
        with self.session() as s:
            trials = {
                nct_id: (nct_id, label, added_at)
                for nct_id, label, added_at in s.execute(
                    sa.select(
                        col(Trial.nct_id),
                        _label_of(col(Trial.nct_id), col(Trial.acronym)),
                        col(Trial.added_at),
                    ).where(col(Trial.nct_id).in_(wanted))
                )
            }
            versions = self._version_rows(s, wanted, all_versions)
            changes = self._change_rows(s, wanted, changes_in)
        ordered = [trials[i] for i in wanted if i in trials]
        return assemble_histories(ordered, versions, changes)

    @staticmethod
    def _version_rows(s: Session, ids: list[str], all_versions: bool) -> list[RecordedVersion]:
        # Not raw_record: the registry's whole record is large, and no history view reads it.
        query = sa.select(
            col(RecordVersion.id),
            col(RecordVersion.nct_id),
            col(RecordVersion.first_seen_at),
            col(RecordVersion.data_timestamp),
            col(RecordVersion.snapshot_json),
            col(RecordVersion.registry_version),
            col(RecordVersion.registry_date),
        ).where(col(RecordVersion.nct_id).in_(ids))
        if not all_versions:
            first = (
                sa.select(sa.func.min(col(RecordVersion.id)))
                .where(col(RecordVersion.nct_id).in_(ids))
                .group_by(col(RecordVersion.nct_id))
            )
            current = sa.select(col(Trial.current_version_id)).where(
                col(Trial.nct_id).in_(ids), col(Trial.current_version_id).is_not(None)
            )
            query = query.where(
                sa.or_(col(RecordVersion.id).in_(first), col(RecordVersion.id).in_(current))
            )
        return [
            RecordedVersion(
                version_id=row.id,
                nct_id=row.nct_id,
                first_seen_at=row.first_seen_at,
                data_timestamp=row.data_timestamp,
                snapshot=_snapshot_of(row.snapshot_json),
                registry_version=row.registry_version,
                registry_date=row.registry_date,
            )
            for row in s.execute(query)
        ]

    @staticmethod
    def _change_rows(s: Session, ids: list[str], period: Period | None) -> list[RecordedChange]:
        query = select(ChangeEvent).where(col(ChangeEvent.nct_id).in_(ids))
        if period is not None:
            query = query.where(*_in_period(col(ChangeEvent.detected_at), period))
        return [_recorded_change(e) for e in s.exec(query)]

    def changed_trial_ids(self, period: Period) -> list[str]:
        """The watched trials with at least one change event detected in ``period``, by id:
        the trials a period report is about (ids only, so a large watch set costs little)."""
        with self.session() as s:
            return list(
                s.exec(
                    select(ChangeEvent.nct_id)
                    .where(
                        *_in_period(col(ChangeEvent.detected_at), period),
                        _is_watched(col(ChangeEvent.nct_id)),
                    )
                    .distinct()
                    .order_by(col(ChangeEvent.nct_id))
                )
            )

    def iter_changes(
        self, *, since: datetime | None = None, batch: int = CHANGES_BATCH
    ) -> Iterator[tuple[RecordedChange, str | None]]:
        """Every change event of the watched trials detected at or after ``since`` (all when
        ``None``), oldest first by id, each with the name its trial goes by (its label, else
        its acronym). Read ``batch`` events per query (keyset paging: memory flat)."""
        after = 0
        while True:
            query = (
                select(ChangeEvent, _label_of(col(ChangeEvent.nct_id), col(Trial.acronym)))
                .join(Trial, col(Trial.nct_id) == col(ChangeEvent.nct_id), isouter=True)
                .where(col(ChangeEvent.id) > after, _is_watched(col(ChangeEvent.nct_id)))
                .order_by(col(ChangeEvent.id))
                .limit(batch)
            )
            if since is not None:
                query = query.where(col(ChangeEvent.detected_at) >= since)
            with self.session() as s:
                rows = [(_recorded_change(event), label) for event, label in s.exec(query)]
            if not rows:
                return
            yield from rows
            after = rows[-1][0].id

    def watched_rows(self) -> list[WatchedRow]:
        """Every watched trial as the watch-set page lists it, by id: two column-only queries
        (no ORM objects), so a page over thousands of trials stays fast."""
        with self.session() as s:
            rows = s.execute(
                sa.select(
                    col(Watch.nct_id),
                    col(Watch.source),
                    col(Watch.label),
                    col(Trial.acronym),
                    col(Trial.brief_title),
                    col(Trial.overall_status),
                    col(Trial.last_changed_at),
                    col(Trial.last_change_summary),
                    col(Trial.last_error),
                )
                .join(Trial, col(Trial.nct_id) == col(Watch.nct_id), isouter=True)
                .order_by(col(Watch.nct_id))
            ).all()
            # The most severe change of each trial's last detection (``last_changed_at``).
            severities = dict(
                s.execute(
                    select(ChangeEvent.nct_id, sa.func.max(col(ChangeEvent.severity)))
                    .join(Trial, col(Trial.nct_id) == col(ChangeEvent.nct_id))
                    .where(col(ChangeEvent.detected_at) == col(Trial.last_changed_at))
                    .group_by(col(ChangeEvent.nct_id))
                ).all()
            )
        labels = best_labels((r[0], r[1], r[2]) for r in rows)
        out: list[WatchedRow] = []
        for nct_id, group in itertools.groupby(rows, key=lambda r: str(r[0])):
            members = list(group)
            first = members[0]
            severity = severities.get(nct_id)
            out.append(
                WatchedRow(
                    nct_id=nct_id,
                    sources=tuple(sorted((str(m[1]) for m in members), key=source_rank)),
                    label=labels.get(nct_id),
                    acronym=first[3],
                    brief_title=first[4],
                    overall_status=first[5],
                    last_changed_at=first[6],
                    last_change_summary=first[7],
                    last_error=first[8],
                    last_severity=None if severity is None else int(severity),
                )
            )
        return out

    def current_dates(self, ids: Sequence[str]) -> dict[str, dict[str, PartialDate | None]]:
        """Each trial's current start, primary completion and completion dates (by field
        name), read from its snapshot without decoding the rest of it."""
        if not ids:
            return {}
        with self.session() as s:
            rows = s.execute(
                select(Trial.nct_id, RecordVersion.snapshot_json)
                .join(RecordVersion, col(RecordVersion.id) == col(Trial.current_version_id))
                .where(col(Trial.nct_id).in_(list(ids)))
            ).all()
        out: dict[str, dict[str, PartialDate | None]] = {}
        for nct_id, text in rows:
            data = orjson.loads(text)
            out[nct_id] = {
                name: PartialDate(str(value["date"]), value.get("type"))
                if isinstance(value, dict) and value.get("date")
                else None
                for name in DATE_FIELDS
                for value in (data.get(name),)
            }
        return out

    def last_write(self) -> tuple[datetime | None, int]:
        """When the database was last written, as far as its rows tell (a sync's start or
        end, a watch added, a version or change recorded), and how many trials are watched
        (a removed watch leaves no time behind, but moves the count): what a web page's
        ETag and Last-Modified are made of. Not the CT.gov data timestamp, which a backfill
        or an import does not move."""
        columns: tuple[Any, ...] = (
            col(SyncRun.finished_at),
            col(SyncRun.started_at),
            col(Watch.added_at),
            col(Trial.added_at),
            col(Trial.last_changed_at),
        )
        with self.session() as s:
            moments = [s.exec(select(sa.func.max(c))).one() for c in columns]
            watched = int(s.exec(select(sa.func.count(sa.distinct(col(Watch.nct_id))))).one())
        # max() of a UTCDateTime column comes back as the driver's value: make it aware UTC.
        aware = [_as_utc(m) for m in moments if m is not None]
        return (max(aware) if aware else None, watched)

    def count(self, model: type[SQLModel]) -> int:
        with self.session() as s:
            return int(s.exec(select(sa.func.count()).select_from(model)).one())


def _snapshot_of(text: str) -> Snapshot:
    """A stored snapshot's text, loaded: orjson (~5x the standard library's speed; an export
    of 100,000 trials loads each), the standard library for what orjson refuses and an older
    release could have written (an integer beyond 64 bits)."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        data = json.loads(text)
    return Snapshot.from_dict(data)
