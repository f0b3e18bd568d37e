"""A ``[[queries]]`` search CT.gov still refuses at run time (past the load-time bracket check):
named by the sync, by ``status`` and to the admin once, and the run completes for the watched
trials, so idle polls stay at one request."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.e2e import trialwatch, user_env
from tests.fakes.ctgov_server import FakeCtGov
from tests.fakes.smtp_server import FakeSmtp
from tests.records import complete

pytestmark = pytest.mark.e2e

SEAL = "NCT02606461"


def test_a_refused_query_is_named_and_never_blocks_the_run(
    api: FakeCtGov, tmp_path: Path, smtp: FakeSmtp
) -> None:
    db = tmp_path / "tw.db"
    config = tmp_path / "trialwatch.toml"
    config.write_text(
        '[logging]\nformat = "json"\n'
        '[[watchlist]]\nnct_id = "NCT02606461"\nlabel = "SEAL"\n'
        # An unbalanced parenthesis: no bracket, so the config takes it; CT.gov cannot parse it.
        '[[queries]]\nname = "kpt"\nintervention = "selinexor AND (KPT-330"\n'
        '[health]\nadmin_email = "admin@example.org"\n'
        '[email]\nenabled = true\nsender = "tw@example.org"\nsmtp_host = "127.0.0.1"\n'
        f'smtp_port = {smtp.port}\nsecurity = "none"\n',
        encoding="utf-8",
    )
    env = user_env(api.base_url, db, TRIALWATCH_CONFIG=str(config))
    first = trialwatch("sync", env=env, cwd=tmp_path)
    assert first.code == 0, first.err
    assert "QUERY REFUSED kpt" in first.err and "missing ')'" in first.err

    api.update_study(SEAL, complete)
    second = trialwatch("sync", env=env, cwd=tmp_path)
    assert second.code == 0, second.err
    assert "Overall status: Active, not recruiting → Completed" in second.out  # reported

    api.clear_requests()
    idle = trialwatch("sync", env=env, cwd=tmp_path)
    assert idle.code == 0, idle.err
    assert len(api.requests) == 1  # the run completed: an idle poll asks /version only

    status = trialwatch("status", env=env, cwd=tmp_path)
    assert "Query 'kpt' refused by CT.gov at the last sync" in status.out
    assert "No complete sync yet" not in status.out
    with sqlite3.connect(db) as conn:
        alerts = conn.execute(
            "SELECT count(*) FROM notification WHERE key LIKE 'refused-query-%'"
        ).fetchone()
    assert alerts == (1,)  # told once, though refused at two refreshes
    assert any("kpt" in str(m.message["Subject"]) for m in smtp.messages)
    assert "Traceback" not in first.err + second.err + idle.err + status.err
