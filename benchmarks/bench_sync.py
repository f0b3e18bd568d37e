"""How fast, how lean and how chatty is `trialwatch sync` with N watched studies?

Runs the real ``trialwatch`` command in a subprocess against a CT.gov stand-in in another process
(``standin.py``: N watched plus 1,000 unwatched studies synthesized from the real records in
``tests/data``, served from pre-serialized bytes), pacing off, on SQLite or PostgreSQL, through:

1. first sync (every study new);
2. idle poll (CT.gov's dataTimestamp unchanged);
3. forced re-sync with nothing changed (``sync --force``);
4. 1 % of the watched studies changed for real (a status or a date), on a new day;
5. incremental: 1,000 studies updated in the registry on a new day, 1 % of them watched
   (n/a, with trialwatch's own words, when it does not accept ``[sync] incremental_above``);
6. with ``--naive``: a naive script (``naive_sync.py``: one GET, DeepDiff and commit per trial)
   on the same studies, first sync and 1 % changed.

Each scenario reports wall and CPU time, studies/s, requests counted at the stand-in, the peak RSS
of the syncing process (``os.wait4``), database size, rows written per table, and the stand-in's
CPU. It prints a table, the issue #8 targets met or not, then one JSON line with every figure.

    python benchmarks/bench_sync.py                           # 2,000 studies, SQLite
    python benchmarks/bench_sync.py --studies 100000 --naive
    python benchmarks/bench_sync.py --studies 5000 --db postgresql
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import platform
import re
import secrets
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import corpus
from standin import StandIn

HERE = Path(__file__).resolve().parent
DEFAULT_STUDIES = 2_000
EXTRA_STUDIES = 1_000  # unwatched studies in the stand-in's registry
REGISTRY_UPDATES = 1_000  # studies updated on the incremental scenario's day (~ a weekday's)
WATCHED_SHARE_PERCENT = 1  # ... of which this share is watched
CHANGED_PERCENT = 1
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_FIELDS = "ProtocolSection|HasResults"
# The incremental mode is switched by this setting: incremental above this many watched.
INCREMENTAL_SETTING = "TRIALWATCH_SYNC__INCREMENTAL_ABOVE"
# Tables that hold the run's own record rather than per-trial rows (issue #8: "an unchanged
# re-sync writes no per-trial row, the run's own record aside").
RUN_TABLES = re.compile(r"run|health|lock|meta|version_info|alembic", re.IGNORECASE)
MB = 1_000_000
MIB = 1 << 20


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


# -- measuring a command ---------------------------------------------------------------------------


@dataclass
class Measured:
    code: int
    wall_s: float
    cpu_s: float
    peak_rss_kib: int
    # Involuntary: taken off the CPU for another process, a sign of a busy machine.
    context_switches: dict[str, int]
    stdout: str
    stderr: str


# A child is forked (or vforked) from this process, and Linux keeps the larger of its peak RSS
# before and after exec in its ru_maxrss: measured directly, a command's peak RSS would be at
# least this benchmark's own resident memory (over 100 MiB at 100,000 studies, most of it the
# audit's checksums). So a small launcher runs each command and reports the command's own
# rusage: the launcher starts at about 10 MiB, below any command measured here.
_LAUNCHER = """
import json, os, signal, subprocess, sys, time
report, command = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
child = subprocess.Popen(command)
signal.signal(signal.SIGTERM, lambda signum, frame: child.kill())
_, status, usage = os.wait4(child.pid, 0)
wall = time.perf_counter() - started
with open(report, "w", encoding="utf-8") as fh:
    json.dump(
        {
            "wall_s": wall,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "maxrss_kib": usage.ru_maxrss,
            "nvcsw": usage.ru_nvcsw,
            "nivcsw": usage.ru_nivcsw,
        },
        fh,
    )
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def measure(cmd: Sequence[str], *, env: dict[str, str], cwd: Path, timeout: float) -> Measured:
    """Run ``cmd``: its wall time, and from ``os.wait4`` its CPU time and peak RSS (its own, or
    the largest of a child it waited for), taken by a launcher process (see ``_LAUNCHER``)."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory(prefix="tw-measure-") as scratch,
    ):
        report = Path(scratch) / "rusage.json"
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, str(report), *cmd],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
        killer = threading.Timer(timeout, proc.terminate)  # the launcher kills the command
        killer.start()
        try:
            proc.wait()
        except BaseException:  # interrupted: leave no command running behind us
            proc.terminate()
            proc.wait()
            raise
        finally:
            killer.cancel()
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
        if not report.exists():
            raise BenchError(f"{cmd[0]}: the launcher reported nothing:\n{stderr[-2000:]}")
        usage = json.loads(report.read_text(encoding="utf-8"))
        return Measured(
            code=proc.returncode,
            wall_s=usage["wall_s"],
            cpu_s=usage["cpu_s"],
            peak_rss_kib=usage["maxrss_kib"],
            context_switches={"voluntary": usage["nvcsw"], "involuntary": usage["nivcsw"]},
            stdout=stdout,
            stderr=stderr,
        )


def trialwatch_command() -> list[str]:
    """The console script beside this interpreter (a venv's), else ``python -m trialwatch``."""
    script = Path(sys.executable).parent / "trialwatch"
    return [str(script)] if script.exists() else [sys.executable, "-m", "trialwatch"]


class Trialwatch:
    """The real ``trialwatch`` command with the benchmark's settings: the config file, plus
    ``TRIALWATCH_*`` variables pointing at the stand-in and the database, pacing off."""

    def __init__(
        self,
        *,
        workdir: Path,
        config: Path,
        api_url: str,
        db_url: str,
        timeout: float,
        extra: dict[str, str],
    ) -> None:
        self.workdir = workdir
        self.config = config
        self.timeout = timeout
        self.command = trialwatch_command()
        self.env = {k: v for k, v in child_env().items() if not k.startswith("TRIALWATCH_")}
        self.env.update(
            {
                "TRIALWATCH_CONFIG": str(config),
                "TRIALWATCH_API__BASE_URL": api_url,
                "TRIALWATCH_API__MIN_INTERVAL_S": "0",
                "TRIALWATCH_DATABASE__URL": db_url,
                "TRIALWATCH_LOGGING__FORMAT": "json",
                **extra,
            }
        )

    def run(self, *args: str, env: dict[str, str] | None = None) -> Measured:
        return measure(
            [*self.command, *args],
            env={**self.env, **(env or {})},
            cwd=self.workdir,
            timeout=self.timeout,
        )


def load_watch_set(ids: Sequence[str], tw: Trialwatch) -> tuple[str, Measured | None]:
    """Give trialwatch its watch set the way its version takes one; say how.

    With ``trialwatch watch import FILE`` when ``trialwatch watch --help`` works (the watch set
    then lives in the database), else as one ``[[watchlist]]`` entry per id in the config file.
    """
    if tw.run("watch", "--help").code == 0:
        ids_file = tw.workdir / "watch-ids.txt"
        ids_file.write_text("".join(f"{nct}\n" for nct in ids))
        imported = tw.run("watch", "import", str(ids_file))
        if imported.code != 0:
            raise BenchError(
                f"`trialwatch watch import` exited {imported.code}:\n{_tail(imported)}"
            )
        return "trialwatch watch import", imported
    with tw.config.open("a", encoding="utf-8") as fh:
        for number, nct in enumerate(ids, 1):
            fh.write(f'\n[[watchlist]]\nnct_id = "{nct}"\nlabel = "Bench trial {number}"\n')
    return "[[watchlist]] entries in the config file", None


def incremental_unsupported(tw: Trialwatch) -> str | None:
    """None when trialwatch accepts the incremental setting; else why not, in its own words."""
    probe = tw.workdir / "probe"
    probe.mkdir(exist_ok=True)
    config = probe / "probe.toml"
    config.write_text("# a settings probe written by benchmarks/bench_sync.py\n")
    answer = tw.run(
        "status",
        "--check",
        env={
            "TRIALWATCH_CONFIG": str(config),
            "TRIALWATCH_DATABASE__URL": f"sqlite:///{probe / 'probe.db'}",
            INCREMENTAL_SETTING: "1",
        },
    )
    if answer.code != 2:  # 2: invalid settings, nothing done
        return None
    lines = [line.strip() for line in answer.stderr.splitlines() if line.strip()]
    said = next((line for line in lines if "sync" in line.lower()), lines[-1] if lines else "")
    return f"trialwatch refuses {INCREMENTAL_SETTING} ({said[:160]})"


# -- databases -------------------------------------------------------------------------------------


class Database(Protocol):
    url: str

    def size(self) -> int: ...

    def writes(self) -> dict[str, dict[str, int]]: ...


class SqliteDatabase:
    """A fresh SQLite file. Rows written are found by comparing every row's checksum, by rowid,
    with the previous call's (reads the whole database: a few seconds at 100,000 studies)."""

    def __init__(self, path: Path) -> None:
        if path.exists():
            raise BenchError(f"{path} exists; the benchmark needs a fresh database")
        self.path = path
        self.url = f"sqlite:///{path}"
        self._rows: dict[str, dict[Any, int]] = {}

    def size(self) -> int:
        files = [self.path, self.path.with_name(self.path.name + "-wal")]
        return sum(f.stat().st_size for f in files if f.exists())

    def writes(self) -> dict[str, dict[str, int]]:
        if not self.path.exists():
            return {}
        now = _sqlite_rows(self.path)
        out = {}
        for table in sorted(set(now) | set(self._rows)):
            old, new = self._rows.get(table, {}), now.get(table, {})
            counts = {
                "inserted": sum(1 for key in new if key not in old),
                "updated": sum(1 for key, crc in new.items() if key in old and old[key] != crc),
                "deleted": sum(1 for key in old if key not in new),
            }
            if any(counts.values()):
                out[table] = counts
        self._rows = now
        return out


def _sqlite_rows(path: Path) -> dict[str, dict[Any, int]]:
    conn = sqlite3.connect(path)
    try:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        out: dict[str, dict[Any, int]] = {}
        for table in tables:
            try:
                cursor = conn.execute(f'SELECT rowid, * FROM "{table}"')
                keyed = True
            except sqlite3.OperationalError:  # WITHOUT ROWID: the row itself is its key
                cursor = conn.execute(f'SELECT * FROM "{table}"')
                keyed = False
            rows: dict[Any, int] = {}
            twins: Counter[int] = Counter()
            for row in cursor:
                crc = 0
                for value in row[1:] if keyed else row:
                    crc = zlib.crc32(
                        value if isinstance(value, bytes) else repr(value).encode(), crc
                    )
                if keyed:
                    rows[row[0]] = crc
                else:  # an update shows as one row gone and one new
                    rows[(crc, twins[crc])] = crc
                    twins[crc] += 1
            out[table] = rows
        return out
    finally:
        conn.close()


class PostgresDatabase:
    """A fresh schema in a PostgreSQL database (dropped on close). Rows written come from
    ``pg_stat_user_tables``, read once trialwatch's connections have gone."""

    def __init__(self, base_url: str) -> None:
        import psycopg

        self._psycopg = psycopg
        self.schema = f"trialwatch_bench_{secrets.token_hex(4)}"
        self.app = self.schema
        self._dsn = re.sub(r"^postgresql\+psycopg://", "postgresql://", base_url)
        separator = "&" if "?" in base_url else "?"
        self.url = (
            f"{base_url}{separator}options=-csearch_path%3D{self.schema}"
            f"&application_name={self.app}"
        )
        try:
            self._conn = psycopg.connect(self._dsn, autocommit=True)
        except psycopg.Error as exc:
            raise BenchError(f"cannot connect to PostgreSQL at {base_url}: {exc}") from exc
        self._conn.execute(f'CREATE SCHEMA "{self.schema}"')
        self._last: dict[str, dict[str, int]] = {}

    def close(self) -> None:
        with contextlib.suppress(self._psycopg.Error):
            self._conn.execute(f'DROP SCHEMA "{self.schema}" CASCADE')
        self._conn.close()

    def size(self) -> int:
        row = self._conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'm', 'p')",
            (self.schema,),
        ).fetchone()
        return int(row[0]) if row else 0

    def writes(self) -> dict[str, dict[str, int]]:
        # A backend reports its statistics as it exits: wait for trialwatch's to go.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            row = self._conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (self.app,)
            ).fetchone()
            if not row or not row[0]:
                break
            time.sleep(0.05)
        time.sleep(0.2)
        self._conn.execute("SELECT pg_stat_clear_snapshot()")
        now = {
            table: {"inserted": ins, "updated": upd, "deleted": dele}
            for table, ins, upd, dele in self._conn.execute(
                "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables "
                "WHERE schemaname = %s",
                (self.schema,),
            )
        }
        out = {}
        for table, counts in sorted(now.items()):
            before = self._last.get(table, {})
            delta = {k: v - before.get(k, 0) for k, v in counts.items()}
            if any(delta.values()):
                out[table] = delta
        self._last = now
        return out


@contextlib.contextmanager
def open_database(kind: str, workdir: Path, pg_url: str) -> Iterator[Database]:
    if kind == "sqlite":
        yield SqliteDatabase(workdir / "trialwatch.db")
        return
    database = PostgresDatabase(pg_url)
    try:
        yield database
    finally:
        database.close()


# -- scenarios -------------------------------------------------------------------------------------

_COUNT = re.compile(r"\b(\d[\d,]*) (changed|new|unchanged|failed|missing)\b")
# Since the summary says "3 changes in 2 trials": the trials are the changed ones.
_CHANGED_TRIALS = re.compile(r"\b\d[\d,]* changes? in (\d[\d,]*) trials?\b")


@dataclass
class Bench:
    n: int
    tw: Trialwatch
    api: StandIn
    db: Database
    audit: bool
    naive_args: Sequence[str] = ()

    def sync(self, name: str, *args: str, env: dict[str, str] | None = None, **expect: int) -> Row:
        """``trialwatch sync ARGS``, measured; ``expect``: counts its summary should show."""
        self.api.reset()
        cpu_before = self.api.stats()["cpu_s"]
        ran = self.tw.run("sync", *args, env=env)
        stats = self.api.stats()
        if ran.code != 0:
            raise BenchError(
                f"{name}: `trialwatch sync {' '.join(args)}` exited {ran.code}:\n{_tail(ran)}"
            )
        counts = {kind: int(num.replace(",", "")) for num, kind in _COUNT.findall(ran.stdout)}
        if "changed" not in counts and (trials := _CHANGED_TRIALS.search(ran.stdout)):
            counts["changed"] = int(trials[1].replace(",", ""))
        return self._row(
            name, ran, stats, cpu_before, counts, expect, _first_line(ran.stdout), self.db
        )

    def naive(self, name: str, ids_file: Path, db_path: Path, fields: str, **expect: int) -> Row:
        """``naive_sync.py`` on the same studies, measured like the real command."""
        self.api.reset()
        cpu_before = self.api.stats()["cpu_s"]
        command = [sys.executable, str(HERE / "naive_sync.py"), "--base-url", self.api.base_url]
        command += ["--ids", str(ids_file), "--db", str(db_path), "--fields", fields]
        command += self.naive_args
        ran = measure(command, env=child_env(), cwd=self.tw.workdir, timeout=self.tw.timeout)
        stats = self.api.stats()
        if ran.code != 0:
            raise BenchError(f"{name}: naive_sync.py exited {ran.code}:\n{_tail(ran)}")
        counts = json.loads(ran.stdout.strip().splitlines()[-1])
        summary = ", ".join(f"{counts[k]} {k}" for k in ("changed", "new", "unchanged"))
        row = self._row(name, ran, stats, cpu_before, counts, expect, summary, None)
        row.db_bytes = db_path.stat().st_size
        row.logged_s = counts.get("seconds")
        return row

    def _row(
        self,
        name: str,
        ran: Measured,
        stats: dict[str, Any],
        cpu_before: float,
        counts: dict[str, int],
        expect: dict[str, int],
        summary: str,
        database: Database | None,
    ) -> Row:
        """The figures of one scenario; ``database``: the one it wrote, if trialwatch's."""
        wrong = [
            f"{k} {counts.get(k, '?')} (expected {v})"
            for k, v in expect.items()
            if counts.get(k) != v
        ]
        row = Row(
            name=name,
            wall_s=ran.wall_s,
            cpu_s=ran.cpu_s,
            context_switches=ran.context_switches,
            studies_per_s=self.n / ran.wall_s,
            requests=int(stats["requests"]),
            by_route=dict(stats["by_route"]),
            max_ids=int(stats["max_ids"]),
            fields=dict(stats["fields"]),
            served_bytes=int(stats["bytes"]),
            peak_rss_bytes=ran.peak_rss_kib * 1024,
            db_bytes=database.size() if database else None,
            writes=database.writes() if database and self.audit else None,
            standin_cpu_s=float(stats["cpu_s"]) - cpu_before,
            counts=counts,
            expected=expect,
            check="ok" if not wrong else "MISMATCH: " + "; ".join(wrong),
            summary=summary,
            logged_s=_logged_duration(ran.stderr),
        )
        # A long run shows each scenario as it ends (and keeps it if stopped later on).
        print(
            f"bench_sync: {name}: {row.wall_s:.1f} s, {row.cpu_s:.1f} s CPU, "
            f"{row.requests:,} requests, peak RSS {ran.peak_rss_kib / 1024:,.0f} MiB; {row.check}",
            file=sys.stderr,
            flush=True,
        )
        return row


@dataclass
class Row:
    name: str
    wall_s: float | None = None
    cpu_s: float | None = None
    context_switches: dict[str, int] | None = None
    studies_per_s: float | None = None
    requests: int | None = None
    by_route: dict[str, int] | None = None
    max_ids: int | None = None
    fields: dict[str, int] | None = None
    served_bytes: int | None = None
    peak_rss_bytes: int | None = None
    db_bytes: int | None = None
    writes: dict[str, dict[str, int]] | None = None
    standin_cpu_s: float | None = None
    counts: dict[str, int] | None = None
    expected: dict[str, int] | None = None
    check: str = ""
    summary: str = ""
    logged_s: float | None = None
    na: str | None = None

    @property
    def rows_written(self) -> int | None:
        if self.writes is None:
            return None
        return sum(sum(c.values()) for c in self.writes.values())

    @property
    def per_trial_rows_written(self) -> int | None:
        if self.writes is None:
            return None
        return sum(sum(c.values()) for t, c in self.writes.items() if not RUN_TABLES.search(t))

    def as_json(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if v is not None}
        for key in ("wall_s", "cpu_s", "studies_per_s", "standin_cpu_s"):
            if key in out:
                out[key] = round(out[key], 3 if key != "studies_per_s" else 1)
        if self.peak_rss_bytes is not None:
            out["peak_rss_mib"] = round(self.peak_rss_bytes / MIB, 1)
        if self.db_bytes is not None:
            out["db_mib"] = round(self.db_bytes / MIB, 1)
        if self.writes is not None:
            out["rows_written"] = self.rows_written
            out["per_trial_rows_written"] = self.per_trial_rows_written
        return out


def _logged_duration(stderr: str) -> float | None:
    """The sync's own ``duration_s`` (its ``sync.done``/``sync.idle`` log event), if it logs one."""
    for line in reversed(stderr.splitlines()):
        if '"duration_s"' in line and '"sync.' in line:
            with contextlib.suppress(ValueError, TypeError):
                return float(json.loads(line)["duration_s"])
    return None


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _tail(ran: Measured, lines: int = 15) -> str:
    return "\n".join((ran.stderr + ran.stdout).strip().splitlines()[-lines:])


# -- the run ---------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    n = args.studies
    ids = [corpus.nct_id(i) for i in range(n)]
    report: dict[str, Any] = {
        "benchmark": "bench_sync",
        "studies": n,
        "unwatched_studies": EXTRA_STUDIES,
        "db": args.db,
        "machine": machine(),
    }
    with contextlib.ExitStack() as stack:
        if args.workdir:
            workdir = Path(args.workdir).resolve()
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tw-bench-")))
        api = stack.enter_context(StandIn(watched=n, extra=EXTRA_STUDIES, seed=args.seed))
        db = stack.enter_context(open_database(args.db, workdir, args.pg_url))
        config = workdir / "trialwatch.toml"
        config.write_text(
            "# Written by benchmarks/bench_sync.py; settings come from TRIALWATCH_*.\n"
        )
        extra = {"TRIALWATCH_API__BATCH_SIZE": str(args.batch_size)} if args.batch_size else {}
        tw = Trialwatch(
            workdir=workdir,
            config=config,
            api_url=api.base_url,
            db_url=db.url,
            timeout=args.timeout,
            extra=extra,
        )
        naive_args = ["--sqlite-defaults", "--always-deepdiff"] if args.naive_strict else []
        if args.naive:
            report["naive_args"] = naive_args
        report["trialwatch"] = source = trialwatch_source(tw)
        fields = source["fields"]
        bench = Bench(n=n, tw=tw, api=api, db=db, audit=not args.no_audit, naive_args=naive_args)
        report["standin"] = {
            "setup_s": api.setup_s,
            **api.info(fields),
            **page_time(api, ids, fields),
        }
        report["config"] = {k: v for k, v in tw.env.items() if k.startswith("TRIALWATCH_")}
        report["command"] = tw.command

        how, imported = load_watch_set(ids, tw)
        report["watch_set"] = {"how": how}
        if imported is not None:
            report["watch_set"].update(
                wall_s=round(imported.wall_s, 3),
                cpu_s=round(imported.cpu_s, 3),
                peak_rss_mib=round(imported.peak_rss_kib / 1024, 1),
            )
        if not args.no_audit:  # what the import wrote is not the first sync's
            report["watch_set"]["writes"] = db.writes()
        unsupported = incremental_unsupported(tw)
        # Full sweeps stay full sweeps when the incremental mode exists: its threshold above N.
        full = {} if unsupported else {INCREMENTAL_SETTING: str(n + 1)}

        rows = [
            bench.sync("first sync", env=full, new=n),
            bench.sync("idle poll", env=full),
        ]
        if args.user_path:
            # The user's first day: 1 % changes after the first sync, synced with the default
            # settings; the listing from the first sync's day holds only the changed studies.
            changed = api.change(CHANGED_PERCENT)
            rows.append(bench.sync("first day, 1 % changed, default", changed=changed["changed"]))
        rows.append(bench.sync("forced re-sync, unchanged", "--force", env=full, changed=0))
        changed = api.change(CHANGED_PERCENT)
        rows.append(bench.sync("1 % changed", env=full, changed=changed["changed"]))
        if args.user_path:
            # The user's path: the default incremental_above (5,000), then a full sweep.
            changed = api.change(CHANGED_PERCENT)
            rows.append(bench.sync("1 % changed, default settings", changed=changed["changed"]))
            rows.append(bench.sync("sync --full, unchanged", "--full", changed=0))
        if unsupported:
            rows.append(Row(name="incremental", na=unsupported))
        else:
            watched = math.ceil(REGISTRY_UPDATES * WATCHED_SHARE_PERCENT / 100)
            day = api.registry_day(REGISTRY_UPDATES, watched)
            rows.append(
                bench.sync("incremental", env={INCREMENTAL_SETTING: "1"}, changed=day["watched"])
            )
        if args.naive:
            ids_file = workdir / "naive-ids.txt"
            ids_file.write_text("".join(f"{nct}\n" for nct in ids))
            naive_db = workdir / "naive.db"
            rows.append(bench.naive("naive: first sync", ids_file, naive_db, fields, new=n))
            changed = api.change(CHANGED_PERCENT)
            rows.append(
                bench.naive(
                    "naive: 1 % changed", ids_file, naive_db, fields, changed=changed["changed"]
                )
            )
        report["scenarios"] = {row.name: row.as_json() for row in rows}
        report["targets"] = targets(rows, n, args.db)
        report["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return report


def page_time(api: StandIn, ids: Sequence[str], fields: str) -> dict[str, Any]:
    """How long the stand-in takes to answer one page of up to 500 studies (best of 3): a
    longer ``filter.ids`` is refused as the real server refuses it (414 URI Too Long)."""
    batch = ids[:500]
    best, size = math.inf, 0
    for _ in range(3):
        started = time.perf_counter()
        size = len(
            api.get(
                "/studies", **{"filter.ids": ",".join(batch), "fields": fields}, pageSize=len(batch)
            )
        )
        best = min(best, time.perf_counter() - started)
    return {"page_studies": len(batch), "page_bytes": size, "page_ms": round(best * 1000, 1)}


def targets(rows: Sequence[Row], n: int, db: str) -> list[dict[str, Any]]:
    """Issue #8's targets (set for N = 100,000 on 2 cores), met (True), not (False) or n/a."""
    by = {row.name: row for row in rows if row.na is None}
    first, idle = by.get("first sync"), by.get("idle poll")
    forced, one = by.get("forced re-sync, unchanged"), by.get("1 % changed")
    incremental = by.get("incremental")
    naive_first, naive_one = by.get("naive: first sync"), by.get("naive: 1 % changed")
    out: list[dict[str, Any]] = []

    def add(target: str, value: str, ok: bool | None) -> None:
        out.append({"target": target, "value": value, "ok": ok})

    batch = (first.max_ids if first else 0) or 1
    full_requests = math.ceil(n / batch) + 1
    for row in (first, forced, one):
        if row is not None:
            add(
                f"{row.name}: requests = ceil(N/batch) + 1 = {full_requests} (batch {batch})",
                str(row.requests),
                row.requests == full_requests,
            )
    if idle is not None:
        add("idle poll: 1 request", str(idle.requests), idle.requests == 1)
    if incremental is not None and incremental.expected is not None:
        bound = 5 + math.ceil(incremental.expected.get("changed", 0) / batch)
        add(
            f"incremental: requests <= {bound}",
            str(incremental.requests),
            (incremental.requests or 0) <= bound,
        )
    floor = 1500 if db == "sqlite" else 1000
    speeds: list[tuple[Row | None, float, Row | None, float]] = [
        (first, floor, naive_first, 3),
        (forced, 4000, None, 0),
        (one, 3000, naive_one, 10),
    ]
    for row, minimum, naive, times in speeds:
        if row is None or row.studies_per_s is None:
            continue
        add(
            f"{row.name} >= {minimum:,} studies/s",
            f"{row.studies_per_s:,.0f}",
            row.studies_per_s >= minimum,
        )
        if naive is not None and naive.studies_per_s:
            ratio = row.studies_per_s / naive.studies_per_s
            add(f"{row.name} >= {times}x naive", f"{ratio:.2f}x", ratio >= times)
    ours = [r for r in rows if r.na is None and not r.name.startswith("naive")]
    peak = max((r.peak_rss_bytes or 0) for r in ours) if ours else 0
    add("peak RSS < 250 MB (238 MiB)", f"{peak / MIB:,.0f} MiB", peak < 250 * MB)
    add("RSS at 100,000 <= 1.5 x RSS at 10,000", "compare two runs' JSON", None)
    if forced is not None and forced.writes is not None:
        add(
            "forced unchanged re-sync writes no per-trial row",
            f"{forced.per_trial_rows_written:,} rows",
            forced.per_trial_rows_written == 0,
        )
    if one is not None and one.writes is not None and one.expected:
        k = one.expected.get("changed", 0)
        busiest = max(
            (sum(c.values()) for t, c in one.writes.items() if not RUN_TABLES.search(t)), default=0
        )
        add(
            f"1 % change writes only those trials' rows (<= 5 per table per changed trial: "
            f"{5 * k:,})",
            f"{busiest:,} in the busiest table",
            busiest <= 5 * k,
        )
    return out


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
    }


_SOURCE_PROBE = """
import json, trialwatch as tw
try:
    from trialwatch.ctgov import STUDY_FIELDS as fields
except ImportError:
    fields = None
print(json.dumps({"path": tw.__file__, "version": tw.__version__, "fields": fields}))
"""


def trialwatch_source(tw: Trialwatch) -> dict[str, Any]:
    """Which trialwatch the command runs (its interpreter, environment and directory): path,
    version, git commit, and the ``fields=`` its client asks for."""
    probe = measure([sys.executable, "-c", _SOURCE_PROBE], env=tw.env, cwd=tw.workdir, timeout=120)
    if probe.code != 0:
        raise BenchError(
            f"cannot import trialwatch (install it, or set PYTHONPATH):\n{_tail(probe)}"
        )
    found = json.loads(probe.stdout.strip().splitlines()[-1])
    package = Path(found["path"]).parent
    out: dict[str, Any] = {"path": str(package), "version": found["version"]}
    out["fields"] = found["fields"] or DEFAULT_FIELDS
    git = ["git", "-C", str(package)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        dirty = subprocess.run(
            [*git, "--no-optional-locks", "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
        ).stdout.strip()
        out["git"] = head.stdout.strip() + (" (uncommitted changes)" if dirty else "")
    return out


def child_env() -> dict[str, str]:
    """This process's environment, ``PYTHONPATH`` made absolute (children run elsewhere)."""
    env = dict(os.environ)
    if env.get("PYTHONPATH"):
        parts = env["PYTHONPATH"].split(os.pathsep)
        env["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve()) if p else p for p in parts)
    return env


# -- output ----------------------------------------------------------------------------------------


def print_report(report: dict[str, Any]) -> None:
    m, source, standin = report["machine"], report["trialwatch"], report["standin"]
    db = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[report["db"]]
    print(
        f"trialwatch sync benchmark: {report['studies']:,} watched studies "
        f"(+{report['unwatched_studies']:,} unwatched in the registry), {db}, pacing off"
    )
    print(f"  trialwatch: {source['path']} {source.get('git', '')}".rstrip())
    print(
        f"  machine: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, {m['system']}; "
        f"load average {m['load_average_start'][0]} at start, "
        f"{m['load_average_end'][0]} at end"
    )
    print(
        f"  stand-in: {standin['studies']:,} studies built in {standin['setup_s']} s; "
        f"{standin['mean_bytes'] / 1000:.1f} KB per study served with fields="
        f"{standin['fields']} (median {standin['median_bytes'] / 1000:.1f}, "
        f"{standin['min_bytes'] / 1000:.1f}-{standin['max_bytes'] / 1000:.1f}); "
        f"a {standin['page_studies']:,}-study page in {standin['page_ms']} ms"
    )
    watch = report["watch_set"]
    took = (
        f" ({watch['wall_s']:.2f} s, peak RSS {watch['peak_rss_mib']} MiB)"
        if "wall_s" in watch
        else ""
    )
    print(f"  watch set: {watch['how']}{took}")
    print()
    headers = [
        "scenario",
        "wall s",
        "CPU s",
        "logged s",
        "studies/s",
        "requests",
        "peak RSS MiB",
        "DB MiB",
        "rows written",
        "stand-in CPU s",
        "check",
    ]
    table = []
    for name, row in report["scenarios"].items():
        if "na" in row:
            table.append([name, "n/a", *[""] * (len(headers) - 3), row["na"]])
            continue
        table.append(
            [
                name,
                f"{row['wall_s']:.2f}",
                f"{row['cpu_s']:.2f}",
                f"{row['logged_s']:.2f}" if "logged_s" in row else "-",
                "-" if name == "idle poll" else f"{row['studies_per_s']:,.0f}",
                f"{row['requests']:,}",
                f"{row['peak_rss_mib']:,.1f}",
                f"{row['db_mib']:,.1f}" if "db_mib" in row else "-",
                f"{row['rows_written']:,}" if "rows_written" in row else "-",
                f"{row['standin_cpu_s']:.2f}",
                f"{row['check']}: {row['summary']}"[:90],
            ]
        )
    widths = [max(len(str(r[i])) for r in [headers, *table]) for i in range(len(headers))]
    for cells in [headers, *table]:
        line = [
            str(c).ljust(w) if i in (0, len(headers) - 1) else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        print("  ".join(line).rstrip())
    print()
    print("rows written, by table:")
    for name, row in report["scenarios"].items():
        if row.get("writes"):
            parts = [
                f"{table} " + " ".join(f"{k[0]}{v:,}" for k, v in counts.items() if v)
                for table, counts in row["writes"].items()
            ]
            print(f"  {name}: " + "; ".join(parts) + "   (i inserted, u updated, d deleted)")
    print()
    print("issue #8 targets (set for N = 100,000 on 2 cores):")
    for target in report["targets"]:
        mark = {True: "met ", False: "MISS", None: " -- "}[target["ok"]]
        print(f"  [{mark}] {target['target']}: {target['value']}")
    print()
    print(json.dumps(report, separators=(",", ":")))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/bench_sync.py",
        description=__doc__.split("\n\n")[0] + " Runs the real `trialwatch` command against a "
        "CT.gov stand-in in its own process and prints a table, the issue #8 targets, and one "
        "JSON line.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  python benchmarks/bench_sync.py                  # 2,000 studies, SQLite\n"
        "  python benchmarks/bench_sync.py --studies 100000 --naive\n"
        "  python benchmarks/bench_sync.py --studies 5000 --db postgresql\n"
        "\nWhat each figure means: benchmarks/README.md.",
    )
    parser.add_argument(
        "--studies",
        "-n",
        type=int,
        default=DEFAULT_STUDIES,
        metavar="N",
        help=f"watched studies (default {DEFAULT_STUDIES:,}: under a minute)",
    )
    parser.add_argument(
        "--db",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="the database trialwatch syncs into (default sqlite: a file in the work dir)",
    )
    parser.add_argument(
        "--naive",
        action="store_true",
        help="also run the naive baseline (one GET, DeepDiff and commit per trial; "
        "needs pip install -e '.[bench]')",
    )
    parser.add_argument(
        "--naive-strict",
        action="store_true",
        help="the naivest baseline: SQLite's defaults (fsyncs per commit) and DeepDiff on every "
        "record (tens of ms each); implies --naive",
    )
    parser.add_argument(
        "--pg-url",
        default=DEFAULT_PG_URL,
        help=f"PostgreSQL database for --db postgresql; a fresh schema is made in it and "
        f"dropped after (default {DEFAULT_PG_URL})",
    )
    parser.add_argument(
        "--batch-size", type=int, help="set TRIALWATCH_API__BATCH_SIZE (default: trialwatch's)"
    )
    parser.add_argument(
        "--no-audit",
        action="store_true",
        help="do not count rows written per table (on SQLite that reads the whole database "
        "after each scenario)",
    )
    parser.add_argument(
        "--user-path",
        action="store_true",
        help="also run a 1 %% change the day after the first sync and, after '1 %% changed', "
        "another, both synced with the default settings (incremental above 5,000 watched), "
        "and an unchanged `sync --full`",
    )
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per command")
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic registry")
    parser.add_argument(
        "--workdir", help="keep config, databases and ids here (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    args.naive = args.naive or args.naive_strict
    if args.studies < 1:
        parser.error("--studies must be at least 1")
    if args.naive and importlib.util.find_spec("deepdiff") is None:
        parser.error("--naive needs DeepDiff: pip install -e '.[bench]'")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM (and SIGINT, which a shell ignores in background jobs) unwind like an error, so
    # the stand-in, the PostgreSQL schema and the work directory are cleaned up.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _interrupted)
    try:
        report = run(args)
    except BenchError as exc:
        print(f"bench_sync: {exc}", file=sys.stderr)
        return 1
    print_report(report)
    return 0


def _interrupted(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    raise SystemExit(main())
