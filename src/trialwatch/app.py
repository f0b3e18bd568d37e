"""The one place that wires trialwatch together from Settings.

Tests wire the same pieces with fakes; the CLI and the daemon call :func:`build_app` and then
one method. Nothing here decides anything: it builds, calls, and closes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from trialwatch.config import Settings
from trialwatch.exceptions import ConcurrentUpdateError, SchemaOutdatedError, UserError
from trialwatch.health import Health, assess, render_alert, render_flood_alert
from trialwatch.models import Clock, Snapshot, SyncResult, WatchItem
from trialwatch.redact import Scrubber
from trialwatch.routing import SubscriptionRouter, resolve_webhook, webhook_scrubber
from trialwatch.storage import Store
from trialwatch.sync import FloodRule, Progress, QuerySpec, run_sync

if TYPE_CHECKING:
    # The network, mail and rendering edges are imported where they are used: `status` and
    # `watch list` need none of them, and a command people type should start fast.
    from trialwatch.ctgov import CtGovClient
    from trialwatch.discovery import Drift
    from trialwatch.export import TrialState
    from trialwatch.notify import SmtpTransport
    from trialwatch.outbox import FlushResult, Outbox


def utc_now() -> datetime:
    return datetime.now(UTC)


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
            sleep=time.sleep if sleep is None else sleep,
        )

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
        from trialwatch.locking import DatabaseLock
        from trialwatch.workers import PreparePool

        run_id = uuid.uuid4().hex
        # Every log line of this sync (client retries and deliveries included) carries run_id.
        lock = DatabaseLock(self.store, "sync")
        with (
            structlog.contextvars.bound_contextvars(run_id=run_id),
            lock.hold(wait_s, what="another trialwatch process"),
        ):
            own = client is None
            client = client or self.client()
            try:
                with PreparePool(self.settings.sync.worker_count()) as prepare:
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
        return result

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
        return tuple(QuerySpec(q.name, q.ctgov_params(), q.track) for q in self.settings.queries)

    @property
    def flood_rule(self) -> FloodRule:
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
        from trialwatch.outbox import sender_domain
        from trialwatch.report import build_message, make_message_id, render_test_message

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
        last = self.store.last_complete_run()
        runs = self.store.recent_runs(1)
        last_error = None
        if runs and runs[0].status == "failed" and runs[0].errors_json:
            errors = json.loads(runs[0].errors_json)
            last_error = errors[0] if errors else None
        return assess(
            now=self.clock(),
            settings=self.settings.health,
            last_success_at=last.finished_at if last else None,
            data_timestamp=last.data_timestamp if last else None,
            consecutive_failures=self.store.consecutive_failures(),
            last_error=last_error,
            outbox=self.store.outbox_counts(),
            retrying=self.store.retrying_count(),
        )

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

    def since_print(self, *, unreported_only: bool = False) -> list[Drift]:
        """How the registry moved since a paper printed its table (``watch import``)."""
        from trialwatch.discovery import Printed, since_print

        entries = self.store.printed_entries(unreported_only=unreported_only)
        current = self.store.current_snapshots([e.nct_id for e in entries])
        snapshots: dict[str, Snapshot | None] = {e.nct_id: current.get(e.nct_id) for e in entries}
        printed = [Printed(e.nct_id, e.status, e.status_text, e.title) for e in entries]
        return since_print(printed, snapshots)

    def close(self) -> None:
        self.store.close()


def build_app(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    may_upgrade: bool = False,
    apply_config_watchlist: bool = True,
) -> App:
    """Open the database named by the settings and wire the app.

    Raises DatabaseUnavailableError, or SchemaOutdatedError when the schema needs
    ``trialwatch db upgrade`` — which ``may_upgrade`` (sync, daemon) does by itself when the
    user opted in with ``[database] auto_upgrade``. ``apply_config_watchlist`` makes the config
    file's [[watchlist]] the ``config`` source's entries now; ``sync`` does it under its lock
    instead (a sync refused for the lock writes nothing).
    """
    url = settings.database.url
    try:
        store = Store.open(url)
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
        store = Store.open(url)
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


__all__ = ["App", "build_app", "utc_now"]
