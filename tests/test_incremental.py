"""Incremental mode: only what CT.gov updated is fetched, and nothing is missed for it.

The property: over random refreshes, an incremental sync (with its weekly full sweep) records
exactly the changes a full sync of every trial records.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests import storage_reads
from tests.conftest import FakeClock
from tests.fakes.source import FakeSource
from tests.records import change_events, distinct_records, edit_status
from trialwatch.models import WatchItem
from trialwatch.storage import Store
from trialwatch.sync import SyncResult, run_sync

STATUSES = ["RECRUITING", "ACTIVE_NOT_RECRUITING", "COMPLETED", "SUSPENDED", "TERMINATED"]


def test_an_incremental_sync_fetches_only_the_watched_updates(
    store: Store, clock: FakeClock
) -> None:
    source = FakeSource(distinct_records(40))
    watch = [WatchItem(i) for i in sorted(source.records)]
    first = run_sync(
        source=source,
        store=store,
        clock=clock,
        watchlist=watch,
        batch_size=10,
        incremental_above=20,
    )
    assert first.kind == "full" and first.baselined == 40  # never swept: a full sync first
    assert first.requests == 1 + 4
    edit_status(
        source, "NCT09000003", "SUSPENDED", "2026-11-21"
    )  # was COMPLETED: a status that moves (a last-update date alone is no change)
    edit_status(source, "NCT09000017", "TERMINATED", "2026-11-21")
    source.data_timestamp = "2026-11-21T09:00:06"
    source.requested.clear()
    clock.advance(days=1)
    result = run_sync(
        source=source,
        store=store,
        clock=clock,
        watchlist=watch,
        batch_size=10,
        incremental_above=20,
    )
    assert result.kind == "incremental"
    assert source.requested == [["NCT09000003", "NCT09000017"]]
    assert result.requests == 3  # /version, the updates query, one batch of ids
    assert sorted(u.nct_id for u in result.updates) == ["NCT09000003", "NCT09000017"]
    # An idle weekday afterwards: one request.
    assert run_sync(
        source=source, store=store, clock=clock, watchlist=watch, incremental_above=20
    ).skipped
    # A full sweep is asked for (weekly, or `sync --full`): everything is fetched.
    swept = run_sync(
        source=source,
        store=store,
        clock=clock,
        watchlist=watch,
        batch_size=10,
        incremental_above=20,
        full=True,
        force=True,
    )
    assert swept.kind == "full" and swept.checked == 40 and swept.change_count == 0


def test_a_sweep_older_than_a_week_makes_the_next_sync_a_full_one(
    store: Store, clock: FakeClock
) -> None:
    source = FakeSource(distinct_records(30))
    watch = [WatchItem(i) for i in sorted(source.records)]
    run_sync(source=source, store=store, clock=clock, watchlist=watch, incremental_above=10)
    clock.advance(days=9)
    source.data_timestamp = "2026-11-29T09:00:06"
    result = run_sync(
        source=source, store=store, clock=clock, watchlist=watch, incremental_above=10
    )
    assert result.kind == "full"


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    days=st.lists(
        st.lists(
            # Posted 3 times in 4: the change-for-change comparison needs every edit posted.
            st.tuples(st.integers(0, 15), st.sampled_from(STATUSES), st.integers(0, 3).map(bool)),
            max_size=6,
        ),
        min_size=1,
        max_size=4,
    )
)
@example(  # several days of posted edits: the comparison of events always runs once
    days=[
        [(0, "COMPLETED", True), (5, "SUSPENDED", True)],
        [(0, "RECRUITING", True), (9, "TERMINATED", True), (15, "COMPLETED", True)],
    ]
)
def test_incremental_and_full_record_the_same_changes(
    days: list[list[tuple[int, str, bool]]],
) -> None:
    folder = tempfile.mkdtemp()
    try:
        incremental = Store.open(f"sqlite:///{folder}/incremental.db")
        full = Store.open(f"sqlite:///{folder}/full.db")
        source = FakeSource(distinct_records(16), data_timestamp="2026-11-02T09:00:06")
        ids = sorted(source.records)
        watch = [WatchItem(i) for i in ids]
        now = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)

        def sync_both(*, sweep: bool = False) -> None:
            run_sync(
                source=source,
                store=incremental,
                clock=lambda: now,
                watchlist=watch,
                batch_size=7,
                incremental_above=10,
                full=sweep,
                force=sweep,
            )
            run_sync(source=source, store=full, clock=lambda: now, watchlist=watch, batch_size=7)

        sync_both()
        silent = False
        for day_no, edits in enumerate(days, start=3):
            day = f"2026-11-{day_no:02d}"
            for index, status, posted in edits:
                edit_status(source, ids[index], status, day, posted=posted)
                silent = silent or not posted
            source.data_timestamp = f"{day}T09:00:06"
            now += timedelta(days=1)
            sync_both()
            if not silent:  # every edit so far was posted: the two agree change for change
                assert change_events(incremental) == change_events(full)
        # Edits CT.gov made without moving LastUpdatePostDate wait for the sweep; after it,
        # both hold the same current state of every trial whatever happened.
        now += timedelta(hours=1)
        sync_both(sweep=True)
        if not silent:
            assert change_events(incremental) == change_events(full)
        assert {t.nct_id: t.current_hash for t in storage_reads.trials(incremental)} == {
            t.nct_id: t.current_hash for t in storage_reads.trials(full)
        }
        incremental.close()
        full.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_data_timestamp_that_is_no_date_makes_a_full_sync_not_a_crash(
    store: Store, clock: FakeClock
) -> None:
    source = FakeSource(distinct_records(30), data_timestamp="soon")
    watch = [WatchItem(i) for i in sorted(source.records)]
    run_sync(source=source, store=store, clock=clock, watchlist=watch, incremental_above=10)
    source.data_timestamp = "later"  # a refresh, with no day to ask CT.gov for updates since
    clock.advance(days=1)
    result = run_sync(
        source=source, store=store, clock=clock, watchlist=watch, incremental_above=10
    )
    assert result.kind == "full" and result.checked == 30


def test_a_record_that_failed_to_read_is_fetched_again_at_the_next_refresh(
    store: Store, clock: FakeClock
) -> None:
    source = FakeSource(distinct_records(40))
    watch = [WatchItem(i) for i in sorted(source.records)]

    def sync(**kw: bool) -> SyncResult:
        return run_sync(
            source=source,
            store=store,
            clock=clock,
            watchlist=watch,
            batch_size=10,
            incremental_above=20,
            **kw,
        )

    sync()  # the first sync of a large watch set is a full one
    # A refresh breaks one record (no overall status): the weekly sweep reads it, and fails it.
    broken = source.records["NCT09000017"]
    del broken["protocolSection"]["statusModule"]["overallStatus"]
    source.data_timestamp = "2026-11-21T09:00:06"
    clock.advance(days=1)
    swept = sync(full=True)
    assert swept.kind == "full" and [f.nct_id for f in swept.failed] == ["NCT09000017"]
    # CT.gov repairs it at the next refresh, TERMINATED, without moving its LastUpdatePostDate.
    edit_status(source, "NCT09000017", "TERMINATED", "", posted=False)
    source.data_timestamp = "2026-11-22T09:00:06"
    source.requested.clear()
    clock.advance(days=1)
    result = sync()
    assert result.kind == "incremental"
    assert source.requested == [["NCT09000017"]]
    assert ("NCT09000017", "overall_status") in {(e[0], e[1]) for e in change_events(store)}
