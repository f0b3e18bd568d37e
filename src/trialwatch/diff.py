"""What changed between two snapshots of one trial, in words a clinician understands. Pure.

Every field a user cares about has one row in :data:`_RULES`: its label, category, severity rule
and how it is compared. List fields are compared item by item, matched by a natural key (sites by
facility and place, arms by label, ...) as a multiset, so reordering is never a change and
duplicate keys (many "Research Site" rows in one city) are handled. A site whose spelling was
corrected (a city typo fixed, a facility's case changed) is then paired with itself and told as
one minor "details corrected" change, not as a site removed and another added. Parts of a
snapshot that could not be read are unknown, and no change is claimed from them. No I/O, no
clock, no state.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Generic, NamedTuple, TypeAlias, TypeVar

from trialwatch.eligibility import criterion_key
from trialwatch.models import (
    Arm,
    Category,
    ChangeKind,
    Enrollment,
    FieldChange,
    Intervention,
    JSONValue,
    Location,
    Outcome,
    PartialDate,
    Reference,
    Severity,
    Snapshot,
)
from trialwatch.normalize import sort_key, unreadable_scope
from trialwatch.vocabulary import (
    CRITICAL_STATUSES,
    DATE_TYPE_SHORT,
    PHASE_ORDER,
    clip,
    date_label,
    humanize_enum,
    phases_label,
    status_label,
    truncate,
)

__all__ = [
    "EVERY_CHANGE",
    "FIELD_ORDER",
    "ChangeCount",
    "ChangeFilter",
    "change_count",
    "counted",
    "counts",
    "diff",
    "headline",
]

_T = TypeVar("_T")

_SeverityRule: TypeAlias = Severity | Callable[[Any, Any], Severity]
"""A fixed severity, or one computed from the old and new value (``None`` for a missing item)."""

_Compare: TypeAlias = Callable[["_Rule", Snapshot, Snapshot], list[FieldChange]]

# Text longer than this is not repeated in a summary: the sentence says it was updated.
_SHORT_TEXT = 60
_NONE = "(none)"


@dataclass(frozen=True, slots=True)
class _Rule:
    """One row of the field table."""

    field: str
    label: str
    category: Category
    severity: _SeverityRule
    compare: _Compare

    def severity_of(self, old: Any, new: Any) -> Severity:
        if isinstance(self.severity, Severity):
            return self.severity
        return self.severity(old, new)

    def change(
        self,
        summary: str,
        old: Any,
        new: Any,
        *,
        kind: ChangeKind = ChangeKind.CHANGED,
        item_key: str | None = None,
    ) -> FieldChange:
        return FieldChange(
            field=self.field,
            category=self.category,
            severity=self.severity_of(old, new),
            kind=kind,
            summary=summary,
            old=_plain(old),
            new=_plain(new),
            item_key=item_key,
        )


def diff(old: Snapshot, new: Snapshot) -> list[FieldChange]:
    """Every change from ``old`` to ``new``, most severe first.

    Order: severity descending, then the field order of the table (:data:`FIELD_ORDER`), then
    item key, so the result is deterministic. ``diff(s, s) == []`` for any snapshot. Scalar
    fields (and ``phases``, worded as one value) give one ``CHANGED`` change; list fields give
    one ``ADDED``/``REMOVED``/``CHANGED`` change per item, with ``item_key`` naming the item.
    Does not compare ``nct_id`` (an alias resolves to its canonical id) and does not decide who
    is told.

    A part listed in ``unreadable`` is unknown, not absent, so no change is claimed from it: a
    field unreadable on either side is not compared, and items that appear or disappear in a
    list are not called added or removed when that list's unreadable items on the other side
    can account for them. Instead one ``unreadable`` change says when a part could not be read
    (``ADDED``) and when it can be read again (``REMOVED``, with the value it has now); both are
    minor, so a registry glitch does not alert everyone twice. The limit: a value that changes
    while it cannot be read is told only as "can be read again", at minor severity.
    """
    hidden_old, hidden_new = _hidden(old), _hidden(new)
    changes = []
    for rule in _RULES:
        found = rule.compare(rule, old, new)
        if found and (rule.field in hidden_old or rule.field in hidden_new):
            found = _unclaimed(found, hidden_old.get(rule.field, 0), hidden_new.get(rule.field, 0))
        changes.extend(found)
    switched = _outcome_switch(old)
    if switched:
        changes = [
            dataclasses.replace(c, summary=f"{c.summary} ({switched})")
            if c.field == "primary_outcomes"
            else c
            for c in changes
        ]
    changes.sort(key=_order)
    return changes


def counts(change: FieldChange) -> bool:
    """Whether ``change`` is counted and told as a change: the one rule every surface follows.

    An admin row of the table (severity ``admin``: today the registry's "last update posted";
    any row given that severity later, such as a verification date, follows) is recorded in a
    trial's history but is never a change: not counted, not in "In short", not in an email,
    not an Atom entry.
    """
    return change.severity > Severity.ADMIN


def counted(changes: Iterable[FieldChange]) -> tuple[FieldChange, ...]:
    """The changes of ``changes`` that :func:`counts` keeps, in their order."""
    return tuple(c for c in changes if counts(c))


@dataclass(frozen=True, slots=True)
class ChangeFilter:
    """Which changes a report or export shows (``--min-severity``, ``--category``): changes
    that count (:func:`counts`), at or above ``min_severity``, in one of ``categories`` (all
    when empty)."""

    min_severity: Severity = Severity.MINOR
    categories: frozenset[Category] = frozenset()

    def admits(self, change: FieldChange) -> bool:
        return (
            counts(change)
            and change.severity >= self.min_severity
            and (not self.categories or change.category in self.categories)
        )

    @property
    def narrowed(self) -> bool:
        """Whether it leaves out changes that count (the reports then say what they show)."""
        return self.min_severity > Severity.MINOR or bool(self.categories)

    @property
    def label(self) -> str:
        """``"major and above, status or dates"``; ``""`` when it shows every change."""
        parts = []
        if self.min_severity > Severity.MINOR:
            parts.append(
                self.min_severity.label
                if self.min_severity is Severity.CRITICAL
                else f"{self.min_severity.label} and above"
            )
        if self.categories:
            parts.append(" or ".join(sorted(c.value for c in self.categories)))
        return ", ".join(parts)


EVERY_CHANGE = ChangeFilter()
"""Every change that counts."""


@dataclass(frozen=True, slots=True)
class ChangeCount:
    """How many changes, in how many trials: the number every surface leads with."""

    changes: int
    trials: int

    @property
    def text(self) -> str:
        """``"1 change in 1 trial"``, ``"3 changes in 2 trials"``, ``"0 changes in 0 trials"``."""
        return f"{_plural(self.changes, 'change')} in {_plural(self.trials, 'trial')}"

    def __add__(self, other: ChangeCount) -> ChangeCount:
        return ChangeCount(self.changes + other.changes, self.trials + other.trials)


def change_count(by_trial: Iterable[tuple[str, Iterable[FieldChange]]]) -> ChangeCount:
    """Count the changes that count (:func:`counts`) of ``(nct_id, changes)`` pairs; a trial is
    counted once however often it appears, and only when one of its changes counts."""
    changes = 0
    trials: set[str] = set()
    for nct_id, items in by_trial:
        n = sum(1 for c in items if counts(c))
        if n:
            changes += n
            trials.add(nct_id)
    return ChangeCount(changes, len(trials))


OUTCOME_CHANGED_AFTER_START = "primary outcome changed after the study started"
OUTCOME_CHANGED_AFTER_COMPLETION = "primary outcome changed after its primary completion"


def _outcome_switch(old: Snapshot) -> str | None:
    """Whether a change to a primary outcome now is what systematic reviewers call outcome
    switching: the version before it already gave an actual start (or primary completion)
    date, so the study was under way when its primary outcome changed. Live and backfilled
    changes alike (a backfilled version's "before" is the registry's previous version)."""
    if _actual(old.primary_completion_date):
        return OUTCOME_CHANGED_AFTER_COMPLETION
    if _actual(old.start_date):
        return OUTCOME_CHANGED_AFTER_START
    return None


def _actual(value: PartialDate | None) -> bool:
    return value is not None and value.type == "ACTUAL"


def headline(changes: Sequence[FieldChange]) -> FieldChange | None:
    """The change to name first (e.g. in an email subject): the most severe, ties broken by
    table order and then by position in ``changes``; ``None`` when there are none."""
    if not changes:
        return None
    return min(changes, key=lambda c: (-c.severity, _FIELD_INDEX.get(c.field, len(_RULES))))


def _order(change: FieldChange) -> tuple[int, int, str, int, str, str]:
    # The trailing content key makes the order total, whatever order the inputs came in.
    content = json.dumps([change.old, change.new], sort_keys=True, ensure_ascii=False)
    return (
        -change.severity,
        _FIELD_INDEX.get(change.field, len(_RULES)),
        change.item_key or "",
        _KIND_ORDER[change.kind],
        change.summary,
        content,
    )


_KIND_ORDER = {ChangeKind.CHANGED: 0, ChangeKind.REMOVED: 1, ChangeKind.ADDED: 2}


# --- Wording helpers --------------------------------------------------------------------------


def _plain(value: Any) -> JSONValue:
    """The plain-JSON form of a model value, as ``Snapshot.to_dict`` writes it."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _text_or_none(value: str | None) -> str:
    return _NONE if value is None else value


def _quoted(value: str | None) -> str:
    return _NONE if value is None else f"“{value}”"


def _enum(value: str | None) -> str:
    return humanize_enum(value)


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


# --- Scalar fields ----------------------------------------------------------------------------


def _scalar(render: Callable[[Any], str]) -> _Compare:
    """``Label: old → new``, each side rendered by ``render``."""

    def compare(rule: _Rule, old: Snapshot, new: Snapshot) -> list[FieldChange]:
        before, after = getattr(old, rule.field), getattr(new, rule.field)
        if before == after:
            return []
        return [rule.change(f"{rule.label}: {render(before)} → {render(after)}", before, after)]

    return compare


def _reason(rule: _Rule, old: Snapshot, new: Snapshot) -> list[FieldChange]:
    """A free-text reason: quoted, and said plainly when it first appears."""
    before, after = getattr(old, rule.field), getattr(new, rule.field)
    if before == after:
        return []
    if before is None:
        summary = f"{rule.label}: {_quoted(after)}"
    elif after is None:
        summary = f"{rule.label} removed (was {_quoted(before)})"
    else:
        summary = f"{rule.label}: {_quoted(before)} → {_quoted(after)}"
    return [rule.change(summary, before, after)]


def _date_field(rule: _Rule, old: Snapshot, new: Snapshot) -> list[FieldChange]:
    before: PartialDate | None = getattr(old, rule.field)
    after: PartialDate | None = getattr(new, rule.field)
    if before == after:
        return []
    noun = rule.label if rule.label.endswith("date") else f"{rule.label} date"
    labels = f"{_date_text(before)} → {_date_text(after)}"
    if before is not None and after is not None and before.date == after.date:
        summary = _date_type_summary(noun, before, after)
    else:
        shift = _date_shift(before.date, after.date) if before and after else None
        if shift is None:
            summary = f"{noun}: {labels}"
        elif shift[0] > 0:
            summary = f"{rule.label} slipped {_plural(shift[0], shift[1])} ({labels})"
        else:
            summary = f"{rule.label} moved {_plural(-shift[0], shift[1])} earlier ({labels})"
    return [rule.change(summary, before, after)]


def _date_text(value: PartialDate | None) -> str:
    return date_label(value.date, value.type) if value else _NONE


_DATE_TYPE_WORDS = {"ACTUAL": "actual", "ESTIMATED": "estimated"}


def _date_type_summary(noun: str, before: PartialDate, after: PartialDate) -> str:
    if after.type in _DATE_TYPE_WORDS:
        return f"{noun} is now {_DATE_TYPE_WORDS[after.type]} ({after.date})"
    if before.type in _DATE_TYPE_WORDS:
        return f"{noun} is no longer marked {_DATE_TYPE_WORDS[before.type]} ({after.date})"
    return f"{noun} type: {_text_or_none(before.type)} → {_text_or_none(after.type)} ({after.date})"


def _parse_date(text: str) -> tuple[int, int, int | None] | None:
    """``(year, month, day)`` of a ``yyyy-MM`` or ``yyyy-MM-dd`` date; ``None`` otherwise."""
    parts = text.split("-")
    if len(parts) not in (2, 3) or not all(p.isascii() and p.isdigit() for p in parts):
        return None
    year, month = int(parts[0]), int(parts[1])
    day = int(parts[2]) if len(parts) == 3 else None
    try:
        date(year, month, day or 1)
    except ValueError:
        return None
    return year, month, day


def _date_shift(before: str, after: str) -> tuple[int, str] | None:
    """How far a date moved: ``(n, "month")`` by calendar month, or ``(n, "day")`` when both are
    full dates less than a month apart; ``None`` when it cannot be said (a year-only date,
    yyyy-MM against a day in the same month, an unparseable date)."""
    a, b = _parse_date(before), _parse_date(after)
    if a is None or b is None:
        return None
    months = (b[0] - a[0]) * 12 + (b[1] - a[1])
    if a[2] is not None and b[2] is not None:
        # Whole months elapsed, so 03-25 -> 04-05 counts as days, not as a month.
        whole = months
        if months > 0 and b[2] < a[2]:
            whole -= 1
        elif months < 0 and b[2] > a[2]:
            whole += 1
        if whole == 0:
            days = (date(b[0], b[1], b[2]) - date(a[0], a[1], a[2])).days
            return (days, "day") if days else None
    return (months, "month") if months else None


def _enrollment(rule: _Rule, old: Snapshot, new: Snapshot) -> list[FieldChange]:
    # A type without a count says no number: the registry adding {"type": "ESTIMATED"} alone
    # changes nothing a reader could see.
    before, after = _counted_enrollment(old.enrollment), _counted_enrollment(new.enrollment)
    if before == after:
        return []
    summary = f"{rule.label}: {_count_text(before)} → {_count_text(after)}"
    return [rule.change(summary, before, after)]


def _counted_enrollment(value: Enrollment | None) -> Enrollment | None:
    return None if value is None or value.count is None else value


def _count_text(value: Enrollment | None) -> str:
    if value is None or value.count is None:
        return _NONE
    kind = DATE_TYPE_SHORT.get(value.type) if value.type else None
    return f"{value.count} ({kind})" if kind else str(value.count)


def _has_results(rule: _Rule, old: Snapshot, new: Snapshot) -> list[FieldChange]:
    if old.has_results == new.has_results:
        return []
    if new.has_results:
        posted = f" (first posted {new.results_first_posted})" if new.results_first_posted else ""
        summary = f"Results posted{posted}"
    else:
        summary = "Results are no longer posted"
    return [rule.change(summary, old.has_results, new.has_results)]


def _first_posted(rule: _Rule, old: Snapshot, new: Snapshot) -> list[FieldChange]:
    # When results appear or disappear the has_results change already says the date.
    if old.has_results != new.has_results:
        return []
    return _scalar(_text_or_none)(rule, old, new)


def _phases(rule: _Rule, old: Snapshot, new: Snapshot) -> list[FieldChange]:
    if set(old.phases) == set(new.phases):
        return []
    before, after = _phase_order(old.phases), _phase_order(new.phases)
    summary = f"{rule.label}: {phases_label(before)} → {phases_label(after)}"
    return [rule.change(summary, before, after)]


def _phase_order(phases: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted(set(phases), key=lambda p: (PHASE_ORDER.get(p, len(PHASE_ORDER)), p)))


def _names(noun: str) -> _Compare:
    """A set of names (conditions, collaborators): one change per name added or removed."""

    def compare(rule: _Rule, old: Snapshot, new: Snapshot) -> list[FieldChange]:
        before, after = set(getattr(old, rule.field)), set(getattr(new, rule.field))
        removed = [
            rule.change(f"{noun} removed: {n}", n, None, kind=ChangeKind.REMOVED, item_key=n)
            for n in sorted(before - after)
        ]
        added = [
            rule.change(f"{noun} added: {n}", None, n, kind=ChangeKind.ADDED, item_key=n)
            for n in sorted(after - before)
        ]
        return removed + added

    return compare


# A criterion longer than this is cut in a summary; the change keeps it whole.
_CRITERION_SHOWN = 120


def _criteria(rule: _Rule, old: Snapshot, new: Snapshot) -> list[FieldChange]:
    """One change per section: ``Exclusion criteria: 1 added: “Prior XPO1 inhibitor”``.

    Criteria are compared as a multiset by :func:`criterion_key`, so reordering, renumbering,
    another bullet style, case or end punctuation is no change; a reworded criterion is one
    removed and one added, both quoted.
    """
    before, after = getattr(old, rule.field), getattr(new, rule.field)
    olds = Counter(criterion_key(c) for c in before)
    news = Counter(criterion_key(c) for c in after)
    if olds == news:
        return []
    gone, came = olds - news, news - olds
    parts = [
        _criteria_part("added", [c for c in after if _take(came, c)]),
        _criteria_part("removed", [c for c in before if _take(gone, c)]),
    ]
    summary = f"{rule.label}: {'; '.join(p for p in parts if p)}"
    return [rule.change(summary, before, after)]


def _take(counts: Counter[str], criterion: str) -> bool:
    """Whether ``criterion`` is one of ``counts`` left to tell (and count it told)."""
    key = criterion_key(criterion)
    if counts[key] <= 0:
        return False
    counts[key] -= 1
    return True


def _criteria_part(verb: str, criteria: list[str]) -> str:
    quoted = ", ".join(_quoted(truncate(c, _CRITERION_SHOWN)) for c in criteria)
    return f"{len(criteria)} {verb}: {quoted}" if criteria else ""


_DESIGN_WORDS = {"NON_RANDOMIZED": "Non-randomized", "NONE": "None (open label)"}


def _design(value: str | None) -> str:
    return _DESIGN_WORDS.get(value or "") or _enum(value)


def _yes_no(value: bool | None) -> str:
    return _NONE if value is None else ("Yes" if value else "No")


# --- List fields ------------------------------------------------------------------------------


_Edited: TypeAlias = Callable[[list[_T], list[_T], Sequence[_T], Sequence[_T]], list[tuple[_T, _T]]]
"""(removed, added, all old items, all new items) -> the (removed, added) pairs that are one
item edited."""


@dataclass(frozen=True, slots=True)
class _Items(Generic[_T]):
    """How the items of one list field are matched and worded."""

    noun: str  # "Site", "Arm", ...
    key: Callable[[_T], Hashable]  # natural key; duplicates are matched as a multiset
    name: Callable[[_T], str]  # human-readable key, e.g. "Mayo Clinic, Rochester, United States"
    changed: Callable[[str, str, _T, _T], str]  # (noun, name, old, new) -> summary
    # What a reader sees of an item: two items that look the same are no change.
    shown: Callable[[_T], Hashable] = lambda item: item
    # Which left-over (removed, added) items are one item edited, given all old and new items;
    # None: a changed key is always a removal plus an addition.
    edited: _Edited[_T] | None = None


def _items(spec: _Items[Any]) -> _Compare:
    def compare(rule: _Rule, old: Snapshot, new: Snapshot) -> list[FieldChange]:
        olds, news = getattr(old, rule.field), getattr(new, rule.field)
        if olds == news:
            # The same items in the same order (most list fields of most changes): nothing to
            # match. Equal items look the same and are no change, so this skips no change.
            return []
        pairs = _match(olds, news, spec.key)
        if spec.edited is not None:
            pairs = _pair_edited(pairs, olds, news, spec.edited)
        changes = []
        for before, after in pairs:
            if before is not None and after is not None and spec.shown(before) == spec.shown(after):
                continue
            name = spec.name(after if after is not None else before)
            if before is None:
                summary, kind = f"{spec.noun} added: {name}", ChangeKind.ADDED
            elif after is None:
                summary, kind = f"{spec.noun} removed: {name}", ChangeKind.REMOVED
            else:
                summary, kind = spec.changed(spec.noun, name, before, after), ChangeKind.CHANGED
            changes.append(rule.change(summary, before, after, kind=kind, item_key=name))
        return changes

    return compare


def _match(
    before: Sequence[_T], after: Sequence[_T], key: Callable[[_T], Hashable]
) -> list[tuple[_T | None, _T | None]]:
    """Pair old and new items with the same natural key; identical items cancel as a multiset.

    Left-over items of one key are paired in content order (a change), the rest are removals or
    additions. Pairs with no difference are not returned.
    """
    old_by_key: dict[Hashable, list[_T]] = defaultdict(list)
    new_by_key: dict[Hashable, list[_T]] = defaultdict(list)
    for item in before:
        old_by_key[key(_canonical(item))].append(_canonical(item))
    for item in after:
        new_by_key[key(_canonical(item))].append(_canonical(item))
    pairs: list[tuple[_T | None, _T | None]] = []
    for k in dict.fromkeys([*old_by_key, *new_by_key]):
        olds, news = Counter(old_by_key[k]), Counter(new_by_key[k])
        common = olds & news
        gone = sorted((olds - common).elements(), key=sort_key)
        came = sorted((news - common).elements(), key=sort_key)
        paired = min(len(gone), len(came))
        pairs.extend(zip(gone[:paired], came[:paired], strict=True))
        pairs.extend((item, None) for item in gone[paired:])
        pairs.extend((None, item) for item in came[paired:])
    return pairs


def _pair_edited(
    pairs: list[tuple[_T | None, _T | None]],
    olds: Sequence[_T],
    news: Sequence[_T],
    edited: _Edited[_T],
) -> list[tuple[_T | None, _T | None]]:
    """``pairs`` with each removal and addition that ``edited`` pairs made one change."""
    gone = [before for before, after in pairs if after is None and before is not None]
    came = [after for before, after in pairs if before is None and after is not None]
    if not gone or not came:
        return pairs
    corrected = edited(gone, came, olds, news)
    if not corrected:
        return pairs
    unmatched_gone = Counter(gone) - Counter(before for before, _ in corrected)
    unmatched_came = Counter(came) - Counter(after for _, after in corrected)
    kept = [(before, after) for before, after in pairs if before is not None and after is not None]
    return [
        *kept,
        *corrected,
        *((before, None) for before in sorted(unmatched_gone.elements(), key=sort_key)),
        *((None, after) for after in sorted(unmatched_came.elements(), key=sort_key)),
    ]


def _canonical(item: _T) -> _T:
    # Arm intervention names are a set; normalize sorts them, older stored snapshots may not.
    if isinstance(item, Arm):
        return dataclasses.replace(item, intervention_names=tuple(sorted(item.intervention_names)))
    return item


def _details(before: Any, after: Any, fields: Sequence[tuple[str, str]]) -> str:
    """``"time frame: 2 years → 3 years; description updated"`` for the fields that differ."""
    parts = []
    for attr, label in fields:
        a, b = getattr(before, attr), getattr(after, attr)
        if a == b:
            continue
        if attr == "type":
            parts.append(f"{label}: {_enum(a)} → {_enum(b)}")
        elif attr == "intervention_names":
            parts.append(f"{label}: {', '.join(a) or _NONE} → {', '.join(b) or _NONE}")
        elif max(len(a or ""), len(b or "")) > _SHORT_TEXT:
            parts.append(f"{label} updated")
        else:
            parts.append(f"{label}: {_text_or_none(a)} → {_text_or_none(b)}")
    return "; ".join(parts)


def _changed_with(fields: Sequence[tuple[str, str]]) -> Callable[[str, str, Any, Any], str]:
    def changed(noun: str, name: str, before: Any, after: Any) -> str:
        return f"{noun} changed: {name} ({_details(before, after, fields)})"

    return changed


def _intervention_name(item: Intervention) -> str:
    return f"{_enum(item.type)}: {item.name}" if item.type else item.name


def _site_name(item: Location) -> str:
    parts = [p for p in (item.facility, item.city, item.state, item.country) if p]
    return ", ".join(parts) or "(unnamed site)"


def _site_changed(noun: str, name: str, before: Location, after: Location) -> str:
    status = f"{_enum(before.status)} → {_enum(after.status)}"
    corrected = [
        f"{attr}: {_text_or_none(getattr(before, attr))} → {_text_or_none(getattr(after, attr))}"
        for attr in ("facility", "city", "state", "country")
        if getattr(before, attr) != getattr(after, attr)
    ]
    if not corrected:
        return f"{noun} {name}: {status}"
    if before.status != after.status:
        corrected.append(f"status: {status}")
    return f"{noun} details corrected: {name} ({'; '.join(corrected)})"


def _edited_sites(
    gone: list[Location], came: list[Location], olds: Sequence[Location], news: Sequence[Location]
) -> list[tuple[Location, Location]]:
    """Removed and added sites that are one site whose details were corrected.

    A pair is the same site when the country is the same, the geo points agree where both
    have one, the state is the same, and either the facility is the same (ignoring case,
    accents and punctuation) and the city is the same or one small spelling fix away, or the
    city is the same and the facility is one small spelling fix away. A facility named by
    several sites (sponsors' many "Research Site" rows) or by none says nothing about which
    site is which, so such sites pair only when both geo points agree. A site with more than
    one such partner, or whose partner has more than one, is not paired: a guess would hide a
    site opening or closing. Identical duplicates pair one for one.
    """
    shared = _shared_names(olds) | _shared_names(news)
    places = {site: _place(site) for site in (*gone, *came)}
    # A partner has the same region and the same facility or city, so only those are compared:
    # a trial with hundreds of sites moved stays fast.
    same_facility: dict[tuple[Any, ...], list[Location]] = defaultdict(list)
    same_city: dict[tuple[Any, ...], list[Location]] = defaultdict(list)
    for c in dict.fromkeys(came):
        place = places[c]
        same_facility[place.region, place.facility].append(c)
        same_city[place.region, place.city].append(c)
    partners: dict[Location, list[Location]] = {}
    for g in dict.fromkeys(gone):
        place = places[g]
        if place.point is None and place.facility in shared:
            partners[g] = []  # nothing can tell which of the like-named sites it is
            continue
        nearby = [
            *same_facility[place.region, place.facility],
            *same_city[place.region, place.city],
        ]
        partners[g] = [c for c in dict.fromkeys(nearby) if _same_site(place, places[c], shared)]
    partners_back: dict[Location, list[Location]] = defaultdict(list)
    for g, found in partners.items():
        for c in found:
            partners_back[c].append(g)
    pairs: list[tuple[Location, Location]] = []
    for g, found in partners.items():
        if len(found) == 1 and partners_back[found[0]] == [g]:
            pairs.extend([(g, found[0])] * min(gone.count(g), came.count(found[0])))
    return pairs


class _Place(NamedTuple):
    """A site as compared for a correction: folded names and the registry's geo point."""

    facility: str | None
    city: str | None
    region: tuple[str | None, str | None]  # country, state
    point: tuple[float, float] | None


def _place(site: Location) -> _Place:
    lat, lon = site.latitude, site.longitude
    return _Place(
        facility=_fold(site.facility),
        city=_fold(site.city),
        region=(_fold(site.country), _fold(site.state)),
        point=(lat, lon) if lat is not None and lon is not None else None,
    )


def _same_site(a: _Place, b: _Place, shared: set[str | None]) -> bool:
    """Whether two sites of one region are one site respelt (see :func:`_edited_sites`)."""
    if a.point is not None and b.point is not None:
        if not _near(a.point, b.point):
            return False
    elif a.facility in shared or b.facility in shared:
        return False
    if a.facility == b.facility:
        return a.city == b.city or _one_fix_apart(a.city, b.city)
    return a.city == b.city and _one_fix_apart(a.facility, b.facility)


def _shared_names(sites: Sequence[Location]) -> set[str | None]:
    """Facility names that do not tell one site of the trial from another."""
    counts = Counter(_fold(site.facility) for site in sites)
    return {None} | {name for name, count in counts.items() if count > 1}


def _near(a: tuple[float, float], b: tuple[float, float]) -> bool:
    # About a kilometre: the registry geocodes a place, so one site keeps one point.
    return abs(a[0] - b[0]) <= 0.01 and abs(a[1] - b[1]) <= 0.01


def _fold(text: str | None) -> str | None:
    """Text as compared for a spelling fix: no case, accents or punctuation; ``None`` if empty."""
    if text is None:
        return None
    letters = unicodedata.normalize("NFKD", text.casefold())
    kept = "".join(c if c.isalnum() else " " for c in letters if not unicodedata.combining(c))
    return " ".join(kept.split()) or None


def _one_fix_apart(a: str | None, b: str | None) -> bool:
    """Whether two folded names differ in one word, by a small spelling fix of that word.

    Small: at most one edit (insertion, deletion, substitution or swap of neighbours) per four
    letters of the shorter word, so "hanzhou" -> "hangzhou" is a fix and "lar" -> "lax" is not.
    A word with a digit is never fixed: "site 101" and "site 102" are two sites.
    """
    if a is None or b is None:
        return False
    words_a, words_b = a.split(), b.split()
    if len(words_a) != len(words_b):
        return False
    differ = [(x, y) for x, y in zip(words_a, words_b, strict=True) if x != y]
    if len(differ) != 1:
        return False
    x, y = differ[0]
    if any(c.isdigit() for c in x + y):
        return False
    return _edit_distance(x, y) <= min(len(x), len(y)) // 4


def _edit_distance(a: str, b: str) -> int:
    """Levenshtein distance where swapping two neighbouring letters is one edit (OSA)."""
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            row[j] = min(rows[i - 1][j] + 1, row[j - 1] + 1, rows[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[i - 2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


def _reference_key(item: Reference) -> Hashable:
    return ("pmid", item.pmid) if item.pmid else ("citation", item.citation)


def _reference_name(item: Reference) -> str:
    if item.pmid:
        return f"PMID {item.pmid}"
    citation = item.citation or _NONE
    return clip(citation, 100)


_INTERVENTIONS: _Items[Intervention] = _Items(
    noun="Intervention",
    key=lambda i: (i.type, i.name),
    name=_intervention_name,
    changed=_changed_with([("description", "description")]),
)
_ARMS: _Items[Arm] = _Items(
    noun="Arm",
    key=lambda a: a.label,
    name=lambda a: a.label,
    changed=_changed_with(
        [("type", "type"), ("intervention_names", "interventions"), ("description", "description")]
    ),
)
_OUTCOME_FIELDS = [("time_frame", "time frame"), ("description", "description")]
_PRIMARY: _Items[Outcome] = _Items(
    noun="Primary outcome",
    key=lambda o: o.measure,
    name=lambda o: o.measure,
    changed=_changed_with(_OUTCOME_FIELDS),
)
_SECONDARY: _Items[Outcome] = dataclasses.replace(_PRIMARY, noun="Secondary outcome")
_LOCATIONS: _Items[Location] = _Items(
    noun="Site",
    key=lambda s: (s.facility, s.city, s.state, s.country),
    name=_site_name,
    changed=_site_changed,
    # The geo point is the registry's geocoding of the place, not something the sponsor said.
    shown=lambda s: (s.facility, s.city, s.state, s.country, s.status),
    edited=_edited_sites,
)
_REFERENCES: _Items[Reference] = _Items(
    noun="Reference",
    key=_reference_key,
    name=_reference_name,
    changed=_changed_with([("type", "type"), ("citation", "citation")]),
)


# --- Unreadable parts ---------------------------------------------------------------------------


def _hidden(snapshot: Snapshot) -> dict[str, float]:
    """Field -> how many of its items cannot be read (``inf``: the whole field)."""
    hidden: dict[str, float] = {}
    for path in snapshot.unreadable:
        fields, one_item = unreadable_scope(path)
        for field in fields:
            hidden[field] = hidden.get(field, 0) + (1 if one_item else math.inf)
    return hidden


def _unclaimed(
    changes: list[FieldChange], old_hidden: float, new_hidden: float
) -> list[FieldChange]:
    """``changes`` of one field without those that unreadable parts could explain."""
    if math.isinf(old_hidden) or math.isinf(new_hidden):
        return []
    removed = sum(1 for c in changes if c.kind is ChangeKind.REMOVED)
    added = sum(1 for c in changes if c.kind is ChangeKind.ADDED)
    # Each unreadable item accounts for at most one item that seems to come or go; when more
    # came or went than that, they are all told, since it cannot be said which is which.
    return [
        c
        for c in changes
        if not (c.kind is ChangeKind.REMOVED and removed <= new_hidden)
        and not (c.kind is ChangeKind.ADDED and added <= old_hidden)
    ]


_INDEX = re.compile(r"\[[0-9]+\]")


def _unreadable(rule: _Rule, old: Snapshot, new: Snapshot) -> list[FieldChange]:
    """One change per part that could not be read before and can now, or the other way round.

    Parts are matched without their list index, so the registry reordering a list that holds a
    bad item does not read as one part fixed and another broken.
    """
    before = Counter(_INDEX.sub("[]", path) for path in old.unreadable)
    after = Counter(_INDEX.sub("[]", path) for path in new.unreadable)
    if before == after:
        return []
    changes = []
    gone, came = before - after, after - before
    for path in new.unreadable:
        if came[_INDEX.sub("[]", path)] > 0:
            came[_INDEX.sub("[]", path)] -= 1
            summary = (
                f"Could not read {_part_name(path)}; not compared until it can be read ({path})"
            )
            changes.append(rule.change(summary, None, path, kind=ChangeKind.ADDED, item_key=path))
    for path in old.unreadable:
        if gone[_INDEX.sub("[]", path)] > 0:
            gone[_INDEX.sub("[]", path)] -= 1
            summary = _readable_again(path, new)
            changes.append(rule.change(summary, path, None, kind=ChangeKind.REMOVED, item_key=path))
    return changes


def _part_name(path: str) -> str:
    """``"one of the secondary outcomes"``, ``"enrollment"``, ``"arms, interventions"``."""
    fields, one_item = unreadable_scope(path)
    if not fields:
        return "part of the record"
    labels = ", ".join(_LABELS[field].lower() for field in fields)
    return f"one of the {labels}" if one_item else labels


def _readable_again(path: str, new: Snapshot) -> str:
    fields, _ = unreadable_scope(path)
    name = _part_name(path)
    name = name[0].upper() + name[1:]
    if len(fields) == 1 and fields[0] in _SHOW:
        return f"{name} can be read again: {_SHOW[fields[0]](getattr(new, fields[0]))} ({path})"
    return f"{name} can be read again ({path})"


# --- Severity rules ---------------------------------------------------------------------------


def _status_severity(old: Any, new: Any) -> Severity:
    return Severity.CRITICAL if new in CRITICAL_STATUSES else Severity.MAJOR


def _major_unless_same(attr: str) -> Callable[[Any, Any], Severity]:
    """MAJOR when ``attr`` (a date, a count) differs; MINOR when only the rest (its type) does."""

    def rule(old: Any, new: Any) -> Severity:
        same = old is not None and new is not None and getattr(old, attr) == getattr(new, attr)
        return Severity.MINOR if same else Severity.MAJOR

    return rule


def _results_severity(old: Any, new: Any) -> Severity:
    return Severity.CRITICAL if new else Severity.MAJOR


def _site_severity(old: Any, new: Any) -> Severity:
    # A site opening or closing matters to a referring clinician; a status change less so.
    return Severity.MINOR if old is not None and new is not None else Severity.MAJOR


_C, _S = Category, Severity
_moved = _major_unless_same("date")
_counted = _major_unless_same("count")
_text = _scalar(_text_or_none)
_yes_no_rule = _scalar(_yes_no)

# The one table: field, label, category, severity rule, comparison. Its order is the stable
# field order of diff() and breaks headline() ties, most important first.
# fmt: off
_RULES: tuple[_Rule, ...] = (
    _Rule("overall_status", "Overall status", _C.STATUS, _status_severity, _scalar(status_label)),
    _Rule("why_stopped", "Why stopped", _C.STATUS, _S.MAJOR, _reason),
    _Rule("has_results", "Results", _C.RESULTS, _results_severity, _has_results),
    _Rule("primary_completion_date", "Primary completion", _C.DATES, _moved, _date_field),
    _Rule("completion_date", "Completion", _C.DATES, _moved, _date_field),
    _Rule("start_date", "Start date", _C.DATES, _moved, _date_field),
    _Rule("enrollment", "Enrollment", _C.ENROLLMENT, _counted, _enrollment),
    _Rule("phases", "Phase", _C.DESIGN, _S.MAJOR, _phases),
    _Rule("study_type", "Study type", _C.DESIGN, _S.MAJOR, _scalar(_enum)),
    _Rule("allocation", "Allocation", _C.DESIGN, _S.MAJOR, _scalar(_design)),
    _Rule("masking", "Masking", _C.DESIGN, _S.MAJOR, _scalar(_design)),
    _Rule("inclusion_criteria", "Inclusion criteria", _C.ELIGIBILITY, _S.MAJOR, _criteria),
    _Rule("exclusion_criteria", "Exclusion criteria", _C.ELIGIBILITY, _S.MAJOR, _criteria),
    _Rule("other_criteria", "Eligibility criteria", _C.ELIGIBILITY, _S.MAJOR, _criteria),
    _Rule("minimum_age", "Minimum age", _C.ELIGIBILITY, _S.MAJOR, _text),
    _Rule("maximum_age", "Maximum age", _C.ELIGIBILITY, _S.MAJOR, _text),
    _Rule("sex", "Sex", _C.ELIGIBILITY, _S.MAJOR, _scalar(_enum)),
    _Rule("healthy_volunteers", "Healthy volunteers", _C.ELIGIBILITY, _S.MAJOR, _yes_no_rule),
    _Rule("arms", "Arms", _C.DESIGN, _S.MAJOR, _items(_ARMS)),
    _Rule("interventions", "Interventions", _C.DESIGN, _S.MAJOR, _items(_INTERVENTIONS)),
    _Rule("primary_outcomes", "Primary outcomes", _C.OUTCOMES, _S.MAJOR, _items(_PRIMARY)),
    _Rule("locations", "Sites", _C.SITES, _site_severity, _items(_LOCATIONS)),
    _Rule("lead_sponsor", "Lead sponsor", _C.ADMINISTRATIVE, _S.MAJOR, _text),
    _Rule("last_known_status", "Last known status", _C.STATUS, _S.MINOR, _scalar(status_label)),
    _Rule("results_first_posted", "Results first posted", _C.RESULTS, _S.MINOR, _first_posted),
    _Rule("secondary_outcomes", "Secondary outcomes", _C.OUTCOMES, _S.MINOR, _items(_SECONDARY)),
    _Rule("conditions", "Conditions", _C.DESIGN, _S.MINOR, _names("Condition")),
    _Rule("collaborators", "Collaborators", _C.ADMINISTRATIVE, _S.MINOR, _names("Collaborator")),
    _Rule("brief_title", "Brief title", _C.ADMINISTRATIVE, _S.MINOR, _scalar(_quoted)),
    _Rule("official_title", "Official title", _C.ADMINISTRATIVE, _S.MINOR, _scalar(_quoted)),
    _Rule("acronym", "Acronym", _C.ADMINISTRATIVE, _S.MINOR, _text),
    _Rule("references", "References", _C.ADMINISTRATIVE, _S.MINOR, _items(_REFERENCES)),
    _Rule("last_update_posted", "Last update posted", _C.ADMINISTRATIVE, _S.ADMIN, _text),
    _Rule("unreadable", "Unreadable parts", _C.ADMINISTRATIVE, _S.MINOR, _unreadable),
)
# fmt: on

_LABELS = {rule.field: rule.label for rule in _RULES}

# How one value of each scalar field reads, for "Enrollment can be read again: 98 (actual)".
_SHOW: dict[str, Callable[[Any], str]] = {
    "overall_status": status_label,
    "why_stopped": _quoted,
    "has_results": lambda posted: "posted" if posted else "not posted",
    "primary_completion_date": _date_text,
    "completion_date": _date_text,
    "start_date": _date_text,
    "enrollment": _count_text,
    "phases": phases_label,
    "study_type": _enum,
    "allocation": _design,
    "masking": _design,
    "minimum_age": _text_or_none,
    "maximum_age": _text_or_none,
    "sex": _enum,
    "healthy_volunteers": _yes_no,
    "lead_sponsor": _text_or_none,
    "last_known_status": status_label,
    "results_first_posted": _text_or_none,
    "brief_title": _quoted,
    "official_title": _quoted,
    "acronym": _text_or_none,
    "last_update_posted": _text_or_none,
}

FIELD_ORDER: tuple[str, ...] = tuple(rule.field for rule in _RULES)
"""Every compared Snapshot field, in the stable order diff() uses after severity."""

_FIELD_INDEX = {field: i for i, field in enumerate(FIELD_ORDER)}
