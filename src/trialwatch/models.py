"""Value types shared by the pure core and the edges.

Everything here is an immutable value: no I/O, no clock, no globals. A :class:`Snapshot` is the
canonical form of the part of a ClinicalTrials.gov record that users care about; it round-trips
through plain JSON (``to_dict`` / ``from_dict``) so storage can keep it as text.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any, TypeAlias

import orjson

from trialwatch.exceptions import RecordError

JSONValue: TypeAlias = Any
"""A value made only of ``None``, ``bool``, ``int``, ``float``, ``str``, ``list`` and ``dict``."""

Clock: TypeAlias = Callable[[], datetime]
"""Returns the current time as an aware UTC datetime. Passed in, never read from a global."""


class Severity(IntEnum):
    """How much a change matters. Ordered: ``Severity.CRITICAL > Severity.MAJOR``."""

    ADMIN = 0
    MINOR = 1
    MAJOR = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> Severity:
        """``"major"`` -> ``Severity.MAJOR``; raises ``ValueError`` naming the choices."""
        try:
            return cls[value.strip().upper()]
        except KeyError:
            choices = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {value!r} (choose from {choices})") from None


class Category(StrEnum):
    """What part of a trial a change is about."""

    STATUS = "status"
    DATES = "dates"
    ENROLLMENT = "enrollment"
    RESULTS = "results"
    DESIGN = "design"
    SITES = "sites"
    OUTCOMES = "outcomes"
    ELIGIBILITY = "eligibility"  # who may enrol: criteria, ages, sex, healthy volunteers
    ADMINISTRATIVE = "administrative"
    DISCOVERY = "discovery"  # a trial entering or leaving a [[queries]] search


class ChangeKind(StrEnum):
    CHANGED = "changed"
    ADDED = "added"
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class PartialDate:
    """A CT.gov date (``yyyy``, ``yyyy-MM`` or ``yyyy-MM-dd``) with its type, when it has one."""

    date: str
    type: str | None = None  # "ACTUAL" | "ESTIMATED" | None (the registry sometimes omits it)


@dataclass(frozen=True, slots=True)
class Enrollment:
    count: int | None
    type: str | None = None  # "ACTUAL" | "ESTIMATED" | None


@dataclass(frozen=True, slots=True)
class Intervention:
    name: str
    type: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Arm:
    label: str
    type: str | None = None
    description: str | None = None
    intervention_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Outcome:
    measure: str
    time_frame: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Location:
    facility: str | None = None
    city: str | None = None
    state: str | None = None
    country: str | None = None
    status: str | None = None  # site recruitment status, e.g. "RECRUITING"
    # The registry's geocoding of the site's place (its geoPoint). Kept to tell a corrected
    # spelling from a different site; never reported as a change by itself. Missing in
    # snapshots stored by normalizer version 1.
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True, slots=True)
class Reference:
    pmid: str | None = None
    type: str | None = None
    citation: str | None = None


_NESTED: dict[str, type[Any]] = {
    "start_date": PartialDate,
    "primary_completion_date": PartialDate,
    "completion_date": PartialDate,
    "enrollment": Enrollment,
}
_NESTED_LISTS: dict[str, type[Any]] = {
    "interventions": Intervention,
    "arms": Arm,
    "primary_outcomes": Outcome,
    "secondary_outcomes": Outcome,
    "locations": Location,
    "references": Reference,
}


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The canonical, comparable form of one study record.

    Built only by :func:`trialwatch.normalize.normalize`, which guarantees that unordered lists
    are sorted and text is normalized, so two snapshots are equal exactly when nothing a user
    cares about differs.
    """

    nct_id: str
    brief_title: str | None = None
    official_title: str | None = None
    acronym: str | None = None
    overall_status: str | None = None
    last_known_status: str | None = None
    why_stopped: str | None = None
    start_date: PartialDate | None = None
    primary_completion_date: PartialDate | None = None
    completion_date: PartialDate | None = None
    enrollment: Enrollment | None = None
    phases: tuple[str, ...] = ()
    study_type: str | None = None
    # Design (normalizer version 3 on): "RANDOMIZED", "NON_RANDOMIZED", "NA"; "NONE" (open
    # label), "SINGLE", "DOUBLE", "TRIPLE", "QUADRUPLE".
    allocation: str | None = None
    masking: str | None = None
    has_results: bool = False
    results_first_posted: str | None = None
    lead_sponsor: str | None = None
    collaborators: tuple[str, ...] = ()  # names, sorted
    conditions: tuple[str, ...] = ()
    # Eligibility (normalizer version 3 on). The criteria text is kept as its criteria, each
    # section in the order written (see trialwatch.eligibility); ages as the registry writes
    # them ("18 Years"); sex "ALL", "FEMALE" or "MALE".
    inclusion_criteria: tuple[str, ...] = ()
    exclusion_criteria: tuple[str, ...] = ()
    other_criteria: tuple[str, ...] = ()
    sex: str | None = None
    minimum_age: str | None = None
    maximum_age: str | None = None
    healthy_volunteers: bool | None = None
    interventions: tuple[Intervention, ...] = ()
    arms: tuple[Arm, ...] = ()
    primary_outcomes: tuple[Outcome, ...] = ()
    secondary_outcomes: tuple[Outcome, ...] = ()
    locations: tuple[Location, ...] = ()
    references: tuple[Reference, ...] = ()
    last_update_posted: str | None = None
    # JSON paths of the optional parts normalize could not read (wrong type or shape), sorted,
    # e.g. "protocolSection.outcomesModule.secondaryOutcomes[0].measure". Those fields hold
    # their default and those list items are left out; diff does not call them changes.
    # Missing in snapshots stored by normalizer version 1, so it defaults to ().
    unreadable: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, JSONValue]:
        """Plain-JSON form (tuples become lists). ``Snapshot.from_dict(s.to_dict()) == s``."""
        return _plain(self)  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls, data: Mapping[str, JSONValue]) -> Snapshot:
        """Inverse of :meth:`to_dict`; unknown keys are ignored, so old versions still load."""
        known = _known_fields(cls)
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                continue
            if key in _NESTED:
                kwargs[key] = None if value is None else _build(_NESTED[key], value)
            elif key in _NESTED_LISTS:
                item_type = _NESTED_LISTS[key]
                kwargs[key] = tuple(_build(item_type, item) for item in value)
            elif isinstance(value, list):
                kwargs[key] = tuple(value)
            else:
                kwargs[key] = value
        return cls(**kwargs)


def _build(item_type: type[Any], item: Mapping[str, Any]) -> Any:
    # Unknown keys are skipped here too: a snapshot written by a newer normalizer still loads.
    # Hot when many snapshots are read (an export of every trial builds ~20 items each).
    known = _known_fields(item_type)
    values = {k: (tuple(v) if v.__class__ is list else v) for k, v in item.items() if k in known}
    return item_type(**values)


def _known_fields(cls: type[Any]) -> frozenset[str]:
    """:func:`_field_names` as a set, for the keys a stored snapshot may carry (cached)."""
    known = _KNOWN.get(cls)
    if known is None:
        known = _KNOWN[cls] = frozenset(_field_names(cls))
    return known


_KNOWN: dict[type[Any], frozenset[str]] = {}


def _field_names(cls: type[Any]) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {}


def _plain(value: Any) -> Any:
    """Dataclasses to dicts, tuples to lists. Hot (it feeds the content hash of every record),
    so it avoids ``dataclasses.asdict``, which deep-copies every leaf on the way."""
    cls = type(value)
    if cls in (str, int, float, bool) or value is None:
        return value
    if cls is tuple or cls is list:
        return [_plain(v) for v in value]
    names = _FIELD_NAMES.get(cls)
    if names is None:
        if not dataclasses.is_dataclass(value):
            return value
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(value))
    return {name: _plain(getattr(value, name)) for name in names}


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One change between two snapshots of a trial, in words a clinician understands.

    ``old`` and ``new`` are plain JSON (what storage keeps); ``summary`` is the sentence shown to
    people, e.g. ``"Overall status: Active, not recruiting → Completed"``. For list fields
    (sites, arms, outcomes, ...) one change is one item added, removed or changed, and
    ``item_key`` names the item.
    """

    field: str
    category: Category
    severity: Severity
    kind: ChangeKind
    summary: str
    old: JSONValue = None
    new: JSONValue = None
    item_key: str | None = None

    def to_json(self) -> dict[str, JSONValue]:
        """The change as plain JSON, as exports, webhooks and ``diff --format json`` show it."""
        return {
            "field": self.field,
            "category": self.category.value,
            "severity": self.severity.label,
            "kind": self.kind.value,
            "item_key": self.item_key,
            "summary": self.summary,
            "old": self.old,
            "new": self.new,
        }


@dataclass(frozen=True, slots=True)
class ApiVersion:
    """The answer of ``GET /version``."""

    api_version: str
    # None when the API left it out (the spec makes it optional): nothing says the data is
    # unchanged, so the sync is a normal full one.
    data_timestamp: str | None


class FoundStudy:
    """A study the API returned for ``requested_id`` (``nct_id`` differs when it was an alias).

    ``body`` is the record's JSON exactly as served, and ``record`` its parsed form: a source
    hands over either (the CT.gov client hands over the body, cut out of its page without
    parsing it), and the other is made on first use, so a study whose fingerprint shows it
    unchanged is never parsed. ``record`` raises :class:`~trialwatch.exceptions.RecordError`
    when the body cannot be read as a JSON object. The client's body is a view into its page
    until it is first asked for (then it is copied out): a page whose studies are unchanged
    is dropped whole, without a copy of each. :meth:`hand_over` gives the body away.

    ``fingerprint`` identifies the record exactly as served (see
    :func:`trialwatch.ctgov.record_fingerprint`): equal fingerprints mean equal records, so an
    unchanged study can skip normalizing. A different fingerprint does not mean a change a user
    cares about (key order or registry churn moves it too). ``None`` when the source computed
    none: then the record must be normalized.
    """

    __slots__ = ("_body", "_record", "fingerprint", "nct_id", "requested_id")

    def __init__(
        self,
        requested_id: str,
        nct_id: str,
        record: Mapping[str, Any] | None = None,
        fingerprint: str | None = None,
        *,
        body: bytes | memoryview | None = None,
    ) -> None:
        if record is None and body is None:
            raise TypeError("a FoundStudy needs its record or its body as served")
        self.requested_id = requested_id
        self.nct_id = nct_id
        self.fingerprint = fingerprint
        self._record = record
        self._body = body

    @property
    def record(self) -> Mapping[str, Any]:
        if self._record is None:
            self._record = parse_record(self.body)
        return self._record

    @property
    def body(self) -> bytes:
        if self._body is None:
            if self._record is None:
                raise RuntimeError(f"{self.requested_id}: its record was handed over")
            self._body = compact_json(self._record)
        elif isinstance(self._body, memoryview):
            # A view into the page the source cut it from: made its own bytes on first use,
            # and the page is let go of (a study found unchanged is never copied).
            self._body = bytes(self._body)
        return self._body

    def hand_over(self) -> bytes:
        """The record as served, handed over: this study keeps its ids and fingerprint, and
        forgets its body and record (asking for them afterwards raises RuntimeError)."""
        body = self.body
        self._body = self._record = None
        return body

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FoundStudy):
            return NotImplemented
        if (self.requested_id, self.nct_id, self.fingerprint) != (
            other.requested_id,
            other.nct_id,
            other.fingerprint,
        ):
            return False
        if self._body is not None and other._body is not None and self._body == other._body:
            return True
        try:
            return self.record == other.record
        except RecordError:  # unreadable: equal only as the same bytes
            return self._body == other._body

    __hash__ = None  # type: ignore[assignment]  # it holds a mutable mapping

    def __repr__(self) -> str:
        return (
            f"FoundStudy(requested_id={self.requested_id!r}, nct_id={self.nct_id!r}, "
            f"fingerprint={self.fingerprint!r})"
        )


def compact_json(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON, in its own key order (orjson; ``json`` for what orjson
    cannot write, such as an integer beyond 64 bits)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def parse_record(body: bytes) -> Mapping[str, Any]:
    """A study record from its JSON bytes; :class:`RecordError` when it is not a JSON object."""
    try:
        record = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RecordError(f"record: not readable as JSON ({exc})") from exc
    if not isinstance(record, dict):
        raise RecordError(f"record: expected a JSON object, got {type(record).__name__}")
    return record


@dataclass(frozen=True, slots=True)
class MissingStudy:
    """A requested id the API did not return (withdrawn from view, a typo, not yet public).

    ``confirmed``: the registry's own count for the request matched what it sent, so it does
    not have this id. ``False`` means a short read (it counted more studies than it sent, or
    gave no count): the id may exist and was merely left off, so a run that saw it is not
    complete. The default suits sources that answer in full by construction (test fakes).
    """

    requested_id: str
    confirmed: bool = True
    # Why CT.gov refused to look this id up (a filter.ids request it answered with a 400 until
    # the batch was split down to this id); None for an id it simply did not return. A refused
    # id is never a confirmed absence.
    refused: str | None = None


StudyResult: TypeAlias = FoundStudy | MissingStudy


@dataclass(frozen=True, slots=True)
class StudySummary:
    """One hit of a registry search: the few fields a "new matching trial" event shows.

    Dates are CT.gov partial dates as served (``yyyy-MM-dd``, ``yyyy-MM`` or ``yyyy``); a field
    the registry leaves out is ``None`` (``()`` for ``phases``, e.g. ``("PHASE2", "PHASE3")``).
    """

    nct_id: str
    brief_title: str | None = None
    acronym: str | None = None
    phases: tuple[str, ...] = ()
    overall_status: str | None = None
    lead_sponsor: str | None = None
    first_posted: str | None = None
    last_update_posted: str | None = None


@dataclass(frozen=True, slots=True)
class TrialFailure:
    nct_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class TrialUpdate:
    """What one sync found for one trial; ``baseline`` when it is the first snapshot stored."""

    nct_id: str
    changes: tuple[FieldChange, ...]
    baseline: bool = False


@dataclass(frozen=True, slots=True)
class SyncResult:
    """The outcome of one sync run, for the CLI summary, logs and tests."""

    run_id: str
    started_at: datetime
    finished_at: datetime
    skipped: bool
    data_timestamp: str | None
    checked: int = 0
    changed: int = 0
    baselined: int = 0
    unchanged: int = 0
    change_count: int = 0
    requests: int = 0
    failed: tuple[TrialFailure, ...] = ()
    missing: tuple[str, ...] = ()
    refused: tuple[TrialFailure, ...] = ()  # ids CT.gov refused to look up, and why
    refused_queries: tuple[TrialFailure, ...] = ()  # [[queries]] CT.gov refused: (name, why)
    aliases: Mapping[str, str] = field(default_factory=dict)
    updates: tuple[TrialUpdate, ...] = ()
    wrote: bool = False
    rebaselined: int = 0  # read again by a newer normalizer, silently
    newly_missing: tuple[str, ...] = ()  # missing this time and not the time before
    kind: str = "full"  # "full" | "incremental" | "recheck"
    flooded: bool = False  # too many trials changed: recipients get one summary
    flooded_trials: int = 0


@dataclass(frozen=True, slots=True)
class WatchItem:
    """A watched trial as configured (label, the table of the review it comes from)."""

    nct_id: str
    label: str | None = None
    table: str | None = None
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """Where one change goes: decided by the (pure) subscription router, persisted by storage.

    ``recipient`` is an email address, or for webhooks a *reference* to the subscription
    (``webhook:<hash>``): the secret URL itself is resolved from the settings when sending and
    is never stored.
    """

    channel: str  # "email" | "webhook"
    recipient: str
    mode: str  # "immediate" | "daily" | "weekly"
    subscription: str | None = None


Router: TypeAlias = Callable[[str, str | None, FieldChange], Sequence[Route]]
"""(nct_id, label, change) -> the routes that change takes."""


@dataclass(frozen=True, slots=True)
class StoredState:
    """What storage knows of one trial when a page of records arrives for it."""

    nct_id: str
    content_hash: str | None
    version_id: int | None
    fingerprint: str | None
    normalizer_version: int | None
    label: str | None = None
    flagged: bool = False  # missing, to recheck, or in error: seeing it again clears that
    # The id CT.gov served this trial under when it was last stored (None: its own): a merged
    # registration answers with the surviving study, and is news only the first time.
    canonical_id: str | None = None


@dataclass(frozen=True, slots=True)
class NewVersion:
    """A snapshot to store (once per content hash) with the raw record it was read from.

    The snapshot is kept as its canonical JSON bytes (stored as ``snapshot_json`` text):
    decoded, a snapshot with one character past Latin-1 takes two bytes a character, and the
    database driver keeps its UTF-8 beside it; storage decodes each as it writes it."""

    content_hash: str
    canonical: bytes  # trialwatch.normalize.canonical_bytes of the snapshot, UTF-8
    raw_record: bytes  # compressed, see trialwatch.rawcodec
    normalizer_version: int


class OutcomeKind(StrEnum):
    """What a sync decided for one trial (a ``str``: storage compares it with plain names)."""

    BASELINE = "baseline"  # its first snapshot
    CHANGED = "changed"  # changes to store and tell
    UNCHANGED = "unchanged"  # nothing to write
    REFRESHED = "refreshed"  # the served record moved, its snapshot did not: the fingerprint
    REBASELINED = "rebaselined"  # read again by a newer normalizer, silently
    FAILED = "failed"  # the record could not be read
    MISSING = "missing"  # CT.gov did not return it
    REFUSED = "refused"  # CT.gov refuses to look its id up: marked, left out of later batches


@dataclass(frozen=True, slots=True)
class TrialOutcome:
    """What one sync decided for one trial (``kind``, an :class:`OutcomeKind`); storage acts
    on it."""

    nct_id: str
    kind: OutcomeKind
    canonical_id: str | None = None
    # Only what storage shows in listings, not the whole Snapshot.
    brief_title: str | None = None
    acronym: str | None = None
    overall_status: str | None = None
    # The stored hash this outcome was decided against (None: no snapshot yet); storage
    # refuses to write when the trial moved on meanwhile.
    previous_hash: str | None = None
    from_version_id: int | None = None  # the stored version the changes are measured from
    version: NewVersion | None = None
    # A silent re-baseline: the previous record read again by a newer normalizer, stored as a
    # version of its own (no change events) before ``version`` is compared with it.
    rebaseline: NewVersion | None = None
    fingerprint: str | None = None
    changes: tuple[FieldChange, ...] = ()
    # routes[i] are the routes of changes[i], decided before the write by the router.
    routes: tuple[tuple[Route, ...], ...] = ()
    error: str | None = None
    # missing: the trial had been returned before, so its absence is news to check again.
    recheck: bool = False


@dataclass(frozen=True, slots=True)
class RunStart:
    """A sync run as it begins (its row is written first; pages reference it)."""

    run_id: str
    started_at: datetime
    forced: bool
    kind: str  # "full" | "incremental" | "recheck"
    api_version: str | None
    data_timestamp: str | None


@dataclass(frozen=True, slots=True)
class RunTotals:
    """How a run ended, written with its release of the notifications it owes."""

    finished_at: datetime
    complete: bool
    checked: int = 0
    changed: int = 0
    baselined: int = 0
    rebaselined: int = 0
    failed: int = 0
    missing: int = 0
    change_count: int = 0
    requests: int = 0
    errors: tuple[str, ...] = ()
    summary_only: bool = False  # too many trials changed: one summary per recipient


# --- the registry's record history (``trialwatch backfill``) ---------------------------------


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    """One entry of a record's version list in CT.gov's record history: its number (0 = as
    registered), the day it was submitted (``yyyy-MM-dd``), the record's overall status in it,
    and the record's sections it changed."""

    version: int
    date: str
    status: str | None
    module_labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LiveStart:
    """The first version trialwatch stored of a trial from its own syncs: where the registry's
    versions meet the live history."""

    version_id: int
    content_hash: str
    snapshot: Snapshot
    first_seen_at: datetime


@dataclass(frozen=True, slots=True)
class RegistryEvent:
    """A change the registry's history gives, dated by the version that brought it.

    ``from_hash`` and ``to_hash`` name the stored versions it lies between (``None`` when the
    version list alone was read, ``--status-only``)."""

    version: int
    date: str
    change: FieldChange
    from_hash: str | None = None
    to_hash: str | None = None


@dataclass(frozen=True, slots=True)
class RegistryVersionToStore:
    """A registry version kept beside the live ones: numbered and dated by the registry."""

    version: int
    date: str
    new: NewVersion


@dataclass(frozen=True, slots=True)
class RegistryJoin:
    """What a backfill decided for one trial; storage writes it in one transaction.

    ``mode`` is ``"full"`` (every version before the live history read and diffed) or
    ``"status"`` (the version list alone). The events replace any registry events the trial
    had (a full read after a status-only one)."""

    nct_id: str
    mode: str
    versions: tuple[RegistryVersionToStore, ...]
    events: tuple[RegistryEvent, ...]


@dataclass(frozen=True, slots=True)
class TrialLine:
    """One watched trial as ``status`` lists it: read from the denormalized trial row, no
    snapshot decoded."""

    nct_id: str
    label: str
    overall_status: str | None  # None: not synced yet
    last_changed_at: datetime | None
    problem: str | None


@dataclass(frozen=True, slots=True)
class StatusGlance:
    """The watch set at a glance: every trial when there are few, else counts by status, the
    latest changes and the trials with problems (``problem_count`` of them in all)."""

    watched: int
    by_status: Mapping[str | None, int]  # None: not synced yet
    every: Sequence[TrialLine] | None  # None: too many to list (see ``latest``, ``problems``)
    latest: Sequence[TrialLine]
    problems: Sequence[TrialLine]
    problem_count: int
