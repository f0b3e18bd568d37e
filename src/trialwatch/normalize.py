"""Turn a ClinicalTrials.gov Data API v2 study object into a canonical :class:`Snapshot`. Pure.

Two records that differ only by registry churn normalize to equal snapshots (and equal hashes):
``derivedSection`` and ``versionHolder`` are never read, posting-date ``type`` flips are dropped,
key order does not matter, every unordered list is sorted by a full-content key, and text is
normalized (Unicode NFC, whitespace collapsed, markdown backslash escapes removed).

The record is read part by part. A record without a readable NCT id or overall status raises
:class:`RecordError` naming the JSON path; any other part of the wrong type or shape is listed in
:attr:`Snapshot.unreadable` by its path and the rest is still read, so one bad outcome does not
hide a termination. Nothing else is raised. This module does no I/O, reads no clock and keeps no
state.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import operator
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any, Final, TypeVar

import orjson

from trialwatch.eligibility import Criteria, split_criteria
from trialwatch.exceptions import RecordError
from trialwatch.models import Snapshot
from trialwatch.vocabulary import PHASE_ORDER

__all__ = [
    "NORMALIZER_VERSION",
    "canonical_json",
    "canonical_of",
    "content_hash",
    "normalize",
    "normalize_text",
    "normalized_dict",
    "sort_key",
    "unreadable_scope",
]

NORMALIZER_VERSION: int = 3
"""The version of what :func:`normalize` tracks and how it reads it.

Bump it with every change that can make the same record normalize differently: a field tracked
or dropped, a value read or worded differently, a new rule for what is unreadable. Storage keeps
it with each snapshot; when it moves, the next sync re-baselines each trial silently (new
snapshots, no change events) instead of notifying about every trial. A change that needs no bump
leaves every stored content hash as it is. The re-baseline reads the stored raw record again
with the new normalizer, so a real change published in the same refresh is still reported.
:meth:`Snapshot.from_dict` must keep loading the
snapshots of every earlier version (a missing field takes its default): before bumping, keep a
snapshot the old version made in ``tests/data/snapshots/`` and test that it still loads.

1. The first release.
2. A malformed optional part is listed in ``Snapshot.unreadable`` instead of failing the trial;
   sites keep their geo point (``Location.latitude``, ``longitude``).
3. What a protocol amendment changes: eligibility (the criteria text as its criteria, ages,
   sex, healthy volunteers), collaborators, allocation and masking.
"""

# ASCII digits only: ``\d`` would also accept other scripts' digits.
_NCT_ID = re.compile(r"NCT[0-9]{8}")
_PARTIAL_DATE = re.compile(r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?")
# CommonMark lets a backslash escape any ASCII punctuation; CT.gov's markdown export escapes
# `<`, `>`, `*`, `[`, ... where the old plain text had the bare character.
_MARKDOWN_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
# A backslash at the end of a line is a markdown hard line break: it is layout, not text.
_MARKDOWN_HARD_BREAK = re.compile(r"\\(?=[\r\n])")
# Lone surrogates (legal in JSON escapes, illegal in UTF-8) would make the hash crash later.
_SURROGATE = re.compile("[\ud800-\udfff]")
# Control characters that are not whitespace: invisible, and NUL is refused by PostgreSQL text.
_CONTROL = re.compile("[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")
_ESCAPED = operator.itemgetter(1)

_T = TypeVar("_T")
_A = TypeVar("_A")


def normalize_text(value: str) -> str | None:
    """Canonical form of one text value; ``None`` when nothing is left.

    NFC, markdown backslash escapes removed (``\\>`` -> ``>``), control characters dropped, runs
    of whitespace (newlines included) collapsed to one space, ends stripped. Does not touch any
    other markup (bullets, emphasis) and does not change case.
    """
    # Fast path for the common case (printable ASCII, nothing to unescape or collapse): every
    # record has hundreds of text values and the regex chain below dominates a large sync.
    is_ascii = value.isascii()
    if is_ascii and value.isprintable() and "\\" not in value and "  " not in value:
        return value.strip() or None
    # ASCII has no surrogates and is NFC already (multi-line descriptions mostly are ASCII).
    text = value if is_ascii else unicodedata.normalize("NFC", _SURROGATE.sub("\ufffd", value))
    if "\\" in text:  # both markdown patterns start with a backslash
        text = _MARKDOWN_HARD_BREAK.sub(" ", text)
        # The escaped character (group 1) without its backslash: a function, as re expands a
        # template such as r"\1" in Python for each match.
        text = _MARKDOWN_ESCAPE.sub(_ESCAPED, text)
    if not text.isprintable():  # every character _CONTROL matches is unprintable
        text = _CONTROL.sub("", text)
    # Runs of whitespace to one space, ends stripped: split() splits on exactly what \s matches
    # (str.isspace), a few times faster than the regex.
    return " ".join(text.split()) or None


def sort_key(item: Any) -> tuple[tuple[bool, Any], ...]:
    """The deterministic full-content order of list items: a frozen model dataclass, its plain
    form (a dict of its fields in their order, as :func:`normalized_dict` makes it) or a str.

    Fields are compared in declaration order, ``None`` before any value, so the order reads
    naturally (sites by facility, arms by label) and never depends on the registry's order.
    """
    if isinstance(item, str):
        return ((True, item),)
    values = item.values() if item.__class__ is dict else _fields_of(type(item))[1](item)
    return tuple([(value is not None, "" if value is None else value) for value in values])


def _fields_of(cls: type[Any]) -> tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]:
    """The field names of a model dataclass and the function that reads their values (cached:
    sorting and the canonical text read every item of every record)."""
    known = _FIELDS.get(cls)
    if known is None:
        names = tuple(f.name for f in dataclasses.fields(cls))
        # attrgetter reads every field in C; with one name it gives the value, not a tuple.
        getter = operator.attrgetter(*names)
        known = _FIELDS[cls] = (names, getter if len(names) > 1 else lambda i: (getter(i),))
    return known


_FIELDS: dict[type[Any], tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]] = {}


def normalize(record: Mapping[str, Any]) -> Snapshot:
    """The canonical :class:`Snapshot` of one v2 study object: :func:`normalized_dict` as a
    snapshot (what it reads, what it raises)."""
    return Snapshot.from_dict(normalized_dict(record))


def normalized_dict(record: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical snapshot of one v2 study object in its plain form, read part by part:
    what ``normalize(record).to_dict()`` gives (with tuples where it has lists), so that
    :func:`canonical_of` of it is :func:`canonical_bytes` of the snapshot.

    Plain data because most records a sync reads are only hashed and stored: their snapshot is
    never compared, and building its dataclasses (and handing them to orjson one callback each)
    was a third of normalizing a record. :func:`normalize` builds the snapshot from it.

    Reads only ``protocolSection`` and the top-level ``hasResults`` (the client may request
    nothing else); unknown keys are ignored and optional modules may be missing.

    Two parts are essential: ``protocolSection.identificationModule.nctId`` (``NCT`` + 8 digits)
    and ``protocolSection.statusModule.overallStatus``. Without them nothing can be said about
    the trial, so :class:`RecordError` is raised, naming the JSON path, and the caller keeps the
    last good snapshot. Every other part that has the wrong type or shape is *unreadable*: its
    path goes into :attr:`Snapshot.unreadable`, the field takes its default (a list item is
    left out), and the rest of the record is still read, so a termination is reported even when
    one outcome lacks its measure. Values are never coerced (``"120"`` is not an enrollment
    count). Raises nothing but :class:`RecordError`.
    """
    root = _Node.root(record)
    try:
        protocol = root.obj("protocolSection")
        ident = protocol.obj("identificationModule") if protocol else None
        nct_id = ident.get("nctId") if ident else None
        if protocol is None or ident is None or nct_id is None:
            raise RecordError("record has no identificationModule.nctId")
        if not isinstance(nct_id, str) or not _NCT_ID.fullmatch(nct_id):
            raise RecordError(
                f"protocolSection.identificationModule.nctId: expected an NCT number like "
                f"NCT01234567, got {_describe(nct_id)}"
            )
        status = protocol.obj("statusModule")
        overall_status = status.text("overallStatus") if status else None
        if status is None or overall_status is None:
            raise RecordError("record has no statusModule.overallStatus")
    except _Unreadable as exc:
        raise RecordError(str(exc)) from None

    read = _Reader()
    design = read.module(protocol, "designModule")
    sponsors = read.module(protocol, "sponsorCollaboratorsModule")
    conditions = read.module(protocol, "conditionsModule")
    arms_interventions = read.module(protocol, "armsInterventionsModule")
    outcomes = read.module(protocol, "outcomesModule")
    contacts = read.module(protocol, "contactsLocationsModule")
    references = read.module(protocol, "referencesModule")
    eligibility = read.module(protocol, "eligibilityModule")
    design_info = read.opt(design.obj, "designInfo") if design else None
    masking = read.opt(design_info.obj, "maskingInfo") if design_info else None
    criteria = read.part(_criteria, eligibility, _NO_CRITERIA)

    # Every field of Snapshot, in its order (a test holds the keys to its fields).
    return {
        "nct_id": nct_id,
        "brief_title": read.opt(ident.text, "briefTitle"),
        "official_title": read.opt(ident.text, "officialTitle"),
        "acronym": read.opt(ident.text, "acronym"),
        "overall_status": overall_status,
        "last_known_status": read.opt(status.text, "lastKnownStatus"),
        "why_stopped": read.opt(status.text, "whyStopped"),
        "start_date": read.opt(status.date_struct, "startDateStruct"),
        "primary_completion_date": read.opt(status.date_struct, "primaryCompletionDateStruct"),
        "completion_date": read.opt(status.date_struct, "completionDateStruct"),
        "enrollment": read.opt(_enrollment, design),
        "phases": read.part(_phases, design, _NO_PHASES),
        "study_type": read.opt(design.text, "studyType") if design else None,
        "allocation": read.opt(design_info.text, "allocation") if design_info else None,
        "masking": read.opt(masking.text, "masking") if masking else None,
        "has_results": read.part(root.boolean, "hasResults", False),
        "results_first_posted": read.opt(status.posted_date, "resultsFirstPostDateStruct"),
        "lead_sponsor": read.opt(_lead_sponsor, sponsors),
        "collaborators": tuple(sorted(set(read.items(sponsors, "collaborators", _name)))),
        "conditions": tuple(sorted(set(read.texts(conditions, "conditions")))),
        "inclusion_criteria": criteria.inclusion,
        "exclusion_criteria": criteria.exclusion,
        "other_criteria": criteria.other,
        "sex": read.opt(eligibility.text, "sex") if eligibility else None,
        "minimum_age": read.opt(eligibility.text, "minimumAge") if eligibility else None,
        "maximum_age": read.opt(eligibility.text, "maximumAge") if eligibility else None,
        "healthy_volunteers": read.opt(_healthy_volunteers, eligibility),
        "interventions": read.items(arms_interventions, "interventions", _intervention),
        "arms": read.items(arms_interventions, "armGroups", _arm),
        "primary_outcomes": read.items(outcomes, "primaryOutcomes", _outcome),
        "secondary_outcomes": read.items(outcomes, "secondaryOutcomes", _outcome),
        "locations": read.items(contacts, "locations", _location),
        "references": read.items(references, "references", _reference),
        # Only the date: the registry flips this struct's type ESTIMATED -> ACTUAL by itself.
        "last_update_posted": read.opt(status.posted_date, "lastUpdatePostDateStruct"),
        "unreadable": tuple(sorted(read.unreadable)),
    }


REQUIRED_MODULES: Final = (
    "sponsorCollaboratorsModule",
    "conditionsModule",
    "designModule",
    "eligibilityModule",
)
"""Modules every registered study has (its sponsor, conditions, study type, eligibility): one
absent from a record whose last version had it is a record served incomplete, not a trial
that lost all of them (see :func:`vanished_modules`)."""


def absent_required_modules(record: Mapping[str, Any]) -> tuple[str, ...]:
    """Which of :data:`REQUIRED_MODULES` ``record`` (parsed) lacks, or has as null."""
    protocol = record.get("protocolSection")
    if not isinstance(protocol, Mapping):
        return ()
    return tuple(module for module in REQUIRED_MODULES if protocol.get(module) is None)


def vanished_modules(previous: Snapshot, absent: Sequence[str]) -> list[str]:
    """The modules of ``absent`` that ``previous`` holds something from: compared, each would
    read as all its fields removed (an enrollment, the sponsor, every criterion gone at once),
    and then added back with the next complete record."""
    return [
        module
        for module in absent
        if any(
            getattr(previous, name) not in (None, (), "")
            for name in unreadable_scope(f"protocolSection.{module}")[0]
        )
    ]


def unreadable_scope(path: str) -> tuple[tuple[str, ...], bool]:
    """The :class:`Snapshot` fields an unreadable ``path`` leaves unknown, and whether it is
    one item of those list fields (``True``) rather than the whole of them.

    ``"protocolSection.outcomesModule.secondaryOutcomes[0].measure"`` ->
    ``(("secondary_outcomes",), True)``; ``"protocolSection.designModule"`` -> the three fields
    read from that module. A path normalize never writes -> ``((), False)``.
    """
    for prefix, fields, listed in _SCOPES:
        if path == prefix:
            return fields, False
        if path.startswith(prefix) and path[len(prefix)] in ".[":
            return fields, listed and path[len(prefix)] == "["
    return (), False


# Where each field is read from, most specific first: (path, fields, is a list of items).
_P = "protocolSection."
_CRITERIA = ("inclusion_criteria", "exclusion_criteria", "other_criteria")
_ELIGIBILITY = (*_CRITERIA, "sex", "minimum_age", "maximum_age", "healthy_volunteers")
_SCOPES: tuple[tuple[str, tuple[str, ...], bool], ...] = tuple(
    sorted(
        [
            ("hasResults", ("has_results",), False),
            (_P + "identificationModule.briefTitle", ("brief_title",), False),
            (_P + "identificationModule.officialTitle", ("official_title",), False),
            (_P + "identificationModule.acronym", ("acronym",), False),
            (_P + "statusModule.lastKnownStatus", ("last_known_status",), False),
            (_P + "statusModule.whyStopped", ("why_stopped",), False),
            (_P + "statusModule.startDateStruct", ("start_date",), False),
            (_P + "statusModule.primaryCompletionDateStruct", ("primary_completion_date",), False),
            (_P + "statusModule.completionDateStruct", ("completion_date",), False),
            (_P + "statusModule.resultsFirstPostDateStruct", ("results_first_posted",), False),
            (_P + "statusModule.lastUpdatePostDateStruct", ("last_update_posted",), False),
            (
                _P + "designModule",
                ("enrollment", "phases", "study_type", "allocation", "masking"),
                False,
            ),
            (_P + "designModule.enrollmentInfo", ("enrollment",), False),
            (_P + "designModule.phases", ("phases",), False),
            (_P + "designModule.studyType", ("study_type",), False),
            (_P + "designModule.designInfo", ("allocation", "masking"), False),
            (_P + "designModule.designInfo.allocation", ("allocation",), False),
            (_P + "designModule.designInfo.maskingInfo", ("masking",), False),
            (_P + "sponsorCollaboratorsModule", ("lead_sponsor", "collaborators"), False),
            (_P + "sponsorCollaboratorsModule.leadSponsor", ("lead_sponsor",), False),
            (_P + "sponsorCollaboratorsModule.collaborators", ("collaborators",), True),
            (_P + "eligibilityModule", _ELIGIBILITY, False),
            (_P + "eligibilityModule.eligibilityCriteria", _CRITERIA, False),
            (_P + "eligibilityModule.sex", ("sex",), False),
            (_P + "eligibilityModule.minimumAge", ("minimum_age",), False),
            (_P + "eligibilityModule.maximumAge", ("maximum_age",), False),
            (_P + "eligibilityModule.healthyVolunteers", ("healthy_volunteers",), False),
            (_P + "conditionsModule", ("conditions",), False),
            (_P + "conditionsModule.conditions", ("conditions",), True),
            (_P + "armsInterventionsModule", ("arms", "interventions"), False),
            (_P + "armsInterventionsModule.armGroups", ("arms",), True),
            (_P + "armsInterventionsModule.interventions", ("interventions",), True),
            (_P + "outcomesModule", ("primary_outcomes", "secondary_outcomes"), False),
            (_P + "outcomesModule.primaryOutcomes", ("primary_outcomes",), True),
            (_P + "outcomesModule.secondaryOutcomes", ("secondary_outcomes",), True),
            (_P + "contactsLocationsModule", ("locations",), False),
            (_P + "contactsLocationsModule.locations", ("locations",), True),
            (_P + "referencesModule", ("references",), False),
            (_P + "referencesModule.references", ("references",), True),
        ],
        key=lambda scope: -len(scope[0]),
    )
)


def canonical_bytes(snapshot: Snapshot) -> bytes:
    """The canonical text of a snapshot, UTF-8: ``to_dict()`` as compact JSON, keys sorted.

    Made by orjson, byte for byte what ``json.dumps(..., sort_keys=True, separators=(",",
    ":"), ensure_ascii=False)`` makes (a test holds it: the stored hashes depend on it), about
    ten times faster — it is made for every record a sync reads.
    """
    # The same text as ``orjson.dumps(snapshot.to_dict(), option=OPT_SORT_KEYS)`` without
    # building ``to_dict()``'s tree first: orjson asks ``_fields_dict`` for each dataclass (its
    # own dataclass support ignores OPT_SORT_KEYS, hence the passthrough) and writes the tuples
    # as the lists ``to_dict`` would make of them. A test holds it to ``to_dict``.
    return orjson.dumps(snapshot, option=_CANONICAL_OPTIONS, default=_fields_dict)


_CANONICAL_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS


def _fields_dict(value: Any) -> dict[str, Any]:
    """One model dataclass as a dict of its fields, its values as they are (orjson goes on
    into them); anything else raises TypeError (``dataclasses.fields`` does)."""
    names, values_of = _fields_of(type(value))
    return dict(zip(names, values_of(value), strict=True))


def canonical_of(plain: Mapping[str, Any]) -> bytes:
    """:func:`canonical_bytes` of the snapshot whose plain form :func:`normalized_dict` gave:
    the same text, with no callback (orjson writes plain data in C alone)."""
    return orjson.dumps(plain, option=orjson.OPT_SORT_KEYS)


def canonical_json(snapshot: Snapshot) -> str:
    """:func:`canonical_bytes` as text."""
    return canonical_bytes(snapshot).decode("utf-8")


def hash_of(canonical: bytes) -> str:
    """SHA-256 hex digest of a snapshot's :func:`canonical_bytes`."""
    return hashlib.sha256(canonical).hexdigest()


def content_hash(snapshot: Snapshot) -> str:
    """SHA-256 hex digest of :func:`canonical_json`; equal snapshots have equal hashes."""
    return hash_of(canonical_bytes(snapshot))


class _Unreadable(Exception):  # internal: never escapes this module
    """One part of the record has the wrong type or shape; ``path`` says where."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path


class _Reader:
    """Reads the optional parts of one record: a part that cannot be read is noted by its path
    and takes its default; a list item that cannot be read is left out."""

    __slots__ = ("unreadable",)

    def __init__(self) -> None:
        self.unreadable: list[str] = []

    def part(self, read: Callable[[_A], _T], arg: _A, default: _T) -> _T:
        try:
            return read(arg)
        except _Unreadable as exc:
            self.unreadable.append(exc.path)
            return default

    def opt(self, read: Callable[[_A], _T | None], arg: _A) -> _T | None:
        """:meth:`part` for a value that may be missing: ``None`` when it cannot be read."""
        # part()'s body, not a call to it: a record has some thirty optional values.
        try:
            return read(arg)
        except _Unreadable as exc:
            self.unreadable.append(exc.path)
            return None

    def module(self, protocol: _Node, key: str) -> _Node | None:
        return self.opt(protocol.obj, key)

    def elements(self, node: _Node | None, key: str) -> list[Any]:
        empty: list[Any] = []
        return self.part(node.elements, key, empty) if node else empty

    def texts(self, node: _Node | None, key: str) -> list[str]:
        """The readable strings of a list, normalized; empty strings are dropped."""
        texts = []
        for index, item in enumerate(self.elements(node, key)):
            if item.__class__ is str:
                text = normalize_text(item)
            elif item is None:
                continue
            else:
                assert node is not None
                self.unreadable.append(node.item_path(key, index))
                continue
            if text is not None:
                texts.append(text)
        return texts

    def items(self, node: _Node | None, key: str, build: Callable[[_Node], _T]) -> tuple[_T, ...]:
        """The readable items of a list of objects, in :func:`sort_key` order (of the
        dataclass an item's plain form stands for: its values are in that class's order)."""
        built = []
        for index, item in enumerate(self.elements(node, key)):
            assert node is not None
            try:
                # A parsed record's objects are dicts; the ABC check is ten times slower.
                if item.__class__ is not dict and not isinstance(item, Mapping):
                    raise _wrong(node.item_path(key, index), "a JSON object", item)
                built.append(build(_Node(item, node, (key, index))))
            except _Unreadable as exc:
                self.unreadable.append(exc.path)
        return _sorted(built)


class _Node:
    """One JSON object of the record being read. Its path (for error messages) is made only
    when an error needs it: a record has hundreds of values and almost never an error."""

    __slots__ = ("_data", "_key", "_parent")

    def __init__(
        self,
        data: Mapping[str, Any],
        parent: _Node | None = None,
        key: str | tuple[str, int] = "",
    ) -> None:
        self._data = data
        self._parent = parent
        self._key = key  # under its parent: a key, or (a list's key, the index in it)

    @classmethod
    def root(cls, record: object) -> _Node:
        if not isinstance(record, Mapping):
            raise RecordError(f"record: expected a JSON object, got {_describe(record)}")
        return cls(record)

    @property
    def path(self) -> str:
        parent, key = self._parent, self._key
        if parent is None:
            return ""
        if isinstance(key, tuple):
            return parent.item_path(*key)
        return parent.at(key)

    def at(self, key: str) -> str:
        path = self.path
        return f"{path}.{key}" if path else key

    def item_path(self, key: str, index: int) -> str:
        return f"{self.at(key)}[{index}]"

    def get(self, key: str) -> Any:
        return self._data.get(key)

    def obj(self, key: str) -> _Node | None:
        value = self._data.get(key)
        if value is None:
            return None
        # A parsed record's objects are dicts; the ABC check is ten times slower.
        if value.__class__ is not dict and not isinstance(value, Mapping):
            raise _wrong(self.at(key), "a JSON object", value)
        return _Node(value, self, key)

    def elements(self, key: str) -> list[Any]:
        """The elements of a list; missing or null -> empty."""
        value = self._data.get(key)
        if value is None:
            return []
        # A parsed record's arrays are lists; a check against a union type is slower.
        if value.__class__ is not list and not isinstance(value, list | tuple):
            raise _wrong(self.at(key), "a list", value)
        return list(value)

    def text(self, key: str) -> str | None:
        value = self._data.get(key)
        if value is None:
            return None
        if value.__class__ is str:
            return normalize_text(value)
        raise _wrong(self.at(key), "a string", value)

    def required_text(self, key: str) -> str:
        text = self.text(key)
        if text is None:
            raise _Unreadable(self.at(key), "expected a non-empty string, got nothing")
        return text

    def texts(self, key: str) -> list[str]:
        """A list of strings, normalized; empty strings are dropped."""
        texts = (
            _text(item, "") if item.__class__ is str else _text(item, self.item_path(key, i))
            for i, item in enumerate(self.elements(key))
        )
        return [text for text in texts if text is not None]

    def boolean(self, key: str) -> bool:
        value = self._data.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise _wrong(self.at(key), "true or false", value)
        return value

    def date_struct(self, key: str) -> dict[str, Any] | None:
        """A :class:`~trialwatch.models.PartialDate`, plain."""
        struct = self.obj(key)
        if struct is None:
            return None
        day = _date(struct)
        if day is None:
            return None
        return {"date": day, "type": struct.text("type")}

    def posted_date(self, key: str) -> str | None:
        struct = self.obj(key)
        return _date(struct) if struct else None


def _text(value: object, path: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _wrong(path, "a string", value)
    return normalize_text(value)


def _date(struct: _Node) -> str | None:
    """The ``date`` of a date struct, checked. Its path is made only for an error: a record has
    a few dates, and making it walks up to the root."""
    value = struct.get("date")
    if not isinstance(value, str):
        return _text(value, struct.at("date"))  # None when missing; raises for any other value
    text = normalize_text(value)
    if text is None:
        return None
    match = _PARTIAL_DATE.fullmatch(text)
    if match is None:
        raise _Unreadable(
            struct.at("date"), f"expected a date as yyyy, yyyy-MM or yyyy-MM-dd, got {text!r}"
        )
    year, month, day = match.groups()
    try:
        date(int(year), int(month or 1), int(day or 1))
    except ValueError:
        raise _Unreadable(struct.at("date"), f"not a calendar date: {text!r}") from None
    return text


def _enrollment(design: _Node | None) -> dict[str, Any] | None:
    """An :class:`~trialwatch.models.Enrollment`, plain."""
    info = design.obj("enrollmentInfo") if design else None
    if info is None:
        return None
    count = info.get("count")
    # bool is an int in Python; JSON true is not a head count.
    if count is not None and (not isinstance(count, int) or isinstance(count, bool)):
        raise _wrong(info.at("count"), "an integer", count)
    if count is not None and count < 0:
        raise _wrong(info.at("count"), "a non-negative integer", count)
    kind = info.text("type")
    if count is None:
        # A type without a count says no number ({"type": "ESTIMATED"} alone): no enrollment,
        # so every reader (diff, history, exports) sees the same nothing.
        return None
    return {"count": count, "type": kind}


def _phases(design: _Node | None) -> tuple[str, ...]:
    # One phase that cannot be read makes the whole set unknown: a subset would read as a
    # change of phase. Unknown phases (schema drift) go last, in name order, not dropped.
    phases = set(design.texts("phases")) if design else set()
    return tuple(sorted(phases, key=lambda p: (PHASE_ORDER.get(p, len(PHASE_ORDER)), p)))


def _lead_sponsor(sponsors: _Node | None) -> str | None:
    lead = sponsors.obj("leadSponsor") if sponsors else None
    return lead.text("name") if lead else None


def _criteria(eligibility: _Node | None) -> Criteria:
    text = eligibility.get("eligibilityCriteria") if eligibility else None
    if text is None:
        return _NO_CRITERIA
    assert eligibility is not None
    if text.__class__ is not str:
        raise _wrong(eligibility.at("eligibilityCriteria"), "a string", text)
    inclusion, exclusion, other = (
        tuple(t for t in map(normalize_text, section) if t is not None)
        for section in split_criteria(text)
    )
    return Criteria(inclusion, exclusion, other)


_NO_CRITERIA = Criteria()
_NO_PHASES: tuple[str, ...] = ()


def _healthy_volunteers(eligibility: _Node | None) -> bool | None:
    if eligibility is None or eligibility.get("healthyVolunteers") is None:
        return None
    return eligibility.boolean("healthyVolunteers")


def _name(node: _Node) -> str:
    return node.required_text("name")


# The list items, plain: each a dict of its dataclass's fields in their order (models.py),
# which is the order they sort in (see sort_key; a test holds the keys to the fields).


def _intervention(node: _Node) -> dict[str, Any]:
    return {
        "name": node.required_text("name"),
        "type": node.text("type"),
        "description": node.text("description"),
    }


def _arm(node: _Node) -> dict[str, Any]:
    return {
        "label": node.required_text("label"),
        "type": node.text("type"),
        "description": node.text("description"),
        "intervention_names": tuple(sorted(node.texts("interventionNames"))),
    }


def _outcome(node: _Node) -> dict[str, Any]:
    return {
        "measure": node.required_text("measure"),
        "time_frame": node.text("timeFrame"),
        "description": node.text("description"),
    }


def _location(node: _Node) -> dict[str, Any]:
    geo = node.obj("geoPoint")
    return {
        "facility": node.text("facility"),
        "city": node.text("city"),
        "state": node.text("state"),
        "country": node.text("country"),
        "status": node.text("status"),
        "latitude": _degrees(geo, "lat", 90) if geo else None,
        "longitude": _degrees(geo, "lon", 180) if geo else None,
    }


def _degrees(geo: _Node, key: str, limit: int) -> float:
    value = geo.get(key)
    # bool is an int in Python; NaN and infinities are no place and would break equality.
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _wrong(geo.at(key), "a number", value)
    degrees = float(value) if abs(value) <= limit else math.nan
    if not math.isfinite(degrees):
        raise _wrong(geo.at(key), f"degrees between -{limit} and {limit}", value)
    return degrees


def _reference(node: _Node) -> dict[str, Any]:
    return {"pmid": node.text("pmid"), "type": node.text("type"), "citation": node.text("citation")}


def _sorted(items: list[_T]) -> tuple[_T, ...]:
    # One item or none is in order already: no sort key to make (most lists have one).
    if len(items) < 2:
        return tuple(items)
    return tuple(sorted(items, key=sort_key))


def _wrong(path: str, expected: str, value: object) -> _Unreadable:
    return _Unreadable(path, f"expected {expected}, got {_describe(value)}")


def _describe(value: object) -> str:
    """A short, safe description of an unexpected value for an error message."""
    if isinstance(value, Mapping):
        return "a JSON object"
    if isinstance(value, list | tuple):
        return "a list"
    # repr of an int beyond 4300 digits raises; such a number is no count anyway.
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return "a very large integer"
    if value is None or isinstance(value, str | int | float | bool):
        text = repr(value)
        return text if len(text) <= 80 else f"{text[:77]}..."
    return f"a {type(value).__name__}"
