"""Storage: sqlmodel tables and the queries trialwatch needs. The only module importing SQLAlchemy.

The same code runs on SQLite (the embedded default, in WAL mode) and PostgreSQL
(``postgresql+psycopg://``): only portable SQLAlchemy is used. A sync is applied in one
transaction (:meth:`Store.apply_sync`); readers never see half of it, and a crash leaves the
previous state intact. Operational database errors are wrapped in :class:`StorageError`.
"""

from __future__ import annotations

import json
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlmodel import Field, Session, SQLModel, col, select

from trialwatch.exceptions import ConcurrentUpdateError, DatabaseUnavailableError, StorageError
from trialwatch.models import FieldChange, Severity, Snapshot, SyncPlan, TrialOutcome


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every engine (SQLite drops tzinfo)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to storage; pass aware UTC datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _dt(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=nullable, index=index))


def _text(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=sa.Column(sa.Text(), nullable=nullable))


class Trial(SQLModel, table=True):
    """A watched trial and its current state (denormalized for fast listings)."""

    __tablename__ = "trial"

    nct_id: str = Field(primary_key=True, max_length=16)
    label: str = Field(max_length=200)
    table_ref: str | None = Field(default=None, max_length=200)
    reference: str | None = _text()
    watched: bool = True
    canonical_id: str | None = Field(default=None, max_length=16)
    current_version_id: int | None = Field(default=None, foreign_key="record_version.id")
    current_hash: str | None = Field(default=None, max_length=64)
    brief_title: str | None = _text()
    acronym: str | None = Field(default=None, max_length=200)
    overall_status: str | None = Field(default=None, max_length=64)
    added_at: datetime | None = _dt()
    last_checked_at: datetime | None = _dt()
    last_changed_at: datetime | None = _dt()
    last_change_summary: str | None = _text()
    consecutive_misses: int = 0
    last_error: str | None = _text()


class RecordVersion(SQLModel, table=True):
    """Every distinct version of a record, stored once per content hash."""

    __tablename__ = "record_version"
    __table_args__ = (sa.UniqueConstraint("nct_id", "content_hash", name="uq_version_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    nct_id: str = Field(max_length=16, index=True)
    content_hash: str = Field(max_length=64)
    snapshot_json: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    raw_zlib: bytes = Field(sa_column=sa.Column(sa.LargeBinary(), nullable=False))
    data_timestamp: str | None = Field(default=None, max_length=32)
    first_seen_at: datetime | None = _dt(nullable=False)


class SyncRun(SQLModel, table=True):
    """One sync that fetched data (idle polls that stop after /version write nothing)."""

    __tablename__ = "sync_run"

    id: int | None = Field(default=None, primary_key=True)
    run_uuid: str = Field(max_length=64, unique=True)
    started_at: datetime | None = _dt(nullable=False)
    finished_at: datetime | None = _dt(nullable=False, index=True)
    status: str = Field(max_length=16)  # "complete" | "failed"
    forced: bool = False
    api_version: str | None = Field(default=None, max_length=32)
    data_timestamp: str | None = Field(default=None, max_length=32)
    watchlist_hash: str | None = Field(default=None, max_length=64)
    checked: int = 0
    changed: int = 0
    baselined: int = 0
    failed: int = 0
    missing: int = 0
    change_count: int = 0
    requests: int = 0
    errors_json: str | None = _text()


class ChangeEvent(SQLModel, table=True):
    """One field-level change detected by a sync."""

    __tablename__ = "change_event"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="sync_run.id", index=True)
    nct_id: str = Field(max_length=16, index=True)
    detected_at: datetime | None = _dt(nullable=False)
    data_timestamp: str | None = Field(default=None, max_length=32)
    field: str = Field(max_length=64)
    category: str = Field(max_length=32)
    severity: int
    kind: str = Field(max_length=16)
    item_key: str | None = _text()
    summary: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    old_json: str | None = _text()
    new_json: str | None = _text()
    from_version_id: int | None = Field(default=None, foreign_key="record_version.id")
    to_version_id: int | None = Field(default=None, foreign_key="record_version.id")

    def to_change(self) -> FieldChange:
        from trialwatch.models import Category, ChangeKind, Severity

        return FieldChange(
            field=self.field,
            category=Category(self.category),
            severity=Severity(self.severity),
            kind=ChangeKind(self.kind),
            summary=self.summary,
            old=None if self.old_json is None else json.loads(self.old_json),
            new=None if self.new_json is None else json.loads(self.new_json),
            item_key=self.item_key,
        )


class Notification(SQLModel, table=True):
    """The outbox: a message owed to one recipient, written in the sync's transaction."""

    __tablename__ = "notification"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=80, unique=True)  # stable: becomes the Message-ID
    created_at: datetime | None = _dt(nullable=False)
    run_id: int | None = Field(default=None, foreign_key="sync_run.id", index=True)
    kind: str = Field(default="changes", max_length=16)  # changes | digest | alert | test
    channel: str = Field(max_length=16)  # email | webhook
    recipient: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    subscription: str | None = Field(default=None, max_length=200)
    mode: str = Field(default="immediate", max_length=16)  # immediate | daily | weekly
    # pending -> sent | dead ; digest_wait -> digested (folded into a digest notification)
    status: str = Field(default="pending", max_length=16, index=True)
    change_ids_json: str = Field(default="[]", sa_column=sa.Column(sa.Text(), nullable=False))
    payload_json: str | None = _text()
    attempts: int = 0
    next_attempt_at: datetime | None = _dt(index=True)
    last_error: str | None = _text()
    claimed_by: str | None = Field(default=None, max_length=200)
    claimed_until: datetime | None = _dt()
    sent_at: datetime | None = _dt()

    @property
    def change_ids(self) -> list[int]:
        return [int(i) for i in json.loads(self.change_ids_json)]


class HealthState(SQLModel, table=True):
    """Small key/value facts the daemon keeps (alert raised or not, consecutive failures)."""

    __tablename__ = "health_state"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    updated_at: datetime | None = _dt()


@dataclass(frozen=True, slots=True)
class Route:
    """Where a change should go: produced by the (pure) subscription router."""

    channel: str
    recipient: str
    mode: str
    subscription: str | None


Router = Callable[[str, str | None, FieldChange], Iterable[Route]]
"""(nct_id, label, change) -> the routes that change takes."""


def _no_routes(nct_id: str, label: str | None, change: FieldChange) -> Iterable[Route]:
    return ()


def make_engine(url: str) -> Engine:
    """Build an engine; SQLite gets WAL, a busy timeout and foreign keys."""
    try:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        if url.startswith("sqlite"):
            path = sa.engine.make_url(url).database
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(url, connect_args={"timeout": 30})

            @sa.event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
                # The driver's own transaction handling starts a transaction only at the first
                # write, so reads before it are not isolated. Take it over (see _begin).
                dbapi_conn.isolation_level = None
                cursor = dbapi_conn.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.execute("PRAGMA busy_timeout=30000")
                cursor.close()

            @sa.event.listens_for(engine, "begin")
            def _begin(conn: Any) -> None:
                # Every transaction takes SQLite's write lock up front: what it reads cannot
                # change under it before it writes (one writer at a time, readers wait briefly).
                conn.exec_driver_sql("BEGIN IMMEDIATE")

            return engine
        return sa.create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})
    except (ArgumentError, OSError, ImportError, ValueError) as exc:
        raise DatabaseUnavailableError(f"cannot open database: {exc}") from exc


class Store:
    """The database behind trialwatch: open it with :meth:`open`, close it with :meth:`close`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, create: bool = True) -> Store:
        """Connect, check the database answers, and create missing tables."""
        engine = make_engine(url)
        store = cls(engine)
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            if create:
                SQLModel.metadata.create_all(engine)
        except (OperationalError, DBAPIError) as exc:
            engine.dispose()
            raise DatabaseUnavailableError(
                f"cannot use database {engine.url.render_as_string(hide_password=True)}: "
                f"{_first_line(exc.orig) if exc.orig is not None else exc}"
            ) from exc
        return store

    def close(self) -> None:
        self.engine.dispose()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on any error."""
        session = Session(self.engine, expire_on_commit=False)
        try:
            with session.begin():
                yield session
        except DBAPIError as exc:  # the driver's errors: connection lost, disk full, conflicts
            raise StorageError(f"database error: {_first_line(exc.orig)}") from exc
        finally:
            session.close()

    # -- reads ----------------------------------------------------------------------------

    def last_complete_run(self) -> SyncRun | None:
        with self.session() as s:
            return s.exec(
                select(SyncRun)
                .where(SyncRun.status == "complete")
                .order_by(col(SyncRun.id).desc())
                .limit(1)
            ).first()

    def recent_runs(self, limit: int = 20) -> list[SyncRun]:
        with self.session() as s:
            return list(s.exec(select(SyncRun).order_by(col(SyncRun.id).desc()).limit(limit)))

    def trials(self, *, watched_only: bool = True) -> list[Trial]:
        with self.session() as s:
            query = select(Trial).order_by(Trial.nct_id)
            if watched_only:
                query = query.where(col(Trial.watched).is_(True))
            return list(s.exec(query))

    def trial(self, nct_id: str) -> Trial | None:
        with self.session() as s:
            return s.get(Trial, nct_id)

    def current_hashes(self) -> dict[str, tuple[str | None, int | None]]:
        """nct_id -> (content hash, version id) of every known trial."""
        with self.session() as s:
            rows = s.exec(select(Trial.nct_id, Trial.current_hash, Trial.current_version_id))
            return {nct_id: (h, v) for nct_id, h, v in rows}

    def snapshot(self, version_id: int) -> Snapshot:
        with self.session() as s:
            version = s.get(RecordVersion, version_id)
            if version is None:
                raise StorageError(f"record version {version_id} is missing")
            return Snapshot.from_dict(json.loads(version.snapshot_json))

    def raw_record(self, version_id: int) -> dict[str, Any]:
        with self.session() as s:
            version = s.get(RecordVersion, version_id)
            if version is None:
                raise StorageError(f"record version {version_id} is missing")
            return json.loads(zlib.decompress(version.raw_zlib))  # type: ignore[no-any-return]

    def history(self, nct_id: str) -> list[tuple[ChangeEvent, SyncRun]]:
        with self.session() as s:
            rows = s.exec(
                select(ChangeEvent, SyncRun)
                .join(SyncRun, col(SyncRun.id) == col(ChangeEvent.run_id))
                .where(ChangeEvent.nct_id == nct_id)
                .order_by(col(ChangeEvent.id))
            )
            return list(rows)

    def versions(self, nct_id: str) -> list[RecordVersion]:
        with self.session() as s:
            return list(
                s.exec(
                    select(RecordVersion)
                    .where(RecordVersion.nct_id == nct_id)
                    .order_by(col(RecordVersion.id))
                )
            )

    def count(self, model: type[SQLModel]) -> int:
        with self.session() as s:
            return int(s.exec(select(sa.func.count()).select_from(model)).one())

    # -- the sync transaction --------------------------------------------------------------

    def apply_sync(self, plan: SyncPlan, *, router: Router | None = None) -> int:
        """Write a whole sync in ONE transaction: trials, versions, changes, run, outbox.

        Returns the new sync run's id. Nothing is written when this raises.
        """
        with self.session() as s:
            return self._apply(s, plan, router or _no_routes)

    def _apply(self, s: Session, plan: SyncPlan, router: Router) -> int:
        now = plan.finished_at
        run = SyncRun(
            run_uuid=plan.run_id,
            started_at=plan.started_at,
            finished_at=plan.finished_at,
            status="complete" if plan.complete else "failed",
            forced=plan.forced,
            api_version=plan.api_version,
            data_timestamp=plan.data_timestamp,
            watchlist_hash=plan.watchlist_hash,
            checked=sum(1 for o in plan.outcomes if o.kind != "missing"),
            changed=sum(1 for o in plan.outcomes if o.kind == "changed"),
            baselined=sum(1 for o in plan.outcomes if o.kind == "baseline"),
            failed=sum(1 for o in plan.outcomes if o.kind == "failed"),
            missing=sum(1 for o in plan.outcomes if o.kind == "missing"),
            change_count=sum(len(o.changes) for o in plan.outcomes),
            requests=plan.requests,
            errors_json=json.dumps(list(plan.errors)) if plan.errors else None,
        )
        s.add(run)
        s.flush()
        assert run.id is not None

        # Locked until commit (PostgreSQL; SQLite's BEGIN IMMEDIATE already serializes), so the
        # fencing check in _apply_outcome sees what a concurrent sync may have committed.
        trials = {t.nct_id: t for t in s.exec(select(Trial).with_for_update())}
        watched = {w.nct_id for w in plan.watchlist}
        for item in plan.watchlist:
            trial = trials.get(item.nct_id)
            if trial is None:
                trial = Trial(nct_id=item.nct_id, label=item.label, added_at=now)
                trials[item.nct_id] = trial
            trial.label = item.label
            trial.table_ref = item.table
            trial.reference = item.reference
            trial.watched = True
            s.add(trial)
        for nct_id, trial in trials.items():
            if nct_id not in watched and trial.watched:
                trial.watched = False  # history is kept; the trial is just no longer watched
                s.add(trial)

        grouped: dict[tuple[str, str, str], tuple[Route, list[int]]] = {}
        for outcome in plan.outcomes:
            trial = trials[outcome.nct_id]
            self._apply_outcome(s, run.id, plan, outcome, trial, now, router, grouped)
        s.flush()

        for (channel, recipient, mode), (route, ids) in sorted(grouped.items()):
            s.add(
                Notification(
                    # The run's uuid makes the key (and so the Message-ID) unique across
                    # databases: a reset or migrated database must not reuse Message-IDs.
                    key=f"run{run.id}-{plan.run_id[:12]}-{_short_hash(channel, recipient, mode)}",
                    created_at=now,
                    run_id=run.id,
                    kind="changes",
                    channel=channel,
                    recipient=recipient,
                    subscription=route.subscription,
                    mode=mode,
                    status="pending" if mode == "immediate" else "digest_wait",
                    change_ids_json=json.dumps(ids),
                    next_attempt_at=now,
                )
            )
        return run.id

    def _apply_outcome(
        self,
        s: Session,
        run_id: int,
        plan: SyncPlan,
        outcome: TrialOutcome,
        trial: Trial,
        now: datetime,
        router: Router,
        grouped: dict[tuple[str, str, str], tuple[Route, list[int]]],
    ) -> None:
        if outcome.kind == "missing":
            trial.consecutive_misses += 1
            trial.last_error = outcome.error
            s.add(trial)
            return
        if outcome.kind == "failed":
            trial.last_error = outcome.error
            trial.last_checked_at = now
            s.add(trial)
            return
        if trial.current_hash != outcome.previous_hash:
            # Fencing: another sync committed this trial after ours read it (e.g. a PostgreSQL
            # lock connection dropped). Writing our diff now would record its changes twice.
            raise ConcurrentUpdateError(
                f"{trial.nct_id} changed in the database while this sync ran (another sync?); "
                "nothing was written: run the sync again"
            )
        trial.consecutive_misses = 0
        trial.last_error = None
        trial.last_checked_at = now
        trial.canonical_id = outcome.canonical_id
        if outcome.kind == "unchanged":
            s.add(trial)
            return

        assert outcome.content_hash is not None and outcome.snapshot_json is not None
        version = s.exec(
            select(RecordVersion).where(
                RecordVersion.nct_id == outcome.nct_id,
                RecordVersion.content_hash == outcome.content_hash,
            )
        ).first()
        if version is None:  # a record can return to an earlier version: store it once
            version = RecordVersion(
                nct_id=outcome.nct_id,
                content_hash=outcome.content_hash,
                snapshot_json=outcome.snapshot_json,
                raw_zlib=outcome.raw_zlib or zlib.compress(b"{}"),
                data_timestamp=plan.data_timestamp,
                first_seen_at=now,
            )
            s.add(version)
            s.flush()
        previous_version = trial.current_version_id
        trial.current_version_id = version.id
        trial.current_hash = outcome.content_hash
        trial.brief_title = outcome.brief_title
        trial.acronym = outcome.acronym
        trial.overall_status = outcome.overall_status
        if outcome.kind == "changed" and outcome.changes:
            trial.last_changed_at = now
            trial.last_change_summary = _summary_line(outcome.changes)
        s.add(trial)

        for change in outcome.changes:
            event = ChangeEvent(
                run_id=run_id,
                nct_id=outcome.nct_id,
                detected_at=now,
                data_timestamp=plan.data_timestamp,
                field=change.field,
                category=change.category.value,
                severity=int(change.severity),
                kind=change.kind.value,
                item_key=change.item_key,
                summary=change.summary,
                old_json=None if change.old is None else json.dumps(change.old, sort_keys=True),
                new_json=None if change.new is None else json.dumps(change.new, sort_keys=True),
                from_version_id=previous_version,
                to_version_id=version.id,
            )
            s.add(event)
            s.flush()
            assert event.id is not None
            for route in router(outcome.nct_id, trial.label, change):
                slot = grouped.setdefault((route.channel, route.recipient, route.mode), (route, []))
                slot[1].append(event.id)

    # -- outbox -----------------------------------------------------------------------------

    def due_notifications(
        self, now: datetime, limit: int = 100, *, ignore_backoff: bool = False
    ) -> list[Notification]:
        """Pending notifications whose time has come (all pending ones with ``ignore_backoff``).

        Claimed ones are included: :meth:`claim` decides whether a claim can be taken over.
        """
        query = select(Notification).where(Notification.status == "pending")
        if not ignore_backoff:
            query = query.where(
                sa.or_(
                    col(Notification.next_attempt_at).is_(None),
                    col(Notification.next_attempt_at) <= now,
                )
            )
        with self.session() as s:
            return list(s.exec(query.order_by(col(Notification.id)).limit(limit)))

    def claim(
        self,
        notification: Notification,
        *,
        owner: str,
        now: datetime,
        until: datetime,
        stale: Callable[[Notification], bool],
    ) -> bool:
        """Take a pending notification for sending, atomically (compare-and-swap).

        A notification claimed by someone else is taken only when their lease expired or
        ``stale`` says the claimer is dead. Two flushers can never both win: the UPDATE is
        conditional on the claim we observed, and only one row update can match it.
        """
        observed = notification.claimed_by
        if observed is not None and observed != owner:
            lease_over = (
                notification.claimed_until is not None and notification.claimed_until <= now
            )
            if not lease_over and not stale(notification):
                return False
        table = Notification.__table__  # type: ignore[attr-defined]
        condition = sa.and_(
            table.c.id == notification.id,
            table.c.status == "pending",
            table.c.claimed_by.is_(None) if observed is None else table.c.claimed_by == observed,
        )
        with self.session() as s:
            result = s.execute(
                sa.update(table).where(condition).values(claimed_by=owner, claimed_until=until)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def _finish(self, notification_id: int, owner: str, **values: Any) -> bool:
        table = Notification.__table__  # type: ignore[attr-defined]
        with self.session() as s:
            result = s.execute(
                sa.update(table)
                .where(table.c.id == notification_id, table.c.claimed_by == owner)
                .values(claimed_by=None, claimed_until=None, **values)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def mark_sent(self, notification_id: int, *, owner: str, now: datetime) -> bool:
        return self._finish(notification_id, owner, status="sent", sent_at=now, last_error=None)

    def mark_failed(
        self,
        notification_id: int,
        *,
        owner: str,
        error: str,
        attempts: int,
        retry_at: datetime | None,
    ) -> bool:
        """Record a failed attempt: retry at ``retry_at``, or dead-letter when it is None."""
        if retry_at is None:
            return self._finish(
                notification_id, owner, status="dead", attempts=attempts, last_error=error
            )
        return self._finish(
            notification_id, owner, attempts=attempts, last_error=error, next_attempt_at=retry_at
        )

    def requeue_dead(self, now: datetime, ids: Sequence[int] = ()) -> int:
        """Put dead letters back in the queue (all, or those ids); returns how many."""
        table = Notification.__table__  # type: ignore[attr-defined]
        condition = table.c.status == "dead"
        if ids:
            condition = sa.and_(condition, table.c.id.in_(list(ids)))
        with self.session() as s:
            result = s.execute(
                sa.update(table)
                .where(condition)
                .values(
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    claimed_by=None,
                    claimed_until=None,
                )
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def notifications(self, status: str | None = None) -> list[Notification]:
        with self.session() as s:
            query = select(Notification).order_by(col(Notification.id))
            if status is not None:
                query = query.where(Notification.status == status)
            return list(s.exec(query))

    def outbox_counts(self) -> dict[str, int]:
        with self.session() as s:
            rows = s.exec(
                select(Notification.status, sa.func.count()).group_by(col(Notification.status))
            )
            return {status: int(n) for status, n in rows}

    def fold_digests(self, mode: str, *, now: datetime) -> int:
        """Fold every waiting ``mode`` notification into one digest per recipient; returns how
        many digests were created.

        Whatever waits is folded, however often this runs (a second run the same day sends what
        arrived since). Atomic: a concurrent fold of the same items finds them already folded
        (the conditional UPDATE matches fewer rows) and its transaction rolls back.
        """
        table = Notification.__table__  # type: ignore[attr-defined]
        created = 0
        with self.session() as s:
            waiting = list(
                s.exec(
                    select(Notification)
                    .where(Notification.status == "digest_wait", Notification.mode == mode)
                    .order_by(col(Notification.id))
                )
            )
            by_recipient: dict[tuple[str, str], list[Notification]] = {}
            for n in waiting:
                by_recipient.setdefault((n.channel, n.recipient), []).append(n)
            for (channel, recipient), items in sorted(by_recipient.items()):
                ids = [n.id for n in items]
                folded = s.execute(
                    sa.update(table)
                    .where(table.c.id.in_(ids), table.c.status == "digest_wait")
                    .values(status="digested")
                )
                if folded.rowcount != len(ids):  # type: ignore[attr-defined]
                    raise ConcurrentUpdateError("another process folded these digests meanwhile")
                # Derived from the folded notifications' keys (which carry their runs' uuids):
                # unique across databases, so the Message-ID is too.
                key = f"digest-{mode}-{_short_hash(*sorted(n.key for n in items))}"
                change_ids = sorted({i for n in items for i in n.change_ids})
                s.add(
                    Notification(
                        key=key,
                        created_at=now,
                        kind="digest",
                        channel=channel,
                        recipient=recipient,
                        subscription=items[0].subscription,
                        mode=mode,
                        status="pending",
                        change_ids_json=json.dumps(change_ids),
                        next_attempt_at=now,
                    )
                )
                created += 1
        return created

    def transition_alert(
        self,
        *,
        unhealthy: bool,
        now: datetime,
        recipient: str | None,
        render: Callable[[bool, str], dict[str, Any]],
    ) -> str | None:
        """Open or close the health alert, queueing its message in the SAME transaction.

        Returns ``"alert"`` or ``"recovery"`` when a transition happened, else None. Because the
        state change and the queued message commit together, an alert is sent once per episode
        (not every tick) and a recovery notice once when it heals, whatever crashes.
        """
        with self.session() as s:
            row = s.get(HealthState, "alert_episode")
            if unhealthy == (row is not None):
                return None
            if unhealthy:
                # Unique across databases too: the key becomes the alert's Message-ID.
                episode = f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
                s.add(HealthState(key="alert_episode", value=episode, updated_at=now))
                kind = "alert"
            else:
                assert row is not None
                episode = row.value
                s.delete(row)
                kind = "recovery"
            if recipient:
                s.add(
                    Notification(
                        key=f"{kind}-{episode}",
                        created_at=now,
                        kind=kind,
                        channel="email",
                        recipient=recipient,
                        status="pending",
                        payload_json=json.dumps(render(unhealthy, episode)),
                        next_attempt_at=now,
                    )
                )
            return kind

    def consecutive_failures(self) -> int:
        """Failed sync runs since the last complete one."""
        with self.session() as s:
            last_ok = s.exec(
                select(sa.func.max(SyncRun.id)).where(SyncRun.status == "complete")
            ).one()
            query = select(sa.func.count()).select_from(SyncRun).where(SyncRun.status == "failed")
            if last_ok is not None:
                query = query.where(col(SyncRun.id) > last_ok)
            return int(s.exec(query).one())

    def changes_by_id(self, ids: Sequence[int]) -> list[ChangeEvent]:
        if not ids:
            return []
        with self.session() as s:
            return list(
                s.exec(
                    select(ChangeEvent)
                    .where(col(ChangeEvent.id).in_(list(ids)))
                    .order_by(col(ChangeEvent.id))
                )
            )


def _summary_line(changes: Sequence[FieldChange]) -> str:
    """The most severe change, and how many others matter (administrative churn not counted)."""
    top = max(changes, key=lambda c: c.severity)
    more = sum(1 for c in changes if c is not top and c.severity > Severity.ADMIN)
    return top.summary if more == 0 else f"{top.summary} (+{more} more)"


def _short_hash(*parts: str) -> str:
    import hashlib

    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def _first_line(exc: object) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
