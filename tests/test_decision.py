"""The page decision and the run's plan, as values: no database, no network, no clock."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import selinexor_records
from tests.records import status_module
from trialwatch.decision import (
    FULL_SWEEP_MAX_AGE,
    RunKind,
    RunPlan,
    data_went_back,
    decide_page,
    plan_run,
    scan_page,
    versions_to_read,
)
from trialwatch.models import (
    FieldChange,
    FoundStudy,
    MissingStudy,
    OutcomeKind,
    Route,
    Snapshot,
    StoredState,
)
from trialwatch.normalize import NORMALIZER_VERSION, canonical_bytes, hash_of, normalize
from trialwatch.prepare import Prepared, prepare_all

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
EMAIL = Route("email", "a@example.org", "immediate")


def _plan(**facts: Any) -> RunPlan:
    given: dict[str, Any] = {
        "same_data": False,
        "force": False,
        "watched": 5000,
        "incremental_above": 1000,
        "full": False,
        "last_full_at": NOW - timedelta(days=1),
        "last_data_timestamp": "2026-11-20T09:00:03",
        "now": NOW,
    }
    return plan_run(**{**given, **facts})


def test_the_plan_is_one_rule() -> None:
    assert _plan() == RunPlan(RunKind.INCREMENTAL, date(2026, 11, 20))
    assert _plan(same_data=True) == RunPlan(RunKind.RECHECK)
    assert _plan(same_data=True, force=True).kind == RunKind.INCREMENTAL
    assert _plan(full=True) == RunPlan(RunKind.FULL)
    assert _plan(watched=1000) == RunPlan(RunKind.FULL)  # not above the threshold
    assert _plan(incremental_above=0) == RunPlan(RunKind.FULL)  # 0: never incremental
    assert _plan(last_full_at=None) == RunPlan(RunKind.FULL)  # never swept in full
    stale = NOW - FULL_SWEEP_MAX_AGE - timedelta(seconds=1)
    assert _plan(last_full_at=stale) == RunPlan(RunKind.FULL)
    assert _plan(last_data_timestamp=None) == RunPlan(RunKind.FULL)
    assert _plan(last_data_timestamp="soon") == RunPlan(RunKind.FULL)  # not a day


def _found(record: dict[str, Any], fingerprint: str | None = None) -> FoundStudy:
    nct_id = record["protocolSection"]["identificationModule"]["nctId"]
    return FoundStudy(nct_id, nct_id, record, fingerprint)


def _stored(record: dict[str, Any], version_id: int, **extra: Any) -> tuple[StoredState, Snapshot]:
    snapshot = normalize(record)
    state = StoredState(
        nct_id=snapshot.nct_id,
        content_hash=hash_of(canonical_bytes(snapshot)),
        version_id=version_id,
        fingerprint=extra.pop("fingerprint", None),
        normalizer_version=extra.pop("normalizer_version", NORMALIZER_VERSION),
        **extra,
    )
    return state, snapshot


def _route(nct_id: str, label: str | None, change: FieldChange) -> list[Route]:
    return [EMAIL]


def test_a_page_is_decided_from_values_alone() -> None:
    new, same, moved, completed = (copy.deepcopy(r) for r in selinexor_records()[:4])
    same_state, _ = _stored(same, 1, fingerprint="fp-same")
    moved_state, moved_snapshot = _stored(moved, 2, fingerprint="fp-old", label="MOVED")
    before_completion = copy.deepcopy(completed)
    completed_state, completed_snapshot = _stored(before_completion, 3)
    status = status_module(completed)
    status["overallStatus"] = (
        "TERMINATED" if status["overallStatus"] == "COMPLETED" else "COMPLETED"
    )
    moved["protocolSection"]["identificationModule"]["briefTitle"] = "A new title"
    states = {s.nct_id: s for s in (same_state, moved_state, completed_state)}
    results = [
        _found(new),
        _found(same, "fp-same"),
        _found(moved, "fp-new"),
        _found(completed, "fp-3"),
        MissingStudy("NCT00000000"),
    ]

    scan = scan_page(results, states)
    assert scan.outcomes[same_state.nct_id].kind == OutcomeKind.UNCHANGED
    assert scan.outcomes["NCT00000000"].kind == OutcomeKind.MISSING
    assert [found.requested_id for found, _, _ in scan.todo] == [
        r.requested_id for r in results[0:1] + results[2:4]
    ]

    prepared = prepare_all(scan.jobs())
    assert all(isinstance(p, Prepared) for p in prepared)
    assert versions_to_read(scan, prepared) == ({2, 3}, set())
    old = {2: moved_snapshot, 3: completed_snapshot}
    outcomes = decide_page(scan, prepared, old, {}, _route)

    by_id = {o.nct_id: o for o in outcomes}
    assert [o.nct_id for o in outcomes] == [r.requested_id for r in results]
    assert by_id[results[0].requested_id].kind == OutcomeKind.BASELINE
    changed = by_id[completed_state.nct_id]
    assert changed.kind == OutcomeKind.CHANGED and changed.from_version_id == 3
    assert [c.field for c in changed.changes] == ["overall_status"]
    assert changed.routes == ((EMAIL,),)
    title = by_id[moved_state.nct_id]
    assert title.kind == OutcomeKind.CHANGED
    assert {c.field for c in title.changes} == {"brief_title"}


def test_an_unreadable_record_fails_its_trial_only() -> None:
    record, other = selinexor_records()[:2]
    state, _ = _stored(record, 7)
    other_id = other["protocolSection"]["identificationModule"]["nctId"]
    broken = FoundStudy(other_id, other_id, body=b"[1, 2")
    scan = scan_page([broken, _found(record)], {state.nct_id: state})
    prepared = prepare_all(scan.jobs())
    assert isinstance(prepared[0], str)
    assert versions_to_read(scan, prepared) == (set(), set())  # same content: nothing to read
    outcomes = decide_page(scan, prepared, {}, {}, _route)
    assert [o.kind for o in outcomes] == [OutcomeKind.FAILED, OutcomeKind.REFRESHED]


def test_a_newer_normalizer_asks_for_the_raw_record_not_the_snapshot() -> None:
    record = selinexor_records()[0]
    state, _ = _stored(record, 9, normalizer_version=NORMALIZER_VERSION - 1)
    scan = scan_page([_found(record)], {state.nct_id: state})
    prepared = prepare_all(scan.jobs())
    assert versions_to_read(scan, prepared) == (set(), {9})


@pytest.mark.parametrize(
    ("current", "last", "went_back"),
    [
        ("2026-12-03T09:00:06", "2026-12-04T09:00:06", True),
        ("2026-12-04T09:00:06", "2026-12-04T09:00:06", False),
        ("2026-12-05T09:00:06", "2026-12-04T09:00:06", False),
        # A zone on either side (CT.gov writes none) is read in UTC, not a reason to stop
        # judging: a replica a day behind is one whatever it appends.
        ("2026-12-03T09:00:06Z", "2026-12-04T09:00:06", True),
        ("2026-12-03T09:00:06+00:00", "2026-12-04T09:00:06Z", True),
        ("2026-12-04T09:00:06Z", "2026-12-04T09:00:06", False),
        ("2026-12-04T10:00:06+02:00", "2026-12-04T09:00:06", True),  # 08:00:06 in UTC
        ("yesterday", "2026-12-04T09:00:06", False),  # unreadable: not judged
        # A zone at the calendar's end cannot be moved to UTC (OverflowError): read without it.
        ("2026-12-04T09:00:06", "9999-12-31T23:00:00-05:00", True),
        ("0001-01-01T00:30:00+01:00", "2026-12-04T09:00:06", True),
        (None, "2026-12-04T09:00:06", False),
    ],
)
def test_data_that_went_back_is_seen_with_or_without_a_zone(
    current: str | None, last: str, went_back: bool
) -> None:
    assert data_went_back(current, last) is went_back


@pytest.mark.parametrize(
    ("stamp", "future"),
    [
        ("2026-11-24T09:00:06", False),
        ("2026-11-26T09:00:06", True),  # more than two days after the clock's 2026-11-23
        ("9999-12-31T23:00:00-05:00", True),  # past the calendar's end in UTC: no crash
        ("not a date", False),
        (None, False),
    ],
)
def test_a_data_timestamp_from_the_future_is_told(stamp: str | None, future: bool) -> None:
    from trialwatch.decision import from_the_future

    assert from_the_future(stamp, datetime(2026, 11, 23, 14, 0, tzinfo=UTC)) is future
