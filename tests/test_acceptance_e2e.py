"""Issue 11's fixes as a user sees them, through the real command against the stand-in:
a short read is fetched again at the next poll (2), health tells the truth after failures and
a forced recovery (4), secrets are not at rest in the database (6); and `--config` goes after
the command too (issue 12)."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from tests.e2e import Run, trialwatch, user_env
from tests.fakes.ctgov_server import FakeCtGov
from tests.records import complete

pytestmark = pytest.mark.e2e
SEAL = "NCT02606461"
HOOK = "https://hooks.example.org/services/T000/B000/VERYSECRETTOKEN"


def _run(env: dict[str, str], cwd: Path, *args: str) -> Run:
    run = trialwatch(*args, env=env, cwd=cwd)
    assert "Traceback" not in run.err, run.err
    return run


def test_a_short_read_and_a_forced_recovery_as_a_user_sees_them(
    api: FakeCtGov, tmp_path: Path
) -> None:
    db = tmp_path / "data" / "trialwatch.db"
    env = user_env(api.base_url, db, TRIALWATCH_HEALTH__MAX_DATA_AGE_HOURS="1000000")

    # Never synced: not healthy (the Docker healthcheck relies on it).
    assert _run(env, tmp_path, "status", "--check").code == 1
    assert _run(env, tmp_path, "sync").code == 0
    assert _run(env, tmp_path, "status", "--check").code == 0

    # Item 2: CT.gov leaves SEAL off its page in the very refresh in which SEAL changed.
    api.update_study(SEAL, complete)
    api.inject("short", nct_id=SEAL, path="/studies")
    first = _run(env, tmp_path, "sync")
    assert first.code == 0, first.err
    assert "Overall status" not in first.out
    api.clear_requests()
    again = _run(env, tmp_path, "sync")  # same dataTimestamp: not "Nothing to do"
    assert "Rechecked 1 trial (" in again.out
    assert "Active, not recruiting → Completed" in again.out
    assert api.count_lookups() == 1
    assert "Nothing to do" in _run(env, tmp_path, "sync").out

    # Item 4: eight failed syncs, then a forced success is a recovery at once.
    api.fail_all("status", status=503)
    failing = {**env, "TRIALWATCH_API__MAX_ATTEMPTS": "1"}
    for _ in range(8):
        assert _run(failing, tmp_path, "sync", "--force").code == 1
    check = _run(env, tmp_path, "status", "--check")
    assert check.code == 1 and "8 consecutive syncs failed" in check.err
    api.clear_faults()
    assert _run(env, tmp_path, "sync", "--force").code == 0
    assert _run(env, tmp_path, "status", "--check").code == 0


def test_secrets_are_not_at_rest_and_config_goes_anywhere(api: FakeCtGov, tmp_path: Path) -> None:
    config = tmp_path / "my.toml"
    config.write_text(
        f'[[watchlist]]\nnct_id = "{SEAL}"\n\n[[subscriptions]]\nname = "team"\n'
        f'webhook_url = "{HOOK}"\nmin_severity = "major"\n',
        encoding="utf-8",
    )
    db = tmp_path / "private" / "trialwatch.db"
    env = user_env(api.base_url, db)
    del env["TRIALWATCH_CONFIG"]
    # --config after the command (issue 12), and before it.
    assert _run(env, tmp_path, "sync", "--config", str(config)).code == 0
    api.update_study(SEAL, complete)
    run = _run(env, tmp_path, "--config", str(config), "sync")
    assert "Active, not recruiting → Completed" in run.out
    # Item 6: the webhook could not be delivered (no such host); what is stored is a
    # reference to the subscription, never the URL and its token.
    conn = sqlite3.connect(db)
    try:
        dump = "\n".join(conn.iterdump())
    finally:
        conn.close()
    assert "VERYSECRETTOKEN" not in dump  # the host alone may name the webhook in errors
    assert "webhook:" in dump
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    status = _run(env, tmp_path, "status", "-c", str(config))
    assert "VERYSECRETTOKEN" not in status.out + status.err
