"""The JSON export of current statuses. Pure: state in, plain JSON out.

The document's shape is specified by ``docs/export.schema.json``; the writer streams one trial
at a time so a large watchlist never has to sit in memory whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from trialwatch.models import PartialDate, Snapshot
from trialwatch.vocabulary import history_url, study_url

SCHEMA_ID = "https://trialwatch.example/schemas/export-v1.json"


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
    out.write(json.dumps(head, ensure_ascii=False, indent=2)[:-2])
    out.write(',\n  "trials": [')
    count = 0
    for state in trials:
        out.write("," if count else "")
        out.write("\n    " + json.dumps(export_trial(state), ensure_ascii=False))
        count += 1
    out.write("\n  ]\n}\n" if count else "]\n}\n")
    return count
