"""The sync use case: fetch -> normalize -> diff -> store, in one write transaction.

This module decides; the edges act. It talks to CT.gov and the database only through the two
small protocols below, so tests can hand it fakes, and it imports neither httpx nor SQLAlchemy.

A sync:

1. asks ``/version``; when CT.gov's ``dataTimestamp`` and the watchlist are those of the last
   complete sync, it stops there (one request, nothing written) unless forced;
2. streams the watched records (batched ``filter.ids`` requests), normalizing and hashing each;
   unchanged hashes cost nothing, changed ones are diffed against the stored snapshot;
3. writes the whole result — versions, change events, the run, the outbox — in one transaction.

One malformed record fails that trial only. A failure to fetch fails the run: nothing but a
``failed`` run row is written, and the previous state stays as it was.
"""

from __future__ import annotations

import hashlib
import json
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import structlog

from trialwatch.diff import diff
from trialwatch.exceptions import FetchError, RecordError
from trialwatch.models import (
    ApiVersion,
    Clock,
    FoundStudy,
    MissingStudy,
    Snapshot,
    StudyResult,
    SyncPlan,
    SyncResult,
    TrialFailure,
    TrialOutcome,
    TrialUpdate,
    WatchItem,
)
from trialwatch.normalize import canonical_json, content_hash, normalize

log = structlog.get_logger("trialwatch.sync")

MISSING_REASON = "not returned by ClinicalTrials.gov (not public, withdrawn from view, or unknown)"


class StudySource(Protocol):
    """Where records come from (the CT.gov client, or a fake)."""

    @property
    def requests_made(self) -> int: ...

    def version(self) -> ApiVersion: ...

    def iter_studies(self, ids: Sequence[str]) -> Iterator[StudyResult]: ...


class LastRun(Protocol):
    data_timestamp: str | None
    watchlist_hash: str | None


class SyncStore(Protocol):
    """What the sync needs from storage."""

    def last_complete_run(self) -> LastRun | None: ...

    def current_hashes(self) -> dict[str, tuple[str | None, int | None]]: ...

    def consecutive_failures(self) -> int: ...

    def snapshot(self, version_id: int) -> Snapshot: ...

    def apply_sync(self, plan: SyncPlan, *, router: Any = None) -> int: ...


def watchlist_hash(watchlist: Sequence[WatchItem]) -> str:
    """A fingerprint of the watchlist: a changed list, label or table means "sync again"."""
    items = sorted((w.nct_id, w.label, w.table or "", w.reference or "") for w in watchlist)
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()


def run_sync(
    *,
    source: StudySource,
    store: SyncStore,
    watchlist: Sequence[WatchItem],
    clock: Clock,
    force: bool = False,
    router: Any = None,
    new_run_id: Callable[[], str] = lambda: uuid.uuid4().hex,
) -> SyncResult:
    """Run one sync. Raises FetchError when CT.gov cannot be read (after recording the failure)."""
    run_id = new_run_id()
    started = clock()
    requests_before = source.requests_made
    fingerprint = watchlist_hash(watchlist)
    bound = log.bind(run_id=run_id)

    def plan(
        version: ApiVersion | None,
        outcomes: Sequence[TrialOutcome],
        errors: tuple[str, ...],
        *,
        complete: bool,
    ) -> SyncPlan:
        return SyncPlan(
            run_id=run_id,
            started_at=started,
            finished_at=clock(),
            forced=force,
            complete=complete,
            api_version=version.api_version if version else None,
            data_timestamp=version.data_timestamp if version else None,
            watchlist_hash=fingerprint,
            watchlist=tuple(watchlist),
            outcomes=tuple(outcomes),
            requests=source.requests_made - requests_before,
            errors=errors,
        )

    version: ApiVersion | None = None
    try:
        version = source.version()
        last = store.last_complete_run()
        same_data = (
            last is not None
            and last.data_timestamp == version.data_timestamp
            and last.watchlist_hash == fingerprint
        )
        if same_data and not force:
            # The stored data is CT.gov's current data. After failed runs that is news
            # (health recovered): record a complete run, still without fetching anything.
            recovered = store.consecutive_failures() > 0
            if recovered:
                store.apply_sync(plan(version, (), (), complete=True))
            finished = clock()
            bound.info(
                "sync.idle",
                data_timestamp=version.data_timestamp,
                requests=source.requests_made - requests_before,
                recovered=recovered,
                duration_s=round((finished - started).total_seconds(), 3),
            )
            return SyncResult(
                run_id=run_id,
                started_at=started,
                finished_at=finished,
                skipped=True,
                data_timestamp=version.data_timestamp,
                requests=source.requests_made - requests_before,
                wrote=recovered,
            )
        outcomes = _collect(source, store, watchlist, bound)
    except FetchError as exc:
        # Only the failure is recorded (health counts consecutive failures); no trial moves.
        failed = plan(version, (), (str(exc),), complete=False)
        bound.error("sync.failed", error=str(exc), requests=failed.requests)
        store.apply_sync(failed)
        raise

    nothing_new = all(o.kind == "unchanged" for o in outcomes)
    wrote = not (same_data and nothing_new)
    # Per-trial problems are recorded on the run too; the run is still complete.
    errors = tuple(f"{o.nct_id}: {o.error}" for o in outcomes if o.error)
    done = plan(version, outcomes, errors, complete=True)
    if wrote:
        store.apply_sync(done, router=router)
    finished = done.finished_at
    requests = done.requests

    result = SyncResult(
        run_id=run_id,
        started_at=started,
        finished_at=finished,
        skipped=False,
        data_timestamp=version.data_timestamp,
        checked=sum(1 for o in outcomes if o.kind not in {"missing"}),
        changed=sum(1 for o in outcomes if o.kind == "changed"),
        baselined=sum(1 for o in outcomes if o.kind == "baseline"),
        unchanged=sum(1 for o in outcomes if o.kind == "unchanged"),
        change_count=sum(len(o.changes) for o in outcomes),
        requests=requests,
        failed=tuple(TrialFailure(o.nct_id, o.error or "") for o in outcomes if o.kind == "failed"),
        missing=tuple(o.nct_id for o in outcomes if o.kind == "missing"),
        aliases={
            o.nct_id: o.canonical_id
            for o in outcomes
            if o.canonical_id and o.canonical_id != o.nct_id
        },
        updates=tuple(
            TrialUpdate(o.nct_id, o.changes, baseline=o.kind == "baseline")
            for o in outcomes
            if o.kind in {"changed", "baseline"}
        ),
        wrote=wrote,
    )
    bound.info(
        "sync.done",
        data_timestamp=result.data_timestamp,
        checked=result.checked,
        changed=result.changed,
        baselined=result.baselined,
        failed=len(result.failed),
        missing=len(result.missing),
        changes=result.change_count,
        requests=result.requests,
        wrote=wrote,
        duration_s=round((finished - started).total_seconds(), 3),
    )
    return result


def _collect(
    source: StudySource,
    store: SyncStore,
    watchlist: Sequence[WatchItem],
    bound: Any,
) -> list[TrialOutcome]:
    known = store.current_hashes()
    outcomes: list[TrialOutcome] = []
    for result in source.iter_studies([w.nct_id for w in watchlist]):
        if isinstance(result, MissingStudy):
            bound.warning("trial.missing", nct_id=result.requested_id, reason=MISSING_REASON)
            outcomes.append(
                TrialOutcome(nct_id=result.requested_id, kind="missing", error=MISSING_REASON)
            )
            continue
        outcomes.append(_decide(result, known.get(result.requested_id), store, bound))
    return outcomes


def _decide(
    found: FoundStudy,
    previous: tuple[str | None, int | None] | None,
    store: SyncStore,
    bound: Any,
) -> TrialOutcome:
    nct_id = found.requested_id
    canonical = found.nct_id if found.nct_id != nct_id else None
    try:
        snapshot = normalize(found.record)
    except RecordError as exc:
        bound.warning("trial.failed", nct_id=nct_id, reason=str(exc))
        return TrialOutcome(nct_id=nct_id, kind="failed", canonical_id=canonical, error=str(exc))

    digest = content_hash(snapshot)
    old_hash, old_version = previous if previous is not None else (None, None)
    if old_hash == digest:
        return TrialOutcome(
            nct_id=nct_id, kind="unchanged", canonical_id=canonical, previous_hash=old_hash
        )

    # Compressed now, not at write time: a large first sync holds ~3 KB per trial, not ~17 KB.
    raw = zlib.compress(json.dumps(found.record, sort_keys=True, separators=(",", ":")).encode(), 6)
    common: dict[str, Any] = {
        "nct_id": nct_id,
        "canonical_id": canonical,
        "brief_title": snapshot.brief_title,
        "acronym": snapshot.acronym,
        "overall_status": snapshot.overall_status,
        "content_hash": digest,
        "previous_hash": old_hash,
        "snapshot_json": canonical_json(snapshot),
        "raw_zlib": raw,
    }
    if old_hash is None or old_version is None:
        bound.debug("trial.baseline", nct_id=nct_id, status=snapshot.overall_status)
        return TrialOutcome(kind="baseline", **common)

    changes = tuple(diff(store.snapshot(old_version), snapshot))
    for change in changes:
        bound.info(
            "trial.change",
            nct_id=nct_id,
            field=change.field,
            severity=change.severity.label,
            summary=change.summary,
        )
    return TrialOutcome(kind="changed", changes=changes, **common)
