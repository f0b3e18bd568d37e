"""diff() and headline(): concrete sentences, severities and categories."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from trialwatch.diff import (
    FIELD_ORDER,
    ChangeCount,
    _one_fix_apart,
    change_count,
    counted,
    counts,
    diff,
    headline,
)
from trialwatch.models import (
    Arm,
    Category,
    ChangeKind,
    Enrollment,
    FieldChange,
    Intervention,
    Location,
    Outcome,
    PartialDate,
    Reference,
    Severity,
    Snapshot,
)
from trialwatch.normalize import normalize

RECORDS = Path(__file__).parent / "data" / "records"

BASE = Snapshot(
    nct_id="NCT01234567",
    brief_title="Selinexor in Myelofibrosis",
    overall_status="ACTIVE_NOT_RECRUITING",
    start_date=PartialDate("2024-03-15", "ACTUAL"),
    primary_completion_date=PartialDate("2027-06", "ESTIMATED"),
    completion_date=PartialDate("2027-09", "ESTIMATED"),
    enrollment=Enrollment(120, "ESTIMATED"),
    phases=("PHASE2",),
    study_type="INTERVENTIONAL",
    lead_sponsor="Karyopharm Therapeutics Inc",
    conditions=("Myelofibrosis",),
    interventions=(Intervention("Selinexor", "DRUG", "Oral tablet"),),
    arms=(
        Arm("Selinexor 40 mg", "EXPERIMENTAL", None, ("Drug: Selinexor",)),
        Arm("Selinexor 60 mg", "EXPERIMENTAL", None, ("Drug: Selinexor",)),
    ),
    primary_outcomes=(Outcome("Overall survival", "2 years"),),
    secondary_outcomes=(Outcome("Spleen volume reduction", "24 weeks"),),
    locations=(
        Location("Mayo Clinic", "Rochester", None, "United States", "RECRUITING"),
        Location("Research Site", "Seoul", None, "Korea, Republic of", "RECRUITING"),
        Location("Research Site", "Seoul", None, "Korea, Republic of", "COMPLETED"),
    ),
    references=(Reference("12345678", "BACKGROUND", "Smith J. A paper. 2020."),),
    last_update_posted="2026-10-01",
)


def change(**fields: Any) -> Snapshot:
    return dataclasses.replace(BASE, **fields)


def only(changes: list[FieldChange]) -> FieldChange:
    assert len(changes) == 1, changes
    return changes[0]


def load(name: str) -> Snapshot:
    return normalize(json.loads((RECORDS / f"{name}.json").read_text(encoding="utf-8")))


# --- Status -----------------------------------------------------------------------------------


def test_status_to_completed_is_critical() -> None:
    c = only(diff(BASE, change(overall_status="COMPLETED")))

    assert c.summary == "Overall status: Active, not recruiting → Completed"
    assert c.severity is Severity.CRITICAL
    assert c.category is Category.STATUS
    assert c.kind is ChangeKind.CHANGED
    assert (c.field, c.old, c.new, c.item_key) == (
        "overall_status",
        "ACTIVE_NOT_RECRUITING",
        "COMPLETED",
        None,
    )


def test_status_to_non_critical_status_is_major() -> None:
    c = only(diff(change(overall_status="NOT_YET_RECRUITING"), change(overall_status="RECRUITING")))

    assert c.summary == "Overall status: Not yet recruiting → Recruiting"
    assert c.severity is Severity.MAJOR


def test_why_stopped_and_last_known_status() -> None:
    c = only(diff(BASE, change(why_stopped="Sponsor decision")))
    assert c.summary == "Why stopped: “Sponsor decision”"
    assert (c.category, c.severity) == (Category.STATUS, Severity.MAJOR)

    c = only(diff(change(why_stopped="Funding"), change(why_stopped="Sponsor decision")))
    assert c.summary == "Why stopped: “Funding” → “Sponsor decision”"

    c = only(diff(BASE, change(last_known_status="RECRUITING")))
    assert c.summary == "Last known status: (none) → Recruiting"
    assert (c.category, c.severity) == (Category.STATUS, Severity.MINOR)


# --- Dates ------------------------------------------------------------------------------------


def test_primary_completion_slips_six_months() -> None:
    c = only(diff(BASE, change(primary_completion_date=PartialDate("2027-12", "ESTIMATED"))))

    assert c.summary == "Primary completion slipped 6 months (2027-06 est. → 2027-12 est.)"
    assert (c.category, c.severity, c.kind) == (Category.DATES, Severity.MAJOR, ChangeKind.CHANGED)
    assert c.old == {"date": "2027-06", "type": "ESTIMATED"}
    assert c.new == {"date": "2027-12", "type": "ESTIMATED"}


def test_completion_moves_earlier() -> None:
    c = only(diff(BASE, change(completion_date=PartialDate("2027-06", "ESTIMATED"))))

    assert c.summary == "Completion moved 3 months earlier (2027-09 est. → 2027-06 est.)"
    assert c.severity is Severity.MAJOR


def test_date_type_only_change_is_minor() -> None:
    old = change(primary_completion_date=PartialDate("2026-09", "ESTIMATED"))
    new = change(primary_completion_date=PartialDate("2026-09", "ACTUAL"))

    c = only(diff(old, new))

    assert c.summary == "Primary completion date is now actual (2026-09)"
    assert (c.category, c.severity) == (Category.DATES, Severity.MINOR)


def test_date_type_dropped() -> None:
    c = only(diff(BASE, change(start_date=PartialDate("2024-03-15", None))))

    assert c.summary == "Start date is no longer marked actual (2024-03-15)"
    assert c.severity is Severity.MINOR


def test_different_precision_shows_both_dates() -> None:
    old = change(start_date=PartialDate("2024", "ESTIMATED"))

    c = only(diff(old, BASE))

    assert c.summary == "Start date: 2024 est. → 2024-03-15 actual"
    assert c.severity is Severity.MAJOR


@pytest.mark.parametrize(
    ("before", "after", "summary"),
    [
        ("2024-03-15", "2024-03-27", "Start date slipped 12 days (2024-03-15 → 2024-03-27)"),
        ("2024-03-25", "2024-04-05", "Start date slipped 11 days (2024-03-25 → 2024-04-05)"),
        ("2024-04-05", "2024-03-25", "Start date moved 11 days earlier (2024-04-05 → 2024-03-25)"),
        ("2024-03-15", "2024-03-16", "Start date slipped 1 day (2024-03-15 → 2024-03-16)"),
        ("2024-03-15", "2024-04-15", "Start date slipped 1 month (2024-03-15 → 2024-04-15)"),
        ("2024-01-31", "2024-07-01", "Start date slipped 6 months (2024-01-31 → 2024-07-01)"),
        ("2024-11", "2025-02-10", "Start date slipped 3 months (2024-11 → 2025-02-10)"),
        ("2024-03", "2024-03-10", "Start date: 2024-03 → 2024-03-10"),
        ("2024-03", "2026-03", "Start date slipped 24 months (2024-03 → 2026-03)"),
        ("2024", "2025", "Start date: 2024 → 2025"),
        ("garbage", "2025-01", "Start date: garbage → 2025-01"),
    ],
)
def test_month_and_day_arithmetic(before: str, after: str, summary: str) -> None:
    old = change(start_date=PartialDate(before))
    new = change(start_date=PartialDate(after))

    assert only(diff(old, new)).summary == summary


def test_date_appears_and_disappears() -> None:
    c = only(diff(change(completion_date=None), BASE))
    assert c.summary == "Completion date: (none) → 2027-09 est."
    assert c.severity is Severity.MAJOR

    c = only(diff(BASE, change(completion_date=None)))
    assert c.summary == "Completion date: 2027-09 est. → (none)"


# --- Enrollment and results -------------------------------------------------------------------


def test_enrollment_count_change_is_major() -> None:
    c = only(diff(BASE, change(enrollment=Enrollment(98, "ACTUAL"))))

    assert c.summary == "Enrollment: 120 (est.) → 98 (actual)"
    assert (c.category, c.severity) == (Category.ENROLLMENT, Severity.MAJOR)
    assert c.new == {"count": 98, "type": "ACTUAL"}


def test_enrollment_type_only_change_is_minor() -> None:
    c = only(diff(BASE, change(enrollment=Enrollment(120, "ACTUAL"))))

    assert c.summary == "Enrollment: 120 (est.) → 120 (actual)"
    assert c.severity is Severity.MINOR


def test_results_posted_is_critical_and_says_the_date() -> None:
    c = only(diff(BASE, change(has_results=True, results_first_posted="2026-10-01")))

    assert c.summary == "Results posted (first posted 2026-10-01)"
    assert (c.field, c.category, c.severity) == ("has_results", Category.RESULTS, Severity.CRITICAL)
    assert (c.old, c.new) == (False, True)


def test_results_withdrawn_is_major() -> None:
    c = only(diff(change(has_results=True, results_first_posted="2026-10-01"), BASE))

    assert c.summary == "Results are no longer posted"
    assert c.severity is Severity.MAJOR


def test_results_first_posted_alone_is_minor() -> None:
    old = change(has_results=True, results_first_posted="2026-10-01")
    new = change(has_results=True, results_first_posted="2026-10-03")

    c = only(diff(old, new))

    assert c.summary == "Results first posted: 2026-10-01 → 2026-10-03"
    assert (c.category, c.severity) == (Category.RESULTS, Severity.MINOR)


# --- Design -----------------------------------------------------------------------------------


def test_phase_change() -> None:
    c = only(diff(BASE, change(phases=("PHASE2", "PHASE3"))))

    assert c.summary == "Phase: Phase 2 → Phase 2/Phase 3"
    assert (c.category, c.severity) == (Category.DESIGN, Severity.MAJOR)
    assert (c.old, c.new) == (["PHASE2"], ["PHASE2", "PHASE3"])


def test_phases_are_a_set() -> None:
    assert diff(change(phases=("PHASE3", "PHASE2")), change(phases=("PHASE2", "PHASE3"))) == []


def test_arm_removed() -> None:
    c = only(diff(BASE, change(arms=BASE.arms[:1])))

    assert c.summary == "Arm removed: Selinexor 60 mg"
    assert (c.category, c.severity, c.kind) == (Category.DESIGN, Severity.MAJOR, ChangeKind.REMOVED)
    assert c.item_key == "Selinexor 60 mg"
    assert c.old == {
        "label": "Selinexor 60 mg",
        "type": "EXPERIMENTAL",
        "description": None,
        "intervention_names": ["Drug: Selinexor"],
    }
    assert c.new is None


def test_arm_changed_lists_what_changed() -> None:
    arm = Arm("Selinexor 60 mg", "ACTIVE_COMPARATOR", None, ("Drug: Selinexor", "Drug: Rux"))

    c = only(diff(BASE, change(arms=(BASE.arms[0], arm))))

    assert c.summary == (
        "Arm changed: Selinexor 60 mg (type: Experimental → Active comparator; "
        "interventions: Drug: Selinexor → Drug: Rux, Drug: Selinexor)"
    )
    assert c.kind is ChangeKind.CHANGED


def test_arms_reordered_is_no_change() -> None:
    reordered = tuple(
        dataclasses.replace(a, intervention_names=tuple(reversed(a.intervention_names)))
        for a in reversed(BASE.arms)
    )

    assert diff(BASE, change(arms=reordered)) == []


def test_intervention_added_and_changed() -> None:
    new = change(
        interventions=(
            Intervention("Selinexor", "DRUG", "Oral tablet, 60 mg"),
            Intervention("Ruxolitinib", "DRUG"),
        )
    )

    changes = diff(BASE, new)

    assert [(c.kind, c.summary) for c in changes] == [
        (ChangeKind.ADDED, "Intervention added: Drug: Ruxolitinib"),
        (
            ChangeKind.CHANGED,
            "Intervention changed: Drug: Selinexor (description: Oral tablet → Oral tablet, 60 mg)",
        ),
    ]
    assert all(c.category is Category.DESIGN and c.severity is Severity.MAJOR for c in changes)


def test_study_type_and_conditions() -> None:
    c = only(diff(BASE, change(study_type="OBSERVATIONAL")))
    assert c.summary == "Study type: Interventional → Observational"
    assert (c.category, c.severity) == (Category.DESIGN, Severity.MAJOR)

    changes = diff(BASE, change(conditions=("Anemia", "Myelofibrosis", "Thrombocytopenia")))
    assert [c.summary for c in changes] == [
        "Condition added: Anemia",
        "Condition added: Thrombocytopenia",
    ]
    assert all(c.severity is Severity.MINOR and c.category is Category.DESIGN for c in changes)


# --- Outcomes ---------------------------------------------------------------------------------


def test_primary_outcome_time_frame_changed() -> None:
    c = only(diff(BASE, change(primary_outcomes=(Outcome("Overall survival", "3 years"),))))

    assert c.summary == (
        "Primary outcome changed: Overall survival (time frame: 2 years → 3 years) "
        "(primary outcome changed after the study started)"
    )
    assert (c.category, c.severity, c.item_key) == (
        Category.OUTCOMES,
        Severity.MAJOR,
        "Overall survival",
    )


def test_long_descriptions_are_not_repeated() -> None:
    outcome = Outcome("Overall survival", "2 years", "x" * 200)

    planned = change(start_date=PartialDate("2024-03-15", "ESTIMATED"))
    c = only(diff(planned, dataclasses.replace(planned, primary_outcomes=(outcome,))))

    assert c.summary == "Primary outcome changed: Overall survival (description updated)"


def test_a_primary_outcome_changed_once_the_study_is_under_way_is_flagged() -> None:
    """Outcome switching, what systematic reviewers look for: flagged when the version before
    already gave an actual start (or primary completion); not before; never for secondary."""
    switched = (Outcome("Progression-free survival", "2 years"),)
    planned = change(start_date=PartialDate("2024-03-15", "ESTIMATED"))
    finished = change(primary_completion_date=PartialDate("2026-01", "ACTUAL"))

    def summaries(old: Snapshot, **fields: Any) -> list[str]:
        return [c.summary for c in diff(old, dataclasses.replace(old, **fields))]

    assert all("after the study started" in s for s in summaries(BASE, primary_outcomes=switched))
    assert not any("after" in s for s in summaries(planned, primary_outcomes=switched))
    assert all(
        s.endswith("(primary outcome changed after its primary completion)")
        for s in summaries(finished, primary_outcomes=switched)
    )
    secondary = (*BASE.secondary_outcomes, Outcome("Anemia response"))
    assert not any("after" in s for s in summaries(BASE, secondary_outcomes=secondary))


def test_secondary_outcome_added_is_minor() -> None:
    new = change(secondary_outcomes=(*BASE.secondary_outcomes, Outcome("Anemia response")))

    c = only(diff(BASE, new))

    assert c.summary == "Secondary outcome added: Anemia response"
    assert (c.category, c.severity, c.kind) == (
        Category.OUTCOMES,
        Severity.MINOR,
        ChangeKind.ADDED,
    )


# --- Sites ------------------------------------------------------------------------------------


MAYO_MN = Location("Mayo Clinic", "Rochester", "Minnesota", "United States", "RECRUITING")


def test_site_added() -> None:
    c = only(diff(BASE, change(locations=(*BASE.locations, MAYO_MN))))

    assert c.summary == "Site added: Mayo Clinic, Rochester, Minnesota, United States"
    assert (c.category, c.severity, c.kind) == (Category.SITES, Severity.MAJOR, ChangeKind.ADDED)
    assert c.item_key == "Mayo Clinic, Rochester, Minnesota, United States"
    assert c.new == {
        "facility": "Mayo Clinic",
        "city": "Rochester",
        "state": "Minnesota",
        "country": "United States",
        "status": "RECRUITING",
        "latitude": None,
        "longitude": None,
    }


def test_site_removed() -> None:
    c = only(diff(BASE, change(locations=BASE.locations[1:])))

    assert c.summary == "Site removed: Mayo Clinic, Rochester, United States"
    assert (c.severity, c.kind) == (Severity.MAJOR, ChangeKind.REMOVED)


def test_site_status_change_is_minor() -> None:
    closed = dataclasses.replace(BASE.locations[0], status="COMPLETED")

    c = only(diff(BASE, change(locations=(closed, *BASE.locations[1:]))))

    assert c.summary == "Site Mayo Clinic, Rochester, United States: Recruiting → Completed"
    assert (c.category, c.severity, c.kind) == (Category.SITES, Severity.MINOR, ChangeKind.CHANGED)
    assert (c.old["status"], c.new["status"]) == ("RECRUITING", "COMPLETED")


def test_a_new_geo_point_alone_is_no_change() -> None:
    # The registry geocodes the place itself; a sponsor said nothing new.
    located = dataclasses.replace(BASE.locations[0], latitude=44.02163, longitude=-92.4699)

    assert diff(BASE, change(locations=(located, *BASE.locations[1:]))) == []


def test_duplicate_research_sites_reordered_is_no_change() -> None:
    sites = tuple(
        Location("Research Site", city, None, "United Kingdom", status)
        for city in ("London", "London", "London", "Leeds")
        for status in ("RECRUITING", "COMPLETED", None)
    )
    old = change(locations=sites)
    new = change(locations=tuple(reversed(sites)))

    assert diff(old, new) == []


def test_one_of_several_duplicate_sites_changes_status() -> None:
    site = Location("Research Site", "Seoul", None, "Korea, Republic of", "RECRUITING")
    old = change(locations=(site, site, site))
    new = change(locations=(site, dataclasses.replace(site, status="COMPLETED"), site))

    c = only(diff(old, new))

    assert c.summary == "Site Research Site, Seoul, Korea, Republic of: Recruiting → Completed"


def test_duplicate_site_removed_once() -> None:
    site = Location("Research Site", "Seoul", None, "Korea, Republic of", "RECRUITING")

    c = only(diff(change(locations=(site, site)), change(locations=(site,))))

    assert (c.kind, c.summary) == (
        ChangeKind.REMOVED,
        "Site removed: Research Site, Seoul, Korea, Republic of",
    )


# A real typo: the registry listed this site's city as "Hanzhou" before it was corrected.
HANZHOU = Location("Zhejiang Cancer Hospital", "Hanzhou", "Zhejiang", "China", "RECRUITING")
HANGZHOU = dataclasses.replace(HANZHOU, city="Hangzhou", latitude=30.29365, longitude=120.16142)


def test_a_corrected_city_spelling_is_one_minor_change() -> None:
    old = change(locations=(*BASE.locations, HANZHOU))
    new = change(locations=(*BASE.locations, HANGZHOU))

    c = only(diff(old, new))

    assert c.summary == (
        "Site details corrected: Zhejiang Cancer Hospital, Hangzhou, Zhejiang, China "
        "(city: Hanzhou → Hangzhou)"
    )
    assert (c.category, c.severity, c.kind) == (Category.SITES, Severity.MINOR, ChangeKind.CHANGED)
    assert c.item_key == "Zhejiang Cancer Hospital, Hangzhou, Zhejiang, China"
    assert (c.old["city"], c.new["city"]) == ("Hanzhou", "Hangzhou")
    # And the other way round, had the registry made the typo.
    assert only(diff(new, old)).summary.endswith("(city: Hangzhou → Hanzhou)")


def test_a_corrected_spelling_geocoded_elsewhere_is_another_site() -> None:
    # Both have a geo point and they disagree: the registry says these are two places.
    elsewhere = dataclasses.replace(HANZHOU, latitude=23.1, longitude=113.3)
    old = change(locations=(*BASE.locations, elsewhere))
    new = change(locations=(*BASE.locations, HANGZHOU))

    assert sorted(c.kind for c in diff(old, new)) == [ChangeKind.ADDED, ChangeKind.REMOVED]


def test_a_case_only_facility_edit_is_one_minor_change_with_its_status() -> None:
    mayo = BASE.locations[0]
    edited = dataclasses.replace(mayo, facility="MAYO CLINIC", status="COMPLETED")

    c = only(diff(BASE, change(locations=(edited, *BASE.locations[1:]))))

    assert c.summary == (
        "Site details corrected: MAYO CLINIC, Rochester, United States "
        "(facility: Mayo Clinic → MAYO CLINIC; status: Recruiting → Completed)"
    )
    assert (c.severity, c.kind) == (Severity.MINOR, ChangeKind.CHANGED)


def test_a_corrected_facility_spelling_in_the_same_city_is_one_change() -> None:
    old_site = Location("Hopital Saint-Louis", "Paris", None, "France", "RECRUITING")
    new_site = Location("Hôpital Saint Louis", "Paris", None, "France", "RECRUITING")
    typo = Location("Institut Gustave Rousy", "Villejuif", None, "France", "RECRUITING")
    fixed = dataclasses.replace(typo, facility="Institut Gustave Roussy")

    changes = diff(change(locations=(old_site, typo)), change(locations=(new_site, fixed)))

    assert [c.summary for c in changes] == [
        "Site details corrected: Hôpital Saint Louis, Paris, France "
        "(facility: Hopital Saint-Louis → Hôpital Saint Louis)",
        "Site details corrected: Institut Gustave Roussy, Villejuif, France "
        "(facility: Institut Gustave Rousy → Institut Gustave Roussy)",
    ]


def _research_sites(*cities: str, located: bool = False) -> tuple[Location, ...]:
    points = {"London": (51.5, -0.13), "Leeds": (53.8, -1.55), "Stratford": (52.19, -1.71)}
    points["Stafford"] = (52.81, -2.12)
    return tuple(
        Location(
            "Research Site",
            city,
            None,
            "United Kingdom",
            "RECRUITING",
            *(points[city] if located else (None, None)),
        )
        for city in cities
    )


@pytest.mark.parametrize("located", [False, True], ids=["no-geo", "geo"])
def test_research_sites_in_different_towns_stay_distinct(located: bool) -> None:
    # Stratford and Stafford are two towns one spelling fix apart; a sponsor's many sites all
    # named "Research Site" say nothing about which is which, so a site went and another came.
    old = change(locations=_research_sites("London", "Leeds", "Stratford", located=located))
    new = change(locations=_research_sites("London", "Leeds", "Stafford", located=located))

    assert [(c.kind, c.severity, c.summary) for c in diff(old, new)] == [
        (ChangeKind.ADDED, Severity.MAJOR, "Site added: Research Site, Stafford, United Kingdom"),
        (
            ChangeKind.REMOVED,
            Severity.MAJOR,
            "Site removed: Research Site, Stratford, United Kingdom",
        ),
    ]


def test_a_research_site_is_corrected_only_where_its_geo_point_agrees() -> None:
    sites = _research_sites("London", "Leeds", located=True)
    respelt = (sites[0], dataclasses.replace(sites[1], city="LEEDS"))

    c = only(diff(change(locations=sites), change(locations=respelt)))
    assert c.summary == (
        "Site details corrected: Research Site, LEEDS, United Kingdom (city: Leeds → LEEDS)"
    )

    unlocated = _research_sites("London", "Leeds")
    respelt = (unlocated[0], dataclasses.replace(unlocated[1], city="LEEDS"))
    assert len(diff(change(locations=unlocated), change(locations=respelt))) == 2


def test_an_edit_that_could_be_either_of_two_sites_is_not_guessed() -> None:
    one = Location("Royal Hospitl", "Leeds", None, "United Kingdom")
    other = Location("Royal Hospitel", "Leeds", None, "United Kingdom")
    fixed = Location("Royal Hospital", "Leeds", None, "United Kingdom")

    changes = diff(change(locations=(one, other)), change(locations=(fixed,)))

    assert sorted(c.kind for c in changes) == [
        ChangeKind.ADDED,
        ChangeKind.REMOVED,
        ChangeKind.REMOVED,
    ]


def test_identical_duplicate_sites_are_corrected_one_for_one() -> None:
    typo = Location(
        "Research Site", "Seoull", None, "Korea, Republic of", latitude=37.56, longitude=126.97
    )
    fixed = dataclasses.replace(typo, city="Seoul")

    changes = diff(change(locations=(typo, typo)), change(locations=(fixed, fixed)))

    assert [c.kind for c in changes] == [ChangeKind.CHANGED, ChangeKind.CHANGED]


def test_real_record_site_status_change_and_city_fix_are_two_minor_changes() -> None:
    before = record("NCT05923281")
    after = record("NCT05923281")
    sites = after["protocolSection"]["contactsLocationsModule"]["locations"]
    closed, respelt = sites[0], sites[1]
    closed["status"] = "COMPLETED"
    respelt["city"] = respelt["city"][:-1]  # e.g. "Tokyo" -> "Toky", typed in by hand
    del respelt["geoPoint"]  # the registry could not geocode the typo

    changes = diff(normalize(before), normalize(after))

    assert [(c.severity, c.kind) for c in changes] == [
        (Severity.MINOR, ChangeKind.CHANGED),
        (Severity.MINOR, ChangeKind.CHANGED),
    ]
    summaries = sorted(c.summary for c in changes)
    assert any(s.startswith(f"Site {closed['facility']}, ") for s in summaries)
    assert any(s.endswith(": Recruiting → Completed") for s in summaries)
    assert any(s.startswith("Site details corrected: ") for s in summaries)


@pytest.mark.parametrize(
    ("a", "b", "close"),
    [
        ("hanzhou", "hangzhou", True),
        ("centre", "center", True),  # neighbours swapped
        ("stratford", "stafford", True),
        ("zhejiang cancer hosptial", "zhejiang cancer hospital", True),
        ("lar", "lax", False),  # too short to tell a typo from another word
        ("site 101", "site 102", False),
        ("hospital a", "hospital b", False),
        ("first hospital", "second hospital", False),
        ("royal london hospital", "royal free hospital", False),
        ("st marys", "st marys hospital", False),
        ("a b", "c d", False),
        (None, "x", False),
    ],
)
def test_one_fix_apart(a: str | None, b: str | None, close: bool) -> None:
    assert _one_fix_apart(a, b) is close
    assert _one_fix_apart(b, a) is close


# --- Administrative ---------------------------------------------------------------------------


def test_administrative_fields() -> None:
    c = only(diff(BASE, change(lead_sponsor="Stemline Therapeutics")))
    assert c.summary == "Lead sponsor: Karyopharm Therapeutics Inc → Stemline Therapeutics"
    assert (c.category, c.severity) == (Category.ADMINISTRATIVE, Severity.MAJOR)

    c = only(diff(BASE, change(brief_title="Selinexor in MF")))
    assert c.summary == "Brief title: “Selinexor in Myelofibrosis” → “Selinexor in MF”"
    assert (c.category, c.severity) == (Category.ADMINISTRATIVE, Severity.MINOR)

    c = only(diff(BASE, change(acronym="SENTRY")))
    assert c.summary == "Acronym: (none) → SENTRY"
    assert c.severity is Severity.MINOR

    c = only(diff(BASE, change(last_update_posted="2026-11-02")))
    assert c.summary == "Last update posted: 2026-10-01 → 2026-11-02"
    assert (c.category, c.severity) == (Category.ADMINISTRATIVE, Severity.ADMIN)


def test_references_by_pmid_else_citation() -> None:
    new = change(
        references=(
            Reference("12345678", "RESULT", "Smith J. A paper. 2020."),
            Reference(None, "BACKGROUND", "Doe J. A book. 2019."),
        )
    )

    changes = diff(BASE, new)

    assert [(c.kind, c.item_key, c.summary) for c in changes] == [
        (ChangeKind.ADDED, "Doe J. A book. 2019.", "Reference added: Doe J. A book. 2019."),
        (
            ChangeKind.CHANGED,
            "PMID 12345678",
            "Reference changed: PMID 12345678 (type: Background → Result)",
        ),
    ]
    assert all(c.severity is Severity.MINOR for c in changes)


# --- Unreadable parts ------------------------------------------------------------------------


def record(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RECORDS / f"{name}.json").read_text(encoding="utf-8"))
    return data


SECONDARY_0 = "protocolSection.outcomesModule.secondaryOutcomes[0].measure"


def test_termination_is_critical_even_when_an_outcome_cannot_be_read() -> None:
    # Issue 11 item 9: the registry's TERMINATED record had secondaryOutcomes[0].measure null,
    # which failed the whole trial, so the termination was never reported.
    before = record("NCT04650945")
    before["protocolSection"]["statusModule"]["overallStatus"] = "RECRUITING"
    del before["protocolSection"]["statusModule"]["whyStopped"]
    after = record("NCT04650945")
    after["protocolSection"]["outcomesModule"]["secondaryOutcomes"][0]["measure"] = None

    changes = diff(normalize(before), normalize(after))

    assert [(c.severity, c.field, c.kind, c.summary) for c in changes] == [
        (
            Severity.CRITICAL,
            "overall_status",
            ChangeKind.CHANGED,
            "Overall status: Recruiting → Terminated",
        ),
        (Severity.MAJOR, "why_stopped", ChangeKind.CHANGED, "Why stopped: “Staff shortage”"),
        (
            Severity.MINOR,
            "unreadable",
            ChangeKind.ADDED,
            "Could not read one of the secondary outcomes; not compared until it can be read "
            f"({SECONDARY_0})",
        ),
    ]
    assert headline(changes) == changes[0]
    assert changes[2].category is Category.ADMINISTRATIVE
    assert (changes[2].old, changes[2].new, changes[2].item_key) == (None, SECONDARY_0, SECONDARY_0)


def test_an_item_that_can_be_read_again_is_not_called_added() -> None:
    broken = record("NCT04650945")
    broken["protocolSection"]["outcomesModule"]["secondaryOutcomes"][0]["measure"] = None

    c = only(diff(normalize(broken), load("NCT04650945")))

    assert (c.field, c.kind, c.severity) == ("unreadable", ChangeKind.REMOVED, Severity.MINOR)
    assert c.summary == f"One of the secondary outcomes can be read again ({SECONDARY_0})"
    assert (c.old, c.new, c.item_key) == (SECONDARY_0, None, SECONDARY_0)


ENROLLMENT_COUNT = "protocolSection.designModule.enrollmentInfo.count"


def test_an_unreadable_value_is_unknown_not_gone() -> None:
    broken = record("NCT05923112")
    broken["protocolSection"]["designModule"]["enrollmentInfo"]["count"] = "200"
    good, bad = load("NCT05923112"), normalize(broken)

    c = only(diff(good, bad))
    assert c.summary == (
        f"Could not read enrollment; not compared until it can be read ({ENROLLMENT_COUNT})"
    )
    assert c.severity is Severity.MINOR

    # When it can be read again the value it has now is said, at the same severity.
    c = only(diff(bad, good))
    assert c.summary == f"Enrollment can be read again: 200 (est.) ({ENROLLMENT_COUNT})"
    assert (c.kind, c.severity) == (ChangeKind.REMOVED, Severity.MINOR)


def test_other_changes_of_a_list_with_an_unreadable_item_are_still_told() -> None:
    sites = record("NCT05923281")["protocolSection"]["contactsLocationsModule"]["locations"]
    broken = record("NCT05923281")
    locations = broken["protocolSection"]["contactsLocationsModule"]["locations"]
    locations[0] = "not a site"
    locations[1]["status"] = "COMPLETED"
    locations.append({"facility": "New Clinic", "city": "Osaka", "country": "Japan"})

    changes = diff(load("NCT05923281"), normalize(broken))

    assert [(c.field, c.kind) for c in changes] == [
        ("locations", ChangeKind.ADDED),
        ("locations", ChangeKind.CHANGED),
        ("unreadable", ChangeKind.ADDED),
    ]
    assert changes[0].summary == "Site added: New Clinic, Osaka, Japan"
    assert sites[1]["facility"] in changes[1].summary
    # Two sites gone while one cannot be read: which one really went cannot be said, so both are.
    del locations[2]
    removed = [
        c for c in diff(load("NCT05923281"), normalize(broken)) if c.kind is ChangeKind.REMOVED
    ]
    assert len(removed) == 2


def test_a_whole_unreadable_list_hides_no_site_and_invents_none() -> None:
    broken = record("NCT05923281")
    broken["protocolSection"]["contactsLocationsModule"]["locations"] = {"oops": True}
    good, bad = load("NCT05923281"), normalize(broken)

    assert [c.field for c in diff(good, bad)] == ["unreadable"]
    assert only(diff(bad, good)).summary == (
        "Sites can be read again (protocolSection.contactsLocationsModule.locations)"
    )


def test_reordering_a_list_that_holds_an_unreadable_item_is_no_change() -> None:
    broken = record("NCT05923281")
    broken["protocolSection"]["contactsLocationsModule"]["locations"][0] = None
    reordered = copy.deepcopy(broken)
    reordered["protocolSection"]["contactsLocationsModule"]["locations"].reverse()

    a, b = normalize(broken), normalize(reordered)

    assert a.unreadable != b.unreadable  # the index moved with the item
    assert diff(a, b) == []


def test_a_path_diff_does_not_know_is_still_worded() -> None:
    old = change(unreadable=())
    new = change(unreadable=("protocolSection.someFutureModule.x",))

    c = only(diff(old, new))

    assert c.summary == (
        "Could not read part of the record; not compared until it can be read "
        "(protocolSection.someFutureModule.x)"
    )
    assert only(diff(new, old)).summary == (
        "Part of the record can be read again (protocolSection.someFutureModule.x)"
    )


# --- Order, headline, real data -------------------------------------------------------------------


def test_changes_are_ordered_by_severity_then_field_order() -> None:
    new = change(
        last_update_posted="2026-11-02",
        acronym="SENTRY",
        enrollment=Enrollment(98, "ACTUAL"),
        overall_status="COMPLETED",
        locations=(*BASE.locations, MAYO_MN),
        has_results=True,
    )

    changes = diff(BASE, new)

    assert [(c.severity, c.field) for c in changes] == [
        (Severity.CRITICAL, "overall_status"),
        (Severity.CRITICAL, "has_results"),
        (Severity.MAJOR, "enrollment"),
        (Severity.MAJOR, "locations"),
        (Severity.MINOR, "acronym"),
        (Severity.ADMIN, "last_update_posted"),
    ]
    assert diff(BASE, new) == changes


def test_headline_is_the_most_severe_change() -> None:
    changes = diff(
        BASE,
        change(
            last_update_posted="2026-11-02",
            has_results=True,
            overall_status="COMPLETED",
            enrollment=Enrollment(98, "ACTUAL"),
        ),
    )

    top = headline(changes)
    assert top is not None
    assert top.summary == "Overall status: Active, not recruiting → Completed"
    # Ties go to table order, whatever order the changes are given in.
    assert headline(list(reversed(changes))) == top
    assert headline([c for c in changes if c.field != "overall_status"]) == changes[1]
    assert headline([]) is None


def test_diff_of_equal_snapshots_is_empty() -> None:
    assert diff(BASE, BASE) == []
    assert diff(Snapshot(nct_id="NCT01234567"), Snapshot(nct_id="NCT01234567")) == []


def test_registry_churn_gives_no_changes() -> None:
    earlier = load("NCT05923281.versionHolder-2023-06-28")
    later = load("NCT05923281")

    assert diff(earlier, later) == []


def test_nct_id_is_not_compared() -> None:
    assert diff(BASE, change(nct_id="NCT07654321")) == []


def test_table_covers_every_snapshot_field() -> None:
    fields = {f.name for f in dataclasses.fields(Snapshot)} - {"nct_id"}

    assert set(FIELD_ORDER) == fields
    assert len(FIELD_ORDER) == len(fields)


def test_every_field_change_is_one_line_with_plain_json() -> None:
    old = load("NCT05923281")
    new = load("NCT00712335")

    changes = diff(old, new)

    assert len(changes) > 20
    for c in changes:
        assert "\n" not in c.summary
        assert json.loads(json.dumps([c.old, c.new])) == [c.old, c.new]


# --- what counts ------------------------------------------------------------------------------


def test_an_admin_line_is_recorded_by_diff_but_never_counted() -> None:
    old = Snapshot(nct_id="NCT00000001", overall_status="RECRUITING", last_update_posted="2026-01")
    new = dataclasses.replace(old, overall_status="COMPLETED", last_update_posted="2026-02")
    changes = diff(old, new)
    assert {c.field for c in changes} == {"overall_status", "last_update_posted"}
    assert [c.field for c in counted(changes)] == ["overall_status"]
    assert not counts(next(c for c in changes if c.field == "last_update_posted"))
    only_posted = diff(old, dataclasses.replace(old, last_update_posted="2026-02"))
    assert change_count([("NCT00000001", changes), ("NCT00000002", only_posted)]) == (
        ChangeCount(changes=1, trials=1)
    )


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (ChangeCount(0, 0), "0 changes in 0 trials"),
        (ChangeCount(1, 1), "1 change in 1 trial"),
        (ChangeCount(3, 1), "3 changes in 1 trial"),
        (ChangeCount(4, 2), "4 changes in 2 trials"),
    ],
)
def test_the_count_reads_with_plurals_right(count: ChangeCount, text: str) -> None:
    assert count.text == text


def test_a_trial_told_twice_is_one_trial() -> None:
    change = FieldChange("conditions", Category.DESIGN, Severity.MINOR, ChangeKind.ADDED, "x")
    assert change_count([("A", [change]), ("A", [change])]) == ChangeCount(2, 1)
