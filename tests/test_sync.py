"""The sync use case against a fake source and a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.conftest import FakeClock, load_record
from tests.fakes.source import FakeSource
from trialwatch.exceptions import ConcurrentUpdateError, TransientFetchError
from trialwatch.models import Category, FieldChange, Severity, WatchItem
from trialwatch.storage import (
    ChangeEvent,
    Notification,
    RecordVersion,
    Route,
    Store,
    SyncRun,
    Trial,
)
from trialwatch.sync import run_sync

IDS = ["NCT00712335", "NCT01213277", "NCT01339377", "NCT02967393", "NCT04650945", "NCT05915845"]


def _watch(ids: list[str] = IDS) -> list[WatchItem]:
    return [WatchItem(i, f"label {i}", "Table 1") for i in ids]


def _source() -> FakeSource:
    return FakeSource([load_record(f"{i}.json") for i in IDS])


def _counts(store: Store) -> dict[str, int]:
    return {
        m.__name__: store.count(m)
        for m in (Trial, RecordVersion, ChangeEvent, SyncRun, Notification)
    }


def _set_status(record: dict[str, Any], status: str) -> None:
    record["protocolSection"]["statusModule"]["overallStatus"] = status


def _publish_status(source: FakeSource, nct_id: str, status: str) -> None:
    """The registry changes one trial's status and refreshes its data (a new dataTimestamp)."""
    record = copy.deepcopy(source.records[nct_id])
    _set_status(record, status)
    source.put(record)
    source.data_timestamp = "2026-11-21T09:00:06"


def _sync(store: Store, source: FakeSource, clock: FakeClock, **kw: Any) -> Any:
    return run_sync(
        source=source, store=store, watchlist=kw.pop("watch", _watch()), clock=clock, **kw
    )


def test_first_sync_is_a_baseline(store: Store, clock: FakeClock) -> None:
    result = _sync(store, _source(), clock)
    assert result.baselined == len(IDS)
    assert result.change_count == 0
    assert result.requests == 2  # /version + one /studies
    counts = _counts(store)
    assert counts["Trial"] == len(IDS)
    assert counts["RecordVersion"] == len(IDS)
    assert counts["ChangeEvent"] == 0
    assert counts["SyncRun"] == 1
    trial = store.trial("NCT01213277")
    assert trial is not None and trial.overall_status == "SUSPENDED"
    assert trial.last_checked_at == clock.now


def test_idle_poll_makes_one_request_and_writes_nothing(store: Store, clock: FakeClock) -> None:
    source = _source()
    _sync(store, source, clock)
    before = _counts(store)
    source.requests_made = 0
    clock.advance(hours=1)
    result = _sync(store, source, clock)
    assert result.skipped
    assert source.requests_made == 1
    assert _counts(store) == before


def test_forced_sync_with_nothing_new_writes_nothing(store: Store, clock: FakeClock) -> None:
    source = _source()
    _sync(store, source, clock)
    before = _counts(store)
    result = _sync(store, source, clock, force=True)
    assert not result.skipped
    assert not result.wrote
    assert result.unchanged == len(IDS)
    assert _counts(store) == before


def test_status_change_is_recorded_exactly_once(store: Store, clock: FakeClock) -> None:
    source = _source()
    _sync(store, source, clock)
    _publish_status(source, "NCT05915845", "COMPLETED")
    clock.advance(days=1)

    result = _sync(store, source, clock)
    assert result.changed == 1
    [update] = result.updates
    assert update.nct_id == "NCT05915845"
    [change] = update.changes
    assert change.field == "overall_status"
    assert change.severity is Severity.CRITICAL
    assert change.summary == "Overall status: Unknown status → Completed"

    events = store.history("NCT05915845")
    assert [e.summary for e, _run in events] == [change.summary]
    trial = store.trial("NCT05915845")
    assert trial is not None
    assert trial.overall_status == "COMPLETED"
    assert trial.last_changed_at == clock.now
    assert trial.last_change_summary == change.summary

    # The same data again changes nothing, even forced.
    before = _counts(store)
    assert _sync(store, source, clock).skipped
    assert not _sync(store, source, clock, force=True).wrote
    assert _counts(store) == before


def test_registry_churn_is_not_a_change(store: Store, clock: FakeClock) -> None:
    ids = ["NCT05923112", "NCT05923281"]
    source = FakeSource([load_record(f"{i}.versionHolder-2023-06-28.json") for i in ids])
    _sync(store, source, clock, watch=_watch(ids))
    for i in ids:
        source.put(load_record(f"{i}.json"))
    source.data_timestamp = "2026-11-21T09:00:06"
    result = _sync(store, source, clock, watch=_watch(ids))
    assert result.changed == 0
    assert result.unchanged == 2
    assert store.count(ChangeEvent) == 0
    assert store.count(RecordVersion) == 2


def test_malformed_record_fails_only_that_trial(store: Store, clock: FakeClock) -> None:
    source = _source()
    broken = copy.deepcopy(source.records["NCT01339377"])
    del broken["protocolSection"]["statusModule"]
    source.put(broken)
    result = _sync(store, source, clock)
    assert [f.nct_id for f in result.failed] == ["NCT01339377"]
    assert "statusModule" in result.failed[0].reason
    assert result.baselined == len(IDS) - 1
    trial = store.trial("NCT01339377")
    assert trial is not None and trial.current_version_id is None
    assert trial.last_error is not None and "statusModule" in trial.last_error


def test_malformed_update_keeps_the_previous_snapshot(store: Store, clock: FakeClock) -> None:
    source = _source()
    _sync(store, source, clock)
    broken = copy.deepcopy(source.records["NCT02967393"])
    # An essential part: a malformed optional part is only unreadable (see the test below).
    broken["protocolSection"]["statusModule"]["overallStatus"] = {"status": "COMPLETED"}
    source.put(broken)
    source.data_timestamp = "2026-11-21T09:00:06"
    result = _sync(store, source, clock)
    assert [f.nct_id for f in result.failed] == ["NCT02967393"]
    assert store.count(ChangeEvent) == 0
    trial = store.trial("NCT02967393")
    assert trial is not None and trial.overall_status == "COMPLETED"


def test_an_unreadable_part_does_not_hide_a_termination(store: Store, clock: FakeClock) -> None:
    # Issue 11 item 9: a null secondaryOutcomes[0].measure used to fail the trial.
    source = _source()
    _publish_status(source, "NCT05915845", "RECRUITING")
    _sync(store, source, clock)
    _publish_status(source, "NCT05915845", "TERMINATED")
    record = copy.deepcopy(source.records["NCT05915845"])
    record["protocolSection"]["outcomesModule"]["primaryOutcomes"][0]["measure"] = None
    source.put(record)
    source.data_timestamp = "2026-11-22T09:00:06"
    clock.advance(days=1)

    result = _sync(store, source, clock)

    assert result.failed == ()
    [update] = result.updates
    assert [(c.field, c.severity) for c in update.changes] == [
        ("overall_status", Severity.CRITICAL),
        ("unreadable", Severity.MINOR),
    ]
    assert update.changes[0].summary == "Overall status: Recruiting → Terminated"
    trial = store.trial("NCT05915845")
    assert trial is not None and trial.overall_status == "TERMINATED"


def test_missing_trial_is_reported_never_deleted(store: Store, clock: FakeClock) -> None:
    source = _source()
    _sync(store, source, clock)
    del source.records["NCT04650945"]
    source.data_timestamp = "2026-11-21T09:00:06"
    result = _sync(store, source, clock)
    assert result.missing == ("NCT04650945",)
    trial = store.trial("NCT04650945")
    assert trial is not None
    assert trial.current_version_id is not None  # the last known snapshot stays
    assert trial.consecutive_misses == 1
    assert store.count(ChangeEvent) == 0


def test_alias_is_followed_to_its_canonical_record(store: Store, clock: FakeClock) -> None:
    source = FakeSource([load_record("NCT02300909.json")])
    result = _sync(store, source, clock, watch=_watch(["NCT02380456"]))
    assert result.aliases == {"NCT02380456": "NCT02300909"}
    trial = store.trial("NCT02380456")
    assert trial is not None and trial.canonical_id == "NCT02300909"
    assert trial.overall_status == "COMPLETED"


def test_fetch_failure_records_a_failed_run_and_changes_nothing(
    store: Store, clock: FakeClock
) -> None:
    source = _source()
    _sync(store, source, clock)
    before = _counts(store)
    source.data_timestamp = "2026-11-21T09:00:06"
    source.fail_after_version = TransientFetchError("CT.gov answered 503 after 5 attempts")
    with pytest.raises(TransientFetchError):
        _sync(store, source, clock)
    after = _counts(store)
    assert after["SyncRun"] == before["SyncRun"] + 1
    assert {k: v for k, v in after.items() if k != "SyncRun"} == {
        k: v for k, v in before.items() if k != "SyncRun"
    }
    assert store.consecutive_failures() == 1
    last = store.last_complete_run()
    assert last is not None and last.data_timestamp == "2026-11-20T09:00:06"
    # Recovery: the next sync fetches again (the failed run did not count as complete).
    source.fail_after_version = None
    assert not _sync(store, source, clock).skipped
    assert store.consecutive_failures() == 0


def test_a_crash_inside_the_write_leaves_the_previous_state(store: Store, clock: FakeClock) -> None:
    source = _source()
    _sync(store, source, clock)
    before = _counts(store)
    _publish_status(source, "NCT05915845", "COMPLETED")

    def exploding_router(nct_id: str, label: str | None, change: FieldChange) -> list[Route]:
        raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        _sync(store, source, clock, router=exploding_router)
    assert _counts(store) == before
    trial = store.trial("NCT05915845")
    assert trial is not None and trial.overall_status == "UNKNOWN"
    # ... and the next sync detects the change as if nothing had happened.
    result = _sync(store, source, clock)
    assert result.change_count == 1


def test_watchlist_changes_are_applied_and_force_a_fetch(store: Store, clock: FakeClock) -> None:
    source = _source()
    _sync(store, source, clock, watch=_watch(IDS[:3]))
    result = _sync(store, source, clock, watch=_watch(IDS[1:]))
    assert not result.skipped  # same dataTimestamp, but the watchlist changed
    assert result.baselined == 3
    dropped = store.trial(IDS[0])
    assert dropped is not None and not dropped.watched
    assert {t.nct_id for t in store.trials()} == set(IDS[1:])


def test_notifications_are_queued_in_the_sync_transaction(store: Store, clock: FakeClock) -> None:
    source = _source()

    def router(nct_id: str, label: str | None, change: FieldChange) -> list[Route]:
        routes = [Route("email", "clinician@example.org", "immediate", None)]
        if change.category is Category.STATUS:
            routes.append(Route("email", "analyst@example.org", "daily", "digest"))
        return routes

    _sync(store, source, clock, router=router)
    assert store.count(Notification) == 0  # a baseline notifies nobody
    for nct_id in ("NCT05915845", "NCT01213277"):
        record = copy.deepcopy(source.records[nct_id])
        _set_status(record, "COMPLETED")
        source.put(record)
    source.data_timestamp = "2026-11-21T09:00:06"
    _sync(store, source, clock, router=router)
    notes = store.notifications()
    assert sorted((n.recipient, n.status) for n in notes) == [
        ("analyst@example.org", "digest_wait"),
        ("clinician@example.org", "pending"),
    ]
    immediate = next(n for n in notes if n.mode == "immediate")
    assert len(immediate.change_ids) == 2  # one message per recipient per run, not per change


def test_recovery_is_recorded_without_refetching(store: Store, clock: FakeClock) -> None:
    source = _source()
    _sync(store, source, clock)
    source.fail_with = TransientFetchError("connection refused")
    for _ in range(2):
        with pytest.raises(TransientFetchError):
            _sync(store, source, clock)
    assert store.consecutive_failures() == 2
    source.fail_with = None
    source.requests_made = 0
    result = _sync(store, source, clock)  # CT.gov back, its data unchanged meanwhile
    assert result.skipped
    assert result.wrote
    assert source.requests_made == 1
    assert store.consecutive_failures() == 0
    before = _counts(store)
    assert not _sync(store, source, clock).wrote  # and then idle again: nothing written
    assert _counts(store) == before


def test_a_sync_overtaken_by_another_writes_nothing(store: Store, clock: FakeClock) -> None:
    source = _source()
    _sync(store, source, clock)
    _publish_status(source, "NCT05915845", "COMPLETED")

    class Overtaken:
        """Our sync decided on the old state; another one commits before we write."""

        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        def apply_sync(self, plan: Any, **kwargs: Any) -> int:
            _sync(store, source, clock)  # the other process wins the race
            return store.apply_sync(plan, **kwargs)

    with pytest.raises(ConcurrentUpdateError, match="run the sync again"):
        run_sync(source=source, store=Overtaken(), watchlist=_watch(), clock=clock)
    assert [e.summary for e, _ in store.history("NCT05915845")] == [
        "Overall status: Unknown status → Completed"
    ]
