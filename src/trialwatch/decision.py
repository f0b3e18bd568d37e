"""Deciding a page of a sync: what each served record means against what is stored. Pure.

The sync fetches a page and reads the stored state of its trials; :func:`scan_page` settles
what costs nothing (missing, unchanged fingerprint) and lists the records to prepare
(:mod:`trialwatch.prepare`); :func:`versions_to_read` names the stored snapshots and raw
records the rest must be compared with; :func:`decide_page` turns each into an outcome — a new
baseline, registry churn, a silent re-baseline or changes, each change routed. The sync takes
the same steps a slice of a page at a time (:meth:`PageScan.take`, :func:`versions_needed`,
:func:`decide_moved`), so that the stored snapshots it reads are held for a slice, not a page.
No store, no network, no clock: everything is passed in as values, and the outcomes are handed
to storage.

:func:`plan_run` is the one rule for what a run fetches: the trials to recheck, the watched
trials CT.gov updated since a day (incremental), or the whole watch set (full).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

import structlog

from trialwatch import rawcodec
from trialwatch.diff import diff
from trialwatch.exceptions import RecordError
from trialwatch.models import (
    Category,
    ChangeKind,
    FieldChange,
    FoundStudy,
    MissingStudy,
    NewVersion,
    OutcomeKind,
    Router,
    Severity,
    Snapshot,
    StoredState,
    StudyResult,
    TrialOutcome,
    parse_record,
)
from trialwatch.normalize import (
    NORMALIZER_VERSION,
    canonical_bytes,
    hash_of,
    normalize,
    vanished_modules,
)
from trialwatch.prepare import Prepared

__all__ = [
    "FULL_SWEEP_MAX_AGE",
    "MERGED_FIELD",
    "MISSING_REASON",
    "SHORT_READ_REASON",
    "PageScan",
    "RunKind",
    "RunPlan",
    "decide_moved",
    "decide_page",
    "merge_change",
    "moved_records",
    "newly_merged",
    "plan_run",
    "read_by_older_normalizer",
    "scan_page",
    "syncs_incrementally",
    "versions_needed",
    "versions_to_read",
]

log = structlog.get_logger("trialwatch.sync")

Moved = tuple[FoundStudy, StoredState | None, str | None, Prepared | str]
"""A record whose fingerprint moved, its stored state, its served fingerprint, and its
preparation (or why it could not be read)."""

MISSING_REASON = "not returned by ClinicalTrials.gov (not public, withdrawn from view, or unknown)"
SHORT_READ_REASON = "left out of CT.gov's answer although it counted it (a short read)"

MERGED_FIELD = "merged_into"
"""The field of the one event a merged registration makes."""

FULL_SWEEP_MAX_AGE = timedelta(days=8)
"""An incremental watch set is swept in full at least this often, whatever the schedule says:
an edit CT.gov posted without moving LastUpdatePostDate is found within a week."""


# --- the plan of a run -------------------------------------------------------------------------


class RunKind(StrEnum):
    """What a run fetches (stored as ``sync_run.kind``)."""

    FULL = "full"  # the whole watch set
    INCREMENTAL = "incremental"  # the watched trials CT.gov updated since a day
    RECHECK = "recheck"  # CT.gov's data did not move: only the trials that still need it


@dataclass(frozen=True, slots=True)
class RunPlan:
    """What a run will fetch: its kind, and for an incremental one the day to ask from."""

    kind: RunKind
    since: date | None = None


def syncs_incrementally(watched: int, incremental_above: int) -> bool:
    """Whether a watch set of ``watched`` trials syncs incrementally (0: never)."""
    return 0 < incremental_above < watched


def data_went_back(current: str | None, last: str | None) -> bool:
    """Whether CT.gov's ``dataTimestamp`` ``current`` is older than ``last``, the one of the last
    complete run: a replica that has not caught up answered. One with a zone (``Z``,
    ``+00:00``) is compared in UTC with one without (CT.gov writes none): a zone must not turn
    the check off. Timestamps that do not read as ISO date-times are not judged (False):
    nothing to compare."""
    if not current or not last:
        return False
    try:
        return _utc_naive(current) < _utc_naive(last)
    except (ValueError, TypeError):  # unreadable
        return False


FUTURE_SLACK: Final = timedelta(days=2)
"""How far ahead of the clock a ``dataTimestamp`` may be (CT.gov writes US Eastern time without
a zone) before it is taken for a wrong one."""


def from_the_future(timestamp: str | None, now: datetime) -> bool:
    """Whether ``timestamp`` (a ``dataTimestamp``; no zone is read as UTC) is later than
    ``now`` by more than :data:`FUTURE_SLACK`: no data is dated after it was published, so it
    was never the registry's time. False when it does not read as a date-time."""
    if not timestamp:
        return False
    try:
        moment = _utc_naive(timestamp)
    except (ValueError, TypeError):
        return False
    return moment > now.astimezone(UTC).replace(tzinfo=None) + FUTURE_SLACK


def _utc_naive(timestamp: str) -> datetime:
    moment = datetime.fromisoformat(timestamp)
    if moment.tzinfo is None:
        return moment
    try:
        return moment.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:  # a zone at the calendar's ends (9999-12-31T23:00-05:00): moot there
        return moment.replace(tzinfo=None)


def plan_run(
    *,
    same_data: bool,
    force: bool,
    watched: int,
    incremental_above: int,
    full: bool,
    last_full_at: datetime | None,
    last_data_timestamp: str | None,
    now: datetime,
) -> RunPlan:
    """The one rule: CT.gov's data unchanged since the last complete run (and not forced): a
    recheck. Otherwise incremental — from the data day of the last complete run, inclusive —
    when the watch set is large enough, was swept in full within :data:`FULL_SWEEP_MAX_AGE`,
    and that day is known; else full (``full`` asks for it)."""
    if same_data and not force:
        return RunPlan(RunKind.RECHECK)
    if full or not syncs_incrementally(watched, incremental_above):
        return RunPlan(RunKind.FULL)
    if last_full_at is None:
        return RunPlan(RunKind.FULL)  # never swept: the first sync of a large watch set is full
    if now - last_full_at > FULL_SWEEP_MAX_AGE:
        return RunPlan(RunKind.FULL)
    if not last_data_timestamp:
        return RunPlan(RunKind.FULL)
    # What CT.gov posted that day and later; studies re-read from that day cost a fingerprint
    # check each.
    try:
        since = date.fromisoformat(last_data_timestamp[:10])
    except ValueError:  # CT.gov's dataTimestamp is not a date: nothing to count days from
        log.warning("sync.no_data_day", data_timestamp=last_data_timestamp, action="full sync")
        return RunPlan(RunKind.FULL)
    return RunPlan(RunKind.INCREMENTAL, since)


# --- a merged registration --------------------------------------------------------------------


def newly_merged(found: FoundStudy, state: StoredState | None) -> bool:
    """Whether ``found`` tells, for the first time, that its requested id was merged.

    The registry merges duplicate registrations: the retired id answers with the surviving
    study, which lists it in ``identificationModule.nctIdAliases`` (a source hands over such a
    study with its own ``nct_id``, see :class:`~trialwatch.models.FoundStudy`). It is news when
    the trial was stored under another study (its own, or one it has since left): a trial first
    seen already merged is simply baselined as the surviving study, silently."""
    return (
        found.nct_id != found.requested_id
        and state is not None
        and state.version_id is not None
        and state.canonical_id != found.nct_id
    )


def merge_change(retired: str, surviving: str) -> FieldChange:
    """The one event of a merge: "NCT… was merged into NCT…" (major)."""
    return FieldChange(
        field=MERGED_FIELD,
        category=Category.STATUS,
        severity=Severity.MAJOR,
        kind=ChangeKind.CHANGED,
        summary=f"{retired} was merged into {surviving} on ClinicalTrials.gov",
        old=retired,
        new=surviving,
    )


# --- a page --------------------------------------------------------------------------------------


@dataclass(slots=True)
class PageScan:
    """A page read against what is stored, before any record is prepared: the outcomes that
    need no work (missing, unchanged), and the records whose fingerprint moved."""

    order: list[str] = field(default_factory=list)
    outcomes: dict[str, TrialOutcome] = field(default_factory=dict)
    todo: list[tuple[FoundStudy, StoredState | None, str | None]] = field(default_factory=list)

    def jobs(self) -> list[bytes]:
        """What to prepare: each moved record as served, in order, handed over (once): the
        scan's studies keep their ids, and the bytes live as long as the preparer needs them,
        not until the page is decided."""
        return [found.hand_over() for found, _, _ in self.todo]

    def take(self, prepared: Sequence[Prepared | str]) -> list[Moved]:
        """The moved records with their preparations (``prepared``: in the order of
        :meth:`jobs`), handed over once: the scan lets go of them, so that each record (its
        served bytes, its canonical snapshot) can be dropped as soon as it is decided."""
        moved = moved_records(self, prepared)
        self.todo = []
        return moved


def read_by_older_normalizer(state: StoredState) -> bool:
    """Whether the trial's stored snapshot was made by another normalizer than this one
    (stored before versions said which: by the first)."""
    return (state.normalizer_version or 1) != NORMALIZER_VERSION


def scan_page(
    results: Sequence[StudyResult],
    states: Mapping[str, StoredState],
    *,
    recheck_run: bool = False,
    log: Any = log,
) -> PageScan:
    """The first half of deciding a page: what costs nothing. An unchanged fingerprint (same
    served record, same normalizer) is an outcome; a moved one is left to prepare."""
    scan = PageScan()
    for result in results:
        if isinstance(result, MissingStudy):
            nct_id = result.requested_id
            scan.order.append(nct_id)
            state = states.get(nct_id)
            if result.refused is not None:
                # Not an absence: CT.gov will not look it up at all. Marked, and left out of
                # later batches, so it costs neither its batch nor every later poll.
                log.warning("trial.refused", nct_id=nct_id, reason=result.refused)
                scan.outcomes[nct_id] = TrialOutcome(
                    nct_id=nct_id, kind=OutcomeKind.REFUSED, error=result.refused
                )
                continue
            confirmed = result.confirmed
            had = state is not None and state.version_id is not None  # returned before
            # Absent although returned before, or left out of a short answer: fetch it again
            # at the next poll — once: a recheck that finds it absent again lets it rest.
            recheck = (had or not confirmed) and not recheck_run
            reason = MISSING_REASON if confirmed else SHORT_READ_REASON
            if state is None or not state.flagged:
                log.warning("trial.missing", nct_id=nct_id, reason=reason, recheck=recheck)
            scan.outcomes[nct_id] = TrialOutcome(
                nct_id=nct_id, kind=OutcomeKind.MISSING, error=reason, recheck=recheck
            )
            continue
        nct_id = result.requested_id
        scan.order.append(nct_id)
        state = states.get(nct_id)
        # The source's fingerprint of the record as served (None: it gave none, so the record
        # is always normalized and compared).
        fingerprint = result.fingerprint
        if (
            fingerprint is not None
            and state is not None
            and state.content_hash is not None
            and state.fingerprint == fingerprint
            and not read_by_older_normalizer(state)
            and not newly_merged(result, state)
        ):
            scan.outcomes[nct_id] = TrialOutcome(
                nct_id=nct_id,
                kind=OutcomeKind.REFRESHED if state.flagged else OutcomeKind.UNCHANGED,
                canonical_id=result.nct_id if result.nct_id != nct_id else None,
                previous_hash=state.content_hash,
                fingerprint=fingerprint,
            )
            continue
        scan.todo.append((result, state, fingerprint))
    return scan


def moved_records(scan: PageScan, prepared: Sequence[Prepared | str]) -> list[Moved]:
    """Each record of ``scan`` whose fingerprint moved, with its preparation (``prepared``: in
    the order of :meth:`PageScan.jobs`)."""
    return [(f, s, fp, ready) for (f, s, fp), ready in zip(scan.todo, prepared, strict=True)]


def versions_to_read(
    scan: PageScan, prepared: Sequence[Prepared | str]
) -> tuple[set[int], set[int]]:
    """Which stored versions :func:`decide_page` needs, as (snapshots, raw records): only what
    this page needs — the stored snapshots of its changed trials, and the raw records of those
    a newer normalizer must read again (``prepared``: in the order of :meth:`PageScan.jobs`)."""
    return versions_needed(moved_records(scan, prepared))


def versions_needed(moved: Iterable[Moved]) -> tuple[set[int], set[int]]:
    """Which stored versions :func:`decide_moved` needs for ``moved``, as (snapshots, raw
    records), as :func:`versions_to_read` says for a page."""
    snapshot_ids: set[int] = set()
    raw_ids: set[int] = set()
    for _, state, _, ready in moved:
        if isinstance(ready, str) or state is None or state.version_id is None:
            continue
        if read_by_older_normalizer(state):
            raw_ids.add(state.version_id)
        elif state.content_hash != ready.digest:
            snapshot_ids.add(state.version_id)
    return snapshot_ids, raw_ids


def decide_page(
    scan: PageScan,
    prepared: Sequence[Prepared | str],
    old_snapshots: Mapping[int, Snapshot],
    old_raw: Mapping[int, bytes],
    router: Router,
    *,
    log: Any = log,
) -> list[TrialOutcome]:
    """The second half: each moved record, prepared (``prepared``: in the order of
    :meth:`PageScan.jobs`), is a new baseline, registry churn, or changes — diffed against the
    stored snapshot in ``old_snapshots`` (which a newer normalizer first reads again from the
    stored raw record in ``old_raw``, silently), each routed. Returns the page's outcomes in
    the order it was served; writes nothing. The sync overlaps the two halves across pages."""
    outcomes = dict(scan.outcomes)
    moved = moved_records(scan, prepared)
    for outcome in decide_moved(moved, old_snapshots, old_raw, router, log=log):
        outcomes[outcome.nct_id] = outcome
    return [outcomes[i] for i in scan.order]


def decide_moved(
    moved: Iterable[Moved],
    old_snapshots: Mapping[int, Snapshot],
    old_raw: Mapping[int, bytes],
    router: Router,
    *,
    log: Any = log,
) -> list[TrialOutcome]:
    """The outcome of each of ``moved`` (some or all of a page's moved records, with their
    preparations), in order, against the stored versions :func:`versions_needed` names for
    them, as :func:`decide_page` decides a page. Writes nothing."""
    outcomes: list[TrialOutcome] = []
    for found, state, fingerprint, ready in moved:
        if isinstance(ready, str):  # the record could not be read
            outcomes.append(_failed(found, state, ready, log))
            continue
        outcomes.append(
            _decide_changed(found, state, fingerprint, ready, old_snapshots, old_raw, router, log)
        )
    return outcomes


def _failed(found: FoundStudy, state: StoredState | None, reason: str, log: Any) -> TrialOutcome:
    """A record not compared (unreadable, or served incomplete): the trial fails this time,
    its stored version stays."""
    log.warning("trial.failed", nct_id=found.requested_id, reason=reason)
    return TrialOutcome(
        nct_id=found.requested_id,
        kind=OutcomeKind.FAILED,
        canonical_id=found.nct_id if found.nct_id != found.requested_id else None,
        previous_hash=state.content_hash if state else None,
        error=reason,
    )


def _new_version(canonical: bytes, digest: str, raw: bytes) -> NewVersion:
    """A version to store: its canonical snapshot, and the record as served, compressed (a
    page holds ~4 KB per trial, not ~10 KB; see :mod:`rawcodec`)."""
    return NewVersion(digest, canonical, raw, NORMALIZER_VERSION)


def _version_of(ready: Prepared) -> NewVersion:
    return _new_version(ready.canonical, ready.digest, ready.raw)


def _decide_changed(
    found: FoundStudy,
    state: StoredState | None,
    fingerprint: str | None,
    ready: Prepared,
    old_snapshots: Mapping[int, Snapshot],
    old_raw: Mapping[int, bytes],
    router: Router,
    log: Any,
) -> TrialOutcome:
    nct_id = found.requested_id
    digest = ready.digest
    common: dict[str, Any] = {
        "nct_id": nct_id,
        "canonical_id": found.nct_id if found.nct_id != nct_id else None,
        "brief_title": ready.brief_title,
        "acronym": ready.acronym,
        "overall_status": ready.overall_status,
        "previous_hash": state.content_hash if state else None,
        "from_version_id": state.version_id if state else None,
        "fingerprint": fingerprint,
    }
    if state is None or state.content_hash is None or state.version_id is None:
        log.debug("trial.baseline", nct_id=nct_id, status=ready.overall_status)
        return TrialOutcome(kind=OutcomeKind.BASELINE, version=_version_of(ready), **common)

    if newly_merged(found, state):
        # Two different studies: no field-by-field diff. One event names the surviving study,
        # whose record becomes this trial's baseline (its history continues from there).
        change = merge_change(nct_id, found.nct_id)
        log.info("trial.merged", nct_id=nct_id, into=found.nct_id)
        return TrialOutcome(
            kind=OutcomeKind.CHANGED,
            version=_version_of(ready),
            changes=(change,),
            routes=(tuple(router(nct_id, state.label or ready.acronym, change)),),
            **common,
        )

    rebaseline: NewVersion | None = None
    if state.version_id in old_raw:
        # A newer normalizer: read the stored record again, silently, and compare with that,
        # so a new tracked field is a new baseline, not a change to tell everyone about.
        stored_raw = old_raw[state.version_id]
        try:
            previous = normalize(parse_record(rawcodec.decompress(stored_raw)))
        except RecordError:  # damaged, or no longer a record this normalizer can read
            previous = None
        if previous is None:
            log.info("trial.rebaseline_unreadable", nct_id=nct_id)
            return TrialOutcome(kind=OutcomeKind.REBASELINED, version=_version_of(ready), **common)
        previous_canonical = canonical_bytes(previous)
        previous_hash = hash_of(previous_canonical)
        if previous_hash == digest:
            return TrialOutcome(kind=OutcomeKind.REBASELINED, version=_version_of(ready), **common)
        if previous_hash != state.content_hash:
            rebaseline = _new_version(previous_canonical, previous_hash, stored_raw)
    elif digest == state.content_hash:
        # The served record moved (registry churn), its snapshot did not: keep the fingerprint.
        return TrialOutcome(
            kind=OutcomeKind.REFRESHED,
            previous_hash=state.content_hash,
            nct_id=nct_id,
            canonical_id=common["canonical_id"],
            fingerprint=fingerprint,
        )
    else:
        previous = old_snapshots[state.version_id]

    vanished = vanished_modules(previous, ready.absent_modules)
    if vanished:
        # Served incomplete (a module every registered study has, which the last version had,
        # is absent): compared, it would read as all of it removed, and then all of it added
        # back. The trial fails this time, the version stored stays, and the next poll asks
        # again (its fingerprint was not stored).
        reason = (
            f"record: arrived without its {', '.join(vanished)} (every registered study has "
            "them); not compared: the version stored is kept"
        )
        return _failed(found, state, reason, log)
    changes = tuple(diff(previous, ready.snapshot()))
    label = state.label or ready.acronym
    for change in changes:
        log.info(
            "trial.change",
            nct_id=nct_id,
            field=change.field,
            severity=change.severity.label,
            summary=change.summary,
        )
    routes = tuple(tuple(router(nct_id, label, change)) for change in changes)
    return TrialOutcome(
        kind=OutcomeKind.CHANGED,
        version=_version_of(ready),
        rebaseline=rebaseline,
        changes=changes,
        routes=routes,
        **common,
    )
