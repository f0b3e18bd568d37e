"""The sync use case: plan, then fetch -> prepare -> decide -> store, one page at a time.

This module orchestrates; it decides nothing itself. The plan of a run and the decision on each
page are pure functions of :mod:`trialwatch.decision`, the preparation of records (perhaps in
worker processes) is :mod:`trialwatch.prepare`'s, and storage acts on the outcomes. It talks to
CT.gov and the database only through the protocols below (:class:`StudySource`,
:class:`SyncStore`), so tests can hand it fakes, and it imports neither httpx nor SQLAlchemy.

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

import contextvars
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

import structlog

from trialwatch.decision import (
    FULL_SWEEP_MAX_AGE,
    MISSING_REASON,
    SHORT_READ_REASON,
    PageScan,
    RunKind,
    RunPlan,
    data_went_back,
    decide_moved,
    from_the_future,
    plan_run,
    scan_page,
    syncs_incrementally,
    versions_needed,
)
from trialwatch.diff import counted
from trialwatch.discovery import decide_query, params_hash
from trialwatch.exceptions import ApiRequestError, FetchError, RecordError, StaleDataError
from trialwatch.failpoints import failpoint
from trialwatch.models import (
    ApiVersion,
    Clock,
    FieldChange,
    FoundStudy,
    OutcomeKind,
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
)
from trialwatch.prepare import Prepared, Preparer, prepare_here

__all__ = [
    "FULL_SWEEP_MAX_AGE",
    "MISSING_REASON",
    "SHORT_READ_REASON",
    "FloodRule",
    "Progress",
    "QuerySpec",
    "StudySource",
    "SyncStore",
    "run_sync",
]

log = structlog.get_logger("trialwatch.sync")

MAX_UPDATES_KEPT = 500  # the result lists at most this many changed trials (counts are exact)
DECIDE_SLICE = 50  # a page's moved records are decided this many at a time (see _Sync.write)


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

    def iter_watched_ids(
        self, chunk: int = ..., *, to_fetch: bool = ...
    ) -> Iterator[list[str]]: ...

    def ids_to_recheck(self, limit: int = ...) -> list[str]: ...

    def ids_that_failed(self, limit: int = ...) -> list[str]: ...

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

    def mark_query_refused(self, name: str, reason: str, *, now: Any) -> None: ...


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
    refused: list[TrialFailure] = field(default_factory=list)
    refused_queries: list[TrialFailure] = field(default_factory=list)  # (query name, why)
    newly_missing: list[str] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    updates: list[TrialUpdate] = field(default_factory=list)
    changed_ids: set[str] = field(default_factory=set)
    pages: int = 0
    surge: bool = False  # a query suddenly matched many more trials: one summary

    def count(self, outcome: TrialOutcome, state: StoredState | None) -> None:
        kind = outcome.kind
        if kind == OutcomeKind.MISSING:
            self.missing.append(outcome.nct_id)
            if state is None or not state.flagged:
                self.newly_missing.append(outcome.nct_id)
            return
        if kind == OutcomeKind.REFUSED:
            self.refused.append(TrialFailure(outcome.nct_id, outcome.error or ""))
            return
        self.checked += 1
        if outcome.canonical_id and outcome.canonical_id != outcome.nct_id:
            self.aliases[outcome.nct_id] = outcome.canonical_id
        if kind == OutcomeKind.FAILED:
            self.failed.append(TrialFailure(outcome.nct_id, outcome.error or ""))
        elif kind == OutcomeKind.BASELINE:
            self.baselined += 1
        elif kind == OutcomeKind.REBASELINED:
            self.rebaselined += 1
        elif kind == OutcomeKind.CHANGED and self.told(outcome.nct_id, outcome.changes):
            if any(outcome.routes):
                self.routed_trials += 1
        else:  # nothing new, or only admin lines (a new "last update posted"): not a change
            self.unchanged += 1
        if outcome.rebaseline is not None:
            self.rebaselined += 1

    def told(self, nct_id: str, changes: Sequence[FieldChange]) -> bool:
        """Count the changes of one trial that count (:func:`trialwatch.diff.counts`); False
        when none does. A trial is one of the changed ones once, however often it is told."""
        kept = counted(changes)
        if not kept:
            return False
        self.change_count += len(kept)
        if nct_id not in self.changed_ids:
            self.changed_ids.add(nct_id)
            self.changed += 1
        if len(self.updates) < MAX_UPDATES_KEPT:
            self.updates.append(TrialUpdate(nct_id, kept))
        return True

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
    than :data:`FULL_SWEEP_MAX_AGE`) fetches them all and catches what that query misses
    (:func:`trialwatch.decision.plan_run` is the rule).
    """
    sync = _Sync(
        source=source,
        store=store,
        clock=clock,
        run_id=new_run_id(),
        force=force,
        route=router or no_routes,
        batch_size=batch_size,
        flood=flood or FloodRule(max_trials=0, max_fraction=0),
        on_progress=on_progress,
        prepare=prepare or prepare_here,
    )
    return sync.run(
        watchlist=watchlist, incremental_above=incremental_above, full=full, queries=queries
    )


class _Prefetch:
    """One page of studies fetched in a thread of its own, from the moment it is made; its
    :meth:`result` (the studies, or the fetch's exception) is waited for in the syncing
    thread. The thread is a daemon: an interrupted sync never waits for a page nobody will
    read (closing the client ends its request). It runs in a copy of the caller's context,
    so its log lines carry the run's bound values."""

    def __init__(self, fetch: Callable[[list[str]], Iterable[StudyResult]], ids: list[str]):
        self._results: list[StudyResult] = []
        self._error: BaseException | None = None
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._fetch, fetch, ids), name="trialwatch-fetch", daemon=True
        )
        self._thread.start()

    def _fetch(self, fetch: Callable[[list[str]], Iterable[StudyResult]], ids: list[str]) -> None:
        try:
            self._results = list(fetch(ids))
        except BaseException as exc:  # noqa: BLE001 - the syncing thread raises it
            self._error = exc

    def result(self) -> list[StudyResult]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._results


class _Sync:
    """One run of :func:`run_sync`: plan, then fetch page by page (each decided, then written),
    then run the queries and finish. Holds what the steps share: the run's row (written with
    its first page that writes anything), its tally and its log."""

    def __init__(
        self,
        *,
        source: StudySource,
        store: SyncStore,
        clock: Clock,
        run_id: str,
        force: bool,
        route: Router,
        batch_size: int,
        flood: FloodRule,
        on_progress: Callable[[Progress], None] | None,
        prepare: Preparer,
    ) -> None:
        self.source = source
        self.store = store
        self.clock = clock
        self.run_id = run_id
        self.force = force
        self.route = route
        self.batch_size = batch_size
        self.flood = flood
        self.on_progress = on_progress
        self.prepare = prepare
        self.started = clock()
        self.requests_before = source.requests_made
        self.log = log.bind(run_id=run_id)
        self.tally = _Tally()
        self.row: Any = None
        self.start: RunStart | None = None
        self.kind = RunKind.FULL
        self.total: int | None = None
        self.first_sync = False  # no complete run before this one
        self.data_timestamp: str | None = None
        self.api_version: str | None = None

    def requests(self) -> int:
        return self.source.requests_made - self.requests_before

    def chunks(self, ids: Sequence[str]) -> list[list[str]]:
        return [list(ids[i : i + self.batch_size]) for i in range(0, len(ids), self.batch_size)]

    def run(
        self,
        *,
        watchlist: Sequence[WatchItem] | None,
        incremental_above: int,
        full: bool,
        queries: Sequence[QuerySpec],
    ) -> SyncResult:
        store = self.store
        if watchlist is not None:
            store.sync_config_watchlist(watchlist, now=self.started)

        # A run whose process died mid-way is closed first, releasing what its committed pages
        # owe, even if CT.gov cannot be reached now (the caller holds the sync lock: nobody else
        # runs).
        store.recover_interrupted(now=self.started)
        last = store.last_complete_run()
        self.first_sync = last is None
        try:
            version = self.source.version()
            if (
                last is not None
                and data_went_back(version.data_timestamp, last.data_timestamp)
                and not self.wrong_last_timestamp(last.data_timestamp)
            ):
                raise StaleDataError(
                    f"ClinicalTrials.gov answered with data as of {version.data_timestamp}, "
                    f"older than the last complete sync's ({last.data_timestamp}): a server "
                    "that has not caught up yet. Nothing was compared; the next sync tries again"
                )
        except FetchError as exc:
            self.log.error("sync.failed", error=str(exc), requests=self.requests())
            start = RunStart(self.run_id, self.started, self.force, RunKind.FULL, None, None)
            totals = RunTotals(
                finished_at=self.clock(),
                complete=False,
                requests=self.requests(),
                errors=(str(exc),),
            )
            store.record_failed_run(start, totals)
            raise
        self.data_timestamp = version.data_timestamp
        self.api_version = version.api_version

        chunks = self.plan(version, last, incremental_above, full)
        if chunks is None:
            return self.idle()

        # The run's row is written with its first page that writes anything (or at its end): a
        # sync cancelled while the first answer is still on its way leaves nothing behind.
        self.start = RunStart(
            self.run_id,
            self.started,
            self.force,
            self.kind,
            version.api_version,
            version.data_timestamp,
        )
        try:
            self.fetch(chunks)
            if queries and self.kind != RunKind.RECHECK:
                # Once per CT.gov refresh: an idle poll or a recheck skips them with the rest.
                tracked = self.run_queries(queries)
                if tracked:  # newly tracked trials are fetched now, as silent baselines
                    self.fetch(self.chunks(tracked))
        except BaseException as exc:
            self.fail(exc)
            raise
        return self.finish()

    def wrong_last_timestamp(self, last: str | None) -> bool:
        """Whether the last complete sync's ``dataTimestamp`` is dated well after now (see
        :func:`~trialwatch.decision.from_the_future`): a wrong answer that sync took. Measured
        against it, every later answer would look like a replica behind, and be refused,
        until the clock caught up; so it is not held against the data now served, which is
        compared as usual."""
        if not from_the_future(last, self.started):
            return False
        self.log.warning("sync.last_data_timestamp_in_the_future", last_data_timestamp=last)
        return True

    def plan(
        self, version: ApiVersion, last: LastRun | None, incremental_above: int, full: bool
    ) -> Iterable[list[str]] | None:
        """Decide what this run fetches (:func:`plan_run`) and return its pages of ids, or
        ``None`` when there is nothing to fetch at all (an idle poll). ``last`` is the last
        complete run (None: there is none)."""
        store = self.store
        # Without a dataTimestamp (the spec makes it optional) nothing says the data is
        # unchanged: a normal full sync.
        same_data = (
            last is not None
            and version.data_timestamp is not None
            and last.data_timestamp == version.data_timestamp
        )
        watched = 0 if same_data and not self.force else store.watched_count()
        # Facts are read only where the rule may need them: the last full sweep only for a
        # watch set that may sync incrementally.
        last_full_at = None
        maybe_incremental = not same_data or self.force
        if maybe_incremental and not full and syncs_incrementally(watched, incremental_above):
            last_full = store.last_complete_run(kind=RunKind.FULL)
            last_full_at = last_full.finished_at if last_full is not None else None
        the_plan: RunPlan = plan_run(
            same_data=same_data,
            force=self.force,
            watched=watched,
            incremental_above=incremental_above,
            full=full,
            last_full_at=last_full_at,
            last_data_timestamp=last.data_timestamp if last is not None else None,
            now=self.clock(),
        )
        self.kind = the_plan.kind
        if the_plan.kind == RunKind.RECHECK:
            pending = store.ids_to_recheck()
            if not pending:
                return None
            self.total = len(pending)
            return self.chunks(pending)
        if the_plan.kind == RunKind.INCREMENTAL and the_plan.since is not None:
            updated = self.source.updated_since(the_plan.since)
            # Besides what CT.gov updated: what must be fetched again (newly watched, left out
            # of an answer) and what failed last time (a record that could not be read, a trial
            # not returned): CT.gov may have fixed it without moving its LastUpdatePostDate.
            wanted = sorted(
                set(store.watched_among(updated))
                | set(store.ids_to_recheck())
                | set(store.ids_that_failed())
            )
            self.log.info(
                "sync.incremental",
                since=the_plan.since.isoformat(),
                updated=len(updated),
                watched_updated=len(wanted),
            )
            self.total = len(wanted)
            return self.chunks(wanted)
        self.total = watched
        return store.iter_watched_ids(self.batch_size, to_fetch=True)

    def idle(self) -> SyncResult:
        """CT.gov's data is the stored data and no trial needs fetching. After failed runs that
        is news (health recovered): record a complete run, still without fetching anything."""
        store = self.store
        recovered = store.consecutive_failures() > 0
        if recovered:
            version_start = RunStart(
                self.run_id,
                self.started,
                self.force,
                RunKind.RECHECK,
                self.api_version,
                self.data_timestamp,
            )
            recovery = store.begin_run(version_start)
            store.finish_run(
                recovery,
                RunTotals(finished_at=self.clock(), complete=True, requests=self.requests()),
            )
        finished = self.clock()
        self.log.info(
            "sync.idle",
            data_timestamp=self.data_timestamp,
            requests=self.requests(),
            recovered=recovered,
            duration_s=round((finished - self.started).total_seconds(), 3),
        )
        return SyncResult(
            run_id=self.run_id,
            started_at=self.started,
            finished_at=finished,
            skipped=True,
            data_timestamp=self.data_timestamp,
            requests=self.requests(),
            wrote=recovered,
        )

    def the_run(self) -> Any:
        """The run's row, written now if it is not yet."""
        if self.row is None:
            assert self.start is not None
            self.row = self.store.begin_run(self.start)
        return self.row

    def write(
        self,
        states: Mapping[str, StoredState],
        scan: PageScan,
        answers: Callable[[], list[Prepared | str]],
    ) -> None:
        """Decide a fetched page (its prepared records against the stored versions they need)
        and write what it decided in one transaction.

        The moved records are decided :data:`DECIDE_SLICE` at a time, each slice against the
        stored versions read for it alone, and each record is let go once decided: what the page
        holds at once is its outcomes, not its served bytes, canonical snapshots and stored
        snapshots together."""
        moved = scan.take(answers())
        decided = dict(scan.outcomes)
        while moved:
            part = moved[:DECIDE_SLICE]
            del moved[:DECIDE_SLICE]
            snapshot_ids, raw_ids = versions_needed(part)
            for outcome in decide_moved(
                part,
                self.store.snapshots(snapshot_ids),
                self.store.raw_records(raw_ids),
                self.route,
                log=self.log,
            ):
                decided[outcome.nct_id] = outcome
            del part
        outcomes = [decided.pop(nct_id) for nct_id in scan.order]
        tally = self.tally
        for outcome in outcomes:
            tally.count(outcome, states.get(outcome.nct_id))
        if any(o.kind != OutcomeKind.UNCHANGED for o in outcomes):
            self.store.write_page(
                self.the_run(),
                tally.pages,
                outcomes,
                now=self.clock(),
                data_timestamp=self.data_timestamp,
            )
        tally.pages += 1
        failpoint("sync.page_committed")
        if self.on_progress is not None:
            self.on_progress(Progress(tally.pages, tally.checked + len(tally.missing), self.total))

    def fetch(self, chunks: Iterable[list[str]]) -> None:
        # Pipelined by one page: page k+1 is fetched and its records handed to the preparer
        # before page k is decided and written, so that workers prepare while this process
        # writes; and page k+1 is fetched in a thread while page k's state is read and page
        # k-1 written, so that waiting for CT.gov's answer (a second or two a page on the real
        # server) overlaps this process's work. Pages hold disjoint trials, so reading k+1's
        # state before k is written is safe; what was fetched before a failure to fetch is
        # still decided and written.
        held: tuple[Mapping[str, StoredState], PageScan, Callable[[], Any]] | None = None
        # A run of one page (a day's incremental sync, a recheck) is prepared here: a worker
        # process takes longer to start (~0.5 s, a new interpreter importing) than such a page
        # takes to prepare, and would then have to be waited for to stop.
        one_page = self.total is not None and self.total <= self.batch_size
        prepare = prepare_here if one_page else self.prepare
        # A first sync of several pages prepares every record: workers are started before its
        # first page arrives. (Other runs start them when a page brings enough moved records.)
        warm_up = getattr(prepare, "warm_up", None)
        if warm_up is not None and self.first_sync:
            warm_up()
        pages = iter(chunks)
        ids = next(pages, None)
        ahead = None if ids is None else _Prefetch(self.source.iter_studies, ids)
        try:
            while ahead is not None and ids is not None:
                results = ahead.result()
                following = next(pages, None)
                ahead = (
                    None if following is None else _Prefetch(self.source.iter_studies, following)
                )
                failpoint("sync.fetched")
                states = self.store.page_state(ids)
                scan = scan_page(
                    results, states, recheck_run=self.kind == RunKind.RECHECK, log=self.log
                )
                # The scan keeps the records whose fingerprint moved; the unchanged ones' bytes
                # go now, not when the next page has arrived.
                del results
                answers = prepare(scan.jobs())
                if held is not None:
                    self.write(*held)
                held = (states, scan, answers)
                ids = following
        except FetchError:
            if held is not None:
                self.write(*held)
            raise
        if held is not None:
            self.write(*held)

    def run_queries(self, queries: Sequence[QuerySpec]) -> list[str]:
        """Run each query, record its answer and what entered or left it; returns the ids that
        ``track = true`` queries started watching."""
        source, tally = self.source, self.tally
        tracked: list[str] = []
        for index, query in enumerate(queries):
            digest = params_hash(query.params)
            previous = self.store.query_baseline(query.name, digest)
            try:
                matches = source.search(query.params)
            except ApiRequestError as exc:
                if exc.status_code != 400:
                    raise
                # CT.gov will not run this search (e.g. an Essie expression it cannot parse):
                # named, and the run completes for the watched trials; the next refresh asks
                # again (an edited query may be fine).
                reason = str(exc)
                self.log.warning("query.refused", query=query.name, reason=reason)
                self.store.mark_query_refused(query.name, reason, now=self.clock())
                tally.refused_queries.append(TrialFailure(query.name, reason))
                continue
            current = {m.nct_id for m in matches}
            left = sorted(
                n for n, present in (previous or {}).items() if present and n not in current
            )
            left_status: dict[str, str | None] = {}
            merged: dict[str, str] = {}
            if left:  # their current status often says why they left, or that they merged
                for result in source.iter_studies(left):
                    if isinstance(result, FoundStudy):
                        left_status[result.requested_id] = _overall_status(result)
                        if result.nct_id != result.requested_id:
                            merged[result.requested_id] = result.nct_id
            outcome = decide_query(query.name, previous, matches, left_status, merged)
            changes = [
                (nct_id, change, tuple(self.route(nct_id, None, change)))
                for nct_id, change in outcome.changes
            ]
            started = self.store.write_query(
                self.the_run(),
                -(index + 1),
                name=query.name,
                params_hash=digest,
                matches=matches,
                changes=changes,
                track=query.track,
                now=self.clock(),
                data_timestamp=self.data_timestamp,
            )
            tracked += [i for i in started if i not in tracked]
            tally.routed_trials += sum(1 for _, _, routes in changes if routes)
            tally.surge = tally.surge or outcome.surge
            by_trial: dict[str, list[FieldChange]] = {}
            for nct_id, change, _ in changes:
                by_trial.setdefault(nct_id, []).append(change)
            for nct_id, trial_changes in by_trial.items():
                tally.told(nct_id, trial_changes)
            self.log.info(
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

    def fail(self, exc: BaseException) -> None:
        """What the pages written so far owe is released; the run does not count as complete."""
        error = str(exc) or type(exc).__name__
        if isinstance(exc, FetchError):
            self.log.error("sync.failed", error=error, requests=self.requests())
        failed = self.tally.totals(
            finished_at=self.clock(), complete=False, requests=self.requests(), errors=(error,)
        )
        try:
            if self.row is not None:
                self.store.finish_run(self.row, failed)
            elif isinstance(exc, FetchError):  # health counts failed fetches
                assert self.start is not None
                self.store.record_failed_run(self.start, failed)
        except Exception as finish_error:  # noqa: BLE001 - the first error is the one to raise
            self.log.error("sync.finish_failed", error=str(finish_error))

    def finish(self) -> SyncResult:
        failpoint("sync.before_finish")
        tally, kind = self.tally, self.kind
        total = self.total
        watched = (
            total if kind == RunKind.FULL and total is not None else self.store.watched_count()
        )
        summary_only = tally.surge or self.flood.floods(tally.routed_trials, watched)
        finished = self.clock()
        self.store.finish_run(
            self.the_run(),
            tally.totals(
                finished_at=finished,
                complete=True,
                requests=self.requests(),
                summary_only=summary_only,
            ),
        )
        result = SyncResult(
            run_id=self.run_id,
            started_at=self.started,
            finished_at=finished,
            skipped=False,
            data_timestamp=self.data_timestamp,
            checked=tally.checked,
            changed=tally.changed,
            baselined=tally.baselined,
            rebaselined=tally.rebaselined,
            unchanged=tally.unchanged,
            change_count=tally.change_count,
            requests=self.requests(),
            failed=tuple(tally.failed),
            missing=tuple(tally.missing),
            refused=tuple(tally.refused),
            refused_queries=tuple(tally.refused_queries),
            newly_missing=tuple(tally.newly_missing),
            aliases=dict(tally.aliases),
            updates=tuple(tally.updates),
            wrote=True,
            kind=kind,
            flooded=summary_only,
            flooded_trials=tally.routed_trials if summary_only else 0,
        )
        self.log.info(
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
            duration_s=round((finished - self.started).total_seconds(), 3),
        )
        return result


def _overall_status(found: FoundStudy) -> str | None:
    try:
        module = found.record.get("protocolSection", {}).get("statusModule", {})
    except RecordError:
        return None
    status = module.get("overallStatus") if isinstance(module, dict) else None
    return status if isinstance(status, str) else None
