"""Eligibility: the criteria text read as criteria, what a protocol amendment changes, and the
registry's re-typing of the same list (bullets, numbers, reflowed lines, escapes) ignored."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.test_diff import BASE, change, only
from trialwatch.diff import diff
from trialwatch.eligibility import Criteria, criterion_key, split_criteria
from trialwatch.models import Category, Severity
from trialwatch.normalize import normalize

BOSTON = Path(__file__).parent / "data" / "selinexor" / "NCT03110562.json"
_P = "protocolSection."

TEXT = """Inclusion Criteria:

* Measurable multiple myeloma per IMWG criteria
* 1 to 3 prior anti-myeloma regimens
* ECOG performance status 0-2

Exclusion Criteria:

* Prior selinexor or other XPO1 inhibitor
* Grade 2 or higher peripheral neuropathy at baseline"""
READ = Criteria(
    inclusion=(
        "Measurable multiple myeloma per IMWG criteria",
        "1 to 3 prior anti-myeloma regimens",
        "ECOG performance status 0-2",
    ),
    exclusion=(
        "Prior selinexor or other XPO1 inhibitor",
        "Grade 2 or higher peripheral neuropathy at baseline",
    ),
)


def boston() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(BOSTON.read_text(encoding="utf-8"))
    return data


def with_criteria(text: str) -> dict[str, Any]:
    record = boston()
    record["protocolSection"]["eligibilityModule"]["eligibilityCriteria"] = text
    return record


# --- Reading the text ---------------------------------------------------------------------


def test_the_criteria_are_read_by_section() -> None:
    assert split_criteria(TEXT) == READ


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(TEXT.replace("* ", "- "), id="dashes"),
        pytest.param(TEXT.replace("* ", "• "), id="round-bullets"),
        pytest.param(TEXT.replace("* ", "\\* ").replace("\n\\* ", "\n* ", 1), id="escaped"),
        pytest.param(
            "Inclusion Criteria:\n1. Measurable multiple myeloma per IMWG criteria\n"
            "2. 1 to 3 prior anti-myeloma regimens\n3) ECOG performance status 0-2\n\n"
            "EXCLUSION CRITERIA\n\n(a) Prior selinexor or other XPO1 inhibitor\n"
            "b. Grade 2 or higher peripheral neuropathy at baseline",
            id="numbered-and-lettered",
        ),
        pytest.param(
            "**Inclusion Criteria:**\n\n  *  Measurable multiple myeloma\n     per IMWG criteria\n"
            "  *  1 to 3 prior anti-myeloma\n     regimens\n  *  ECOG performance status 0-2\n\n"
            "Key Exclusion Criteria:\n\n  -  Prior selinexor or other XPO1\n     inhibitor\n"
            "  -  Grade 2 or higher peripheral neuropathy at baseline  \n",
            id="reflowed-and-indented",
        ),
        pytest.param(TEXT.replace("\n", "\r\n"), id="crlf"),
        pytest.param(
            TEXT.replace("myeloma per", "myeloma  per").replace(" 0-2", " 0-2 "), id="spaces"
        ),
    ],
)
def test_the_same_list_typed_another_way_reads_the_same(text: str) -> None:
    record = normalize(with_criteria(text))

    assert (record.inclusion_criteria, record.exclusion_criteria) == READ[:2]
    assert diff(normalize(with_criteria(TEXT)), record) == []


def test_a_heading_with_text_on_its_line_and_prose_before_any_heading() -> None:
    text = (
        "Adults referred by their haematologist.\n\n"
        "Inclusion Criteria: patients who meet all of the following\n\n"
        "1. Age 18 or older\n\nExclusion criteria:\n\nNone"
    )

    assert split_criteria(text) == Criteria(
        inclusion=("patients who meet all of the following", "Age 18 or older"),
        exclusion=("None",),
        other=("Adults referred by their haematologist.",),
    )


def test_a_paragraph_after_a_blank_line_is_its_own_criterion_and_empty_items_are_dropped() -> None:
    text = "Inclusion Criteria:\n\nAsthmatics:\n\n* history of asthma\n*\n*  \n\nSmokers:\n* smoke"

    s = normalize(with_criteria(text))

    assert s.inclusion_criteria == ("Asthmatics:", "history of asthma", "Smokers:", "smoke")


def test_criteria_are_compared_without_case_or_end_punctuation() -> None:
    assert criterion_key("Prior XPO1 inhibitor;") == criterion_key("prior  XPO1 inhibitor.")
    assert criterion_key("Prior XPO1 inhibitor") != criterion_key("Prior XPO1 inhibitors")
    assert criterion_key("ＡＢＣ") == criterion_key("abc")  # full-width letters, as typed in Asia


@pytest.mark.parametrize("name", ["NCT00712335", "NCT05923281"])
def test_real_records_read_their_criteria(name: str) -> None:
    record = json.loads((Path(__file__).parent / "data" / "records" / f"{name}.json").read_text())

    s = normalize(record)

    assert len(s.inclusion_criteria) > 3 and len(s.exclusion_criteria) > 3
    assert s.other_criteria == ()
    assert all("\\" not in c and "\n" not in c for c in s.inclusion_criteria)


def test_boston_is_read_whole() -> None:
    s = normalize(boston())

    assert s.exclusion_criteria == (
        "Prior selinexor or other XPO1 inhibitor",
        "Bortezomib-refractory disease",
        "Grade 2 or higher peripheral neuropathy at baseline",
    )
    assert (s.sex, s.minimum_age, s.maximum_age, s.healthy_volunteers) == (
        "ALL",
        "18 Years",
        None,
        False,
    )
    assert (s.allocation, s.masking, s.collaborators) == ("RANDOMIZED", "NONE", ())


def test_collaborators_are_a_sorted_set_of_names() -> None:
    record = boston()
    record["protocolSection"]["sponsorCollaboratorsModule"]["collaborators"] = [
        {"name": "Stemline Therapeutics", "class": "INDUSTRY"},
        {"name": "Dana-Farber Cancer Institute", "class": "OTHER"},
        {"name": " Stemline  Therapeutics", "class": "INDUSTRY"},
    ]

    s = normalize(record)

    assert s.collaborators == ("Dana-Farber Cancer Institute", "Stemline Therapeutics")


@pytest.mark.parametrize(
    ("where", "value", "path", "lost"),
    [
        (
            ("eligibilityModule", "eligibilityCriteria"),
            ["not", "text"],
            "eligibilityModule.eligibilityCriteria",
            "inclusion criteria, exclusion criteria, eligibility criteria",
        ),
        (
            ("eligibilityModule", "healthyVolunteers"),
            "no",
            "eligibilityModule.healthyVolunteers",
            "healthy volunteers",
        ),
        (("eligibilityModule", "maximumAge"), 75, "eligibilityModule.maximumAge", "maximum age"),
        (("designModule", "designInfo"), "x", "designModule.designInfo", "allocation, masking"),
        (
            ("sponsorCollaboratorsModule", "collaborators"),
            [{"class": "OTHER"}],
            "sponsorCollaboratorsModule.collaborators[0].name",
            "one of the collaborators",
        ),
    ],
)
def test_an_unreadable_eligibility_part_is_unknown_not_changed(
    where: tuple[str, str], value: Any, path: str, lost: str
) -> None:
    record = boston()
    record["protocolSection"][where[0]][where[1]] = value
    good, bad = normalize(boston()), normalize(record)

    assert bad.unreadable == (_P + path,)
    assert [c.summary for c in diff(good, bad)] == [
        f"Could not read {lost}; not compared until it can be read ({_P}{path})"
    ]


# --- What an amendment says -----------------------------------------------------------------


def test_an_exclusion_criterion_added_is_one_major_eligibility_change() -> None:
    amended = boston()
    eligibility = amended["protocolSection"]["eligibilityModule"]
    eligibility["eligibilityCriteria"] += "\n* Prior XPO1 inhibitor"
    eligibility["maximumAge"] = "75 Years"

    changes = diff(normalize(boston()), normalize(amended))

    assert [(c.field, c.category, c.severity, c.summary) for c in changes] == [
        (
            "exclusion_criteria",
            Category.ELIGIBILITY,
            Severity.MAJOR,
            "Exclusion criteria: 1 added: “Prior XPO1 inhibitor”",
        ),
        ("maximum_age", Category.ELIGIBILITY, Severity.MAJOR, "Maximum age: (none) → 75 Years"),
    ]
    assert changes[0].new[-1] == "Prior XPO1 inhibitor"


def test_several_criteria_added_and_removed_are_each_quoted_in_the_order_written() -> None:
    old = change(inclusion_criteria=("A", "B", "C", "C"))
    new = change(inclusion_criteria=("c", "E", "A", "D"))

    c = only(diff(old, new))

    assert c.summary == "Inclusion criteria: 2 added: “E”, “D”; 2 removed: “B”, “C”"
    assert (c.old, c.new) == (["A", "B", "C", "C"], ["c", "E", "A", "D"])


def test_a_long_criterion_is_cut_in_the_sentence_and_kept_whole_in_the_change() -> None:
    long = "Adequate organ function defined as " + "x" * 200
    c = only(diff(BASE, change(exclusion_criteria=(long,))))

    assert c.summary == f"Exclusion criteria: 1 added: “{long[:119]}…”"
    assert c.new == [long]


def test_a_reordered_or_recased_list_is_no_change() -> None:
    old = change(exclusion_criteria=("Pregnancy", "Prior XPO1 inhibitor;"))
    new = change(exclusion_criteria=("prior XPO1 inhibitor.", "pregnancy"))

    assert diff(old, new) == []


def test_an_amendment_of_every_eligibility_field_is_told_field_by_field() -> None:
    before = boston()
    after = copy.deepcopy(before)
    eligibility = after["protocolSection"]["eligibilityModule"]
    eligibility.update(sex="FEMALE", minimumAge="21 Years", healthyVolunteers=True)
    after["protocolSection"]["designModule"]["designInfo"]["maskingInfo"]["masking"] = "DOUBLE"

    changes = diff(normalize(before), normalize(after))

    assert [c.summary for c in changes] == [
        "Masking: None (open label) → Double",
        "Minimum age: 18 Years → 21 Years",
        "Sex: All → Female",
        "Healthy volunteers: No → Yes",
    ]


def test_a_criterion_written_twice_is_counted_twice() -> None:
    c = only(diff(BASE, change(exclusion_criteria=("Pregnancy", "Pregnancy"))))

    assert c.summary == "Exclusion criteria: 2 added: “Pregnancy”, “Pregnancy”"
