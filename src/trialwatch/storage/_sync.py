"""The sync's writes: a run row first, then one transaction per page, then the run's end.

The transaction shape (README "Guarantees", docs/reliability.md):

- :meth:`begin_run` commits a ``running`` run row;
- :meth:`write_page` commits one page: for each trial its new version, its change events and
  the notifications they owe (``held``: not sendable yet) — together or not at all, fenced
  against another sync that committed the same trials meanwhile, and against one that took
  this run for dead and closed it;
- :meth:`finish_run` merges the run's held notifications into one message per recipient and
  records how the run ended, in one transaction. Only a ``complete`` run lets the next poll
  skip fetching.

A process that dies mid-run leaves a ``running`` run whose committed pages stay (their changes
were detected and are owed); :meth:`recover_interrupted`, run by the next sync, releases what
they owe. Nothing detected is lost, nothing is recorded twice.
"""

from __future__ import annotations

import hashlib
import json
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import select
from sqlmodel import Session

from trialwatch.exceptions import ConcurrentUpdateError, StorageError
from trialwatch.failpoints import failpoint
from trialwatch.models import (
    FieldChange,
    NewVersion,
    RunStart,
    RunTotals,
    Severity,
    Snapshot,
    StoredState,
    TrialOutcome,
)
from trialwatch.storage._engine import StoreBase, array_of, batches, first_line, one_of
from trialwatch.storage._plain import best_labels
from trialwatch.storage._schema import (
    ChangeEvent,
    Notification,
    RecordVersion,
    SyncRun,
    Trial,
    Watch,
)

_T = Trial.__table__  # type: ignore[attr-defined]
_V = RecordVersion.__table__  # type: ignore[attr-defined]
_INSERT_VERSION = sa.insert(_V)
_E = ChangeEvent.__table__  # type: ignore[attr-defined]
_N = Notification.__table__  # type: ignore[attr-defined]
_R = SyncRun.__table__  # type: ignore[attr-defined]
_W = Watch.__table__  # type: ignore[attr-defined]

_STORES_VERSION = frozenset({"baseline", "changed", "rebaselined"})
VERSION_ROWS = 100  # versions inserted per statement (see SyncWritesMixin._store_versions)
_SEEN = frozenset({"baseline", "changed", "rebaselined", "refreshed"})


@dataclass(frozen=True, slots=True)
class RunRef:
    """A run being written: its row's id and its uuid (which makes its keys unique)."""

    pk: int
    run_id: str


def short_hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def summary_line(changes: Sequence[FieldChange]) -> str:
    """The most severe change, and how many others matter (administrative churn not counted)."""
    top = max(changes, key=lambda c: c.severity)
    more = sum(1 for c in changes if c is not top and c.severity > Severity.ADMIN)
    return top.summary if more == 0 else f"{top.summary} (+{more} more)"


def ensure_trial_rows(s: Session, ids: Sequence[str], now: datetime) -> None:
    """A trial row for each of ``ids`` (distinct) that has none yet (newly watched, or seen
    for the first time). Every lookup before any insert (see add_watch_rows), each
    :data:`ROWS_PER_STATEMENT` ids a statement; only the ids that have a row are kept aside."""
    existing: set[str] = set()
    dialect = s.get_bind().dialect.name
    for chunk in batches(ids):
        existing.update(
            r[0] for r in s.execute(select(_T.c.nct_id).where(one_of(_T.c.nct_id, chunk, dialect)))
        )
    insert_trial_rows(s, (i for i in ids if i not in existing), now)


def insert_trial_rows(s: Session, ids: Iterable[str], now: datetime) -> None:
    """New trial rows for ``ids``, which have none (the caller knows), one insert for each
    :data:`ROWS_PER_STATEMENT` of them."""
    for chunk in batches(ids):
        rows = [
            {"nct_id": i, "added_at": now, "consecutive_misses": 0, "recheck": False} for i in chunk
        ]
        s.execute(sa.insert(_T), rows)


# PostgreSQL: a page's new versions go in by COPY (binary) and its stored trials' updates in
# one UPDATE whose rows are unnested from arrays, a column each. An executemany sends,
# binds and runs a statement per row: per page of 500 (measured, benchmarks/README.md) the
# versions cost 16 ms of the client's CPU and 36-44 ms of the server's, against 4 and 29-31
# by COPY; the updates 13 ms of the client's against 5. The versions' snapshots stay out of
# any array: as array text (one INSERT ... SELECT FROM unnest) psycopg escaped 3 MB of JSON
# a page in Python, and the first sync took twice as long.
_COPY_VERSIONS = (
    "COPY record_version (nct_id, content_hash, snapshot_json, raw_record, data_timestamp,"
    " first_seen_at, normalizer_version) FROM STDIN (FORMAT BINARY)"
)
_COPY_TYPES = ["varchar", "varchar", "text", "bytea", "varchar", "timestamptz", "int4"]

_STORED_COLUMNS = (
    "nct_id",
    "current_version_id",
    "current_hash",
    "fingerprint",
    "normalizer_version",
    "canonical_id",
    "brief_title",
    "acronym",
    "overall_status",
    "last_changed_at",
    "last_change_summary",
)
_page = (
    sa.func.unnest(*(sa.bindparam(f"page_{c}", type_=array_of(_T.c[c])) for c in _STORED_COLUMNS))
    .table_valued(*_STORED_COLUMNS)
    .render_derived(name="page")
)
_UPDATE_STORED = (
    sa.update(_T)
    .where(_T.c.nct_id == _page.c.nct_id)
    .values(
        {
            **{c: _page.c[c] for c in _STORED_COLUMNS[1:-2]},
            # None: no change to tell, the last one stays
            "last_changed_at": sa.func.coalesce(_page.c.last_changed_at, _T.c.last_changed_at),
            "last_change_summary": sa.func.coalesce(
                _page.c.last_change_summary, _T.c.last_change_summary
            ),
            "consecutive_misses": 0,
            "recheck": False,
            "last_error": None,
        }
    )
)
"""A page's stored trials in one statement (PostgreSQL): ``unnest(:page_nct_id, ...) AS
page(nct_id, ...)`` joined to the trial table."""

# "A watch holds this trial", asked of each trial row that passed the cheap tests before it:
# SQLite then scans the trial table once. Written "nct_id IN (SELECT DISTINCT nct_id FROM
# watch)", it looked up every watched trial by its key instead: 19 against 5 ms at 10,000
# watched trials, each incremental sync asking twice.
_WATCHED = sa.exists().where(_W.c.nct_id == _T.c.nct_id).correlate(_T)

_BIND_NAMES = {
    "nct_id": "b_id",
    "last_changed_at": "changed_at",
    "last_change_summary": "change_summary",
}


def _executemany_row(row: dict[str, Any]) -> dict[str, Any]:
    """A stored trial's row for the update executed once per row (SQLite), keyed by its bind
    names: SQLAlchemy would set a column whose own name is a key."""
    return {_BIND_NAMES.get(key, key): value for key, value in row.items()}


@dataclass(frozen=True)
class _BoundMany:
    """A statement compiled once for SQLite, and how a row becomes its parameters."""

    sql: str
    parameters: Callable[[Mapping[str, Any]], list[Any]]


_BOUND: dict[tuple[str, tuple[str, ...]], _BoundMany | None] = {}


def _bound_many(
    name: str, stmt: Any, keys: tuple[str, ...], dialect: sa.Dialect
) -> _BoundMany | None:
    """``stmt`` compiled for rows with ``keys``, cached under ``name``; None when SQLAlchemy
    would add values of its own (a Python-side default) that only its execution computes."""
    if (name, keys) in _BOUND:
        return _BOUND[(name, keys)]
    compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
    bound = None
    if not (compiled.insert_prefetch or compiled.update_prefetch) and compiled.positiontup:
        taken: list[str] = []  # the row's keys, in the order of the statement's parameters
        process: list[tuple[int, Callable[[Any], Any]]] = []  # (index among taken, processor)
        fixed: list[tuple[int, Any]] = []  # (position, value): what the statement itself sets
        for position, param in enumerate(compiled.positiontup):
            bind = compiled.binds[param]
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if param in keys:
                if processor is not None:
                    process.append((len(taken), processor))
                taken.append(param)
            else:
                value = bind.effective_value
                fixed.append((position, processor(value) if processor else value))
        get = operator.itemgetter(*taken)
        single = len(taken) == 1

        def parameters(row: Mapping[str, Any]) -> list[Any]:
            values = [get(row)] if single else list(get(row))
            for index, processor in process:
                values[index] = processor(values[index])
            for position, value in fixed:  # ascending: each lands where the statement has it
                values.insert(position, value)
            return values

        bound = _BoundMany(str(compiled), parameters)
    _BOUND[(name, keys)] = bound
    return bound


def _execute_many(s: Session, name: str, stmt: Any, rows: Sequence[dict[str, Any]]) -> None:
    """``s.execute(stmt, rows)``, on SQLite over the driver's cursor: the statement compiled
    once (:func:`_bound_many`) and each value bound by its type's processor, as SQLAlchemy
    binds it, without SQLAlchemy's per-row parameter handling (a fifth of a first sync's
    writing). Another engine, or a statement SQLAlchemy must complete, goes through
    ``s.execute``."""
    if not rows:
        return
    conn = s.connection()
    bound = None
    if conn.dialect.name == "sqlite":
        bound = _bound_many(name, stmt, tuple(rows[0]), conn.dialect)
    if bound is None:
        s.execute(stmt, rows)
        return
    params = [bound.parameters(row) for row in rows]
    with _driver_cursor(s) as cursor:
        cursor.executemany(bound.sql, params)


def _copy_versions(s: Session, rows: Sequence[dict[str, Any]]) -> None:
    """COPY ``rows`` into record_version, in ``s``'s transaction (PostgreSQL)."""
    import psycopg  # only a PostgreSQL store gets here

    if any(row["first_seen_at"].tzinfo is None for row in rows):
        raise ValueError("naive datetime given to storage; pass aware UTC datetimes")
    driver = s.connection().connection.driver_connection
    assert driver is not None  # the session's connection is checked out
    try:
        with driver.cursor() as cursor, cursor.copy(_COPY_VERSIONS) as copy:
            copy.set_types(_COPY_TYPES)
            for row in rows:
                copy.write_row(
                    (
                        row["nct_id"],
                        row["content_hash"],
                        row["snapshot_json"],
                        row["raw_record"],
                        row["data_timestamp"],
                        row["first_seen_at"],
                        row["normalizer_version"],
                    )
                )
    except psycopg.Error as exc:  # SQLAlchemy's wrapping does not see COPY
        raise StorageError(f"database error: {first_line(exc)}") from exc


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def event_row(
    run: RunRef,
    nct_id: str,
    change: FieldChange,
    *,
    now: datetime,
    data_timestamp: str | None,
    from_version_id: int | None = None,
    to_version_id: int | None = None,
) -> dict[str, Any]:
    """The ``change_event`` row of one change (a trial's, or a query's)."""
    return {
        "run_id": run.pk,
        "nct_id": nct_id,
        "detected_at": now,
        "data_timestamp": data_timestamp,
        "field": change.field,
        "category": change.category.value,
        "severity": int(change.severity),
        "kind": change.kind.value,
        "item_key": change.item_key,
        "summary": change.summary,
        "old_json": _dump(change.old),
        "new_json": _dump(change.new),
        "from_version_id": from_version_id,
        "to_version_id": to_version_id,
    }


_PAGE_TRIALS = (
    "SELECT nct_id, current_hash, current_version_id, fingerprint, normalizer_version,"
    " consecutive_misses, recheck, last_error, canonical_id FROM trial WHERE nct_id "
)
_PAGE_LABELS = "SELECT nct_id, source, label FROM watch WHERE label IS NOT NULL AND nct_id "
_PAGE_VERSIONS = "SELECT id, nct_id, content_hash FROM record_version WHERE nct_id "
_ONE_OF = {"postgresql": "= ANY(%s)", "sqlite": "IN (SELECT value FROM json_each(?))"}


@contextmanager
def _driver_cursor(s: Session) -> Iterator[Any]:
    """A cursor of the driver on the session's own connection (its transaction), closed after;
    the driver's errors, which SQLAlchemy's wrapping does not see here, as a StorageError."""
    conn = s.connection()
    try:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            yield cursor
        finally:
            cursor.close()
    except conn.dialect.loaded_dbapi.Error as exc:
        raise StorageError(f"database error: {first_line(exc)}") from exc


def _driver_rows(s: Session, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """The rows of one statement over :func:`_driver_cursor`: plain tuples, no ORM rows."""
    with _driver_cursor(s) as cursor:
        cursor.execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()]


def _where_nct_id_in(ids: list[str], dialect: str) -> tuple[str, Any]:
    """The end of a statement ``... WHERE nct_id`` over ``ids``, and ``ids`` as its one bound
    value: ``IN`` a JSON array's values on SQLite, ``= ANY`` an array on PostgreSQL. The text
    is the same whatever the number of ids, so every cache keeps it."""
    return _ONE_OF[dialect], (ids if dialect == "postgresql" else json.dumps(ids))


def _page_state_sql(ids: list[str], dialect: str) -> tuple[str, str, Any]:
    """:meth:`page_state`'s two statements and ``ids`` as their one bound value."""
    one_of, wanted = _where_nct_id_in(ids, dialect)
    return _PAGE_TRIALS + one_of, _PAGE_LABELS + one_of, wanted


class SyncWritesMixin(StoreBase):
    # -- what a page is decided against ---------------------------------------------------

    def page_state(self, ids: Sequence[str]) -> dict[str, StoredState]:
        """What is stored for ``ids`` (absent ids have no trial row yet).

        Read for every page of every sync, mostly to learn that nothing moved, so it is two
        statements with the page's ids bound as one value (a JSON array on SQLite, an array on
        PostgreSQL): the statement text is the same for every page, and no ORM row is built.
        That took it from ~20 to ~6 us a trial on SQLite (issue 21)."""
        if not ids:
            return {}
        trial_sql, watch_sql, wanted = _page_state_sql(list(ids), self.dialect)
        with self.reading() as s:
            # The session's own connection (on PostgreSQL in autocommit: no BEGIN and COMMIT
            # round trips), its driver's cursor: plain tuples.
            rows = _driver_rows(s, trial_sql, (wanted,))
            labels = best_labels(_driver_rows(s, watch_sql, (wanted,)))
        return {
            nct_id: StoredState(
                nct_id=nct_id,
                content_hash=content_hash,
                version_id=version_id,
                fingerprint=fingerprint,
                normalizer_version=normalizer_version,
                label=labels.get(nct_id),
                flagged=bool(misses or recheck or last_error),
                canonical_id=canonical_id,
            )
            for (
                nct_id,
                content_hash,
                version_id,
                fingerprint,
                normalizer_version,
                misses,
                recheck,
                last_error,
                canonical_id,
            ) in rows
        }

    def snapshots(self, version_ids: Iterable[int]) -> dict[int, Snapshot]:
        ids = sorted(set(version_ids))
        if not ids:
            return {}
        with self.reading() as s:
            rows = s.execute(
                select(_V.c.id, _V.c.snapshot_json).where(one_of(_V.c.id, ids, self.dialect))
            ).all()
        found = {r.id: Snapshot.from_dict(json.loads(r.snapshot_json)) for r in rows}
        if len(found) != len(ids):
            raise StorageError(f"record versions missing: {sorted(set(ids) - set(found))}")
        return found

    def raw_records(self, version_ids: Iterable[int]) -> dict[int, bytes]:
        """The records as served, as stored (compressed: :mod:`trialwatch.rawcodec`), for
        re-reading them with a newer normalizer."""
        ids = sorted(set(version_ids))
        if not ids:
            return {}
        with self.reading() as s:
            rows = s.execute(
                select(_V.c.id, _V.c.raw_record).where(one_of(_V.c.id, ids, self.dialect))
            ).all()
        return {r.id: r.raw_record for r in rows}

    def ids_to_recheck(self, limit: int = 10_000) -> list[str]:
        """Watched trials an idle poll must still fetch: never fetched yet (newly watched), or
        returned before and absent from the last answer (``recheck``)."""
        with self.session() as s:
            rows = s.execute(
                select(_T.c.nct_id)
                .where(
                    _T.c.refused.is_(None),
                    sa.or_(
                        _T.c.recheck.is_(True),
                        sa.and_(
                            _T.c.current_version_id.is_(None),
                            _T.c.consecutive_misses == 0,
                            _T.c.last_error.is_(None),
                        ),
                    ),
                    _WATCHED,
                )
                .order_by(_T.c.nct_id)
                .limit(limit)
            )
            return [r[0] for r in rows]

    def ids_that_failed(self, limit: int = 10_000) -> list[str]:
        """Watched trials the last answer that held them failed: a record that could not be
        read, or a trial not returned (``last_error`` set). An incremental sync fetches them
        again at each refresh, as a full one does: CT.gov may fix a record without moving its
        LastUpdatePostDate."""
        with self.session() as s:
            rows = s.execute(
                select(_T.c.nct_id)
                .where(_T.c.last_error.is_not(None), _T.c.refused.is_(None), _WATCHED)
                .order_by(_T.c.nct_id)
                .limit(limit)
            )
            return [r[0] for r in rows]

    def refused_trials(self) -> list[tuple[str, str]]:
        """Watched trials CT.gov refuses to look up: (nct_id, why), by id."""
        with self.session() as s:
            rows = s.execute(
                select(_T.c.nct_id, _T.c.refused)
                .where(_T.c.refused.is_not(None), _WATCHED)
                .order_by(_T.c.nct_id)
            )
            return [(r[0], r[1]) for r in rows]

    # -- runs -----------------------------------------------------------------------------

    def begin_run(self, start: RunStart) -> RunRef:
        with self.session() as s:
            pk = s.execute(
                sa.insert(_R)
                .values(
                    run_uuid=start.run_id,
                    started_at=start.started_at,
                    finished_at=start.started_at,
                    status="running",
                    kind=start.kind,
                    forced=start.forced,
                    api_version=start.api_version,
                    data_timestamp=start.data_timestamp,
                    checked=0,
                    changed=0,
                    baselined=0,
                    rebaselined=0,
                    failed=0,
                    missing=0,
                    change_count=0,
                    requests=0,
                )
                .returning(_R.c.id)
            ).scalar_one()
        return RunRef(int(pk), start.run_id)

    def record_failed_run(self, start: RunStart, totals: RunTotals) -> None:
        """A run that failed before it wrote anything: one row, for health to count."""
        self.finish_run(self.begin_run(start), totals)

    def finish_run(self, run: RunRef, totals: RunTotals) -> None:
        """Release what the run owes (one notification per recipient) and record its end.

        Raises ConcurrentUpdateError (writing nothing) when another process closed the run.
        """
        with self.session() as s:
            self._fence_run(s, run)
            status = "complete" if totals.complete else "failed"
            self._release(s, run, totals.finished_at, summary_only=totals.summary_only)
            result = s.execute(
                sa.update(_R)
                .where(_R.c.id == run.pk, _R.c.status == "running")
                .values(
                    status=status,
                    finished_at=totals.finished_at,
                    checked=totals.checked,
                    changed=totals.changed,
                    baselined=totals.baselined,
                    rebaselined=totals.rebaselined,
                    failed=totals.failed,
                    missing=totals.missing,
                    change_count=totals.change_count,
                    requests=totals.requests,
                    errors_json=json.dumps(list(totals.errors)) if totals.errors else None,
                )
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise ConcurrentUpdateError(
                    "this sync's run was closed by another process (it took it for dead); "
                    "run the sync again"
                )

    @staticmethod
    def _fence_run(s: Session, run: RunRef) -> None:
        """Lock the run's row for this transaction; refuse to go on if it is no longer running.

        A sync whose lock was lost (its PostgreSQL session killed, its lock file deleted) may
        still be writing when another sync takes its run for dead (:meth:`recover_interrupted`,
        which locks the same row). Whichever commits first, the other sees it: a page written
        after the run was closed would owe its notifications to a run nobody closes again.
        """
        status = s.execute(
            select(_R.c.status).where(_R.c.id == run.pk).with_for_update()
        ).scalar_one_or_none()
        if status != "running":
            raise ConcurrentUpdateError(
                "this sync's run was closed by another process (it took it for dead); "
                "nothing more was written: run the sync again"
            )

    def recover_interrupted(self, *, now: datetime) -> int:
        """Close runs whose process died mid-way (call under the sync lock): what their
        committed pages owe is released. Returns how many runs were closed."""
        with self.session() as s:
            runs = s.execute(
                select(_R.c.id, _R.c.run_uuid).where(_R.c.status == "running").with_for_update()
            ).all()
            for pk, run_uuid in runs:
                ref = RunRef(int(pk), str(run_uuid))
                self._release(s, ref, now, summary_only=False)
                s.execute(
                    sa.update(_R).where(_R.c.id == pk).values(status="interrupted", finished_at=now)
                )
        return len(runs)

    def _release(self, s: Session, run: RunRef, now: datetime, *, summary_only: bool) -> None:
        held = s.execute(
            select(
                _N.c.id,
                _N.c.channel,
                _N.c.recipient,
                _N.c.mode,
                _N.c.subscription,
                _N.c.change_ids_json,
            )
            .where(_N.c.run_id == run.pk, _N.c.status == "held")
            .order_by(_N.c.id)
        ).all()
        groups: dict[tuple[str, str, str], list[Any]] = {}
        for row in held:
            groups.setdefault((row.channel, row.recipient, row.mode), []).append(row)
        for (channel, recipient, mode), rows in sorted(groups.items()):
            ids = [r.id for r in rows]
            # The held rows were only this run's scratch: the merged message replaces them.
            merged = s.execute(sa.delete(_N).where(_N.c.id.in_(ids), _N.c.status == "held"))
            if merged.rowcount != len(ids):  # type: ignore[attr-defined]
                raise ConcurrentUpdateError("another process released this run's notifications")
            change_ids = sorted({i for r in rows for i in json.loads(r.change_ids_json)})
            s.execute(
                sa.insert(_N).values(
                    # The run's uuid makes the key (and so the Message-ID) unique across
                    # databases: a reset or migrated database never reuses a Message-ID.
                    key=f"run{run.pk}-{run.run_id[:12]}-{short_hash(channel, recipient, mode)}",
                    created_at=now,
                    run_id=run.pk,
                    kind="summary" if summary_only else "changes",
                    channel=channel,
                    recipient=recipient,
                    subscription=rows[0].subscription,
                    mode=mode,
                    status="pending" if mode == "immediate" else "digest_wait",
                    change_ids_json=json.dumps(change_ids),
                    attempts=0,
                    next_attempt_at=now,
                )
            )

    # -- one page -------------------------------------------------------------------------

    def write_page(
        self,
        run: RunRef,
        page: int,
        outcomes: Sequence[TrialOutcome],
        *,
        now: datetime,
        data_timestamp: str | None,
    ) -> int:
        """Write one page's outcomes in ONE transaction; returns the change events written.

        Raises ConcurrentUpdateError (writing nothing) when another sync committed one of these
        trials after this one read it, or closed this run.
        """
        writing = [o for o in outcomes if o.kind != "unchanged"]
        if not writing:
            return 0
        with self.session() as s:
            return self._write_page(s, run, page, writing, now, data_timestamp)

    def _write_page(
        self,
        s: Session,
        run: RunRef,
        page: int,
        outcomes: list[TrialOutcome],
        now: datetime,
        data_timestamp: str | None,
    ) -> int:
        self._fence_run(s, run)
        ids = [o.nct_id for o in outcomes]
        # Locked until commit (PostgreSQL; SQLite's BEGIN IMMEDIATE already serializes), so
        # the fencing check sees what a concurrent sync may have committed.
        current = {
            r.nct_id: r.current_hash
            for r in s.execute(
                select(_T.c.nct_id, _T.c.current_hash)
                .where(one_of(_T.c.nct_id, ids, self.dialect))
                .with_for_update()
            )
        }
        for o in outcomes:
            if o.kind in _SEEN and current.get(o.nct_id) != o.previous_hash:
                # Another sync committed this trial after ours read it (e.g. a PostgreSQL
                # lock connection dropped). Writing our diff now would record it twice.
                raise ConcurrentUpdateError(
                    f"{o.nct_id} changed in the database while this sync ran (another "
                    "sync?); this page was not written: run the sync again"
                )
        insert_trial_rows(s, [i for i in ids if i not in current], now)

        version_ids = self._store_versions(s, outcomes, now, data_timestamp)
        self._update_trials(s, outcomes, version_ids, now)
        written = self._record_changes(s, run, page, outcomes, version_ids, now, data_timestamp)
        failpoint("sync.page_writing")  # every statement ran; the commit has not happened
        return written

    def _store_versions(
        self,
        s: Session,
        outcomes: Sequence[TrialOutcome],
        now: datetime,
        data_timestamp: str | None,
    ) -> dict[tuple[str, str], int]:
        """Insert-or-skip every version the page brings; (nct_id, hash) -> version id."""
        wanted: dict[tuple[str, str], NewVersion] = {}
        for o in outcomes:
            for v in (o.rebaseline, o.version):
                if v is not None:
                    wanted[(o.nct_id, v.content_hash)] = v
        if not wanted:
            return {}
        ids = sorted({k[0] for k in wanted})

        # By trial only, the hashes matched here: "nct_id IN (...) AND content_hash IN (...)"
        # makes SQLite probe the unique index for every pair (250,000 a page). One constant
        # statement with the ids as one value (as page_state reads), over the driver's cursor.
        one_of, bound = _where_nct_id_in(ids, self.dialect)
        sql = _PAGE_VERSIONS + one_of

        def stored() -> dict[tuple[str, str], int]:
            return {
                (nct_id, digest): int(id_)
                for id_, nct_id, digest in _driver_rows(s, sql, (bound,))
                if (nct_id, digest) in wanted
            }

        found = stored()
        # A record can return to an earlier version: it is stored once.
        new = [(key, v) for key, v in wanted.items() if key not in found]
        # Plain multi-row inserts (PostgreSQL: binary COPY), then the ids read back in one
        # query: RETURNING with the rows' order kept makes SQLAlchemy send SQLite one INSERT
        # per row. VERSION_ROWS at a time: each snapshot is text only while its rows are
        # written (see NewVersion).
        for start in range(0, len(new), VERSION_ROWS):
            rows = [
                {
                    "nct_id": nct_id,
                    "content_hash": content_hash,
                    "snapshot_json": v.canonical.decode("utf-8"),
                    "raw_record": v.raw_record,
                    "data_timestamp": data_timestamp,
                    "first_seen_at": now,
                    "normalizer_version": v.normalizer_version,
                }
                for (nct_id, content_hash), v in new[start : start + VERSION_ROWS]
            ]
            if self.dialect == "postgresql":
                _copy_versions(s, rows)
            else:
                _execute_many(s, "versions", _INSERT_VERSION, rows)
            del rows
        if new:
            found = stored()
        return found

    def _update_trials(
        self,
        s: Session,
        outcomes: Sequence[TrialOutcome],
        version_ids: dict[tuple[str, str], int],
        now: datetime,
    ) -> None:
        stored, refreshed, failed, missing, refused = [], [], [], [], []
        for o in outcomes:
            if o.kind in _STORES_VERSION:
                assert o.version is not None
                changes = o.changes
                stored.append(
                    {
                        "nct_id": o.nct_id,
                        "current_version_id": version_ids[(o.nct_id, o.version.content_hash)],
                        "current_hash": o.version.content_hash,
                        "fingerprint": o.fingerprint,
                        "normalizer_version": o.version.normalizer_version,
                        "canonical_id": o.canonical_id,
                        "brief_title": o.brief_title,
                        "acronym": o.acronym,
                        "overall_status": o.overall_status,
                        "last_changed_at": now if changes else None,
                        "last_change_summary": summary_line(changes) if changes else None,
                    }
                )
            elif o.kind == "refreshed":
                refreshed.append(
                    {
                        "b_id": o.nct_id,
                        "fingerprint": o.fingerprint,
                        "canonical_id": o.canonical_id,
                    }
                )
            elif o.kind == "failed":
                failed.append({"b_id": o.nct_id, "error": o.error})
            elif o.kind == "missing":
                missing.append({"b_id": o.nct_id, "error": o.error, "b_recheck": o.recheck})
            elif o.kind == "refused":
                refused.append({"b_id": o.nct_id, "error": o.error})
        by_id = _T.c.nct_id == sa.bindparam("b_id")
        if stored and self.dialect == "postgresql":
            s.execute(
                _UPDATE_STORED,
                {f"page_{c}": [row[c] for row in stored] for c in _STORED_COLUMNS},
            )
        elif stored:
            _execute_many(
                s,
                "stored trials",
                sa.update(_T)
                .where(by_id)
                .values(
                    current_version_id=sa.bindparam("current_version_id"),
                    current_hash=sa.bindparam("current_hash"),
                    fingerprint=sa.bindparam("fingerprint"),
                    normalizer_version=sa.bindparam("normalizer_version"),
                    canonical_id=sa.bindparam("canonical_id"),
                    brief_title=sa.bindparam("brief_title"),
                    acronym=sa.bindparam("acronym"),
                    overall_status=sa.bindparam("overall_status"),
                    last_changed_at=sa.func.coalesce(
                        sa.bindparam("changed_at", type_=_T.c.last_changed_at.type),
                        _T.c.last_changed_at,
                    ),
                    last_change_summary=sa.func.coalesce(
                        sa.bindparam("change_summary", type_=sa.Text()),
                        _T.c.last_change_summary,
                    ),
                    consecutive_misses=0,
                    recheck=False,
                    last_error=None,
                ),
                [_executemany_row(row) for row in stored],
            )
        if refreshed:
            s.execute(
                sa.update(_T)
                .where(by_id)
                .values(
                    fingerprint=sa.bindparam("fingerprint"),
                    canonical_id=sa.bindparam("canonical_id"),
                    consecutive_misses=0,
                    recheck=False,
                    last_error=None,
                ),
                refreshed,
            )
        if failed:
            s.execute(sa.update(_T).where(by_id).values(last_error=sa.bindparam("error")), failed)
        if missing:
            s.execute(
                sa.update(_T)
                .where(by_id)
                .values(
                    consecutive_misses=_T.c.consecutive_misses + 1,
                    last_error=sa.bindparam("error"),
                    recheck=sa.bindparam("b_recheck"),
                ),
                missing,
            )
        if refused:  # left out of every later batch (see WatchMixin.iter_watched_ids)
            s.execute(
                sa.update(_T)
                .where(by_id)
                .values(
                    refused=sa.bindparam("error"), last_error=sa.bindparam("error"), recheck=False
                ),
                refused,
            )

    def _record_changes(
        self,
        s: Session,
        run: RunRef,
        page: int,
        outcomes: Sequence[TrialOutcome],
        version_ids: dict[tuple[str, str], int],
        now: datetime,
        data_timestamp: str | None,
    ) -> int:
        rows: list[dict[str, Any]] = []
        routes_of_row: list[tuple[Any, ...]] = []
        for o in outcomes:
            if not o.changes:
                continue
            assert o.version is not None
            to_version = version_ids[(o.nct_id, o.version.content_hash)]
            from_version = (
                version_ids[(o.nct_id, o.rebaseline.content_hash)]
                if o.rebaseline is not None
                else None
            )
            for index, change in enumerate(o.changes):
                rows.append(
                    event_row(
                        run,
                        o.nct_id,
                        change,
                        now=now,
                        data_timestamp=data_timestamp,
                        from_version_id=from_version or o.from_version_id,
                        to_version_id=to_version,
                    )
                )
                routes_of_row.append(o.routes[index] if index < len(o.routes) else ())
        return self._insert_events(s, run, page, rows, routes_of_row, now)

    def _insert_events(
        self,
        s: Session,
        run: RunRef,
        page: int,
        rows: list[dict[str, Any]],
        routes_of_row: list[tuple[Any, ...]],
        now: datetime,
    ) -> int:
        """Change events, and the held notifications their routes owe (one per recipient)."""
        if not rows:
            return 0
        event_ids = [
            int(r[0])
            for r in s.execute(sa.insert(_E).returning(_E.c.id, sort_by_parameter_order=True), rows)
        ]
        grouped: dict[tuple[str, str, str], tuple[str | None, list[int]]] = {}
        for event_id, routes in zip(event_ids, routes_of_row, strict=True):
            for route in routes:
                slot = grouped.setdefault(
                    (route.channel, route.recipient, route.mode), (route.subscription, [])
                )
                slot[1].append(event_id)
        held = [
            {
                "key": f"held-{run.run_id[:12]}-{page}-{short_hash(channel, recipient, mode)}",
                "created_at": now,
                "run_id": run.pk,
                "kind": "changes",
                "channel": channel,
                "recipient": recipient,
                "subscription": subscription,
                "mode": mode,
                "status": "held",
                "change_ids_json": json.dumps(ids),
                "attempts": 0,
                "next_attempt_at": None,
            }
            for (channel, recipient, mode), (subscription, ids) in sorted(grouped.items())
        ]
        if held:
            s.execute(sa.insert(_N), held)
        return len(rows)
