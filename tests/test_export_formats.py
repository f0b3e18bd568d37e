"""CSV and JSON-lines exports: parsed back, the same fields as the JSON export, safe in a
spreadsheet, stamped with the CT.gov data timestamp."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.history_samples import DATA_TS, NOW, SEAL_V4, STOP_V2, watch_set
from trialwatch.export import (
    BIDI_CONTROLS,
    CSV_COLUMNS,
    CSV_LIST_SEPARATOR,
    TrialState,
    csv_row,
    export_trial,
    write_csv_export,
    write_json_export,
    write_jsonl_changes,
)
from trialwatch.history import change_event_json

SYNCED = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
DOCS = Path(__file__).parent.parent / "docs"


def state(snapshot: object = SEAL_V4, **overrides: object) -> TrialState:
    values: dict[str, object] = {
        "nct_id": "NCT02606461",
        "label": "SEAL",
        "table": "Table 1",
        "snapshot": snapshot,
        "last_synced_at": SYNCED,
        "last_changed_at": SYNCED,
        "last_change_summary": "Overall status: Active, not recruiting → Completed",
    }
    values.update(overrides)
    return TrialState(**values)  # type: ignore[arg-type]


STATES = [
    state(),
    state(STOP_V2, nct_id="NCT05923112", label="STOP", table=None),
    state(None, nct_id="NCT05915845", label="NEW", problem="not synced yet", last_synced_at=None),
]


def export_csv(states: list[TrialState], *, bom: bool = False) -> str:
    out = io.StringIO(newline="")
    count = write_csv_export(out, states, generated_at=NOW, data_timestamp=DATA_TS, bom=bom)
    assert count == len(states)
    return out.getvalue()


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline="")))


# --- CSV ----------------------------------------------------------------------------------------


def test_csv_has_a_header_and_one_row_per_trial() -> None:
    text = export_csv(STATES)

    rows = parse_csv(text)
    assert text.startswith(",".join(CSV_COLUMNS) + "\r\n")
    assert [r["nct_id"] for r in rows] == ["NCT02606461", "NCT05923112", "NCT05915845"]
    assert {r["data_timestamp"] for r in rows} == {DATA_TS}
    assert {r["generated_at"] for r in rows} == {"2026-11-23T14:00:00Z"}


def test_csv_has_the_fields_of_the_json_export() -> None:
    json_out = io.StringIO()
    write_json_export(json_out, STATES, generated_at=NOW, data_timestamp=DATA_TS)
    trials = json.loads(json_out.getvalue())["trials"]
    rows = parse_csv(export_csv(STATES))

    for trial, row in zip(trials, rows, strict=True):
        for key, value in trial.items():
            if isinstance(value, dict) and "date" in value:
                assert row[key] == value["date"] and row[f"{key}_type"] == (value["type"] or "")
            elif key == "enrollment":
                want = ("", "") if value is None else (str(value["count"]), value["type"] or "")
                assert (row["enrollment_count"], row["enrollment_type"]) == want
            elif isinstance(value, list):
                assert row[key] == CSV_LIST_SEPARATOR.join(value)
            elif isinstance(value, bool):
                assert row[key] == ("true" if value else "false")
            else:
                assert row[key] == ("" if value is None else str(value)), key
    covered = {c.removesuffix("_type").removesuffix("_count") for c in CSV_COLUMNS}
    assert set(export_trial(STATES[0])) <= covered


def test_a_trial_never_synced_has_empty_cells_not_none() -> None:
    (row,) = parse_csv(export_csv([STATES[2]]))

    assert row["overall_status"] == "" and row["start_date"] == "" and row["has_results"] == ""
    assert row["problem"] == "not synced yet"
    assert row["phases"] == ""


def test_lists_are_joined_with_the_documented_separator() -> None:
    two_phases = dataclasses.replace(SEAL_V4, phases=("PHASE2", "PHASE3"))

    (row,) = parse_csv(export_csv([state(two_phases)]))

    assert row["phases"] == "PHASE2; PHASE3"


@pytest.mark.parametrize(
    "evil", ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]
)
def test_cells_that_a_spreadsheet_would_run_get_a_leading_apostrophe(evil: str) -> None:
    hostile = dataclasses.replace(SEAL_V4, brief_title=evil, why_stopped=evil)

    (row,) = parse_csv(export_csv([state(hostile, label=evil)]))

    for column in ("brief_title", "why_stopped", "label"):
        assert row[column] == "'" + evil


@pytest.mark.parametrize(
    "evil",
    [
        "\uff1d1+1",  # FULLWIDTH EQUALS SIGN: LibreOffice and Excel run it as "="
        "\uff0bSUM(A1)",
        "\uff0d2+3",
        "\uff20SUM(A1)",
        "\ufe661+1",  # SMALL EQUALS SIGN
        "\u22121+1",  # MINUS SIGN
        " =1+1",
        "\u200b=1+1",  # behind a zero-width space
        "\u202e=1+1",  # behind a bidi override (which is removed, then the lead is seen)
        "\nx",
    ],
)
def test_look_alike_and_hidden_formula_leads_get_the_apostrophe_too(evil: str) -> None:
    hostile = dataclasses.replace(SEAL_V4, brief_title=evil)

    (row,) = parse_csv(export_csv([state(hostile, label=evil)]))

    for column in ("brief_title", "label"):
        assert row[column].startswith("'"), row[column]


def test_bidi_controls_are_removed_from_csv_and_escaped_in_json() -> None:
    spoof = "Report \u202eFDP.exe\u202c and \u2067isolate\u2069 \u200fmark"
    hostile = dataclasses.replace(SEAL_V4, brief_title=spoof)

    csv_text = export_csv([state(hostile, label=spoof)])
    (row,) = parse_csv(csv_text)
    assert row["brief_title"] == row["label"] == "Report FDP.exe and isolate mark"

    json_out = io.StringIO()
    write_json_export(json_out, [state(hostile)], generated_at=NOW, data_timestamp=DATA_TS)
    lines_out = io.StringIO()
    event = watch_set()[0].changes[0]
    event = dataclasses.replace(event, change=dataclasses.replace(event.change, summary=spoof))
    write_jsonl_changes(lines_out, [event])
    for text in (json_out.getvalue(), lines_out.getvalue()):
        assert not set(text) & set(BIDI_CONTROLS)
        assert "\\u202e" in text
    # Escaped, not lost: the value parses back to what the registry holds.
    assert json.loads(json_out.getvalue())["trials"][0]["brief_title"] == spoof
    assert json.loads(lines_out.getvalue())["summary"] == spoof


def test_harmless_cells_are_left_as_they_are() -> None:
    fine = dataclasses.replace(SEAL_V4, brief_title="1 = 1, a + b, x@y.org", why_stopped=None)

    (row,) = parse_csv(export_csv([state(fine)]))

    assert row["brief_title"] == "1 = 1, a + b, x@y.org"
    assert row["enrollment_count"] == "287"


def test_the_bom_is_there_only_when_asked_for() -> None:
    assert export_csv(STATES, bom=True).startswith("\ufeffnct_id,")
    assert export_csv(STATES).startswith("nct_id,")
    assert export_csv(STATES, bom=True).encode("utf-8")[:3] == b"\xef\xbb\xbf"


def test_commas_quotes_and_line_breaks_survive_the_round_trip() -> None:
    title = 'A "quoted", multi-line\ntitle; with a separator'

    (row,) = parse_csv(export_csv([state(dataclasses.replace(SEAL_V4, brief_title=title))]))

    assert row["brief_title"] == title


def test_an_empty_watch_set_still_has_its_header() -> None:
    assert export_csv([]) == ",".join(CSV_COLUMNS) + "\r\n"


@settings(max_examples=60, deadline=None)
@given(title=st.text(max_size=30), label=st.text(min_size=1, max_size=10))
def test_any_text_reads_back_as_written_or_guarded(title: str, label: str) -> None:
    title = title.replace("\x00", "")  # the csv module refuses NUL; normalize drops it anyway
    label = label.replace("\x00", "") or "x"
    trial = state(dataclasses.replace(SEAL_V4, brief_title=title), label=label)

    (row,) = parse_csv(export_csv([trial]))

    assert list(row.values()) == csv_row(trial, generated_at=NOW, data_timestamp=DATA_TS)
    for column, original in (("brief_title", title), ("label", label)):
        shown = original.translate(dict.fromkeys(map(ord, BIDI_CONTROLS)))
        assert row[column] in (shown, "'" + shown)  # as written (bidi controls dropped), or guarded
        if shown[:1] in ("=", "+", "-", "@", "\t", "\r", "\uff1d"):
            assert row[column] == "'" + shown


# --- JSON lines ---------------------------------------------------------------------------------


def test_jsonl_has_one_change_event_per_line() -> None:
    events = [e for h in watch_set() for e in h.changes]
    out = io.StringIO()

    count = write_jsonl_changes(out, events, labels={"NCT02606461": "SEAL"})

    lines = out.getvalue().splitlines()
    assert count == len(lines) == len(events) == 12
    parsed = [json.loads(line) for line in lines]
    assert [p["id"] for p in parsed] == [e.id for e in events]
    assert parsed[0] == change_event_json(events[0], label="SEAL")
    assert all(p["data_timestamp"] for p in parsed)
    schema = json.loads((DOCS / "change-event.schema.json").read_text(encoding="utf-8"))
    for item in parsed:
        jsonschema.validate(item, schema)
    assert {p["label"] for p in parsed} == {"SEAL", None}


def test_jsonl_lines_do_not_break_on_unicode_line_separators() -> None:
    event = watch_set()[0].changes[0]
    odd = dataclasses.replace(
        event, change=dataclasses.replace(event.change, summary="a\u2028b\u2029c\x85d\ne")
    )
    out = io.StringIO()

    write_jsonl_changes(out, [odd, odd])

    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0])["summary"] == "a\u2028b\u2029c\x85d\ne"


def test_the_change_schema_names_every_category_and_severity() -> None:
    from trialwatch.models import Category, Severity

    schema = json.loads((DOCS / "change-event.schema.json").read_text(encoding="utf-8"))
    properties = schema["properties"]

    assert properties["category"]["enum"] == [c.value for c in Category]
    assert properties["severity"]["enum"] == [s.label for s in Severity]
