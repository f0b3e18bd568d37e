"""How fast the ``trialwatch`` command answers: --version, --help and status, vs importing typer.

    .venv/bin/python benchmarks/bench_startup.py [--runs 15]

Prints the median and best wall time of each over ``--runs`` fresh processes (a CLI that people
type should answer ``--help`` and ``--version`` about as fast as its CLI framework imports),
then one JSON line with the figures. ``status`` runs against a small SQLite database made by a
first ``init`` in a temporary folder, with no network.

It also times the floor under every command that syncs: a process that only imports the
libraries a sync needs (:data:`SYNC_LIBRARIES`), as the console script imports them (garbage
collection off, the same modules kept out), and nothing of trialwatch's own.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent / "trialwatch"

# What a sync's process imports from outside trialwatch (python -X importtime, `sync`):
# SQLAlchemy and sqlmodel (storage), pydantic (settings), typer, httpx and tenacity (the
# client), structlog, msgspec, orjson and zstandard (records).
SYNC_LIBRARIES = (
    "sqlalchemy, sqlalchemy.orm, sqlmodel, pydantic, typer, httpx, tenacity, structlog, "
    "msgspec, orjson, zstandard"
)


def _time(argv: list[str], runs: int, cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="processes per command (15)")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIALWATCH_")}
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        subprocess.run([str(BIN), "init"], cwd=cwd, env=env, capture_output=True, check=True)
        subprocess.run(
            [str(BIN), "db", "upgrade"], cwd=cwd, env=env, capture_output=True, check=True
        )  # creates the database once (read-only commands such as status create nothing)
        cases = {
            "python -c 'import typer'": [sys.executable, "-c", "import typer"],
            "a sync's libraries alone": [
                sys.executable,
                "-c",
                "import gc, sys; gc.disable(); from trialwatch.__main__ import _LeanImports; "
                f"sys.meta_path.insert(0, _LeanImports); import {SYNC_LIBRARIES}",
            ],
            "trialwatch --version": [str(BIN), "--version"],
            "trialwatch --help": [str(BIN), "--help"],
            "trialwatch status": [str(BIN), "status"],
        }
        figures = {}
        print(f"{'command':<28} {'median':>8} {'best':>8}")
        for name, argv in cases.items():
            median, best = _time(argv, args.runs, cwd, env)
            figures[name] = {"median_s": round(median, 3), "best_s": round(best, 3)}
            print(f"{name:<28} {median:>7.3f}s {best:>7.3f}s")
    base = figures["python -c 'import typer'"]["median_s"]
    ratio = figures["trialwatch --version"]["median_s"] / base if base else float("nan")
    print(f"--version / import typer: {ratio:.2f}x (target: within 2x)")
    print(
        json.dumps(
            {"startup": figures, "version_over_typer": round(ratio, 2), "cpus": os.cpu_count()}
        )
    )


if __name__ == "__main__":
    main()
