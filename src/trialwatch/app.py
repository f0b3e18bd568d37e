"""The one place that wires trialwatch together from Settings, and the door the CLI goes through.

Tests wire the same pieces with fakes; the CLI and the daemon call :func:`build_app` and then
one method of :class:`App` per command: a use case (a sync, a report, an import) or a lookup.
The CLI never reaches the store itself. Decisions are the pure core's; the methods here read,
call it, and write what it decided.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import TYPE_CHECKING

import structlog

from trialwatch.config import Settings
from trialwatch.exceptions import (
    ConcurrentUpdateError,
    NothingToWatchError,
    SchemaOutdatedError,
    UserError,
)
from trialwatch.health import (
    Health,
    render_alert,
    render_flood_alert,
    render_refused_alert,
    render_refused_query_alert,
)
from trialwatch.models import Clock, Severity, Snapshot, StatusGlance, SyncResult, WatchItem
from trialwatch.redact import Scrubber
from trialwatch.routing import SubscriptionRouter, resolve_webhook, webhook_scrubber
from trialwatch.statusview import configured_refusals, health_of, utc_now
from trialwatch.storage import Store

if TYPE_CHECKING:
    # The network, mail and rendering edges are imported where they are used: `status` and
    # `watch list` need none of them, and a command people type should start fast.
    from collections.abc import Iterable, Sequence

    from trialwatch.backfill import BackfillProgress, BackfillResult
    from trialwatch.ctgov import CtGovClient
    from trialwatch.diff import ChangeFilter
    from trialwatch.discovery import Drift
    from trialwatch.export import TrialState
    from trialwatch.importtext import ImportResult
    from trialwatch.notify import SmtpTransport
    from trialwatch.outbox import FlushResult, Outbox
    from trialwatch.overview import OverviewQuery, WatchPage
    from trialwatch.period import PeriodReport
    from trialwatch.records import Period, RecordedChange, TrialHistory
    from trialwatch.storage import Notification, PrintedEntry, Trial, WatchChange, WatchEntry
    from trialwatch.storage.migrate import UpgradeResult
    from trialwatch.sync import FloodRule, Progress, QuerySpec

QUIET_LISTED_MAX = 100
"""A report lists the watched trials without changes while there are at most this many."""

PICTURE_MAX_TRIALS = 1000
"""An HTML report or a timeline draws at most this many trials (each is an SVG)."""


@dataclass
class App:
    settings: Settings
    store: Store
    clock: Clock = utc_now
    router: SubscriptionRouter = field(init=False)

    def __post_init__(self) -> None:
        self.router = SubscriptionRouter(self.settings.email, self.settings.subscriptions)

    @property
    def watchlist(self) -> tuple[WatchItem, ...]:
        # A label is optional: without one the registry's acronym or title is shown.
        return tuple(
            WatchItem(w.nct_id, w.label, w.table, w.reference) for w in self.settings.watchlist
        )

    def client(self, *, sleep: Callable[[float], None] | None = None) -> CtGovClient:
        """The CT.gov client; ``sleep`` lets the daemon cut pacing and backoff waits short."""
        from trialwatch.ctgov import CtGovClient

        api = self.settings.api
        return CtGovClient(
            base_url=api.base_url,
            timeout_s=api.timeout_s,
            min_interval_s=api.min_interval_s,
            max_attempts=api.max_attempts,
            backoff_initial_s=api.backoff_initial_s,
            backoff_max_s=api.backoff_max_s,
            max_retry_after_s=api.max_retry_after_s,
            batch_size=api.batch_size,
            throttle_budget_s=api.throttle_budget_s,
            user_agent=api.user_agent,
            sleep=time.sleep if sleep is None else sleep,
        )

    def worker_count(self) -> int:
        """The worker processes a large sync starts: ``[sync] workers``, ``"auto"`` resolved
        here, where the app is wired (see :func:`trialwatch.workers.default_workers`)."""
        workers = self.settings.sync.workers
        if workers == "auto":
            from trialwatch.workers import default_workers

            return default_workers()
        return workers

    def sync(
        self,
        *,
        force: bool = False,
        wait_s: float = 0.0,
        client: CtGovClient | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        full: bool = False,
    ) -> SyncResult:
        """One sync under the database's sync lock. Delivering what it queued is the caller's
        next step (:meth:`flush`): the CLI reports its outcome, the daemon schedules it.

        Raises LockHeldError when another process keeps syncing for longer than ``wait_s``.
        """
        from trialwatch.allocator import one_heap
        from trialwatch.workers import PreparePool

        # Before the sync's threads start: a page allocated in one and freed in another
        # would otherwise leave free memory in each thread's own heap (see allocator).
        one_heap()
        run_id = uuid.uuid4().hex
        # Every log line of this sync (client retries and deliveries included) carries run_id.
        lock = self.store.lock("sync")
        with (
            structlog.contextvars.bound_contextvars(run_id=run_id),
            lock.hold(wait_s, what="another trialwatch process"),
        ):
            own = client is None
            client = client or self.client()
            try:
                with PreparePool(self.worker_count()) as prepare:
                    from trialwatch.sync import run_sync

                    result = run_sync(
                        source=client,
                        store=self.store,
                        watchlist=self.watchlist,
                        clock=self.clock,
                        force=force,
                        router=self.router,
                        new_run_id=lambda: run_id,
                        batch_size=self.settings.api.batch_size,
                        flood=self.flood_rule,
                        on_progress=on_progress,
                        incremental_above=self.settings.sync.incremental_above,
                        full=full,
                        queries=self.queries,
                        prepare=prepare,
                    )
            finally:
                if own:
                    client.close()
        if result.flooded:
            self._tell_admin_about_flood(result)
        if not result.skipped:
            self._tell_admin_about_refused()
            self._tell_admin_about_refused_queries(result)
        return result

    def refused_queries(self) -> dict[str, str]:
        """The configured queries CT.gov refused at the last sync that ran them: name -> why."""
        with self.store.glance() as glance:
            return configured_refusals(glance.refused_queries(), self.settings)

    def _tell_admin_about_refused_queries(self, result: SyncResult) -> None:
        """One notice per refused query and search (an edited search that is refused again is
        news; the same one refused at every refresh is not)."""
        admin = self.settings.health.admin_email
        if admin is None or not result.refused_queries:
            return
        searches = {q.name: sorted(q.params.items()) for q in self.queries}
        for refused in result.refused_queries:
            search = json.dumps([refused.nct_id, searches.get(refused.nct_id)])
            self.store.queue_notice(
                key=f"refused-query-{hashlib.sha256(search.encode()).hexdigest()[:32]}",
                kind="alert",
                recipient=admin,
                payload=render_refused_query_alert(refused.nct_id, refused.reason),
                now=self.clock(),
            )

    def _tell_admin_about_refused(self) -> None:
        """One notice per id CT.gov refuses (met by a sync, or marked by the upgrade), once."""
        admin = self.settings.health.admin_email
        if admin is None:
            return
        for nct_id, reason in self.store.refused_trials():
            self.store.queue_notice(
                key=f"refused-{nct_id}",
                kind="alert",
                recipient=admin,
                payload=render_refused_alert(nct_id, reason),
                now=self.clock(),
            )

    def _tell_admin_about_flood(self, result: SyncResult) -> None:
        admin = self.settings.health.admin_email
        if admin is None:
            return
        outbox = self.settings.outbox
        payload = render_flood_alert(
            finished_at=result.finished_at,
            data_timestamp=result.data_timestamp,
            flooded_trials=result.flooded_trials,
            max_trials=outbox.flood_max_trials,
            max_fraction=outbox.flood_max_fraction,
        )
        self.store.queue_notice(
            key=f"flood-{result.run_id[:24]}",
            kind="alert",
            recipient=admin,
            payload=payload,
            now=self.clock(),
        )

    @property
    def queries(self) -> tuple[QuerySpec, ...]:
        from trialwatch.sync import QuerySpec

        return tuple(QuerySpec(q.name, q.ctgov_params(), q.track) for q in self.settings.queries)

    @property
    def flood_rule(self) -> FloodRule:
        from trialwatch.sync import FloodRule

        outbox = self.settings.outbox
        return FloodRule(max_trials=outbox.flood_max_trials, max_fraction=outbox.flood_max_fraction)

    # -- delivery -------------------------------------------------------------------------

    def smtp(self) -> SmtpTransport:
        from trialwatch.notify import SmtpSettings, SmtpTransport

        email = self.settings.email
        return SmtpTransport(
            SmtpSettings(
                host=email.smtp_host,
                port=email.smtp_port,
                security=email.security,
                username=email.username,
                password=email.resolved_password(),
                timeout_s=email.timeout_s,
            )
        )

    def outbox(self) -> Outbox:
        from trialwatch.notify import WebhookTransport
        from trialwatch.outbox import Outbox

        email = self.settings.email
        return Outbox(
            self.store,
            clock=self.clock,
            email=email,
            settings=self.settings.outbox,
            email_sender=self.smtp if email.enabled else None,
            webhook_sender=lambda url: WebhookTransport(url, timeout_s=email.timeout_s),
            resolve_webhook=lambda ref: resolve_webhook(ref, self.settings.subscriptions),
            scrub=self.scrub,
            public_url=self.settings.web.public_url,
        )

    @property
    def scrub(self) -> Scrubber:
        """Hides the configured webhooks' secrets in a text (see :mod:`trialwatch.redact`)."""
        return webhook_scrubber(self.settings.subscriptions)

    def flush(
        self, *, ignore_backoff: bool = False, should_stop: Callable[[], bool] = lambda: False
    ) -> FlushResult:
        """Deliver every notification that is due (failures stay queued, never raise)."""
        return self.outbox().flush(ignore_backoff=ignore_backoff, should_stop=should_stop)

    def fold_digests(self, mode: str) -> int:
        """Turn waiting ``daily``/``weekly`` notifications into one digest per recipient."""
        try:
            return self.store.fold_digests(mode, now=self.clock())
        except ConcurrentUpdateError:
            return 0  # another process folded them: its digests will be delivered

    def send_test_message(self) -> list[str]:
        """Send a test email now (not through the outbox); raises DeliveryError saying why."""
        from trialwatch.messages import build_message, make_message_id, render_test_message
        from trialwatch.outbox import sender_domain

        email = self.settings.email
        recipients = list(email.to) or [a for sub in self.settings.subscriptions for a in sub.to]
        if not recipients:
            raise UserError("no recipients: set [email] to (or TRIALWATCH_EMAIL__TO)")
        now = self.clock()
        message = build_message(
            render_test_message(generated_at=now),
            sender=email.sender,
            recipients=recipients,
            message_id=make_message_id(f"test-{now:%Y%m%dT%H%M%S%f}", sender_domain(email)),
            date=now,
        )
        self.smtp().send(message)
        return recipients

    # -- health ---------------------------------------------------------------------------

    def health(self) -> Health:
        with self.store.glance() as glance:  # the same reads as ``status``'s light road
            return health_of(glance.health_facts(), self.settings, self.clock())

    def check_alerts(self) -> str | None:
        """Queue one admin alert when health turns bad and one notice when it heals."""
        health = self.health()
        return self.store.transition_alert(
            unhealthy=not health.healthy,
            now=self.clock(),
            recipient=self.settings.health.admin_email,
            render=lambda unhealthy, episode: render_alert(health, unhealthy, episode),
        )

    def trial_states(self) -> Iterator[TrialState]:
        """Watched trials by id, each with its current snapshot (loaded lazily)."""
        from trialwatch.export import TrialState

        last = self.store.last_complete_run()
        checked_at = last.finished_at if last else None
        # A page of the watch set at a time: three queries per 500 trials, memory flat in N.
        for ids in self.store.iter_watched_ids(500):
            rows = self.store.trial_rows(ids)
            snapshots = self.store.current_snapshots(ids)
            for entry in self.store.watch_entries(ids):
                row = rows.get(entry.nct_id)
                snapshot = snapshots.get(entry.nct_id)
                problem = None
                if row is not None and row.last_error:
                    problem = row.last_error
                    if row.consecutive_misses > 1:
                        problem += f" ({row.consecutive_misses} syncs in a row)"
                elif snapshot is None:
                    problem = "not synced yet"
                yield TrialState(
                    nct_id=entry.nct_id,
                    label=entry.display_label,
                    table=entry.table,
                    snapshot=snapshot,
                    last_synced_at=checked_at if snapshot is not None else None,
                    last_changed_at=row.last_changed_at if row else None,
                    last_change_summary=row.last_change_summary if row else None,
                    problem=problem,
                )

    def status_glance(self, *, list_up_to: int, show: int = 10) -> StatusGlance:
        """``status``'s view of the watch set: every trial up to ``list_up_to`` of them, else
        counts by status, the ``show`` latest changes and trials with problems."""
        with self.store.glance() as glance:
            return glance.status_glance(list_up_to=list_up_to, show=show)

    def since_print(self, *, unreported_only: bool = False) -> list[Drift]:
        """How the registry moved since a paper printed its table (``watch import``)."""
        from trialwatch.discovery import Printed, since_print

        entries = self.store.printed_entries(unreported_only=unreported_only)
        current = self.store.current_snapshots([e.nct_id for e in entries])
        snapshots: dict[str, Snapshot | None] = {e.nct_id: current.get(e.nct_id) for e in entries}
        printed = [Printed(e.nct_id, e.status, e.status_text, e.title) for e in entries]
        return since_print(printed, snapshots)

    # --- lookups -------------------------------------------------------------------------

    def data_timestamp(self) -> str | None:
        """CT.gov's dataTimestamp of the last complete sync: what the current state reflects."""
        last = self.store.last_complete_run()
        return last.data_timestamp if last else None

    def resolve_trial(self, key: str) -> list[str]:
        """The NCT ids an id or a label names (none, one, or several)."""
        return self.store.resolve_trial(key)

    def trial_titles(self, ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        """nct_id -> (label, brief title) for these trials."""
        return self.store.trial_titles(ids)

    def trial(self, nct_id: str) -> Trial | None:
        return self.store.trial(nct_id)

    def last_write(self) -> tuple[datetime | None, int]:
        """When the database was last written and how many trials it watches (a page's ETag)."""
        return self.store.last_write()

    def trial_history(self, nct_id: str) -> TrialHistory | None:
        return self.store.trial_history(nct_id)

    def histories(self, ids: Sequence[str]) -> list[TrialHistory]:
        return list(self.store.histories(ids))

    def iter_changes(
        self, *, since: datetime | None, shown: ChangeFilter | None = None
    ) -> Iterator[tuple[RecordedChange, str | None]]:
        """Every recorded change of the watched trials (since a moment) that ``shown`` admits
        (None: every change; admin lines never), with its label."""
        from trialwatch.diff import EVERY_CHANGE

        shown = shown or EVERY_CHANGE
        return (
            (event, label)
            for event, label in self.store.iter_changes(since=since)
            if shown.admits(event.change)
        )

    def watched_count(self) -> int:
        return self.store.watched_count()

    def watched_among(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are watched now."""
        return {entry.nct_id for entry in self.store.watch_entries(ids)}

    def watch_entries(self) -> list[WatchEntry]:
        return self.store.watch_entries()

    def dead_letters(self) -> list[Notification]:
        return list(self.store.notifications("dead"))

    def printed_entries(self) -> list[PrintedEntry]:
        return self.store.printed_entries()

    # --- the watch set ---------------------------------------------------------------------

    def add_watches(self, ids: Sequence[str], *, label: str | None = None) -> WatchChange:
        """``watch add``: watch ``ids`` from the command line (a label for one id)."""
        labels = {ids[0]: label} if label else None
        return self.store.add_watches(ids, source="cli", now=self.clock(), labels=labels)

    def remove_watches(self, ids: Sequence[str]) -> WatchChange:
        return self.store.remove_watches(ids)

    def import_watches(
        self, found: ImportResult, *, origin: str, printed_on: date | None = None
    ) -> tuple[WatchChange, int]:
        """``watch import``: watch the trials a text names and keep what it printed beside
        them (and the paper's publication day, when given), in one transaction. Returns the
        change and how many printed entries were kept."""
        return self.store.import_watches(
            found.nct_ids,
            found.printed(),
            origin=origin,
            now=self.clock(),
            printed_on=printed_on.isoformat() if printed_on else None,
        )

    def mark_since_print_reported(self, drifts: Iterable[Drift]) -> None:
        """Said once: the drifts of trials the registry has answered for are not said again.
        A trial not fetched yet is said again once the registry has answered for it."""

        def answered(nct_id: str) -> bool:
            row = self.store.trial(nct_id)
            return row is not None and (
                row.current_version_id is not None or row.consecutive_misses > 0
            )

        reported = [d.nct_id for d in drifts if not d.unknown or answered(d.nct_id)]
        self.store.mark_printed_reported(reported, now=self.clock())

    def requeue_dead(self, ids: Sequence[int] = ()) -> int:
        """``notify retry``: dead letters (all, or ``ids``) queued again; returns how many."""
        return self.store.requeue_dead(self.clock(), ids)

    # --- reports ---------------------------------------------------------------------------

    def report_histories(self, period: Period, *, picture: bool) -> Iterator[TrialHistory]:
        """What a report of ``period`` reads: the watched trials with changes in it, then the
        others while there are at most :data:`QUIET_LISTED_MAX` (the report counts the rest).
        A ``picture`` (HTML) needs each trial's whole history; words need only the period's
        changes and the ends of each record.

        Given as they are read, a batch at a time (see :func:`trialwatch.period.period_report`).
        Raises :class:`UserError` when a picture would draw more than
        :data:`PICTURE_MAX_TRIALS` (at once, before any is read).
        """
        store = self.store
        changed = store.changed_trial_ids(period)
        quiet_count = store.watched_count() - len(changed)
        listed = quiet_count <= QUIET_LISTED_MAX
        if picture and len(changed) + (quiet_count if listed else 0) > PICTURE_MAX_TRIALS:
            raise UserError(
                f"{len(changed)} trials changed in the period ({period.label}); an HTML report "
                f"draws at most {PICTURE_MAX_TRIALS}: choose a shorter period, or --format "
                "text, markdown or json"
            )
        changes_in = None if picture else period
        histories = store.histories(changed, changes_in=changes_in, all_versions=picture)
        if not listed:
            return histories
        seen = set(changed)
        quiet = [i for ids in store.iter_watched_ids() for i in ids if i not in seen]
        return itertools.chain(
            histories, store.histories(quiet, changes_in=changes_in, all_versions=picture)
        )

    def period_report(
        self, period: Period, *, picture: bool, shown: ChangeFilter | None = None
    ) -> PeriodReport:
        """``trialwatch report``: the changes of the watch set in ``period`` that ``shown``
        admits (None: every change; see :meth:`report_histories`), stamped now with CT.gov's
        data timestamp."""
        from trialwatch.diff import EVERY_CHANGE
        from trialwatch.period import period_report

        shown = shown or EVERY_CHANGE

        return period_report(
            self.report_histories(period, picture=picture),
            period,
            generated_at=self.clock(),
            data_timestamp=self.data_timestamp(),
            watched=self.store.watched_count(),
            shown=shown,
            keep_records=picture,
        )

    def timeline_ids(self) -> list[str]:
        """Every watched trial, by id: what ``timeline`` draws when no trial is named. Raises
        :class:`UserError` beyond :data:`PICTURE_MAX_TRIALS`, saying what to do instead."""
        count = self.store.watched_count()
        if count > PICTURE_MAX_TRIALS:
            raise UserError(
                f"the watch set has {count} trials; a timeline draws at most "
                f"{PICTURE_MAX_TRIALS}: name the trials to draw (trialwatch timeline SEAL "
                "NCT…), or see those that changed with trialwatch report --since DATE"
            )
        return [i for chunk in self.store.iter_watched_ids() for i in chunk]

    # --- what the web page reads (read-only: none of these writes) ------------------------

    def watch_overview(self, query: OverviewQuery, *, today: date) -> WatchPage:
        """One page of the watch-set table: every watched trial's row (two column-only
        queries), filtered, sorted and cut by :mod:`trialwatch.overview`; only the page's
        trials have their dates read (for their next expected date)."""
        from trialwatch.overview import WatchRow, select_page, with_next_dates

        moved = {d.nct_id for d in self.since_print() if d.status_moved}
        rows = [
            WatchRow(
                nct_id=row.nct_id,
                label=row.display_label,
                title=row.brief_title,
                status=row.overall_status,
                sources=row.sources,
                last_changed_at=row.last_changed_at,
                last_change=row.last_change_summary,
                severity=None if row.last_severity is None else Severity(row.last_severity),
                moved_since_print=row.nct_id in moved,
                problem=row.last_error,
            )
            for row in self.store.watched_rows()
        ]
        page = select_page(rows, query)
        dates = self.store.current_dates([r.nct_id for r in page.rows])
        return replace(page, rows=with_next_dates(page.rows, dates, today))

    def changed_histories(self, period: Period) -> tuple[Iterator[TrialHistory], int]:
        """The watched trials with changes in ``period`` (only those changes and the ends of
        each record read), given as they are read, and the size of the watch set: what a
        period report in words needs."""
        changed = self.store.changed_trial_ids(period)
        histories = self.store.histories(changed, changes_in=period, all_versions=False)
        return histories, self.store.watched_count()

    def watched_histories(self, *, page: int, page_size: int) -> tuple[list[TrialHistory], int]:
        """Whole histories of one page of the watch set (by id), and how many trials it has."""
        wanted = range((page - 1) * page_size, page * page_size)
        ids = [i for chunk in self.store.iter_watched_ids() for i in chunk]
        chosen = [ids[i] for i in wanted if i < len(ids)]
        return list(self.store.histories(chosen)), len(ids)

    def recent_changes(self, limit: int) -> tuple[list[RecordedChange], dict[str, str | None]]:
        """The newest ``limit`` change events of the watched trials, and their trials' names."""
        from collections import deque

        labels: dict[str, str | None] = {}
        newest: deque[RecordedChange] = deque(maxlen=limit)
        for event, label in self.store.iter_changes():
            labels[event.nct_id] = label
            newest.append(event)
        return list(newest), labels

    def backfill(
        self,
        keys: Sequence[str] = (),
        *,
        status_only: bool = False,
        wait_s: float = 60.0,
        on_progress: Callable[[BackfillProgress], None] | None = None,
        client: CtGovClient | None = None,
    ) -> BackfillResult:
        """Read the registry's record history of the trials ``keys`` names (ids or labels;
        none: every watched trial not read yet) under the sync lock, so no sync writes the same
        trials meanwhile. Raises UserError naming a key that names no trial, or several."""
        from trialwatch.backfill import run_backfill
        from trialwatch.registry_history import RegistryHistory

        if keys:
            ids = list(dict.fromkeys(self._resolve(k) for k in keys))
        else:
            ids = self.store.backfill_candidates(full=not status_only)
        run_id = uuid.uuid4().hex
        lock = self.store.lock("sync")
        with (
            structlog.contextvars.bound_contextvars(run_id=run_id),
            lock.hold(wait_s, what="another trialwatch process"),
        ):
            own = client is None
            client = client or self.client()
            try:
                source = RegistryHistory(client, self.settings.api.registry_history_url)
                return run_backfill(
                    source=source,
                    store=self.store,
                    ids=ids,
                    clock=self.clock,
                    run_id=run_id,
                    status_only=status_only,
                    on_progress=on_progress,
                )
            finally:
                if own:
                    client.close()

    def _resolve(self, key: str) -> str:
        found = self.store.resolve_trial(key)
        if not found:
            raise UserError(
                f"{key.strip()!r} is not a known trial id or label; `trialwatch watch list` "
                "shows them (a trial is known after the first sync that watched it)"
            )
        if len(found) > 1:
            raise UserError(f"{key.strip()!r} names several trials ({', '.join(found)}): use an id")
        return found[0]

    def print_stories(self) -> list[tuple[str, list[str]]]:
        """For each imported trial whose paper's publication day is known (``watch import
        --printed-on``): its id and, in words, the version in force that day and every change
        recorded since (``report --since-print``)."""
        from trialwatch.history import print_story, print_story_lines

        entries = [e for e in self.store.printed_entries() if e.printed_on]
        days = {e.nct_id: date.fromisoformat(e.printed_on or "") for e in entries}
        out = []
        for history in self.store.histories(list(days)):
            story = print_story(history, days[history.nct_id])
            out.append((history.nct_id, print_story_lines(story, history.name)))
        return out

    def close(self) -> None:
        self.store.close()


# --- the database before an app is built --------------------------------------------------------


def open_if_watching(settings: Settings) -> tuple[bool, Store | None]:
    """Whether the database watches trials that the config does not list (cli, imports), and
    the store opened to find that out, when there is one to use: :func:`build_app` uses it
    rather than open the database a second time (an engine, a connection and a schema
    check). None when the answer came without one, or is no. A missing SQLite file is not
    created to find that out."""
    from trialwatch.exceptions import DatabaseUnavailableError, TrialwatchError
    from trialwatch.storage import open_glance, sqlite_path

    path = sqlite_path(settings.database.url)
    if path is not None and not path.exists():
        return False, None  # no database yet: create nothing just to find that out
    # A plain SQLite file of this schema is asked over sqlite3: cheaper than the store's
    # engine, and SQLite has no server to connect to twice.
    glance = open_glance(settings.database.url)
    if glance is not None:
        try:
            return glance.watches_anything(), None
        finally:
            glance.close()
    try:
        store = Store.open(settings.database.url, create=False)
    except DatabaseUnavailableError:
        raise  # said now: trying again would wait as long a second time for the same answer
    except TrialwatchError:
        return True, None  # an outdated schema: the command upgrades it, or says how
    try:
        watches = store.watched_count() > 0
    except TrialwatchError:
        watches = False  # an empty database (no tables yet) watches nothing
    except BaseException:
        store.close()
        raise
    if not watches:
        store.close()
        return False, None
    return True, store


def needed_revision() -> str:
    """The schema revision this release reads and writes."""
    from trialwatch.storage import HEAD_REVISION

    return HEAD_REVISION


def schema_revisions(settings: Settings) -> tuple[str | None, str]:
    """``db current``: the database's schema revision (None: no tables yet) and the one this
    release needs."""
    from trialwatch.storage.migrate import current

    return current(settings.database.url), needed_revision()


def made_by(revision: str) -> str:
    """Which trialwatch release writes schema ``revision``, in words ("trialwatch 0.1.0")."""
    from trialwatch.storage import made_by as _made_by

    return _made_by(revision)


def upgrade_schema(settings: Settings, *, now: datetime) -> UpgradeResult:
    """``db upgrade``: the database upgraded to this release's schema (SQLite backed up)."""
    from trialwatch.routing import webhook_scrubber
    from trialwatch.storage.migrate import upgrade

    return upgrade(settings.database.url, now=now, scrub=webhook_scrubber(settings.subscriptions))


def build_app(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    may_upgrade: bool = False,
    apply_config_watchlist: bool = True,
    need_watches: bool = False,
) -> App:
    """Open the database named by the settings and wire the app.

    Raises DatabaseUnavailableError, or SchemaOutdatedError when the schema needs
    ``trialwatch db upgrade`` — which ``may_upgrade`` (sync, daemon) does by itself when the
    user opted in with ``[database] auto_upgrade``. ``apply_config_watchlist`` makes the config
    file's [[watchlist]] the ``config`` source's entries now; ``sync`` does it under its lock
    instead (a sync refused for the lock writes nothing). ``need_watches`` (sync, daemon)
    raises NothingToWatchError when neither the config nor the database watches a trial,
    before anything is created or upgraded.
    """
    store = None
    if need_watches and not (settings.watchlist or settings.queries):
        # A query watch finds (and may track) trials by itself.
        watches, store = open_if_watching(settings)
        if not watches:
            raise NothingToWatchError
    if store is None:
        store = _open_store(settings, clock=clock, may_upgrade=may_upgrade)
    app = App(settings=settings, store=store, clock=clock)
    if not apply_config_watchlist:
        return app
    try:
        # The config file's [[watchlist]] is the declarative start of the watch set: every
        # command sees it as it is now (a no-op when nothing changed).
        store.sync_config_watchlist(app.watchlist, now=clock())
    except BaseException:
        store.close()
        raise
    return app


def _open_store(settings: Settings, *, clock: Clock, may_upgrade: bool) -> Store:
    url = settings.database.url
    try:
        return Store.open(url)
    except SchemaOutdatedError:
        if not (may_upgrade and settings.database.auto_upgrade):
            raise
    from trialwatch.storage.migrate import upgrade

    result = upgrade(url, now=clock(), scrub=webhook_scrubber(settings.subscriptions))
    structlog.get_logger("trialwatch.app").warning(
        "database.upgraded",
        before=result.before,
        after=result.after,
        backup=str(result.backup) if result.backup else None,
    )
    return Store.open(url)


__all__ = ["App", "build_app", "utc_now"]
