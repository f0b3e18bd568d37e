"""Every row of diff's rule table, pinned: category, severity and the sentence a reader gets.

Subscriptions filter on category and min_severity, so a row with the wrong one silently drops
or floods alerts. A field added to the table without a row here fails
``test_every_rule_has_its_expectations``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.test_diff import BASE, change
from trialwatch.diff import FIELD_ORDER, diff
from trialwatch.models import (
    Category,
    Enrollment,
    Intervention,
    Location,
    Outcome,
    PartialDate,
    Reference,
    Severity,
)

_P = "protocolSection."
_C, _S = Category, Severity


@dataclass(frozen=True)
class Row:
    """What one field of the table must say: its category, its label, where it is read from
    (for the "could not read" sentences; empty if it cannot be unreadable) and its cases,
    each (old, new, severity, summary)."""

    category: Category
    label: str
    path: str
    cases: tuple[tuple[dict[str, Any], dict[str, Any], Severity, str], ...]


MAYO = BASE.locations[0]
ROWS: dict[str, Row] = {
    "overall_status": Row(
        _C.STATUS,
        "Overall status",
        "",  # never unreadable: a record without it is refused whole
        (
            (
                {},
                {"overall_status": "COMPLETED"},
                _S.CRITICAL,
                "Overall status: Active, not recruiting → Completed",
            ),
            (
                {},
                {"overall_status": "RECRUITING"},
                _S.MAJOR,
                "Overall status: Active, not recruiting → Recruiting",
            ),
        ),
    ),
    "why_stopped": Row(
        _C.STATUS,
        "Why stopped",
        _P + "statusModule.whyStopped",
        (({}, {"why_stopped": "Funding"}, _S.MAJOR, "Why stopped: “Funding”"),),
    ),
    "has_results": Row(
        _C.RESULTS,
        "Results",
        "hasResults",
        (
            (
                {},
                {"has_results": True, "results_first_posted": "2026-10-01"},
                _S.CRITICAL,
                "Results posted (first posted 2026-10-01)",
            ),
            ({"has_results": True}, {}, _S.MAJOR, "Results are no longer posted"),
        ),
    ),
    "primary_completion_date": Row(
        _C.DATES,
        "Primary completion",
        _P + "statusModule.primaryCompletionDateStruct",
        (
            (
                {},
                {"primary_completion_date": PartialDate("2027-12", "ESTIMATED")},
                _S.MAJOR,
                "Primary completion slipped 6 months (2027-06 est. → 2027-12 est.)",
            ),
            (
                {},
                {"primary_completion_date": PartialDate("2027-06", "ACTUAL")},
                _S.MINOR,
                "Primary completion date is now actual (2027-06)",
            ),
        ),
    ),
    "completion_date": Row(
        _C.DATES,
        "Completion",
        _P + "statusModule.completionDateStruct",
        (
            (
                {},
                {"completion_date": PartialDate("2027-10", "ESTIMATED")},
                _S.MAJOR,
                "Completion slipped 1 month (2027-09 est. → 2027-10 est.)",
            ),
            (
                {},
                {"completion_date": PartialDate("2027-09", "ACTUAL")},
                _S.MINOR,
                "Completion date is now actual (2027-09)",
            ),
        ),
    ),
    "start_date": Row(
        _C.DATES,
        "Start date",
        _P + "statusModule.startDateStruct",
        (
            (
                {},
                {"start_date": PartialDate("2024-04-15", "ACTUAL")},
                _S.MAJOR,
                "Start date slipped 1 month (2024-03-15 actual → 2024-04-15 actual)",
            ),
            (
                {},
                {"start_date": PartialDate("2024-03-15", "ESTIMATED")},
                _S.MINOR,
                "Start date is now estimated (2024-03-15)",
            ),
        ),
    ),
    "enrollment": Row(
        _C.ENROLLMENT,
        "Enrollment",
        _P + "designModule.enrollmentInfo",
        (
            (
                {},
                {"enrollment": Enrollment(98, "ACTUAL")},
                _S.MAJOR,
                "Enrollment: 120 (est.) → 98 (actual)",
            ),
            (
                {},
                {"enrollment": Enrollment(120, "ACTUAL")},
                _S.MINOR,
                "Enrollment: 120 (est.) → 120 (actual)",
            ),
        ),
    ),
    "phases": Row(
        _C.DESIGN,
        "Phase",
        _P + "designModule.phases",
        (({}, {"phases": ("PHASE3",)}, _S.MAJOR, "Phase: Phase 2 → Phase 3"),),
    ),
    "study_type": Row(
        _C.DESIGN,
        "Study type",
        _P + "designModule.studyType",
        (
            (
                {},
                {"study_type": "OBSERVATIONAL"},
                _S.MAJOR,
                "Study type: Interventional → Observational",
            ),
        ),
    ),
    "allocation": Row(
        _C.DESIGN,
        "Allocation",
        _P + "designModule.designInfo.allocation",
        (
            ({}, {"allocation": "RANDOMIZED"}, _S.MAJOR, "Allocation: (none) → Randomized"),
            (
                {"allocation": "RANDOMIZED"},
                {"allocation": "NON_RANDOMIZED"},
                _S.MAJOR,
                "Allocation: Randomized → Non-randomized",
            ),
        ),
    ),
    "masking": Row(
        _C.DESIGN,
        "Masking",
        _P + "designModule.designInfo.maskingInfo",
        (
            (
                {"masking": "NONE"},
                {"masking": "DOUBLE"},
                _S.MAJOR,
                "Masking: None (open label) → Double",
            ),
        ),
    ),
    "inclusion_criteria": Row(
        _C.ELIGIBILITY,
        "Inclusion criteria",
        "",  # the three criteria fields are read from one text: see test_eligibility.py
        (
            (
                {"inclusion_criteria": ("Age ≥ 18 years", "ECOG 0-2")},
                {"inclusion_criteria": ("Age ≥ 16 years", "ECOG 0-2")},
                _S.MAJOR,
                "Inclusion criteria: 1 added: “Age ≥ 16 years”; 1 removed: “Age ≥ 18 years”",
            ),
        ),
    ),
    "exclusion_criteria": Row(
        _C.ELIGIBILITY,
        "Exclusion criteria",
        "",
        (
            (
                {},
                {"exclusion_criteria": ("Prior XPO1 inhibitor",)},
                _S.MAJOR,
                "Exclusion criteria: 1 added: “Prior XPO1 inhibitor”",
            ),
        ),
    ),
    "other_criteria": Row(
        _C.ELIGIBILITY,
        "Eligibility criteria",
        "",
        (
            (
                {"other_criteria": ("Adults with myelofibrosis", "No prior JAK inhibitor")},
                {"other_criteria": ("Adults with myelofibrosis",)},
                _S.MAJOR,
                "Eligibility criteria: 1 removed: “No prior JAK inhibitor”",
            ),
        ),
    ),
    "minimum_age": Row(
        _C.ELIGIBILITY,
        "Minimum age",
        _P + "eligibilityModule.minimumAge",
        (
            (
                {"minimum_age": "18 Years"},
                {"minimum_age": "16 Years"},
                _S.MAJOR,
                "Minimum age: 18 Years → 16 Years",
            ),
        ),
    ),
    "maximum_age": Row(
        _C.ELIGIBILITY,
        "Maximum age",
        _P + "eligibilityModule.maximumAge",
        (({}, {"maximum_age": "75 Years"}, _S.MAJOR, "Maximum age: (none) → 75 Years"),),
    ),
    "sex": Row(
        _C.ELIGIBILITY,
        "Sex",
        _P + "eligibilityModule.sex",
        (({"sex": "ALL"}, {"sex": "FEMALE"}, _S.MAJOR, "Sex: All → Female"),),
    ),
    "healthy_volunteers": Row(
        _C.ELIGIBILITY,
        "Healthy volunteers",
        _P + "eligibilityModule.healthyVolunteers",
        (
            (
                {"healthy_volunteers": False},
                {"healthy_volunteers": True},
                _S.MAJOR,
                "Healthy volunteers: No → Yes",
            ),
            ({}, {"healthy_volunteers": False}, _S.MAJOR, "Healthy volunteers: (none) → No"),
        ),
    ),
    "arms": Row(
        _C.DESIGN,
        "Arms",
        _P + "armsInterventionsModule.armGroups",
        (({}, {"arms": BASE.arms[:1]}, _S.MAJOR, "Arm removed: Selinexor 60 mg"),),
    ),
    "interventions": Row(
        _C.DESIGN,
        "Interventions",
        _P + "armsInterventionsModule.interventions",
        (
            (
                {},
                {"interventions": (*BASE.interventions, Intervention("Ruxolitinib", "DRUG"))},
                _S.MAJOR,
                "Intervention added: Drug: Ruxolitinib",
            ),
        ),
    ),
    "primary_outcomes": Row(
        _C.OUTCOMES,
        "Primary outcomes",
        _P + "outcomesModule.primaryOutcomes",
        (
            (
                {"start_date": PartialDate("2024-03-15", "ESTIMATED")},
                {
                    "start_date": PartialDate("2024-03-15", "ESTIMATED"),
                    "primary_outcomes": (Outcome("Overall survival", "3 years"),),
                },
                _S.MAJOR,
                "Primary outcome changed: Overall survival (time frame: 2 years → 3 years)",
            ),
            (
                # Once the study is under way (an actual start before), outcome switching.
                {},
                {"primary_outcomes": (Outcome("Overall survival", "3 years"),)},
                _S.MAJOR,
                "Primary outcome changed: Overall survival (time frame: 2 years → 3 years) "
                "(primary outcome changed after the study started)",
            ),
        ),
    ),
    "locations": Row(
        _C.SITES,
        "Sites",
        _P + "contactsLocationsModule.locations",
        (
            (
                {},
                {"locations": BASE.locations[1:]},
                _S.MAJOR,
                "Site removed: Mayo Clinic, Rochester, United States",
            ),
            (
                {},
                {
                    "locations": (
                        Location("Mayo Clinic", "Rochester", None, "United States", "COMPLETED"),
                        *BASE.locations[1:],
                    )
                },
                _S.MINOR,
                "Site Mayo Clinic, Rochester, United States: Recruiting → Completed",
            ),
        ),
    ),
    "lead_sponsor": Row(
        _C.ADMINISTRATIVE,
        "Lead sponsor",
        _P + "sponsorCollaboratorsModule.leadSponsor",
        (
            (
                {},
                {"lead_sponsor": "Stemline Therapeutics"},
                _S.MAJOR,
                "Lead sponsor: Karyopharm Therapeutics Inc → Stemline Therapeutics",
            ),
        ),
    ),
    "last_known_status": Row(
        _C.STATUS,
        "Last known status",
        _P + "statusModule.lastKnownStatus",
        (
            (
                {},
                {"last_known_status": "RECRUITING"},
                _S.MINOR,
                "Last known status: (none) → Recruiting",
            ),
        ),
    ),
    "results_first_posted": Row(
        _C.RESULTS,
        "Results first posted",
        _P + "statusModule.resultsFirstPostDateStruct",
        (
            (
                {"has_results": True, "results_first_posted": "2026-10-01"},
                {"has_results": True, "results_first_posted": "2026-10-03"},
                _S.MINOR,
                "Results first posted: 2026-10-01 → 2026-10-03",
            ),
        ),
    ),
    "secondary_outcomes": Row(
        _C.OUTCOMES,
        "Secondary outcomes",
        _P + "outcomesModule.secondaryOutcomes",
        (
            (
                {},
                {"secondary_outcomes": ()},
                _S.MINOR,
                "Secondary outcome removed: Spleen volume reduction",
            ),
        ),
    ),
    "conditions": Row(
        _C.DESIGN,
        "Conditions",
        _P + "conditionsModule.conditions",
        (({}, {"conditions": ("Anemia", "Myelofibrosis")}, _S.MINOR, "Condition added: Anemia"),),
    ),
    "collaborators": Row(
        _C.ADMINISTRATIVE,
        "Collaborators",
        _P + "sponsorCollaboratorsModule.collaborators",
        (
            (
                {},
                {"collaborators": ("Stemline Therapeutics",)},
                _S.MINOR,
                "Collaborator added: Stemline Therapeutics",
            ),
            (
                {"collaborators": ("Stemline Therapeutics",)},
                {},
                _S.MINOR,
                "Collaborator removed: Stemline Therapeutics",
            ),
        ),
    ),
    "brief_title": Row(
        _C.ADMINISTRATIVE,
        "Brief title",
        _P + "identificationModule.briefTitle",
        (
            (
                {},
                {"brief_title": "Selinexor for Myelofibrosis"},
                _S.MINOR,
                "Brief title: “Selinexor in Myelofibrosis” → “Selinexor for Myelofibrosis”",
            ),
        ),
    ),
    "official_title": Row(
        _C.ADMINISTRATIVE,
        "Official title",
        _P + "identificationModule.officialTitle",
        (
            (
                {},
                {"official_title": "A Phase 2 Study of Selinexor"},
                _S.MINOR,
                "Official title: (none) → “A Phase 2 Study of Selinexor”",
            ),
        ),
    ),
    "acronym": Row(
        _C.ADMINISTRATIVE,
        "Acronym",
        _P + "identificationModule.acronym",
        (({}, {"acronym": "SENTRY"}, _S.MINOR, "Acronym: (none) → SENTRY"),),
    ),
    "references": Row(
        _C.ADMINISTRATIVE,
        "References",
        _P + "referencesModule.references",
        (
            (
                {},
                {"references": (*BASE.references, Reference("87654321", "RESULT"))},
                _S.MINOR,
                "Reference added: PMID 87654321",
            ),
        ),
    ),
    "last_update_posted": Row(
        _C.ADMINISTRATIVE,
        "Last update posted",
        _P + "statusModule.lastUpdatePostDateStruct",
        (
            (
                {},
                {"last_update_posted": "2026-11-02"},
                _S.ADMIN,
                "Last update posted: 2026-10-01 → 2026-11-02",
            ),
        ),
    ),
    "unreadable": Row(
        _C.ADMINISTRATIVE,
        "Unreadable parts",
        "",
        (
            (
                {},
                {"unreadable": (_P + "identificationModule.acronym",)},
                _S.MINOR,
                "Could not read acronym; not compared until it can be read "
                f"({_P}identificationModule.acronym)",
            ),
        ),
    ),
}

CASES = [
    pytest.param(field, *case, id=f"{field}-{i}")
    for field, row in ROWS.items()
    for i, case in enumerate(row.cases)
]


def test_every_rule_has_its_expectations() -> None:
    assert list(ROWS) == list(FIELD_ORDER)


@pytest.mark.parametrize(("field", "old", "new", "severity", "summary"), CASES)
def test_rule(
    field: str, old: dict[str, Any], new: dict[str, Any], severity: Severity, summary: str
) -> None:
    changes = diff(change(**old), change(**new))

    assert [(c.field, c.category, c.severity, c.summary) for c in changes] == [
        (field, ROWS[field].category, severity, summary)
    ]


# A value shown when a field can be read again, for the fields that have one.
SHOWN = {
    "why_stopped": "(none)",
    "has_results": "not posted",
    "primary_completion_date": "2027-06 est.",
    "completion_date": "2027-09 est.",
    "start_date": "2024-03-15 actual",
    "enrollment": "120 (est.)",
    "phases": "Phase 2",
    "study_type": "Interventional",
    "allocation": "(none)",
    "masking": "(none)",
    "minimum_age": "(none)",
    "maximum_age": "(none)",
    "sex": "(none)",
    "healthy_volunteers": "(none)",
    "lead_sponsor": "Karyopharm Therapeutics Inc",
    "last_known_status": "(none)",
    "results_first_posted": "(none)",
    "brief_title": "“Selinexor in Myelofibrosis”",
    "official_title": "(none)",
    "acronym": "(none)",
    "last_update_posted": "2026-10-01",
}


@pytest.mark.parametrize("field", [f for f, row in ROWS.items() if row.path])
def test_rule_label_names_the_part_that_cannot_be_read(field: str) -> None:
    row = ROWS[field]
    hidden = change(unreadable=(row.path,))

    lost, back = diff(BASE, hidden), diff(hidden, BASE)

    name = row.label.lower()
    assert [(c.field, c.severity, c.summary) for c in lost] == [
        (
            "unreadable",
            Severity.MINOR,
            f"Could not read {name}; not compared until it can be read ({row.path})",
        )
    ]
    shown = f": {SHOWN[field]}" if field in SHOWN else ""
    assert [(c.field, c.severity, c.summary) for c in back] == [
        ("unreadable", Severity.MINOR, f"{row.label} can be read again{shown} ({row.path})")
    ]
