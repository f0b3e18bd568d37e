"""A trial's recorded history, read for people: its timeline, a diff between two versions. Pure.

Takes :mod:`trialwatch.records`' values and returns text, JSON-ready values or one-line
summaries; the report over a period (:mod:`trialwatch.period`) and the feeds build on the
helpers here. Nothing here reads the clock, the database or the network: "now" and the CT.gov
data timestamp are passed in.

History starts when trialwatch first records a trial. Whatever reaches before that (a history
since an earlier date, a diff from an earlier date) says so and links the registry's own history
tab, which has every version CT.gov ever published.

Registry text is hostile: every single-line value is passed through :func:`one_line` (control
characters, including the terminal's escape character, become spaces); markdown escapes its
markup characters.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from trialwatch.diff import FIELD_ORDER, counts, diff
from trialwatch.models import FieldChange, JSONValue, Severity, Snapshot
from trialwatch.records import (
    RecordedChange,
    RecordedVersion,
    TrialHistory,
    day_end,
    day_start,
)
from trialwatch.vocabulary import (
    history_url,
    one_line,
    plural,
    status_label,
    study_url,
    truncate,
    utc_time,
)

__all__ = [
    "HistoryEntry",
    "VersionDiff",
    "before_history_note",
    "change_event_json",
    "data_as_of",
    "history_entries",
    "history_json",
    "iso",
    "markdown_line",
    "origin_mark",
    "print_story",
    "print_story_lines",
    "render_history_text",
    "render_version_diff_text",
    "stamp",
    "summarize_changes",
    "utc_day_text",
    "version_diff",
    "version_diff_json",
    "xml_text",
]

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
    "collaborators": ("collaborator", "collaborators"),
}
_FIELD_INDEX = {name: i for i, name in enumerate(FIELD_ORDER)}
_SUMMARY_PARTS = 3  # a trial's one-line summary names at most this many things, then "and N more"
_SUMMARY_PART_CHARS = 120  # ... each cut to this length (a quoted reason can be long)

# What XML 1.0 cannot carry at all, escaped or not (Char production of the XML spec).
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


# --- text helpers ------------------------------------------------------------------------------


def xml_text(text: str) -> str:
    """:func:`one_line`, minus the characters XML 1.0 forbids (U+FFFE, U+FFFF, surrogates), which
    ElementTree would write unescaped into a document no parser accepts."""
    return _XML_INVALID.sub("", one_line(text))


def iso(moment: datetime) -> str:
    """An aware datetime as ISO 8601 UTC with ``Z``, to the second."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def utc_day_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


def markdown_line(text: str) -> str:
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
    ``to_version_id``, ``origin`` (``live``, or ``registry`` for a change read from CT.gov's
    record history, dated by the registry's version), ``url`` and ``history_url``."""
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
        "origin": event.origin,
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
        if counts(event.change):  # admin lines are never part of the gist
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
    registry_version: int | None = None


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
            registry_version=v.registry_version,
        )
        for i, v in enumerate(history.versions)
    ]
    entries.extend(
        HistoryEntry(at=at, data_timestamp=ts, version_id=None, baseline=False, changes=group)
        for (at, ts), group in ((k, _most_severe_first(g)) for k, g in loose.items())
    )
    if since is not None:
        entries = [e for e in entries if e.at >= day_start(since)]
    entries.sort(key=lambda e: (e.at, e.version_id or 0), reverse=True)
    return entries


def origin_mark(event: RecordedChange) -> str:
    """The short mark a text view puts after a change read from the registry's history."""
    return REGISTRY_MARK if event.from_registry else ""


REGISTRY_MARK = " (registry)"
"""What marks, in text and HTML views, a change read from the registry's record history."""


def _most_severe_first(events: Iterable[RecordedChange]) -> tuple[RecordedChange, ...]:
    return tuple(
        sorted(
            events,
            key=lambda e: (-e.change.severity, _FIELD_INDEX.get(e.change.field, 99), e.id),
        )
    )


def before_history_note(history: TrialHistory, start: datetime | None) -> str | None:
    """Why a view reaching back to ``start`` (None: all of it) is incomplete, or ``None``. The
    sentence ends where the registry's history link (``history_url``) belongs."""
    first = history.first_recorded_at
    if first is None:
        return "trialwatch has not recorded this trial yet; for its history see ClinicalTrials.gov"
    if start is not None and start < first:
        return (
            f"trialwatch first recorded this trial on {utc_day_text(first)}; "
            "for changes before that, see its history on ClinicalTrials.gov"
        )
    return None


def render_history_text(history: TrialHistory, *, since: date | None = None) -> str:
    """``trialwatch history``: the trial's name, links, then its timeline newest first."""
    lines = [history.name]
    if history.brief_title:
        lines.append(one_line(history.brief_title))
    lines.append(f"Study:   {study_url(history.nct_id)}")
    lines.append(f"History: {history_url(history.nct_id)} (every version CT.gov published)")
    start = day_start(since) if since is not None else None
    note = before_history_note(history, start)
    entries = history_entries(history, since=since)
    lines.append("")
    if not entries:
        when = f" since {since.isoformat()}" if since else ""
        lines.append(f"Nothing recorded{when}.")
    for entry in entries:
        data = f" · CT.gov data {one_line(entry.data_timestamp)}" if entry.data_timestamp else ""
        at = utc_time(entry.at)
        if entry.registry_version is not None or any(e.from_registry for e in entry.changes):
            # Dated by the registry (the day the version was submitted), not by a sync.
            at = utc_day_text(entry.at)
            if entry.registry_version is not None:
                data = f" · registry version {entry.registry_version}"
        if entry.baseline:
            first = "registered (baseline)" if entry.registry_version == 0 else "baseline"
            lines.append(f"{at}  first recorded ({first}){data}")
        elif entry.changes:
            lines.append(f"{at}  {plural(len(entry.changes), 'change')}{data}")
        else:
            lines.append(f"{at}  new version, no change in tracked fields{data}")
        for event in entry.changes:
            change = event.change
            tag = f"[{change.severity.label}]"
            lines.append(f"    {tag:<10} {one_line(change.summary)}{origin_mark(event)}")
    if note:
        lines += ["", f"{note}: {history_url(history.nct_id)}"]
    return "\n".join(lines) + "\n"


def history_json(history: TrialHistory, *, since: date | None = None) -> dict[str, JSONValue]:
    """``trialwatch history --format json``: the same timeline as plain JSON, newest first."""
    start = day_start(since) if since is not None else None
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
        "before_history": before_history_note(history, start),
        "entries": [
            {
                "at": iso(entry.at),
                "data_timestamp": entry.data_timestamp,
                "version_id": entry.version_id,
                "registry_version": entry.registry_version,
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


def _registry_version(history: TrialHistory, number: int, option: str) -> RecordedVersion:
    """The recorded version that is the registry's version ``number`` (read by ``trialwatch
    backfill``); ``ValueError`` naming the numbers there are when it is not recorded."""
    for version in history.versions:
        if version.registry_version == number:
            return version
    numbers = [v.registry_version for v in history.versions if v.registry_version is not None]
    if not numbers:
        have = f"no registry version is recorded; run `trialwatch backfill {history.nct_id}`"
    else:
        have = (
            f"registry versions {min(numbers)}-{max(numbers)} are recorded; later ones were "
            "recorded live: give a date"
        )
    raise ValueError(
        f"{option} {number}: {history.nct_id} has no registry version {number} ({have})"
    )


def version_diff(
    history: TrialHistory,
    *,
    from_day: date | None = None,
    to_day: date | None = None,
    from_version: int | None = None,
    to_version: int | None = None,
) -> VersionDiff:
    """``trialwatch diff``: compare two recorded versions with :func:`trialwatch.diff.diff`.

    ``from_day`` picks the version recorded as of the start of that UTC day, ``to_day`` the one
    as of its end, so ``--from D --to D`` shows what changed during day D. Without them: the
    last two versions (``to_day`` alone: the version before it and it; ``from_day`` alone: it
    and the latest). A day before the first record falls back to the first version, and a note
    says so with the registry history link. ``from_version``/``to_version`` (instead of a day)
    pick the registry's version of that number, as ``trialwatch backfill`` recorded it.
    Raises ``ValueError`` when nothing is recorded yet, a version number is not recorded, or
    the newer end is before the older one.
    """
    versions = history.versions
    if not versions:
        raise ValueError(f"{history.nct_id} has no recorded version yet; run `trialwatch sync`")
    if from_day is not None and to_day is not None and to_day < from_day:
        raise ValueError(f"--to {to_day} is before --from {from_day}")
    notes: list[str] = []
    first = versions[0]
    if to_version is not None:
        newer = _registry_version(history, to_version, "--to")
    elif to_day is not None:
        found = _version_at(versions, day_end(to_day))
        if found is None:
            notes.append(
                f"--to {to_day} is before trialwatch's first record "
                f"({utc_day_text(first.first_seen_at)})."
            )
        newer = found or first
    else:
        newer = versions[-1]
    if from_version is not None:
        older = _registry_version(history, from_version, "--from")
    elif from_day is not None:
        found = _version_at(versions, day_start(from_day))
        if found is None:
            note = before_history_note(history, day_start(from_day))
            if note:
                notes.append(f"{note}: {history_url(history.nct_id)}")
        older = found or first
    else:
        index = versions.index(newer)
        older = versions[index - 1] if index > 0 else newer
    if versions.index(newer) < versions.index(older):
        given_to = to_version if to_version is not None else to_day
        given_from = from_version if from_version is not None else from_day
        raise ValueError(f"--to {given_to} is before --from {given_from}")
    return _version_diff(history, older, newer, notes)


def _version_diff(
    history: TrialHistory, older: RecordedVersion, newer: RecordedVersion, notes: list[str]
) -> VersionDiff:
    first = history.versions[0]
    if len(history.versions) == 1:
        notes.append(
            f"Only one version is recorded (the baseline of {utc_day_text(first.first_seen_at)})."
        )
    elif older.version_id == newer.version_id:
        day = utc_day_text(older.first_seen_at)
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
    if version.registry_version is not None:
        return f"registry version {version.registry_version} of {version.registry_date}"
    data = f", CT.gov data {one_line(version.data_timestamp)}" if version.data_timestamp else ""
    return f"version recorded {utc_time(version.first_seen_at)}{data}"


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
            "registry_version": v.registry_version,
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


def data_as_of(data_timestamp: str | None) -> str:
    """``"CT.gov data as of …"``: what registry data a document reflects, in one safe line."""
    if data_timestamp:
        return f"CT.gov data as of {one_line(data_timestamp)}"
    return "CT.gov data timestamp unknown"


def stamp(data_timestamp: str | None, generated_at: datetime) -> str:
    """The line under a document's title: its data, and when it was made."""
    return f"{data_as_of(data_timestamp)}; generated {utc_time(generated_at)}."


# --- since a paper printed its table, through the recorded versions ----------------------------


@dataclass(frozen=True, slots=True)
class PrintStory:
    """One printed trial since its paper's publication day: the version in force that day
    (``None`` when the recorded history starts later) and every change since, oldest first."""

    nct_id: str
    printed_on: date
    in_force: RecordedVersion | None
    since: tuple[RecordedChange, ...]
    starts: datetime | None  # when the recorded history starts


def print_story(history: TrialHistory, printed_on: date) -> PrintStory:
    """The version of ``history`` in force at the end of ``printed_on`` (UTC) and every change
    recorded after that day (administrative churn left out)."""
    end = day_end(printed_on)
    before = [v for v in history.versions if v.first_seen_at < end]
    since = tuple(
        e for e in history.changes if e.detected_at >= end and e.change.severity > Severity.ADMIN
    )
    return PrintStory(
        history.nct_id, printed_on, before[-1] if before else None, since, history.first_recorded_at
    )


def print_story_lines(story: PrintStory, name: str) -> list[str]:
    """``report --since-print`` for one trial: the version printed from, then each change."""
    printed = story.printed_on.isoformat()
    version = story.in_force
    if version is None:
        starts = f" (it starts {utc_day_text(story.starts)})" if story.starts else ""
        return [
            f"{name}: printed {printed}; trialwatch's history of it starts later{starts}: "
            "`trialwatch backfill` reads the registry's versions since registration"
        ]
    status = (
        status_label(version.snapshot.overall_status) if version.snapshot.overall_status else "?"
    )
    which = (
        f"registry version {version.registry_version} of {version.registry_date}"
        if version.registry_version is not None
        else f"the version recorded {utc_day_text(version.first_seen_at)}"
    )
    lines = [f"{name}: printed {printed}, when {which} was in force ({status})"]
    if not story.since:
        lines.append("  no change since")
    for event in story.since:
        tag = f"[{event.change.severity.label}]"
        lines.append(
            f"  {utc_day_text(event.detected_at)}  {tag:<10} {one_line(event.change.summary)}"
            f"{origin_mark(event)}"
        )
    return lines
