"""The sync use case: fetch -> normalize -> diff -> route -> store, one page at a time.

This module decides; the edges act. It talks to CT.gov and the database only through the two
small protocols below, so tests can hand it fakes, and it imports neither httpx nor SQLAlchemy.

A sync:

1. asks ``/version``; when CT.gov's ``dataTimestamp`` is the one of the last complete run it
   fetches only the trials that still need it (newly watched, or absent from the last answer)
   — usually none: one request, nothing written — unless forced;
2. otherwise walks the watch set in batches: each batch is one ``filter.ids`` request, its
   records are decided (an unchanged fingerprint skips normalizing; a changed record is
   prepared — normalized, hashed — by the ``prepare`` it is given, perhaps in worker
   processes, then diffed; who hears about each change is decided by the router) and the page
   is written in one transaction: versions, change events and the notifications they owe,
   together. Pages are pipelined by one: page k+1 is fetched and handed out to be prepared
   before page k is decided and written;
3. ends the run: its notifications are merged into one message per recipient (one summary
   when too many trials changed at once), and only then does the run count as complete.

Memory is bounded by two batches, whatever the size of the watch set. One malformed record
fails that trial only. A fetch failure ends the run as failed; the pages written before it
stay (their changes are real and are delivered), and the next poll fetches everything again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

import orjson
import structlog

from trialwatch import rawcodec
from trialwatch.diff import diff
from trialwatch.discovery import decide_query, params_hash
from trialwatch.exceptions import FetchError, RecordError
from trialwatch.failpoints import failpoint
from trialwatch.models import (
    ApiVersion,
    Clock,
    FieldChange,
    FoundStudy,
    MissingStudy,
    NewVersion,
    Route,
    Router,
    RunStart,
    RunTotals,
    Snapshot,
    StoredState,
    StudyResult,
    StudySummary,
    SyncResult,
    TrialFailure,
    TrialOutcome,
    TrialUpdate,
    WatchItem,
    parse_record,
)
from trialwatch.normalize import NORMALIZER_VERSION, canonical_bytes, hash_of, normalize

log = structlog.get_logger("trialwatch.sync")

MISSING_REASON = "not returned by ClinicalTrials.gov (not public, withdrawn from view, or unknown)"
SHORT_READ_REASON = "left out of CT.gov's answer although it counted it (a short read)"
MAX_UPDATES_KEPT = 500  # the result lists at most this many changed trials (counts are exact)


class StudySource(Protocol):
    """Where records come from (the CT.gov client, or a fake)."""

    @property
    def requests_made(self) -> int: ...

    def version(self) -> ApiVersion: ...

    def iter_studies(self, ids: Sequence[str]) -> Iterator[StudyResult]: ...

    def updated_since(self, day: date) -> frozenset[str]: ...

    def search(self, params: Mapping[str, str]) -> tuple[StudySummary, ...]: ...


@dataclass(frozen=True, slots=True)
class QuerySpec:
    """A ``[[queries]]`` entry as the sync needs it: its name, CT.gov search, and ``track``."""

    name: str
    params: Mapping[str, str]
    track: bool = False


class LastRun(Protocol):
    data_timestamp: str | None
    finished_at: Any


class SyncStore(Protocol):
    """What the sync needs from storage."""

    def sync_config_watchlist(self, items: Sequence[WatchItem], *, now: Any) -> Any: ...

    def last_complete_run(self, kind: str | None = ...) -> LastRun | None: ...

    def watched_among(self, ids: Iterable[str]) -> list[str]: ...

    def consecutive_failures(self) -> int: ...

    def recover_interrupted(self, *, now: Any) -> int: ...

    def watched_count(self) -> int: ...

    def iter_watched_ids(self, chunk: int = ...) -> Iterator[list[str]]: ...

    def ids_to_recheck(self, limit: int = ...) -> list[str]: ...

    def page_state(self, ids: Sequence[str]) -> dict[str, StoredState]: ...

    def snapshots(self, version_ids: Iterable[int]) -> dict[int, Snapshot]: ...

    def raw_records(self, version_ids: Iterable[int]) -> dict[int, bytes]: ...

    def begin_run(self, start: RunStart) -> Any: ...

    def write_page(
        self,
        run: Any,
        page: int,
        outcomes: Sequence[TrialOutcome],
        *,
        now: Any,
        data_timestamp: str | None,
    ) -> int: ...

    def finish_run(self, run: Any, totals: RunTotals) -> None: ...

    def query_baseline(self, name: str, params_hash: str) -> dict[str, bool] | None: ...

    def write_query(
        self,
        run: Any,
        page: int,
        *,
        name: str,
        params_hash: str,
        matches: Sequence[StudySummary],
        changes: Sequence[tuple[str, FieldChange, tuple[Route, ...]]],
        track: bool,
        now: Any,
        data_timestamp: str | None,
    ) -> tuple[str, ...]: ...

    def record_failed_run(self, start: RunStart, totals: RunTotals) -> None: ...


@dataclass(frozen=True, slots=True)
class FloodRule:
    """Above either limit, recipients get one summary per run instead of long reports."""

    max_trials: int = 50  # 0: no limit by count
    max_fraction: float = 0.2
    min_trials: int = 10  # the fraction rule needs at least this many changed trials

    def floods(self, changed_trials: int, watched: int) -> bool:
        if self.max_trials and changed_trials > self.max_trials:
            return True
        return (
            self.max_fraction > 0
            and changed_trials >= self.min_trials
            and watched > 0
            and changed_trials > self.max_fraction * watched
        )


FULL_SWEEP_MAX_AGE = timedelta(days=8)
"""An incremental watch set is swept in full at least this often, whatever the schedule says:
an edit CT.gov posted without moving LastUpdatePostDate is found within a week."""


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a long sync is: reported after every page."""

    pages: int
    studies: int
    total: int | None


def no_routes(nct_id: str, label: str | None, change: FieldChange) -> Sequence[Route]:
    return ()


@dataclass
class _Tally:
    checked: int = 0
    changed: int = 0
    baselined: int = 0
    rebaselined: int = 0
    unchanged: int = 0
    change_count: int = 0
    routed_trials: int = 0
    failed: list[TrialFailure] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    newly_missing: list[str] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    updates: list[TrialUpdate] = field(default_factory=list)
    pages: int = 0
    surge: bool = False  # a query suddenly matched many more trials: one summary

    def count(self, outcome: TrialOutcome, state: StoredState | None) -> None:
        kind = outcome.kind
        if kind == "missing":
            self.missing.append(outcome.nct_id)
            if state is None or not state.flagged:
                self.newly_missing.append(outcome.nct_id)
            return
        self.checked += 1
        if outcome.canonical_id and outcome.canonical_id != outcome.nct_id:
            self.aliases[outcome.nct_id] = outcome.canonical_id
        if kind == "failed":
            self.failed.append(TrialFailure(outcome.nct_id, outcome.error or ""))
        elif kind == "baseline":
            self.baselined += 1
        elif kind == "rebaselined":
            self.rebaselined += 1
        elif kind == "changed":
            self.changed += 1
            self.change_count += len(outcome.changes)
            if any(outcome.routes):
                self.routed_trials += 1
            if len(self.updates) < MAX_UPDATES_KEPT:
                self.updates.append(TrialUpdate(outcome.nct_id, outcome.changes))
        else:
            self.unchanged += 1
        if outcome.rebaseline is not None:
            self.rebaselined += 1

    def errors(self) -> tuple[str, ...]:
        return tuple(f"{f.nct_id}: {f.reason}" for f in self.failed)

    def totals(
        self,
        *,
        finished_at: datetime,
        complete: bool,
        requests: int,
        errors: tuple[str, ...] = (),
        summary_only: bool = False,
    ) -> RunTotals:
        return RunTotals(
            finished_at=finished_at,
            complete=complete,
            checked=self.checked,
            changed=self.changed,
            baselined=self.baselined,
            rebaselined=self.rebaselined,
            failed=len(self.failed),
            missing=len(self.missing),
            change_count=self.change_count,
            requests=requests,
            errors=(*errors, *self.errors()),
            summary_only=summary_only,
        )


def run_sync(
    *,
    source: StudySource,
    store: SyncStore,
    clock: Clock,
    watchlist: Sequence[WatchItem] | None = None,
    force: bool = False,
    router: Router | None = None,
    new_run_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    batch_size: int = 100,
    flood: FloodRule | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    incremental_above: int = 0,
    full: bool = False,
    queries: Sequence[QuerySpec] = (),
    prepare: Preparer | None = None,
) -> SyncResult:
    """Run one sync. Raises FetchError when CT.gov cannot be read (after recording the failure).

    ``watchlist``, when given, is the config file's watch set: it is made the ``config``
    source's entries first. Other sources (``watch add``, imports, queries) are in the store.

    A watch set larger than ``incremental_above`` (0: never) is synced incrementally: CT.gov is
    asked which studies it updated since the day of the last complete sync, and only the
    watched ones among them are fetched. A full sweep (``full``, or when the last one is older
    than :data:`FULL_SWEEP_MAX_AGE`) fetches them all and catches what that query misses.
    """
    run_id = new_run_id()
    started = clock()
    requests_before = source.requests_made
    bound = log.bind(run_id=run_id)
    route = router or no_routes

    def requests() -> int:
        return source.requests_made - requests_before

    if watchlist is not None:
        store.sync_config_watchlist(watchlist, now=started)

    # A run whose process died mid-way is closed first, releasing what its committed pages owe,
    # even if CT.gov cannot be reached now (the caller holds the sync lock: nobody else runs).
    store.recover_interrupted(now=started)
    version: ApiVersion | None = None
    try:
        version = source.version()
    except FetchError as exc:
        bound.error("sync.failed", error=str(exc), requests=requests())
        start = RunStart(run_id, started, force, "full", None, None)
        store.record_failed_run(
            start,
            RunTotals(finished_at=clock(), complete=False, requests=requests(), errors=(str(exc),)),
        )
        raise

    last = store.last_complete_run()
    same_data = last is not None and last.data_timestamp == version.data_timestamp
    kind = "full"
    chunks: Iterable[list[str]]
    total: int | None
    if same_data and not force:
        pending = store.ids_to_recheck()
        if not pending:
            # The stored data is CT.gov's current data. After failed runs that is news
            # (health recovered): record a complete run, still without fetching anything.
            recovered = store.consecutive_failures() > 0
            if recovered:
                recovery = store.begin_run(
                    RunStart(
                        run_id,
                        started,
                        force,
                        "recheck",
                        version.api_version,
                        version.data_timestamp,
                    )
                )
                store.finish_run(
                    recovery, RunTotals(finished_at=clock(), complete=True, requests=requests())
                )
            finished = clock()
            bound.info(
                "sync.idle",
                data_timestamp=version.data_timestamp,
                requests=requests(),
                recovered=recovered,
                duration_s=round((finished - started).total_seconds(), 3),
            )
            return SyncResult(
                run_id=run_id,
                started_at=started,
                finished_at=finished,
                skipped=True,
                data_timestamp=version.data_timestamp,
                requests=requests(),
                wrote=recovered,
            )
        kind = "recheck"
        chunks = [pending[i : i + batch_size] for i in range(0, len(pending), batch_size)]
        total = len(pending)
    else:
        watched = store.watched_count()
        since = _incremental_since(store, last, clock(), watched, incremental_above, full)
        if since is not None:
            kind = "incremental"
            updated = source.updated_since(since)
            wanted = sorted(set(store.watched_among(updated)) | set(store.ids_to_recheck()))
            bound.info(
                "sync.incremental",
                since=since.isoformat(),
                updated=len(updated),
                watched_updated=len(wanted),
            )
            chunks = [wanted[i : i + batch_size] for i in range(0, len(wanted), batch_size)]
            total = len(wanted)
        else:
            chunks = store.iter_watched_ids(batch_size)
            total = watched

    # The run's row is written with its first page that writes anything (or at its end): a
    # sync cancelled while the first answer is still on its way leaves nothing behind.
    start = RunStart(run_id, started, force, kind, version.api_version, version.data_timestamp)
    run: Any = None
    tally = _Tally()

    def the_run() -> Any:
        nonlocal run
        if run is None:
            run = store.begin_run(start)
        return run

    preparer = prepare or prepare_here

    def write(
        states: Mapping[str, StoredState],
        scan: PageScan,
        answers: Callable[[], list[Prepared | str]],
    ) -> None:
        outcomes = decide_scanned(scan, answers(), store, route, log=bound)
        for outcome in outcomes:
            tally.count(outcome, states.get(outcome.nct_id))
        if any(o.kind != "unchanged" for o in outcomes):
            store.write_page(
                the_run(),
                tally.pages,
                outcomes,
                now=clock(),
                data_timestamp=version.data_timestamp,
            )
        tally.pages += 1
        failpoint("sync.page_committed")
        if on_progress is not None:
            on_progress(Progress(tally.pages, tally.checked + len(tally.missing), total))

    def fetch(chunks: Iterable[list[str]]) -> None:
        # Pipelined by one page: page k+1 is fetched and its records handed to the preparer
        # before page k is decided and written, so that workers prepare while this process
        # writes. Pages hold disjoint trials, so reading k+1's state before k is written is
        # safe; what was fetched before a failure to fetch is still decided and written.
        held: tuple[Mapping[str, StoredState], PageScan, Callable[[], Any]] | None = None
        try:
            for ids in chunks:
                results = list(source.iter_studies(ids))
                failpoint("sync.fetched")
                states = store.page_state(ids)
                scan = scan_page(results, states, recheck_run=kind == "recheck", log=bound)
                answers = preparer(scan.jobs())
                if held is not None:
                    write(*held)
                held = (states, scan, answers)
        except FetchError:
            if held is not None:
                write(*held)
            raise
        if held is not None:
            write(*held)

    try:
        fetch(chunks)
        if queries and kind != "recheck":
            # Once per CT.gov refresh: an idle poll or a recheck skips them with the rest.
            tracked = _run_queries(
                queries,
                source,
                store,
                route,
                the_run,
                tally,
                clock,
                version.data_timestamp,
                bound,
            )
            if tracked:  # newly tracked trials are fetched now, as silent baselines
                fetch(tracked[i : i + batch_size] for i in range(0, len(tracked), batch_size))
    except BaseException as exc:
        # What the pages written so far owe is released; the run does not count as complete.
        error = str(exc) or type(exc).__name__
        if isinstance(exc, FetchError):
            bound.error("sync.failed", error=error, requests=requests())
        failed = tally.totals(
            finished_at=clock(), complete=False, requests=requests(), errors=(error,)
        )
        try:
            if run is not None:
                store.finish_run(run, failed)
            elif isinstance(exc, FetchError):  # health counts failed fetches
                store.record_failed_run(start, failed)
        except Exception as finish_error:  # noqa: BLE001 - the first error is the one to raise
            bound.error("sync.finish_failed", error=str(finish_error))
        raise

    failpoint("sync.before_finish")
    watched = total if kind == "full" and total is not None else store.watched_count()
    summary_only = tally.surge or (flood or FloodRule(max_trials=0, max_fraction=0)).floods(
        tally.routed_trials, watched
    )
    finished = clock()
    if run is None:
        run = store.begin_run(start)
    store.finish_run(
        run,
        tally.totals(
            finished_at=finished,
            complete=True,
            requests=requests(),
            summary_only=summary_only,
        ),
    )
    result = SyncResult(
        run_id=run_id,
        started_at=started,
        finished_at=finished,
        skipped=False,
        data_timestamp=version.data_timestamp,
        checked=tally.checked,
        changed=tally.changed,
        baselined=tally.baselined,
        rebaselined=tally.rebaselined,
        unchanged=tally.unchanged,
        change_count=tally.change_count,
        requests=requests(),
        failed=tuple(tally.failed),
        missing=tuple(tally.missing),
        newly_missing=tuple(tally.newly_missing),
        aliases=dict(tally.aliases),
        updates=tuple(tally.updates),
        wrote=True,
        kind=kind,
        flooded=summary_only,
        flooded_trials=tally.routed_trials if summary_only else 0,
    )
    bound.info(
        "sync.done",
        kind=kind,
        data_timestamp=result.data_timestamp,
        checked=result.checked,
        changed=result.changed,
        baselined=result.baselined,
        rebaselined=result.rebaselined,
        failed=len(result.failed),
        missing=len(result.missing),
        changes=result.change_count,
        requests=result.requests,
        pages=tally.pages,
        flooded=summary_only,
        duration_s=round((finished - started).total_seconds(), 3),
    )
    return result


def _run_queries(
    queries: Sequence[QuerySpec],
    source: StudySource,
    store: SyncStore,
    router: Router,
    the_run: Callable[[], Any],
    tally: _Tally,
    clock: Clock,
    data_timestamp: str | None,
    bound: Any,
) -> list[str]:
    """Run each query, record its answer and what entered or left it; returns the ids that
    ``track = true`` queries started watching."""
    tracked: list[str] = []
    for index, query in enumerate(queries):
        digest = params_hash(query.params)
        previous = store.query_baseline(query.name, digest)
        matches = source.search(query.params)
        current = {m.nct_id for m in matches}
        left = sorted(n for n, present in (previous or {}).items() if present and n not in current)
        left_status: dict[str, str | None] = {}
        if left:  # their current status often says why they left
            for result in source.iter_studies(left):
                if isinstance(result, FoundStudy):
                    left_status[result.requested_id] = _overall_status(result)
        outcome = decide_query(query.name, previous, matches, left_status)
        changes = [
            (nct_id, change, tuple(router(nct_id, None, change)))
            for nct_id, change in outcome.changes
        ]
        started = store.write_query(
            the_run(),
            -(index + 1),
            name=query.name,
            params_hash=digest,
            matches=matches,
            changes=changes,
            track=query.track,
            now=clock(),
            data_timestamp=data_timestamp,
        )
        tracked += [i for i in started if i not in tracked]
        tally.change_count += len(changes)
        tally.routed_trials += sum(1 for _, _, routes in changes if routes)
        tally.surge = tally.surge or outcome.surge
        by_trial: dict[str, list[FieldChange]] = {}
        for nct_id, change, _ in changes:
            by_trial.setdefault(nct_id, []).append(change)
        for nct_id, trial_changes in by_trial.items():
            if len(tally.updates) < MAX_UPDATES_KEPT:
                tally.updates.append(TrialUpdate(nct_id, tuple(trial_changes)))
        bound.info(
            "query.done",
            query=query.name,
            matched=len(matches),
            baseline=outcome.baseline,
            entered=len(outcome.entered) if not outcome.baseline else 0,
            left=len(outcome.left),
            surge=outcome.surge,
            tracked=len(started),
        )
    return tracked


def _incremental_since(
    store: SyncStore, last: LastRun | None, now: datetime, watched: int, above: int, full: bool
) -> date | None:
    """The day to ask CT.gov for updates since, or None for a full sync."""
    if full or not (0 < above < watched):
        return None
    last_full = store.last_complete_run(kind="full")
    if last_full is None or last_full.finished_at is None:
        return None  # never swept: the first sync of a large watch set is a full one
    if now - last_full.finished_at > FULL_SWEEP_MAX_AGE:
        return None
    stamp = last.data_timestamp if last is not None else None
    if not stamp:
        return None
    # The data day of the last complete sync, inclusive: what CT.gov posted that day and later.
    # Studies re-read from that day cost a fingerprint check each.
    try:
        return date.fromisoformat(stamp[:10])
    except ValueError:  # CT.gov's dataTimestamp is not a date: nothing to count days from
        log.warning("sync.no_data_day", data_timestamp=stamp, action="full sync")
        return None


@dataclass(frozen=True, slots=True)
class Prepared:
    """A record whose fingerprint moved, made ready to compare and store: parsed, normalized,
    hashed and (when asked) compressed. Plain data, so that another process can make it (see
    :mod:`trialwatch.workers`); the snapshot itself is rebuilt from ``canonical`` only for the
    few records that are diffed."""

    canonical: bytes
    digest: str
    raw: bytes | None  # the record as served, compressed; None when not asked for
    brief_title: str | None
    acronym: str | None
    overall_status: str | None

    def snapshot(self) -> Snapshot:
        return Snapshot.from_dict(orjson.loads(self.canonical))


Preparer = Callable[[Sequence[tuple[bytes, bool]]], Callable[[], list["Prepared | str"]]]
"""Starts preparing records given as (served bytes, compress too?) and returns the function
that gives the answers, in order: a :class:`Prepared`, or the reason a record cannot be read
(a :class:`RecordError`'s message). :func:`prepare_here` prepares them when asked, in this
process; :class:`trialwatch.workers.PreparePool` starts worker processes on them at once."""


def prepare_one(body: bytes, compress: bool) -> Prepared | str:
    """Parse, normalize, hash and optionally compress one served record (pure)."""
    try:
        snapshot = normalize(parse_record(body))
    except RecordError as exc:
        return str(exc)
    canonical = canonical_bytes(snapshot)
    return Prepared(
        canonical=canonical,
        digest=hash_of(canonical),
        raw=rawcodec.compress(body) if compress else None,
        brief_title=snapshot.brief_title,
        acronym=snapshot.acronym,
        overall_status=snapshot.overall_status,
    )


def prepare_all(jobs: Sequence[tuple[bytes, bool]]) -> list[Prepared | str]:
    """Prepare every record of ``jobs`` now, in this process."""
    return [prepare_one(body, compress) for body, compress in jobs]


def prepare_here(jobs: Sequence[tuple[bytes, bool]]) -> Callable[[], list[Prepared | str]]:
    """The :data:`Preparer` of this process alone: the work is done when the answer is asked."""
    return lambda: prepare_all(jobs)


class _SnapshotSource(Protocol):
    def snapshots(self, version_ids: Iterable[int]) -> dict[int, Snapshot]: ...

    def raw_records(self, version_ids: Iterable[int]) -> dict[int, bytes]: ...


@dataclass(slots=True)
class PageScan:
    """A page read against what is stored, before any record is prepared: the outcomes that
    need no work (missing, unchanged), and the records whose fingerprint moved."""

    order: list[str] = field(default_factory=list)
    outcomes: dict[str, TrialOutcome] = field(default_factory=dict)
    todo: list[tuple[FoundStudy, StoredState | None, str | None]] = field(default_factory=list)

    def jobs(self) -> list[tuple[bytes, bool]]:
        """What to prepare: each moved record's bytes, and whether to compress them too: a new
        trial's version is certainly stored, and so is one read by an older normalizer (it is
        re-baselined or changed); a known trial's only if its snapshot moved, which registry
        churn mostly does not (compressed later, in this process, when it did)."""
        return [
            (
                found.body,
                state is None or state.version_id is None or _read_by_older_normalizer(state),
            )
            for found, state, _ in self.todo
        ]


def _read_by_older_normalizer(state: StoredState) -> bool:
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
            confirmed = result.confirmed
            had = state is not None and state.version_id is not None  # returned before
            # Absent although returned before, or left out of a short answer: fetch it again
            # at the next poll — once: a recheck that finds it absent again lets it rest.
            recheck = (had or not confirmed) and not recheck_run
            reason = MISSING_REASON if confirmed else SHORT_READ_REASON
            if state is None or not state.flagged:
                log.warning("trial.missing", nct_id=nct_id, reason=reason, recheck=recheck)
            scan.outcomes[nct_id] = TrialOutcome(
                nct_id=nct_id, kind="missing", error=reason, recheck=recheck
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
            and not _read_by_older_normalizer(state)
        ):
            scan.outcomes[nct_id] = TrialOutcome(
                nct_id=nct_id,
                kind="refreshed" if state.flagged else "unchanged",
                canonical_id=result.nct_id if result.nct_id != nct_id else None,
                previous_hash=state.content_hash,
                fingerprint=fingerprint,
            )
            continue
        scan.todo.append((result, state, fingerprint))
    return scan


def decide_scanned(
    scan: PageScan,
    prepared: Sequence[Prepared | str],
    store: _SnapshotSource,
    router: Router,
    *,
    log: Any = log,
) -> list[TrialOutcome]:
    """The second half: each moved record, prepared (``prepared``: in the order of
    :meth:`PageScan.jobs`), is a new baseline, registry churn, or changes — diffed against the
    stored snapshot (which a newer normalizer first reads again from the stored raw record,
    silently), each routed. Writes nothing. The sync overlaps the two halves across pages."""
    outcomes = dict(scan.outcomes)
    pending: list[tuple[FoundStudy, StoredState | None, str | None, Prepared]] = []
    for (found, state, fingerprint), ready in zip(scan.todo, prepared, strict=True):
        if isinstance(ready, str):  # the record could not be read
            log.warning("trial.failed", nct_id=found.requested_id, reason=ready)
            outcomes[found.requested_id] = TrialOutcome(
                nct_id=found.requested_id,
                kind="failed",
                canonical_id=found.nct_id if found.nct_id != found.requested_id else None,
                previous_hash=state.content_hash if state else None,
                error=ready,
            )
            continue
        pending.append((found, state, fingerprint, ready))

    # Only what this page needs: the stored snapshots of its changed trials, and the raw
    # records of those a newer normalizer must read again.
    old_ids = {
        s.version_id
        for _, s, _, ready in pending
        if s is not None and s.version_id is not None and s.content_hash != ready.digest
    }
    stale = {
        s.version_id
        for _, s, _, _ in pending
        if s is not None and s.version_id is not None and _read_by_older_normalizer(s)
    }
    old_snapshots = store.snapshots(old_ids - stale)
    old_raw = store.raw_records(stale)

    for found, state, fingerprint, ready in pending:
        outcomes[found.requested_id] = _decide_changed(
            found, state, fingerprint, ready, old_snapshots, old_raw, router, log
        )
    return [outcomes[i] for i in scan.order]


def _overall_status(found: FoundStudy) -> str | None:
    try:
        module = found.record.get("protocolSection", {}).get("statusModule", {})
    except RecordError:
        return None
    status = module.get("overallStatus") if isinstance(module, dict) else None
    return status if isinstance(status, str) else None


def _new_version(canonical: bytes, digest: str, raw: bytes) -> NewVersion:
    """A version to store: its canonical snapshot, and the record as served, compressed (a
    page holds ~4 KB per trial, not ~10 KB; see :mod:`rawcodec`)."""
    return NewVersion(digest, canonical.decode("utf-8"), raw, NORMALIZER_VERSION)


def _version_of(ready: Prepared, found: FoundStudy) -> NewVersion:
    raw = ready.raw if ready.raw is not None else rawcodec.compress(found.body)
    return _new_version(ready.canonical, ready.digest, raw)


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
        return TrialOutcome(kind="baseline", version=_version_of(ready, found), **common)

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
            return TrialOutcome(kind="rebaselined", version=_version_of(ready, found), **common)
        previous_canonical = canonical_bytes(previous)
        previous_hash = hash_of(previous_canonical)
        if previous_hash == digest:
            return TrialOutcome(kind="rebaselined", version=_version_of(ready, found), **common)
        if previous_hash != state.content_hash:
            rebaseline = _new_version(previous_canonical, previous_hash, stored_raw)
    elif digest == state.content_hash:
        # The served record moved (registry churn), its snapshot did not: keep the fingerprint.
        return TrialOutcome(
            kind="refreshed",
            previous_hash=state.content_hash,
            nct_id=nct_id,
            canonical_id=common["canonical_id"],
            fingerprint=fingerprint,
        )
    else:
        previous = old_snapshots[state.version_id]

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
        kind="changed",
        version=_version_of(ready, found),
        rebaseline=rebaseline,
        changes=changes,
        routes=routes,
        **common,
    )
