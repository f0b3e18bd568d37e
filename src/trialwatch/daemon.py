"""``trialwatch daemon``: APScheduler in the foreground, one active daemon per database.

- Syncs on a cron schedule in CT.gov's time zone (weekdays shortly after its refresh, with
  jitter), or every ``interval_seconds`` when set. One sync runs at start, so a run missed while
  the daemon was down is caught up exactly once; runs missed while the machine slept are
  coalesced into one (``coalesce=True``) within a deliberate ``misfire_grace_time`` — APScheduler's
  default grace of 1 s would silently drop them. Cron weekdays are read as crontab reads them
  (0 = Sunday; APScheduler 3 alone would take ``1-5`` for Tuesday to Saturday).
- Flushes the outbox on its own short interval; folds and sends daily/weekly digests on theirs.
- Holds the database's ``daemon`` lock for its lifetime: a second daemon waits as a standby and
  neither syncs nor sends until the first is gone. Every sync also takes the ``sync`` lock, so a
  manual ``trialwatch sync`` never runs alongside.
- SIGTERM/SIGINT: stop taking work, let a database write finish, exit 0 within seconds. Network
  waits (retry backoff, pacing) are cut short; a job stuck in a network call is abandoned after
  ``SHUTDOWN_GRACE_S``. Nothing half-written is ever left, because the sync writes in one
  transaction after all fetching is done. The signal handler only sets a flag (see
  ``_on_signal``): the main thread does the logging and the stopping.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import structlog
from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from trialwatch.app import App
from trialwatch.cron import crontab_trigger
from trialwatch.exceptions import LockHeldError, TrialwatchError
from trialwatch.locking import DatabaseLock

log = structlog.get_logger("trialwatch.daemon")

SHUTDOWN_GRACE_S = 3.0


class Cancelled(TrialwatchError):
    """The daemon is stopping: abandon the network wait (nothing has been written yet)."""


class Daemon:
    def __init__(self, app: App) -> None:
        self.app = app
        self.stop = threading.Event()
        self._busy = threading.Condition()
        self._running = 0
        self._signal: int | None = None
        self.scheduler: BackgroundScheduler | None = None

    # -- jobs -----------------------------------------------------------------------------

    def _job(self, name: str, fn: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            # Checked under the same lock the shutdown waits on: once run() has seen "stop",
            # it starts nothing; before that, the shutdown counts it and waits for it.
            with self._busy:
                if self.stop.is_set():
                    return
                self._running += 1
            try:
                fn()
            except Cancelled:
                log.info("job.cancelled", job=name)
            except LockHeldError as exc:
                log.warning("job.skipped", job=name, reason=str(exc))
            except TrialwatchError as exc:
                log.error("job.failed", job=name, error=str(exc))
            except Exception:  # a bug must not kill a months-long daemon; log it loudly
                log.exception("job.crashed", job=name)
            finally:
                with self._busy:
                    self._running -= 1
                    self._busy.notify_all()

        return run

    def _interruptible_sleep(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise Cancelled("daemon stopping")

    def sync_job(self) -> None:
        client = self.app.client(sleep=self._interruptible_sleep)
        try:
            try:
                self.app.sync(wait_s=0, client=client)
            finally:
                client.close()
        finally:
            # Health is judged after every attempt, failed or not: one alert per episode.
            if not self.stop.is_set():
                self.app.check_alerts()
                self.app.flush(should_stop=self.stop.is_set)

    def flush_job(self) -> None:
        self.app.flush(should_stop=self.stop.is_set)

    def digest_job(self, mode: str) -> None:
        created = self.app.fold_digests(mode)
        log.info("digest.folded", mode=mode, digests=created)
        self.app.flush(should_stop=self.stop.is_set)

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
        }

    def _build_scheduler(self) -> BackgroundScheduler:
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
            self._job("sync", self.sync_job),
            triggers["sync"],
            id="sync",
            next_run_time=self.app.clock(),
        )
        scheduler.add_job(self._job("flush", self.flush_job), triggers["flush"], id="flush")
        for mode in ("daily", "weekly"):
            scheduler.add_job(
                self._job(f"{mode}-digest", lambda m=mode: self.digest_job(m)),  # type: ignore[misc]
                triggers[f"{mode}-digest"],
                id=f"{mode}-digest",
            )

        def missed(event: JobExecutionEvent) -> None:
            log.warning("job.missed", job=event.job_id, scheduled=str(event.scheduled_run_time))

        scheduler.add_listener(missed, EVENT_JOB_MISSED)
        return scheduler

    def run(self) -> int:
        """Block until SIGTERM/SIGINT; returns the process exit code."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        lock = DatabaseLock(self.app.store, "daemon")
        if not lock.try_acquire():
            log.warning("daemon.standby", reason="another daemon is active on this database")
            while not lock.acquire(5.0, should_stop=self._signalled):
                if self._signalled():
                    self._log_stopping()
                    log.info("daemon.stopped", was="standby")
                    return 0
        schedule = self.app.settings.schedule
        log.info(
            "daemon.started",
            schedule=(
                f"every {schedule.interval_seconds}s"
                if schedule.interval_seconds
                else f"{schedule.cron} ({schedule.timezone})"
            ),
            trials=len(self.app.settings.watchlist),
        )
        try:
            # Built only now: a standby's start-up run is due when it takes over, not before.
            self.scheduler = self._build_scheduler()
            self.scheduler.start()
            while not self._signalled():
                time.sleep(0.1)  # a signal cuts it short
            self._log_stopping()
            self.stop.set()
            self.scheduler.shutdown(wait=False)
            deadline = time.monotonic() + SHUTDOWN_GRACE_S
            with self._busy:
                while self._running and time.monotonic() < deadline:
                    self._busy.wait(max(0.0, deadline - time.monotonic()))
            abandoned = self._running
        finally:
            lock.release()
        if abandoned:
            # A job is stuck in a network call. Nothing is half-written: a sync writes in one
            # transaction after fetching, and a killed transaction rolls back. Exit now rather
            # than let the interpreter wait for the worker thread.
            log.warning("daemon.stopped", abandoned_jobs=abandoned)
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            os._exit(0)
        log.info("daemon.stopped")
        return 0
