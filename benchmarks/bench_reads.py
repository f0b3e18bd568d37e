"""What the read commands cost on a large watch set, on SQLite or PostgreSQL: ``status``,
``report`` and ``export`` (issue 21, item 5: "measured and kept in proportion").

    .venv/bin/python benchmarks/bench_reads.py --studies 100000 --db postgresql [--runs 3]
    .venv/bin/python benchmarks/bench_reads.py --studies 10000 --db sqlite

Builds the database as a user would: the stand-in of ``standin.py``, ``watch import`` of its
ids, a first ``sync``, then 1 % of the studies changed and a second ``sync`` (so there are
change events to report and export). Then CT.gov is made unreachable (``[api] base_url`` points
at a closed loopback port: none of these commands may need it), and each command runs
``--runs`` times, each a fresh process timed whole (start-up included) through
``bench_sync.measure``: wall and CPU seconds, the process's own peak RSS, and the size of what
it wrote. Prints a table with each command's median and its cost per watched trial (what "in
proportion" is read against: the same command at 10,000 and 100,000, or on both engines), and
one JSON line with the commit and the machine's load.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import statistics
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import corpus
from bench_sync import (
    EXTRA_STUDIES,
    BenchError,
    Trialwatch,
    load_watch_set,
    machine,
    open_database,
    trialwatch_source,
)
from standin import StandIn


def _closed_port() -> int:
    """A loopback port nothing listens on: CT.gov, unreachable (a connection is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _commands(out: Path, since: str) -> list[tuple[str, list[str], Path | None]]:
    return [
        ("status", ["status"], None),
        ("report (text, since the first sync)", ["report", "--since", since], None),
        (
            "report (html)",
            ["report", "--since", since, "--format", "html", "--output", str(out / "r.html")],
            out / "r.html",
        ),
        (
            "export (json)",
            ["export", "--format", "json", "--output", str(out / "e.json")],
            out / "e.json",
        ),
        (
            "export (csv)",
            ["export", "--format", "csv", "--output", str(out / "e.csv")],
            out / "e.csv",
        ),
        (
            "export --changes (jsonl)",
            ["export", "--changes", "--format", "jsonl", "--output", str(out / "c.jsonl")],
            out / "c.jsonl",
        ),
    ]


def run(args: argparse.Namespace) -> dict[str, Any]:
    n = args.studies
    ids = [corpus.nct_id(i) for i in range(n)]
    report: dict[str, Any] = {
        "benchmark": "bench_reads",
        "studies": n,
        "db": args.db,
        "runs": args.runs,
        "machine": machine(),
    }
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tw-reads-")))
        db = stack.enter_context(open_database(args.db, workdir, args.pg_url))
        config = workdir / "trialwatch.toml"
        config.write_text("# Written by benchmarks/bench_reads.py; settings from TRIALWATCH_*.\n")
        with StandIn(watched=n, extra=EXTRA_STUDIES, seed=args.seed) as api:
            tw = Trialwatch(
                workdir=workdir,
                config=config,
                api_url=api.base_url,
                db_url=db.url,
                timeout=args.timeout,
                extra={},
            )
            report["trialwatch"] = trialwatch_source(tw)
            since = datetime.now(UTC).date() - timedelta(days=1)
            load_watch_set(ids, tw)
            built = {}
            for step in ("first sync", "1 % changed"):
                if step == "1 % changed":
                    api.change(1)
                ran = tw.run("sync")
                if ran.code != 0:
                    raise BenchError(f"{step}: `trialwatch sync` exited {ran.code}:\n{ran.stderr}")
                built[step] = {"wall_s": round(ran.wall_s, 2), "cpu_s": round(ran.cpu_s, 2)}
            report["build"] = built
        down = Trialwatch(
            workdir=workdir,
            config=config,
            api_url=f"http://127.0.0.1:{_closed_port()}/api/v2",
            db_url=db.url,
            timeout=args.timeout,
            extra={"COLUMNS": "80"},
        )
        report["db_bytes"] = db.size()
        results: dict[str, Any] = {}
        for name, argv, output in _commands(workdir, since.isoformat()):
            walls: list[float] = []
            cpus: list[float] = []
            rss: list[int] = []
            size = 0
            for _ in range(args.runs):
                ran = down.run(*argv)
                if ran.code != 0:
                    raise BenchError(
                        f"`trialwatch {' '.join(argv)}` exited {ran.code}:\n{ran.stderr[-2000:]}"
                    )
                walls.append(ran.wall_s)
                cpus.append(ran.cpu_s)
                rss.append(ran.peak_rss_kib)
                size = output.stat().st_size if output else len(ran.stdout.encode())
            wall = statistics.median(walls)
            results[name] = {
                "argv": argv,
                "wall_s": [round(w, 3) for w in walls],
                "cpu_s": [round(c, 3) for c in cpus],
                "median_wall_s": round(wall, 3),
                "median_cpu_s": round(statistics.median(cpus), 3),
                "us_per_trial": round(wall / n * 1e6, 1),
                "peak_rss_mib": round(max(rss) / 1024, 1),
                "output_bytes": size,
            }
        report["commands"] = results
        report["machine"]["load_average_end"] = [round(x, 2) for x in __import__("os").getloadavg()]
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", "-n", type=int, default=10_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--pg-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
        help="a fresh schema is made in it and dropped after",
    )
    parser.add_argument("--runs", type=int, default=3, help="processes per command (3)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per command")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        report = run(args)
    except BenchError as exc:
        print(f"bench_reads: {exc}", file=sys.stderr)
        return 1
    m = report["machine"]
    print(
        f"trialwatch read commands: {args.studies:,} watched trials, {args.db}, "
        f"database {report['db_bytes'] / 2**20:,.0f} MiB; {report['trialwatch'].get('git', '')}"
    )
    print(
        f"  machine: {m['nproc']} CPUs ({m['cpu']}); load {m['load_average_start'][0]} at "
        f"start, {m['load_average_end'][0]} at end; build: {report['build']}"
    )
    print(
        f"{'command':38} {'wall s':>8} {'CPU s':>7} {'us/trial':>9} {'RSS MiB':>8} {'output':>12}"
    )
    for name, row in report["commands"].items():
        print(
            f"{name:38} {row['median_wall_s']:8.2f} {row['median_cpu_s']:7.2f} "
            f"{row['us_per_trial']:9.1f} {row['peak_rss_mib']:8.1f} {row['output_bytes']:12,}"
        )
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
