"""``trialwatch daemon``: APScheduler in the foreground, one active daemon per database.

- Syncs on a cron schedule in CT.gov's time zone (weekdays shortly after its refresh, with
  jitter), or every ``interval_seconds`` when set. One sync runs at start, so a run missed while
  the daemon was down is caught up exactly once; runs missed while the machine slept are
  coalesced into one (``coalesce=True``) within a deliberate ``misfire_grace_time`` — APScheduler's
  default grace of 1 s would silently drop them. Cron weekdays are read as crontab reads them
  (0 = Sunday; APScheduler 3 alone would take ``1-5`` for Tuesday to Saturday).
- On a cron schedule, a sync that failed, or that found CT.gov not refreshed yet (its data as of
  the last complete run: an idle poll), is tried again the same day, at +2 h and +6 h
  (:data:`REPOLL_AFTER`; an idle re-poll costs one ``/version`` request). A re-poll that syncs
  cancels the ones left; a run on a late day is thus caught that day, not the next weekday's.
- Flushes the outbox on its own short interval; folds and sends daily/weekly digests on theirs.
- Holds the database's ``daemon`` lock while active: a second daemon waits as a standby and
  neither syncs nor sends until the first is gone. Every sync also takes the ``sync`` lock, so a
  manual ``trialwatch sync`` never runs alongside.
- A held lock can be lost (a dropped PostgreSQL connection, a deleted SQLite lock file; see
  ``storage``), and a standby may then take it. So the active daemon asks whether it still holds
  the lock before every job and every step that writes (the sync, the health check, each
  delivery) and on a heartbeat (``HEARTBEAT_S``). When it has lost it, it logs
  ``daemon.lock_lost`` with the reason, stops its jobs (waits are cut short, as on SIGTERM) and
  becomes a standby that tries to take the lock again.
- SIGTERM/SIGINT: stop taking work, let a database write finish, exit 0 within seconds. Network
  waits (retry backoff, pacing) are cut short; a job stuck in a network call is abandoned after
  ``SHUTDOWN_GRACE_S``. Nothing half-written is ever left: a sync writes each page in one
  transaction (a page's versions, changes and owed notifications together), and a run cut short
  is closed by the next sync, which releases what its committed pages owe. The signal handler
  only sets a flag (see
  ``_on_signal``): the main thread does the logging and the stopping.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType
from typing import Any, Final

import structlog
from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from trialwatch.app import App
from trialwatch.cron import crontab_trigger
from trialwatch.exceptions import LockHeldError, StorageError, TrialwatchError

log = structlog.get_logger("trialwatch.daemon")

SHUTDOWN_GRACE_S = 3.0
HEARTBEAT_S = 5.0  # the active daemon checks its lock this often, even when idle
STANDBY_RETRY_S = 1.0  # a standby tries to take the lock this often
WEB_STOP_S = 2.0  # open connections get this long to finish when the daemon stops
TICK_S = 0.1  # the main loop's pace (a signal cuts it short)


REPOLL_AFTER: Final = (timedelta(hours=2), timedelta(hours=6))
"""After a scheduled sync that failed or found CT.gov not refreshed: when to poll again."""


def repolls(*, at: datetime, scheduled: bool, failed: bool, stale: bool) -> tuple[datetime, ...]:
    """When to poll again after a sync that ended at ``at``. Pure.

    Only a scheduled (cron) sync plans re-polls, so they never breed more: one that failed, or
    that found CT.gov's data still the last complete run's (CT.gov refreshes on weekdays,
    generally by 9 a.m. US Eastern, sometimes hours later), is tried again at each of
    :data:`REPOLL_AFTER`. A sync that found new data needs none."""
    if not scheduled or not (failed or stale):
        return ()
    return tuple(at + after for after in REPOLL_AFTER)


class Cancelled(TrialwatchError):
    """The daemon is stopping: abandon the network wait (nothing has been written yet)."""


class _Tenure:
    """One stretch as the active daemon. It ends on shutdown or when the lock is lost; the jobs
    it started then start nothing more, and their waits are cut short."""

    def __init__(self) -> None:
        self.ended = threading.Event()
        self.lost: str | None = None  # why the lock was lost, when it was
        self.busy = threading.Condition()
        self.running = 0

    def end(self, *, lost: str | None = None) -> None:
        with self.busy:
            if lost is not None and not self.ended.is_set():
                self.lost = lost
            self.ended.set()

    def wait_for_jobs(self, timeout_s: float) -> int:
        """Wait up to ``timeout_s`` for running jobs to finish; returns how many still run."""
        deadline = time.monotonic() + timeout_s
        with self.busy:
            while self.running and time.monotonic() < deadline:
                self.busy.wait(max(0.0, deadline - time.monotonic()))
            return self.running


class Daemon:
    """The daemon's life: standby until it holds the lock, active while it keeps it.

    :meth:`run` drives :meth:`step` from the main thread until a signal; tests call ``step``
    themselves with a fake ``monotonic`` clock.
    """

    def __init__(
        self,
        app: App,
        *,
        heartbeat_s: float = HEARTBEAT_S,
        retry_s: float = STANDBY_RETRY_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.lock = app.store.lock("daemon")
        self.heartbeat_s = heartbeat_s
        self.retry_s = retry_s
        self._monotonic = monotonic
        self._signal: int | None = None
        self.scheduler: BackgroundScheduler | None = None
        self.tenure = _Tenure()
        self.active = False
        self._due = 0.0  # when step() next checks the lock (active) or tries to take it (standby)
        self._tried = False  # a first failure to reach the database is the user's to see
        self._standby_reason: str | None = None  # said once, not at every retry

    # -- jobs -----------------------------------------------------------------------------

    def _keeps_lock(self, tenure: _Tenure) -> bool:
        """Whether ``tenure``'s work may go on: asked before every job and every write it starts.

        A lost lock ends the tenure here; the main thread then steps down and says why.
        """
        if tenure.ended.is_set():
            return False
        reason = self.lock.why_lost()
        if reason is None:
            return True
        tenure.end(lost=reason)
        return False

    def _job(self, name: str, fn: Callable[[_Tenure], Any], tenure: _Tenure) -> Callable[[], None]:
        def run() -> None:
            # Checked under the same lock the step-down waits on: once run() has seen the
            # tenure end, it starts nothing; before that, the step-down counts it and waits.
            with tenure.busy:
                if tenure.ended.is_set():
                    return
                tenure.running += 1
            try:
                if self._keeps_lock(tenure):
                    fn(tenure)
            except Cancelled:
                log.info("job.cancelled", job=name)
            except LockHeldError as exc:
                log.warning("job.skipped", job=name, reason=str(exc))
            except TrialwatchError as exc:
                log.error("job.failed", job=name, error=str(exc))
            except Exception:  # a bug must not kill a months-long daemon; log it loudly
                log.exception("job.crashed", job=name)
            finally:
                with tenure.busy:
                    tenure.running -= 1
                    tenure.busy.notify_all()

        return run

    def _sleeper(self, tenure: _Tenure) -> Callable[[float], None]:
        def sleep(seconds: float) -> None:
            if tenure.ended.wait(seconds):
                raise Cancelled("daemon stopping or no longer active")

        return sleep

    def sync_job(self, tenure: _Tenure, *, full: bool = False, repoll: bool = False) -> None:
        """One sync, then health and delivery; plans the same day's re-polls (:func:`repolls`)
        after a scheduled one that failed or found CT.gov not refreshed (``repoll``: this is
        one of those re-polls)."""
        client = self.app.client(sleep=self._sleeper(tenure))
        failed, stale = False, False
        try:
            try:
                result = self.app.sync(wait_s=0, client=client, full=full, force=full)
                stale = result.skipped
            except (Cancelled, LockHeldError):
                raise  # stopping, or a manual sync is running: not a failed sync
            except TrialwatchError:
                failed = True
                raise
            finally:
                client.close()
        finally:
            # Health is judged after every attempt, failed or not: one alert per episode.
            if self._keeps_lock(tenure):
                self.app.check_alerts()
                self.app.flush(should_stop=lambda: not self._keeps_lock(tenure))
                if not full:
                    self._plan_repolls(tenure, repoll=repoll, failed=failed, stale=stale)

    def _plan_repolls(self, tenure: _Tenure, *, repoll: bool, failed: bool, stale: bool) -> None:
        scheduler = self.scheduler
        if scheduler is None or tenure is not self.tenure:
            return
        if repoll and not (failed or stale):  # it synced: the re-polls left are not needed
            for index in range(len(REPOLL_AFTER)):
                if scheduler.get_job(f"repoll-{index}") is not None:
                    scheduler.remove_job(f"repoll-{index}")
            return
        scheduled = not repoll and not self.app.settings.schedule.interval_seconds
        times = repolls(at=self.app.clock(), scheduled=scheduled, failed=failed, stale=stale)
        for index, when in enumerate(times):
            scheduler.add_job(
                self._job("repoll", lambda t: self.sync_job(t, repoll=True), tenure),
                DateTrigger(run_date=when),
                id=f"repoll-{index}",
                replace_existing=True,
            )
        if times:
            log.info("sync.repolls", at=[t.isoformat() for t in times], failed=failed)

    def full_sweep_job(self, tenure: _Tenure) -> None:
        """The weekly full sweep of a watch set that syncs incrementally ([sync])."""
        if not self.app.settings.sync.incremental(self.app.store.watched_count()):
            return  # small watch sets are fetched in full by every sync anyway
        self.sync_job(tenure, full=True)

    def flush_job(self, tenure: _Tenure) -> None:
        self.app.flush(should_stop=lambda: not self._keeps_lock(tenure))

    def digest_job(self, mode: str, tenure: _Tenure) -> None:
        created = self.app.fold_digests(mode)
        log.info("digest.folded", mode=mode, digests=created)
        self.app.flush(should_stop=lambda: not self._keeps_lock(tenure))

    # -- lifecycle ------------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Only a flag. The handler runs on the main thread between two bytecodes of whatever it
        # interrupted; logging or Event.set() take locks that code may be holding (a log line
        # half-written), and would deadlock the daemon instead of stopping it.
        self._signal = signum

    def _signalled(self) -> bool:
        return self._signal is not None

    def _log_stopping(self) -> None:
        assert self._signal is not None
        log.info("daemon.stopping", signal=signal.Signals(self._signal).name)

    def _triggers(self) -> dict[str, Any]:
        """The trigger of every job, by job id (crons were validated with the settings)."""
        schedule = self.app.settings.schedule
        if schedule.interval_seconds:
            sync: Any = IntervalTrigger(
                seconds=schedule.interval_seconds, timezone=schedule.timezone
            )
        else:
            sync = crontab_trigger(
                schedule.cron, timezone=schedule.timezone, jitter_s=schedule.jitter_s
            )
        return {
            "sync": sync,
            "flush": IntervalTrigger(seconds=schedule.flush_interval_s, timezone=schedule.timezone),
            "daily-digest": crontab_trigger(schedule.daily_digest_cron, timezone=schedule.timezone),
            "weekly-digest": crontab_trigger(
                schedule.weekly_digest_cron, timezone=schedule.timezone
            ),
            "full-sweep": crontab_trigger(
                self.app.settings.sync.full_sweep_cron, timezone=schedule.timezone
            ),
        }

    def _build_scheduler(self, tenure: _Tenure | None = None) -> BackgroundScheduler:
        """The scheduler of one tenure (the current one by default), not yet started."""
        tenure = self.tenure if tenure is None else tenure
        schedule = self.app.settings.schedule
        triggers = self._triggers()
        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=2)},
            job_defaults={
                "coalesce": True,  # many missed runs (sleep, suspend) -> one catch-up run
                "max_instances": 1,
                "misfire_grace_time": schedule.misfire_grace_s,
            },
            timezone=schedule.timezone,
        )
        # next_run_time=now: the start-up catch-up run (cheap when CT.gov has not refreshed).
        scheduler.add_job(
            self._job("sync", self.sync_job, tenure),
            triggers["sync"],
            id="sync",
            next_run_time=self.app.clock(),
        )
        scheduler.add_job(self._job("flush", self.flush_job, tenure), triggers["flush"], id="flush")
        scheduler.add_job(
            self._job("full-sweep", self.full_sweep_job, tenure),
            triggers["full-sweep"],
            id="full-sweep",
        )
        for mode in ("daily", "weekly"):
            scheduler.add_job(
                self._job(
                    f"{mode}-digest",
                    lambda t, m=mode: self.digest_job(m, t),  # type: ignore[misc]
                    tenure,
                ),
                triggers[f"{mode}-digest"],
                id=f"{mode}-digest",
            )

        def missed(event: JobExecutionEvent) -> None:
            log.warning("job.missed", job=event.job_id, scheduled=str(event.scheduled_run_time))

        scheduler.add_listener(missed, EVENT_JOB_MISSED)
        return scheduler

    def step(self) -> None:
        """One turn of the main loop: an active daemon checks its lock when the heartbeat is
        due (or a job found it lost) and steps down if it is gone; a standby tries to take it.

        Raises StorageError when the database cannot be reached on the very first try (the
        user started a daemon on a database it cannot open); later, such errors are logged
        and retried.
        """
        now = self._monotonic()
        if self.active:
            tenure = self.tenure
            if tenure.lost is None and now >= self._due:
                self._due = now + self.heartbeat_s
                reason = self.lock.why_lost()
                if reason is not None:
                    tenure.end(lost=reason)
            if tenure.lost is not None:
                self._step_down(tenure.lost)
                # Then a standby like any other, but one heartbeat late: a daemon whose
                # connection dropped leaves the lock to a standby that has a working one.
                self._due = now + self.heartbeat_s
        if not self.active and now >= self._due:
            self._due = now + self.retry_s
            try:
                taken = self.lock.try_acquire()
            except StorageError as exc:
                if not self._tried:
                    raise
                self._standby(f"cannot reach the database: {exc}")
                return
            finally:
                self._tried = True
            if taken:
                self._take_over()
            else:
                self._standby("another daemon is active on this database")

    def _standby(self, reason: str) -> None:
        if reason != self._standby_reason:
            self._standby_reason = reason
            log.warning("daemon.standby", reason=reason)

    def _take_over(self) -> None:
        schedule = self.app.settings.schedule
        self.tenure = _Tenure()
        self.active = True
        self._standby_reason = None
        self._due = self._monotonic() + self.heartbeat_s
        log.info(
            "daemon.started",
            schedule=(
                f"every {schedule.interval_seconds}s"
                if schedule.interval_seconds
                else f"{schedule.cron} ({schedule.timezone})"
            ),
            trials=self._watched(),
        )
        # Built only now: a standby's start-up run is due when it takes over, not before.
        self.scheduler = self._build_scheduler(self.tenure)
        self.scheduler.start()

    def _watched(self) -> int | None:
        """The watch set's size (config, cli, imports, queries), for the log; None when the
        database does not answer now (the jobs will say so)."""
        try:
            return self.app.store.watched_count()
        except StorageError:
            return None

    def _end_tenure(self) -> int:
        """Stop the scheduler and wait a little for running jobs; returns how many still run."""
        self.tenure.end()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        self.active = False
        return self.tenure.wait_for_jobs(SHUTDOWN_GRACE_S)

    def _step_down(self, reason: str) -> None:
        log.warning("daemon.lock_lost", reason=reason)
        abandoned = self._end_tenure()
        if abandoned:
            # Stuck in a network call: its tenure has ended, so it starts no write when it
            # returns (every write asks first), and its sync's own write is fenced.
            log.warning("daemon.jobs_left_running", jobs=abandoned)
        self.lock.release()
        self._standby("lost the daemon lock; will try to take it again")

    def _start_web(self) -> Callable[[], None]:
        """With ``[web] enabled``, serve the page from a thread beside the schedule (it reads
        the same database; a standby daemon serves it too). Returns what stops it."""
        web = self.app.settings.web
        if not web.enabled:
            return lambda: None
        from trialwatch.web import make_server

        server = make_server(self.app, web, host=web.host, port=web.port)
        thread = threading.Thread(target=server.run, name="trialwatch-web", daemon=True)
        thread.start()
        log.info("daemon.web", url=f"http://{web.host}:{web.port}/")

        def stop() -> None:
            server.should_exit = True  # uvicorn notices within a tenth of a second
            thread.join(timeout=WEB_STOP_S)

        return stop

    def run(self) -> int:
        """Block until SIGTERM/SIGINT; returns the process exit code."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        abandoned = 0
        stop_web = self._start_web()
        try:
            while not self._signalled():
                self.step()
                time.sleep(TICK_S)  # a signal cuts it short
            self._log_stopping()
            was_active = self.active
            stop_web()
            abandoned = self._end_tenure()
        finally:
            self.lock.release()
        if abandoned:
            # A job is stuck in a network call. Nothing is half-written: each page of a sync is
            # one transaction, a killed one rolls back, and the next sync closes a run cut
            # short. Exit now rather than let the interpreter wait for the worker thread.
            log.warning("daemon.stopped", abandoned_jobs=abandoned)
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            os._exit(0)
        if was_active:
            log.info("daemon.stopped")
        else:
            log.info("daemon.stopped", was="standby")
        return 0
