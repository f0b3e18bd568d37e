"""How a page reaches the database: counted statements, not timings (benchmarks/ times them).

On PostgreSQL every statement is a round trip and the server plans and runs each one, so a
page's trial updates and versions must each be one statement, whatever the page holds; SQLite
runs in this process and keeps its executemany.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import FakeClock, load_record
from tests.fakes.source import FakeSource
from trialwatch.models import WatchItem
from trialwatch.storage import Store
from trialwatch.sync import run_sync

IDS = ["NCT00712335", "NCT01213277", "NCT01339377", "NCT02967393", "NCT04650945", "NCT05915845"]


@pytest.fixture
def pg_store(pg_schema_url: str) -> Iterator[Store]:
    store = Store.open(pg_schema_url)
    yield store
    store.close()


class Statements:
    """Every statement sent to the database, with how many parameter sets it carried."""

    def __init__(self, engine: sa.Engine) -> None:
        self.sent: list[tuple[str, int]] = []
        sa.event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(
        self, conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: bool
    ) -> None:
        self.sent.append((" ".join(statement.split()), len(params) if many else 1))

    def starting(self, prefix: str) -> list[tuple[str, int]]:
        return [s for s in self.sent if s[0].upper().startswith(prefix.upper())]


def _sync(store: Store, source: FakeSource, clock: FakeClock, **kw: Any) -> Any:
    watch = [WatchItem(i, None, None) for i in IDS]
    return run_sync(source=source, store=store, watchlist=watch, clock=clock, **kw)


@pytest.mark.postgres
def test_a_page_of_new_trials_is_one_update_and_one_insert_on_postgresql(
    pg_store: Store, clock: FakeClock
) -> None:
    source = FakeSource([load_record(f"{i}.json") for i in IDS])
    statements = Statements(pg_store.engine)
    result = _sync(pg_store, source, clock, batch_size=len(IDS))
    assert result.baselined == len(IDS)
    updates = statements.starting("UPDATE trial ")
    assert updates == [(updates[0][0], 1)]  # one statement, one parameter set, for 6 trials
    versions = statements.starting("INSERT INTO record_version ")
    assert versions == [(versions[0][0], 1)]
    # and what it wrote reads back as the per-row path would have written it
    for nct_id in IDS:
        trial = pg_store.trial(nct_id)
        assert trial is not None and trial.current_version_id is not None
        assert trial.current_hash is not None and trial.fingerprint is not None
        assert trial.last_changed_at is None and trial.recheck is False


@pytest.mark.postgres
def test_a_page_of_changes_keeps_what_it_does_not_set(pg_store: Store, clock: FakeClock) -> None:
    source = FakeSource([load_record(f"{i}.json") for i in IDS])
    _sync(pg_store, source, clock, batch_size=len(IDS))
    record = copy.deepcopy(source.records["NCT01213277"])
    record["protocolSection"]["statusModule"]["overallStatus"] = "RECRUITING"
    source.put(record)
    source.data_timestamp = "2026-11-21T09:00:06"
    clock.advance(days=1)
    statements = Statements(pg_store.engine)
    result = _sync(pg_store, source, clock, batch_size=len(IDS))
    assert result.changed == 1
    assert [n for _, n in statements.starting("UPDATE trial ")] == [1]
    changed = pg_store.trial("NCT01213277")
    assert changed is not None and changed.overall_status == "RECRUITING"
    assert changed.last_changed_at == clock.now and changed.last_change_summary
    untouched = pg_store.trial("NCT00712335")
    assert untouched is not None and untouched.last_changed_at is None
