"""The report over a period: every recorded change of the watch set between two days. Pure.

``trialwatch report``: each trial with changes in the period, most severe first, summarized in
a line, then its changes; quiet trials are listed (or, for a large watch set, counted). Rendered
as text, markdown, JSON or an HTML page (with the timeline picture). "Now" and the CT.gov data
timestamp are passed in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from trialwatch.diff import EVERY_CHANGE, ChangeCount, ChangeFilter, change_count
from trialwatch.history import (
    before_history_note,
    change_event_json,
    iso,
    markdown_line,
    origin_mark,
    stamp,
    summarize_changes,
    utc_day_text,
)
from trialwatch.models import JSONValue, Severity, Snapshot
from trialwatch.pages import environment
from trialwatch.records import Period, RecordedChange, TrialHistory
from trialwatch.timeline import timeline_context
from trialwatch.vocabulary import history_url, one_line, plural, status_label, study_url

__all__ = [
    "REPORT_FORMATS",
    "PeriodReport",
    "TrialPeriod",
    "period_json",
    "period_report",
    "render_period_report",
]

REPORT_FORMATS = ("text", "markdown", "json", "html")


@dataclass(frozen=True, slots=True)
class TrialPeriod:
    """One trial in a period report: its changes in the period (oldest first) and their gist."""

    history: TrialHistory
    changes: tuple[RecordedChange, ...]
    summary: str
    severity: Severity | None
    before_history: str | None  # the note when the period reaches before the first record

    @property
    def nct_id(self) -> str:
        return self.history.nct_id

    @property
    def name(self) -> str:
        return self.history.name


@dataclass(frozen=True, slots=True)
class PeriodReport:
    """Every recorded change of the watch set in ``period``: ``trials`` with changes, most
    severe first, and ``quiet`` trials with none (in the order given).

    ``watched_count`` is the size of the watch set when it is larger than the trials given (a
    large watch set's quiet trials are counted, not listed); ``None``: the trials given.

    Unless made with ``keep_records`` (the HTML page, whose timeline draws every version), each
    trial's history keeps only what a report in words reads of its record: its first and last
    versions, their snapshots cut to the trial's id, title and status (see :func:`_headline`);
    and :attr:`histories` is empty."""

    period: Period
    generated_at: datetime
    data_timestamp: str | None
    trials: tuple[TrialPeriod, ...]
    quiet: tuple[TrialPeriod, ...]
    histories: tuple[TrialHistory, ...] = field(default=())
    watched_count: int | None = None
    shown: ChangeFilter = EVERY_CHANGE  # --min-severity, --category
    records_kept: bool = True  # False: headline versions only (see period_report)

    @property
    def change_count(self) -> int:
        return self.count.changes

    @property
    def count(self) -> ChangeCount:
        """What the report leads with: the changes that count, and in how many trials."""
        return change_count((t.nct_id, (e.change for e in t.changes)) for t in self.trials)

    @property
    def watched(self) -> int:
        listed = len(self.trials) + len(self.quiet)
        return listed if self.watched_count is None else max(self.watched_count, listed)

    @property
    def unlisted(self) -> int:
        """Watched trials without changes in the period that are counted but not listed."""
        return self.watched - len(self.trials) - len(self.quiet)


def period_report(
    histories: Iterable[TrialHistory],
    period: Period,
    *,
    generated_at: datetime,
    data_timestamp: str | None,
    watched: int | None = None,
    shown: ChangeFilter = EVERY_CHANGE,
    keep_records: bool = True,
) -> PeriodReport:
    """Gather the changes of each trial detected in ``period``, summarize each trial in a line,
    and order trials by their most severe change (then by name). Does not filter by severity.

    ``watched``: the size of the watch set, when ``histories`` leave out some of its trials
    without changes (they are then counted in words, not listed). ``histories`` is read once,
    one at a time: given as they are read from the database, a report made without
    ``keep_records`` (one rendered in words, not as HTML) holds each trial's whole records only
    while it gathers that trial (see :class:`PeriodReport`)."""
    changed: list[TrialPeriod] = []
    quiet: list[TrialPeriod] = []
    kept: list[TrialHistory] = []
    for history in histories:
        events = tuple(
            e for e in history.changes if period.contains(e.detected_at) and shown.admits(e.change)
        )
        if keep_records:
            kept.append(history)
        item = TrialPeriod(
            history=history if keep_records else _headline(history),
            changes=events,
            summary=summarize_changes(history.nct_id, events),
            severity=max((e.change.severity for e in events), default=None),
            before_history=before_history_note(history, period.start),
        )
        (changed if events else quiet).append(item)
    changed.sort(key=lambda t: (-(t.severity or 0), t.name.casefold()))
    return PeriodReport(
        period=period,
        generated_at=generated_at,
        data_timestamp=data_timestamp,
        trials=tuple(changed),
        quiet=tuple(quiet),
        histories=tuple(kept),
        watched_count=watched,
        shown=shown,
        records_kept=keep_records,
    )


def _headline(history: TrialHistory) -> TrialHistory:
    """``history`` as a report in words reads it: its changes, and its first and last versions
    with their snapshots cut to the id, title and status (the name, the title line, the status
    now and when trialwatch first recorded it). A whole snapshot is some 20 KB of objects: held
    for every trial of a report of 1,000 changed trials, they took its peak from 106 to 118 MiB
    (text, 10,000 watched)."""
    versions = history.versions
    ends = versions if len(versions) <= 2 else (versions[0], versions[-1])
    return replace(
        history,
        versions=tuple(
            replace(
                v,
                snapshot=Snapshot(
                    nct_id=v.snapshot.nct_id,
                    brief_title=v.snapshot.brief_title,
                    overall_status=v.snapshot.overall_status,
                ),
            )
            for v in ends
        ),
    )


def render_period_report(report: PeriodReport, fmt: str) -> str:
    """``trialwatch report --format FMT``: one of :data:`REPORT_FORMATS`, else ``ValueError``."""
    if fmt == "text":
        return _period_text(report)
    if fmt == "markdown":
        return _periodmarkdown_line(report)
    if fmt == "json":
        return json.dumps(period_json(report), ensure_ascii=False, indent=2) + "\n"
    if fmt == "html":
        return _period_html(report)
    raise ValueError(f"unknown report format {fmt!r} (choose from {', '.join(REPORT_FORMATS)})")


def _intro(report: PeriodReport) -> str:
    watched = report.watched
    only = f" (showing only {report.shown.label})" if report.shown.narrowed else ""
    if not report.trials:
        return f"0 changes{only}: no recorded changes in {plural(watched, 'watched trial')}."
    return f"{report.count.text} (of {plural(watched, 'watched trial')}){only}."


def _quiet_heading(report: PeriodReport) -> str:
    return "No changes of these kinds" if report.shown.narrowed else "No recorded changes"


def _unlisted(report: PeriodReport) -> str | None:
    if not report.unlisted:
        return None
    other = "other " if report.trials or report.quiet else ""
    return f"No recorded changes in the {plural(report.unlisted, other + 'watched trial')}."


def _stamp(report: PeriodReport) -> str:
    return stamp(report.data_timestamp, report.generated_at)


def _period_text(report: PeriodReport) -> str:
    lines = [f"Changes in watched trials, {report.period.label} (UTC days)", _intro(report)]
    lines.append(_stamp(report))
    for trial in report.trials:
        severity = trial.severity.label if trial.severity is not None else ""
        lines += ["", f"== {trial.name} — {severity} =="]
        if trial.history.brief_title:
            lines.append(one_line(trial.history.brief_title))
        lines.append(f"In short: {trial.summary}")
        for event in trial.changes:
            tag = f"[{event.change.severity.label}]"
            lines.append(
                f"  {utc_day_text(event.detected_at)}  {tag:<10} {one_line(event.change.summary)}"
                f"{origin_mark(event)}"
            )
        if trial.before_history:
            lines.append(f"Note: {trial.before_history}: {history_url(trial.nct_id)}")
        lines.append(f"Study:   {study_url(trial.nct_id)}")
        lines.append(f"History: {history_url(trial.nct_id)}")
    if report.quiet:
        lines += ["", f"{_quiet_heading(report)}:"]
        for trial in report.quiet:
            lines.append(f"  {trial.name}")
            if trial.before_history:
                lines.append(f"    Note: {trial.before_history}: {history_url(trial.nct_id)}")
    unlisted = _unlisted(report)
    if unlisted:
        lines += ["", unlisted]
    return "\n".join(lines) + "\n"


def _periodmarkdown_line(report: PeriodReport) -> str:
    lines = [f"# Changes in watched trials, {report.period.label}", ""]
    lines += [f"{_intro(report)} {markdown_line(_stamp(report))}", ""]
    for trial in report.trials:
        severity = trial.severity.label if trial.severity is not None else ""
        lines += [f"## {markdown_line(trial.name)} — {severity}", ""]
        if trial.history.brief_title:
            lines += [f"*{markdown_line(trial.history.brief_title)}*", ""]
        lines += [f"**{markdown_line(trial.summary)}**", ""]
        for event in trial.changes:
            lines.append(
                f"- {utc_day_text(event.detected_at)} · **{event.change.severity.label}** · "
                f"{markdown_line(event.change.summary)}{origin_mark(event)}"
            )
        lines.append("")
        if trial.before_history:
            url = history_url(trial.nct_id)
            lines += [f"> {markdown_line(trial.before_history)}: <{url}>", ""]
        lines += [
            f"[Study page]({study_url(trial.nct_id)}) · "
            f"[Record history on ClinicalTrials.gov]({history_url(trial.nct_id)})",
            "",
        ]
    if report.quiet:
        lines += [f"## {_quiet_heading(report)}", ""]
        for trial in report.quiet:
            url = history_url(trial.nct_id)
            note = (
                f" — {markdown_line(trial.before_history)}: <{url}>" if trial.before_history else ""
            )
            lines.append(f"- [{markdown_line(trial.name)}]({study_url(trial.nct_id)}){note}")
        lines.append("")
    unlisted = _unlisted(report)
    if unlisted:
        lines += [unlisted, ""]
    return "\n".join(lines)


def _trial_json(trial: TrialPeriod) -> dict[str, JSONValue]:
    history = trial.history
    return {
        "nct_id": history.nct_id,
        "label": history.label,
        "brief_title": history.brief_title,
        "severity": trial.severity.label if trial.severity is not None else None,
        "summary": trial.summary,
        "first_recorded_at": (
            iso(history.first_recorded_at) if history.first_recorded_at else None
        ),
        "before_history": trial.before_history,
        "url": study_url(history.nct_id),
        "history_url": history_url(history.nct_id),
        "changes": [change_event_json(e, label=history.label) for e in trial.changes],
    }


def period_json(report: PeriodReport) -> dict[str, JSONValue]:
    """``report --format json``: the period, the stamp, the size of the watch set, then trials
    with changes (most severe first, each change as in ``export --format jsonl``) and the quiet
    ones listed (all of them unless the watch set is large)."""
    return {
        "since": report.period.since.isoformat(),
        "until": report.period.until.isoformat() if report.period.until else None,
        "generated_at": iso(report.generated_at),
        "data_timestamp": report.data_timestamp,
        "change_count": report.change_count,
        "min_severity": report.shown.min_severity.label,
        "categories": sorted(c.value for c in report.shown.categories),
        "watched_count": report.watched,
        "trials": [_trial_json(t) for t in report.trials],
        "quiet": [_trial_json(t) for t in report.quiet],
    }


def _first_recorded_note(report: PeriodReport) -> str | None:
    """One note, not one per trial: which trials' record begins after the period does."""
    everyone = (*report.trials, *report.quiet)
    days = sorted(
        utc_day_text(first)
        for t in everyone
        if t.before_history and (first := t.history.first_recorded_at) is not None
    )
    never = [t for t in everyone if t.history.first_recorded_at is None]
    parts = []
    if days:
        when = f"on {days[0]}" if days[0] == days[-1] else f"between {days[0]} and {days[-1]}"
        parts.append(
            f"The period begins before trialwatch first recorded {len(days)} of these trials "
            f"({when}): for changes before that, see each trial's record "
            "history on ClinicalTrials.gov."
        )
    if never:
        parts.append(
            f"{plural(len(never), 'trial has', 'trials have')} not been recorded yet "
            "(ClinicalTrials.gov has not returned them)."
        )
    if not parts:
        return None
    return " ".join(parts)


def _period_html(report: PeriodReport) -> str:
    """Changes first: each changed trial's card holds its own small timeline (the legend
    follows the cards), so no picture stands before the first change."""
    if not report.records_kept:
        # A programming error: the timeline would be drawn from headline versions.
        raise ValueError("an HTML report draws whole records: make it with keep_records=True")
    today = report.generated_at.astimezone(UTC).date()
    pictures = timeline_context([t.history for t in report.trials], today=today)
    context: dict[str, Any] = {
        "title": f"Changes in watched trials, {report.period.label}",
        "intro": _intro(report),
        "stamp": _stamp(report),
        "trials": [
            {
                "name": t.name,
                "title": one_line(t.history.brief_title) if t.history.brief_title else None,
                "severity": t.severity.label if t.severity is not None else "",
                "summary": t.summary,
                "url": study_url(t.nct_id),
                "history_url": history_url(t.nct_id),
                "svg": pictures["svgs"][i],
                "changes": [
                    {
                        "day": utc_day_text(e.detected_at),
                        "severity": e.change.severity.label,
                        "summary": one_line(e.change.summary),
                        "registry": e.from_registry,
                    }
                    for e in t.changes
                ],
            }
            for i, t in enumerate(report.trials)
        ],
        "quiet": [
            {
                "name": t.name,
                "url": study_url(t.nct_id),
                "status": _status_now(t),
                "first_recorded": (
                    utc_day_text(t.history.first_recorded_at)
                    if t.history.first_recorded_at
                    else "not yet"
                ),
            }
            for t in report.quiet
        ],
        "unlisted": _unlisted(report),
        "quiet_heading": _quiet_heading(report),
        "first_recorded_note": _first_recorded_note(report),
        "timeline": pictures,
    }
    return environment().get_template("period_report.html.j2").render(context)


def _status_now(trial: TrialPeriod) -> str:
    latest = trial.history.latest
    if latest is None:
        return "not returned by ClinicalTrials.gov"
    return status_label(latest.overall_status)
