"""Merged registrations, with the real ``trialwatch`` command and the shipped config.

The registry merges duplicate registrations: the retired id answers with the surviving study,
which lists it in ``nctIdAliases`` (the stand-in's ``merge_study``). That is one event under
the retired id, naming the surviving one — never a field-by-field diff of two studies, nor a
query's "new"/"no longer matches" pair — and the trial's history goes on as the surviving
study's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import load_record
from tests.e2e import Run, trialwatch, user_env
from tests.fakes.ctgov_server import FakeCtGov, clone_record
from tests.records import complete

pytestmark = pytest.mark.e2e

SEAL = "NCT02606461"  # watched by the shipped config, matched by its selinexor query
SLIP = "NCT04595994"  # watched too
DUPLICATE = "NCT09999991"  # a second registration of SEAL's study, not watched


def _run(api: FakeCtGov, db: Path, *args: str) -> Run:
    run = trialwatch(*args, env=user_env(api.base_url, db), cwd=db.parent)
    assert run.code == 0, run.err
    assert "Traceback" not in run.err
    return run


def _events(api: FakeCtGov, db: Path, nct_id: str) -> list[dict[str, Any]]:
    doc = json.loads(_run(api, db, "history", nct_id, "--format", "json").out)
    return [c for entry in doc["entries"] for c in entry["changes"]]


def test_a_merge_is_one_event_naming_the_surviving_id(api: FakeCtGov, tmp_path: Path) -> None:
    db = tmp_path / "tw.db"
    api.put_study(clone_record(load_record(f"{SEAL}.json"), DUPLICATE))
    _run(api, db, "sync")  # the baseline; the query matches both registrations

    api.merge_study(SEAL, into=DUPLICATE)
    merged = _run(api, db, "sync")
    assert "1 change in 1 trial;" in merged.out, merged.out
    assert f"{SEAL} was merged into {DUPLICATE}" in merged.out
    assert "New trial matching" not in merged.out and "No longer matches" not in merged.out
    events = _events(api, db, SEAL)
    assert [e["summary"] for e in events] == [
        f"{SEAL} was merged into {DUPLICATE} on ClinicalTrials.gov"
    ]
    assert f"merged into {DUPLICATE}" in _run(api, db, "history", SEAL).out

    # The trial's history goes on as the surviving study's.
    api.update_study(DUPLICATE, complete)
    went_on = _run(api, db, "sync")
    assert "1 change in 1 trial;" in went_on.out, went_on.out
    assert "Overall status: Active, not recruiting → Completed" in went_on.out
    told = [e for e in _events(api, db, SEAL) if e["severity"] != "admin"]
    assert len(told) == 2  # the merge, then the status (admin rows are not changes)

    # Seen merged again: no news.
    api.update_study(SLIP, lambda record: None)
    quiet = _run(api, db, "sync")
    assert "was merged" not in quiet.out and "0 changes in 0 trials" in quiet.out, quiet.out


def test_two_watched_registrations_fold_into_one_trial(api: FakeCtGov, tmp_path: Path) -> None:
    db = tmp_path / "tw.db"
    _run(api, db, "sync")

    api.merge_study(SEAL, into=SLIP)
    merged = _run(api, db, "sync")
    assert "1 change in 1 trial;" in merged.out, merged.out
    assert f"{SEAL} was merged into {SLIP}" in merged.out

    api.update_study(SLIP, complete)
    api.clear_requests()
    folded = _run(api, db, "sync")
    assert "1 change in 1 trial;" in folded.out, folded.out  # told once, under SLIP
    asked = [r.params["filter.ids"] for r in api.requests if "filter.ids" in r.params]
    assert asked and all(SEAL not in ids and SLIP in ids for ids in asked[:1])
    assert [e["summary"] for e in _events(api, db, SEAL)] == [
        f"{SEAL} was merged into {SLIP} on ClinicalTrials.gov"
    ]
