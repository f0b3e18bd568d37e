"""Reads of the database that only tests make: what a sync wrote, row by row.

Production code reads through :class:`trialwatch.storage.Store`'s own methods; these look at the
tables directly so tests can check what was stored without widening the store for them.
"""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import col, select

from trialwatch import rawcodec
from trialwatch.exceptions import StorageError
from trialwatch.storage import ChangeEvent, QueryMatch, RecordVersion, Store, SyncRun, Trial, Watch


def trials(store: Store) -> list[Trial]:
    """The watched trials, by id."""
    with store.session() as s:
        watched = select(Watch.nct_id).distinct()
        query = select(Trial).where(col(Trial.nct_id).in_(watched)).order_by(Trial.nct_id)
        return list(s.exec(query))


def is_watched(store: Store, nct_id: str) -> bool:
    with store.session() as s:
        return (
            s.exec(select(Watch.nct_id).where(Watch.nct_id == nct_id).limit(1)).first() is not None
        )


def raw_record(store: Store, version_id: int) -> dict[str, Any]:
    """A stored version's record as served, decompressed and parsed."""
    with store.session() as s:
        version = s.get(RecordVersion, version_id)
        if version is None:
            raise StorageError(f"record version {version_id} is missing")
        return json.loads(rawcodec.decompress(version.raw_record))  # type: ignore[no-any-return]


def history(store: Store, nct_id: str) -> list[tuple[ChangeEvent, SyncRun]]:
    """A trial's change events, oldest first, each with its run."""
    with store.session() as s:
        rows = s.exec(
            select(ChangeEvent, SyncRun)
            .join(SyncRun, col(SyncRun.id) == col(ChangeEvent.run_id))
            .where(ChangeEvent.nct_id == nct_id)
            .order_by(col(ChangeEvent.id))
        )
        return list(rows)


def versions(store: Store, nct_id: str) -> list[RecordVersion]:
    with store.session() as s:
        return list(
            s.exec(
                select(RecordVersion)
                .where(RecordVersion.nct_id == nct_id)
                .order_by(col(RecordVersion.id))
            )
        )


def query_matches(store: Store, name: str) -> list[QueryMatch]:
    with store.session() as s:
        return list(
            s.exec(
                select(QueryMatch)
                .where(QueryMatch.query_name == name)
                .order_by(col(QueryMatch.nct_id))
            )
        )
