"""Recorded histories for the renderer tests, built as storage would record them.

Each history is a list of snapshots with the time each was first seen; the change events between
consecutive versions are what :func:`trialwatch.diff.diff` says, as the sync stores them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import count

from trialwatch.diff import diff
from trialwatch.models import Enrollment, PartialDate, Snapshot
from trialwatch.records import RecordedChange, RecordedVersion, TrialHistory

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
DATA_TS = "2026-11-22T09:00:05"


def at(day: str) -> datetime:
    """``"2026-03-02"`` -> 09:30 UTC that day (a sync time)."""
    return datetime.fromisoformat(day).replace(hour=9, minute=30, tzinfo=UTC)


def record(
    nct_id: str,
    label: str | None,
    steps: Sequence[tuple[datetime, Snapshot]],
    *,
    ids: count[int] | None = None,
    version_ids: count[int] | None = None,
) -> TrialHistory:
    """A trial's history: one version per step, change events from diff between steps."""
    ids = ids or count(1)
    version_ids = version_ids or count(1)
    versions: list[RecordedVersion] = []
    changes: list[RecordedChange] = []
    for moment, snapshot in steps:
        version = RecordedVersion(
            version_id=next(version_ids),
            nct_id=nct_id,
            first_seen_at=moment,
            data_timestamp=moment.strftime("%Y-%m-%dT08:00:00"),
            snapshot=snapshot,
        )
        if versions:
            previous = versions[-1]
            changes += [
                RecordedChange(
                    id=next(ids),
                    nct_id=nct_id,
                    detected_at=moment,
                    data_timestamp=version.data_timestamp,
                    change=change,
                    from_version_id=previous.version_id,
                    to_version_id=version.version_id,
                )
                for change in diff(previous.snapshot, snapshot)
            ]
        versions.append(version)
    return TrialHistory(
        nct_id=nct_id,
        label=label,
        versions=tuple(versions),
        changes=tuple(changes),
        watched_since=steps[0][0] if steps else None,
    )


def est(day: str) -> PartialDate:
    return PartialDate(day, "ESTIMATED")


def actual(day: str) -> PartialDate:
    return PartialDate(day, "ACTUAL")


SEAL_V1 = Snapshot(
    nct_id="NCT02606461",
    brief_title="Study of Everolimus After Liver transplant",
    acronym="SEAL",
    overall_status="RECRUITING",
    start_date=actual("2019-03"),
    primary_completion_date=est("2025-01"),
    completion_date=est("2025-06"),
    enrollment=Enrollment(300, "ESTIMATED"),
    phases=("PHASE3",),
)
SEAL_V2 = dataclasses.replace(
    SEAL_V1,
    overall_status="ACTIVE_NOT_RECRUITING",
    primary_completion_date=est("2025-07"),
    completion_date=est("2026-02"),
)
SEAL_V3 = dataclasses.replace(
    SEAL_V2,
    primary_completion_date=est("2026-03"),
    enrollment=Enrollment(287, "ACTUAL"),
)
SEAL_V4 = dataclasses.replace(
    SEAL_V3,
    overall_status="COMPLETED",
    primary_completion_date=actual("2026-03"),
    completion_date=actual("2026-08"),
)
SEAL_STEPS = [
    (at("2026-01-05"), SEAL_V1),
    (at("2026-03-02"), SEAL_V2),
    (at("2026-06-10"), SEAL_V3),
    (at("2026-09-01"), SEAL_V4),
]

LONG_URL = "https://example.org/" + "x" * 300
STOP_V1 = Snapshot(
    nct_id="NCT05923112",
    brief_title="A trial that stopped early",
    overall_status="RECRUITING",
    start_date=actual("2023-09-15"),
    primary_completion_date=est("2027-12"),
    completion_date=est("2028-06"),
)
STOP_V2 = dataclasses.replace(
    STOP_V1,
    overall_status="TERMINATED",
    why_stopped=f"Sponsor decision, see {LONG_URL}",
    primary_completion_date=actual("2026-10-01"),
    completion_date=actual("2026-10-01"),
)

QUIET = Snapshot(
    nct_id="NCT05915845",
    brief_title="A quiet trial, watched since April",
    overall_status="NOT_YET_RECRUITING",
    start_date=est("2027-01"),
    primary_completion_date=est("2029-06"),
    completion_date=None,
)


def seal() -> TrialHistory:
    return record("NCT02606461", "SEAL", SEAL_STEPS)


def watch_set() -> list[TrialHistory]:
    """Three trials: SEAL (three refreshes), one terminated, one quiet since April."""
    ids, version_ids = count(1), count(1)
    return [
        record("NCT02606461", "SEAL", SEAL_STEPS, ids=ids, version_ids=version_ids),
        record(
            "NCT05923112",
            None,
            [(at("2026-01-05"), STOP_V1), (at("2026-10-20"), STOP_V2)],
            ids=ids,
            version_ids=version_ids,
        ),
        record(
            "NCT05915845", "QUIET", [(at("2026-04-01"), QUIET)], ids=ids, version_ids=version_ids
        ),
    ]
