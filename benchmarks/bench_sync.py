"""Sync figures: requests, wall time and peak Python memory, for watchlists of growing size.

Runs the real client, sync and storage (SQLite in a temp dir) against the loopback CT.gov
stand-in serving clones of the stand-in records. Prints figures; asserts nothing.

    python benchmarks/bench_sync.py            # 13, 1000 and 5000 trials
    python benchmarks/bench_sync.py 13 20000   # other sizes
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.ctgov_server import FakeCtGov, clone_record  # noqa: E402

from trialwatch.app import App  # noqa: E402
from trialwatch.config import Settings  # noqa: E402
from trialwatch.logs import configure_logging  # noqa: E402
from trialwatch.normalize import content_hash, normalize  # noqa: E402
from trialwatch.storage import Store  # noqa: E402

TEMPLATES = [
    json.loads(p.read_text()) for p in sorted((ROOT / "tests/data/selinexor").glob("NCT*.json"))
]


def records(n: int) -> list[dict[str, Any]]:
    return [clone_record(TEMPLATES[i % len(TEMPLATES)], f"NCT{90000000 + i:08d}") for i in range(n)]


def scenario(studies: list[dict[str, Any]], *, trace: bool) -> list[tuple[str, int, float, int]]:
    """Baseline, idle poll, forced sync with nothing new, 1 % changed: requests, figure, changes.

    The figure is wall seconds, or with ``trace`` the peak traced memory in bytes (tracemalloc
    slows Python several-fold, so the two are never measured in the same run).
    """
    rows = []
    with FakeCtGov(studies) as api, tempfile.TemporaryDirectory() as tmp:
        settings = Settings.model_validate(
            {
                "api": {"base_url": api.base_url, "min_interval_s": 0, "batch_size": 300},
                "database": {"url": f"sqlite:///{tmp}/bench.db"},
                "watchlist": [
                    {"nct_id": s["protocolSection"]["identificationModule"]["nctId"], "label": "t"}
                    for s in studies
                ],
            }
        )
        app = App(settings=settings, store=Store.open(settings.database.url))
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("baseline", app.sync),
            ("idle poll", app.sync),
            ("forced, nothing new", lambda: app.sync(force=True)),
            ("1% changed", app.sync),
        ]
        for name, action in steps:
            if name == "1% changed":
                for study in studies[: max(1, len(studies) // 100)]:
                    nct = study["protocolSection"]["identificationModule"]["nctId"]
                    api.update_study(nct, complete)
            api.clear_requests()
            if trace:
                tracemalloc.start()
            start = time.perf_counter()
            result = action()
            figure = time.perf_counter() - start
            if trace:
                figure = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
            rows.append((name, len(api.requests), figure, result.change_count))
        app.close()
    return rows


def complete(record: dict[str, Any]) -> None:
    record["protocolSection"]["statusModule"]["overallStatus"] = "COMPLETED"


def bench(n: int) -> None:
    studies = records(n)
    timed = scenario(studies, trace=False)
    traced = scenario(studies, trace=True)
    print(f"\n{n} trials")
    print(f"  {'run':<22}{'requests':>9}{'seconds':>10}{'peak MiB':>10}{'changes':>9}")
    for (name, reqs, secs, changes), (_, _, peak, _) in zip(timed, traced, strict=True):
        print(f"  {name:<22}{reqs:>9}{secs:>10.3f}{peak / 2**20:>10.1f}{changes:>9}")


def bench_core() -> None:
    recs = [copy.deepcopy(r) for r in TEMPLATES] * 200
    start = time.perf_counter()
    for r in recs:
        content_hash(normalize(r))
    per = (time.perf_counter() - start) / len(recs) * 1e6
    print(f"normalize + hash: {per:.0f} µs per record ({len(recs)} records)")


if __name__ == "__main__":
    configure_logging("warning")
    sizes = [int(a) for a in sys.argv[1:]] or [13, 1000, 5000]
    bench_core()
    for size in sizes:
        bench(size)
