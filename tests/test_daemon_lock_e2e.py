"""Two ``trialwatch daemon`` processes on one PostgreSQL database: when the active one's lock
connection is killed, it steps down and the standby takes over, never both at once (issue 11,
item 1). The in-process tests of the same logic are in test_daemon.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import SELINEXOR
from tests.fakes.ctgov_server import FakeCtGov
from tests.fakes.smtp_server import FakeSmtp
from tests.test_daemon import kill_lock_session
from tests.test_daemon_e2e import TICKS, DaemonProcess, api, daemon_env, db, smtp, start

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

__all__ = ["api", "db", "smtp", "start"]  # fixtures, used by name


def test_a_daemon_whose_lock_session_is_killed_steps_down_and_the_standby_takes_over(
    api: FakeCtGov,
    smtp: FakeSmtp,
    pg_schema_url: str,
    start: Callable[[dict[str, str]], DaemonProcess],
    db: Path,
) -> None:
    with FakeCtGov.load_dir(SELINEXOR, data_timestamp=api.data_timestamp) as api2:
        env = daemon_env(api, smtp, db)
        first = start({**env, "TRIALWATCH_DATABASE__URL": pg_schema_url})
        first.wait_for("daemon.started")
        first.wait_for("sync.done", baselined=13)
        env2 = daemon_env(api2, smtp, db)
        second = start({**env2, "TRIALWATCH_DATABASE__URL": pg_schema_url})
        second.wait_for("daemon.standby")

        first.wait_for("sync.idle")  # just ticked: the next tick is 2 s away
        ticks_before = first.count(*TICKS)
        kill_lock_session(pg_schema_url)

        second.wait_for("daemon.started", timeout=15)
        [lost] = first.wait_for("daemon.lock_lost", timeout=15)
        assert "connection" in lost["reason"]
        first.wait_for("daemon.standby", reason="lost the daemon lock; will try to take it again")
        second.wait_for("sync.idle")  # the new active daemon works...
        second.wait_ticks(2)
        # ...and the old one did nothing since its lock went (a tick already under way when
        # the session was killed may still finish: at most one).
        assert first.count(*TICKS) <= ticks_before + 1
        assert len(first.matching("daemon.started")) == 1
        assert api2.count("/studies") == 0  # the baseline was the first daemon's, done once

        for daemon in (second, first):
            code, _ = daemon.terminate()
            assert code == 0, daemon.output()
