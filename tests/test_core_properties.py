"""Properties of the pure core (normalize + diff) over real and generated records."""

from __future__ import annotations

import dataclasses
import json
import random
import re
from functools import cache
from pathlib import Path
from typing import Any, TypeAlias

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from trialwatch.diff import diff, headline
from trialwatch.exceptions import RecordError
from trialwatch.models import ChangeKind, FieldChange, Snapshot
from trialwatch.normalize import (
    canonical_bytes,
    canonical_json,
    canonical_of,
    content_hash,
    normalize,
    normalized_dict,
    unreadable_scope,
)

RECORDS = Path(__file__).parent / "data" / "records"
RECORD_NAMES = sorted(p.stem for p in RECORDS.glob("NCT*.json"))

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# A seeded Random, not st.randoms(): shuffling a whole record makes thousands of choices, and
# drawing each from Hypothesis would make every example huge and slow.
RANDOMS = st.integers(0, 2**32).map(random.Random)

Path_: TypeAlias = tuple[str | int, ...]


@cache
def _record_text(name: str) -> str:
    return (RECORDS / f"{name}.json").read_text(encoding="utf-8")


def real_record(name: str) -> dict[str, Any]:
    """A fresh copy of a real record (tests may change it)."""
    data: dict[str, Any] = json.loads(_record_text(name))
    return data


# --- Generated records --------------------------------------------------------------------------

# Small alphabets so that duplicates, escapes, combining marks and whitespace runs are common.
_TEXT = st.text(alphabet="ab AB\n\t\\>*_(é\u0301", max_size=8)
_NAME = st.sampled_from(["Research Site", "Mayo Clinic", "Placebo", "Drug A", " Drug A", "x"])
_NCT = st.from_regex(r"NCT[0-9]{8}", fullmatch=True)
_STATUS = st.sampled_from(["RECRUITING", "COMPLETED", "TERMINATED", "UNKNOWN", "WITHHELD"])
_TYPE = st.sampled_from(["ACTUAL", "ESTIMATED"])
_DATE = st.builds(
    lambda y, m, d, precision: [f"{y}", f"{y}-{m:02d}", f"{y}-{m:02d}-{d:02d}"][precision],
    st.integers(1999, 2030),
    st.integers(1, 12),
    st.integers(1, 28),
    st.integers(0, 2),
)


def _opt(required: dict[str, Any], **optional: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(required, optional=optional)


def _lists(item: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(item, max_size=4)


_DATE_STRUCT = _opt({"date": _DATE}, type=_TYPE)

STUDY_RECORDS = _opt(
    {
        "protocolSection": _opt(
            {
                "identificationModule": _opt(
                    {"nctId": _NCT}, briefTitle=_TEXT, officialTitle=_TEXT, acronym=_TEXT
                ),
                "statusModule": _opt(
                    {"overallStatus": _STATUS},
                    lastKnownStatus=_STATUS,
                    whyStopped=_TEXT,
                    startDateStruct=_DATE_STRUCT,
                    primaryCompletionDateStruct=_DATE_STRUCT,
                    completionDateStruct=_DATE_STRUCT,
                    resultsFirstPostDateStruct=_DATE_STRUCT,
                    lastUpdatePostDateStruct=_DATE_STRUCT,
                ),
            },
            designModule=_opt(
                {},
                studyType=st.sampled_from(["INTERVENTIONAL", "OBSERVATIONAL"]),
                phases=_lists(st.sampled_from(["NA", "PHASE1", "PHASE2", "PHASE3", "PHASE9"])),
                enrollmentInfo=_opt({}, count=st.integers(0, 500), type=_TYPE),
            ),
            sponsorCollaboratorsModule=_opt({}, leadSponsor=_opt({}, name=_NAME)),
            conditionsModule=_opt({}, conditions=_lists(_NAME)),
            armsInterventionsModule=_opt(
                {},
                armGroups=_lists(
                    _opt(
                        {"label": _NAME},
                        type=st.sampled_from(["EXPERIMENTAL", "PLACEBO_COMPARATOR"]),
                        description=_TEXT,
                        interventionNames=_lists(_NAME),
                    )
                ),
                interventions=_lists(
                    _opt(
                        {"name": _NAME}, type=st.sampled_from(["DRUG", "DEVICE"]), description=_TEXT
                    )
                ),
            ),
            outcomesModule=_opt(
                {},
                primaryOutcomes=_lists(
                    _opt({"measure": _NAME}, timeFrame=_TEXT, description=_TEXT)
                ),
                secondaryOutcomes=_lists(_opt({"measure": _NAME}, timeFrame=_TEXT)),
            ),
            contactsLocationsModule=_opt(
                {},
                locations=_lists(
                    _opt(
                        {},
                        # Spellings one fix apart, so corrected sites are common too.
                        facility=_NAME | st.sampled_from(["MAYO CLINIC", "Mayo Clinc"]),
                        city=st.sampled_from(["Seoul", "London", "LONDON", "Londonn"]),
                        state=_TEXT,
                        country=st.sampled_from(["Korea, Republic of", "United Kingdom"]),
                        status=_STATUS,
                        geoPoint=st.sampled_from(
                            [{"lat": 37.56, "lon": 126.97}, {"lat": 51.5, "lon": -0.12}]
                        ),
                    )
                ),
            ),
            referencesModule=_opt(
                {},
                references=_lists(
                    _opt({}, pmid=st.sampled_from(["123", "456"]), type=_TYPE, citation=_TEXT)
                ),
            ),
        )
    },
    hasResults=st.booleans(),
    derivedSection=st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)

MODULES = [
    "designModule",
    "sponsorCollaboratorsModule",
    "conditionsModule",
    "armsInterventionsModule",
    "outcomesModule",
    "contactsLocationsModule",
    "referencesModule",
]


# --- Helpers ------------------------------------------------------------------------------------


def shuffled(value: Any, rnd: random.Random) -> Any:
    """``value`` with every object's key order and every list's order shuffled, recursively.

    Every list normalize reads is unordered, so this is registry churn, not a change.
    """
    if isinstance(value, dict):
        items = [(k, shuffled(v, rnd)) for k, v in value.items()]
        rnd.shuffle(items)
        return dict(items)
    if isinstance(value, list):
        items = [shuffled(v, rnd) for v in value]
        rnd.shuffle(items)
        return items
    return value


def reformatted(value: Any, rnd: random.Random, key: str = "") -> Any:
    """``value`` with text re-laid-out as the registry's markdown export does: extra whitespace
    and newlines, and punctuation backslash-escaped. Text with a backslash is left alone."""
    if isinstance(value, dict):
        return {k: reformatted(v, rnd, k) for k, v in value.items()}
    if isinstance(value, list):
        return [reformatted(v, rnd, key) for v in value]
    if key == "eligibilityCriteria" and isinstance(value, str):
        return reflowed_criteria(value, rnd)
    if not isinstance(value, str) or "\\" in value or key == "nctId":
        return value
    text = value.replace(" ", rnd.choice([" ", "  ", "\n\n", " \n "]))
    text = "".join(f"\\{c}" if c in "<>*_[]()&" and rnd.random() < 0.5 else c for c in text)
    return rnd.choice(["", " ", "\n"]) + text + rnd.choice(["", "  ", "\n"])


_ITEM = re.compile(r"(\s*)(?:[*\-•]|[0-9]+\.)\s+(.*)")
# A word that would start a new criterion or section at the start of a line: never wrapped onto
# one (a sponsor's text has the same ambiguity; it is not what reflowing means).
_LEADS = re.compile(r"\(?[0-9a-zA-Z]{1,4}[.)]|[*\-+•·◦○▪■□►➢–—]|(?i:inclusion|exclusion)")


def reflowed_criteria(text: str, rnd: random.Random) -> str:
    """An eligibility text as a sponsor re-submits it unchanged: another bullet style (``*``,
    ``-``, ``•`` or numbers), renumbered, each criterion re-wrapped onto other lines, extra
    spaces, and markdown escapes added where the text has none."""
    style = rnd.choice(["*", "-", "•", "1."])
    escape = "\\" not in text
    lines, number = [], 0
    for line in text.splitlines():
        item = _ITEM.fullmatch(line)
        if item is None:
            lines.append(line + rnd.choice(["", "  "]))
            continue
        number += 1
        indent, body = item.groups()
        words = body.split(" ")
        wrapped = words[0]
        for word in words[1:]:
            gap = " " if _LEADS.match(word) else rnd.choice([" ", "  ", f"\n{indent}   "])
            wrapped += gap + word
        if escape:
            wrapped = "".join(
                f"\\{c}" if c in "<>()" and rnd.random() < 0.5 else c for c in wrapped
            )
        marker = f"{number}." if style == "1." else style
        lines.append(f"{indent}{marker}{rnd.choice([' ', '  '])}{wrapped}")
    return "\n".join(lines)


def all_paths(value: Any, prefix: Path_ = ()) -> list[Path_]:
    paths: list[Path_] = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            paths.extend(all_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            paths.extend(all_paths(v, (*prefix, i)))
    return paths


_DELETE = object()


def mutated(value: Any, path: Path_, new: Any) -> Any:
    """A copy of ``value`` with the item at ``path`` replaced (or removed with ``_DELETE``);
    only the containers along the path are copied."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        copy = dict(value)
        if not rest and new is _DELETE:
            copy.pop(head, None)
        else:
            copy[head] = mutated(value[head], rest, new)
        return copy
    assert isinstance(value, list)
    assert isinstance(head, int)
    items = list(value)
    if not rest and new is _DELETE:
        del items[head]
    else:
        items[head] = mutated(value[head], rest, new)
    return items


@cache
def _protocol_paths(name: str) -> list[Path_]:
    record = real_record(name)
    return [("hasResults",), *all_paths(record["protocolSection"], ("protocolSection",))]


_JUNK: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**20)
    | st.floats(allow_nan=True)
    | st.text(max_size=6)
    | st.sampled_from(
        ["", " ", "2024-13", "2024-02-30", "NCT123", "0000", "ACTUAL", "NCT01234567"]
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


def check_snapshot(snapshot: Snapshot) -> None:
    """What must hold for every snapshot normalize returns."""
    assert diff(snapshot, snapshot) == []
    assert Snapshot.from_dict(snapshot.to_dict()) == snapshot
    assert Snapshot.from_dict(json.loads(canonical_json(snapshot))) == snapshot
    # The canonical text is to_dict() as json.dumps writes it (stored hashes were made so),
    # though canonical_bytes does not build to_dict() first.
    plain = json.dumps(
        snapshot.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    assert canonical_bytes(snapshot) == plain.encode("utf-8")
    assert len(content_hash(snapshot)) == 64


def check_plain_form(record: Any, snapshot: Snapshot) -> None:
    """A sync hashes and stores normalized_dict's plain form, written by orjson alone, without
    building the snapshot: its text must be the snapshot's canonical bytes (stored hashes),
    which are written from the dataclasses."""
    assert canonical_of(normalized_dict(record)) == canonical_bytes(snapshot)


def normalize_or_record_error(record: Any) -> Snapshot | None:
    try:
        snapshot = normalize(record)
    except RecordError as error:
        message = str(error)
        snapshot = None
    else:
        message = "ok"
    event("RecordError" if snapshot is None else "Snapshot")
    if snapshot is not None:
        check_plain_form(record, snapshot)
    assert message  # every RecordError says why
    assert snapshot is None or isinstance(snapshot, Snapshot)
    return snapshot


# --- Real records -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RECORD_NAMES)
def test_real_snapshot_invariants(name: str) -> None:
    snapshot = normalize(real_record(name))
    check_snapshot(snapshot)
    check_plain_form(real_record(name), snapshot)


@PROPERTY
@given(name=st.sampled_from(RECORD_NAMES), rnd=RANDOMS)
def test_shuffling_keys_and_unordered_lists_changes_nothing(name: str, rnd: random.Random) -> None:
    original = normalize(real_record(name))

    churned = normalize(shuffled(real_record(name), rnd))

    assert churned == original
    assert content_hash(churned) == content_hash(original)
    assert diff(original, churned) == []


@PROPERTY
@given(name=st.sampled_from(RECORD_NAMES), rnd=RANDOMS)
def test_text_reformatting_changes_nothing(name: str, rnd: random.Random) -> None:
    original = normalize(real_record(name))

    churned = normalize(reformatted(real_record(name), rnd))

    assert churned == original
    assert content_hash(churned) == content_hash(original)


@PROPERTY
@given(data=st.data(), name=st.sampled_from(RECORD_NAMES))
def test_mutilated_real_records_give_a_snapshot_or_record_error(
    data: st.DataObject, name: str
) -> None:
    record: Any = real_record(name)
    original = normalize(record)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        paths = [p for p in _protocol_paths(name) if _exists(record, p)]
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="path")
        new = data.draw(st.just(_DELETE) | _JUNK, label="value")
        record = mutated(record, path, new)

    snapshot = normalize_or_record_error(record)

    if snapshot is not None:
        check_snapshot(snapshot)
        # nct_id is not compared by diff: a mutilated id is not a change of the trial.
        comparable = dataclasses.replace(snapshot, nct_id=original.nct_id)
        same = without_geo(comparable) == without_geo(original)
        assert (diff(original, comparable) == []) == same


def _exists(value: Any, path: Path_) -> bool:
    for part in path:
        in_dict = isinstance(value, dict) and part in value
        in_list = isinstance(value, list) and isinstance(part, int) and part < len(value)
        if not (in_dict or in_list):
            return False
        value = value[part]
    return True


@PROPERTY
@given(record=_JUNK)
def test_any_json_value_gives_a_snapshot_or_record_error(record: Any) -> None:
    assert normalize_or_record_error(record) is None  # no junk is a study


# --- Generated records --------------------------------------------------------------------------


@PROPERTY
@given(record=STUDY_RECORDS)
def test_generated_snapshot_invariants(record: dict[str, Any]) -> None:
    snapshot = normalize(record)
    check_snapshot(snapshot)
    check_plain_form(record, snapshot)


@PROPERTY
@given(record=STUDY_RECORDS, rnd=RANDOMS)
def test_generated_records_survive_churn(record: dict[str, Any], rnd: random.Random) -> None:
    snapshot = normalize(record)

    assert normalize(shuffled(record, rnd)) == snapshot
    assert normalize(reformatted(record, rnd)) == snapshot


@PROPERTY
@given(data=st.data(), record=STUDY_RECORDS)
def test_mutilated_generated_records_give_a_snapshot_or_record_error(
    data: st.DataObject, record: dict[str, Any]
) -> None:
    mutilated: Any = record
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        paths = all_paths(mutilated)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="path")
        mutilated = mutated(mutilated, path, data.draw(st.just(_DELETE) | _JUNK, label="value"))

    snapshot = normalize_or_record_error(mutilated)

    if snapshot is not None:
        check_snapshot(snapshot)


@PROPERTY
@given(data=st.data(), old=STUDY_RECORDS, new=STUDY_RECORDS)
def test_diff_is_empty_exactly_when_snapshots_are_equal(
    data: st.DataObject, old: dict[str, Any], new: dict[str, Any]
) -> None:
    # Share most of the record so that equal and nearly equal snapshots are common.
    shared = data.draw(st.sets(st.sampled_from([*MODULES, "statusModule", "hasResults"])))
    new = {**new, "protocolSection": dict(new["protocolSection"])}
    new["protocolSection"]["identificationModule"] = old["protocolSection"]["identificationModule"]
    for key in shared:
        source, target = (
            (old, new) if key == "hasResults" else (old["protocolSection"], new["protocolSection"])
        )
        if key in source:
            target[key] = source[key]
        else:
            target.pop(key, None)
    a, b = normalize(old), normalize(new)

    forward, backward = diff(a, b), diff(b, a)

    event("site corrected" if any("corrected" in c.summary for c in forward) else "no correction")
    assert (a == b) == (content_hash(a) == content_hash(b))
    # Geo points are kept to match sites but are never a change by themselves.
    assert (forward == []) == (without_geo(a) == without_geo(b))
    assert len(forward) == len(backward)
    # The same items are paired both ways round (a corrected site is named by its new name, so
    # compare what changed, not the names).
    swap = {ChangeKind.ADDED: ChangeKind.REMOVED, ChangeKind.REMOVED: ChangeKind.ADDED}
    assert sorted((c.field, swap.get(c.kind, c.kind), _sides(c)) for c in forward) == sorted(
        (c.field, c.kind, _sides(c)) for c in backward
    )
    assert [c.severity for c in forward] == sorted((c.severity for c in forward), reverse=True)
    assert headline(forward) == (forward[0] if forward else None)
    for c in forward:
        assert c.summary
        assert "\n" not in c.summary
        assert json.loads(json.dumps([c.old, c.new])) == [c.old, c.new]


def _sides(change: FieldChange) -> tuple[str, ...]:
    return tuple(sorted(json.dumps(side, sort_keys=True) for side in (change.old, change.new)))


def without_geo(snapshot: Snapshot) -> Snapshot:
    sites = tuple(
        dataclasses.replace(site, latitude=None, longitude=None) for site in snapshot.locations
    )
    return dataclasses.replace(snapshot, locations=sites)


# --- Unreadable parts ---------------------------------------------------------------------------

ESSENTIAL: list[Path_] = [
    ("protocolSection", "identificationModule", "nctId"),
    ("protocolSection", "statusModule", "overallStatus"),
]


@cache
def _optional_paths(name: str) -> list[Path_]:
    """Every path of a real record except the essentials, what holds them and what they hold."""
    return [
        path
        for path in _protocol_paths(name)
        if not any(e[: len(path)] == path or path[: len(e)] == e for e in ESSENTIAL)
    ]


def path_text(path: Path_) -> str:
    """``("a", "b", 0, "c")`` -> ``"a.b[0].c"``, as normalize writes paths."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


@PROPERTY
@given(data=st.data(), name=st.sampled_from(RECORD_NAMES))
def test_corrupting_an_optional_part_keeps_the_rest_of_the_snapshot(
    data: st.DataObject, name: str
) -> None:
    record = real_record(name)
    original = normalize(record)
    path = data.draw(st.sampled_from(_optional_paths(name)), label="path")
    value = data.draw(st.just(_DELETE) | _JUNK, label="value")

    snapshot = normalize(mutated(record, path, value))  # never raises

    check_snapshot(snapshot)
    where = path_text(path)
    scope, _ = unreadable_scope(where)
    event("unreadable" if snapshot.unreadable else "readable")
    # What is unreadable is exactly where the record was spoilt...
    assert all(p == where or p.startswith((f"{where}.", f"{where}[")) for p in snapshot.unreadable)
    # ...and only the fields read from there can differ: status and dates are kept.
    assert snapshot.overall_status == original.overall_status
    for field in dataclasses.fields(Snapshot):
        if field.name not in {*scope, "unreadable"}:
            assert getattr(snapshot, field.name) == getattr(original, field.name), field.name
    # diff claims nothing about the other fields either, both ways round.
    for change in [*diff(original, snapshot), *diff(snapshot, original)]:
        assert change.field in {*scope, "unreadable"}
