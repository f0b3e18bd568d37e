"""How fast ``watch import`` reads text: a large article, and text made to make a reader backtrack.

    .venv/bin/python benchmarks/bench_import.py [--mb 4]

Reads (``trialwatch.importtext.read_import``, no I/O) each of: the review of
``tests/data/import/review_cells.txt`` repeated to about ``--mb`` megabytes (tables of one cell
per line, prose between them), the same for ``review_columns.txt`` (aligned columns), and
texts of about the same size made of what once made a pattern quadratic (a run of spaces after
"NCT", thousands of short header-like lines). Prints the seconds and megabytes per second of
each, then one JSON line with the figures.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from trialwatch.importtext import read_import

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "import"


def _repeat(text: str, size: int) -> str:
    return text * max(1, size // len(text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=4, help="size of each text (4 MB)")
    args = parser.parse_args()
    size = int(args.mb * 1_000_000)
    texts: dict[str, Callable[[], str]] = {
        "review_cells": lambda: _repeat((DATA / "review_cells.txt").read_text("utf-8"), size),
        "review_columns": lambda: _repeat((DATA / "review_columns.txt").read_text("utf-8"), size),
        "nct_then_spaces": lambda: "NCT" + " " * size + "x",
        "short_header_lines": lambda: _repeat("NCT Number\n\n", size),
        "cell_rows": lambda: (
            "\tNCT Number\n\tStatus\n\n" + _repeat("\tNCT01607905\n\tCompleted\n", size)
        ),
    }
    figures = {}
    for name, make in texts.items():
        text = make()
        start = time.perf_counter()
        found = read_import(text)
        seconds = time.perf_counter() - start
        mb = len(text) / 1_000_000
        figures[name] = {"mb": round(mb, 2), "s": round(seconds, 2), "ids": len(found)}
        print(f"{name:20} {mb:6.2f} MB  {seconds:7.2f} s  {mb / seconds:6.2f} MB/s")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
