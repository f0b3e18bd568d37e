"""The tables, as of the newest schema revision (:data:`HEAD_REVISION`).

Every change here is made by a migration beside it (``migrations/versions/``); a test checks
that upgrading a 0.1.0 database step by step gives exactly these tables.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from trialwatch.models import Category, ChangeKind, FieldChange, Severity


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
    """A trial trialwatch knows and its current state (denormalized for fast listings).

    Whether it is watched is the ``watch`` table's business: a trial stays here, with its
    history, after the last source stops watching it.
    """

    __tablename__ = "trial"

    nct_id: str = Field(primary_key=True, max_length=16)
    canonical_id: str | None = Field(default=None, max_length=16)
    current_version_id: int | None = Field(default=None, foreign_key="record_version.id")
    current_hash: str | None = Field(default=None, max_length=64)
    # A cheap fingerprint of the record as served, and the normalizer that read it: when both
    # match, an unchanged record skips normalizing and diffing.
    fingerprint: str | None = Field(default=None, max_length=64)
    normalizer_version: int | None = None
    brief_title: str | None = _text()
    acronym: str | None = Field(default=None, max_length=200)
    overall_status: str | None = Field(default=None, max_length=64)
    added_at: datetime | None = _dt()
    last_changed_at: datetime | None = _dt()
    last_change_summary: str | None = _text()
    consecutive_misses: int = 0
    # Returned before, absent from the last answer: the next poll fetches it again.
    recheck: bool = False
    last_error: str | None = _text()
    # Why CT.gov refuses to look this id up ("refused by CT.gov: ..."): shown, and left out of
    # every batch. None: it does not.
    refused: str | None = _text()


class Watch(SQLModel, table=True):
    """One source watching one trial; a trial is watched while any source holds it."""

    __tablename__ = "watch"

    nct_id: str = Field(primary_key=True, max_length=16)
    # "config" | "cli" | "import" | "query:<name>"
    source: str = Field(primary_key=True, max_length=120)
    label: str | None = Field(default=None, max_length=200)
    table_ref: str | None = Field(default=None, max_length=200)
    reference: str | None = _text()
    added_at: datetime | None = _dt(nullable=False)


class RecordVersion(SQLModel, table=True):
    """Every distinct version of a record, stored once per content hash."""

    __tablename__ = "record_version"
    __table_args__ = (sa.UniqueConstraint("nct_id", "content_hash", name="uq_version_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    nct_id: str = Field(max_length=16, index=True)
    content_hash: str = Field(max_length=64)
    snapshot_json: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    raw_record: bytes = Field(sa_column=sa.Column(sa.LargeBinary(), nullable=False))
    data_timestamp: str | None = Field(default=None, max_length=32)
    first_seen_at: datetime | None = _dt(nullable=False)
    normalizer_version: int = Field(
        default=1, sa_column_kwargs={"server_default": "1", "nullable": False}
    )
    # Set for a version read from the registry's record history (``trialwatch backfill``):
    # its number there (0 = as registered) and the day it was submitted. ``first_seen_at`` is
    # then that day (00:00 UTC), so histories order it before what trialwatch saw live.
    registry_version: int | None = None
    registry_date: str | None = Field(default=None, max_length=10)


class SyncRun(SQLModel, table=True):
    """One sync that fetched data (idle polls that stop after /version write nothing).

    ``status`` is ``running`` while its pages are written, then ``complete`` or ``failed``;
    a run whose process died stays ``running`` until the next sync marks it ``interrupted``.
    """

    __tablename__ = "sync_run"

    id: int | None = Field(default=None, primary_key=True)
    run_uuid: str = Field(max_length=64, unique=True)
    started_at: datetime | None = _dt(nullable=False)
    finished_at: datetime | None = _dt(nullable=False, index=True)
    status: str = Field(max_length=16)
    kind: str = Field(default="full", max_length=16, sa_column_kwargs={"server_default": "full"})
    forced: bool = False
    api_version: str | None = Field(default=None, max_length=32)
    data_timestamp: str | None = Field(default=None, max_length=32)
    watchlist_hash: str | None = Field(default=None, max_length=64)  # 0.1.0; unused since
    checked: int = 0
    changed: int = 0
    baselined: int = 0
    rebaselined: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
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
    # "live" (a sync saw it) or "registry" (read from CT.gov's record history by a backfill:
    # ``detected_at`` is then the day the registry's version was submitted).
    origin: str = Field(default="live", max_length=16, sa_column_kwargs={"server_default": "live"})

    def to_change(self) -> FieldChange:
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
    """The outbox: a message owed to one recipient, written with the changes it reports.

    Statuses: ``held`` (written with a page of a sync that is still running) -> replaced by
    one ``pending`` (immediate) or ``digest_wait`` (daily/weekly) notification per recipient
    when the run ends; ``pending`` -> ``sent`` | ``dead``; ``digest_wait`` ->
    ``digested`` (folded into a digest notification).
    """

    __tablename__ = "notification"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=80, unique=True)  # stable: becomes the Message-ID
    created_at: datetime | None = _dt(nullable=False)
    run_id: int | None = Field(default=None, foreign_key="sync_run.id", index=True)
    kind: str = Field(default="changes", max_length=16)  # changes|summary|digest|alert|test
    channel: str = Field(max_length=16)  # email | webhook
    # An email address, or for webhooks a reference (webhook:<hash>): never the secret URL.
    recipient: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    subscription: str | None = Field(default=None, max_length=200)
    mode: str = Field(default="immediate", max_length=16)  # immediate | daily | weekly
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


class QueryMatch(SQLModel, table=True):
    """A trial a ``[[queries]]`` search returned: what it looked like when last seen."""

    __tablename__ = "query_match"

    query_name: str = Field(primary_key=True, max_length=80)
    nct_id: str = Field(primary_key=True, max_length=16)
    present: bool = True  # in the latest complete answer
    brief_title: str | None = _text()
    phases: str | None = Field(default=None, max_length=120)
    overall_status: str | None = Field(default=None, max_length=64)
    lead_sponsor: str | None = _text()
    first_posted: str | None = Field(default=None, max_length=16)
    first_seen_at: datetime | None = _dt(nullable=False)
    last_seen_at: datetime | None = _dt(nullable=False)


class QueryState(SQLModel, table=True):
    """One ``[[queries]]`` entry's baseline: the search it was made with, how many it matched."""

    __tablename__ = "query_state"

    query_name: str = Field(primary_key=True, max_length=80)
    params_hash: str = Field(max_length=64)
    matched: int = 0
    baselined_at: datetime | None = _dt(nullable=False)
    checked_at: datetime | None = _dt(nullable=False)
    # Why CT.gov refused this search at the last sync (None: it answered); the baseline above
    # is kept, so the next answer is compared with the last one it gave.
    refused: str | None = _text()


class PrintedEntry(SQLModel, table=True):
    """What a paper printed about a trial (status, title), read by ``watch import``."""

    __tablename__ = "printed_entry"

    nct_id: str = Field(primary_key=True, max_length=16)
    status: str | None = Field(default=None, max_length=64)  # CT.gov's enum, when recognised
    status_text: str | None = _text()  # the words as printed
    title: str | None = _text()
    origin: str | None = _text()  # the file it came from
    printed_on: str | None = Field(default=None, max_length=10)  # the paper's publication day
    imported_at: datetime | None = _dt(nullable=False)
    reported_at: datetime | None = _dt()  # when a sync last said how the registry moved since


class RegistryVersion(SQLModel, table=True):
    """One version of a record in CT.gov's record history, as ``trialwatch backfill`` read it.

    The version list gives ``submitted_on`` and ``status`` for every version (one request per
    trial); ``raw_record`` (compressed as live records are) is kept once that version itself
    was fetched, so a backfill cut short resumes where it stopped.
    """

    __tablename__ = "registry_version"

    nct_id: str = Field(primary_key=True, max_length=16)
    version: int = Field(primary_key=True)
    submitted_on: str = Field(max_length=10)
    status: str | None = Field(default=None, max_length=64)
    module_labels: str | None = _text()  # JSON list of the record's sections it changed
    raw_record: bytes | None = Field(
        default=None, sa_column=sa.Column(sa.LargeBinary(), nullable=True)
    )
    fetched_at: datetime | None = _dt()


class RegistryRead(SQLModel, table=True):
    """How far a trial's registry history was read: the version list, then its events."""

    __tablename__ = "registry_read"

    nct_id: str = Field(primary_key=True, max_length=16)
    versions: int = 0  # in the last version list read
    listed_at: datetime | None = _dt(nullable=False)
    # Set when the history's events were written: "status" (from the version list alone,
    # ``--status-only``) or "full" (every version read and diffed).
    joined: str | None = Field(default=None, max_length=16)
    joined_at: datetime | None = _dt()


class HealthState(SQLModel, table=True):
    """Small key/value facts the daemon keeps (alert raised or not)."""

    __tablename__ = "health_state"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    updated_at: datetime | None = _dt()


metadata = SQLModel.metadata
