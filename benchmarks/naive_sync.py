"""The naive baseline: the sync script people write first, to measure trialwatch against.

One GET per trial (``/studies/{nctId}``), ``json``, DeepDiff against the JSON stored last time,
and a commit per trial into SQLite. Where a choice would make it slow for reasons that are not
its design, it takes the fast one, so that "N times the naive script" is not won cheaply:

- it asks for the same ``fields`` as trialwatch's client, over one keep-alive connection, so
  both move the same bytes;
- SQLite runs as trialwatch's does (WAL, ``synchronous=NORMAL``: a commit waits for no fsync);
  ``--sqlite-defaults`` keeps SQLite's rollback journal and ``synchronous=FULL`` instead, where
  every commit waits for several fsyncs;
- DeepDiff runs only when the record is not equal to the stored one (DeepDiff takes tens of
  milliseconds on an unchanged 10 KB record); ``--always-deepdiff`` runs it on every record.

    python benchmarks/naive_sync.py --base-url http://127.0.0.1:8000/api/v2 --ids ids.txt \\
        --db naive.db

Prints one JSON line: ``{"checked": .., "new": .., "changed": .., "unchanged": .., ...}``.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
from deepdiff import DeepDiff

DEFAULT_FIELDS = "ProtocolSection|HasResults"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/naive_sync.py",
        description="One GET, one DeepDiff and one commit per trial (a baseline, not a tool).",
    )
    parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8000/api/v2")
    parser.add_argument("--ids", type=Path, required=True, help="a file of NCT ids, one a line")
    parser.add_argument("--db", type=Path, required=True, help="the SQLite file")
    parser.add_argument("--fields", default=DEFAULT_FIELDS, help="the fields= to ask for")
    parser.add_argument(
        "--sqlite-defaults", action="store_true", help="rollback journal, synchronous=FULL"
    )
    parser.add_argument(
        "--always-deepdiff", action="store_true", help="DeepDiff even records equal to the stored"
    )
    args = parser.parse_args(argv)

    ids = [line.strip() for line in args.ids.read_text().splitlines() if line.strip()]
    db = sqlite3.connect(args.db)
    if not args.sqlite_defaults:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS trial "
        "(nct_id TEXT PRIMARY KEY, record TEXT NOT NULL, checked_at TEXT NOT NULL)"
    )
    db.execute(
        "CREATE TABLE IF NOT EXISTS change (id INTEGER PRIMARY KEY, nct_id TEXT NOT NULL, "
        "detected_at TEXT NOT NULL, diff TEXT NOT NULL)"
    )
    db.commit()
    counts: Counter[str] = Counter()
    started = time.perf_counter()
    with httpx.Client(base_url=args.base_url, timeout=60) as http:
        for nct_id in ids:
            response = http.get(f"/studies/{nct_id}", params={"fields": args.fields})
            counts["requests"] += 1
            if response.status_code == 404:
                counts["missing"] += 1
                continue
            response.raise_for_status()
            record = json.loads(response.content)
            now = datetime.now(UTC).isoformat()
            row = db.execute("SELECT record FROM trial WHERE nct_id = ?", (nct_id,)).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO trial (nct_id, record, checked_at) VALUES (?, ?, ?)",
                    (nct_id, json.dumps(record), now),
                )
                counts["new"] += 1
            else:
                old = json.loads(row[0])
                diff = DeepDiff(old, record) if args.always_deepdiff or old != record else None
                if diff:
                    db.execute(
                        "UPDATE trial SET record = ?, checked_at = ? WHERE nct_id = ?",
                        (json.dumps(record), now, nct_id),
                    )
                    db.execute(
                        "INSERT INTO change (nct_id, detected_at, diff) VALUES (?, ?, ?)",
                        (nct_id, now, diff.to_json()),
                    )
                    counts["changed"] += 1
                else:
                    db.execute("UPDATE trial SET checked_at = ? WHERE nct_id = ?", (now, nct_id))
                    counts["unchanged"] += 1
            db.commit()
            counts["checked"] += 1
    db.close()
    result = {"checked": 0, "new": 0, "changed": 0, "unchanged": 0, "missing": 0, **counts}
    print(json.dumps({**result, "seconds": round(time.perf_counter() - started, 3)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
