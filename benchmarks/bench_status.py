"""How fast ``trialwatch status`` answers on a large watch set, against ``import typer``.

    .venv/bin/python benchmarks/bench_status.py --studies 20000 [--runs 5] [--workdir DIR]

Builds the database as a user would (the stand-in of ``standin.py``, ``watch import`` of its
ids, a first ``sync``, then 1 % of the studies changed and a second ``sync``), unless
``--workdir`` already holds one from an earlier run. Then CT.gov is made unreachable:
``[api] base_url`` points at a loopback port that counts the connections it is offered, so
"makes no request" is measured, not assumed. ``status`` (COLUMNS=80, stdout to a pipe) and
``python -c 'import typer'`` run alternately, ``--runs`` times each, each a fresh process
timed whole (interpreter start-up included). Prints the medians, their ratio (issue 21's bar:
within 10x) and one JSON line with the commit and the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent / "trialwatch"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _build(work: Path, studies: int, env: dict[str, str]) -> None:
    port = _free_port()
    argv = [sys.executable, str(HERE / "standin.py"), "--watched", str(studies)]
    standin = subprocess.Popen(
        [*argv, "--port", str(port), "--write-ids", str(work / "ids.txt")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 600
        while not (work / "ids.txt").exists() or not _answers(port):
            if time.monotonic() > deadline or standin.poll() is not None:
                raise SystemExit("the stand-in did not start")
            time.sleep(0.5)
        live = {**env, "TRIALWATCH_API__BASE_URL": f"http://127.0.0.1:{port}/api/v2"}
        for argv in (["watch", "import", str(work / "ids.txt")], ["sync"]):
            subprocess.run([str(BIN), *argv], env=live, cwd=work, check=True, capture_output=True)
        import urllib.request

        urllib.request.urlopen(
            urllib.request.Request(
                f"http://127.0.0.1:{port}/_bench/change?percent=1", method="POST"
            ),
            timeout=600,
        ).close()
        subprocess.run([str(BIN), "sync"], env=live, cwd=work, check=True, capture_output=True)
    finally:
        standin.terminate()
        standin.wait()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class _Counter:
    """A loopback port that accepts and counts connections and never answers: CT.gov, down."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.count = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.count += 1
            conn.close()


def _timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr}")
    return elapsed, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=20_000, help="watched studies (20,000)")
    parser.add_argument("--runs", type=int, default=5, help="processes per command (5)")
    parser.add_argument("--workdir", type=Path, help="keep (or reuse) the database here")
    args = parser.parse_args()
    work = (args.workdir or Path(f"/tmp/trialwatch-bench-status-{args.studies}")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    config = work / "trialwatch.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{work / "trialwatch.db"}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIALWATCH_")}
    env |= {"TRIALWATCH_CONFIG": str(config), "TRIALWATCH_API__MIN_INTERVAL_S": "0"}
    if not (work / "trialwatch.db").exists():
        print(f"building a {args.studies:,}-trial database in {work} ...", file=sys.stderr)
        _build(work, args.studies, env)

    down = _Counter()
    env |= {"TRIALWATCH_API__BASE_URL": f"http://127.0.0.1:{down.port}/api/v2", "COLUMNS": "80"}
    load_before = os.getloadavg()
    status_s: list[float] = []
    typer_s: list[float] = []
    out = ""
    for _ in range(args.runs):
        typer_s.append(_timed([sys.executable, "-c", "import typer"], env, work)[0])
        elapsed, out = _timed([str(BIN), "status"], env, work)
        status_s.append(elapsed)
    load_after = os.getloadavg()
    status_median, typer_median = statistics.median(status_s), statistics.median(typer_s)
    ratio = status_median / typer_median
    widest = max(len(line) for line in out.splitlines())
    commit = subprocess.run(
        ["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    print(out)
    print(f"trialwatch status ({args.studies:,} trials): median {status_median:.3f}s")
    print(f"python -c 'import typer':         median {typer_median:.3f}s")
    print(f"ratio {ratio:.1f}x (target: within 10x); requests to CT.gov: {down.count}")
    print(f"widest line {widest} (COLUMNS=80); load {load_before[0]:.1f} -> {load_after[0]:.1f}")
    print(
        json.dumps(
            {
                "bench": "status",
                "commit": commit,
                "studies": args.studies,
                "runs": args.runs,
                "status_s": [round(t, 3) for t in status_s],
                "import_typer_s": [round(t, 3) for t in typer_s],
                "status_median_s": round(status_median, 3),
                "import_typer_median_s": round(typer_median, 3),
                "ratio": round(ratio, 2),
                "requests": down.count,
                "widest_line": widest,
                "loadavg_before": load_before,
                "loadavg_after": load_after,
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
