"""The daemon: its scheduler wiring (which trigger wins, crontab weekdays, catch-up after a sleep)
and how it keeps its lock (one active daemon per database, even when the lock is lost)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, EVENT_JOB_SUBMITTED
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from structlog.testing import capture_logs

from trialwatch.app import App, utc_now
from trialwatch.config import ScheduleSettings, Settings, load_settings
from trialwatch.cron import crontab_trigger, crontab_weekdays
from trialwatch.daemon import Cancelled, Daemon
from trialwatch.exceptions import ConfigError, StorageError, TrialwatchError
from trialwatch.storage import Store
from trialwatch.storage._lock import _key

NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "trialwatch.db"


@pytest.fixture
def make_app(db_path: Path) -> Iterator[Any]:
    apps: list[App] = []

    def _make(**schedule: Any) -> App:
        settings = Settings(schedule=ScheduleSettings(**schedule))
        app = App(settings=settings, store=Store.open(f"sqlite:///{db_path}"), clock=utc_now)
        apps.append(app)
        return app

    yield _make
    for app in apps:
        app.close()


def _fire_times(trigger: CronTrigger, start: datetime, n: int) -> list[datetime]:
    times: list[datetime] = []
    previous = None
    now = start
    for _ in range(n):
        fire = trigger.get_next_fire_time(previous, now)
        assert fire is not None
        times.append(fire)
        previous = now = fire
    return times


# -- crontab weekdays: 0 (or 7) is Sunday, as in crontab, not Monday as in APScheduler 3 --------


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("*", "*"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("0", "sun"),
        ("7", "sun"),
        ("1", "mon"),
        ("5-7", "sun,fri,sat"),
        ("0,6", "sun,sat"),
        ("*/2", "sun,tue,thu,sat"),
        ("1-5/2", "mon,wed,fri"),
        ("mon-fri", "mon-fri"),
        ("sat,1", "sat,mon"),
    ],
)
def test_crontab_weekdays_are_translated(field: str, expected: str) -> None:
    assert crontab_weekdays(field) == expected


@pytest.mark.parametrize("field", ["8", "5-1", "1-5/0", "1-", "", "1--2"])
def test_impossible_weekdays_are_refused(field: str) -> None:
    with pytest.raises(ValueError, match="day-of-week"):
        crontab_weekdays(field)


def test_the_default_cron_fires_monday_to_friday_after_the_refresh() -> None:
    trigger = crontab_trigger(ScheduleSettings().cron, timezone="America/New_York")
    sunday_noon = datetime(2026, 11, 22, 12, 0, tzinfo=NEW_YORK)
    fires = _fire_times(trigger, sunday_noon, 6)
    assert [f.strftime("%a %H:%M") for f in fires] == [
        "Mon 09:20",
        "Tue 09:20",
        "Wed 09:20",
        "Thu 09:20",
        "Fri 09:20",
        "Mon 09:20",
    ]
    assert all(f.tzinfo is not None and f.utcoffset() == timedelta(hours=-5) for f in fires)


def test_the_weekly_digest_goes_out_on_monday() -> None:
    trigger = crontab_trigger(ScheduleSettings().weekly_digest_cron, timezone="America/New_York")
    [first, second] = _fire_times(trigger, datetime(2026, 11, 24, 12, 0, tzinfo=NEW_YORK), 2)
    assert (first.strftime("%a %d %H:%M"), second.strftime("%a %d")) == ("Mon 30 08:00", "Mon 07")


# -- the scheduler the daemon builds -------------------------------------------------------------


def test_interval_seconds_wins_over_cron_and_the_first_sync_runs_at_start(make_app: Any) -> None:
    app = make_app(interval_seconds=7, cron="20 9 * * 1-5", flush_interval_s=11)
    before = datetime.now(UTC)
    scheduler = Daemon(app)._build_scheduler()
    after = datetime.now(UTC)
    scheduler.start(paused=True)  # pending jobs get the job defaults when the scheduler starts
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert set(jobs) == {"sync", "flush", "daily-digest", "weekly-digest", "full-sweep"}
        sync = jobs["sync"]
        assert isinstance(sync.trigger, IntervalTrigger)
        assert sync.trigger.interval == timedelta(seconds=7)
        assert before <= sync.next_run_time <= after  # the start-up (catch-up) sync
        assert isinstance(jobs["flush"].trigger, IntervalTrigger)
        assert jobs["flush"].trigger.interval == timedelta(seconds=11)
        for job in jobs.values():
            assert job.coalesce is True
            assert job.max_instances == 1
            assert job.misfire_grace_time == ScheduleSettings().misfire_grace_s
    finally:
        scheduler.shutdown(wait=False)


def test_without_interval_the_cron_with_jitter_schedules_syncs(make_app: Any) -> None:
    app = make_app(cron="20 9 * * 1-5", jitter_s=300, misfire_grace_s=3600)
    scheduler = Daemon(app)._build_scheduler()
    scheduler.start(paused=True)
    try:
        sync = scheduler.get_job("sync")
        assert isinstance(sync.trigger, CronTrigger)
        assert sync.trigger.jitter == 300
        assert str(sync.trigger.timezone) == "America/New_York"
        assert sync.misfire_grace_time == 3600
    finally:
        scheduler.shutdown(wait=False)


@pytest.mark.parametrize(
    ("grace_s", "runs"),
    [
        (6 * 3600, True),  # the shipped grace: the missed runs are caught up, once
        (1, False),  # APScheduler's default grace would silently drop them
    ],
)
def test_runs_missed_while_asleep_are_caught_up_once(
    make_app: Any, monkeypatch: pytest.MonkeyPatch, grace_s: int, runs: bool
) -> None:
    app = make_app(interval_seconds=60, misfire_grace_s=grace_s)
    daemon = Daemon(app)
    monkeypatch.setattr(daemon, "sync_job", lambda _tenure: None)
    scheduler = daemon._build_scheduler()
    events: list[Any] = []
    done = threading.Event()

    def listen(event: Any) -> None:
        if event.job_id == "sync":
            events.append(event)
            if len(events) == 2:
                done.set()

    scheduler.add_listener(listen, EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED | EVENT_JOB_MISSED)
    # The machine slept for an hour: 61 runs were due, the last one 30 s ago.
    scheduler.modify_job("sync", next_run_time=datetime.now(UTC) - timedelta(seconds=3630))
    scheduler.start()
    try:
        assert done.wait(10)
    finally:
        scheduler.shutdown(wait=True)
    # The executor may report before the scheduler reports the submission: order is free.
    outcome = EVENT_JOB_EXECUTED if runs else EVENT_JOB_MISSED
    assert sorted(e.code for e in events) == sorted([EVENT_JOB_SUBMITTED, outcome])
    [submitted] = [e for e in events if e.code == EVENT_JOB_SUBMITTED]
    assert len(submitted.scheduled_run_times) == 1  # coalesced: one run, not 61


@pytest.mark.parametrize(
    ("setting", "value"),
    [("cron", "61 9 * * 1-5"), ("cron", "20 9 * * 9"), ("weekly_digest_cron", "0 8 * * 1-8")],
)
def test_an_unreadable_cron_is_a_config_error_for_every_command(setting: str, value: str) -> None:
    variable = f"TRIALWATCH_SCHEDULE__{setting.upper()}"
    with pytest.raises(ConfigError, match=f"{variable}: schedule.{setting}"):
        load_settings(env={variable: value})


# -- the lock itself ------------------------------------------------------------------------------


def kill_lock_session(url: str, name: str = "daemon") -> None:
    """From another connection, end the session holding lock ``name`` of ``url``'s schema, as a
    server restart or a cut connection would."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            schema = conn.execute(sa.text("SELECT current_schema()")).scalar()
            key = _key(f"trialwatch:{schema}:{name}")
            [pid] = conn.execute(
                sa.text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND objsubid = 1 AND classid = CAST(:hi AS oid)"
                    " AND objid = CAST(:lo AS oid)"
                ),
                {"hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF},
            ).scalars()
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
    finally:
        engine.dispose()


def test_a_sqlite_lock_knows_when_its_file_is_gone_or_replaced(db_path: Path) -> None:
    store = Store.open(f"sqlite:///{db_path}")
    lock, other = store.lock("daemon"), store.lock("daemon")
    path = Path(f"{db_path}.daemon.lock")
    try:
        assert lock.why_lost() == "the lock is not held"
        assert lock.try_acquire()
        assert lock.why_lost() is None
        assert not other.try_acquire()
        path.unlink()
        assert "removed" in (lock.why_lost() or "")
        assert other.try_acquire()  # a new file at the same path: this is why it must ask
        assert "replaced" in (lock.why_lost() or "")
    finally:
        lock.release()
        other.release()
        store.close()


@pytest.mark.postgres
def test_a_postgresql_lock_knows_when_its_session_is_gone(pg_schema_url: str) -> None:
    store = Store.open(pg_schema_url)
    lock = store.lock("daemon")
    try:
        assert lock.try_acquire()
        assert lock.why_lost() is None
        assert lock.why_lost() is None  # asking does not leave a transaction open or unlock
        kill_lock_session(pg_schema_url)
        assert lock.why_lost() is not None
        assert lock.why_lost() is not None  # and it stays lost, even if SQLAlchemy reconnects
        lock.release()
        assert lock.try_acquire()
        assert lock.why_lost() is None
    finally:
        lock.release()
        store.close()


# -- keeping the lock: one active daemon per database --------------------------------------------


class Ticks:
    """A monotonic clock the test moves by hand (the daemon's heartbeat and standby retries)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class StubScheduler:
    """Stands in for APScheduler: the test runs the daemon's jobs itself, when it chooses."""

    def __init__(self) -> None:
        self.running = False

    def start(self) -> None:
        self.running = True

    def shutdown(self, wait: bool = True) -> None:
        self.running = False


class Node:
    """One daemon process, in-process: its Daemon (stub scheduler, its own fake clock), and how
    often its jobs did their work."""

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self.ticks = Ticks()
        self.app = App(settings=Settings(), store=Store.open(url), clock=utc_now)
        self.daemon = Daemon(self.app, heartbeat_s=5.0, retry_s=1.0, monotonic=self.ticks)
        self.daemon._build_scheduler = lambda tenure=None: StubScheduler()  # type: ignore[method-assign]
        self.worked = 0

    def work(self) -> bool:
        """Run a job as the scheduler would; True when it did its work."""
        before = self.worked
        self.daemon._job("sync", lambda _tenure: self._did(), self.daemon.tenure)()
        return self.worked > before

    def _did(self) -> None:
        self.worked += 1

    def close(self) -> None:
        self.daemon.lock.release()
        self.app.close()


@pytest.fixture
def nodes() -> Iterator[Callable[[str, str], Node]]:
    made: list[Node] = []

    def _make(name: str, url: str) -> Node:
        node = Node(name, url)
        made.append(node)
        return node

    yield _make
    for node in made:
        node.close()


def _until_active(node: Node, timeout_s: float = 5.0) -> None:
    """Step a standby (one retry per step) until it takes the lock; the server releases a
    terminated session's locks a moment after pg_terminate_backend returns."""
    deadline = time.monotonic() + timeout_s
    while not node.daemon.active:
        assert time.monotonic() < deadline, f"{node.name} never took over"
        node.ticks.advance(node.daemon.retry_s)
        node.daemon.step()
        time.sleep(0.02)


def _events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


@pytest.mark.postgres
def test_a_daemon_whose_lock_connection_is_killed_steps_down_before_its_next_job(
    pg_schema_url: str, nodes: Callable[[str, str], Node]
) -> None:
    a, b = nodes("a", pg_schema_url), nodes("b", pg_schema_url)
    a.daemon.step()
    b.daemon.step()
    assert (a.daemon.active, b.daemon.active) == (True, False)
    assert (a.work(), b.work()) == (True, False)

    with capture_logs() as logs:
        kill_lock_session(pg_schema_url)
        _until_active(b)  # the standby takes the lock the server let go
        assert b.work()
        # Before its heartbeat is due, a still believes it is active, but its next job asks
        # first and does nothing; its next step steps down and says why.
        assert a.daemon.active
        assert not a.work()
        a.daemon.step()
    assert not a.daemon.active
    [lost] = _events(logs, "daemon.lock_lost")
    assert "connection" in lost["reason"]
    assert _events(logs, "daemon.standby")

    # a is a standby now: it tries again and again, and never works meanwhile.
    for _ in range(8):
        a.ticks.advance(a.daemon.retry_s)
        a.daemon.step()
        assert (a.daemon.active, a.work(), b.work()) == (False, False, True)

    # When b goes, a takes over.
    b.daemon._end_tenure()
    b.daemon.lock.release()
    _until_active(a)
    assert (a.work(), b.work()) == (True, False)


@pytest.mark.postgres
def test_an_idle_daemon_notices_the_lost_lock_on_its_heartbeat(
    pg_schema_url: str, nodes: Callable[[str, str], Node]
) -> None:
    a, b = nodes("a", pg_schema_url), nodes("b", pg_schema_url)
    a.daemon.step()
    b.daemon.step()
    kill_lock_session(pg_schema_url)
    _until_active(b)

    with capture_logs() as logs:
        a.ticks.advance(a.daemon.heartbeat_s - 0.1)
        a.daemon.step()
        assert a.daemon.active, "checked before its heartbeat was due"
        a.ticks.advance(0.1)
        a.daemon.step()
    assert not a.daemon.active
    [lost] = _events(logs, "daemon.lock_lost")
    assert "connection" in lost["reason"]
    assert (a.work(), b.work()) == (False, True)


@pytest.mark.postgres
def test_a_daemon_that_lost_its_lock_takes_it_again_when_nobody_else_has(
    pg_schema_url: str, nodes: Callable[[str, str], Node]
) -> None:
    a = nodes("a", pg_schema_url)
    a.daemon.step()
    first = a.daemon.tenure
    kill_lock_session(pg_schema_url)
    a.ticks.advance(a.daemon.heartbeat_s)
    with capture_logs() as logs:
        a.daemon.step()  # notices, steps down
        assert not a.daemon.active
        a.ticks.advance(a.daemon.heartbeat_s - 0.1)
        a.daemon.step()
        assert not a.daemon.active, "it leaves a heartbeat's time to the standbys"
        _until_active(a)
    assert [e["event"] for e in logs if e["event"].startswith("daemon.")][:2] == [
        "daemon.lock_lost",
        "daemon.standby",
    ]
    assert _events(logs, "daemon.started")
    assert first.ended.is_set() and a.daemon.tenure is not first
    assert a.work()


def test_on_sqlite_a_removed_lock_file_makes_the_daemon_step_down(
    db_path: Path, nodes: Callable[[str, str], Node]
) -> None:
    url = f"sqlite:///{db_path}"
    a, b = nodes("a", url), nodes("b", url)
    a.daemon.step()
    b.daemon.step()
    assert (a.daemon.active, b.daemon.active) == (True, False)

    # flock locks the file, not the path: once it is gone, b locks a new file at the same path.
    Path(f"{db_path}.daemon.lock").unlink()
    _until_active(b)
    with capture_logs() as logs:
        assert not a.work()
        a.daemon.step()
    assert not a.daemon.active
    [lost] = _events(logs, "daemon.lock_lost")
    assert "removed" in lost["reason"]
    a.ticks.advance(a.daemon.retry_s)
    a.daemon.step()
    assert (a.daemon.active, a.work(), b.work()) == (False, False, True)


def test_a_lost_lock_stops_a_job_between_its_writes(
    db_path: Path, nodes: Callable[[str, str], Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    a = nodes("a", f"sqlite:///{db_path}")
    a.daemon.step()
    done: list[str] = []

    def sync(**_: Any) -> None:
        done.append("sync")
        Path(f"{db_path}.daemon.lock").unlink()  # the lock is lost while the sync runs

    monkeypatch.setattr(a.app, "sync", sync)
    monkeypatch.setattr(a.app, "check_alerts", lambda: done.append("check_alerts"))
    monkeypatch.setattr(a.app, "flush", lambda **_: done.append("flush"))
    a.daemon._job("sync", a.daemon.sync_job, a.daemon.tenure)()
    assert done == ["sync"]  # neither the health record nor a delivery was written after it
    assert a.daemon.tenure.lost is not None


def test_a_lost_lock_cuts_the_jobs_waits_short(
    db_path: Path, nodes: Callable[[str, str], Node]
) -> None:
    a = nodes("a", f"sqlite:///{db_path}")
    a.daemon.step()
    tenure = a.daemon.tenure
    sleep = a.daemon._sleeper(tenure)  # what the sync's client waits with
    sleep(0)
    Path(f"{db_path}.daemon.lock").unlink()
    a.ticks.advance(a.daemon.heartbeat_s)
    a.daemon.step()
    assert tenure.ended.is_set()  # so the wait below ends at once, cancelled
    with pytest.raises(Cancelled):
        sleep(30)


def test_a_database_out_of_reach_stops_the_first_start_but_not_a_running_daemon(
    db_path: Path, nodes: Callable[[str, str], Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    a = nodes("a", f"sqlite:///{db_path}")

    def unreachable() -> bool:
        raise StorageError("cannot take the daemon lock: connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(a.daemon.lock, "try_acquire", unreachable)
        with pytest.raises(StorageError):
            a.daemon.step()  # the user started it on a database it cannot reach: say so

    a.ticks.advance(a.daemon.retry_s)
    a.daemon.step()
    assert a.daemon.active
    Path(f"{db_path}.daemon.lock").unlink()
    a.ticks.advance(a.daemon.heartbeat_s)
    with capture_logs() as logs, monkeypatch.context() as patch:
        a.daemon.step()  # steps down
        patch.setattr(a.daemon.lock, "try_acquire", unreachable)
        for _ in range(3):
            a.ticks.advance(a.daemon.heartbeat_s)
            a.daemon.step()
    assert [e["reason"] for e in _events(logs, "daemon.standby")] == [
        "lost the daemon lock; will try to take it again",
        "cannot reach the database: cannot take the daemon lock: connection refused",
    ]
    a.ticks.advance(a.daemon.retry_s)
    a.daemon.step()
    assert a.daemon.active


# -- re-polls the same day ------------------------------------------------------------------------


class RecordingScheduler(StubScheduler):
    """Keeps the one-off jobs the daemon adds, so the test can run them at their time."""

    def __init__(self) -> None:
        super().__init__()
        self.jobs: dict[str, tuple[Callable[[], None], datetime]] = {}

    def add_job(self, fn: Callable[[], None], trigger: Any, *, id: str, **_: Any) -> None:
        self.jobs[id] = (fn, trigger.run_date)

    def get_job(self, job_id: str) -> Any:
        return self.jobs.get(job_id)

    def remove_job(self, job_id: str) -> None:
        del self.jobs[job_id]


def test_a_late_refresh_or_a_failed_run_is_polled_again_the_same_day(db_path: Path) -> None:
    from tests.conftest import FakeClock, load_record
    from tests.fakes.ctgov_server import FakeCtGov
    from tests.records import complete
    from trialwatch.config import ApiSettings, WatchlistEntry
    from trialwatch.daemon import REPOLL_AFTER

    clock = FakeClock(datetime(2026, 11, 23, 14, 25, tzinfo=UTC))  # a Monday, 09:25 in New York
    with FakeCtGov([load_record("NCT01213277.json")]) as api:
        settings = Settings(
            api=ApiSettings(
                base_url=api.base_url,
                min_interval_s=0,
                max_attempts=2,
                backoff_initial_s=0.01,
                backoff_max_s=0.02,
            ),
            watchlist=(WatchlistEntry(nct_id="NCT01213277"),),
        )
        app = App(settings=settings, store=Store.open(f"sqlite:///{db_path}"), clock=clock)
        daemon = Daemon(app)
        scheduler = RecordingScheduler()
        daemon.scheduler = scheduler  # type: ignore[assignment]
        assert daemon.lock.try_acquire()
        try:
            daemon.sync_job(daemon.tenure)  # the baseline: new data, no re-poll
            assert scheduler.jobs == {}

            # The next weekday CT.gov is late: the scheduled poll finds the same data.
            clock.advance(days=1)
            api.clear_requests()
            daemon.sync_job(daemon.tenure)
            assert len(api.requests) == 1  # /version only
            assert {k: at for k, (_, at) in scheduler.jobs.items()} == {
                f"repoll-{i}": clock.now + after for i, after in enumerate(REPOLL_AFTER)
            }

            # +2 h: still not refreshed; one /version request, and no re-polls of re-polls.
            first, _ = scheduler.jobs.pop("repoll-0")
            clock.advance(hours=2)
            api.clear_requests()
            first()
            assert len(api.requests) == 1 and set(scheduler.jobs) == {"repoll-1"}

            # Refreshed by +6 h: that re-poll syncs the change.
            api.update_study("NCT01213277", complete)
            last, _ = scheduler.jobs.pop("repoll-1")
            clock.advance(hours=4)
            last()
            recent = app.store.recent_runs(1)[0]
            assert recent.status == "complete" and recent.changed == 1

            # A scheduled run that fails is tried again the same day.
            clock.advance(days=1)
            api.update_study("NCT01213277", lambda record: None)
            api.fail_all("status", status=500)
            with pytest.raises(TrialwatchError):
                daemon.sync_job(daemon.tenure)
            assert set(scheduler.jobs) == {"repoll-0", "repoll-1"}

            # The re-poll that syncs cancels the one left.
            api.clear_faults()
            retry, _ = scheduler.jobs.pop("repoll-0")
            clock.advance(hours=2)
            retry()
            assert scheduler.jobs == {}
            assert app.store.recent_runs(1)[0].status == "complete"
        finally:
            daemon.lock.release()
            app.close()


def test_only_a_scheduled_run_plans_re_polls() -> None:
    from trialwatch.daemon import repolls

    at = datetime(2026, 11, 24, 14, 25, tzinfo=UTC)
    assert repolls(at=at, scheduled=True, failed=False, stale=False) == ()
    assert repolls(at=at, scheduled=False, failed=True, stale=True) == ()
    assert repolls(at=at, scheduled=True, failed=True, stale=False) == (
        at + timedelta(hours=2),
        at + timedelta(hours=6),
    )
