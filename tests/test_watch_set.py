"""The watch set in the database: sources, the config as the declarative start, history kept."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pytest
import sqlalchemy as sa

from tests import storage_reads
from tests.conftest import FakeClock, load_record
from tests.fakes.source import FakeSource
from trialwatch.exceptions import StorageError
from trialwatch.models import WatchItem
from trialwatch.storage import Store, Trial
from trialwatch.storage._engine import ROWS_PER_STATEMENT
from trialwatch.sync import run_sync

A, B, C = "NCT01213277", "NCT02967393", "NCT05915845"


def test_config_entries_are_synced_with_their_labels(store: Store, clock: FakeClock) -> None:
    change = store.sync_config_watchlist(
        [WatchItem(A, "Alpha", "Table 1"), WatchItem(B, None)], now=clock.now
    )
    assert change.added == (A, B)
    entries = {e.nct_id: e for e in store.watch_entries()}
    assert entries[A].label == "Alpha" and entries[A].table == "Table 1"
    assert entries[A].sources == ("config",)
    assert entries[B].display_label == B  # no label, nothing synced yet: the id
    # Labels follow the config; an id the config drops stops being watched.
    change = store.sync_config_watchlist([WatchItem(A, "Alpha 2")], now=clock.now)
    assert change.removed == (B,)
    assert [e.label for e in store.watch_entries()] == ["Alpha 2"]


def test_an_id_is_watched_while_any_source_holds_it(store: Store, clock: FakeClock) -> None:
    store.sync_config_watchlist([WatchItem(A, "Alpha")], now=clock.now)
    change = store.add_watches([A, B], source="import", now=clock.now)
    assert change.added == (B,) and change.already == (A,)
    assert {e.nct_id: e.sources for e in store.watch_entries()} == {
        A: ("config", "import"),
        B: ("import",),
    }
    # The config dropping A leaves it watched: the import still holds it.
    store.sync_config_watchlist([], now=clock.now)
    assert storage_reads.is_watched(store, A)
    assert store.watched_count() == 2


def test_remove_keeps_history_and_never_fights_the_config(store: Store, clock: FakeClock) -> None:
    source = FakeSource([load_record(f"{i}.json") for i in (A, B)])
    run_sync(source=source, store=store, watchlist=[WatchItem(A, "Alpha")], clock=clock)
    store.add_watches([B], source="cli", now=clock.now)
    change = store.remove_watches([A, B, C])
    assert change.removed == (B,)
    assert change.kept_by_config == (A,)  # the config file lists it: say so, keep it
    assert change.not_watched == (C,)
    assert not storage_reads.is_watched(store, B)
    assert storage_reads.is_watched(store, A)
    trial = store.trial(A)
    assert trial is not None and trial.current_version_id is not None  # history kept


def test_watched_ids_stream_in_order_in_chunks(store: Store, clock: FakeClock) -> None:
    ids = [f"NCT{n:08d}" for n in range(1, 2501)]
    store.add_watches(list(reversed(ids)), source="import", now=clock.now)
    chunks = list(store.iter_watched_ids(1000))
    assert [len(c) for c in chunks] == [1000, 1000, 500]
    assert [i for c in chunks for i in c] == ids


def test_pages_to_fetch_stay_full_around_the_ids_a_sync_skips(
    store: Store, clock: FakeClock
) -> None:
    ids = [f"NCT{n:08d}" for n in range(1, 2501)]
    store.add_watches(ids, source="import", now=clock.now)
    store.add_watches(ids[:1200], source="cli", now=clock.now)  # two sources: one id still
    refused, folded, surviving = ids[10], ids[999], ids[1500]
    with store.session() as s:
        trial = Trial.__table__  # type: ignore[attr-defined]
        s.execute(sa.update(trial).where(trial.c.nct_id == refused).values(refused="refused"))
        s.execute(sa.update(trial).where(trial.c.nct_id == folded).values(canonical_id=surviving))
        # merged into a trial nobody watches: still fetched, under its own id
        s.execute(sa.update(trial).where(trial.c.nct_id == ids[5]).values(canonical_id="NCT1"))
    chunks = list(store.iter_watched_ids(1000, to_fetch=True))
    assert [len(c) for c in chunks] == [1000, 1000, 498]
    assert [i for c in chunks for i in c] == [i for i in ids if i not in (refused, folded)]
    assert [len(c) for c in store.iter_watched_ids(1000)] == [1000, 1000, 500]


def test_labels_and_titles_for_reports(store: Store, clock: FakeClock) -> None:
    source = FakeSource([load_record(f"{i}.json") for i in (A, B)])
    run_sync(source=source, store=store, watchlist=[WatchItem(A, "Alpha")], clock=clock)
    store.add_watches([B], source="cli", now=clock.now)
    titles = store.trial_titles([A, B, C])
    assert titles[A][0] == "Alpha"
    assert titles[C] == (None, None)
    assert store.resolve_trial("alpha") == [A]
    assert store.resolve_trial(A.lower()) == [A]
    assert store.resolve_trial("nothing") == []


def test_an_import_is_one_transaction(store: Store, clock: FakeClock) -> None:
    """``watch import`` watches the trials and keeps what the text printed beside them
    together: when keeping the printed part fails, no trial is watched either."""

    twice = [(A, "RECRUITING", "Recruiting", None), (A, "COMPLETED", "Completed", None)]
    with pytest.raises(StorageError):  # the same trial printed twice breaks the printed table
        store.import_watches([A, B], twice, origin="review.txt", now=clock.now)
    assert store.watch_entries() == []
    assert store.printed_entries() == []

    change, printed = store.import_watches(
        [A, B], [(A, "RECRUITING", "Recruiting", None)], origin="review.txt", now=clock.now
    )
    assert change.added == (A, B) and printed == 1
    assert [(e.nct_id, e.sources) for e in store.watch_entries()] == [
        (A, ("import",)),
        (B, ("import",)),
    ]
    assert [p.nct_id for p in store.printed_entries()] == [A]


def _rows_carried(parameters: object, executemany: bool) -> int:
    """How many rows a statement's parameters carry: its parameter sets (an executemany), or
    its values over the 8 columns of the widest row written (an array's values, PostgreSQL's
    ``= ANY``, each counted), rounded up."""
    if executemany:
        assert isinstance(parameters, (list, tuple))
        return len(parameters)
    values = parameters.values() if isinstance(parameters, dict) else parameters or ()
    assert isinstance(values, Iterable)
    return -(-sum(len(v) if isinstance(v, (list, tuple)) else 1 for v in values) // 8)


def test_a_large_import_is_written_in_bounded_statements_in_one_transaction(
    store: Store, clock: FakeClock
) -> None:
    """10 statements' worth of ids: each lookup and insert carries at most
    ROWS_PER_STATEMENT of them, never the whole import at once (whose rows, held whole by
    SQLAlchemy and the driver, took 215 MiB at 100,000)."""
    ids = [f"NCT{20000000 + i:08d}" for i in range(10 * ROWS_PER_STATEMENT)]
    printed = [(i, "RECRUITING", "Recruiting", f"Trial {i}") for i in ids]
    carried: list[int] = []
    statements: list[str] = []

    def count(
        conn: object, cursor: object, sql: str, params: object, ctx: object, many: bool
    ) -> None:
        if sql.lstrip().upper().startswith(("INSERT", "SELECT", "DELETE", "UPDATE")):
            carried.append(_rows_carried(params, many))
            statements.append(" ".join(sql.split()[:3]).upper())

    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        change, stored = store.import_watches(
            ids, iter(printed), origin="t.txt", now=clock.now, printed_on="2020-01-01"
        )
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)
    assert change.added == tuple(ids) and stored == len(ids)
    assert max(carried) <= ROWS_PER_STATEMENT, sorted(carried)[-5:]
    assert len(carried) >= 10 * 3  # looked up, watched, given trial rows, chunk by chunk
    # Every lookup of the watch table before its first insert: PostgreSQL, its statistics
    # still those of an empty table, scanned all of it for each lookup made after one.
    first_insert = statements.index("INSERT INTO WATCH")
    assert not any(q.startswith("SELECT WATCH.") for q in statements[first_insert:])
    assert store.watched_count() == len(ids)
    assert all(t is not None and t.added_at is not None for t in map(store.trial, ids[::499]))
    assert len(store.printed_entries()) == len(ids)
    # Imported again: already watched, printed entries replaced (not doubled).
    again, stored = store.import_watches(ids, iter(printed), origin="t.txt", now=clock.now)
    assert again.already == tuple(ids) and not again.added and stored == len(ids)


def test_an_import_that_fails_part_way_leaves_nothing(store: Store, clock: FakeClock) -> None:
    ids = [f"NCT{30000000 + i:08d}" for i in range(3 * ROWS_PER_STATEMENT)]

    def printed() -> Iterator[tuple[str, str | None, str | None, str | None]]:
        for n, nct_id in enumerate(ids):
            if n == 2 * ROWS_PER_STATEMENT + 1:  # after two chunks were written
                raise RuntimeError("the disk is full")
            yield nct_id, None, None, "A title"

    with pytest.raises(RuntimeError):
        store.import_watches(ids, printed(), origin="t.txt", now=clock.now)
    assert store.watched_count() == 0
    assert store.trial(ids[0]) is None
    assert store.printed_entries() == []
