"""The recorded history of watched trials, and what it says over a period. Pure.

Storage reads fill the value types below (:class:`RecordedVersion`, :class:`RecordedChange`,
:class:`TrialHistory`), one query each; this module turns them into a trial's timeline, a diff
between two recorded versions and a report over a period, as text, markdown, JSON or HTML.
Nothing here reads the clock, the database or the network: "now" and the CT.gov data timestamp
are passed in.

History starts when trialwatch first records a trial. Whatever reaches before that (a report
since an earlier date, a diff from an earlier date) says so and links the registry's own history
tab, which has every version CT.gov ever published.

Registry text is hostile: every single-line value is passed through :func:`one_line` (control
characters, including the terminal's escape character, become spaces); markdown escapes its
markup characters; HTML is autoescaped by the template.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from trialwatch.diff import FIELD_ORDER, diff
from trialwatch.models import FieldChange, JSONValue, Severity, Snapshot
from trialwatch.vocabulary import history_url, one_line, plural, status_label, study_url, truncate

if TYPE_CHECKING:
    import jinja2

__all__ = [
    "DATE_FIELDS",
    "REPORT_FORMATS",
    "HistoryEntry",
    "Period",
    "PeriodReport",
    "RecordedChange",
    "RecordedVersion",
    "TrialHistory",
    "TrialPeriod",
    "VersionDiff",
    "assemble_histories",
    "change_event_json",
    "history_entries",
    "history_json",
    "iso",
    "one_line",
    "page_environment",
    "parse_day",
    "period_json",
    "period_report",
    "render_history_text",
    "render_period_report",
    "render_version_diff_text",
    "summarize_changes",
    "version_diff",
    "version_diff_json",
    "xml_text",
]

REPORT_FORMATS = ("text", "markdown", "json", "html")
DATE_FIELDS = ("start_date", "primary_completion_date", "completion_date")

# List fields (one change per item, summarized as counts rather than as old -> new), and
# what one item and several are called.
_ITEM_NOUNS = {
    "arms": ("arm", "arms"),
    "interventions": ("intervention", "interventions"),
    "primary_outcomes": ("primary outcome", "primary outcomes"),
    "secondary_outcomes": ("secondary outcome", "secondary outcomes"),
    "locations": ("site", "sites"),
    "references": ("reference", "references"),
    "conditions": ("condition", "conditions"),
}
_FIELD_INDEX = {name: i for i, name in enumerate(FIELD_ORDER)}
_SUMMARY_PARTS = 3  # a trial's one-line summary names at most this many things, then "and N more"
_SUMMARY_PART_CHARS = 120  # ... each cut to this length (a quoted reason can be long)

# What XML 1.0 cannot carry at all, escaped or not (Char production of the XML spec).
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


# --- the values storage fills --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordedVersion:
    """One stored version of a trial's record: a ``record_version`` row, its snapshot decoded.

    ``first_seen_at`` is when trialwatch first stored it (aware UTC); ``data_timestamp`` is
    CT.gov's dataTimestamp of the sync that stored it (``yyyy-MM-ddTHH:mm:ss``), when known.
    """

    version_id: int
    nct_id: str
    first_seen_at: datetime
    data_timestamp: str | None
    snapshot: Snapshot


@dataclass(frozen=True, slots=True)
class RecordedChange:
    """One stored change event: a ``change_event`` row, its change decoded (``to_change()``).

    ``id`` is the row's primary key; with ``nct_id`` and ``detected_at`` it is the identity that
    feed entry ids are derived from, so it must never be reused for another change.
    """

    id: int
    nct_id: str
    detected_at: datetime
    data_timestamp: str | None
    change: FieldChange
    from_version_id: int | None = None
    to_version_id: int | None = None


@dataclass(frozen=True, slots=True)
class TrialHistory:
    """Everything recorded of one trial: its versions and change events, both oldest first.

    ``watched_since`` is when the trial was added to the watch set (``trial.added_at``); the
    recorded history itself starts at the first version (:attr:`first_recorded_at`).
    """

    nct_id: str
    label: str | None
    versions: tuple[RecordedVersion, ...] = ()
    changes: tuple[RecordedChange, ...] = ()
    watched_since: datetime | None = None

    @property
    def first_recorded_at(self) -> datetime | None:
        return self.versions[0].first_seen_at if self.versions else None

    @property
    def latest(self) -> Snapshot | None:
        return self.versions[-1].snapshot if self.versions else None

    @property
    def brief_title(self) -> str | None:
        latest = self.latest
        return latest.brief_title if latest else None

    @property
    def name(self) -> str:
        """``"SEAL (NCT02606461)"``, or the NCT id alone when there is no label."""
        nct_id = one_line(self.nct_id)
        label = one_line(self.label) if self.label else ""
        return f"{label} ({nct_id})" if label else nct_id


def assemble_histories(
    trials: Iterable[tuple[str, str | None, datetime | None]],
    versions: Iterable[RecordedVersion],
    changes: Iterable[RecordedChange],
) -> list[TrialHistory]:
    """Group the rows of three queries (trials as ``(nct_id, label, added_at)``, versions and
    change events of those trials, in any order) into one :class:`TrialHistory` per trial, in
    the order ``trials`` gives. Versions and changes of trials not listed are ignored."""
    by_trial_versions: dict[str, list[RecordedVersion]] = defaultdict(list)
    by_trial_changes: dict[str, list[RecordedChange]] = defaultdict(list)
    for version in versions:
        by_trial_versions[version.nct_id].append(version)
    for change in changes:
        by_trial_changes[change.nct_id].append(change)
    return [
        TrialHistory(
            nct_id=nct_id,
            label=label,
            versions=tuple(
                sorted(by_trial_versions[nct_id], key=lambda v: (v.first_seen_at, v.version_id))
            ),
            changes=tuple(sorted(by_trial_changes[nct_id], key=lambda c: (c.detected_at, c.id))),
            watched_since=added_at,
        )
        for nct_id, label, added_at in trials
    ]


# --- periods and dates -------------------------------------------------------------------------


def parse_day(text: str) -> date:
    """``"2026-03-01"`` -> ``date(2026, 3, 1)``; anything else raises ``ValueError`` in words
    the CLI can print as is."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not a date: {text!r} (expected YYYY-MM-DD, e.g. 2026-03-01)") from None


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _day_end(day: date) -> datetime:
    """The first moment after ``day`` (the last day a date can name ends at datetime.max)."""
    return datetime.max.replace(tzinfo=UTC) if day == date.max else _day_start(day + timedelta(1))


@dataclass(frozen=True, slots=True)
class Period:
    """Whole UTC days from ``since`` through ``until`` (both included); open-ended without
    ``until``. Raises ``ValueError`` when ``until`` is before ``since``."""

    since: date
    until: date | None = None

    def __post_init__(self) -> None:
        if self.until is not None and self.until < self.since:
            raise ValueError(f"--until {self.until} is before --since {self.since}")

    @property
    def start(self) -> datetime:
        return _day_start(self.since)

    @property
    def end(self) -> datetime | None:
        """The first moment after the period, or ``None`` when it has no end."""
        return None if self.until is None else _day_end(self.until)

    def contains(self, moment: datetime) -> bool:
        end = self.end
        return moment >= self.start and (end is None or moment < end)

    @property
    def label(self) -> str:
        """``"2026-01-01 to 2026-03-31"`` or ``"since 2026-01-01"``."""
        if self.until is None:
            return f"since {self.since.isoformat()}"
        return f"{self.since.isoformat()} to {self.until.isoformat()}"


# --- text helpers ------------------------------------------------------------------------------


def xml_text(text: str) -> str:
    """:func:`one_line`, minus the characters XML 1.0 forbids (U+FFFE, U+FFFF, surrogates), which
    ElementTree would write unescaped into a document no parser accepts."""
    return _XML_INVALID.sub("", one_line(text))


def iso(moment: datetime) -> str:
    """An aware datetime as ISO 8601 UTC with ``Z``, to the second."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _day(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


def _markdown(text: str) -> str:
    """One line of registry text, safe inside a markdown line that already has its prefix
    (a bullet, a heading mark): emphasis, code, link, table and strike-through characters are
    escaped, ``<`` and ``&`` become entities, so a title cannot become a link, an image or raw
    HTML. Characters that only mean something at the start of a line are left alone."""
    out = []
    for ch in one_line(text):
        if ch == "<":
            out.append("&lt;")
        elif ch == "&":
            out.append("&amp;")
        elif ch in "\\`*_[]|~":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


# --- one change as plain JSON (report --format json, export --format jsonl) ---------------------


def change_event_json(event: RecordedChange, *, label: str | None = None) -> dict[str, JSONValue]:
    """One change event as a plain-JSON object (one line of ``export --format jsonl``).

    Fields: ``id``, ``nct_id``, ``label``, ``detected_at`` (ISO 8601 UTC), ``data_timestamp``
    (CT.gov's, the registry data the change reflects), ``field``, ``category``, ``severity``
    (name), ``kind``, ``item_key``, ``summary``, ``old``, ``new``, ``from_version_id``,
    ``to_version_id``, ``url`` and ``history_url``."""
    change = event.change
    return {
        "id": event.id,
        "nct_id": event.nct_id,
        "label": label,
        "detected_at": iso(event.detected_at),
        "data_timestamp": event.data_timestamp,
        **change.to_json(),
        "from_version_id": event.from_version_id,
        "to_version_id": event.to_version_id,
        "url": study_url(event.nct_id),
        "history_url": history_url(event.nct_id),
    }


# --- the one-line summary of many changes ------------------------------------------------------


def summarize_changes(nct_id: str, events: Sequence[RecordedChange]) -> str:
    """One line saying what ``events`` (one trial's, oldest first) amount to.

    The status path is spelled out ("Recruiting → Active, not recruiting → Completed"); any
    other one-value field is worded as its net change from the first old value to the last new
    one, by :func:`trialwatch.diff.diff` itself, so the words are the emails' ("Completion
    slipped 14 months (2025-01 est. → 2026-03 est.), in 3 changes"); list fields are counted
    ("sites: 2 added, 1 removed"). Most severe first, at most three parts, then "and N more".
    Empty when there are no events.
    """
    by_field: dict[str, list[RecordedChange]] = defaultdict(list)
    for event in events:
        by_field[event.change.field].append(event)
    parts: list[tuple[Severity, int, str]] = []
    for name, group in by_field.items():
        severity = max(e.change.severity for e in group)
        order = _FIELD_INDEX.get(name, len(_FIELD_INDEX))
        parts.append((severity, order, _field_summary(nct_id, name, group)))
    parts.sort(key=lambda p: (-p[0], p[1]))
    words = [truncate(one_line(text), _SUMMARY_PART_CHARS) for _, _, text in parts]
    if len(words) > _SUMMARY_PARTS:
        rest = len(words) - _SUMMARY_PARTS
        words = [*words[:_SUMMARY_PARTS], f"and {plural(rest, 'more field')} changed"]
    return one_line("; ".join(words))


def _field_summary(nct_id: str, name: str, group: Sequence[RecordedChange]) -> str:
    if name == "overall_status":
        path = [group[0].change.old, *(e.change.new for e in group)]
        steps = [p for i, p in enumerate(path) if i == 0 or p != path[i - 1]]
        return " → ".join(status_label(s if isinstance(s, str) else None) for s in steps)
    if name in _ITEM_NOUNS:
        counts: dict[str, int] = defaultdict(int)
        for event in group:
            counts[event.change.kind.value] += 1
        noun = _ITEM_NOUNS[name][1]
        said = ", ".join(f"{counts[k]} {k}" for k in ("added", "removed", "changed") if counts[k])
        return f"{noun[:1].upper()}{noun[1:]}: {said}"
    net = _net_change(nct_id, name, group[0].change.old, group[-1].change.new)
    if net is None:
        # Moved and moved back, or a field diff does not know: say the last change.
        net = group[-1].change.summary
        if len(group) > 1:
            return f"{net} (after {plural(len(group), 'change')})"
        return net
    return f"{net}, in {plural(len(group), 'change')}" if len(group) > 1 else net


def _net_change(nct_id: str, name: str, old: JSONValue, new: JSONValue) -> str | None:
    """The diff's own sentence for one field going from ``old`` to ``new`` (plain JSON)."""
    if name not in FIELD_ORDER or name == "nct_id":
        return None
    try:
        before = Snapshot.from_dict({"nct_id": nct_id, name: _field_default(name, old)})
        after = Snapshot.from_dict({"nct_id": nct_id, name: _field_default(name, new)})
    except (TypeError, ValueError):  # a stored value of an older shape: fall back to the last
        return None
    changes = [c for c in diff(before, after) if c.field == name]
    return changes[0].summary if len(changes) == 1 else None


def _field_default(name: str, value: JSONValue) -> JSONValue:
    # Snapshot.has_results is a bool and phases a tuple: None is not a value they take.
    if value is None and name == "has_results":
        return False
    if value is None and name == "phases":
        return []
    return value


# --- one trial's timeline ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One moment of a trial's timeline: a version recorded, with the changes that led to it
    (most severe first). ``baseline`` for the first version, which has no changes."""

    at: datetime
    data_timestamp: str | None
    version_id: int | None
    baseline: bool
    changes: tuple[RecordedChange, ...]


def history_entries(history: TrialHistory, *, since: date | None = None) -> list[HistoryEntry]:
    """The trial's timeline, newest first, from ``since`` (a UTC day) on when given.

    Changes are grouped under the version they led to (``to_version_id``); changes whose
    version is not among ``history.versions`` are grouped by detection time instead."""
    by_version: dict[int, list[RecordedChange]] = defaultdict(list)
    loose: dict[tuple[datetime, str | None], list[RecordedChange]] = defaultdict(list)
    version_ids = {v.version_id for v in history.versions}
    for event in history.changes:
        if event.to_version_id is not None and event.to_version_id in version_ids:
            by_version[event.to_version_id].append(event)
        else:
            loose[(event.detected_at, event.data_timestamp)].append(event)
    entries = [
        HistoryEntry(
            at=v.first_seen_at,
            data_timestamp=v.data_timestamp,
            version_id=v.version_id,
            baseline=i == 0,
            changes=_most_severe_first(by_version.get(v.version_id, [])),
        )
        for i, v in enumerate(history.versions)
    ]
    entries.extend(
        HistoryEntry(at=at, data_timestamp=ts, version_id=None, baseline=False, changes=group)
        for (at, ts), group in ((k, _most_severe_first(g)) for k, g in loose.items())
    )
    if since is not None:
        entries = [e for e in entries if e.at >= _day_start(since)]
    entries.sort(key=lambda e: (e.at, e.version_id or 0), reverse=True)
    return entries


def _most_severe_first(events: Iterable[RecordedChange]) -> tuple[RecordedChange, ...]:
    return tuple(
        sorted(
            events,
            key=lambda e: (-e.change.severity, _FIELD_INDEX.get(e.change.field, 99), e.id),
        )
    )


def _before_history_note(history: TrialHistory, start: datetime | None) -> str | None:
    """Why a view reaching back to ``start`` (None: all of it) is incomplete, or ``None``. The
    sentence ends where the registry's history link (``history_url``) belongs."""
    first = history.first_recorded_at
    if first is None:
        return "trialwatch has not recorded this trial yet; for its history see ClinicalTrials.gov"
    if start is not None and start < first:
        return (
            f"trialwatch first recorded this trial on {_day(first)}; for changes before that, "
            "see its history on ClinicalTrials.gov"
        )
    return None


def render_history_text(history: TrialHistory, *, since: date | None = None) -> str:
    """``trialwatch history``: the trial's name, links, then its timeline newest first."""
    lines = [history.name]
    if history.brief_title:
        lines.append(one_line(history.brief_title))
    lines.append(f"Study:   {study_url(history.nct_id)}")
    lines.append(f"History: {history_url(history.nct_id)} (every version CT.gov published)")
    start = _day_start(since) if since is not None else None
    note = _before_history_note(history, start)
    entries = history_entries(history, since=since)
    lines.append("")
    if not entries:
        when = f" since {since.isoformat()}" if since else ""
        lines.append(f"Nothing recorded{when}.")
    for entry in entries:
        data = f" · CT.gov data {one_line(entry.data_timestamp)}" if entry.data_timestamp else ""
        if entry.baseline:
            lines.append(f"{_when(entry.at)}  first recorded (baseline){data}")
        elif entry.changes:
            lines.append(f"{_when(entry.at)}  {plural(len(entry.changes), 'change')}{data}")
        else:
            lines.append(f"{_when(entry.at)}  new version, no change in tracked fields{data}")
        for event in entry.changes:
            change = event.change
            tag = f"[{change.severity.label}]"
            lines.append(f"    {tag:<10} {one_line(change.summary)}")
    if note:
        lines += ["", f"{note}: {history_url(history.nct_id)}"]
    return "\n".join(lines) + "\n"


def history_json(history: TrialHistory, *, since: date | None = None) -> dict[str, JSONValue]:
    """``trialwatch history --format json``: the same timeline as plain JSON, newest first."""
    start = _day_start(since) if since is not None else None
    return {
        "nct_id": history.nct_id,
        "label": history.label,
        "brief_title": history.brief_title,
        "url": study_url(history.nct_id),
        "history_url": history_url(history.nct_id),
        "watched_since": iso(history.watched_since) if history.watched_since else None,
        "first_recorded_at": (
            iso(history.first_recorded_at) if history.first_recorded_at else None
        ),
        "since": since.isoformat() if since else None,
        "before_history": _before_history_note(history, start),
        "entries": [
            {
                "at": iso(entry.at),
                "data_timestamp": entry.data_timestamp,
                "version_id": entry.version_id,
                "baseline": entry.baseline,
                "changes": [change_event_json(e, label=history.label) for e in entry.changes],
            }
            for entry in history_entries(history, since=since)
        ],
    }


# --- a diff between two recorded versions ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VersionDiff:
    """What changed from ``older`` to ``newer`` (most severe first), with notes on the choice of
    versions (before the first record, one version only, ...)."""

    nct_id: str
    label: str | None
    older: RecordedVersion
    newer: RecordedVersion
    changes: tuple[FieldChange, ...]
    notes: tuple[str, ...] = ()


def _version_at(versions: Sequence[RecordedVersion], moment: datetime) -> RecordedVersion | None:
    """The version in force at ``moment``: the last one first seen before it."""
    found = None
    for version in versions:
        if version.first_seen_at < moment:
            found = version
    return found


def version_diff(
    history: TrialHistory, *, from_day: date | None = None, to_day: date | None = None
) -> VersionDiff:
    """``trialwatch diff``: compare two recorded versions with :func:`trialwatch.diff.diff`.

    ``from_day`` picks the version recorded as of the start of that UTC day, ``to_day`` the one
    as of its end, so ``--from D --to D`` shows what changed during day D. Without them: the
    last two versions (``to_day`` alone: the version before it and it; ``from_day`` alone: it
    and the latest). A day before the first record falls back to the first version, and a note
    says so with the registry history link. Raises ``ValueError`` when nothing is recorded yet
    or ``to_day`` is before ``from_day``.
    """
    versions = history.versions
    if not versions:
        raise ValueError(f"{history.nct_id} has no recorded version yet; run `trialwatch sync`")
    if from_day is not None and to_day is not None and to_day < from_day:
        raise ValueError(f"--to {to_day} is before --from {from_day}")
    notes: list[str] = []
    first = versions[0]
    if to_day is not None:
        newer = _version_at(versions, _day_end(to_day))
        if newer is None:
            newer = first
            notes.append(
                f"--to {to_day} is before trialwatch's first record ({_day(first.first_seen_at)})."
            )
    else:
        newer = versions[-1]
    if from_day is not None:
        older = _version_at(versions, _day_start(from_day))
        if older is None:
            older = first
            note = _before_history_note(history, _day_start(from_day))
            if note:
                notes.append(f"{note}: {history_url(history.nct_id)}")
    else:
        index = versions.index(newer)
        older = versions[index - 1] if index > 0 else newer
    if len(versions) == 1:
        notes.append(f"Only one version is recorded (the baseline of {_day(first.first_seen_at)}).")
    elif older.version_id == newer.version_id:
        day = _day(older.first_seen_at)
        notes.append(f"No other version recorded: both days fall on the version of {day}.")
    changes = () if older is newer else tuple(diff(older.snapshot, newer.snapshot))
    return VersionDiff(
        nct_id=history.nct_id,
        label=history.label,
        older=older,
        newer=newer,
        changes=changes,
        notes=tuple(notes),
    )


def _version_text(version: RecordedVersion) -> str:
    data = f", CT.gov data {one_line(version.data_timestamp)}" if version.data_timestamp else ""
    return f"version recorded {_when(version.first_seen_at)}{data}"


def render_version_diff_text(result: VersionDiff) -> str:
    """The diff in the emails' words: one ``[severity] summary`` line per change."""
    name = TrialHistory(nct_id=result.nct_id, label=result.label).name
    lines = [
        name,
        f"From: {_version_text(result.older)}",
        f"To:   {_version_text(result.newer)}",
        "",
    ]
    if not result.changes:
        lines.append("No changes in the tracked fields.")
    for change in result.changes:
        tag = f"[{change.severity.label}]"
        lines.append(f"  {tag:<10} {one_line(change.summary)}")
    lines += ["", f"Study:   {study_url(result.nct_id)}", f"History: {history_url(result.nct_id)}"]
    if result.notes:
        lines += ["", *(one_line(n) for n in result.notes)]
    return "\n".join(lines) + "\n"


def version_diff_json(result: VersionDiff) -> dict[str, JSONValue]:
    def version(v: RecordedVersion) -> dict[str, JSONValue]:
        return {
            "version_id": v.version_id,
            "first_seen_at": iso(v.first_seen_at),
            "data_timestamp": v.data_timestamp,
        }

    return {
        "nct_id": result.nct_id,
        "label": result.label,
        "from": version(result.older),
        "to": version(result.newer),
        "changes": [c.to_json() for c in result.changes],
        "notes": list(result.notes),
        "url": study_url(result.nct_id),
        "history_url": history_url(result.nct_id),
    }


# --- a report over a period --------------------------------------------------------------------


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
    large watch set's quiet trials are counted, not listed); ``None``: the trials given."""

    period: Period
    generated_at: datetime
    data_timestamp: str | None
    trials: tuple[TrialPeriod, ...]
    quiet: tuple[TrialPeriod, ...]
    histories: tuple[TrialHistory, ...] = field(default=())
    watched_count: int | None = None

    @property
    def change_count(self) -> int:
        return sum(len(t.changes) for t in self.trials)

    @property
    def watched(self) -> int:
        listed = len(self.trials) + len(self.quiet)
        return listed if self.watched_count is None else max(self.watched_count, listed)

    @property
    def unlisted(self) -> int:
        """Watched trials without changes in the period that are counted but not listed."""
        return self.watched - len(self.trials) - len(self.quiet)


def period_report(
    histories: Sequence[TrialHistory],
    period: Period,
    *,
    generated_at: datetime,
    data_timestamp: str | None,
    watched: int | None = None,
) -> PeriodReport:
    """Gather the changes of each trial detected in ``period``, summarize each trial in a line,
    and order trials by their most severe change (then by name). Does not filter by severity.

    ``watched``: the size of the watch set, when ``histories`` leave out some of its trials
    without changes (they are then counted in words, not listed)."""
    changed: list[TrialPeriod] = []
    quiet: list[TrialPeriod] = []
    for history in histories:
        events = tuple(e for e in history.changes if period.contains(e.detected_at))
        item = TrialPeriod(
            history=history,
            changes=events,
            summary=summarize_changes(history.nct_id, events),
            severity=max((e.change.severity for e in events), default=None),
            before_history=_before_history_note(history, period.start),
        )
        (changed if events else quiet).append(item)
    changed.sort(key=lambda t: (-(t.severity or 0), t.name.casefold()))
    return PeriodReport(
        period=period,
        generated_at=generated_at,
        data_timestamp=data_timestamp,
        trials=tuple(changed),
        quiet=tuple(quiet),
        histories=tuple(histories),
        watched_count=watched,
    )


def render_period_report(report: PeriodReport, fmt: str) -> str:
    """``trialwatch report --format FMT``: one of :data:`REPORT_FORMATS`, else ``ValueError``."""
    if fmt == "text":
        return _period_text(report)
    if fmt == "markdown":
        return _period_markdown(report)
    if fmt == "json":
        import json

        return json.dumps(period_json(report), ensure_ascii=False, indent=2) + "\n"
    if fmt == "html":
        return _period_html(report)
    raise ValueError(f"unknown report format {fmt!r} (choose from {', '.join(REPORT_FORMATS)})")


def _intro(report: PeriodReport) -> str:
    watched = report.watched
    if not report.trials:
        return f"No recorded changes in {plural(watched, 'watched trial')}."
    return (
        f"{plural(report.change_count, 'change')} in {len(report.trials)} of "
        f"{plural(watched, 'watched trial')}."
    )


def _unlisted(report: PeriodReport) -> str | None:
    if not report.unlisted:
        return None
    other = "other " if report.trials or report.quiet else ""
    return f"No recorded changes in the {plural(report.unlisted, other + 'watched trial')}."


def data_as_of(data_timestamp: str | None) -> str:
    """``"CT.gov data as of …"``: what registry data a document reflects, in one safe line."""
    if data_timestamp:
        return f"CT.gov data as of {one_line(data_timestamp)}"
    return "CT.gov data timestamp unknown"


def stamp(data_timestamp: str | None, generated_at: datetime) -> str:
    """The line under a document's title: its data, and when it was made."""
    return f"{data_as_of(data_timestamp)}; generated {_when(generated_at)}."


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
            lines.append(f"  {_day(event.detected_at)}  {tag:<10} {one_line(event.change.summary)}")
        if trial.before_history:
            lines.append(f"Note: {trial.before_history}: {history_url(trial.nct_id)}")
        lines.append(f"Study:   {study_url(trial.nct_id)}")
        lines.append(f"History: {history_url(trial.nct_id)}")
    if report.quiet:
        lines += ["", "No recorded changes:"]
        for trial in report.quiet:
            lines.append(f"  {trial.name}")
            if trial.before_history:
                lines.append(f"    Note: {trial.before_history}: {history_url(trial.nct_id)}")
    unlisted = _unlisted(report)
    if unlisted:
        lines += ["", unlisted]
    return "\n".join(lines) + "\n"


def _period_markdown(report: PeriodReport) -> str:
    lines = [f"# Changes in watched trials, {report.period.label}", ""]
    lines += [f"{_intro(report)} {_markdown(_stamp(report))}", ""]
    for trial in report.trials:
        severity = trial.severity.label if trial.severity is not None else ""
        lines += [f"## {_markdown(trial.name)} — {severity}", ""]
        if trial.history.brief_title:
            lines += [f"*{_markdown(trial.history.brief_title)}*", ""]
        lines += [f"**{_markdown(trial.summary)}**", ""]
        for event in trial.changes:
            lines.append(
                f"- {_day(event.detected_at)} · **{event.change.severity.label}** · "
                f"{_markdown(event.change.summary)}"
            )
        lines.append("")
        if trial.before_history:
            url = history_url(trial.nct_id)
            lines += [f"> {_markdown(trial.before_history)}: <{url}>", ""]
        lines += [
            f"[Study page]({study_url(trial.nct_id)}) · "
            f"[Record history on ClinicalTrials.gov]({history_url(trial.nct_id)})",
            "",
        ]
    if report.quiet:
        lines += ["## No recorded changes", ""]
        for trial in report.quiet:
            url = history_url(trial.nct_id)
            note = f" — {_markdown(trial.before_history)}: <{url}>" if trial.before_history else ""
            lines.append(f"- [{_markdown(trial.name)}]({study_url(trial.nct_id)}){note}")
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
        "watched_count": report.watched,
        "trials": [_trial_json(t) for t in report.trials],
        "quiet": [_trial_json(t) for t in report.quiet],
    }


def _period_html(report: PeriodReport) -> str:
    from trialwatch.timeline import timeline_context

    today = report.generated_at.astimezone(UTC).date()
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
                "note": t.before_history,
                "url": study_url(t.nct_id),
                "history_url": history_url(t.nct_id),
                "changes": [
                    {
                        "day": _day(e.detected_at),
                        "severity": e.change.severity.label,
                        "summary": one_line(e.change.summary),
                    }
                    for e in t.changes
                ],
            }
            for t in report.trials
        ],
        "quiet": [
            {
                "name": t.name,
                "url": study_url(t.nct_id),
                "history_url": history_url(t.nct_id),
                "note": t.before_history,
            }
            for t in report.quiet
        ],
        "unlisted": _unlisted(report),
        "timeline": timeline_context(report.histories, today=today),
    }
    return page_environment().get_template("period_report.html.j2").render(context)


@cache
def page_environment() -> jinja2.Environment:
    """The template environment of the HTML pages (report, timeline); jinja2 is imported here,
    on first use, so commands that print text do not pay for it."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("trialwatch", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
