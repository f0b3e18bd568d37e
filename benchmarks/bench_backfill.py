"""What does `trialwatch backfill` cost: requests per trial, and CPU per registry version beside
a live sync's CPU per study?

In one process: the CT.gov stand-in (tests/fakes, the one the tests use) serves the review's 13
trials, each with ``--versions`` earlier versions made by editing copies of its real record (the
last update date moves on every version, the status and the primary completion date every few);
a first sync, then the backfill, both through ``App`` on a fresh SQLite database, pacing off.
CPU is the calling thread's (``time.thread_time``): the stand-in's threads are not counted, and
the sync runs without worker processes so that its work is in that thread too.

Prints figures only (no targets asserted):

    python benchmarks/bench_backfill.py                 # 13 trials x 30 versions
    python benchmarks/bench_backfill.py --versions 60
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import selinexor_records  # noqa: E402
from tests.fakes.ctgov_server import FakeCtGov  # noqa: E402

from trialwatch.app import build_app  # noqa: E402
from trialwatch.config import Settings  # noqa: E402

STATUSES = ("NOT_YET_RECRUITING", "RECRUITING", "ACTIVE_NOT_RECRUITING")


def versions_of(record: dict[str, Any], count: int) -> list[tuple[str, dict[str, Any]]]:
    """``count`` versions ending with ``record`` itself, one a month before it, each an edited
    copy: the last update always, the status every 10th, the primary completion every 7th."""
    out = []
    last = date.fromisoformat(
        record["protocolSection"]["statusModule"].get("lastUpdateSubmitDate", "2026-01-01")
    )
    for i in range(count - 1):
        day = last - timedelta(days=30 * (count - 1 - i))
        edited = copy.deepcopy(record)
        status = edited["protocolSection"]["statusModule"]
        status["lastUpdateSubmitDate"] = day.isoformat()
        status["lastUpdatePostDateStruct"] = {"date": day.isoformat(), "type": "ACTUAL"}
        status["overallStatus"] = STATUSES[min(i // 10, len(STATUSES) - 1)]
        status["primaryCompletionDateStruct"] = {
            "date": (date(2020, 1, 1) + timedelta(days=90 * (i // 7))).isoformat(),
            "type": "ESTIMATED",
        }
        out.append((day.isoformat(), edited))
    out.append((last.isoformat(), record))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=30, help="versions per trial")
    args = parser.parse_args()

    records = selinexor_records()
    with tempfile.TemporaryDirectory() as tmp, FakeCtGov(records) as api:
        for record in records:
            nct_id = record["protocolSection"]["identificationModule"]["nctId"]
            api.history.put(nct_id, versions_of(record, args.versions))
        settings = Settings.model_validate(
            {
                "api": {"base_url": api.base_url, "min_interval_s": 0},
                "database": {"url": f"sqlite:///{Path(tmp) / 'tw.db'}"},
                "sync": {"workers": 0},
                "watchlist": [
                    {"nct_id": r["protocolSection"]["identificationModule"]["nctId"]}
                    for r in records
                ],
            }
        )
        app = build_app(settings)
        try:
            cpu, wall = time.thread_time(), time.perf_counter()
            synced = app.sync(force=True)
            sync_cpu, sync_wall = time.thread_time() - cpu, time.perf_counter() - wall

            api.clear_requests()
            cpu, wall = time.thread_time(), time.perf_counter()
            result = app.backfill()
            fill_cpu, fill_wall = time.thread_time() - cpu, time.perf_counter() - wall

            again = app.backfill()
        finally:
            app.close()

    trials = len(result.read)
    per_version = fill_cpu / max(result.versions_fetched, 1)
    per_study = sync_cpu / max(synced.checked, 1)
    figures = {
        "trials": trials,
        "versions_per_trial": args.versions,
        "requests": result.requests,
        "requests_per_trial": result.requests / max(trials, 1),
        "requests_second_run": again.requests,
        "events": result.events,
        "backfill_wall_s": round(fill_wall, 3),
        "backfill_cpu_s": round(fill_cpu, 3),
        "cpu_ms_per_version": round(per_version * 1000, 3),
        "live_sync_cpu_ms_per_study": round(per_study * 1000, 3),
        "ratio": round(per_version / per_study, 2) if per_study else None,
        "wall_at_default_pacing_s": result.requests * Settings().api.min_interval_s,
        "sync_wall_s": round(sync_wall, 3),
    }
    print(f"backfill of {trials} trials x {args.versions} versions (SQLite, pacing off)")
    print(
        f"  requests: {result.requests} ({figures['requests_per_trial']:.1f} per trial = "
        f"1 + versions); a second run: {again.requests}"
    )
    print(f"  events recorded: {result.events}")
    print(f"  wall {fill_wall:.2f} s, CPU {fill_cpu:.2f} s")
    print(
        f"  CPU per version {figures['cpu_ms_per_version']} ms vs a live first sync's per study "
        f"{figures['live_sync_cpu_ms_per_study']} ms (ratio {figures['ratio']})"
    )
    print(
        f"  at the default pacing (1 request/s) the backfill would take about "
        f"{figures['wall_at_default_pacing_s']:.0f} s: pacing dominates"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
