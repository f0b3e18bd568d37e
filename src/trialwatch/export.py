"""Exports of current statuses (JSON, CSV) and of change events (JSON lines). Pure.

The JSON document's shape is specified by ``docs/export.schema.json``; the CSV has the same
fields, one row per trial (``docs/export-formats.md``). Writers stream one trial or event at a
time so a large watchlist never has to sit in memory whole. Every export is stamped with the
CT.gov data timestamp it reflects.
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from trialwatch.history import change_event_json
from trialwatch.models import PartialDate, Snapshot
from trialwatch.records import RecordedChange
from trialwatch.vocabulary import history_url, phases_label, status_label, study_url

SCHEMA_ID = "https://trialwatch.example/schemas/export-v1.json"

BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
"""Characters that reorder the text around them (U+202E RIGHT-TO-LEFT OVERRIDE makes
``gpj.exe`` read ``exe.jpg``). Removed from CSV cells, which people read in a spreadsheet;
escaped (``\\u202e``) in JSON and JSON lines, so the file reads as it is and the value still
parses to what the registry holds."""

_DROP_BIDI = str.maketrans(dict.fromkeys(BIDI_CONTROLS))
# str.translate looks every character up in a dict (~100 us for a trial's JSON): searched for
# first in C, the text is translated only when one is there, which is almost never.
_HAS_BIDI = re.compile(f"[{BIDI_CONTROLS}]")


@dataclass(frozen=True, slots=True)
class TrialState:
    """What is known of one watched trial: its config, its current snapshot, its sync times."""

    nct_id: str
    label: str
    table: str | None
    snapshot: Snapshot | None
    last_synced_at: datetime | None
    last_changed_at: datetime | None
    last_change_summary: str | None
    problem: str | None = None


def _date(value: PartialDate | None) -> dict[str, Any] | None:
    return None if value is None else {"date": value.date, "type": value.type}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def export_trial(state: TrialState) -> dict[str, Any]:
    """One trial of the export. Fields the registry has not given us are ``null``."""
    snap = state.snapshot
    return {
        "nct_id": state.nct_id,
        "label": state.label,
        "table": state.table,
        "brief_title": snap.brief_title if snap else None,
        "acronym": snap.acronym if snap else None,
        "overall_status": snap.overall_status if snap else None,
        "why_stopped": snap.why_stopped if snap else None,
        "phases": list(snap.phases) if snap else [],
        "phase": phases_label(snap.phases) if snap and snap.phases else None,
        "lead_sponsor": snap.lead_sponsor if snap else None,
        "conditions": list(snap.conditions) if snap else [],
        "interventions": [i.name for i in snap.interventions] if snap else [],
        "enrollment": (
            {"count": snap.enrollment.count, "type": snap.enrollment.type}
            if snap and snap.enrollment
            else None
        ),
        "start_date": _date(snap.start_date) if snap else None,
        "primary_completion_date": _date(snap.primary_completion_date) if snap else None,
        "completion_date": _date(snap.completion_date) if snap else None,
        "has_results": snap.has_results if snap else None,
        "last_update_posted": snap.last_update_posted if snap else None,
        "last_synced_at": _iso(state.last_synced_at),
        "last_changed_at": _iso(state.last_changed_at),
        "last_change_summary": state.last_change_summary,
        "problem": state.problem,
        "url": study_url(state.nct_id),
        "history_url": history_url(state.nct_id),
    }


# json.dumps(ensure_ascii=False) leaves these raw; outside strings they never occur, so escaping
# them in its output keeps the JSON valid and the values the same.
_JSON_ESCAPES = str.maketrans({c: f"\\u{ord(c):04x}" for c in BIDI_CONTROLS})


def _json(value: Any, **options: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, **options)
    return text.translate(_JSON_ESCAPES) if _HAS_BIDI.search(text) else text


def write_json_export(
    out: IO[str],
    trials: Iterable[TrialState],
    *,
    generated_at: datetime,
    data_timestamp: str | None,
) -> int:
    """Stream the export document to ``out``; returns how many trials were written."""
    head = {
        "$schema": SCHEMA_ID,
        "generated_at": _iso(generated_at),
        "data_timestamp": data_timestamp,
    }
    out.write(_json(head, indent=2)[:-2])
    out.write(',\n  "trials": [')
    count = 0
    for state in trials:
        out.write("," if count else "")
        out.write("\n    " + _json(export_trial(state)))
        count += 1
    out.write("\n  ]\n}\n" if count else "]\n}\n")
    return count


# --- CSV: one row per trial, for spreadsheets ---------------------------------------------------

CSV_LIST_SEPARATOR = "; "
"""How list cells (``phases``) are joined."""

CSV_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "\u2212")
"""A cell starting with one of these gets a leading apostrophe, so a spreadsheet shows it as
text instead of running it as a formula (CSV injection; registry text is not ours). The lead
is judged after Unicode compatibility folding (NFKC: the full-width ``＝``, ``＋``, ``－``, ``＠``
and the small ``﹦`` count as what they fold to, as spreadsheets treat them) and after any
leading spaces and invisible format characters (which a spreadsheet may skip)."""


# JSON objects of the export become two columns each: the value and its type.
_CSV_NESTED: dict[str, tuple[tuple[str, str], ...]] = {
    "enrollment": (("enrollment_count", "count"), ("enrollment_type", "type")),
    "start_date": (("start_date", "date"), ("start_date_type", "type")),
    "primary_completion_date": (
        ("primary_completion_date", "date"),
        ("primary_completion_date_type", "type"),
    ),
    "completion_date": (("completion_date", "date"), ("completion_date_type", "type")),
}
_CSV_STAMPS = ("data_timestamp", "generated_at")
_BLANK = TrialState(
    nct_id="",
    label="",
    table=None,
    snapshot=None,
    last_synced_at=None,
    last_changed_at=None,
    last_change_summary=None,
)

CSV_COLUMNS: tuple[str, ...] = (
    *(
        column
        for key in export_trial(_BLANK)
        for column in ((c for c, _ in _CSV_NESTED[key]) if key in _CSV_NESTED else (key,))
    ),
    *_CSV_STAMPS,
)
"""The header row: every field of the JSON export (objects split into value and type), then
the CT.gov data timestamp the export reflects and when it was written, on every row."""


def _csv_cell(value: Any) -> str:
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list | tuple):
        text = CSV_LIST_SEPARATOR.join(str(v) for v in value)
    elif isinstance(value, dict):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    else:
        text = str(value)
    if _HAS_BIDI.search(text):
        text = text.translate(_DROP_BIDI)
    return "'" + text if _formula_lead(text) else text


def _formula_lead(text: str) -> bool:
    lead = text.lstrip(" \u00a0\u3000")
    while lead and unicodedata.category(lead[0]) == "Cf":  # zero-width, BOM, ...
        lead = lead[1:].lstrip(" \u00a0\u3000")
    if not lead:
        return False
    return text.startswith(CSV_FORMULA_TRIGGERS) or unicodedata.normalize(
        "NFKC", lead[0]
    ).startswith(CSV_FORMULA_TRIGGERS)


def csv_row(state: TrialState, *, generated_at: datetime, data_timestamp: str | None) -> list[str]:
    """One trial as the cells of :data:`CSV_COLUMNS`, in that order."""
    cells: dict[str, Any] = {}
    for key, value in export_trial(state).items():
        if key in _CSV_NESTED:
            for column, part in _CSV_NESTED[key]:
                cells[column] = None if value is None else value.get(part)
        else:
            cells[key] = value
    cells["data_timestamp"] = data_timestamp
    cells["generated_at"] = _iso(generated_at)
    return [_csv_cell(cells.get(column)) for column in CSV_COLUMNS]


def write_csv_export(
    out: IO[str],
    trials: Iterable[TrialState],
    *,
    generated_at: datetime,
    data_timestamp: str | None,
    bom: bool = False,
) -> int:
    """Write the header and one row per trial (RFC 4180: CRLF line ends, quoted when needed);
    returns how many trials were written. ``bom`` starts the file with a UTF-8 byte order mark,
    which Excel needs to read UTF-8. Open a file for it with ``newline=""``."""
    if bom:
        out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for state in trials:
        writer.writerow(csv_row(state, generated_at=generated_at, data_timestamp=data_timestamp))
        count += 1
    return count


# --- JSON lines: one change event per line ------------------------------------------------------

# json.dumps leaves these unescaped, and str.splitlines() (and many line readers) splits on them.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def write_jsonl_changes(
    out: IO[str],
    changes: Iterable[RecordedChange],
    *,
    labels: Mapping[str, str | None] | None = None,
) -> int:
    """Write each change event as one JSON object per line (see
    :func:`trialwatch.history.change_event_json` for the fields; each carries the CT.gov data
    timestamp it reflects). ``labels`` maps NCT ids to watchlist labels. Returns the count."""
    labels = labels or {}
    count = 0
    for event in changes:
        line = _json(change_event_json(event, label=labels.get(event.nct_id)))
        out.write(line.translate(_LINE_BREAKS) + "\n")
        count += 1
    return count


# --- CSV of changes: one row per change event ---------------------------------------------------

_STATUS_FIELDS = frozenset({"overall_status", "last_known_status"})

CSV_CHANGE_COLUMNS: tuple[str, ...] = (
    "detected_at",
    "data_timestamp",
    "nct_id",
    "label",
    "severity",
    "category",
    "field",
    "kind",
    "item_key",
    "summary",
    "old",
    "old_words",
    "new",
    "new_words",
    "url",
    "history_url",
)
"""The header row of ``export --format csv --changes``: each change as ``--format jsonl``
gives it, the statuses also in the registry site's words beside their enum (``old_words``,
``new_words``; empty for other fields, whose ``summary`` says it in words)."""


def _plain_cell(value: Any) -> Any:
    """A change's old/new value in one cell: text and numbers as they are, the rest as JSON."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def csv_change_row(event: RecordedChange, label: str | None) -> list[str]:
    """One change event as the cells of :data:`CSV_CHANGE_COLUMNS`, in that order."""
    row = change_event_json(event, label=label)
    words = event.change.field in _STATUS_FIELDS
    cells = {
        **row,
        "old": _plain_cell(row["old"]),
        "new": _plain_cell(row["new"]),
        "old_words": status_label(row["old"]) if words and row["old"] is not None else None,
        "new_words": status_label(row["new"]) if words and row["new"] is not None else None,
    }
    return [_csv_cell(cells.get(column)) for column in CSV_CHANGE_COLUMNS]


def write_csv_changes(
    out: IO[str],
    changes: Iterable[tuple[RecordedChange, str | None]],
    *,
    bom: bool = False,
) -> int:
    """Write the header and one row per ``(change event, label)`` (RFC 4180, as
    :func:`write_csv_export`); returns how many changes were written."""
    if bom:
        out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_CHANGE_COLUMNS)
    count = 0
    for event, label in changes:
        writer.writerow(csv_change_row(event, label))
        count += 1
    return count
