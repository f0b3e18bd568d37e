"""normalize(): real records, registry churn, text hygiene and malformed input."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import unicodedata
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trialwatch.diff import diff
from trialwatch.exceptions import RecordError
from trialwatch.models import Arm, Enrollment, Location, PartialDate, Reference, Snapshot
from trialwatch.normalize import (
    NORMALIZER_VERSION,
    canonical_json,
    content_hash,
    normalize,
    normalize_text,
    unreadable_scope,
)

RECORDS = Path(__file__).parent / "data" / "records"
# Snapshots as earlier normalizers stored them (canonical JSON), made from records/ by that code.
SNAPSHOTS = Path(__file__).parent / "data" / "snapshots"
RECORD_FILES = sorted(RECORDS.glob("NCT*.json"))  # page-example*.json are partial pages
CHURN_PAIRS = ["NCT05923112", "NCT05923281"]


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RECORDS / f"{name}.json").read_text(encoding="utf-8"))
    return data


def minimal(**status: Any) -> dict[str, Any]:
    return {
        "protocolSection": {
            "identificationModule": {"nctId": "NCT01234567"},
            "statusModule": {"overallStatus": "RECRUITING", **status},
        }
    }


# --- Real records -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", RECORD_FILES, ids=lambda p: p.stem)
def test_every_real_record_normalizes_and_round_trips(path: Path) -> None:
    snapshot = normalize(json.loads(path.read_text(encoding="utf-8")))

    assert snapshot.nct_id == path.stem.split(".")[0]
    assert snapshot.overall_status is not None
    assert Snapshot.from_dict(json.loads(canonical_json(snapshot))) == snapshot
    assert re.fullmatch(r"[0-9a-f]{64}", content_hash(snapshot))


def test_record_files_are_all_found() -> None:
    assert len(RECORD_FILES) == 13


def test_nct00712335_month_dates_and_results() -> None:
    s = normalize(load("NCT00712335"))

    assert s.start_date == PartialDate("2007-02", None)
    assert s.primary_completion_date == PartialDate("2011-05", "ACTUAL")
    assert s.completion_date == PartialDate("2011-05", "ACTUAL")
    assert s.enrollment == Enrollment(105, "ACTUAL")
    assert s.phases == ("PHASE4",)
    assert s.has_results is True
    assert s.results_first_posted == "2012-05-16"
    assert s.last_update_posted == "2012-05-16"
    assert s.lead_sponsor == "Inje University"
    assert s.conditions == ("Asthmatic Smokers", "Non-asthmatic Smokers")
    assert [a.label for a in s.arms] == ["1", "2", "3", "4", "5"]
    assert s.arms[0].intervention_names == ("Drug: Fluticasone Propionate", "Drug: Salmeterol")
    assert s.arms[4] == Arm("5", "NO_INTERVENTION", "Normal controls", ())
    # "...combination therapy:\n\nFluticasone..." is one line of text now.
    assert s.arms[0].description is not None
    assert s.arms[0].description.startswith(
        "Asthmatic smokers treated with combination therapy: Flu"
    )
    assert s.locations == (
        Location(
            "Asthma and Allergy Center, Inje University Sanggye Paik Hospital",
            "Seoul",
            None,
            "South Korea",
            None,
            37.566,
            126.9784,
        ),
    )
    assert s.references == ()


def test_nct01339377_date_without_type_and_escapes() -> None:
    s = normalize(load("NCT01339377"))

    assert s.start_date == PartialDate("2011-08", None)
    assert s.start_date.type is None
    assert s.primary_completion_date == PartialDate("2016-04", "ACTUAL")
    assert s.has_results is False
    assert s.results_first_posted is None
    assert s.conditions == ("Disk, Herniated",)
    # Sites sorted by facility, not in registry order (Vancouver, London, Toronto).
    assert [loc.city for loc in s.locations] == ["Toronto", "London", "Vancouver"]
    # References without a PMID sort first; "Pellicanò" kept as NFC.
    assert s.references[0] == Reference(
        None,
        "BACKGROUND",
        "Mixter WJ, Barr JS. Rupture of the intervertebral disc with involvement of the spinal "
        "canal. N Engl J Med 211:210-215, 1934.",
    )
    assert any(r.pmid == "20188591" for r in s.references)
    # "(p\\<0.05)" in the markdown export is "(p<0.05)" to a reader.
    description = s.primary_outcomes[0].description
    assert description is not None
    assert "(p<0.05)" in description
    assert "\\" not in canonical_json(s)


def test_nct05915845_unknown_status_keeps_last_known_status() -> None:
    s = normalize(load("NCT05915845"))

    assert s.overall_status == "UNKNOWN"
    assert s.last_known_status == "RECRUITING"
    assert s.locations == (
        Location(
            "Laeeque Rafiq Hospital",
            "Lar",
            "Punjab Province",
            "Pakistan",
            "RECRUITING",
            latitude=32.95861,
            longitude=73.88235,
        ),
    )


def test_sites_keep_their_geo_point() -> None:
    record = minimal()
    record["protocolSection"]["contactsLocationsModule"] = {
        "locations": [
            {"facility": "A", "geoPoint": {"lat": 30, "lon": -120.5}},
            {"facility": "B", "geoPoint": None},
            {"facility": "C"},
        ]
    }

    s = normalize(record)

    assert [(x.facility, x.latitude, x.longitude) for x in s.locations] == [
        ("A", 30.0, -120.5),
        ("B", None, None),
        ("C", None, None),
    ]
    assert isinstance(s.locations[0].latitude, float)  # 30 and 30.0 hash alike
    assert s.unreadable == ()


@pytest.mark.parametrize(
    ("name", "status", "why_stopped"),
    [
        (
            "NCT01213277",
            "SUSPENDED",
            "a pilot study of 7 patients did not reveal a temperature dependent difference in "
            "glycation rates",
        ),
        ("NCT05420714", "WITHDRAWN", "Change in study design to quality improvement"),
        ("NCT04650945", "TERMINATED", "Staff shortage"),
    ],
)
def test_stopped_trials_say_why(name: str, status: str, why_stopped: str) -> None:
    s = normalize(load(name))

    assert s.overall_status == status
    assert s.why_stopped == why_stopped


def test_nct05420714_withdrawn_with_zero_actual_enrollment() -> None:
    s = normalize(load("NCT05420714"))

    assert s.enrollment == Enrollment(0, "ACTUAL")
    assert s.start_date == PartialDate("2022-08", "ESTIMATED")


@pytest.mark.parametrize(
    ("name", "first_posted"),
    [("NCT02967393", "2018-04-23"), ("NCT00712335", "2012-05-16"), ("NCT04544683", "2024-04-10")],
)
def test_completed_trials_with_results(name: str, first_posted: str) -> None:
    s = normalize(load(name))

    assert s.overall_status == "COMPLETED"
    assert s.has_results is True
    assert s.results_first_posted == first_posted


def test_nct02300909_aliases_are_ignored() -> None:
    record = load("NCT02300909")
    assert "nctIdAliases" in record["protocolSection"]["identificationModule"]

    s = normalize(record)

    assert s.nct_id == "NCT02300909"
    assert s.locations[0].state == "New York"


def test_observational_study_has_no_phases_or_arms() -> None:
    s = normalize(load("NCT05923112"))

    assert s.study_type == "OBSERVATIONAL"
    assert s.phases == ()
    assert s.arms == ()
    assert s.enrollment == Enrollment(200, "ESTIMATED")


# --- Registry churn ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", CHURN_PAIRS)
def test_one_day_of_registry_churn_changes_nothing(name: str) -> None:
    earlier = load(f"{name}.versionHolder-2023-06-28")
    later = load(name)
    assert earlier != later  # the raw records do differ

    assert normalize(earlier) == normalize(later)
    assert content_hash(normalize(earlier)) == content_hash(normalize(later))
    assert canonical_json(normalize(earlier)) == canonical_json(normalize(later))


@pytest.mark.parametrize("path", RECORD_FILES, ids=lambda p: p.stem)
def test_what_the_client_requests_gives_the_same_snapshot(path: Path) -> None:
    full = json.loads(path.read_text(encoding="utf-8"))
    requested = {"protocolSection": full["protocolSection"], "hasResults": full["hasResults"]}

    assert normalize(requested) == normalize(full)


def test_posting_date_type_flip_and_unknown_keys_are_ignored() -> None:
    record = load("NCT05923281")
    before = normalize(record)
    status = record["protocolSection"]["statusModule"]
    status["lastUpdatePostDateStruct"]["type"] = "ESTIMATED"
    status["studyFirstPostDateStruct"]["type"] = "ESTIMATED"
    status["someFutureField"] = {"nested": [1, 2]}
    record["protocolSection"]["brandNewModule"] = {"x": 1}
    record["derivedSection"] = {"anything": "goes"}
    record["documentSection"] = []

    assert normalize(record) == before


def test_reordered_lists_and_keys_give_the_same_snapshot() -> None:
    record = load("NCT00712335")
    before = normalize(record)
    arms = record["protocolSection"]["armsInterventionsModule"]
    arms["armGroups"].reverse()
    for group in arms["armGroups"]:
        group.get("interventionNames", []).reverse()
    arms["interventions"].reverse()
    record["protocolSection"]["outcomesModule"]["secondaryOutcomes"].reverse()
    record["protocolSection"]["conditionsModule"]["conditions"].reverse()
    record["protocolSection"] = dict(reversed(record["protocolSection"].items()))

    assert normalize(record) == before
    assert content_hash(normalize(record)) == content_hash(before)


def test_markup_reformatting_is_not_a_change() -> None:
    plain = load("NCT01339377")
    reformatted = copy.deepcopy(plain)
    outcome = reformatted["protocolSection"]["outcomesModule"]["primaryOutcomes"][0]
    outcome["description"] = "  " + outcome["description"].replace(" ", "\n\n", 3) + "\n"
    outcome["measure"] = outcome["measure"].replace(":", "\\:")

    assert normalize(reformatted) == normalize(plain)


def test_unordered_lists_are_deduplicated_and_sorted() -> None:
    record = minimal()
    record["protocolSection"]["designModule"] = {"phases": ["PHASE3", "PHASE2", "PHASE3"]}
    record["protocolSection"]["conditionsModule"] = {"conditions": ["B", "A", "B", " A "]}

    s = normalize(record)

    assert s.phases == ("PHASE2", "PHASE3")
    assert s.conditions == ("A", "B")


def test_unknown_phase_is_kept_after_known_ones() -> None:
    record = minimal()
    record["protocolSection"]["designModule"] = {"phases": ["PHASE5", "NA", "EARLY_PHASE1"]}

    assert normalize(record).phases == ("NA", "EARLY_PHASE1", "PHASE5")


def test_duplicate_sites_are_all_kept() -> None:
    site = {"facility": "Research Site", "city": "Seoul", "country": "Korea, Republic of"}
    record = minimal()
    record["protocolSection"]["contactsLocationsModule"] = {
        "locations": [site, {**site, "status": "RECRUITING"}, site]
    }

    s = normalize(record)

    assert len(s.locations) == 3
    assert [loc.status for loc in s.locations] == [None, None, "RECRUITING"]


def test_minimal_record_has_empty_defaults() -> None:
    s = normalize(minimal())

    assert s == Snapshot(nct_id="NCT01234567", overall_status="RECRUITING")


def test_nulls_in_optional_places_read_as_missing() -> None:
    record = minimal(whyStopped=None, startDateStruct=None, lastUpdatePostDateStruct={"date": None})
    record["hasResults"] = None
    record["protocolSection"]["designModule"] = None
    record["protocolSection"]["armsInterventionsModule"] = {"armGroups": None}

    assert normalize(record) == Snapshot(nct_id="NCT01234567", overall_status="RECRUITING")


def test_enrollment_without_type() -> None:
    record = minimal()
    record["protocolSection"]["designModule"] = {"enrollmentInfo": {"count": 12}}

    assert normalize(record).enrollment == Enrollment(12, None)


def test_an_enrollment_type_without_a_count_is_no_enrollment() -> None:
    """{"type": "ACTUAL"} alone says no number: the snapshot holds none, so a diff from a
    count to it says the count went, with the snapshot's own value (found by the A->B->C
    property of test_history_render)."""
    record = minimal()
    record["protocolSection"]["designModule"] = {"enrollmentInfo": {"type": "ACTUAL"}}
    counted = minimal()
    counted["protocolSection"]["designModule"] = {"enrollmentInfo": {"count": 12}}

    assert normalize(record).enrollment is None
    (change,) = diff(normalize(counted), normalize(record))
    assert (change.field, change.new) == ("enrollment", normalize(record).to_dict()["enrollment"])


# --- Text ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Overall   survival \n\n at 2 years ", "Overall survival at 2 years"),
        ("age \\> 18 and \\<65", "age > 18 and <65"),
        ("\\*bold\\* \\_x\\_ \\(a\\) \\[b\\] \\# \\& \\\\", "*bold* _x_ (a) [b] # & \\"),
        ("line one\\\nline two", "line one line two"),
        ("Pellicano\u0300", "Pellicanò"),  # NFD -> NFC
        ("tab\tand\u00a0nbsp", "tab and nbsp"),
        ("nul\x00here", "nulhere"),
        ("lone \ud800 surrogate", "lone \ufffd surrogate"),
        ("   ", None),
        ("", None),
        ("a\\b", "a\\b"),  # a backslash before a letter is not an escape
    ],
)
def test_normalize_text(raw: str, expected: str | None) -> None:
    assert normalize_text(raw) == expected


def _normalize_text_as_written(value: str) -> str | None:
    """normalize_text's rules one after the other, without its shortcuts."""
    text = unicodedata.normalize("NFC", re.sub("[\ud800-\udfff]", "\ufffd", value))
    text = re.sub(r"\\(?=[\r\n])", " ", text)
    text = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text)
    text = re.sub("[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]", "", text)
    return re.sub(r"\s+", " ", text).strip() or None


# Every character normalize_text treats in its own way, and some it leaves alone.
_TEXT_CHARS = st.sampled_from(
    list("ab Z09.,*<>[]`{}~!/:@-_\\\n\r\t\x0b\x0c\x1c\x1f\x00\x07\x1b\x7f\x84\x85\x86\x9f")
    + list("\xa0\u1680\u2028\u3000\u00e9\u0301\ud800\udfff\uff46\u212b")
)


@given(st.text(_TEXT_CHARS, max_size=16) | st.text(max_size=16))
def test_normalize_text_shortcuts_give_what_its_rules_give(value: str) -> None:
    # The fast paths (printable ASCII, no backslash, split() for \s+) are only shortcuts.
    assert normalize_text(value) == _normalize_text_as_written(value)


def test_empty_strings_become_none() -> None:
    record = minimal(whyStopped="  ")
    record["protocolSection"]["identificationModule"]["acronym"] = ""

    s = normalize(record)

    assert s.why_stopped is None
    assert s.acronym is None


# --- Hash ---------------------------------------------------------------------------------------


def test_canonical_json_is_compact_sorted_and_keeps_unicode() -> None:
    s = Snapshot(nct_id="NCT01234567", overall_status="RECRUITING", brief_title="Pellicanò")
    text = canonical_json(s)

    assert text.startswith('{"acronym":null,"allocation":null,"arms":[],"brief_title":"Pellicanò",')
    assert ": " not in text
    assert json.loads(text) == s.to_dict()


@pytest.mark.parametrize("name", ["NCT05923281", "NCT04650945"])
def test_snapshots_stored_by_version_1_still_load(name: str) -> None:
    stored = json.loads((SNAPSHOTS / f"v1-{name}.json").read_text(encoding="utf-8"))

    loaded = Snapshot.from_dict(stored)

    # Version 2 added Snapshot.unreadable and the sites' geo points; they take their defaults.
    current = _without_v3_fields(normalize(load(name)))
    assert loaded.unreadable == ()
    assert all(site.latitude is site.longitude is None for site in loaded.locations)
    assert loaded == dataclasses.replace(current, locations=_without_geo(current.locations))
    # So even without the silent re-baseline a new version gets, nobody would be told anything.
    assert diff(loaded, current) == []


@pytest.mark.parametrize("name", ["NCT05923281", "NCT04650945"])
def test_snapshots_stored_by_version_2_still_load(name: str) -> None:
    stored = json.loads((SNAPSHOTS / f"v2-{name}.json").read_text(encoding="utf-8"))

    loaded = Snapshot.from_dict(stored)

    # Version 3 added eligibility, collaborators, allocation and masking; they take their
    # defaults, and the re-baseline a version bump makes takes them in silently.
    assert NORMALIZER_VERSION == 3
    current = normalize(load(name))
    assert loaded == _without_v3_fields(current)
    assert current.inclusion_criteria and current.sex == "ALL" and current.minimum_age
    assert current.healthy_volunteers is False


_V3_FIELDS = (
    "allocation",
    "masking",
    "collaborators",
    "inclusion_criteria",
    "exclusion_criteria",
    "other_criteria",
    "sex",
    "minimum_age",
    "maximum_age",
    "healthy_volunteers",
)


def _without_v3_fields(snapshot: Snapshot) -> Snapshot:
    defaults = Snapshot(nct_id=snapshot.nct_id)
    return dataclasses.replace(snapshot, **{name: getattr(defaults, name) for name in _V3_FIELDS})


def _without_geo(sites: tuple[Location, ...]) -> tuple[Location, ...]:
    return tuple(dataclasses.replace(s, latitude=None, longitude=None) for s in sites)


def test_unknown_keys_are_ignored_when_loading_even_in_nested_values() -> None:
    stored = normalize(load("NCT05923281")).to_dict()
    stored["from_a_newer_normalizer"] = 1
    stored["locations"][0]["future"] = "x"
    stored["start_date"]["future"] = "x"

    assert Snapshot.from_dict(stored) == normalize(load("NCT05923281"))


def test_content_hash_depends_on_content_only() -> None:
    a = normalize(load("NCT05923281"))
    b = Snapshot.from_dict(dict(reversed(list(a.to_dict().items()))))

    assert content_hash(a) == content_hash(b)
    assert content_hash(a) != content_hash(Snapshot.from_dict({**a.to_dict(), "acronym": "K"}))


# --- Malformed records --------------------------------------------------------------------------


def _set(record: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set (or with ``...`` delete) a dotted path like ``protocolSection.statusModule.x``."""
    *parents, last = path.split(".")
    node: Any = record
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is ...:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return record


ESSENTIAL_CASES: list[tuple[str, Any, str]] = [
    ("protocolSection.statusModule.overallStatus", ..., "record has no statusModule.overallStatus"),
    (
        "protocolSection.statusModule.overallStatus",
        None,
        "record has no statusModule.overallStatus",
    ),
    ("protocolSection.statusModule.overallStatus", " ", "record has no statusModule.overallStatus"),
    ("protocolSection.statusModule", ..., "record has no statusModule.overallStatus"),
    (
        "protocolSection.statusModule",
        "RECRUITING",
        "protocolSection.statusModule: expected a JSON object, got 'RECRUITING'",
    ),
    (
        "protocolSection.statusModule.overallStatus",
        7,
        "protocolSection.statusModule.overallStatus: expected a string, got 7",
    ),
    ("protocolSection.identificationModule.nctId", ..., "record has no identificationModule.nctId"),
    ("protocolSection.identificationModule", ..., "record has no identificationModule.nctId"),
    (
        "protocolSection.identificationModule",
        [],
        "protocolSection.identificationModule: expected a JSON object, got a list",
    ),
    ("protocolSection", ..., "record has no identificationModule.nctId"),
    (
        "protocolSection.identificationModule.nctId",
        "NCT123",
        "protocolSection.identificationModule.nctId: expected an NCT number like NCT01234567, "
        "got 'NCT123'",
    ),
    (
        "protocolSection.identificationModule.nctId",
        "NCT05923281\n",
        "identificationModule.nctId: expected an NCT number",
    ),
    ("protocolSection", [], "protocolSection: expected a JSON object, got a list"),
]


@pytest.mark.parametrize(("path", "value", "message"), ESSENTIAL_CASES)
def test_without_nct_id_or_overall_status_the_record_raises_record_error(
    path: str, value: Any, message: str
) -> None:
    record = _set(load("NCT05923281"), path, value)

    with pytest.raises(RecordError, match=re.escape(message)):
        normalize(record)


_P = "protocolSection"
# (where to put what, the path normalize reports as unreadable)
UNREADABLE_CASES: list[tuple[str, Any, str]] = [
    (f"{_P}.designModule.enrollmentInfo.count", "abc", f"{_P}.designModule.enrollmentInfo.count"),
    (f"{_P}.designModule.enrollmentInfo.count", "120", f"{_P}.designModule.enrollmentInfo.count"),
    (f"{_P}.designModule.enrollmentInfo.count", True, f"{_P}.designModule.enrollmentInfo.count"),
    (f"{_P}.designModule.enrollmentInfo.count", -1, f"{_P}.designModule.enrollmentInfo.count"),
    (f"{_P}.designModule.enrollmentInfo", 200, f"{_P}.designModule.enrollmentInfo"),
    (f"{_P}.designModule", "x", f"{_P}.designModule"),
    (f"{_P}.identificationModule.briefTitle", 1.5, f"{_P}.identificationModule.briefTitle"),
    (f"{_P}.statusModule.startDateStruct", "2023-05-01", f"{_P}.statusModule.startDateStruct"),
    (
        f"{_P}.statusModule.startDateStruct.date",
        "May 2023",
        f"{_P}.statusModule.startDateStruct.date",
    ),
    (
        f"{_P}.statusModule.completionDateStruct.date",
        "2024-13-01",
        f"{_P}.statusModule.completionDateStruct.date",
    ),
    (
        f"{_P}.statusModule.lastUpdatePostDateStruct.date",
        20230628,
        f"{_P}.statusModule.lastUpdatePostDateStruct.date",
    ),
    (f"{_P}.statusModule.startDateStruct.type", 1, f"{_P}.statusModule.startDateStruct.type"),
    (f"{_P}.statusModule.whyStopped", ["x" * 500], f"{_P}.statusModule.whyStopped"),
    ("hasResults", "false", "hasResults"),
    (f"{_P}.designModule.phases", "PHASE3", f"{_P}.designModule.phases"),
    (f"{_P}.designModule.phases.0", {"phase": 3}, f"{_P}.designModule.phases[0]"),
    (
        f"{_P}.armsInterventionsModule.armGroups.1",
        None,
        f"{_P}.armsInterventionsModule.armGroups[1]",
    ),
    (
        f"{_P}.armsInterventionsModule.armGroups.0.label",
        ...,
        f"{_P}.armsInterventionsModule.armGroups[0].label",
    ),
    (
        f"{_P}.armsInterventionsModule.armGroups.0.interventionNames.0",
        7,
        f"{_P}.armsInterventionsModule.armGroups[0].interventionNames[0]",
    ),
    (
        f"{_P}.armsInterventionsModule.interventions.2.name",
        ["x"],
        f"{_P}.armsInterventionsModule.interventions[2].name",
    ),
    (
        f"{_P}.outcomesModule.primaryOutcomes.0.measure",
        "",
        f"{_P}.outcomesModule.primaryOutcomes[0].measure",
    ),
    (
        f"{_P}.outcomesModule.secondaryOutcomes.0.measure",
        None,
        f"{_P}.outcomesModule.secondaryOutcomes[0].measure",
    ),
    (f"{_P}.outcomesModule", [], f"{_P}.outcomesModule"),
    (
        f"{_P}.contactsLocationsModule.locations.3.status",
        False,
        f"{_P}.contactsLocationsModule.locations[3].status",
    ),
    (
        f"{_P}.contactsLocationsModule.locations.3",
        "Tokyo",
        f"{_P}.contactsLocationsModule.locations[3]",
    ),
    (
        f"{_P}.contactsLocationsModule.locations",
        {"a": 1},
        f"{_P}.contactsLocationsModule.locations",
    ),
    (
        f"{_P}.contactsLocationsModule.locations.3.geoPoint",
        "35.6,139.7",
        f"{_P}.contactsLocationsModule.locations[3].geoPoint",
    ),
    (
        f"{_P}.contactsLocationsModule.locations.3.geoPoint.lat",
        "35.6",
        f"{_P}.contactsLocationsModule.locations[3].geoPoint.lat",
    ),
    (
        f"{_P}.contactsLocationsModule.locations.3.geoPoint.lon",
        ...,
        f"{_P}.contactsLocationsModule.locations[3].geoPoint.lon",
    ),
    (
        f"{_P}.contactsLocationsModule.locations.3.geoPoint.lat",
        float("nan"),
        f"{_P}.contactsLocationsModule.locations[3].geoPoint.lat",
    ),
    (
        f"{_P}.contactsLocationsModule.locations.3.geoPoint.lon",
        181,
        f"{_P}.contactsLocationsModule.locations[3].geoPoint.lon",
    ),
    (
        f"{_P}.sponsorCollaboratorsModule.leadSponsor",
        "Kowa",
        f"{_P}.sponsorCollaboratorsModule.leadSponsor",
    ),
    (f"{_P}.conditionsModule.conditions", {"a": 1}, f"{_P}.conditionsModule.conditions"),
    (f"{_P}.conditionsModule.conditions.0", 3, f"{_P}.conditionsModule.conditions[0]"),
]


@pytest.mark.parametrize(("path", "value", "unreadable"), UNREADABLE_CASES)
def test_a_malformed_optional_part_is_unreadable_and_the_rest_is_read(
    path: str, value: Any, unreadable: str
) -> None:
    original = normalize(load("NCT05923281"))

    snapshot = normalize(_set(load("NCT05923281"), path, value))

    assert snapshot.unreadable == (unreadable,)
    fields, one_item = unreadable_scope(unreadable)
    assert fields
    for field in dataclasses.fields(Snapshot):
        before, after = getattr(original, field.name), getattr(snapshot, field.name)
        if field.name == "unreadable":
            continue
        if field.name not in fields:
            assert after == before, field.name
        elif one_item:  # that one item is left out, the others are kept
            assert len(after) == len(before) - 1
            assert set(after) < set(before)
        else:  # the field is unknown, so it holds its default
            assert after == field.default, field.name


def test_terminated_record_with_an_outcome_without_measure_is_still_read() -> None:
    # Issue 11 item 9: this used to raise, so the termination was never reported.
    record = load("NCT04650945")
    record["protocolSection"]["outcomesModule"]["secondaryOutcomes"][0]["measure"] = None

    s = normalize(record)

    assert s.overall_status == "TERMINATED"
    assert s.why_stopped == "Staff shortage"
    assert s.completion_date == PartialDate("2022-11-16", "ACTUAL")
    assert s.unreadable == ("protocolSection.outcomesModule.secondaryOutcomes[0].measure",)
    assert len(s.secondary_outcomes) == len(normalize(load("NCT04650945")).secondary_outcomes) - 1


def _read_only(value: Any) -> Any:
    """The same JSON value made of other Mapping and Sequence types than dict and list."""
    if isinstance(value, dict):
        return MappingProxyType({key: _read_only(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(_read_only(item) for item in value)
    return value


@pytest.mark.parametrize("name", ["NCT05923281", "NCT04650945"])
def test_any_mapping_and_any_list_or_tuple_read_as_json_objects_and_arrays(name: str) -> None:
    # normalize takes a Mapping: dict and list have fast paths, other types the general one.
    record = load(name)
    outcomes = record["protocolSection"]["outcomesModule"]["primaryOutcomes"]
    assert len(outcomes) == 1
    outcomes.append("not an object")
    outcomes.append({"timeFrame": "no measure"})

    snapshot = normalize(_read_only(record))

    assert snapshot == normalize(record)
    assert snapshot.unreadable == (
        "protocolSection.outcomesModule.primaryOutcomes[1]",
        "protocolSection.outcomesModule.primaryOutcomes[2].measure",
    )


def test_several_unreadable_parts_are_all_listed_in_order() -> None:
    record = minimal(whyStopped=5, startDateStruct={"date": "soon"})
    record["hasResults"] = "yes"
    record["protocolSection"]["outcomesModule"] = {
        "primaryOutcomes": [{"measure": "A"}, {"timeFrame": "2 years"}, "B", {"measure": "C"}]
    }

    s = normalize(record)

    assert s.overall_status == "RECRUITING"
    assert [o.measure for o in s.primary_outcomes] == ["A", "C"]
    assert s.unreadable == (
        "hasResults",
        "protocolSection.outcomesModule.primaryOutcomes[1].measure",
        "protocolSection.outcomesModule.primaryOutcomes[2]",
        "protocolSection.statusModule.startDateStruct.date",
        "protocolSection.statusModule.whyStopped",
    )


@pytest.mark.parametrize(
    ("path", "scope"),
    [
        ("hasResults", (("has_results",), False)),
        (
            "protocolSection.designModule",
            (("enrollment", "phases", "study_type", "allocation", "masking"), False),
        ),
        ("protocolSection.designModule.phases[2]", (("phases",), False)),
        ("protocolSection.designModule.enrollmentInfo.count", (("enrollment",), False)),
        ("protocolSection.outcomesModule.secondaryOutcomes", (("secondary_outcomes",), False)),
        ("protocolSection.outcomesModule.secondaryOutcomes[3].x", (("secondary_outcomes",), True)),
        ("protocolSection.contactsLocationsModule.locations[0]", (("locations",), True)),
        (
            "protocolSection.designModule.enrollmentInfoX",
            (("enrollment", "phases", "study_type", "allocation", "masking"), False),
        ),
        ("protocolSection.somethingElse", ((), False)),
    ],
)
def test_unreadable_scope_names_the_fields_a_path_hides(
    path: str, scope: tuple[tuple[str, ...], bool]
) -> None:
    assert unreadable_scope(path) == scope


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (None, "record: expected a JSON object, got None"),
        ([], "record: expected a JSON object, got a list"),
        ("NCT01234567", "record: expected a JSON object, got 'NCT01234567'"),
        ({}, "record has no identificationModule.nctId"),
        ({"protocolSection": None}, "record has no identificationModule.nctId"),
        (10**5000, "record: expected a JSON object, got a very large integer"),
    ],
    ids=["none", "list", "string", "empty", "null-protocol", "huge-int"],
)
def test_records_that_are_not_study_objects(record: Any, message: str) -> None:
    with pytest.raises(RecordError, match=re.escape(message)):
        normalize(record)


def test_long_values_are_shortened_in_messages() -> None:
    record = minimal(overallStatus=123)
    with pytest.raises(RecordError, match=r"overallStatus: expected a string, got 123$"):
        normalize(record)
    record = minimal(overallStatus=["x" * 500])
    with pytest.raises(RecordError, match=r"overallStatus: expected a string, got a list$"):
        normalize(record)
    record = minimal()
    record["protocolSection"]["identificationModule"]["nctId"] = "9" * 500
    with pytest.raises(RecordError) as caught:
        normalize(record)
    assert len(str(caught.value)) < 200


def test_record_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"statusModule\.overallStatus"):
        normalize({"protocolSection": {"identificationModule": {"nctId": "NCT01234567"}}})


def test_canonical_bytes_are_what_json_dumps_made_so_stored_hashes_hold() -> None:
    """orjson makes the canonical text now; every stored hash was made from json.dumps."""
    import json as json_module

    from tests.conftest import RECORDS, SELINEXOR
    from trialwatch.normalize import canonical_bytes

    for path in [*RECORDS.glob("NCT*.json"), *SELINEXOR.glob("NCT*.json")]:
        snapshot = normalize(json_module.loads(path.read_text(encoding="utf-8")))
        expected = json_module.dumps(
            snapshot.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        assert canonical_bytes(snapshot) == expected.encode("utf-8"), path.name


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
        ),
        max_leaves=12,
    )
)
def test_orjson_and_json_agree_on_any_plain_value(value: Any) -> None:
    import json as json_module

    import orjson

    expected = json_module.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    try:
        made = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # lone surrogates: orjson refuses them; normalize never keeps one
        assert any(0xD800 <= ord(c) <= 0xDFFF for c in expected)
        return
    assert made == expected.encode("utf-8")


# --- Parts no other test read (issue 24) -------------------------------------------------------


def test_the_acronym_is_read() -> None:
    record = minimal()
    record["protocolSection"]["identificationModule"]["acronym"] = " BOSTON "

    assert normalize(record).acronym == "BOSTON"


def test_a_null_inside_the_conditions_list_is_skipped_and_the_rest_kept() -> None:
    # A null item says nothing; the conditions after it must not read as removed.
    record = minimal()
    record["protocolSection"]["conditionsModule"] = {
        "conditions": ["Multiple Myeloma", None, "Amyloidosis", None, "Plasmacytoma"]
    }

    s = normalize(record)

    assert s.conditions == ("Amyloidosis", "Multiple Myeloma", "Plasmacytoma")
    assert s.unreadable == ()


_ID = "protocolSection.identificationModule.nctId"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (_ID, ..., "record has no identificationModule.nctId"),
        (
            "protocolSection.statusModule.overallStatus",
            ...,
            "record has no statusModule.overallStatus",
        ),
        (
            _ID,
            {"id": "NCT01234567"},
            f"{_ID}: expected an NCT number like NCT01234567, got a JSON object",
        ),
        (_ID, 2**63, f"{_ID}: expected an NCT number like NCT01234567, got {2**63}"),
        (_ID, 2**64, f"{_ID}: expected an NCT number like NCT01234567, got a very large integer"),
        (_ID, "N" * 78, f"{_ID}: expected an NCT number like NCT01234567, got '{'N' * 78}'"),
        (_ID, "N" * 79, f"{_ID}: expected an NCT number like NCT01234567, got '{'N' * 76}..."),
        (_ID, b"NCT01234567", f"{_ID}: expected an NCT number like NCT01234567, got a bytes"),
    ],
    ids=["no-id", "no-status", "object", "64-bit", "65-bit", "80-chars", "81-chars", "bytes"],
)
def test_record_error_says_exactly_what_is_wrong(path: str, value: Any, message: str) -> None:
    # The message is what an operator reads in the sync log for a record that was skipped.
    record = _set(load("NCT05923281"), path, value)

    with pytest.raises(RecordError) as caught:
        normalize(record)

    assert str(caught.value) == message


def test_eligibility_text_before_any_heading_is_kept_as_other_criteria() -> None:
    record = minimal()
    record["protocolSection"]["eligibilityModule"] = {
        "eligibilityCriteria": (
            "Adults with myelofibrosis\n\nInclusion Criteria:\n\n* Age 18 or older\n\n"
            "Exclusion Criteria:\n\n* Prior JAK inhibitor"
        )
    }

    s = normalize(record)

    assert s.other_criteria == ("Adults with myelofibrosis",)
    assert s.inclusion_criteria == ("Age 18 or older",)
    assert s.exclusion_criteria == ("Prior JAK inhibitor",)


def test_a_number_inside_the_conditions_list_is_unreadable_and_the_rest_kept() -> None:
    record = minimal()
    record["protocolSection"]["conditionsModule"] = {
        "conditions": ["Multiple Myeloma", 42, "Amyloidosis"]
    }

    s = normalize(record)

    assert s.conditions == ("Amyloidosis", "Multiple Myeloma")
    assert s.unreadable == ("protocolSection.conditionsModule.conditions[1]",)


def test_map_points_at_the_poles_and_the_date_line_are_read_and_beyond_them_not() -> None:
    record = minimal()
    record["protocolSection"]["contactsLocationsModule"] = {
        "locations": [
            {"facility": "Amundsen-Scott Station", "geoPoint": {"lat": -90, "lon": 180}},
            {"facility": "Nowhere", "geoPoint": {"lat": 90.5, "lon": 0}},
            {"facility": "Nowhere else", "geoPoint": {"lat": 0, "lon": -180.5}},
        ]
    }

    s = normalize(record)

    assert [(site.facility, site.latitude, site.longitude) for site in s.locations] == [
        ("Amundsen-Scott Station", -90.0, 180.0)
    ]
    assert s.unreadable == (
        "protocolSection.contactsLocationsModule.locations[1].geoPoint.lat",
        "protocolSection.contactsLocationsModule.locations[2].geoPoint.lon",
    )


def test_the_plain_form_lists_every_field_in_its_dataclass_order() -> None:
    """A sync stores normalized_dict's plain form; its list items sort by their values in
    order (as sort_key sorts the dataclasses), so each item's keys must be its dataclass's
    fields, in their order, and the snapshot's keys its fields."""
    from tests.conftest import RECORDS, SELINEXOR
    from trialwatch.models import _NESTED, _NESTED_LISTS  # the snapshot's nested fields
    from trialwatch.normalize import normalized_dict

    def names(cls: type[Any]) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    seen: set[str] = set()
    for path in [*RECORDS.glob("NCT*.json"), *SELINEXOR.glob("NCT*.json")]:
        plain = normalized_dict(json.loads(path.read_text(encoding="utf-8")))
        assert list(plain) == names(Snapshot), path.name
        for field, cls in _NESTED_LISTS.items():
            for item in plain[field]:
                assert list(item) == names(cls), (path.name, field)
                seen.add(field)
        for field, cls in _NESTED.items():
            if plain[field] is not None:
                assert list(plain[field]) == names(cls), (path.name, field)
                seen.add(field)
    assert seen == {*_NESTED_LISTS, *_NESTED}  # the records have every kind of item


def test_content_hashes_are_those_every_stored_trial_was_hashed_with() -> None:
    """The content hashes of the real and stand-in records as normalizer version 3 first made
    them (tests/data/snapshots/README.md): the snapshot's, and a sync's prepared record's."""
    from tests.conftest import RECORDS
    from trialwatch.normalize import NORMALIZER_VERSION
    from trialwatch.prepare import Prepared, prepare_one

    golden = json.loads((RECORDS.parent / "snapshots" / "content-hashes.json").read_text())
    assert golden["normalizer_version"] == NORMALIZER_VERSION, "bumped: write the hashes again"
    assert len(golden["content_hashes"]) == 26
    for name, expected in golden["content_hashes"].items():
        body = (RECORDS.parent / name).read_bytes()
        assert content_hash(normalize(json.loads(body))) == expected, name
        prepared = prepare_one(body)
        assert isinstance(prepared, Prepared), name
        assert prepared.digest == expected, name
