"""Reading the history back with the real ``trialwatch`` command: history, diff, report,
timeline and every export, after a baseline and three refreshes of the CT.gov stand-in.

One test builds the history (four syncs) and then checks every command against the change
events it recorded: each command start costs about a second, so they share one build.
"""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tests import records
from tests.conftest import SELINEXOR
from tests.e2e import Run, trialwatch, user_env
from tests.fakes.ctgov_server import FakeCtGov
from trialwatch.export import CSV_COLUMNS

pytestmark = pytest.mark.e2e

SEAL = "NCT02606461"  # status: Active, not recruiting -> Completed
SLIP = "NCT04595994"  # primary completion 2027-06-30 est. -> 2028-08-31 est.
GROW = "NCT04811196"  # METSSAR: enrollment 56 (est.) -> 80 (est.)
ATOM = "{http://www.w3.org/2005/Atom}"
SVG = "{http://www.w3.org/2000/svg}"
_TRIAL_SVG = re.compile(
    r'<svg xmlns="http://www.w3.org/2000/svg" class="trial-timeline".*?</svg>', re.S
)
_GANTT_SVG = re.compile(r'<svg xmlns="http://www.w3.org/2000/svg" class="gantt".*?</svg>', re.S)


def _ok(run: Run) -> str:
    assert run.code == 0, run.err
    return run.out


def _one_line_error(run: Run, *needles: str) -> None:
    assert run.code == 2, (run.out, run.err)
    assert run.out == ""
    assert run.err.startswith("trialwatch: ")
    assert run.err.strip().count("\n") == 0, run.err
    for needle in needles:
        assert needle in run.err


# --- the picture, read back -----------------------------------------------------------------------


def _trial_svgs(page: str) -> dict[str, ET.Element]:
    """Each trial's SVG in an HTML page, parsed, by NCT id."""
    # Our own output, parsed to check it: not untrusted XML.
    svgs = [ET.fromstring(m.group(0)) for m in _TRIAL_SVG.finditer(page)]  # noqa: S314
    return {svg.get("data-nct", ""): svg for svg in svgs}


def _axis(svg: ET.Element) -> Callable[[date], float]:
    """The day -> x mapping the picture uses, read from its year labels (1 January each)."""
    years = {
        int(e.text): float(e.get("x", "nan"))
        for e in svg.findall(SVG + "text")
        if e.text and re.fullmatch(r"\d{4}", e.text)
    }
    first, last = min(years), max(years)
    start, end = date(first, 1, 1), date(last, 1, 1)

    def x(day: date) -> float:
        return years[first] + (day - start).days / (end - start).days * (years[last] - years[first])

    return x


def _classed(root: ET.Element, tag: str, name: str) -> list[ET.Element]:
    return [e for e in root.iter(SVG + tag) if name in (e.get("class") or "").split()]


def _check_picture(page: str, changed_on: date) -> None:
    svgs = _trial_svgs(page)
    slip_svg = svgs[SLIP]
    x = _axis(slip_svg)
    (slip,) = _classed(slip_svg, "g", "slip")
    assert slip.get("data-field") == "primary_completion_date"
    assert (slip.get("data-from"), slip.get("data-to")) == ("2027-06-30", "2028-08-31")
    (line,) = _classed(slip, "line", "slip-line")
    assert float(line.get("x1", "nan")) == pytest.approx(x(date(2027, 6, 30)), abs=0.05)
    assert float(line.get("x2", "nan")) == pytest.approx(x(date(2028, 8, 31)), abs=0.05)
    (marker,) = [
        m
        for row in _classed(slip_svg, "g", "date-row")
        if row.get("data-field") == "primary_completion_date"
        for m in _classed(row, "circle", "date-marker")
    ]
    assert "estimated" in (marker.get("class") or "")
    assert float(marker.get("cx", "nan")) == pytest.approx(x(date(2028, 8, 31)), abs=0.05)

    seal = svgs[SEAL]
    spans = _classed(seal, "rect", "status-span")
    assert [s.get("data-status") for s in spans] == ["ACTIVE_NOT_RECRUITING", "COMPLETED"]
    completed = spans[-1]
    assert completed.get("data-start") == changed_on.isoformat()
    assert float(completed.get("x", "nan")) == pytest.approx(_axis(seal)(changed_on), abs=0.05)
    assert not _classed(seal, "g", "slip")


def _check_gantt(page: str, changed_on: date) -> None:
    """The timeline page: one picture, one row per trial, the slip and the status bands drawn
    where their dates are on the picture's one axis."""
    (match,) = _GANTT_SVG.finditer(page)
    gantt = ET.fromstring(match.group(0))  # noqa: S314 (our own output, parsed to check it)
    x = _axis(gantt)
    rows = {row.get("data-nct", ""): row for row in _classed(gantt, "g", "gantt-row")}
    assert len(rows) == 13
    (slip,) = _classed(rows[SLIP], "g", "slip")
    assert slip.get("data-field") == "primary_completion_date"
    assert (slip.get("data-from"), slip.get("data-to")) == ("2027-06-30", "2028-08-31")
    (line,) = _classed(slip, "line", "slip-line")
    assert float(line.get("x1", "nan")) == pytest.approx(x(date(2027, 6, 30)), abs=0.05)
    assert float(line.get("x2", "nan")) == pytest.approx(x(date(2028, 8, 31)), abs=0.05)
    spans = _classed(rows[SEAL], "rect", "status-span")
    assert [s.get("data-status") for s in spans] == ["ACTIVE_NOT_RECRUITING", "COMPLETED"]
    assert float(spans[-1].get("x", "nan")) == pytest.approx(x(changed_on), abs=0.05)
    assert not _classed(rows[SEAL], "g", "slip")


# --- the test -------------------------------------------------------------------------------------


def test_three_refreshes_read_back_by_every_command(tmp_path: Path) -> None:
    db = tmp_path / "data" / "trialwatch.db"
    since = datetime.now(UTC).date().isoformat()  # every sync below is on or after this day
    stamps: dict[str, str] = {}
    with FakeCtGov.load_dir(SELINEXOR) as api:
        env = user_env(api.base_url, db)
        assert "13 new" in _ok(trialwatch("sync", env=env, cwd=tmp_path))
        for nct_id, mutate in (
            (SEAL, records.complete),
            (SLIP, records.slip),
            (GROW, records.grow),
        ):
            api.update_study(nct_id, mutate)
            stamps[nct_id] = api.data_timestamp
            assert "1 change in 1 trial;" in _ok(trialwatch("sync", env=env, cwd=tmp_path))
        last_stamp = api.data_timestamp

    # Every reading command at once: they only read, and each start costs a second or more.
    table, feed_file = tmp_path / "trials.csv", tmp_path / "changes.atom"
    page = tmp_path / "timeline.html"
    commands = {
        "jsonl": ("export", "--format", "jsonl", "--changes"),
        "report": ("report", "--since", since),
        "report_json": ("report", "--since", since, "--format", "json"),
        "report_html": ("report", "--since", since, "--format", "html"),
        "csv": ("export", "--format", "csv", "--bom", "--output", str(table)),
        "atom_file": ("export", "--format", "atom", "--output", str(feed_file)),
        "atom": ("export", "--format", "atom"),
        "history": ("history", "SEAL"),
        "diff": ("diff", "seal"),
        "timeline": ("timeline", "--output", str(page)),
        "bad_date": ("report", "--since", "2026-02-30"),
        "unknown": ("history", "NCT09999999"),
    }
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {
            name: pool.submit(trialwatch, *args, env=env, cwd=tmp_path)
            for name, args in commands.items()
        }
        runs = {name: future.result() for name, future in futures.items()}

    # JSON lines: every recorded change event, one per line, each stamped with its CT.gov data.
    events = [json.loads(line) for line in _ok(runs["jsonl"]).splitlines()]
    assert len({e["id"] for e in events}) == len(events)
    by_field = {(e["nct_id"], e["field"]): e for e in events}
    status = by_field[(SEAL, "overall_status")]
    slip = by_field[(SLIP, "primary_completion_date")]
    grow = by_field[(GROW, "enrollment")]
    assert (status["old"], status["new"]) == ("ACTIVE_NOT_RECRUITING", "COMPLETED")
    assert (slip["old"]["date"], slip["new"]["date"]) == ("2027-06-30", "2028-08-31")
    assert (grow["old"]["count"], grow["new"]["count"]) == (56, 80)
    for event in events:
        assert event["data_timestamp"] == stamps[event["nct_id"]]
    assert status["label"] == "SEAL"
    changed_on = date.fromisoformat(status["detected_at"][:10])

    # The report lists the three in words, most severe first, and says where history starts.
    text = _ok(runs["report"])
    assert f"{len(events)} changes in 3 trials (of 13 watched trials)." in text
    for event in events:
        assert event["summary"] in text
    assert "Overall status: Active, not recruiting → Completed" in text
    assert "Primary completion slipped 14 months (2027-06-30 est. → 2028-08-31 est.)" in text
    assert "Enrollment: 56 (est.) → 80 (est.)" in text
    assert text.index(f"SEAL ({SEAL})") < text.index(f"({SLIP})")
    assert "trialwatch first recorded this trial on" in text
    assert f"https://clinicaltrials.gov/study/{SEAL}?tab=history" in text
    assert f"CT.gov data as of {last_stamp}" in text
    report = json.loads(_ok(runs["report_json"]))
    assert report["watched_count"] == 13
    assert {c["id"] for t in report["trials"] for c in t["changes"]} == {e["id"] for e in events}
    assert len(report["quiet"]) == 10

    # CSV: one row per watched trial, the same fields as the JSON export, parsed back.
    assert "Wrote 13 trials" in runs["csv"].err
    raw = table.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert len(rows) == 13
    assert list(rows[0]) == list(CSV_COLUMNS)
    csv_by_id = {r["nct_id"]: r for r in rows}
    assert csv_by_id[SEAL]["overall_status"] == "COMPLETED"
    assert csv_by_id[SEAL]["label"] == "SEAL"
    assert csv_by_id[SLIP]["primary_completion_date"] == "2028-08-31"
    assert csv_by_id[GROW]["enrollment_count"] == "80"
    assert {r["data_timestamp"] for r in rows} == {last_stamp}

    # Atom: valid XML, one entry per change, the same ids however often it is exported.
    assert runs["atom_file"].code == 0, runs["atom_file"].err
    feeds = [
        ET.fromstring(feed_file.read_bytes()),  # noqa: S314 - our own output
        ET.fromstring(_ok(runs["atom"]).encode()),  # noqa: S314
    ]
    entry_ids = [[e.findtext(ATOM + "id") for e in f.iter(ATOM + "entry")] for f in feeds]
    assert entry_ids[0] == entry_ids[1]
    assert len(set(entry_ids[0])) == len(events)
    assert all(i and i.startswith("tag:") for i in entry_ids[0])
    assert feeds[0].findtext(ATOM + "subtitle") == f"CT.gov data as of {last_stamp}"
    links = {
        link.get("href")
        for e in feeds[0].iter(ATOM + "entry")
        for link in e.iter(ATOM + "link")
        if link.get("rel") == "alternate"
    }
    assert f"https://clinicaltrials.gov/study/{SEAL}" in links

    # One trial by its label: its timeline, then the diff of its last two versions.
    history = _ok(runs["history"])
    assert history.startswith(f"SEAL ({SEAL})\n")
    assert status["summary"] in history
    assert "first recorded (baseline)" in history
    assert f"https://clinicaltrials.gov/study/{SEAL}?tab=history" in history
    assert f"[critical] {status['summary']}" in _ok(runs["diff"])

    # The picture, on its own page and in the HTML report: the slip drawn where its dates are.
    assert runs["timeline"].code == 0, runs["timeline"].err
    timeline_page = page.read_text(encoding="utf-8")
    _check_gantt(timeline_page, changed_on)
    html = _ok(runs["report_html"])
    assert grow["summary"] in html
    _check_picture(html, changed_on)

    # A bad date or an unknown trial: one line, exit 2.
    _one_line_error(runs["bad_date"], "--since", "2026-02-30")
    _one_line_error(runs["unknown"], "NCT09999999")
