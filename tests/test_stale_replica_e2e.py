"""A stale replica behind CT.gov's load balancer (an older ``dataTimestamp``, the older records)
tries to undo a completion: the real command against the loopback stand-in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import trialwatch, user_env
from tests.fakes.ctgov_server import FakeCtGov
from tests.records import complete

pytestmark = pytest.mark.e2e
SEAL = "NCT02606461"


def test_a_completion_a_stale_replica_tried_to_undo_is_one_status_event(
    api: FakeCtGov, tmp_path: Path
) -> None:
    env = user_env(api.base_url, tmp_path / "data" / "trialwatch.db")

    def run(*args: str) -> Any:
        return trialwatch(*args, env=env, cwd=tmp_path)

    assert run("sync").code == 0
    before, old_ts = api.study(SEAL), api.data_timestamp
    api.update_study(SEAL, complete)
    after, new_ts = api.study(SEAL), api.data_timestamp
    assert run("sync").code == 0

    def serve(record: dict[str, Any], ts: str) -> None:
        api.update_study(SEAL, lambda r: (r.clear(), r.update(record)), bump=False)
        api.set_data_timestamp(ts)

    serve(before, old_ts)  # the replica that has not caught up
    stale = run("sync")
    assert stale.code == 1
    assert stale.err.count(f"trialwatch: ClinicalTrials.gov answered with data as of {old_ts}") == 1
    assert "Traceback" not in stale.err
    serve(after, new_ts)  # the current server again
    again = run("sync")
    assert again.code == 0, again.err
    assert "Nothing to do" in again.out

    exported = run("export", "--format", "jsonl", "--changes")
    assert exported.code == 0, exported.err
    events = [json.loads(line) for line in exported.out.splitlines()]
    status = [e for e in events if e["nct_id"] == SEAL and e["field"] == "overall_status"]
    assert len(status) == 1, status
    assert status[0]["new"] == "COMPLETED"
