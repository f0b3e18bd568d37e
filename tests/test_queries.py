"""Query watches: a baseline, new and leaving trials, surges, track = true; and since-print."""

from __future__ import annotations

import copy
from typing import Any

from tests import storage_reads
from tests.conftest import FakeClock, load_record, selinexor_records
from tests.fakes.source import FakeSource
from trialwatch.discovery import Printed, decide_query, since_print
from trialwatch.models import FieldChange, Route, StudySummary, WatchItem
from trialwatch.normalize import normalize
from trialwatch.storage import Store
from trialwatch.sync import QuerySpec, run_sync

SELINEXOR_QUERY = QuerySpec("selinexor", {"query.intr": "selinexor OR KPT-330 OR XPOVIO"})
SEAL = "NCT02606461"


def _to_clinician(nct_id: str, label: str | None, change: FieldChange) -> list[Route]:
    return [Route("email", "clinician@example.org", "immediate", None)]


def _new_selinexor_trial(nct_id: str, status: str = "RECRUITING") -> dict[str, Any]:
    record = copy.deepcopy(
        next(
            r
            for r in selinexor_records()
            if r["protocolSection"]["identificationModule"]["nctId"] == SEAL
        )
    )
    ident = record["protocolSection"]["identificationModule"]
    ident["nctId"] = nct_id
    ident["briefTitle"] = "Selinexor in Dedifferentiated Liposarcoma, a New Study"
    ident.pop("acronym", None)
    record["protocolSection"]["statusModule"]["overallStatus"] = status
    return record


def _sync(store: Store, source: FakeSource, clock: FakeClock, **kw: Any) -> Any:
    clock.advance(hours=1)
    return run_sync(
        source=source,
        store=store,
        clock=clock,
        watchlist=kw.pop("watchlist", [WatchItem(SEAL, "SEAL")]),
        router=_to_clinician,
        queries=kw.pop("queries", (SELINEXOR_QUERY,)),
        **kw,
    )


def test_a_query_baseline_is_silent_then_a_new_trial_is_one_event(
    store: Store, clock: FakeClock
) -> None:
    source = FakeSource(selinexor_records())
    first = _sync(store, source, clock)
    assert first.change_count == 0 and store.notifications() == []
    assert (
        len(storage_reads.query_matches(store, "selinexor")) >= 12
    )  # the baseline, recorded silently

    source.put(_new_selinexor_trial("NCT07000001"))
    source.data_timestamp = "2026-11-21T09:00:06"
    second = _sync(store, source, clock)
    assert [(u.nct_id, [c.summary for c in u.changes]) for u in second.updates] == [
        (
            "NCT07000001",
            [
                "New trial matching selinexor: Selinexor in Dedifferentiated Liposarcoma, a "
                "New Study (Phase 2/Phase 3, Recruiting; sponsor Karyopharm Therapeutics Inc; "
                "first posted 2015-11-17)"
            ],
        )
    ]
    [note] = store.notifications()
    assert note.recipient == "clinician@example.org" and len(note.change_ids) == 1
    # A forced re-sync sends nothing more.
    again = _sync(store, source, clock, force=True)
    assert again.change_count == 0 and len(store.notifications()) == 1
    # The new trial is not watched (track = false): only the query knows it.
    assert not storage_reads.is_watched(store, "NCT07000001")


def test_a_trial_leaving_is_reported_with_its_current_status(
    store: Store, clock: FakeClock
) -> None:
    recruiting = QuerySpec(
        "recruiting selinexor",
        {"query.intr": "selinexor", "filter.overallStatus": "RECRUITING"},
    )
    source = FakeSource([*selinexor_records(), _new_selinexor_trial("NCT07000001")])
    _sync(store, source, clock, queries=(recruiting,), watchlist=[WatchItem("NCT07000001")])
    record = copy.deepcopy(source.records["NCT07000001"])
    record["protocolSection"]["statusModule"]["overallStatus"] = "ACTIVE_NOT_RECRUITING"
    source.put(record)
    source.data_timestamp = "2026-11-21T09:00:06"
    result = _sync(
        store, source, clock, queries=(recruiting,), watchlist=[WatchItem("NCT07000001")]
    )
    summaries = sorted(c.summary for u in result.updates for c in u.changes)
    # The watched trial is fetched by id whatever the query's status filter says: its status
    # change is reported as such, and its leaving the query too.
    assert summaries == [
        "No longer matches recruiting selinexor (now Active, not recruiting)",
        "Overall status: Recruiting → Active, not recruiting",
    ]


def test_track_adds_matches_to_the_watch_set_and_fetches_them(
    store: Store, clock: FakeClock
) -> None:
    tracking = QuerySpec("selinexor", {"query.intr": "selinexor"}, track=True)
    source = FakeSource(selinexor_records())
    first = _sync(store, source, clock, queries=(tracking,))
    assert first.change_count == 0
    entries = {e.nct_id: e.sources for e in store.watch_entries()}
    assert entries[SEAL] == ("config", "query:selinexor")
    assert len(entries) >= 12
    assert first.baselined == len(entries)  # fetched by id in the same sync, silently

    source.put(_new_selinexor_trial("NCT07000002"))
    source.data_timestamp = "2026-11-21T09:00:06"
    second = _sync(store, source, clock, queries=(tracking,))
    assert storage_reads.is_watched(store, "NCT07000002")
    assert second.baselined == 1
    assert [u.nct_id for u in second.updates] == ["NCT07000002"]


def test_a_sudden_surge_of_matches_is_one_summary(store: Store, clock: FakeClock) -> None:
    source = FakeSource(selinexor_records()[:2])
    broad = QuerySpec("selinexor", {"query.intr": "selinexor"})
    _sync(store, source, clock, queries=(broad,))
    for n in range(30):
        source.put(_new_selinexor_trial(f"NCT0710{n:04d}"))
    source.data_timestamp = "2026-11-21T09:00:06"
    result = _sync(store, source, clock, queries=(broad,))
    assert result.flooded
    [note] = store.notifications()
    assert note.kind == "summary" and len(note.change_ids) == 30  # every event recorded


def test_decide_query_is_pure_and_baselines_first() -> None:
    hit = StudySummary(
        "NCT07000001", brief_title="T", phases=("PHASE2",), overall_status="RECRUITING"
    )
    assert decide_query("q", None, [hit], {}).baseline
    outcome = decide_query("q", {"NCT07000009": True}, [hit], {"NCT07000009": "COMPLETED"})
    assert [c.summary for _, c in outcome.changes] == [
        "New trial matching q: T (Phase 2, Recruiting)",
        "No longer matches q (now Completed)",
    ]
    assert decide_query("q", {"NCT07000001": True}, [hit], {}).changes == ()


def test_since_print_names_each_drift_once() -> None:
    terminated = normalize(load_record("NCT04650945.json"))
    printed = [
        Printed("NCT04650945", "RECRUITING", "Recruiting", "An unrelated printed title here"),
        Printed("NCT09999999", "COMPLETED", "Completed", "Unknown"),
    ]
    drifts = since_print(printed, {"NCT04650945": terminated, "NCT09999999": None})
    assert [d.nct_id for d in drifts] == ["NCT04650945", "NCT09999999"]
    assert drifts[0].line.startswith(
        "NCT04650945 (An unrelated printed title here): Recruiting as printed → Terminated now"
    )
    assert drifts[0].title_note is not None
    assert drifts[1].unknown and "not known to ClinicalTrials.gov" in drifts[1].line


def test_a_merged_registration_neither_enters_nor_leaves_a_query() -> None:
    survivor = StudySummary("NCT07000002", brief_title="T", overall_status="RECRUITING")
    before = {"NCT07000001": True}
    merged = {"NCT07000001": "NCT07000002"}  # the retired id now answers with the survivor
    assert decide_query("q", before, [survivor], {}, merged).changes == ()
    # Without the merge, the same answer is a new match and one that left.
    assert len(decide_query("q", before, [survivor], {}).changes) == 2
