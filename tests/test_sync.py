"""The sync use case against a fake source and a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sqlmodel import select

from tests import storage_reads
from tests.conftest import FakeClock, load_record
from tests.fakes.source import FakeSource
from trialwatch.exceptions import ConcurrentUpdateError, StaleDataError, TransientFetchError
from trialwatch.models import Category, FieldChange, Route, RunStart, Severity, WatchItem
from trialwatch.storage import (
    ChangeEvent,
    Notification,
    RecordVersion,
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
    last = store.last_complete_run()
    assert last is not None and last.finished_at == clock.now


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


def test_forced_sync_with_nothing_new_writes_only_its_run(store: Store, clock: FakeClock) -> None:
    source = _source()
    _sync(store, source, clock)
    before = _counts(store)
    with store.session() as s:
        trials_before = [t.model_dump() for t in s.exec(select(Trial).order_by(Trial.nct_id))]
    result = _sync(store, source, clock, force=True)
    assert not result.skipped
    assert result.unchanged == len(IDS)
    assert _counts(store) == {**before, "SyncRun": before["SyncRun"] + 1}
    with store.session() as s:
        trials_after = [t.model_dump() for t in s.exec(select(Trial).order_by(Trial.nct_id))]
    assert trials_after == trials_before  # no per-trial row is written


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

    events = storage_reads.history(store, "NCT05915845")
    assert [e.summary for e, _run in events] == [change.summary]
    trial = store.trial("NCT05915845")
    assert trial is not None
    assert trial.overall_status == "COMPLETED"
    assert trial.last_changed_at == clock.now
    assert trial.last_change_summary == change.summary

    # The same data again changes nothing, even forced.
    before = _counts(store)
    assert _sync(store, source, clock).skipped
    assert _sync(store, source, clock, force=True).change_count == 0
    assert _counts(store) == {**before, "SyncRun": before["SyncRun"] + 1}


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


def test_a_record_served_without_half_its_modules_changes_nothing(
    store: Store, clock: FakeClock
) -> None:
    """A record that arrives without its design, eligibility and conditions (modules every
    registered study has, which its last version had) is served incomplete: compared, it read
    as an enrollment, a phase and every criterion removed (dozens of changes), then added back
    with the next complete answer. The trial fails this time and keeps its version; the
    complete record afterwards is unchanged, and says nothing."""
    nct_id = "NCT02967393"
    source = _source()
    _sync(store, source, clock)
    complete = copy.deepcopy(source.records[nct_id])
    half = copy.deepcopy(complete)
    for module in ("designModule", "eligibilityModule", "conditionsModule", "outcomesModule"):
        del half["protocolSection"][module]
    source.put(half)
    source.data_timestamp = "2026-11-21T09:00:06"
    clock.advance(days=1)

    result = _sync(store, source, clock)

    [failed] = result.failed
    assert failed.nct_id == nct_id
    assert failed.reason.startswith(
        "record: arrived without its conditionsModule, designModule, eligibilityModule"
    )
    assert result.updates == () and store.count(ChangeEvent) == 0
    trial = store.trial(nct_id)
    assert trial is not None and trial.last_error == failed.reason

    source.put(complete)
    source.data_timestamp = "2026-11-22T09:00:06"
    clock.advance(days=1)
    again = _sync(store, source, clock)
    assert again.failed == () and again.updates == ()
    assert store.count(ChangeEvent) == 0
    trial = store.trial(nct_id)
    assert trial is not None and trial.last_error is None


def test_a_module_the_last_version_did_not_have_is_no_reason_to_fail(
    store: Store, clock: FakeClock
) -> None:
    """Only a module the stored version holds something from makes a record incomplete: a
    record that never had a design module (a bare one, as tests and old registrations have)
    is compared as before."""
    nct_id = "NCT02967393"
    source = _source()
    bare = copy.deepcopy(source.records[nct_id])
    del bare["protocolSection"]["designModule"]
    source.put(bare)
    _sync(store, source, clock)
    _publish_status(source, nct_id, "TERMINATED")
    clock.advance(days=1)
    result = _sync(store, source, clock)
    assert result.failed == ()
    [update] = result.updates
    assert [c.field for c in update.changes] == ["overall_status"]


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


class _CrashingStore:
    """The store, but the process "dies" inside the write transaction of page ``crash_at``:
    the page's statements ran, the commit never happens."""

    def __init__(self, store: Store, crash_at: int) -> None:
        self.store = store
        self.crash_at = crash_at

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def write_page(self, run: Any, page: int, outcomes: Any, **kw: Any) -> int:
        if page != self.crash_at:
            return self.store.write_page(run, page, outcomes, **kw)
        with self.store.session() as s:
            self.store._write_page(
                s,
                run,
                page,
                [o for o in outcomes if o.kind != "unchanged"],
                kw["now"],
                kw["data_timestamp"],
            )
            raise RuntimeError("power cut")


def test_a_crash_inside_a_page_write_leaves_that_page_as_it_was(
    store: Store, clock: FakeClock
) -> None:
    source = _source()
    _sync(store, source, clock, batch_size=2)
    before = _counts(store)
    for nct_id in IDS:  # one change on every page
        _publish_status(source, nct_id, "WITHDRAWN")
    with pytest.raises(RuntimeError, match="power cut"):
        run_sync(
            source=source,
            store=_CrashingStore(store, crash_at=1),  # type: ignore[arg-type]
            watchlist=_watch(),
            clock=clock,
            batch_size=2,
        )
    after = _counts(store)
    # Page 0 committed whole (2 trials: versions and events), page 1 not at all, page 2 never ran.
    assert after["ChangeEvent"] == before["ChangeEvent"] + 2
    assert after["RecordVersion"] == before["RecordVersion"] + 2
    statuses = {i: store.trial(i).overall_status for i in IDS}  # type: ignore[union-attr]
    assert [statuses[i] == "WITHDRAWN" for i in sorted(IDS)] == [True] * 2 + [False] * 4
    [failed] = [r for r in store.recent_runs() if r.status == "failed"]
    assert "power cut" in (failed.errors_json or "")
    # ... and the next sync detects exactly the rest, as if nothing had happened.
    result = _sync(store, source, clock, batch_size=2)
    assert result.change_count == 4
    assert store.count(ChangeEvent) == before["ChangeEvent"] + 6


class _Killed(BaseException):
    """Stands for kill -9: no cleanup runs after it."""


class _DiesAfterFirstPage(_CrashingStore):
    """The process dies once page 0 committed: page 1 never writes, the run never ends."""

    def write_page(self, run: Any, page: int, outcomes: Any, **kw: Any) -> int:
        if page == 1:
            raise _Killed
        return self.store.write_page(run, page, outcomes, **kw)

    def finish_run(self, run: Any, totals: Any) -> None:
        raise _Killed


def test_a_process_killed_mid_run_owes_what_it_committed(store: Store, clock: FakeClock) -> None:
    """kill -9 after a page committed: the run stays 'running'; the next sync closes it and
    releases the notifications its committed page owes — once."""
    source = _source()
    router = _to_clinician
    _sync(store, source, clock, batch_size=2, router=router)
    for nct_id in IDS:
        _publish_status(source, nct_id, "WITHDRAWN")

    with pytest.raises(_Killed):
        run_sync(
            source=source,
            store=_DiesAfterFirstPage(store, 1),  # type: ignore[arg-type]
            watchlist=_watch(),
            clock=clock,
            batch_size=2,
            router=router,
        )
    assert [r.status for r in store.recent_runs(1)] == ["running"]
    assert [n.status for n in store.notifications()] == ["held"]  # not sendable yet
    result = _sync(store, source, clock, batch_size=2, router=router)
    assert result.change_count == 4
    runs = store.recent_runs(2)
    assert [r.status for r in runs] == ["complete", "interrupted"]
    notes = sorted(store.notifications(), key=lambda n: n.id or 0)
    assert [n.status for n in notes] == ["pending", "pending"]
    owed = sorted(i for n in notes for i in n.change_ids)
    with store.session() as s:
        events = sorted(e for e in s.exec(select(ChangeEvent.id)))
    assert owed == events[-6:]  # every change of this refresh owed exactly once


def _to_clinician(nct_id: str, label: str | None, change: FieldChange) -> list[Route]:
    return [Route("email", "clinician@example.org", "immediate", None)]


def test_newly_watched_trials_are_fetched_without_a_refresh(store: Store, clock: FakeClock) -> None:
    source = _source()
    _sync(store, source, clock, watch=_watch(IDS[:3]))
    source.requests_made = 0
    result = _sync(store, source, clock, watch=_watch(IDS[1:]))
    assert not result.skipped  # same dataTimestamp, but three trials were never fetched
    assert result.kind == "recheck"
    assert result.baselined == 3
    assert result.checked == 3  # only the new ones: the others are current
    assert source.requests_made == 2
    assert not storage_reads.is_watched(store, IDS[0])
    assert store.trial(IDS[0]) is not None  # its history is kept
    assert {t.nct_id for t in storage_reads.trials(store)} == set(IDS[1:])
    assert _sync(store, source, clock, watch=_watch(IDS[1:])).skipped


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

        def write_page(self, run: Any, page: int, outcomes: Any, **kw: Any) -> int:
            _sync(store, source, clock)  # the other process wins the race
            return store.write_page(run, page, outcomes, **kw)

    with pytest.raises(ConcurrentUpdateError, match="run the sync again"):
        run_sync(source=source, store=Overtaken(), watchlist=_watch(), clock=clock)
    assert [e.summary for e, _ in storage_reads.history(store, "NCT05915845")] == [
        "Overall status: Unknown status → Completed"
    ]


def test_a_sync_whose_run_was_taken_for_dead_writes_no_further_page(
    store: Store, clock: FakeClock
) -> None:
    """The sync lock is lost mid-run (its PostgreSQL session killed, its lock file deleted):
    another sync takes this run for dead, closes it and releases what its committed pages owe.
    A page this sync wrote after that would owe its notifications to a closed run, held
    forever: recorded, never sent. It must write nothing more, and the changes it did not
    write are found by the other sync — each owed exactly once."""
    source = _source()
    router = _to_clinician
    _sync(store, source, clock, batch_size=2, router=router)
    for nct_id in IDS:
        _publish_status(source, nct_id, "WITHDRAWN")

    class LockLostAfterFirstPage:
        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        def write_page(self, run: Any, page: int, outcomes: Any, **kw: Any) -> int:
            if page == 1:
                store.recover_interrupted(now=clock())  # the other sync starts
            return store.write_page(run, page, outcomes, **kw)

    with pytest.raises(ConcurrentUpdateError, match="run the sync again"):
        run_sync(
            source=source,
            store=LockLostAfterFirstPage(),  # type: ignore[arg-type]
            watchlist=_watch(),
            clock=clock,
            batch_size=2,
            router=router,
        )
    result = _sync(store, source, clock, batch_size=2, router=router)  # the other sync goes on
    assert result.change_count == 4
    notes = store.notifications()
    assert {n.status for n in notes} == {"pending"}  # nothing held by a closed run
    owed = sorted(i for n in notes for i in n.change_ids)
    with store.session() as s:
        events = sorted(e for e in s.exec(select(ChangeEvent.id)))
    assert owed == events[-6:]  # every change of this refresh owed exactly once


def test_a_query_answer_is_not_written_for_a_run_taken_for_dead(
    store: Store, clock: FakeClock
) -> None:
    """A query's answer owes notifications under its run too: once another sync closed the
    run, it is refused like a page, and the next sync's query finds what entered or left."""
    run = store.begin_run(RunStart("a" * 32, clock(), False, "full", "2.0.5", None))
    store.recover_interrupted(now=clock())  # another sync took it for dead
    with pytest.raises(ConcurrentUpdateError, match="run the sync again"):
        store.write_query(
            run,
            -1,
            name="selinexor",
            params_hash="h",
            matches=[],
            changes=[],
            track=False,
            now=clock(),
            data_timestamp=None,
        )
    assert store.query_baseline("selinexor", "h") is None


def test_a_short_read_is_fetched_again_at_the_next_poll(store: Store, clock: FakeClock) -> None:
    """CT.gov leaves a trial off a page in the very refresh in which it changed: the next poll
    (same dataTimestamp) fetches that trial again instead of saying "Nothing to do"."""
    source = _source()
    _sync(store, source, clock)
    _publish_status(source, "NCT05915845", "COMPLETED")
    source.short = {"NCT05915845"}
    first = _sync(store, source, clock)
    assert first.missing == ("NCT05915845",) and first.change_count == 0
    source.short = set()
    source.requested.clear()
    second = _sync(store, source, clock)  # the data timestamp has not moved
    assert not second.skipped
    assert source.requested == [["NCT05915845"]]  # just that trial, one request
    assert [c.summary for u in second.updates for c in u.changes] == [
        "Overall status: Unknown status → Completed"
    ]
    assert _sync(store, source, clock).skipped  # and then the poll is idle again


def test_an_id_the_registry_never_knew_does_not_make_every_poll_fetch(
    store: Store, clock: FakeClock
) -> None:
    source = _source()
    watch = _watch([*IDS, "NCT09999999"])
    first = _sync(store, source, clock, watch=watch)
    assert first.newly_missing == ("NCT09999999",)
    source.requests_made = 0
    assert _sync(store, source, clock, watch=watch).skipped
    assert source.requests_made == 1
    source.data_timestamp = "2026-11-21T09:00:06"
    again = _sync(store, source, clock, watch=watch)
    assert again.missing == ("NCT09999999",)
    assert again.newly_missing == ()  # reported once, not at every sync


def test_a_trial_back_from_missing_loses_its_flag_even_when_forced(
    store: Store, clock: FakeClock
) -> None:
    source = _source()
    _sync(store, source, clock)
    record = source.records.pop("NCT04650945")
    source.data_timestamp = "2026-11-21T09:00:06"
    _sync(store, source, clock)
    trial = store.trial("NCT04650945")
    assert trial is not None and trial.consecutive_misses == 1 and trial.last_error
    source.put(record)  # back, unchanged, in the same refresh
    _sync(store, source, clock, force=True)
    trial = store.trial("NCT04650945")
    assert trial is not None
    assert (trial.consecutive_misses, trial.last_error, trial.recheck) == (0, None, False)
    assert store.count(ChangeEvent) == 0


def test_a_flood_of_changes_becomes_one_summary_per_recipient(
    store: Store, clock: FakeClock
) -> None:
    from trialwatch.sync import FloodRule

    source = _source()
    _sync(store, source, clock, router=_to_clinician)
    for nct_id in IDS:
        _publish_status(source, nct_id, "WITHDRAWN")
    result = _sync(
        store, source, clock, router=_to_clinician, flood=FloodRule(max_trials=5, max_fraction=0)
    )
    assert result.flooded and result.flooded_trials == 6
    [note] = store.notifications()
    assert (note.kind, note.recipient, len(note.change_ids)) == (
        "summary",
        "clinician@example.org",
        6,
    )
    # Below the limit, the usual report.
    for nct_id in IDS[:2]:
        _publish_status(source, nct_id, "COMPLETED")
    source.data_timestamp = "2026-11-22T09:00:06"
    result = _sync(
        store, source, clock, router=_to_clinician, flood=FloodRule(max_trials=5, max_fraction=0)
    )
    assert not result.flooded
    assert [n.kind for n in store.notifications()] == ["summary", "changes"]


def test_a_new_normalizer_rebaselines_silently_and_still_reports_real_changes(
    store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A release that reads records differently (here: a new tracked field, the official
    title read as the brief one) re-reads each stored record: no change events, no emails for
    that — while a real change published in the same refresh is reported, once."""
    import dataclasses

    import trialwatch.decision as decision_module
    import trialwatch.prepare as prepare_module
    from trialwatch.normalize import normalize as normalize_v1

    source = _source()
    _sync(store, source, clock, router=_to_clinician)
    _publish_status(source, "NCT05915845", "COMPLETED")

    def normalize_v2(record: Any) -> Any:
        snapshot = normalize_v1(record)
        return dataclasses.replace(snapshot, brief_title=f"v2: {snapshot.brief_title}")

    # Records are read where they are prepared, and read again where a page is decided.
    monkeypatch.setattr(prepare_module, "normalized_dict", lambda r: normalize_v2(r).to_dict())
    monkeypatch.setattr(decision_module, "normalize", normalize_v2)
    newer = decision_module.NORMALIZER_VERSION + 1
    monkeypatch.setattr(decision_module, "NORMALIZER_VERSION", newer)
    result = _sync(store, source, clock, router=_to_clinician)
    assert result.rebaselined == len(IDS)
    assert [(u.nct_id, [c.summary for c in u.changes]) for u in result.updates] == [
        ("NCT05915845", ["Overall status: Unknown status → Completed"])
    ]
    [note] = store.notifications()
    assert len(note.change_ids) == 1
    assert {t.normalizer_version for t in storage_reads.trials(store)} == {newer}
    assert all((t.brief_title or "").startswith("v2: ") for t in storage_reads.trials(store))
    # Done once: the next forced sync finds nothing to re-read and nothing new.
    again = _sync(store, source, clock, force=True, router=_to_clinician)
    assert (again.rebaselined, again.change_count) == (0, 0)
    assert len(store.notifications()) == 1


def test_a_damaged_stored_record_is_rebaselined_not_a_crash(
    store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A newer normalizer re-reads each stored record; one whose bytes were damaged (a bad
    disk, a hand edit) cannot be, so its trial takes the new reading silently, like one the
    new normalizer cannot read."""
    import trialwatch.decision as decision_module
    from trialwatch.storage._schema import RecordVersion

    source = _source()
    _sync(store, source, clock, router=_to_clinician)
    with store.session() as s:
        damaged = s.exec(select(RecordVersion).where(RecordVersion.nct_id == IDS[0])).one()
        damaged.raw_record = b"\x28\xb5\x2f\xfd not zstd after all"
        s.add(damaged)
    newer = decision_module.NORMALIZER_VERSION + 1
    monkeypatch.setattr(decision_module, "NORMALIZER_VERSION", newer)
    result = _sync(store, source, clock, force=True, router=_to_clinician)
    assert result.rebaselined == len(IDS) and result.change_count == 0
    assert store.notifications() == []


def test_what_a_killed_run_owes_is_released_even_while_ctgov_is_down(
    store: Store, clock: FakeClock
) -> None:
    source = _source()
    _sync(store, source, clock, router=_to_clinician, batch_size=2)
    for nct_id in IDS:
        _publish_status(source, nct_id, "WITHDRAWN")

    with pytest.raises(_Killed):
        run_sync(
            source=source,
            store=_DiesAfterFirstPage(store, 1),  # type: ignore[arg-type]
            watchlist=_watch(),
            clock=clock,
            batch_size=2,
            router=_to_clinician,
        )
    source.fail_with = TransientFetchError("CT.gov answered 503 after 5 attempts")
    with pytest.raises(TransientFetchError):
        _sync(store, source, clock, router=_to_clinician)
    [note] = store.notifications()
    assert note.status == "pending" and len(note.change_ids) == 2  # sendable now


def test_data_older_than_the_last_complete_run_is_a_transient_failure(
    store: Store, clock: FakeClock
) -> None:
    from tests.fakes.source import FakeSource
    from tests.records import change_events, distinct_records, edit_status
    from trialwatch.exceptions import StaleDataError, TransientFetchError
    from trialwatch.models import WatchItem

    source = FakeSource(distinct_records(3))
    watch = [WatchItem(i) for i in sorted(source.records)]
    run_sync(source=source, store=store, clock=clock, watchlist=watch)
    fresh = dict(source.records)
    edit_status(source, "NCT09000001", "COMPLETED", "2026-11-21")
    source.data_timestamp = "2026-11-21T09:00:06"
    clock.advance(days=1)
    run_sync(source=source, store=store, clock=clock, watchlist=watch)
    completed = source.records["NCT09000001"]
    events = change_events(store)
    # A replica a day behind answers: the old record, under the old dataTimestamp.
    source.records["NCT09000001"] = fresh["NCT09000001"]
    source.data_timestamp = "2026-11-20T09:00:06"
    source.requested.clear()
    clock.advance(hours=1)
    with pytest.raises(StaleDataError, match="older than the last complete sync's") as stale:
        run_sync(source=source, store=store, clock=clock, watchlist=watch)
    assert isinstance(stale.value, TransientFetchError)
    assert source.requested == []  # nothing fetched, nothing compared
    assert change_events(store) == events
    assert store.consecutive_failures() == 1
    # The current server again: nothing new to read, nothing recorded twice.
    source.records["NCT09000001"] = completed
    source.data_timestamp = "2026-11-21T09:00:06"
    clock.advance(hours=1)
    assert run_sync(source=source, store=store, clock=clock, watchlist=watch).skipped
    assert change_events(store) == events
    assert store.consecutive_failures() == 0


def test_a_last_data_timestamp_from_the_future_does_not_block_every_later_sync(
    store: Store, clock: FakeClock
) -> None:
    """One wrong /version answer, years ahead, taken by a complete sync: held against it,
    every later answer would look like a replica behind, and every sync fail until the clock
    caught up. A last timestamp dated after its own sync is not held against the data now
    served; a replica behind a sane one still is (the test above)."""
    from tests.fakes.source import FakeSource
    from tests.records import change_events, distinct_records, edit_status

    source = FakeSource(distinct_records(3))
    watch = [WatchItem(i) for i in sorted(source.records)]
    source.data_timestamp = "2099-01-01T00:00:00"  # the wrong answer
    run_sync(source=source, store=store, clock=clock, watchlist=watch)
    edit_status(source, "NCT09000001", "TERMINATED", "2026-11-24")
    source.data_timestamp = "2026-11-24T09:00:06"
    clock.advance(days=1)
    result = run_sync(source=source, store=store, clock=clock, watchlist=watch)
    assert [u.nct_id for u in result.updates] == ["NCT09000001"]
    assert ("NCT09000001", "overall_status", '"COMPLETED"', '"TERMINATED"') in change_events(store)
    assert store.consecutive_failures() == 0
    # From now on the stored timestamp is the registry's own: a replica behind is refused.
    source.data_timestamp = "2026-11-23T09:00:06"
    clock.advance(hours=1)
    with pytest.raises(StaleDataError):
        run_sync(source=source, store=store, clock=clock, watchlist=watch)


def test_the_next_page_is_fetched_while_this_one_is_read_and_written(
    store: Store, clock: FakeClock
) -> None:
    """Waiting for CT.gov's next page overlaps this process's work on the current one: page
    2's request is on its way before page 1's stored state is read. The store below refuses to
    read page 1's state until page 2's fetch has begun; a sync that fetched one page after the
    other would wait here in vain (and fail on the timeout) instead of finishing."""
    import threading

    ids = [f"NCT0{n:07d}" for n in range(2000001, 2000005)]
    records = []
    for n, nct_id in enumerate(ids):
        record = copy.deepcopy(load_record(f"{IDS[n % len(IDS)]}.json"))
        record["protocolSection"]["identificationModule"]["nctId"] = nct_id
        records.append(record)
    second_page_asked = threading.Event()

    class Source(FakeSource):
        def iter_studies(self, wanted: Any) -> Any:
            if list(wanted) == ids[2:]:
                second_page_asked.set()
            return super().iter_studies(wanted)

    class Waiting:
        def __init__(self, inner: Store) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def page_state(self, page: Any) -> Any:
            if list(page) == ids[:2]:
                assert second_page_asked.wait(10), "page 2 was not asked for before page 1's state"
            return self.inner.page_state(page)

    result = run_sync(
        source=Source(records),
        store=Waiting(store),  # type: ignore[arg-type]
        watchlist=[WatchItem(i) for i in ids],
        clock=clock,
        batch_size=2,
    )
    assert result.baselined == 4


def test_sqlite_page_writes_over_the_driver_store_what_sqlalchemy_stores(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page's versions and trial updates go to SQLite over the driver's cursor, bound by the
    columns' own types: every stored value is the one SQLAlchemy's execution stores."""
    import sqlite3

    from tests.records import distinct_records, edit_status
    from trialwatch.storage import _sync

    def run(name: str) -> dict[str, list[tuple[Any, ...]]]:
        records = distinct_records(30)
        source = FakeSource(records)
        watch = [
            WatchItem(nct_id=r["protocolSection"]["identificationModule"]["nctId"]) for r in records
        ]
        clock = FakeClock()
        store = Store.open(f"sqlite:///{tmp_path / name}.db")
        try:
            for day in ("2026-11-20", "2026-11-21"):
                if day == "2026-11-21":
                    for nct in sorted(source.records)[::4]:
                        edit_status(source, nct, "COMPLETED", day)
                source.data_timestamp = f"{day}T09:00:06"
                run_sync(source=source, store=store, clock=clock, watchlist=watch, batch_size=7)
                clock.advance(days=1)
        finally:
            store.close()
        with sqlite3.connect(tmp_path / f"{name}.db") as conn:
            return {
                table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()  # noqa: S608
                for table in ("trial", "record_version", "change_event")
            }

    fast = run("driver")
    assert len(fast["record_version"]) > 30 and fast["change_event"]
    assert {name for (name, _), bound in _sync._BOUND.items() if bound} == {
        "versions",
        "stored trials",
    }
    monkeypatch.setattr(_sync, "_bound_many", lambda *args: None)  # SQLAlchemy executes all
    assert run("sqlalchemy") == fast


def test_a_driver_error_under_a_page_read_is_a_storage_error(tmp_path: Any) -> None:
    """The page's reads run over the driver's cursor, past SQLAlchemy's wrapping of errors:
    a failing statement is still a StorageError (a clear message), never the driver's own."""
    import sqlalchemy as sa

    from trialwatch.exceptions import StorageError

    store = Store.open(f"sqlite:///{tmp_path / 'broken.db'}")
    try:
        with store.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE watch"))
        with pytest.raises(StorageError, match="database error: no such table: watch"):
            store.page_state(["NCT01607905"])
    finally:
        store.close()


def test_a_statement_sqlalchemy_must_complete_is_left_to_it() -> None:
    """A column whose default Python computes is filled in by SQLAlchemy's execution: such a
    statement is not bound over the driver's cursor (the rows would lack that value)."""
    import sqlalchemy as sa
    from sqlalchemy.dialects import sqlite

    from trialwatch.storage import _sync

    table = sa.Table(
        "t", sa.MetaData(), sa.Column("a", sa.Text), sa.Column("b", sa.Integer, default=lambda: 1)
    )
    assert _sync._bound_many("python default", sa.insert(table), ("a",), sqlite.dialect()) is None
    plain = _sync._bound_many("plain", sa.insert(table), ("a", "b"), sqlite.dialect())
    assert plain is not None and plain.parameters({"a": "x", "b": 2}) == ["x", 2]


def test_a_driver_error_under_a_page_write_is_a_storage_error(tmp_path: Any) -> None:
    """The page's writes run over the driver's cursor too: a failing one (here a second row
    with the same key) is a StorageError with the database's words, and nothing is kept."""
    import sqlalchemy as sa
    from sqlmodel import Session

    from trialwatch.exceptions import StorageError
    from trialwatch.storage import _sync

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    table = sa.Table("t", sa.MetaData(), sa.Column("k", sa.Text, primary_key=True))
    table.create(engine)
    with (
        pytest.raises(StorageError, match=r"database error: UNIQUE constraint failed: t\.k"),
        Session(engine) as s,
        s.begin(),
    ):
        _sync._execute_many(s, "t rows", sa.insert(table), [{"k": "a"}, {"k": "a"}])
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM t")).scalar() == 0
    engine.dispose()
