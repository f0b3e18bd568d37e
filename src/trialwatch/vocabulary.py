"""How ClinicalTrials.gov words its enums for people, links to its pages, and the few rules
for text shown to people that every renderer shares. Pure."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

SITE_URL = "https://clinicaltrials.gov"

# As the study pages on clinicaltrials.gov word them.
OVERALL_STATUS_LABELS: dict[str, str] = {
    "ACTIVE_NOT_RECRUITING": "Active, not recruiting",
    "COMPLETED": "Completed",
    "ENROLLING_BY_INVITATION": "Enrolling by invitation",
    "NOT_YET_RECRUITING": "Not yet recruiting",
    "RECRUITING": "Recruiting",
    "SUSPENDED": "Suspended",
    "TERMINATED": "Terminated",
    "WITHDRAWN": "Withdrawn",
    "AVAILABLE": "Available",
    "NO_LONGER_AVAILABLE": "No longer available",
    "TEMPORARILY_NOT_AVAILABLE": "Temporarily not available",
    "APPROVED_FOR_MARKETING": "Approved for marketing",
    "WITHHELD": "Withheld",
    "UNKNOWN": "Unknown status",
}

OVERALL_STATUSES = frozenset(OVERALL_STATUS_LABELS)
"""Every overallStatus the API knows (the spec's enum)."""

EXPANDED_ACCESS_STATUSES = frozenset(
    {"AVAILABLE", "NO_LONGER_AVAILABLE", "TEMPORARILY_NOT_AVAILABLE", "APPROVED_FOR_MARKETING"}
)
"""Statuses of expanded-access records, not of studies (a paper's "Available" is not one)."""

# Statuses whose arrival a clinician must hear about first.
CRITICAL_STATUSES = frozenset({"TERMINATED", "SUSPENDED", "WITHDRAWN", "COMPLETED"})

PHASE_LABELS: dict[str, str] = {
    "NA": "Not applicable",
    "EARLY_PHASE1": "Early phase 1",
    "PHASE1": "Phase 1",
    "PHASE2": "Phase 2",
    "PHASE3": "Phase 3",
    "PHASE4": "Phase 4",
}
PHASE_ORDER: dict[str, int] = {key: i for i, key in enumerate(PHASE_LABELS)}

DATE_TYPE_SHORT: dict[str, str] = {"ACTUAL": "actual", "ESTIMATED": "est."}


def humanize_enum(value: str | None) -> str:
    """``"ACTIVE_NOT_RECRUITING"`` -> ``"Active, not recruiting"``; unknown enums read sensibly."""
    if value is None:
        return "(none)"
    if value in OVERALL_STATUS_LABELS:
        return OVERALL_STATUS_LABELS[value]
    if value in PHASE_LABELS:
        return PHASE_LABELS[value]
    return value.replace("_", " ").capitalize()


def status_label(value: str | None) -> str:
    """An overall-status enum as the CT.gov site words it."""
    return humanize_enum(value)


def phases_label(phases: tuple[str, ...] | list[str]) -> str:
    """``("PHASE2", "PHASE3")`` -> ``"Phase 2/Phase 3"``; empty -> ``"(none)"``."""
    if not phases:
        return "(none)"
    return "/".join(humanize_enum(p) for p in phases)


def date_label(date: str | None, date_type: str | None) -> str:
    """``("2027-06", "ESTIMATED")`` -> ``"2027-06 est."``; a missing type is left unsaid."""
    if not date:
        return "(none)"
    if date_type and date_type in DATE_TYPE_SHORT:
        return f"{date} {DATE_TYPE_SHORT[date_type]}"
    return date


def study_url(nct_id: str) -> str:
    return f"{SITE_URL}/study/{nct_id}"


def trial_page_url(public_url: str, nct_id: str) -> str:
    """A trial's page on trialwatch's own web page (``[web] public_url``): emails link here."""
    return f"{public_url.rstrip('/')}/trial/{nct_id}"


def history_url(nct_id: str) -> str:
    return f"{SITE_URL}/study/{nct_id}?tab=history"


# --- text shown to people ------------------------------------------------------------------------

_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def one_line(text: str) -> str:
    """Control characters, line breaks and bidi overrides become spaces; runs of spaces one.

    Registry text reaches terminals, files and emails: an ESC character could otherwise repaint
    a terminal, a CR hide what came before it, a bidi override reverse what follows."""
    cleaned = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in _BIDI_CONTROLS else ch
        for ch in text
    )
    return " ".join(cleaned.split())


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, an ellipsis marking the cut (spaces before it
    dropped: prose)."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def clip(text: str, limit: int) -> str:
    """``text`` cut to exactly ``limit`` characters, the last one an ellipsis (table cells,
    titles: a fixed width)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def utc_time(moment: datetime) -> str:
    """``"2026-11-23 14:00 UTC"``: an aware time shown in UTC; a naive one is taken to be UTC
    already (the Clock contract, and what SQLite hands back)."""
    utc = moment.astimezone(UTC) if moment.tzinfo is not None else moment
    return utc.strftime("%Y-%m-%d %H:%M UTC")


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``"1 trial"``, ``"3 trials"`` (``many``: an irregular plural)."""
    return f"{count} {noun}" if count == 1 else f"{count} {many or noun + 's'}"
