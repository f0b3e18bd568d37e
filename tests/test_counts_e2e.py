"""One run's count, the same on every surface: ``sync``'s output, the email (through a real SMTP
server on loopback) and the report of a period holding only that run; and the HTML report read
in Debian's chromium (headless, driven by Playwright; no browser download), its first change
card on a phone's first screen. Screenshots are kept under ``artifacts/report/``.

The run: SEAL completes (critical), one trial's primary completion slips (major), one gains a
condition (minor), and BOSTON's record moves only its "last update posted" date (admin: recorded,
never a change). The email's recipient asks for major and above, so it shows 2 of the 3.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.conftest import SELINEXOR
from tests.e2e import REPO, Run, trialwatch, user_env
from tests.fakes.ctgov_server import FakeCtGov
from tests.fakes.smtp_server import FakeSmtp
from tests.records import complete, slip, status_module

pytestmark = pytest.mark.e2e

SEAL = "NCT02606461"
SLIPS = "NCT01607905"
GAINS = "NCT02025985"
BOSTON = "NCT03110562"
CLINICIAN = "clinician@example.org"
ARTIFACTS = Path(os.environ.get("TRIALWATCH_ARTIFACTS", REPO / "artifacts")) / "report"
CHROMIUM = Path("/usr/bin/chromium")

# The first "N change(s) in M trial(s)" of a surface, and any other change figure.
COUNT = re.compile(r"\b(\d+) changes? in (\d+) (?:watched )?trials?\b")
ANY_FIGURE = re.compile(r"\b\d+ changes?\b|\(\d+ changes?\)")


def _lead(text: str) -> tuple[int, int]:
    """The count a surface leads with; fails when another change figure comes before it."""
    found = COUNT.search(text)
    assert found is not None, text
    before = ANY_FIGURE.findall(text[: found.start()])
    assert before == [], f"a change figure before the count: {before} in {text[:400]!r}"
    return int(found.group(1)), int(found.group(2))


def _gains_a_condition(record: dict[str, Any]) -> None:
    record["protocolSection"]["conditionsModule"]["conditions"].append("Sarcoma")


def _posted_again(record: dict[str, Any]) -> None:
    status_module(record)["lastUpdatePostDateStruct"] = {"date": "2026-12-01", "type": "ACTUAL"}


def _text_part(message: EmailMessage) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return str(part.get_content())
    raise AssertionError("no text part")


@dataclass
class World:
    home: Path
    env: dict[str, str]
    sync: Run
    message: EmailMessage

    def run(self, *args: str) -> Run:
        result = trialwatch(*args, env=self.env, cwd=self.home)
        assert result.code == 0, result.err
        assert "Traceback" not in result.err
        return result


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("counts")
    (home / "data").mkdir()
    with FakeCtGov.load_dir(SELINEXOR) as api, FakeSmtp() as smtp:
        env = user_env(
            api.base_url,
            home / "data" / "trialwatch.db",
            TRIALWATCH_EMAIL__ENABLED="true",
            TRIALWATCH_EMAIL__SMTP_HOST="127.0.0.1",
            TRIALWATCH_EMAIL__SMTP_PORT=str(smtp.port),
            TRIALWATCH_EMAIL__SECURITY="none",
            TRIALWATCH_EMAIL__SENDER="trialwatch@example.org",
            TRIALWATCH_EMAIL__TO=json.dumps([CLINICIAN]),
            TRIALWATCH_EMAIL__MIN_SEVERITY="major",
            TRIALWATCH_HEALTH__MAX_DATA_AGE_HOURS="8784",
        )
        first = trialwatch("sync", env=env, cwd=home)
        assert first.code == 0, first.err
        api.update_study(SEAL, complete, bump=False)
        api.update_study(SLIPS, slip, bump=False)
        api.update_study(GAINS, _gains_a_condition, bump=False)
        api.update_study(BOSTON, _posted_again)  # the day's refresh: dates posted move
        second = trialwatch("sync", env=env, cwd=home)
        assert second.code == 0, second.err
        [received] = smtp.wait_for(1)
        yield World(home, env, second, received.message)


def test_sync_leads_with_the_changes_that_count(world: World) -> None:
    assert _lead(world.sync.out) == (3, 3)
    assert "Last update posted" not in world.sync.out
    assert BOSTON not in world.sync.out


def test_the_email_leads_with_the_runs_count_and_says_how_many_it_shows(world: World) -> None:
    subject = world.message["Subject"]
    assert subject.startswith("3 changes in 3 trials, 2 shown")
    assert _lead(subject) == _lead(world.sync.out)
    text = _text_part(world.message)
    assert text.splitlines()[0] == "3 changes in 3 trials, 2 shown"
    assert "left out: changes below major ([email] min_severity)" in text
    assert "[critical] Overall status: Active, not recruiting → Completed" in text
    assert "Conditions" not in text  # the minor change is left out of this email
    assert "Last update posted" not in text


@pytest.mark.parametrize("fmt", ["text", "markdown", "html", "json"])
def test_the_report_of_that_run_leads_with_the_same_count(world: World, fmt: str) -> None:
    out = world.run("report", "--since", "2000-01-01", "--format", fmt).out
    if fmt == "json":
        doc = json.loads(out)
        assert doc["change_count"] == 3
        assert len(doc["trials"]) == 3
        assert BOSTON in {t["nct_id"] for t in doc["quiet"]}
        return
    assert _lead(out) == _lead(world.sync.out)
    assert "Last update posted" not in out


def test_the_feed_has_one_entry_per_change_that_counts(world: World) -> None:
    feed = world.run("export", "--format", "atom").out
    assert feed.count("<entry>") == 3
    assert BOSTON not in feed


def test_the_html_report_leads_with_the_changes_in_the_source(world: World) -> None:
    html = world.run("report", "--since", "2000-01-01", "--format", "html").out
    first_card = html.index('class="card change-card')
    svgs = [m.start() for m in re.finditer(r"<svg\b", html)]
    assert len(svgs) >= 3
    assert first_card < svgs[2], "the first change must come before the third <svg>"
    # Each changed trial's card holds its own small timeline; the quiet ones are one table.
    cards = html.split('class="card change-card')[1:]
    assert len(cards) == 3
    assert all('<div class="tl-trial"><svg' in card.split("</section>")[0] for card in cards)
    assert html.count('class="quiet-table"') == 1
    assert html.count("first recorded") <= 1


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (scripts/test does)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (390, 844)])
def test_the_first_change_card_is_on_the_first_screen(
    world: World, browser: Any, width: int, height: int
) -> None:
    page_file = world.home / "report.html"
    world.run("report", "--since", "2000-01-01", "--format", "html", "--output", str(page_file))
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        page.goto(page_file.as_uri())
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"report-{width}.png"), full_page=True)
        page.screenshot(path=str(ARTIFACTS / f"report-{width}-first-screen.png"))
        card = page.locator(".change-card").first
        box = card.bounding_box()
        assert box is not None
        assert box["y"] + 60 < height, f"the first change card starts at {box['y']}px"
        first_svg = page.locator("svg").first.bounding_box()
        assert first_svg is not None and box["y"] < first_svg["y"]
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the report scrolls sideways by {overflow}px at {width}px"
    finally:
        context.close()


# --- filters and the CSV of changes ---------------------------------------------------------------


def test_the_report_narrows_by_severity_and_category_and_says_so(world: World) -> None:
    major = world.run("report", "--since", "2000-01-01", "--min-severity", "major").out
    assert "2 changes in 2 trials (of 13 watched trials) (showing only major and above)." in major
    assert "Condition added: Sarcoma" not in major
    design = world.run("report", "--since", "2000-01-01", "--category", "design,status").out
    assert _lead(design) == (2, 2)
    assert "Primary completion slipped" not in design
    doc = json.loads(
        world.run("report", "--since", "2000-01-01", "-f", "json", "--category", "dates").out
    )
    assert (doc["change_count"], doc["min_severity"], doc["categories"]) == (1, "minor", ["dates"])


def test_a_csv_of_changes_has_one_row_per_change_with_statuses_in_words(world: World) -> None:
    rows = list(csv.DictReader(io.StringIO(world.run("export", "-f", "csv", "--changes").out)))
    assert sorted(r["nct_id"] for r in rows) == sorted([SEAL, SLIPS, GAINS])
    [status] = [r for r in rows if r["field"] == "overall_status"]
    assert (status["old"], status["old_words"]) == (
        "ACTIVE_NOT_RECRUITING",
        "Active, not recruiting",
    )
    assert (status["new"], status["new_words"]) == ("COMPLETED", "Completed")
    assert (status["severity"], status["label"]) == ("critical", "SEAL")
    [slipped] = [r for r in rows if r["nct_id"] == SLIPS]
    assert json.loads(slipped["new"]) == {"date": "2028-08-31", "type": "ESTIMATED"}
    assert slipped["new_words"] == ""
    critical = world.run("export", "-f", "csv", "--changes", "--min-severity", "critical").out
    assert len(critical.strip().splitlines()) == 2  # the header and SEAL's change
    jsonl = world.run("export", "-f", "jsonl", "--changes", "--category", "design").out
    assert [json.loads(line)["nct_id"] for line in jsonl.splitlines()] == [GAINS]


def test_the_status_export_names_sponsor_conditions_interventions_and_phase(world: World) -> None:
    doc = json.loads(world.run("export", "--format", "json").out)
    schema = json.loads((REPO / "docs" / "export.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(doc, schema)
    [seal] = [t for t in doc["trials"] if t["nct_id"] == SEAL]
    assert seal["lead_sponsor"] == "Karyopharm Therapeutics Inc"
    assert "Liposarcoma" in " ".join(seal["conditions"])
    assert seal["interventions"] and seal["phase"].startswith("Phase")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("report", "--since", "2000-01-01", "--category", "colour"), "unknown category 'colour'"),
        (("report", "--since", "2000-01-01", "--min-severity", "huge"), "unknown severity"),
        (("export", "-f", "jsonl", "--changes", "--min-severity", "admin"), "never counted"),
        (("export", "-f", "json", "--min-severity", "major"), "apply to change exports"),
    ],
)
def test_a_bad_filter_is_said_plainly(world: World, args: tuple[str, ...], message: str) -> None:
    result = trialwatch(*args, env=world.env, cwd=world.home)
    assert result.code == 2
    assert message in result.err
    assert "Traceback" not in result.err


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (390, 844)])
def test_the_timeline_is_one_row_per_trial_across_the_full_width(
    world: World, browser: Any, width: int, height: int
) -> None:
    page_file = world.home / "timeline.html"
    world.run("timeline", "--output", str(page_file))
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        page.goto(page_file.as_uri())
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"timeline-{width}.png"), full_page=True)
        assert page.locator("svg.gantt .gantt-row").count() == 13
        gantt = page.locator("svg.gantt").bounding_box()
        main = page.locator("main").bounding_box()
        assert gantt is not None and main is not None
        assert gantt["width"] >= main["width"] - 30  # the picture spans the column
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the timeline scrolls sideways by {overflow}px at {width}px"
    finally:
        context.close()
