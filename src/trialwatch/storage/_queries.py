"""Read queries for the commands that show things: status, history, export, watch list."""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import SQLModel, col, select

from trialwatch.exceptions import StorageError
from trialwatch.models import Snapshot
from trialwatch.storage._engine import StoreBase
from trialwatch.storage._schema import ChangeEvent, RecordVersion, SyncRun, Trial, Watch


class QueriesMixin(StoreBase):
    def trial(self, nct_id: str) -> Trial | None:
        with self.session() as s:
            return s.get(Trial, nct_id)

    def trials(self, *, watched_only: bool = True) -> list[Trial]:
        """Known trials by id (only the watched ones unless ``watched_only`` is false)."""
        with self.session() as s:
            query = select(Trial).order_by(Trial.nct_id)
            if watched_only:
                watched = select(Watch.nct_id).distinct()
                query = query.where(col(Trial.nct_id).in_(watched))
            return list(s.exec(query))

    def is_watched(self, nct_id: str) -> bool:
        with self.session() as s:
            return (
                s.exec(select(Watch.nct_id).where(Watch.nct_id == nct_id).limit(1)).first()
                is not None
            )

    def resolve_trial(self, key: str) -> list[str]:
        """The NCT ids a user may mean by ``key``: an id, or a label or acronym (any case)."""
        text = key.strip()
        if not text:
            return []
        upper = text.upper()
        with self.session() as s:
            if s.get(Trial, upper) is not None:
                return [upper]
            folded = text.casefold()
            by_label = set(s.exec(select(Watch.nct_id).where(sa.func.lower(Watch.label) == folded)))
            if not by_label:
                by_label = set(
                    s.exec(select(Trial.nct_id).where(sa.func.lower(Trial.acronym) == folded))
                )
        return sorted(by_label)

    def trial_titles(self, ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        """nct_id -> (label, brief title) for just these trials (a report's, not all N)."""
        if not ids:
            return {}
        wanted = sorted(set(ids))
        with self.session() as s:
            trials = {
                t.nct_id: t for t in s.exec(select(Trial).where(col(Trial.nct_id).in_(wanted)))
            }
            watches = list(s.exec(select(Watch).where(col(Watch.nct_id).in_(wanted))))
        labels: dict[str, str] = {}
        for w in sorted(watches, key=lambda w: (w.source != "config", w.source)):
            if w.label and w.nct_id not in labels:
                labels[w.nct_id] = w.label
        out: dict[str, tuple[str | None, str | None]] = {}
        for nct_id in wanted:
            trial = trials.get(nct_id)
            label = labels.get(nct_id) or (trial.acronym if trial else None)
            out[nct_id] = (label, trial.brief_title if trial else None)
        return out

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
