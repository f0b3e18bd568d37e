"""``trialwatch daemon`` end to end: the real command as a subprocess, the shipped config,
a CT.gov stand-in and a real SMTP server on loopback, ticking every 2 seconds.

The daemon's stderr (structlog JSON lines) is read by a thread; tests wait for its events
("sync.done", "sync.idle", ...) instead of sleeping. Every tick logs exactly one of
``sync.done`` (it fetched), ``sync.idle`` (CT.gov had not refreshed) or ``sync.failed``.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import pytest

from tests.conftest import SELINEXOR
from tests.e2e import TRIALWATCH, sqlite_dump, trialwatch, user_env
from tests.fakes.ctgov_server import FakeCtGov
from tests.fakes.smtp_server import FakeSmtp
from tests.records import complete
from trialwatch.storage import Store

pytestmark = pytest.mark.e2e

SEAL = "NCT02606461"
CLINICIAN = "clinician@example.org"
ADMIN = "admin@example.org"
SEAL_CHANGE = "Active, not recruiting → Completed"
TICKS = ("sync.done", "sync.idle", "sync.failed")
EMAIL_DEADLINE_S = 10.0  # the issue: one email within 10 seconds of the change
EXIT_DEADLINE_S = 5.0  # the issue: SIGTERM ends the daemon in under 5 seconds


def _recent_timestamp() -> str:
    """CT.gov refreshed two hours ago: the data is fresh whatever day the tests run."""
    return (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S")


def _until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.02)


class DaemonProcess:
    """A running ``trialwatch daemon``; its stderr JSON lines parsed by a reader thread."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self._cond = threading.Condition()
        self.events: list[dict[str, Any]] = []
        self.other_lines: list[str] = []  # stdout and stderr lines that are not JSON
        self.proc = subprocess.Popen(
            [str(TRIALWATCH), "daemon"],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(stream,), daemon=True)
            for stream in (self.proc.stdout, self.proc.stderr)
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            try:
                event = json.loads(line)
            except ValueError:
                event = None
            with self._cond:
                if isinstance(event, dict) and "event" in event:
                    self.events.append(event)
                else:
                    self.other_lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def matching(self, name: str, **fields: Any) -> list[dict[str, Any]]:
        with self._cond:
            return [
                e
                for e in self.events
                if e["event"] == name and all(e.get(k) == v for k, v in fields.items())
            ]

    def count(self, *names: str) -> int:
        with self._cond:
            return sum(1 for e in self.events if e["event"] in names)

    def output(self) -> str:
        with self._cond:
            return "\n".join([*(json.dumps(e) for e in self.events), *self.other_lines])

    def wait_for(
        self, name: str, count: int = 1, timeout: float = 15.0, **fields: Any
    ) -> list[dict[str, Any]]:
        """Wait until ``count`` events ``name`` (with these field values) were logged."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = self.matching(name, **fields)
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(
                        f"{len(found)} of {count} {name!r} {fields or ''} events "
                        f"(exit code {self.proc.poll()}); daemon output:\n{self.output()}"
                    )
                self._cond.wait(min(left, 0.2))

    def wait_ticks(self, more: int, timeout: float = 15.0) -> None:
        """Wait for ``more`` ticks (syncs, whatever their outcome) after the ones seen so far."""
        target = self.count(*TICKS) + more
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.count(*TICKS) < target:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"no {more} more ticks; daemon output:\n{self.output()}")
                self._cond.wait(min(left, 0.2))

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> tuple[int, float]:
        """Send ``sig``; return the exit code and the seconds it took to exit."""
        sent = time.monotonic()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"still running {timeout:g}s after {signal.Signals(sig).name}; "
                f"output:\n{self.output()}"
            ) from None
        elapsed = time.monotonic() - sent
        for reader in self._readers:
            reader.join(5)
        return code, elapsed

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for reader in self._readers:
            reader.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def api() -> Iterator[FakeCtGov]:
    with FakeCtGov.load_dir(SELINEXOR, data_timestamp=_recent_timestamp()) as fake:
        yield fake


@pytest.fixture
def smtp() -> Iterator[FakeSmtp]:
    with FakeSmtp() as server:
        yield server


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "trialwatch.db"


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], DaemonProcess]]:
    """Start daemons; every one is killed (if still running) and its pipes closed at the end."""
    started: list[DaemonProcess] = []

    def _start(env: dict[str, str]) -> DaemonProcess:
        daemon = DaemonProcess(env, tmp_path)
        started.append(daemon)
        return daemon

    yield _start
    for daemon in started:
        daemon.close()


def daemon_env(api: FakeCtGov, smtp: FakeSmtp, db: Path, **extra: str) -> dict[str, str]:
    settings = {
        "TRIALWATCH_SCHEDULE__INTERVAL_SECONDS": "2",
        "TRIALWATCH_SCHEDULE__FLUSH_INTERVAL_S": "1",
        "TRIALWATCH_EMAIL__ENABLED": "true",
        "TRIALWATCH_EMAIL__SMTP_HOST": "127.0.0.1",
        "TRIALWATCH_EMAIL__SMTP_PORT": str(smtp.port),
        "TRIALWATCH_EMAIL__SECURITY": "none",
        "TRIALWATCH_EMAIL__SENDER": "trialwatch@example.org",
        "TRIALWATCH_EMAIL__TO": json.dumps([CLINICIAN]),
        "TRIALWATCH_EMAIL__TIMEOUT_S": "5",
        "TRIALWATCH_HEALTH__ADMIN_EMAIL": ADMIN,
        "TRIALWATCH_HEALTH__MAX_CONSECUTIVE_FAILURES": "2",
    }
    settings.update(extra)
    return user_env(api.base_url, db, **settings)


def _baseline(daemon: DaemonProcess) -> None:
    daemon.wait_for("daemon.started")
    daemon.wait_for("sync.done", baselined=13)


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _assert_consistent(db: Path) -> None:
    assert _rows(db, "PRAGMA integrity_check") == [("ok",)]
    statuses = {status for (status,) in _rows(db, "SELECT status FROM sync_run")}
    assert statuses <= {"complete", "failed"}


# -- the bar: a change while running -> exactly one email, fast ----------------------------------


def test_a_change_while_running_is_emailed_once_within_ten_seconds(
    api: FakeCtGov, smtp: FakeSmtp, db: Path, start: Callable[[dict[str, str]], DaemonProcess]
) -> None:
    daemon = start(daemon_env(api, smtp, db))
    _baseline(daemon)
    assert smtp.messages == []  # a baseline is not news

    changed_at = time.monotonic()
    api.update_study(SEAL, complete)
    [received] = smtp.wait_for(1, timeout=EMAIL_DEADLINE_S)
    latency = time.monotonic() - changed_at
    assert latency < EMAIL_DEADLINE_S

    assert received.rcpt_tos == (CLINICIAN,)
    subject = str(received.message["Subject"])
    assert SEAL in subject
    assert SEAL_CHANGE in subject

    # Later ticks find nothing new and send nothing again (counted again after exit).
    daemon.wait_ticks(1)
    assert len(smtp.messages) == 1
    assert len(daemon.matching("sync.done", changed=1)) == 1

    code, elapsed = daemon.terminate()
    assert code == 0, daemon.output()
    assert elapsed < EXIT_DEADLINE_S
    assert len(smtp.messages) == 1

    # The logs: one sync.done per fetching sync with counts, duration and run_id; changes
    # carry the trial's nct_id and the same run_id.
    [done] = daemon.matching("sync.done", changed=1)
    # /version, the 13 ids, the shipped Selinexor search.
    assert done["changes"] >= 1 and done["checked"] == 13 and done["requests"] == 3
    assert isinstance(done["duration_s"], int | float)
    [change] = daemon.matching("trial.change", nct_id=SEAL, field="overall_status")
    assert change["run_id"] == done["run_id"]
    assert change["summary"].endswith(SEAL_CHANGE)


# -- idle ticks cost one request --------------------------------------------------------------


def test_idle_ticks_cost_one_version_request_each(
    api: FakeCtGov, smtp: FakeSmtp, db: Path, start: Callable[[dict[str, str]], DaemonProcess]
) -> None:
    daemon = start(daemon_env(api, smtp, db))
    _baseline(daemon)
    daemon.wait_for("sync.idle", count=3)
    code, _ = daemon.terminate()
    assert code == 0, daemon.output()

    # Counted after exit, so no tick is half-counted: the baseline took /version, the ids and
    # the Selinexor search; every other tick exactly one /version.
    ticks = daemon.count(*TICKS)
    idle = daemon.count("sync.idle")
    assert idle >= 3
    assert ticks == idle + 1  # the baseline, then idle ticks only
    assert api.count_lookups() == 1 and api.count_searches() == 1
    assert api.count("/version") == ticks
    assert len(api.requests) == ticks + 2
    assert smtp.messages == []


# -- SIGTERM --------------------------------------------------------------------------------------


def test_sigterm_exits_0_within_five_seconds_leaving_a_consistent_database(
    api: FakeCtGov,
    smtp: FakeSmtp,
    db: Path,
    tmp_path: Path,
    start: Callable[[dict[str, str]], DaemonProcess],
) -> None:
    env = daemon_env(api, smtp, db)
    daemon = start(env)
    _baseline(daemon)

    code, elapsed = daemon.terminate()
    assert code == 0, daemon.output()
    assert elapsed < EXIT_DEADLINE_S
    assert daemon.matching("daemon.stopping", signal="SIGTERM")
    assert daemon.matching("daemon.stopped")
    assert not any("Traceback" in line for line in daemon.other_lines)

    _assert_consistent(db)
    assert _rows(db, "SELECT status FROM sync_run") == [("complete",)]
    status = trialwatch("status", env=env, cwd=tmp_path)
    assert status.code == 0, status.err
    assert "Last successful sync" in status.out
    check = trialwatch("status", "--check", env=env, cwd=tmp_path)
    assert (check.code, check.out.strip()) == (0, "healthy")


def test_sigint_exits_0_too(
    api: FakeCtGov, smtp: FakeSmtp, db: Path, start: Callable[[dict[str, str]], DaemonProcess]
) -> None:
    daemon = start(daemon_env(api, smtp, db))
    _baseline(daemon)
    code, elapsed = daemon.terminate(signal.SIGINT)
    assert code == 0, daemon.output()
    assert elapsed < EXIT_DEADLINE_S
    assert daemon.matching("daemon.stopping", signal="SIGINT")
    _assert_consistent(db)


def test_sigterm_during_a_stuck_api_call_exits_0_quickly_with_nothing_half_written(
    api: FakeCtGov,
    smtp: FakeSmtp,
    db: Path,
    tmp_path: Path,
    start: Callable[[dict[str, str]], DaemonProcess],
) -> None:
    api.inject("delay", seconds=20, path="/studies")
    env = daemon_env(api, smtp, db)
    daemon = start(env)
    daemon.wait_for("daemon.started")
    _until(lambda: api.count("/studies") >= 1, 15, "the daemon's /studies request")

    code, elapsed = daemon.terminate()
    assert code == 0, daemon.output()
    assert elapsed < EXIT_DEADLINE_S
    assert daemon.count(*TICKS) == 0  # the sync neither finished nor recorded anything

    _assert_consistent(db)
    for table in ("sync_run", "record_version", "change_event", "notification"):
        assert _rows(db, f"SELECT count(*) FROM {table}") == [(0,)], table  # noqa: S608
    assert _rows(db, "SELECT count(*) FROM trial WHERE current_version_id IS NOT NULL") == [(0,)]

    # Nothing left behind blocks the next run: no stale lock, no half-finished sync.
    again = trialwatch("sync", "--wait", "0", env=env, cwd=tmp_path)
    assert again.code == 0, again.err
    assert "13 new" in again.out


# -- one active daemon per database ---------------------------------------------------------------


def test_a_second_daemon_on_the_same_database_stands_by_then_takes_over(
    api: FakeCtGov,
    smtp: FakeSmtp,
    db: Path,
    start: Callable[[dict[str, str]], DaemonProcess],
) -> None:
    # The second daemon gets its own CT.gov and SMTP stand-ins (same data), so anything it
    # fetched or sent would show there.
    with (
        FakeCtGov.load_dir(SELINEXOR, data_timestamp=api.data_timestamp) as api2,
        FakeSmtp() as smtp2,
    ):
        first = start(daemon_env(api, smtp, db))
        _baseline(first)
        second = start(daemon_env(api2, smtp2, db))
        second.wait_for("daemon.standby")

        for fake in (api, api2):
            fake.update_study(SEAL, complete)
        [received] = smtp.wait_for(1, timeout=EMAIL_DEADLINE_S)
        assert received.rcpt_tos == (CLINICIAN,)
        first.wait_ticks(1)

        assert second.proc.poll() is None
        assert api2.requests == []
        assert smtp2.messages == []
        assert second.count(*TICKS) == 0
        assert second.matching("daemon.started") == []
        assert len(smtp.messages) == 1

        code, elapsed = first.terminate()
        assert code == 0, first.output()
        assert elapsed < EXIT_DEADLINE_S

        # The standby takes over: its start-up sync finds the change already recorded.
        second.wait_for("daemon.started", timeout=15)
        second.wait_for("sync.idle")
        assert api2.count("/version") >= 1
        assert api2.count("/studies") == 0
        code, elapsed = second.terminate()
        assert code == 0, second.output()
        assert elapsed < EXIT_DEADLINE_S
        assert len(smtp.messages) + len(smtp2.messages) == 1


def test_a_standby_daemon_stops_on_sigterm(
    api: FakeCtGov, smtp: FakeSmtp, db: Path, start: Callable[[dict[str, str]], DaemonProcess]
) -> None:
    first = start(daemon_env(api, smtp, db))
    first.wait_for("daemon.started")
    second = start(daemon_env(api, smtp, db))
    second.wait_for("daemon.standby")
    code, elapsed = second.terminate()
    assert code == 0, second.output()
    assert elapsed < EXIT_DEADLINE_S
    assert second.matching("daemon.started") == []
    assert second.count(*TICKS) == 0
    assert first.proc.poll() is None  # the active one is unaffected
    code, _ = first.terminate()
    assert code == 0, first.output()


# -- health alerts --------------------------------------------------------------------------------


# Ticking every second here: these tests are about counting alerts, not about the schedule.
def _failing_env(api: FakeCtGov, smtp: FakeSmtp, db: Path) -> dict[str, str]:
    return daemon_env(
        api, smtp, db, TRIALWATCH_API__MAX_ATTEMPTS="1", TRIALWATCH_SCHEDULE__INTERVAL_SECONDS="1"
    )


def _alerted(daemon: DaemonProcess, smtp: FakeSmtp, api: FakeCtGov) -> None:
    """Baseline, then CT.gov answers 503: the admin is alerted after 2 failed ticks."""
    _baseline(daemon)
    api.fail_all("status", status=503)
    daemon.wait_for("sync.failed", count=2)
    [alert] = smtp.wait_for(1, timeout=EMAIL_DEADLINE_S)
    assert alert.rcpt_tos == (ADMIN,)
    subject = str(alert.message["Subject"])
    assert subject.startswith("trialwatch alert:")
    assert "2 consecutive syncs failed" in subject
    assert "HTTP 503" in alert.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_failing_syncs_alert_the_admin_once_and_the_recovery_once(
    api: FakeCtGov,
    smtp: FakeSmtp,
    db: Path,
    tmp_path: Path,
    start: Callable[[dict[str, str]], DaemonProcess],
) -> None:
    env = _failing_env(api, smtp, db)
    daemon = start(env)
    _alerted(daemon, smtp, api)

    check = trialwatch("status", "--check", env=env, cwd=tmp_path)
    assert check.code == 1
    assert "unhealthy: " in check.err
    assert "consecutive syncs failed" in check.err
    assert "Traceback" not in check.err
    status = trialwatch("status", env=env, cwd=tmp_path)
    assert status.code == 0, status.err
    assert "Consecutive failed syncs:" in status.out
    assert "UNHEALTHY:" in status.out

    # Ticks run one at a time: the 4th failure is logged after the 3rd tick's alert check.
    daemon.wait_for("sync.failed", count=4)
    assert len(smtp.messages) == 1  # not one per failing tick

    # CT.gov is back, with its next refresh.
    later = datetime.fromisoformat(api.data_timestamp) + timedelta(hours=1)
    api.set_data_timestamp(later.strftime("%Y-%m-%dT%H:%M:%S"))
    api.clear_faults()
    [_, recovery] = smtp.wait_for(2, timeout=EMAIL_DEADLINE_S)
    assert recovery.rcpt_tos == (ADMIN,)
    assert str(recovery.message["Subject"]) == "trialwatch recovered"
    daemon.wait_ticks(2)
    assert len(smtp.messages) == 2

    healthy = trialwatch("status", "--check", env=env, cwd=tmp_path)
    assert (healthy.code, healthy.out.strip()) == (0, "healthy")
    code, _ = daemon.terminate()
    assert code == 0, daemon.output()
    assert len(smtp.messages) == 2
    _assert_consistent(db)


def test_recovery_is_noticed_even_when_ctgov_has_not_refreshed_meanwhile(
    api: FakeCtGov, smtp: FakeSmtp, db: Path, start: Callable[[dict[str, str]], DaemonProcess]
) -> None:
    daemon = start(_failing_env(api, smtp, db))
    _alerted(daemon, smtp, api)

    api.clear_faults()  # the outage ends; the data is still that of the baseline
    # Ticks come every second here; a loaded machine may take longer to notice, not never.
    [_, recovery] = smtp.wait_for(2, timeout=30)
    assert recovery.rcpt_tos == (ADMIN,)
    assert str(recovery.message["Subject"]) == "trialwatch recovered"
    daemon.wait_ticks(2)
    assert len(smtp.messages) == 2


# -- a manual sync never runs alongside ------------------------------------------------------------


def test_a_manual_sync_while_the_lock_is_held_exits_1_or_waits(
    api: FakeCtGov, db: Path, tmp_path: Path
) -> None:
    env = user_env(api.base_url, db)
    db.parent.mkdir(parents=True)
    store = Store.open(f"sqlite:///{db}")
    lock = store.lock("sync")
    try:
        assert lock.try_acquire()
        before = sqlite_dump(db)
        refused = trialwatch("sync", "--wait", "0", env=env, cwd=tmp_path)
        assert refused.code == 1
        assert "already running" in refused.err
        assert "Traceback" not in refused.err
        assert api.requests == []
        assert sqlite_dump(db) == before

        releaser = threading.Timer(1.0, lock.release)
        releaser.start()
        try:
            waited = trialwatch("sync", "--wait", "5", env=env, cwd=tmp_path)
        finally:
            releaser.join()
        assert waited.code == 0, waited.err
        assert "13 new" in waited.out
    finally:
        lock.release()
        store.close()


def test_a_manual_sync_while_the_daemon_syncs_is_refused(
    api: FakeCtGov,
    smtp: FakeSmtp,
    db: Path,
    tmp_path: Path,
    start: Callable[[dict[str, str]], DaemonProcess],
) -> None:
    # The daemon's first /studies answer never comes in time: it holds the sync lock for as
    # long as the manual sync takes to start, however loaded the machine (no fixed window).
    api.inject("delay", seconds=120, path="/studies")
    env = {**daemon_env(api, smtp, db), "TRIALWATCH_API__TIMEOUT_S": "300"}
    daemon = start(env)
    _until(lambda: api.count("/studies") >= 1, 30, "the daemon's /studies request")

    manual = trialwatch("sync", "--wait", "0", env=env, cwd=tmp_path)
    assert daemon.count(*TICKS) == 0, "the daemon finished first: the test did not overlap"
    assert manual.code == 1
    assert "already running" in manual.err
    assert "Traceback" not in manual.err
    assert api.count("/version") == 1  # the manual sync made no request at all

    code, _ = daemon.terminate()  # stops the stuck sync; nothing half-written either way
    assert code == 0, daemon.output()
    assert _rows(db, "SELECT count(*) FROM sync_run") == [(0,)]


def test_with_web_enabled_the_daemon_serves_the_page_and_still_stops_within_five_seconds(
    api: FakeCtGov,
    smtp: FakeSmtp,
    db: Path,
    start: Callable[[dict[str, str]], DaemonProcess],
) -> None:
    import socket

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**daemon_env(api, smtp, db), "TRIALWATCH_WEB__ENABLED": "true"}
    env["TRIALWATCH_WEB__PORT"] = str(port)
    daemon = start(env)
    _baseline(daemon)
    daemon.wait_for("daemon.web")
    deadline = time.monotonic() + 10
    while True:
        try:
            page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
            break
        except httpx.ConnectError:
            assert time.monotonic() < deadline, daemon.output()
            time.sleep(0.1)
    assert page.status_code == 200
    assert "SEAL" in page.text
    # A reader's connection kept open does not hold the daemon up.
    with httpx.Client() as reader:
        assert reader.get(f"http://127.0.0.1:{port}/healthz").status_code in (200, 503)
        code, elapsed = daemon.terminate()
    assert code == 0, daemon.output()
    assert elapsed < EXIT_DEADLINE_S
    assert not any("Traceback" in line for line in daemon.other_lines)
