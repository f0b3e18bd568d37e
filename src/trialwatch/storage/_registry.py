"""The registry's record history: the version lists and records a backfill read, and the
history it joins to the live one (``trialwatch backfill``).

A backfill commits what it fetches as it goes (the version list, then each version's record),
so a backfill cut short resumes where it stopped; what it decided from them
(:class:`~trialwatch.models.RegistryJoin`) is written in one transaction, which also marks the
trial read: a kill at any instant loses nothing and doubles nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import sqlalchemy as sa
from sqlalchemy import select
from sqlmodel import Session

from trialwatch.models import LiveStart, RegistryEntry, RegistryJoin, Snapshot
from trialwatch.storage._engine import StoreBase
from trialwatch.storage._schema import (
    ChangeEvent,
    RecordVersion,
    RegistryRead,
    RegistryVersion,
    SyncRun,
    Trial,
    Watch,
)
from trialwatch.storage._sync import RunRef, event_row

_T = Trial.__table__  # type: ignore[attr-defined]
_V = RecordVersion.__table__  # type: ignore[attr-defined]
_E = ChangeEvent.__table__  # type: ignore[attr-defined]
_R = SyncRun.__table__  # type: ignore[attr-defined]
_W = Watch.__table__  # type: ignore[attr-defined]
_RV = RegistryVersion.__table__  # type: ignore[attr-defined]
_RR = RegistryRead.__table__  # type: ignore[attr-defined]

BACKFILL = "backfill"
"""``sync_run.kind`` and ``status`` of the run a backfill's events belong to: never
``running`` (no sync takes it for interrupted) nor ``complete`` (no poll skips for it)."""


@dataclass(frozen=True, slots=True)
class StoredRegistryVersion:
    """A registry version as stored: its list entry, and its record once fetched."""

    entry: RegistryEntry
    raw_record: bytes | None  # compressed, see trialwatch.rawcodec


def day_start(day: str) -> datetime:
    """``"2018-03-01"`` -> 2018-03-01 00:00 UTC: when a registry version's changes are dated."""
    return datetime.combine(date.fromisoformat(day), time(), tzinfo=UTC)


class RegistryMixin(StoreBase):
    def registry_joined(self, ids: Sequence[str]) -> dict[str, str | None]:
        """For each of ``ids`` whose history was read: ``"full"``, ``"status"`` or ``None``
        (its version list read, its events not written yet)."""
        if not ids:
            return {}
        with self.session() as s:
            rows = s.execute(select(_RR.c.nct_id, _RR.c.joined).where(_RR.c.nct_id.in_(list(ids))))
            return {r.nct_id: r.joined for r in rows}

    def backfill_candidates(self, *, full: bool) -> list[str]:
        """Watched trials synced at least once whose registry history is not read yet (for
        ``full``: not read in full)."""
        done = ("full",) if full else ("full", "status")
        with self.session() as s:
            watched = select(_W.c.nct_id).distinct().scalar_subquery()
            joined = select(_RR.c.nct_id).where(_RR.c.joined.in_(done)).scalar_subquery()
            rows = s.execute(
                select(_T.c.nct_id)
                .where(
                    _T.c.nct_id.in_(watched),
                    _T.c.current_version_id.is_not(None),
                    _T.c.nct_id.not_in(joined),
                )
                .order_by(_T.c.nct_id)
            )
            return [r[0] for r in rows]

    def live_start(self, nct_id: str) -> LiveStart | None:
        """The first version a sync stored of ``nct_id`` (None: never synced)."""
        with self.session() as s:
            row = s.execute(
                select(_V.c.id, _V.c.content_hash, _V.c.snapshot_json, _V.c.first_seen_at)
                .where(_V.c.nct_id == nct_id, _V.c.registry_version.is_(None))
                .order_by(_V.c.first_seen_at, _V.c.id)
                .limit(1)
            ).first()
        if row is None:
            return None
        return LiveStart(
            version_id=int(row.id),
            content_hash=row.content_hash,
            snapshot=Snapshot.from_dict(json.loads(row.snapshot_json)),
            first_seen_at=_aware(row.first_seen_at),
        )

    def save_version_list(
        self, nct_id: str, entries: Sequence[RegistryEntry], *, now: datetime
    ) -> None:
        """Keep a trial's version list (entries already kept are left as they are, with their
        records)."""
        with self.session() as s:
            have = {
                int(r[0]) for r in s.execute(select(_RV.c.version).where(_RV.c.nct_id == nct_id))
            }
            rows = [
                {
                    "nct_id": nct_id,
                    "version": e.version,
                    "submitted_on": e.date,
                    "status": e.status,
                    "module_labels": json.dumps(list(e.module_labels)),
                    "raw_record": None,
                    "fetched_at": None,
                }
                for e in entries
                if e.version not in have
            ]
            if rows:
                s.execute(sa.insert(_RV), rows)
            listed = s.execute(
                sa.update(_RR)
                .where(_RR.c.nct_id == nct_id)
                .values(versions=len(entries), listed_at=now)
            )
            if listed.rowcount == 0:  # type: ignore[attr-defined]
                s.execute(
                    sa.insert(_RR).values(
                        nct_id=nct_id, versions=len(entries), listed_at=now, joined=None
                    )
                )

    def registry_versions(self, nct_id: str) -> dict[int, StoredRegistryVersion]:
        """Every registry version kept of ``nct_id``, by number."""
        with self.session() as s:
            rows = s.execute(
                select(_RV).where(_RV.c.nct_id == nct_id).order_by(_RV.c.version)
            ).all()
        return {
            int(r.version): StoredRegistryVersion(
                RegistryEntry(
                    int(r.version),
                    r.submitted_on,
                    r.status,
                    tuple(json.loads(r.module_labels or "[]")),
                ),
                r.raw_record,
            )
            for r in rows
        }

    def save_registry_record(
        self, nct_id: str, version: int, raw_record: bytes, *, now: datetime
    ) -> None:
        """Keep one fetched version's record (compressed), committed at once."""
        with self.session() as s:
            s.execute(
                sa.update(_RV)
                .where(_RV.c.nct_id == nct_id, _RV.c.version == version)
                .values(raw_record=raw_record, fetched_at=now)
            )

    def write_registry_join(self, join: RegistryJoin, *, run_uuid: str, now: datetime) -> int:
        """Write what a backfill decided for one trial, in ONE transaction: its registry
        versions (once per content hash, dated by the registry), its registry change events
        (replacing any it had), and the mark that its history is read. Returns the events
        written. Never touches the trial's current state, never queues a notification."""
        with self.session() as s:
            run = self._backfill_run(s, run_uuid, now)
            s.execute(sa.delete(_E).where(_E.c.nct_id == join.nct_id, _E.c.origin == "registry"))
            ids = {
                r.content_hash: int(r.id)
                for r in s.execute(
                    select(_V.c.id, _V.c.content_hash).where(_V.c.nct_id == join.nct_id)
                )
            }
            for v in join.versions:
                if v.new.content_hash in ids:
                    continue
                ids[v.new.content_hash] = int(
                    s.execute(
                        sa.insert(_V)
                        .values(
                            nct_id=join.nct_id,
                            content_hash=v.new.content_hash,
                            snapshot_json=v.new.canonical.decode("utf-8"),
                            raw_record=v.new.raw_record,
                            data_timestamp=None,
                            first_seen_at=day_start(v.date),
                            normalizer_version=v.new.normalizer_version,
                            registry_version=v.version,
                            registry_date=v.date,
                        )
                        .returning(_V.c.id)
                    ).scalar_one()
                )
            rows = []
            for e in join.events:
                row = event_row(
                    run,
                    join.nct_id,
                    e.change,
                    now=day_start(e.date),
                    data_timestamp=None,
                    from_version_id=None if e.from_hash is None else ids[e.from_hash],
                    to_version_id=None if e.to_hash is None else ids[e.to_hash],
                )
                row["origin"] = "registry"
                rows.append(row)
            if rows:
                s.execute(sa.insert(_E), rows)
            s.execute(
                sa.update(_RR)
                .where(_RR.c.nct_id == join.nct_id)
                .values(joined=join.mode, joined_at=now)
            )
        return len(rows)

    @staticmethod
    def _backfill_run(s: Session, run_uuid: str, now: datetime) -> RunRef:
        pk = s.execute(select(_R.c.id).where(_R.c.run_uuid == run_uuid)).scalar_one_or_none()
        if pk is None:
            pk = s.execute(
                sa.insert(_R)
                .values(
                    run_uuid=run_uuid,
                    started_at=now,
                    finished_at=now,
                    status=BACKFILL,
                    kind=BACKFILL,
                    forced=False,
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
        return RunRef(int(pk), run_uuid)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
