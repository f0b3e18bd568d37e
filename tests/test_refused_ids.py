"""Ids CT.gov refuses to look up: marked once, shown, told to the admin once, never sent again.

CT.gov refuses a whole ``filter.ids`` request for one id off the spec's pattern; the client
splits the batch down to that id (``tests/test_ctgov_registry.py``). Here: what the sync and the
store make of it, and of such an id an older version left in a database.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.conftest import FakeClock, load_record
from tests.e2e import trialwatch, user_env
from tests.fakes.ctgov_server import FakeCtGov
from tests.fakes.smtp_server import FakeSmtp
from tests.fakes.source import FakeSource
from trialwatch.ids import refused_mark
from trialwatch.models import WatchItem
from trialwatch.storage import Store
from trialwatch.sync import run_sync

IDS = ["NCT01213277", "NCT02967393", "NCT05915845"]
BAD = "NCT05915846"  # well-formed here; the stand-in source refuses it as CT.gov refuses one


def _sync(store: Store, source: FakeSource, clock: FakeClock) -> object:
    return run_sync(
        source=source, store=store, clock=clock, watchlist=[WatchItem(i) for i in [*IDS, BAD]]
    )


def test_a_refused_id_is_marked_and_left_out_so_idle_polls_cost_one_request(
    store: Store, clock: FakeClock
) -> None:
    source = FakeSource([load_record(f"{i}.json") for i in IDS])
    source.refuse.add(BAD)
    first = run_sync(
        source=source, store=store, clock=clock, watchlist=[WatchItem(i) for i in [*IDS, BAD]]
    )
    assert first.baselined == len(IDS)
    assert [(r.nct_id, r.reason) for r in first.refused] == [
        (BAD, "refused by ClinicalTrials.gov (HTTP 400)")
    ]
    assert store.last_complete_run() is not None  # the run completes for the rest
    assert store.refused_trials() == [(BAD, "refused by ClinicalTrials.gov (HTTP 400)")]
    entry = next(e for e in store.watch_entries() if e.nct_id == BAD)
    assert entry.refused is not None and entry.refused.startswith("refused by")

    source.requests_made = 0
    clock.advance(hours=1)
    idle = run_sync(
        source=source, store=store, clock=clock, watchlist=[WatchItem(i) for i in [*IDS, BAD]]
    )
    assert idle.skipped and source.requests_made == 1  # not rechecked at every poll

    source.data_timestamp = "2026-11-21T09:00:06"
    source.requested.clear()
    clock.advance(days=1)
    run_sync(source=source, store=store, clock=clock, watchlist=[WatchItem(i) for i in [*IDS, BAD]])
    assert source.requested == [IDS]  # left out of later batches


@pytest.mark.parametrize(
    ("stored", "refused"),
    [
        ("NCT02606461", False),
        ("NCT00000000", True),
        ("NCT０２６０６４６１", True),  # stored as pasted by an older version: sent as is, refused
        ("NCT123", True),
    ],
)
def test_an_id_an_older_version_stored_is_marked_by_the_validator(
    stored: str, refused: bool
) -> None:
    mark = refused_mark(stored)
    assert (mark is not None) == refused
    assert mark is None or mark.startswith("refused by CT.gov: ")


@pytest.mark.e2e
def test_a_placeholder_left_in_an_old_database_is_marked_on_upgrade(
    tmp_path: Path, smtp: FakeSmtp
) -> None:
    db = tmp_path / "tw.db"
    config = tmp_path / "trialwatch.toml"
    config.write_text(
        '[logging]\nformat = "json"\n[health]\nadmin_email = "admin@example.org"\n'
        '[email]\nenabled = true\nsender = "tw@example.org"\nsmtp_host = "127.0.0.1"\n'
        f'smtp_port = {smtp.port}\nsecurity = "none"\n',
        encoding="utf-8",
    )
    with FakeCtGov([load_record("NCT02967393.json")]) as api:
        env = user_env(api.base_url, db, TRIALWATCH_CONFIG=str(config))
        assert trialwatch("watch", "add", "NCT02967393", env=env, cwd=tmp_path).code == 0
        # What an older version left: NCT00000000 watched (it let any 8 digits in), at the
        # schema before the mark.
        with sqlite3.connect(db) as conn:
            conn.execute("ALTER TABLE trial DROP COLUMN refused")
            conn.execute("ALTER TABLE query_state DROP COLUMN refused")
            conn.execute("UPDATE alembic_version SET version_num = '0005'")
            conn.execute(
                "INSERT INTO trial (nct_id, added_at, consecutive_misses, recheck) "
                "VALUES ('NCT00000000', '2026-01-01 00:00:00', 0, 0)"
            )
            conn.execute(
                "INSERT INTO watch (nct_id, source, added_at) "
                "VALUES ('NCT00000000', 'cli', '2026-01-01 00:00:00')"
            )
        upgraded = trialwatch("db", "upgrade", env=env, cwd=tmp_path)
        assert upgraded.code == 0, upgraded.err
        synced = trialwatch("sync", env=env, cwd=tmp_path)
        assert synced.code == 0, synced.err
        again = trialwatch("sync", "--force", env=env, cwd=tmp_path)
        assert again.code == 0, again.err
        sent = [r.params["filter.ids"] for r in api.requests if "filter.ids" in r.params]
        listed = trialwatch("watch", "list", env=env, cwd=tmp_path)
        status = trialwatch("status", env=env, cwd=tmp_path)
    assert sent == ["NCT02967393", "NCT02967393"]  # never sent, never costs its batch
    assert "Synced 1 trial (" in synced.out
    row = next(line for line in listed.out.splitlines() if "NCT00000000" in line)
    assert "refused by CT.gov: a placeholder" in row
    row = next(line for line in status.out.splitlines() if "NCT00000000" in line)
    assert "refused by CT.gov" in row
    with sqlite3.connect(db) as conn:
        alerts = conn.execute(
            "SELECT key FROM notification WHERE kind = 'alert' AND key LIKE 'refused-%'"
        ).fetchall()
    assert alerts == [("refused-NCT00000000",)]  # told once, over two syncs
    [told] = [m for m in smtp.messages if "NCT00000000" in str(m.message["Subject"])]
    assert "refused by ClinicalTrials.gov" in str(told.message["Subject"])
    assert "Traceback" not in synced.err + again.err + upgraded.err
