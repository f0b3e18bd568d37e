"""How the sync's reads and writes reach PostgreSQL: statements, parameters and settings
checked, not timed (benchmarks/bench_sync.py times them; README "PostgreSQL against SQLite").
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from tests import storage_reads
from tests.conftest import FakeClock, load_record
from tests.fakes.source import FakeSource
from trialwatch.exceptions import StorageError
from trialwatch.models import WatchItem
from trialwatch.storage import Store, _engine
from trialwatch.storage._sync import _copy_versions
from trialwatch.sync import run_sync

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_store(pg_schema_url: str) -> Iterator[Store]:
    store = Store.open(pg_schema_url)
    yield store
    store.close()


class Statements:
    """Every statement sent to the database, with its parameters."""

    def __init__(self, engine: sa.Engine) -> None:
        self.sent: list[tuple[str, Any]] = []
        sa.event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(
        self, conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: bool
    ) -> None:
        self.sent.append((" ".join(statement.split()), params))

    def reading(self, table: str) -> list[tuple[str, Any]]:
        return [s for s in self.sent if s[0].startswith("SELECT") and f"FROM {table} " in s[0]]


def _ids(n: int) -> list[str]:
    return [f"NCT{k:08d}" for k in range(1, n + 1)]


def test_a_page_of_ids_is_one_array_parameter_whatever_its_length(
    pg_store: Store, clock: FakeClock
) -> None:
    """page_state runs its statements on the driver's cursor (no ORM rows): the statements it
    sends are the same text for 500 ids and for 7 (so psycopg and the server keep them
    prepared), with the ids in one array parameter; and they read what was stored."""
    from trialwatch.storage._sync import _page_state_sql

    ids = _ids(600)
    pg_store.add_watches(ids, source="import", now=clock.now)
    big, small = pg_store.page_state(ids[:500]), pg_store.page_state(ids[:7])
    assert len(big) == 500 and len(small) == 7
    assert big[ids[0]] == small[ids[0]]
    *texts_big, params_big = _page_state_sql(ids[:500], "postgresql")
    *texts_small, params_small = _page_state_sql(ids[:7], "postgresql")
    assert texts_big == texts_small and all("= ANY(%s)" in t for t in texts_big)
    assert params_big == ids[:500] and params_small == ids[:7]


def test_a_large_watch_set_change_leaves_the_planner_statistics(
    pg_store: Store, clock: FakeClock
) -> None:
    pg_store.add_watches(_ids(1500), source="import", now=clock.now)
    with pg_store.engine.connect() as conn:
        tuples = dict(
            conn.execute(
                sa.text(
                    "SELECT relname, reltuples FROM pg_class WHERE oid IN "
                    "(to_regclass('watch'), to_regclass('trial'))"
                )
            ).all()
        )
    # Without ANALYZE a table that was empty stays "never analyzed" (-1) or 0 to the planner.
    assert tuples == {"watch": 1500, "trial": 1500}


def test_versions_are_compressed_with_lz4_where_the_server_has_it(pg_store: Store) -> None:
    with pg_store.engine.connect() as conn:
        has_lz4 = conn.execute(
            sa.text(
                "SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
                "WHERE name = 'default_toast_compression'"
            )
        ).scalar()
        used = conn.execute(sa.text("SHOW default_toast_compression")).scalar()
    assert used == ("lz4" if has_lz4 else "pglz")


def test_no_statement_waits_for_jit_compilation(pg_store: Store) -> None:
    """JIT would compile any statement the planner costs above jit_above_cost (a scan of a
    large watch set's tables) before running it: ~100 ms for a statement of milliseconds."""
    with pg_store.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW jit").scalar() == "off"


def test_a_connection_closed_while_idle_is_replaced_before_use(
    pg_store: Store, pg_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pg_store.engine.connect() as conn:  # the pool's one connection, idle from now on
        pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
    admin = sa.create_engine(pg_schema_url)
    with admin.begin() as conn:  # the server (a restart, an idle timeout) closes it
        assert conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
    admin.dispose()
    monkeypatch.setattr(_engine, "PING_AFTER_IDLE_S", 0.0)  # as if it had idled 10 s
    assert pg_store.watched_count() == 0  # the ping found it closed: the pool reconnected


def test_an_id_longer_than_the_column_is_not_cut_to_match_another(
    pg_store: Store, clock: FakeClock
) -> None:
    pg_store.add_watches(["NCT0000000000001"], source="import", now=clock.now)  # 16: the column's
    assert pg_store.page_state(["NCT00000000000012"]) == {}
    assert list(pg_store.page_state(["NCT0000000000001"])) == ["NCT0000000000001"]


PAGE = ["NCT00712335", "NCT01213277", "NCT01339377", "NCT02967393", "NCT04650945", "NCT05915845"]


def _sync(store: Store, source: FakeSource, clock: FakeClock) -> Any:
    watch = [WatchItem(i, None, None) for i in PAGE]
    return run_sync(source=source, store=store, watchlist=watch, clock=clock, batch_size=len(PAGE))


def test_a_page_of_new_trials_is_one_copy_and_one_update(pg_store: Store, clock: FakeClock) -> None:
    source = FakeSource([load_record(f"{i}.json") for i in PAGE])
    statements = Statements(pg_store.engine)
    assert _sync(pg_store, source, clock).baselined == len(PAGE)
    # The versions went by COPY (no INSERT), the trials in one UPDATE (not one per trial).
    assert not [s for s in statements.sent if s[0].startswith("INSERT INTO record_version")]
    updates = [params for text, params in statements.sent if text.startswith("UPDATE trial ")]
    assert [len(params["page_nct_id"]) for params in updates] == [len(PAGE)]
    for nct_id in PAGE:  # as the statements per row wrote it
        trial = pg_store.trial(nct_id)
        assert trial is not None and trial.current_hash is not None
        assert trial.fingerprint is not None and trial.normalizer_version is not None
        assert trial.last_changed_at is None and trial.recheck is False
        (version,) = storage_reads.versions(pg_store, nct_id)
        assert version.id == trial.current_version_id
        assert version.content_hash == trial.current_hash and version.first_seen_at == clock.now
        assert storage_reads.raw_record(pg_store, version.id)["protocolSection"]


def test_a_page_of_changes_keeps_what_it_does_not_set(pg_store: Store, clock: FakeClock) -> None:
    source = FakeSource([load_record(f"{i}.json") for i in PAGE])
    _sync(pg_store, source, clock)
    record = copy.deepcopy(source.records["NCT01213277"])
    record["protocolSection"]["statusModule"]["overallStatus"] = "RECRUITING"
    source.put(record)
    source.data_timestamp = "2026-11-21T09:00:06"
    clock.advance(days=1)
    assert _sync(pg_store, source, clock).changed == 1
    changed = pg_store.trial("NCT01213277")
    assert changed is not None and changed.overall_status == "RECRUITING"
    assert changed.last_changed_at == clock.now and changed.last_change_summary
    untouched = pg_store.trial("NCT00712335")
    assert untouched is not None and untouched.last_changed_at is None
    assert len(storage_reads.versions(pg_store, "NCT01213277")) == 2


def test_a_copy_the_server_refuses_is_a_storage_error(pg_store: Store, clock: FakeClock) -> None:
    row = {
        "nct_id": "NCT00712335",
        "content_hash": "x" * 65,  # longer than the column
        "snapshot_json": "{}",
        "raw_record": b"",
        "data_timestamp": None,
        "first_seen_at": clock.now,
        "normalizer_version": 1,
    }
    with pytest.raises(StorageError, match="value too long"), pg_store.session() as s:
        _copy_versions(s, [row])
