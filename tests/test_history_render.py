"""History, version diffs and period reports: pure renderers over recorded versions and events."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import assume, given, settings

from tests.history_samples import (
    DATA_TS,
    NOW,
    SEAL_STEPS,
    SEAL_V1,
    SEAL_V2,
    SEAL_V3,
    SEAL_V4,
    at,
    est,
    record,
    seal,
    watch_set,
)
from tests.test_core_properties import STUDY_RECORDS, normalize_or_record_error
from trialwatch.diff import FIELD_ORDER, diff
from trialwatch.history import (
    change_event_json,
    history_entries,
    history_json,
    render_history_text,
    render_version_diff_text,
    summarize_changes,
    version_diff,
    version_diff_json,
)
from trialwatch.models import FieldChange, Severity, Snapshot
from trialwatch.period import REPORT_FORMATS, period_json, period_report, render_period_report
from trialwatch.records import Period, RecordedChange, TrialHistory, assemble_histories, parse_day
from trialwatch.vocabulary import history_url, one_line, status_label, study_url

SINCE_NEW_YEAR = Period(date(2026, 1, 1))


def report_of(period: Period = SINCE_NEW_YEAR, histories: list[TrialHistory] | None = None) -> Any:
    return period_report(
        histories if histories is not None else watch_set(),
        period,
        generated_at=NOW,
        data_timestamp=DATA_TS,
    )


# --- values and periods ------------------------------------------------------------------------


def test_assemble_histories_groups_rows_by_trial_in_the_order_of_the_trials() -> None:
    histories = watch_set()
    versions = [v for h in histories for v in h.versions][::-1]
    changes = [c for h in histories for c in h.changes][::-1]
    trials = [(h.nct_id, h.label, h.watched_since) for h in reversed(histories)]

    assembled = assemble_histories(trials, versions, changes)

    assert assembled == list(reversed(histories))


def test_a_period_is_whole_utc_days_both_included() -> None:
    period = Period(date(2026, 3, 2), date(2026, 3, 2))

    assert period.contains(datetime(2026, 3, 2, 0, 0, tzinfo=UTC))
    assert period.contains(datetime(2026, 3, 2, 23, 59, 59, tzinfo=UTC))
    assert not period.contains(datetime(2026, 3, 3, 0, 0, tzinfo=UTC))
    assert not period.contains(datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC))
    assert period.label == "2026-03-02 to 2026-03-02"
    assert Period(date(2026, 3, 2)).label == "since 2026-03-02"


def test_a_period_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="before --since"):
        Period(date(2026, 3, 2), date(2026, 3, 1))


@pytest.mark.parametrize("text", ["2026-13-01", "yesterday", "", "2026/03/01", "1.3.2026"])
def test_a_bad_date_is_refused_in_words(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a date: .* \(expected YYYY-MM-DD"):
        parse_day(text)


def test_parse_day_accepts_an_iso_day_with_spaces_around() -> None:
    assert parse_day(" 2026-03-01 ") == date(2026, 3, 1)


# --- the period report ---------------------------------------------------------------------------


def test_the_report_groups_changes_by_trial_most_severe_first() -> None:
    report = report_of()

    assert [t.nct_id for t in report.trials] == ["NCT05923112", "NCT02606461"]
    assert [t.severity for t in report.trials] == [Severity.CRITICAL, Severity.CRITICAL]
    assert [t.nct_id for t in report.quiet] == ["NCT05915845"]
    histories = {h.nct_id: h for h in watch_set()}
    for trial in report.trials:
        assert trial.changes == histories[trial.nct_id].changes  # all in the period, oldest first
    assert report.change_count == 12


def test_a_trial_with_a_less_severe_top_change_comes_later() -> None:
    moved = record(
        "NCT00000001",
        "AAA",
        [(at("2026-02-01"), SEAL_V2), (at("2026-05-01"), SEAL_V3)],  # major changes only
    )
    report = report_of(histories=[moved, *watch_set()])

    assert [t.nct_id for t in report.trials] == ["NCT05923112", "NCT02606461", "NCT00000001"]


def test_the_summary_gives_the_status_path_and_net_slips() -> None:
    report = report_of()
    seal_period = next(t for t in report.trials if t.nct_id == "NCT02606461")

    assert seal_period.summary == (
        "Recruiting → Active, not recruiting → Completed; "
        "Primary completion slipped 14 months (2025-01 est. → 2026-03 actual), in 3 changes; "
        "Completion slipped 14 months (2025-06 est. → 2026-08 actual), in 2 changes; "
        "and 1 more field changed"
    )


def test_until_keeps_only_the_changes_of_the_period() -> None:
    report = report_of(Period(date(2026, 6, 10), date(2026, 6, 10)))

    assert [t.nct_id for t in report.trials] == ["NCT02606461"]
    (trial,) = report.trials
    assert {e.detected_at for e in trial.changes} == {at("2026-06-10")}
    assert trial.summary == (
        "Primary completion slipped 8 months (2025-07 est. → 2026-03 est.); "
        "Enrollment: 300 (est.) → 287 (actual)"
    )
    assert trial.before_history is None  # watched since January


def test_a_report_reaching_before_the_first_sync_says_so_with_the_history_link() -> None:
    report = report_of(Period(date(2026, 2, 1)))
    notes = {t.nct_id: t.before_history for t in (*report.trials, *report.quiet)}

    assert notes["NCT02606461"] is None
    assert notes["NCT05915845"] == (
        "trialwatch first recorded this trial on 2026-04-01; for changes before that, "
        "see its history on ClinicalTrials.gov"
    )
    text = render_period_report(report, "text")
    assert f"{notes['NCT05915845']}: {history_url('NCT05915845')}" in text


def test_a_trial_never_recorded_is_said_to_be_so() -> None:
    never = TrialHistory(nct_id="NCT09999999", label="NEW")

    report = report_of(histories=[never])

    assert report.quiet[0].before_history == (
        "trialwatch has not recorded this trial yet; for its history see ClinicalTrials.gov"
    )
    assert "0 changes: no recorded changes in 1 watched trial." in render_period_report(
        report, "text"
    )


def test_the_text_report_lists_a_status_change_a_slip_and_an_enrollment_change() -> None:
    text = render_period_report(report_of(), "text")

    assert "Changes in watched trials, since 2026-01-01 (UTC days)" in text
    assert "12 changes in 2 trials (of 3 watched trials)." in text
    assert f"CT.gov data as of {DATA_TS}; generated 2026-11-23 14:00 UTC." in text
    assert "== SEAL (NCT02606461) — critical ==" in text
    assert "2026-09-01  [critical] Overall status: Active, not recruiting → Completed" in text
    assert "2026-03-02  [major]    Primary completion slipped 6 months" in text
    assert "2026-06-10  [major]    Enrollment: 300 (est.) → 287 (actual)" in text
    assert f"Study:   {study_url('NCT02606461')}" in text
    assert text.index("NCT05923112 — critical") < text.index("SEAL (NCT02606461)")


def test_markdown_escapes_registry_text() -> None:
    evil = record(
        "NCT00000002",
        "[click](http://evil.example) <img src=x> *bold* `code` | a & b",
        [(at("2026-02-01"), SEAL_V1), (at("2026-05-01"), SEAL_V2)],
    )

    md = render_period_report(report_of(histories=[evil]), "markdown")

    assert (
        "\\[click\\](http://evil.example) &lt;img src=x> \\*bold\\* \\`code\\` \\| a &amp; b" in md
    )
    assert "](http://evil.example)" not in md.replace("\\]", "")
    assert "<img" not in md
    assert "## " in md
    assert f"[Study page]({study_url('NCT00000002')})" in md


def test_control_characters_never_reach_the_terminal() -> None:
    hostile = dataclasses.replace(SEAL_V2, brief_title="Title\x1b[2J\rcleared\u202eevil")
    history = record(
        "NCT00000003",
        "L\x1b]0;pwned\x07",
        [(at("2026-02-01"), SEAL_V1), (at("2026-05-01"), hostile)],
    )

    for fmt in ("text", "markdown"):
        out = render_period_report(report_of(histories=[history]), fmt)
        assert "\x1b" not in out and "\r" not in out and "\x07" not in out and "\u202e" not in out
    assert "\x1b" not in render_history_text(history)


def test_json_report_has_every_change_with_its_identity() -> None:
    data = json.loads(render_period_report(report_of(), "json"))

    assert data["since"] == "2026-01-01" and data["until"] is None
    assert data["data_timestamp"] == DATA_TS
    assert data["generated_at"] == "2026-11-23T14:00:00Z"
    assert data["change_count"] == 12
    assert [t["nct_id"] for t in data["trials"]] == ["NCT05923112", "NCT02606461"]
    assert data["quiet"][0]["nct_id"] == "NCT05915845"
    seal_data = data["trials"][1]
    assert seal_data["severity"] == "critical"
    assert seal_data["history_url"] == history_url("NCT02606461")
    history = seal()
    assert [c["id"] for c in seal_data["changes"]] == [c.id for c in history.changes]
    assert seal_data["changes"][0] == change_event_json(history.changes[0], label="SEAL")
    assert period_json(report_of()) == data


def test_change_event_json_has_the_documented_fields() -> None:
    event = seal().changes[0]

    data = change_event_json(event, label="SEAL")

    assert list(data) == [
        "id",
        "nct_id",
        "label",
        "detected_at",
        "data_timestamp",
        "field",
        "category",
        "severity",
        "kind",
        "item_key",
        "summary",
        "old",
        "new",
        "from_version_id",
        "to_version_id",
        "origin",
        "url",
        "history_url",
    ]
    assert data["detected_at"] == "2026-03-02T09:30:00Z"
    assert data["data_timestamp"] == "2026-03-02T08:00:00"
    assert json.loads(json.dumps(data)) == data


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_html_report_embeds_a_timeline_per_trial_and_escapes_registry_text() -> None:
    evil = record(
        "NCT00000004",
        "<script>alert(1)</script>",
        [(at("2026-02-01"), SEAL_V1), (at("2026-05-01"), SEAL_V2)],
    )
    report = report_of(histories=[*watch_set(), evil])
    html = render_period_report(report, "html")

    parser = _Collect()
    parser.feed(html)
    assert "script" not in parser.tags
    assert "<script>alert(1)</script> (NCT00000004)" in "".join(parser.text)
    svgs = [
        ET.fromstring(html[i : html.index("</svg>", i) + 6])  # noqa: S314 (our own output)
        for i in range(len(html))
        if html.startswith("<svg xmlns=", i)
    ]
    # One picture per changed trial, inside its card, in the cards' order; none for the others.
    changed = [t.nct_id for t in report.trials]
    assert [s.get("data-nct") for s in svgs] == changed
    assert [t.nct_id for t in report.quiet] == ["NCT05915845"]
    # The changes lead: the first card stands before any picture (legend marks included).
    assert html.index('class="card change-card') < html.index("<svg")
    assert html.index("<svg") < html.index('class="legend"') < html.index('class="quiet-table"')
    assert "@page { size: A4" in html
    assert "Recruiting → Active, not recruiting → Completed" in "".join(parser.text)


def test_an_unknown_report_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown report format 'pdf'"):
        render_period_report(report_of(), "pdf")
    assert REPORT_FORMATS == ("text", "markdown", "json", "html")


# --- a trial's timeline -------------------------------------------------------------------------


def test_history_is_newest_first_with_changes_under_the_version_they_led_to() -> None:
    entries = history_entries(seal())

    assert [e.at for e in entries] == [step[0] for step in reversed(SEAL_STEPS)]
    assert entries[-1].baseline and entries[-1].changes == ()
    assert all(not e.baseline for e in entries[:-1])
    top = entries[0]
    assert [c.change.severity for c in top.changes] == sorted(
        (c.change.severity for c in top.changes), reverse=True
    )
    assert {c.to_version_id for c in top.changes} == {top.version_id}


def test_history_since_a_day_keeps_what_was_recorded_from_that_day() -> None:
    entries = history_entries(seal(), since=date(2026, 6, 10))

    assert [e.at for e in entries] == [at("2026-09-01"), at("2026-06-10")]


def test_history_text_links_the_study_and_its_registry_history() -> None:
    text = render_history_text(seal())

    assert text.startswith("SEAL (NCT02606461)\nStudy of Everolimus After Liver transplant\n")
    assert f"Study:   {study_url('NCT02606461')}" in text
    assert f"History: {history_url('NCT02606461')}" in text
    assert "2026-09-01 09:30 UTC  3 changes" in text
    assert "    [critical] Overall status: Active, not recruiting → Completed" in text
    assert text.rstrip().endswith("first recorded (baseline) · CT.gov data 2026-01-05T08:00:00")
    assert text.index("2026-09-01") < text.index("2026-06-10") < text.index("2026-01-05")


def test_history_since_before_the_first_sync_says_so() -> None:
    text = render_history_text(seal(), since=date(2025, 1, 1))

    assert text.rstrip().endswith(
        "trialwatch first recorded this trial on 2026-01-05; for changes before that, see its "
        f"history on ClinicalTrials.gov: {history_url('NCT02606461')}"
    )


def test_history_json_is_the_same_timeline() -> None:
    data = history_json(seal(), since=date(2025, 1, 1))

    assert json.loads(json.dumps(data)) == data
    assert [e["at"] for e in data["entries"]] == [
        "2026-09-01T09:30:00Z",
        "2026-06-10T09:30:00Z",
        "2026-03-02T09:30:00Z",
        "2026-01-05T09:30:00Z",
    ]
    assert data["entries"][-1]["baseline"] is True
    assert data["first_recorded_at"] == "2026-01-05T09:30:00Z"
    assert data["before_history"].startswith("trialwatch first recorded this trial on 2026-01-05")
    assert data["history_url"] == history_url("NCT02606461")


def test_changes_of_a_version_not_loaded_are_grouped_by_detection_time() -> None:
    history = seal()
    loose = dataclasses.replace(history, versions=history.versions[:1])

    entries = history_entries(loose)

    assert [e.version_id for e in entries] == [None, None, None, 1]
    assert sum(len(e.changes) for e in entries) == len(history.changes)


# --- diffs between versions ----------------------------------------------------------------------


def test_diff_defaults_to_the_last_two_versions_in_the_emails_words() -> None:
    result = version_diff(seal())

    assert (result.older.snapshot, result.newer.snapshot) == (SEAL_V3, SEAL_V4)
    assert list(result.changes) == diff(SEAL_V3, SEAL_V4)
    text = render_version_diff_text(result)
    for change in result.changes:
        assert f"[{change.severity.label}]" in text and change.summary in text
    assert "From: version recorded 2026-06-10 09:30 UTC, CT.gov data 2026-06-10T08:00:00" in text
    assert result.notes == ()


def test_diff_between_days_picks_the_versions_in_force() -> None:
    result = version_diff(seal(), from_day=date(2026, 3, 2), to_day=date(2026, 6, 30))

    assert (result.older.snapshot, result.newer.snapshot) == (SEAL_V1, SEAL_V3)
    assert list(result.changes) == diff(SEAL_V1, SEAL_V3)


def test_the_last_day_a_date_can_name_is_a_day_like_any_other() -> None:
    forever = Period(date(2026, 1, 1), date.max)
    assert forever.contains(datetime(9999, 12, 31, 23, 59, tzinfo=UTC))
    result = version_diff(seal(), from_day=date(2026, 3, 2), to_day=date.max)
    assert (result.older.snapshot, result.newer.snapshot) == (SEAL_V1, SEAL_V4)


def test_diff_from_a_day_before_the_first_sync_starts_at_the_baseline_and_says_so() -> None:
    result = version_diff(seal(), from_day=date(2025, 1, 1))

    assert (result.older.snapshot, result.newer.snapshot) == (SEAL_V1, SEAL_V4)
    assert len(result.notes) == 1
    assert "first recorded this trial on 2026-01-05" in result.notes[0]
    assert history_url("NCT02606461") in render_version_diff_text(result)


def test_diff_with_only_a_baseline_says_there_is_nothing_to_compare() -> None:
    history = record("NCT05915845", "QUIET", [(at("2026-04-01"), SEAL_V1)])

    result = version_diff(history)

    assert result.changes == ()
    assert result.notes == ("Only one version is recorded (the baseline of 2026-04-01).",)
    assert "No changes in the tracked fields." in render_version_diff_text(result)


def test_diff_within_one_version_says_so() -> None:
    result = version_diff(seal(), from_day=date(2026, 4, 1), to_day=date(2026, 5, 1))

    assert result.changes == ()
    assert "both days fall on the version of 2026-03-02" in result.notes[0]


def test_diff_refuses_what_cannot_be_compared() -> None:
    with pytest.raises(ValueError, match="no recorded version yet"):
        version_diff(TrialHistory(nct_id="NCT09999999", label=None))
    with pytest.raises(ValueError, match="before --from"):
        version_diff(seal(), from_day=date(2026, 5, 1), to_day=date(2026, 4, 1))


def test_diff_json() -> None:
    data = version_diff_json(version_diff(seal()))

    assert data["from"]["version_id"] == 3 and data["to"]["version_id"] == 4
    assert data["changes"][0]["severity"] == "critical"
    assert json.loads(json.dumps(data)) == data


# --- summaries -----------------------------------------------------------------------------------


def _events(*snapshots: Snapshot) -> list[RecordedChange]:
    steps = [(at(f"2026-0{i + 1}-01"), s) for i, s in enumerate(snapshots)]
    return list(record(snapshots[0].nct_id, None, steps).changes)


def test_a_date_that_moved_and_came_back_is_said_plainly() -> None:
    a = SEAL_V1
    b = dataclasses.replace(a, completion_date=est("2025-09"))
    c = dataclasses.replace(a, completion_date=est("2025-06"))

    summary = summarize_changes(a.nct_id, _events(a, b, c))

    assert (
        summary
        == "Completion moved 3 months earlier (2025-09 est. → 2025-06 est.) (after 2 changes)"
    )


def test_list_fields_are_counted() -> None:
    from trialwatch.models import Location

    a = dataclasses.replace(SEAL_V1, locations=(Location("Mayo Clinic", "Rochester"),))
    b = dataclasses.replace(
        a, locations=(Location("Charité", "Berlin"), Location("Karolinska", "Stockholm"))
    )

    assert summarize_changes(a.nct_id, _events(a, b)) == "Sites: 2 added, 1 removed"


def test_collaborators_are_counted_and_criteria_said_in_the_emails_words() -> None:
    a = dataclasses.replace(SEAL_V1, collaborators=("Stemline",), exclusion_criteria=("Pregnancy",))
    b = dataclasses.replace(
        a, collaborators=("Dana-Farber", "Menarini"), exclusion_criteria=("Pregnancy", "HIV")
    )
    c = dataclasses.replace(b, exclusion_criteria=("Pregnancy", "HIV", "Prior XPO1 inhibitor"))

    assert summarize_changes(a.nct_id, _events(a, b, c)) == (
        "Exclusion criteria: 2 added: “HIV”, “Prior XPO1 inhibitor”, in 2 changes; "
        "Collaborators: 2 added, 1 removed"
    )


def test_no_events_no_summary() -> None:
    assert summarize_changes("NCT02606461", []) == ""


# --- properties ----------------------------------------------------------------------------------

PROPERTY = settings(max_examples=100, deadline=None)
_ITEM_FIELDS = {
    "arms",
    "interventions",
    "primary_outcomes",
    "secondary_outcomes",
    "locations",
    "references",
    "conditions",
    "collaborators",
}
_SCALAR_FIELDS = [f for f in FIELD_ORDER if f not in _ITEM_FIELDS]


def _snapshot(record: dict[str, Any]) -> Snapshot:
    snapshot = normalize_or_record_error(record)
    assume(snapshot is not None)
    assert snapshot is not None
    return snapshot


def _touched(changes: list[FieldChange]) -> set[tuple[str, str | None]]:
    """What a diff touched: (field, item) pairs. ``results_first_posted`` is worded inside the
    results change when results appear or go, so a change of ``has_results`` covers it."""
    touched = {(c.field, c.item_key) for c in changes}
    if any(c.field == "has_results" for c in changes):
        touched.add(("results_first_posted", None))
    return touched


@PROPERTY
@given(a=STUDY_RECORDS, b=STUDY_RECORDS, c=STUDY_RECORDS)
def test_diff_a_to_c_is_consistent_with_a_to_b_then_b_to_c(
    a: dict[str, Any], b: dict[str, Any], c: dict[str, Any]
) -> None:
    A, B, C = _snapshot(a), _snapshot(b), _snapshot(c)
    ab, bc, ac = diff(A, B), diff(B, C), diff(A, C)

    # Nothing changes from A to C that did not change on the way through B.
    assert _touched(ac) <= _touched(ab) | _touched(bc)
    # A one-value field changed A -> C says exactly A's value and C's value.
    a_plain, c_plain = A.to_dict(), C.to_dict()
    for change in ac:
        if change.field in _SCALAR_FIELDS and change.field != "phases":
            assert change.old == a_plain[change.field]
            assert change.new == c_plain[change.field]
        elif change.field == "phases":
            assert sorted(change.old) == sorted(set(a_plain["phases"]))
            assert sorted(change.new) == sorted(set(c_plain["phases"]))
    # When nothing changes on the way, nothing changed in the end.
    if not ab and not bc:
        assert ac == []


@PROPERTY
@given(a=STUDY_RECORDS, b=STUDY_RECORDS, c=STUDY_RECORDS)
def test_the_summary_status_path_runs_from_the_first_status_to_the_last(
    a: dict[str, Any], b: dict[str, Any], c: dict[str, Any]
) -> None:
    A, B, C = _snapshot(a), _snapshot(b), _snapshot(c)
    B = dataclasses.replace(B, nct_id=A.nct_id)
    C = dataclasses.replace(C, nct_id=A.nct_id)

    summary = summarize_changes(A.nct_id, _events(A, B, C))

    statuses = [A.overall_status, B.overall_status, C.overall_status]
    steps = [s for i, s in enumerate(statuses) if i == 0 or s != statuses[i - 1]]
    if len(steps) > 1:
        # A status change is at least major and comes first in the table: it is always named.
        assert " → ".join(status_label(s) for s in steps) in summary.split("; ")
    assert summary == one_line(summary)


def test_an_admin_line_alone_is_no_change_in_the_report_nor_in_its_gist() -> None:
    v1 = Snapshot(nct_id="NCT00000003", overall_status="RECRUITING", last_update_posted="2026-01")
    v2 = dataclasses.replace(v1, last_update_posted="2026-03")
    v3 = dataclasses.replace(v2, overall_status="COMPLETED", last_update_posted="2026-05")
    posted_only = record("NCT00000004", "POSTED", [(at("2026-02-01"), v1), (at("2026-04-01"), v2)])
    moved = record("NCT00000003", "MOVED", [(at("2026-02-01"), v2), (at("2026-06-01"), v3)])

    report = report_of(histories=[posted_only, moved])

    assert [t.nct_id for t in report.trials] == ["NCT00000003"]
    assert [t.nct_id for t in report.quiet] == ["NCT00000004"]
    assert report.change_count == 1
    assert report.trials[0].summary == "Recruiting → Completed"
    for fmt in ("text", "markdown", "html"):
        page = render_period_report(report, fmt)
        assert "1 change in 1 trial (of 2 watched trials)." in page
        assert "Last update posted" not in page


@pytest.mark.parametrize("fmt", [f for f in REPORT_FORMATS if f != "html"])
def test_a_report_in_words_says_the_same_from_headline_records(fmt: str) -> None:
    """A report rendered in words keeps of each record only its id, title and status (whole
    snapshots were most of a large report's memory): what it says is the same as from whole
    records, and its trials' histories hold nothing more."""
    histories = watch_set()
    whole = period_report(histories, SINCE_NEW_YEAR, generated_at=NOW, data_timestamp=DATA_TS)
    headline = period_report(
        iter(histories),
        SINCE_NEW_YEAR,
        generated_at=NOW,
        data_timestamp=DATA_TS,
        keep_records=False,
    )
    assert render_period_report(headline, fmt) == render_period_report(whole, fmt)
    assert not headline.histories and whole.histories
    for trial in (*headline.trials, *headline.quiet):
        assert len(trial.history.versions) <= 2
        for version in trial.history.versions:
            cut = version.snapshot
            assert cut == Snapshot(
                nct_id=cut.nct_id, brief_title=cut.brief_title, overall_status=cut.overall_status
            )
    assert any(  # the whole records held more: the test compares something
        v.snapshot
        != Snapshot(
            nct_id=v.snapshot.nct_id,
            brief_title=v.snapshot.brief_title,
            overall_status=v.snapshot.overall_status,
        )
        for t in whole.trials
        for v in t.history.versions
    )


def test_an_html_report_refuses_headline_records() -> None:
    headline = period_report(
        watch_set(), SINCE_NEW_YEAR, generated_at=NOW, data_timestamp=DATA_TS, keep_records=False
    )
    with pytest.raises(ValueError, match="keep_records"):
        render_period_report(headline, "html")
