"""What trialwatch has recorded of its trials, as values: versions, change events, histories. Pure.

Storage's read queries fill these types (one query per type) and hand them up; the history,
period and timeline views read them. Nothing here renders, reads the clock, the database or
the network. History starts when trialwatch first records a trial.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from trialwatch.models import FieldChange, Snapshot
from trialwatch.vocabulary import one_line

__all__ = [
    "DATE_FIELDS",
    "Period",
    "RecordedChange",
    "RecordedVersion",
    "TrialHistory",
    "assemble_histories",
    "day_end",
    "day_start",
    "parse_day",
]

# The snapshot fields that hold a trial's milestone dates (what the timeline draws as slips).
DATE_FIELDS = ("start_date", "primary_completion_date", "completion_date")


@dataclass(frozen=True, slots=True)
class RecordedVersion:
    """One stored version of a trial's record: a ``record_version`` row, its snapshot decoded.

    ``first_seen_at`` is when trialwatch first stored it (aware UTC); ``data_timestamp`` is
    CT.gov's dataTimestamp of the sync that stored it (``yyyy-MM-ddTHH:mm:ss``), when known.
    """

    version_id: int
    nct_id: str
    first_seen_at: datetime
    data_timestamp: str | None
    snapshot: Snapshot
    # Read from CT.gov's record history (``trialwatch backfill``): its number there and the
    # day it was submitted (``first_seen_at`` is then that day, 00:00 UTC).
    registry_version: int | None = None
    registry_date: str | None = None


@dataclass(frozen=True, slots=True)
class RecordedChange:
    """One stored change event: a ``change_event`` row, its change decoded (``to_change()``).

    ``id`` is the row's primary key; with ``nct_id`` and ``detected_at`` it is the identity that
    feed entry ids are derived from, so it must never be reused for another change.
    """

    id: int
    nct_id: str
    detected_at: datetime
    data_timestamp: str | None
    change: FieldChange
    from_version_id: int | None = None
    to_version_id: int | None = None
    # "live": a sync saw it (``detected_at`` is when); "registry": read from CT.gov's record
    # history by a backfill (``detected_at`` is the day the registry's version was submitted).
    origin: str = "live"

    @property
    def from_registry(self) -> bool:
        return self.origin == "registry"


@dataclass(frozen=True, slots=True)
class TrialHistory:
    """Everything recorded of one trial: its versions and change events, both oldest first.

    ``watched_since`` is when the trial was added to the watch set (``trial.added_at``); the
    recorded history itself starts at the first version (:attr:`first_recorded_at`).
    """

    nct_id: str
    label: str | None
    versions: tuple[RecordedVersion, ...] = ()
    changes: tuple[RecordedChange, ...] = ()
    watched_since: datetime | None = None

    @property
    def first_recorded_at(self) -> datetime | None:
        return self.versions[0].first_seen_at if self.versions else None

    @property
    def latest(self) -> Snapshot | None:
        return self.versions[-1].snapshot if self.versions else None

    @property
    def brief_title(self) -> str | None:
        latest = self.latest
        return latest.brief_title if latest else None

    @property
    def name(self) -> str:
        """``"SEAL (NCT02606461)"``, or the NCT id alone when there is no label."""
        nct_id = one_line(self.nct_id)
        label = one_line(self.label) if self.label else ""
        return f"{label} ({nct_id})" if label else nct_id


def assemble_histories(
    trials: Iterable[tuple[str, str | None, datetime | None]],
    versions: Iterable[RecordedVersion],
    changes: Iterable[RecordedChange],
) -> list[TrialHistory]:
    """Group the rows of three queries (trials as ``(nct_id, label, added_at)``, versions and
    change events of those trials, in any order) into one :class:`TrialHistory` per trial, in
    the order ``trials`` gives. Versions and changes of trials not listed are ignored."""
    by_trial_versions: dict[str, list[RecordedVersion]] = defaultdict(list)
    by_trial_changes: dict[str, list[RecordedChange]] = defaultdict(list)
    for version in versions:
        by_trial_versions[version.nct_id].append(version)
    for change in changes:
        by_trial_changes[change.nct_id].append(change)
    return [
        TrialHistory(
            nct_id=nct_id,
            label=label,
            versions=tuple(
                sorted(by_trial_versions[nct_id], key=lambda v: (v.first_seen_at, v.version_id))
            ),
            changes=tuple(sorted(by_trial_changes[nct_id], key=lambda c: (c.detected_at, c.id))),
            watched_since=added_at,
        )
        for nct_id, label, added_at in trials
    ]


# --- periods and dates -------------------------------------------------------------------------


def parse_day(text: str) -> date:
    """``"2026-03-01"`` -> ``date(2026, 3, 1)``; anything else raises ``ValueError`` in words
    the CLI can print as is."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not a date: {text!r} (expected YYYY-MM-DD, e.g. 2026-03-01)") from None


def day_start(day: date) -> datetime:
    """The first moment of the UTC day ``day``."""
    return datetime.combine(day, time(0), tzinfo=UTC)


def day_end(day: date) -> datetime:
    """The first moment after ``day`` (the last day a date can name ends at datetime.max)."""
    return datetime.max.replace(tzinfo=UTC) if day == date.max else day_start(day + timedelta(1))


@dataclass(frozen=True, slots=True)
class Period:
    """Whole UTC days from ``since`` through ``until`` (both included); open-ended without
    ``until``. Raises ``ValueError`` when ``until`` is before ``since``."""

    since: date
    until: date | None = None

    def __post_init__(self) -> None:
        if self.until is not None and self.until < self.since:
            raise ValueError(f"--until {self.until} is before --since {self.since}")

    @property
    def start(self) -> datetime:
        return day_start(self.since)

    @property
    def end(self) -> datetime | None:
        """The first moment after the period, or ``None`` when it has no end."""
        return None if self.until is None else day_end(self.until)

    def contains(self, moment: datetime) -> bool:
        end = self.end
        return moment >= self.start and (end is None or moment < end)

    @property
    def label(self) -> str:
        """``"2026-01-01 to 2026-03-31"`` or ``"since 2026-01-01"``."""
        if self.until is None:
            return f"since {self.since.isoformat()}"
        return f"{self.since.isoformat()} to {self.until.isoformat()}"
