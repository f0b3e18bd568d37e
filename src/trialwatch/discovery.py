"""Query watches and what changed since print: deciding what to tell. Pure.

A ``[[queries]]`` search is compared with the set it returned last time: a trial entering it
is a "new matching trial" event (title, phase, status, sponsor, first posted), a trial leaving
it is reported with its current status (which often says why). The first answer of a query (or
of a query whose search was edited) is a silent baseline. A query that suddenly matches many
more trials than before is one summary, not one message per trial.

``since_print`` sets what a paper printed (``watch import``) beside the registry now.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from trialwatch.models import (
    Category,
    ChangeKind,
    FieldChange,
    Severity,
    Snapshot,
    StudySummary,
)
from trialwatch.vocabulary import phases_label, status_label, truncate

QUERY_FIELD = "query_match"
SURGE_MIN = 20
"""A query whose new matches number more than this and more than all it matched before is a
surge (a broad term, a registry-wide edit): one summary instead of a message per trial."""


def params_hash(params: Mapping[str, str]) -> str:
    """A fingerprint of a query's search: editing the search re-baselines it silently."""
    return hashlib.sha256(json.dumps(sorted(params.items())).encode()).hexdigest()


def describe_match(summary: StudySummary) -> str:
    """``"Selinexor in X (Phase 2, Recruiting; sponsor Y; first posted 2026-11-20)"``."""
    details = []
    if summary.phases and summary.phases != ("NA",):
        details.append(phases_label(summary.phases))
    if summary.overall_status:
        details.append(status_label(summary.overall_status))
    head = ", ".join(details)
    extra = []
    if summary.lead_sponsor:
        extra.append(f"sponsor {summary.lead_sponsor}")
    if summary.first_posted:
        extra.append(f"first posted {summary.first_posted}")
    inside = "; ".join(x for x in [head, *extra] if x)
    title = summary.brief_title or summary.acronym or summary.nct_id
    return f"{title} ({inside})" if inside else title


@dataclass(frozen=True, slots=True)
class QueryOutcome:
    """What one query's answer means against its last one."""

    name: str
    baseline: bool
    entered: tuple[StudySummary, ...]
    left: tuple[str, ...]
    changes: tuple[tuple[str, FieldChange], ...]  # (nct_id, change)
    surge: bool


def decide_query(
    name: str,
    previous: Mapping[str, bool] | None,
    matches: Sequence[StudySummary],
    left_status: Mapping[str, str | None],
    merged: Mapping[str, str] | None = None,
) -> QueryOutcome:
    """``previous``: nct_id -> present in the last answer (None: no baseline yet).

    ``merged``: retired id -> surviving id, for trials of the last answer that the registry
    has since merged into another study (a duplicate registration). The surviving study
    answering in place of the retired one is the same trial: neither a new match nor one that
    left (the merge is told once, as the watched trial's own event)."""
    if previous is None:
        return QueryOutcome(name, True, tuple(matches), (), (), False)
    before = {nct_id for nct_id, present in previous.items() if present}
    now = {m.nct_id for m in matches}
    followed = {old: new for old, new in (merged or {}).items() if old in before and new in now}
    before |= set(followed.values())
    entered = tuple(m for m in matches if m.nct_id not in before)
    left = tuple(sorted(before - now - followed.keys()))
    changes: list[tuple[str, FieldChange]] = []
    for match in entered:
        text = describe_match(match)
        changes.append(
            (
                match.nct_id,
                FieldChange(
                    field=QUERY_FIELD,
                    category=Category.DISCOVERY,
                    severity=Severity.MAJOR,
                    kind=ChangeKind.ADDED,
                    summary=f"New trial matching {name}: {text}",
                    old=None,
                    new={
                        "query": name,
                        "brief_title": match.brief_title,
                        "phases": list(match.phases),
                        "overall_status": match.overall_status,
                        "lead_sponsor": match.lead_sponsor,
                        "first_posted": match.first_posted,
                    },
                    item_key=name,
                ),
            )
        )
    for nct_id in left:
        status = left_status.get(nct_id)
        why = (
            f" (now {status_label(status)})"
            if status
            else " (not returned by ClinicalTrials.gov any more)"
        )
        changes.append(
            (
                nct_id,
                FieldChange(
                    field=QUERY_FIELD,
                    category=Category.DISCOVERY,
                    severity=Severity.MAJOR,
                    kind=ChangeKind.REMOVED,
                    summary=f"No longer matches {name}{why}",
                    old={"query": name},
                    new={"overall_status": status} if status else None,
                    item_key=name,
                ),
            )
        )
    surge = len(entered) > max(SURGE_MIN, len(before))
    return QueryOutcome(name, False, entered, left, tuple(changes), surge)


# -- what changed since print -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Printed:
    """What a paper printed about one trial."""

    nct_id: str
    status: str | None  # CT.gov's enum when the words were recognised
    status_text: str | None
    title: str | None


@dataclass(frozen=True, slots=True)
class Drift:
    """How the registry differs from print for one trial (``line`` says it in words)."""

    nct_id: str
    line: str
    status_moved: bool
    unknown: bool = False
    title_note: str | None = None


def _date_note(snapshot: Snapshot) -> str:
    status = snapshot.overall_status
    date = snapshot.completion_date
    if status in {"COMPLETED", "TERMINATED"} and date is not None:
        kind = " (actual)" if date.type == "ACTUAL" else " (est.)" if date.type else ""
        verb = "completed" if status == "COMPLETED" else "ended"
        return f", {verb} {date.date[:7]}{kind}"
    primary = snapshot.primary_completion_date
    if primary is not None:
        kind = "actual" if primary.type == "ACTUAL" else "est."
        return f", primary completion {primary.date[:7]} ({kind})"
    return ""


_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "the",
        "of",
        "in",
        "on",
        "for",
        "with",
        "to",
        "or",
        "as",
        "at",
        "by",
        "from",
        "phase",
        "study",
        "trial",
        "trials",
        "patients",
        "advanced",
        "selinexor",
        "kpt-330",
    ]
)


def _words(text: str) -> set[str]:
    cleaned = "".join(c.lower() if c.isalnum() or c == "-" else " " for c in text)
    return {w for w in cleaned.split() if len(w) > 2 and w not in _STOP}


def title_note(printed: str | None, snapshot: Snapshot) -> str | None:
    """A note when a printed title (or disease) shares no word with the registry's titles and
    conditions: one of them may be mislabelled."""
    if not printed:
        return None
    registry = " ".join(
        x for x in (snapshot.brief_title, snapshot.official_title, *snapshot.conditions) if x
    )
    mine, theirs = _words(printed), _words(registry)
    if not mine or mine & theirs:
        return None
    conditions = ", ".join(snapshot.conditions[:3]) or "none listed"
    return (
        f"printed as {printed!r}, but the registry's title is "
        f"{(snapshot.brief_title or '')!r} (conditions: {conditions})"
    )


def since_print(
    printed: Iterable[Printed], snapshots: Mapping[str, Snapshot | None]
) -> list[Drift]:
    """Every printed trial whose registry status differs from print (or that the registry does
    not know), with a note where the printed title does not match the registry's."""
    drifts = []
    for entry in printed:
        snapshot = snapshots.get(entry.nct_id)
        label = truncate(entry.title, 40) if entry.title else None
        name = f"{entry.nct_id} ({label})" if label else entry.nct_id
        if snapshot is None:
            drifts.append(
                Drift(
                    entry.nct_id,
                    f"{name}: not known to ClinicalTrials.gov (or not synced yet)",
                    status_moved=False,
                    unknown=True,
                )
            )
            continue
        note = title_note(entry.title, snapshot)
        now = snapshot.overall_status
        printed_words = entry.status_text or (status_label(entry.status) if entry.status else None)
        if entry.status is not None and now is not None and entry.status != now:
            line = (
                f"{name}: {printed_words} as printed → {status_label(now)} now"
                f"{_date_note(snapshot)}"
            )
            drifts.append(Drift(entry.nct_id, line, status_moved=True, title_note=note))
        elif note is not None:
            drifts.append(
                Drift(entry.nct_id, f"{name}: {note}", status_moved=False, title_note=note)
            )
    return drifts
