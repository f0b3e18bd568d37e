"""kill -9 in the middle of a real `trialwatch sync` whose records a worker process normalizes:
nothing lost, nothing doubled. Pages of 100 new or changed records start the worker (pages of 64
or more do), so both syncs below run with it, and both are killed with a page held in the
pipeline (fetched and handed to the worker, not yet written)."""

from __future__ import annotations

import json
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import Run, trialwatch, user_env
from tests.fakes.ctgov_server import FakeCtGov, clone_record, load_records
from tests.records import complete

pytestmark = pytest.mark.e2e
N = 300


def _ids() -> list[str]:
    return [f"NCT08{i:06d}" for i in range(N)]


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def _run(env: dict[str, str], cwd: Path, *args: str, **extra: str) -> Run:
    run = trialwatch(*args, env={**env, **extra}, cwd=cwd, timeout=120)
    assert "Traceback" not in run.err, run.err
    return run


def test_kill_9_mid_sync_with_a_worker_loses_and_doubles_nothing(tmp_path: Path) -> None:
    real = load_records()
    studies = [
        clone_record(real[i % len(real)], nct, overall_status="RECRUITING")
        for i, nct in enumerate(_ids())
    ]
    config = tmp_path / "trialwatch.toml"
    config.write_text("# The watch set is imported; nothing else is set.\n")
    db = tmp_path / "trialwatch.db"
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("".join(f"{nct}\n" for nct in _ids()))
    with FakeCtGov(studies) as api:
        env = user_env(
            api.base_url,
            db,
            TRIALWATCH_CONFIG=str(config),
            TRIALWATCH_API__BATCH_SIZE="100",
            TRIALWATCH_SYNC__WORKERS="1",
        )
        assert _run(env, tmp_path, "watch", "import", str(ids_file)).code == 0

        # The first sync dies once its 2nd page committed: the 3rd is with the worker.
        killed = _run(env, tmp_path, "sync", TRIALWATCH_FAILPOINTS="sync.page_committed:2")
        assert killed.code == -signal.SIGKILL
        assert _rows(db, "SELECT count(*) FROM record_version") == [(200,)]
        again = _run(env, tmp_path, "sync", "--verbose")  # info lines: workers.started
        assert again.code == 0, again.err
        assert "100 new" in again.out and "200 unchanged" in again.out
        assert "workers.started" in again.err  # the worker did prepare them
        assert _rows(db, "SELECT count(*), count(DISTINCT nct_id) FROM record_version") == [(N, N)]

        # A day on which 7 trials in 10 complete (70 a page: the worker prepares them). The
        # sync dies right after fetching its 3rd page: the 1st is written, the 2nd was held.
        changed = [nct for i, nct in enumerate(_ids()) if i % 10 < 7]
        for nct in changed:
            api.update_study(nct, complete)
        killed = _run(env, tmp_path, "sync", TRIALWATCH_FAILPOINTS="sync.fetched:3")
        assert killed.code == -signal.SIGKILL
        written = _rows(db, "SELECT count(*) FROM change_event WHERE field = 'overall_status'")
        assert written == [(70,)]
        again = _run(env, tmp_path, "sync")
        assert again.code == 0, again.err
        assert f"{len(changed) - 70} changes in {len(changed) - 70} trials" in again.out

    events = _rows(db, "SELECT nct_id FROM change_event WHERE field = 'overall_status'")
    assert sorted(nct for (nct,) in events) == changed  # every change once, none twice
    with sqlite3.connect(db) as conn:
        statuses = conn.execute(
            "SELECT DISTINCT overall_status FROM trial WHERE nct_id IN (SELECT value FROM "
            "json_each(?))",
            (json.dumps(changed),),
        ).fetchall()
    assert statuses == [("COMPLETED",)]
    runs = _rows(db, "SELECT status, count(*) FROM sync_run GROUP BY status ORDER BY status")
    assert runs == [("complete", 2), ("interrupted", 2)]
