"""Alerts that would be wrong if diff() slipped: one scenario each, as a clinician would meet it.

Each test here pins a behaviour that mutation testing showed no other test held (issue 24):
which sites are one site respelt and which are a closure and an opening, what an unreadable
part may hide, and the exact words of sentences that reach an inbox.
"""

from __future__ import annotations

import dataclasses

import pytest

from tests.test_diff import BASE, change, only
from trialwatch.diff import ChangeCount, ChangeFilter, change_count, diff, headline
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

SITES = "protocolSection.contactsLocationsModule.locations"


def told(changes: list[object]) -> list[tuple[ChangeKind, Severity, str]]:
    return [(c.kind, c.severity, c.summary) for c in changes]  # type: ignore[attr-defined]


def with_sites(*sites: Location, unreadable: tuple[str, ...] = ()) -> Snapshot:
    return change(locations=sites, unreadable=unreadable)


# --- Which sites are one site respelt --------------------------------------------------------

COCHIN = Location("Hôpital Cochin", "Paris", None, "France", "RECRUITING")
NECKER = Location("Hôpital Necker", "Paris", None, "France", "RECRUITING")
MAYO_ROCHESTER = Location("Mayo Clinic", "Rochester", "Minnesota", "United States", "RECRUITING")
MAYO_JACKSONVILLE = dataclasses.replace(MAYO_ROCHESTER, city="Jacksonville", state="Florida")
MAYO_PHOENIX = Location("Mayo Clinic", "Phoenix", "Arizona", "United States", "RECRUITING")
MAYO_SCOTTSDALE = dataclasses.replace(MAYO_PHOENIX, city="Scottsdale")
LEEDS = Location("St James's University Hospital", "Leeds", None, "United Kingdom", "RECRUITING")
TYPO = Location("Zhejiang Cancer Hospital", "Hanzhou", "Zhejiang", "China", "RECRUITING")
FIXED = dataclasses.replace(TYPO, city="Hangzhou")


def test_a_hospital_replaced_by_another_in_the_same_city_is_a_closure_and_an_opening() -> None:
    # Two Paris hospitals one word apart in name are two hospitals, not one respelt.
    changes = diff(with_sites(COCHIN, LEEDS), with_sites(NECKER, LEEDS))

    assert told(changes) == [
        (ChangeKind.REMOVED, Severity.MAJOR, "Site removed: Hôpital Cochin, Paris, France"),
        (ChangeKind.ADDED, Severity.MAJOR, "Site added: Hôpital Necker, Paris, France"),
    ]


@pytest.mark.parametrize(
    ("closed", "opened"),
    [(MAYO_ROCHESTER, MAYO_JACKSONVILLE), (MAYO_PHOENIX, MAYO_SCOTTSDALE)],
    ids=["another-state", "same-state"],
)
def test_a_chain_closing_in_one_city_and_opening_in_another_is_not_a_city_fix(
    closed: Location, opened: Location
) -> None:
    changes = diff(with_sites(closed, LEEDS), with_sites(opened, LEEDS))

    assert sorted(told(changes)) == [
        (
            ChangeKind.ADDED,
            Severity.MAJOR,
            f"Site added: Mayo Clinic, {opened.city}, {opened.state}, United States",
        ),
        (
            ChangeKind.REMOVED,
            Severity.MAJOR,
            f"Site removed: Mayo Clinic, {closed.city}, {closed.state}, United States",
        ),
    ]


def test_a_closure_in_the_same_update_as_another_sites_typo_fix_is_told() -> None:
    changes = diff(with_sites(TYPO, MAYO_ROCHESTER, LEEDS), with_sites(FIXED, LEEDS))

    assert told(changes) == [
        (
            ChangeKind.REMOVED,
            Severity.MAJOR,
            "Site removed: Mayo Clinic, Rochester, Minnesota, United States",
        ),
        (
            ChangeKind.CHANGED,
            Severity.MINOR,
            "Site details corrected: Zhejiang Cancer Hospital, Hangzhou, Zhejiang, China "
            "(city: Hanzhou → Hangzhou)",
        ),
    ]


def test_two_closures_beside_a_typo_fix_are_both_told() -> None:
    changes = diff(with_sites(TYPO, MAYO_ROCHESTER, LEEDS, COCHIN), with_sites(FIXED, COCHIN))

    assert [(c.kind, c.item_key) for c in changes] == [
        (ChangeKind.REMOVED, "Mayo Clinic, Rochester, Minnesota, United States"),
        (ChangeKind.REMOVED, "St James's University Hospital, Leeds, United Kingdom"),
        (ChangeKind.CHANGED, "Zhejiang Cancer Hospital, Hangzhou, Zhejiang, China"),
    ]


def test_an_opening_in_the_same_update_as_another_sites_typo_fix_is_told() -> None:
    changes = diff(with_sites(TYPO, LEEDS), with_sites(FIXED, LEEDS, COCHIN))

    assert [(c.kind, c.severity) for c in changes] == [
        (ChangeKind.ADDED, Severity.MAJOR),
        (ChangeKind.CHANGED, Severity.MINOR),
    ]


def test_a_status_change_beside_another_sites_new_map_point_is_told() -> None:
    located = dataclasses.replace(LEEDS, latitude=53.8076, longitude=-1.5206)
    closed = dataclasses.replace(MAYO_ROCHESTER, status="COMPLETED")

    c = only(diff(with_sites(MAYO_ROCHESTER, LEEDS), with_sites(closed, located)))

    assert (c.kind, c.severity, c.summary) == (
        ChangeKind.CHANGED,
        Severity.MINOR,
        "Site Mayo Clinic, Rochester, Minnesota, United States: Recruiting → Completed",
    )


def test_towns_70_km_apart_are_two_sites_even_when_spelt_one_letter_apart() -> None:
    # Stratford-upon-Avon and Stafford: one spelling fix apart, and the registry's map points
    # put them about 70 km apart, so a site closed in one and another opened in the other.
    county = Location("County Hospital", "Stratford", None, "United Kingdom", "RECRUITING")
    stratford = dataclasses.replace(county, latitude=52.1917, longitude=-1.7083)
    stafford = dataclasses.replace(county, city="Stafford", latitude=52.8073, longitude=-2.1166)

    changes = diff(with_sites(stratford, LEEDS), with_sites(stafford, LEEDS))

    assert [(c.kind, c.severity) for c in changes] == [
        (ChangeKind.ADDED, Severity.MAJOR),
        (ChangeKind.REMOVED, Severity.MAJOR),
    ]
    # The same fix with points a few hundred metres apart is the one site, respelt.
    nearby = dataclasses.replace(stafford, latitude=52.1950, longitude=-1.7050)
    c = only(diff(with_sites(stratford, LEEDS), with_sites(nearby, LEEDS)))
    assert c.summary.endswith("(city: Stratford → Stafford)")


# --- What an unreadable site may and may not hide ---------------------------------------------


def test_an_unreadable_old_site_does_not_hide_a_real_removal() -> None:
    # The unreadable site came back readable (Paris) and Leeds closed: Leeds must be told.
    old = with_sites(MAYO_ROCHESTER, LEEDS, unreadable=(f"{SITES}[2]",))
    new = with_sites(MAYO_ROCHESTER, COCHIN)

    changes = diff(old, new)

    assert [(c.field, c.kind, c.severity) for c in changes] == [
        ("locations", ChangeKind.REMOVED, Severity.MAJOR),
        ("unreadable", ChangeKind.REMOVED, Severity.MINOR),
    ]
    assert changes[0].item_key == "St James's University Hospital, Leeds, United Kingdom"


def test_two_unreadable_sites_are_not_two_closures() -> None:
    old = with_sites(MAYO_ROCHESTER, LEEDS, COCHIN)
    new = with_sites(MAYO_ROCHESTER, unreadable=(f"{SITES}[1]", f"{SITES}[2]"))

    changes = diff(old, new)

    assert [(c.field, c.kind, c.severity) for c in changes] == [
        ("unreadable", ChangeKind.ADDED, Severity.MINOR),
        ("unreadable", ChangeKind.ADDED, Severity.MINOR),
    ]
    assert changes[0].summary == (
        f"Could not read one of the sites; not compared until it can be read ({SITES}[1])"
    )


def test_one_site_readable_again_does_not_hide_two_openings() -> None:
    old = with_sites(MAYO_ROCHESTER, unreadable=(f"{SITES}[1]",))
    new = with_sites(MAYO_ROCHESTER, LEEDS, COCHIN)

    changes = diff(old, new)

    assert [(c.field, c.kind) for c in changes] == [
        ("locations", ChangeKind.ADDED),
        ("locations", ChangeKind.ADDED),
        ("unreadable", ChangeKind.REMOVED),
    ]
    assert changes[2].summary == f"One of the sites can be read again ({SITES}[1])"


def test_one_site_readable_again_explains_one_opening() -> None:
    old = with_sites(MAYO_ROCHESTER, unreadable=(f"{SITES}[1]",))
    new = with_sites(MAYO_ROCHESTER, LEEDS)

    assert [c.field for c in diff(old, new)] == ["unreadable"]


def test_one_site_unreadable_explains_one_closure_not_two() -> None:
    old = with_sites(MAYO_ROCHESTER, LEEDS, COCHIN)
    one_gone = with_sites(MAYO_ROCHESTER, COCHIN, unreadable=(f"{SITES}[2]",))
    two_gone = with_sites(MAYO_ROCHESTER, unreadable=(f"{SITES}[1]",))

    assert [c.field for c in diff(old, one_gone)] == ["unreadable"]
    assert [(c.field, c.kind) for c in diff(old, two_gone)] == [
        ("locations", ChangeKind.REMOVED),
        ("locations", ChangeKind.REMOVED),
        ("unreadable", ChangeKind.ADDED),
    ]


# --- The words that reach an inbox -----------------------------------------------------------


def test_a_reason_for_stopping_withdrawn_says_what_it_was() -> None:
    c = only(diff(change(why_stopped="Funding ended"), BASE))

    assert c.summary == "Why stopped removed (was “Funding ended”)"
    assert (c.old, c.new) == ("Funding ended", None)


def test_enrollment_wording() -> None:
    c = only(diff(change(enrollment=None), change(enrollment=Enrollment(40, None))))
    assert c.summary == "Enrollment: (none) → 40"
    assert c.severity is Severity.MAJOR

    c = only(diff(BASE, change(enrollment=None)))
    assert c.summary == "Enrollment: 120 (est.) → (none)"


def test_enrollment_gaining_a_type_without_a_count_says_nothing_false() -> None:
    # The registry can add {"type": "ESTIMATED"} with no count: no number was said, so nothing
    # changed that a reader could see (it once sent a MAJOR "Enrollment: (none) → (none)").
    typed = Enrollment(None, "ESTIMATED")

    assert diff(change(enrollment=None), change(enrollment=typed)) == []
    assert diff(change(enrollment=typed), change(enrollment=None)) == []
    assert diff(change(enrollment=typed), change(enrollment=Enrollment(None, "ACTUAL"))) == []
    c = only(diff(change(enrollment=typed), change(enrollment=Enrollment(60, "ESTIMATED"))))
    assert (c.summary, c.severity) == ("Enrollment: (none) → 60 (est.)", Severity.MAJOR)


def test_results_posted_without_a_date_says_no_date() -> None:
    c = only(diff(BASE, change(has_results=True)))

    assert c.summary == "Results posted"


def test_a_date_moved_a_month_earlier_counts_a_month_not_days() -> None:
    old = change(start_date=PartialDate("2024-03-15", "ESTIMATED"))
    new = change(start_date=PartialDate("2024-02-15", "ESTIMATED"))

    c = only(diff(old, new))

    assert c.summary == "Start date moved 1 month earlier (2024-03-15 est. → 2024-02-15 est.)"


def test_a_date_moved_earlier_within_its_month_counts_days() -> None:
    old = change(start_date=PartialDate("2024-03-20", "ESTIMATED"))
    new = change(start_date=PartialDate("2024-03-05", "ESTIMATED"))

    c = only(diff(old, new))

    assert c.summary == "Start date moved 15 days earlier (2024-03-20 est. → 2024-03-05 est.)"


def test_a_date_that_becomes_estimated_again_says_so() -> None:
    old = change(completion_date=PartialDate("2027-09", "ACTUAL"))

    c = only(diff(old, BASE))

    assert c.summary == "Completion date is now estimated (2027-09)"
    assert c.severity is Severity.MINOR


def test_an_arms_new_description_is_told() -> None:
    described = Arm("Selinexor 40 mg", "EXPERIMENTAL", "Twice weekly", ("Drug: Selinexor",))

    c = only(diff(BASE, change(arms=(described, BASE.arms[1]))))

    assert c.summary == "Arm changed: Selinexor 40 mg (description: (none) → Twice weekly)"
    assert (c.kind, c.severity) == (ChangeKind.CHANGED, Severity.MAJOR)


# --- More sites that are, or are not, one site respelt (issue 24, second round) ---------------

RESEARCH_INCHEON = Location("Research Site", "Incheon", None, "Korea, Republic of", "RECRUITING")
RESEARCH_ICHEON = dataclasses.replace(RESEARCH_INCHEON, city="Icheon")
RESEARCH_BUSAN = dataclasses.replace(RESEARCH_INCHEON, city="Busan")


def kinds(changes: list[object]) -> list[tuple[ChangeKind, str | None]]:
    return [(c.kind, c.item_key) for c in changes]  # type: ignore[attr-defined]


def test_anonymous_research_sites_closing_and_opening_are_not_guessed_to_be_one() -> None:
    # Incheon and Icheon are two Korean cities one letter apart. The sponsor names several
    # sites only "Research Site", so nothing says the one that opened is the one that closed.
    changes = diff(with_sites(RESEARCH_INCHEON, RESEARCH_BUSAN), with_sites(RESEARCH_ICHEON, LEEDS))

    assert kinds(changes) == [
        (ChangeKind.REMOVED, "Research Site, Busan, Korea, Republic of"),
        (ChangeKind.ADDED, "Research Site, Icheon, Korea, Republic of"),
        (ChangeKind.REMOVED, "Research Site, Incheon, Korea, Republic of"),
        (ChangeKind.ADDED, "St James's University Hospital, Leeds, United Kingdom"),
    ]
    assert {c.severity for c in changes} == {Severity.MAJOR}


def test_a_typo_fix_listed_after_an_anonymous_sites_closure_is_still_a_correction() -> None:
    changes = diff(
        with_sites(RESEARCH_INCHEON, RESEARCH_BUSAN, TYPO), with_sites(RESEARCH_BUSAN, FIXED)
    )

    assert told(changes) == [
        (
            ChangeKind.REMOVED,
            Severity.MAJOR,
            "Site removed: Research Site, Incheon, Korea, Republic of",
        ),
        (
            ChangeKind.CHANGED,
            Severity.MINOR,
            "Site details corrected: Zhejiang Cancer Hospital, Hangzhou, Zhejiang, China "
            "(city: Hanzhou → Hangzhou)",
        ),
    ]


@pytest.mark.parametrize(
    "opened",
    [
        Location("Asan Medical Center", "Incheon", None, "Korea, Republic of", "RECRUITING"),
        Location("Research Sites", "Incheon", None, "Korea, Republic of", "RECRUITING"),
    ],
    ids=["named-hospital", "one-letter-apart"],
)
def test_an_anonymous_site_with_a_map_point_is_not_paired_with_one_without(
    opened: Location,
) -> None:
    # The closed "Research Site" has a map point, the new one has none: its name is one of
    # several, so only two agreeing map points could say they are one site.
    closed = dataclasses.replace(RESEARCH_INCHEON, latitude=37.4563, longitude=126.7052)

    changes = diff(with_sites(closed, RESEARCH_BUSAN), with_sites(opened, RESEARCH_BUSAN))

    assert sorted((c.kind, c.severity) for c in changes) == [
        (ChangeKind.ADDED, Severity.MAJOR),
        (ChangeKind.REMOVED, Severity.MAJOR),
    ]


@pytest.mark.parametrize(
    ("closed", "opened"),
    [
        (
            Location("Mercy Hospital", "Springfield", "Illinois", "United States", "RECRUITING"),
            Location("Mercy Hospital", "Springfield", "Missouri", "United States", "RECRUITING"),
        ),
        (
            Location("Hospital Universitario", "Valencia", None, "Spain", "RECRUITING"),
            Location("Hospital Universitario", "Valencia", None, "Venezuela", "RECRUITING"),
        ),
    ],
    ids=["another-state", "another-country"],
)
def test_a_like_named_site_in_a_like_named_city_elsewhere_is_another_site(
    closed: Location, opened: Location
) -> None:
    changes = diff(with_sites(closed, LEEDS), with_sites(opened, LEEDS))

    assert sorted((c.kind, c.severity, c.summary) for c in changes) == [
        (ChangeKind.ADDED, Severity.MAJOR, f"Site added: {_name(opened)}"),
        (ChangeKind.REMOVED, Severity.MAJOR, f"Site removed: {_name(closed)}"),
    ]


def _name(site: Location) -> str:
    return ", ".join(p for p in (site.facility, site.city, site.state, site.country) if p)


@pytest.mark.parametrize(
    ("old_city", "new_city", "country"),
    [
        ("Northampton", "Hampton", "United Kingdom"),  # a town inside another's name
        ("Lucca", "Lecce", "Italy"),  # two cities two letters apart
        ("Caen", "Agen", "France"),
    ],
)
def test_a_chain_in_another_town_with_a_similar_name_is_another_site(
    old_city: str, new_city: str, country: str
) -> None:
    closed = Location("Centre Hospitalier", old_city, None, country, "RECRUITING")
    opened = dataclasses.replace(closed, city=new_city)

    changes = diff(with_sites(closed, LEEDS), with_sites(opened, LEEDS))

    assert sorted((c.kind, c.severity) for c in changes) == [
        (ChangeKind.ADDED, Severity.MAJOR),
        (ChangeKind.REMOVED, Severity.MAJOR),
    ]


def test_a_city_garbled_by_a_paste_error_is_not_one_spelling_fix() -> None:
    parma = Location("Ospedale Maggiore", "Parma", None, "Italy", "RECRUITING")
    garbled = dataclasses.replace(parma, city="Parmapaarma")

    changes = diff(with_sites(garbled, LEEDS), with_sites(parma, LEEDS))

    assert sorted(c.kind for c in changes) == [ChangeKind.ADDED, ChangeKind.REMOVED]


def test_two_hospitals_two_letters_apart_in_one_city_are_two_sites() -> None:
    rosa = Location("Santa Rosa Medical Center", "Lima", None, "Peru", "RECRUITING")
    rita = dataclasses.replace(rosa, facility="Santa Rita Medical Center")

    changes = diff(with_sites(rosa, LEEDS), with_sites(rita, LEEDS))

    assert [c.kind for c in changes] == [ChangeKind.ADDED, ChangeKind.REMOVED]


@pytest.mark.parametrize(
    ("before", "after", "corrected"),
    [
        (
            Location("Hôpital Saint-Louis", "Paris", None, "France", "RECRUITING"),
            Location("Hôpital Saint Louis", "Paris", None, "France", "RECRUITING"),
            "Site details corrected: Hôpital Saint Louis, Paris, France "
            "(facility: Hôpital Saint-Louis → Hôpital Saint Louis)",
        ),
        (
            Location("University Medical Center", "Turecht", None, "Netherlands", "RECRUITING"),
            Location("University Medical Center", "Utrecht", None, "Netherlands", "RECRUITING"),
            "Site details corrected: University Medical Center, Utrecht, Netherlands "
            "(city: Turecht → Utrecht)",
        ),
    ],
    ids=["hyphen", "first-letters-swapped"],
)
def test_small_spelling_fixes_are_one_site_corrected(
    before: Location, after: Location, corrected: str
) -> None:
    c = only(diff(with_sites(before, LEEDS), with_sites(after, LEEDS)))

    assert (c.kind, c.severity, c.summary) == (ChangeKind.CHANGED, Severity.MINOR, corrected)


def test_a_typo_fix_beside_two_openings_is_told_with_both() -> None:
    changes = diff(with_sites(TYPO, LEEDS), with_sites(FIXED, LEEDS, COCHIN, NECKER))

    assert [(c.kind, c.severity) for c in changes] == [
        (ChangeKind.ADDED, Severity.MAJOR),
        (ChangeKind.ADDED, Severity.MAJOR),
        (ChangeKind.CHANGED, Severity.MINOR),
    ]


@pytest.mark.parametrize(
    ("old_point", "new_point", "one_site"),
    [
        ((52.1917, -1.7083), (52.1917, -2.2083), False),  # same latitude, 35 km west
        ((52.1917, -1.7083), (52.6917, -1.7083), False),  # same longitude, 55 km north
        ((-0.02, 109.3425), (-0.01, 109.3425), True),  # Pontianak: 0.01° apart, about 1 km
        ((51.4826, -0.01), (51.4826, 0.0), True),  # Greenwich: 0.01° apart
    ],
)
def test_map_points_a_kilometre_apart_are_one_place_and_farther_are_not(
    old_point: tuple[float, float], new_point: tuple[float, float], one_site: bool
) -> None:
    county = Location("County Hospital", "Stratford", None, "United Kingdom", "RECRUITING")
    old = dataclasses.replace(county, latitude=old_point[0], longitude=old_point[1])
    new = dataclasses.replace(
        county, city="Stafford", latitude=new_point[0], longitude=new_point[1]
    )

    changes = diff(with_sites(old, LEEDS), with_sites(new, LEEDS))

    if one_site:
        assert [(c.kind, c.severity) for c in changes] == [(ChangeKind.CHANGED, Severity.MINOR)]
    else:
        assert sorted(c.kind for c in changes) == [ChangeKind.ADDED, ChangeKind.REMOVED]


def test_a_site_with_half_a_map_point_is_compared_by_its_names() -> None:
    # normalize never keeps half a point; a snapshot made otherwise must not break the diff.
    old = dataclasses.replace(TYPO, latitude=30.27)
    new = dataclasses.replace(FIXED, latitude=30.27)

    c = only(diff(with_sites(old, LEEDS), with_sites(new, LEEDS)))

    assert c.summary.endswith("(city: Hanzhou → Hangzhou)")


def test_an_unnamed_site_is_told_as_such() -> None:
    c = only(diff(with_sites(LEEDS), with_sites(LEEDS, Location(status="RECRUITING"))))

    assert c.summary == "Site added: (unnamed site)"


# --- More unreadable parts -------------------------------------------------------------------

ENROLLMENT = "protocolSection.designModule.enrollmentInfo"


@pytest.mark.parametrize(
    ("old_unreadable", "new_unreadable", "told_kinds"),
    [
        # A part still unreadable is not told again when another one breaks.
        ((ENROLLMENT,), (ENROLLMENT, f"{SITES}[1]"), [ChangeKind.ADDED]),
        # One more site unreadable is one sentence, not one per unreadable site.
        ((f"{SITES}[1]",), (f"{SITES}[1]", f"{SITES}[2]"), [ChangeKind.ADDED]),
        ((f"{SITES}[1]", f"{SITES}[2]"), (f"{SITES}[1]",), [ChangeKind.REMOVED]),
        (
            (f"{SITES}[1]", f"{SITES}[2]", f"{SITES}[3]"),
            (f"{SITES}[1]",),
            [ChangeKind.REMOVED, ChangeKind.REMOVED],
        ),
        ((ENROLLMENT, f"{SITES}[1]"), (ENROLLMENT,), [ChangeKind.REMOVED]),
    ],
)
def test_only_parts_that_break_or_mend_are_told(
    old_unreadable: tuple[str, ...],
    new_unreadable: tuple[str, ...],
    told_kinds: list[ChangeKind],
) -> None:
    changes = diff(
        with_sites(LEEDS, unreadable=old_unreadable), with_sites(LEEDS, unreadable=new_unreadable)
    )

    assert [(c.field, c.kind) for c in changes] == [("unreadable", k) for k in told_kinds]
    assert all(ENROLLMENT not in c.summary for c in changes)


# --- More words that reach an inbox -----------------------------------------------------------


def test_a_new_reason_for_stopping_is_kept_as_the_new_value() -> None:
    c = only(diff(change(why_stopped="Funding ended"), change(why_stopped="Sponsor decision")))

    assert c.summary == "Why stopped: “Funding ended” → “Sponsor decision”"
    assert (c.old, c.new) == ("Funding ended", "Sponsor decision")


@pytest.mark.parametrize(
    ("before", "after", "summary"),
    [
        ("ANTICIPATED", None, "Start date type: ANTICIPATED → (none) (2024-03)"),
        (None, "ANTICIPATED", "Start date type: (none) → ANTICIPATED (2024-03)"),
    ],
)
def test_a_legacy_date_type_is_told_by_name(
    before: str | None, after: str | None, summary: str
) -> None:
    # Older records say "ANTICIPATED"; neither side is actual or estimated.
    old = change(start_date=PartialDate("2024-03", before))
    new = change(start_date=PartialDate("2024-03", after))

    c = only(diff(old, new))

    assert c.summary == summary
    assert (c.severity, c.category) == (Severity.MINOR, Category.DATES)


@pytest.mark.parametrize(
    ("before", "after", "summary"),
    [
        # A date in a form diff does not read is shown as written, not counted.
        ("2024-Q3", "2024-06", "Start date: 2024-Q3 → 2024-06"),
        # The same day written two ways did not move.
        ("2024-03-05", "2024-3-5", "Start date: 2024-03-05 → 2024-3-5"),
    ],
)
def test_dates_that_cannot_be_counted_apart_are_shown_as_written(
    before: str, after: str, summary: str
) -> None:
    old = change(start_date=PartialDate(before, None))
    new = change(start_date=PartialDate(after, None))

    assert only(diff(old, new)).summary == summary


def test_a_phase_the_vocabulary_does_not_know_is_named_last() -> None:
    c = only(diff(BASE, change(phases=("PHASE1_2", "PHASE2"))))

    assert c.summary == "Phase: Phase 2 → Phase 2/Phase1 2"
    assert c.new == ["PHASE2", "PHASE1_2"]


def test_not_applicable_comes_before_early_phase_1() -> None:
    c = only(diff(BASE, change(phases=("EARLY_PHASE1", "NA"))))

    assert c.new == ["NA", "EARLY_PHASE1"]


def test_an_arms_interventions_are_listed_before_and_after() -> None:
    two = Arm("Selinexor 40 mg", "EXPERIMENTAL", None, ("Drug: Ruxolitinib", "Drug: Selinexor"))
    three = dataclasses.replace(two, intervention_names=(*two.intervention_names, "Drug: Zz"))

    c = only(diff(change(arms=(two, BASE.arms[1])), change(arms=(three, BASE.arms[1]))))

    assert c.summary == (
        "Arm changed: Selinexor 40 mg (interventions: Drug: Ruxolitinib, Drug: Selinexor → "
        "Drug: Ruxolitinib, Drug: Selinexor, Drug: Zz)"
    )


def test_a_time_frame_of_sixty_characters_is_still_shown() -> None:
    frame = "From randomisation to disease progression, up to 36 months.."
    assert len(frame) == 60
    old = change(secondary_outcomes=(Outcome("Spleen volume reduction", "24 weeks"),))
    new = change(secondary_outcomes=(Outcome("Spleen volume reduction", frame),))

    c = only(diff(old, new))

    assert c.summary == (
        f"Secondary outcome changed: Spleen volume reduction (time frame: 24 weeks → {frame})"
    )


def test_an_intervention_without_a_type_is_named_by_its_name() -> None:
    extra = Intervention("Best available therapy", None, None)

    c = only(diff(BASE, change(interventions=(*BASE.interventions, extra))))

    assert c.summary == "Intervention added: Best available therapy"


PAPER = Reference("12345678", "BACKGROUND", "Smith J. A paper. 2020.")


def test_a_references_corrected_citation_is_one_change_of_that_reference() -> None:
    corrected = dataclasses.replace(PAPER, citation="Smith J. A paper. Blood. 2020.")

    c = only(diff(change(references=(PAPER,)), change(references=(corrected,))))

    assert (c.kind, c.severity, c.category) == (
        ChangeKind.CHANGED,
        Severity.MINOR,
        Category.ADMINISTRATIVE,
    )
    assert c.summary == (
        "Reference changed: PMID 12345678 "
        "(citation: Smith J. A paper. 2020. → Smith J. A paper. Blood. 2020.)"
    )


def test_references_without_a_pmid_are_told_by_citation() -> None:
    old_paper = Reference(None, "RESULT", "Jones K. Interim results. ASH 2024.")
    new_paper = Reference(None, "RESULT", "Jones K. Final results. ASH 2025.")

    changes = diff(change(references=(old_paper,)), change(references=(new_paper,)))

    assert told(changes) == [
        (ChangeKind.ADDED, Severity.MINOR, "Reference added: Jones K. Final results. ASH 2025."),
        (
            ChangeKind.REMOVED,
            Severity.MINOR,
            "Reference removed: Jones K. Interim results. ASH 2024.",
        ),
    ]


LONG_CITATION = (
    "Smith J, Jones K, Brown L, et al. Selinexor plus ruxolitinib in JAK inhibitor-naive "
    "myelofibrosis: a phase 1 study. Blood. 2024;143(2):100-110."
)


def test_a_long_citation_is_cut_to_a_hundred_characters() -> None:
    assert len(LONG_CITATION) > 101
    paper = Reference(None, "RESULT", LONG_CITATION)

    c = only(diff(BASE, change(references=(*BASE.references, paper))))

    assert c.summary == f"Reference added: {LONG_CITATION[:99]}…"


def test_the_order_of_changes_does_not_depend_on_the_order_of_the_lists() -> None:
    # Two references whose names (cut at 100 characters) are the same: their changes differ
    # only in content, and that content decides their order, whatever order they came in.
    ascii_end = Reference(None, "RESULT", f"{LONG_CITATION} Erratum z.")
    accented_end = Reference(None, "BACKGROUND", f"{LONG_CITATION} Erratum é.")

    for listed in [(ascii_end, accented_end), (accented_end, ascii_end)]:
        changes = diff(change(references=listed), change(references=()))

        assert [c.old for c in changes] == [
            {"pmid": None, "type": "RESULT", "citation": ascii_end.citation},
            {"pmid": None, "type": "BACKGROUND", "citation": accented_end.citation},
        ]


def test_a_trial_is_counted_once_and_every_trial_is_counted() -> None:
    first = only(diff(BASE, change(overall_status="TERMINATED")))
    second = only(diff(BASE, change(lead_sponsor="Another sponsor")))

    count = change_count([("NCT00000001", [first]), ("NCT00000002", [second])])

    assert count == ChangeCount(2, 2)


def test_a_change_of_a_field_the_table_no_longer_has_is_named_after_the_tables() -> None:
    # A trial's history can hold changes of a field since dropped from the table.
    retired = FieldChange(
        field="verification_date",
        category=Category.ADMINISTRATIVE,
        severity=Severity.MAJOR,
        kind=ChangeKind.CHANGED,
        summary="Verification date: 2024-01 → 2024-02",
    )
    sponsor = only(diff(BASE, change(lead_sponsor="Another sponsor")))

    assert headline([retired, sponsor]) is sponsor
    assert headline([sponsor, retired]) is sponsor


def test_a_subscription_to_major_status_changes_gets_only_those() -> None:
    terminated = only(diff(BASE, change(overall_status="TERMINATED")))  # critical, status
    last_known = only(diff(BASE, change(last_known_status="RECRUITING")))  # minor, status
    sponsor = only(diff(BASE, change(lead_sponsor="Another sponsor")))  # major, administrative
    stopped = only(diff(BASE, change(why_stopped="Funding ended")))  # major, status
    posted = only(diff(BASE, change(last_update_posted="2026-11-01")))  # admin: never told
    status_major = ChangeFilter(Severity.MAJOR, frozenset({Category.STATUS}))

    assert [status_major.admits(c) for c in (terminated, last_known, sponsor, stopped)] == [
        True,
        False,
        False,
        True,
    ]
    assert [ChangeFilter().admits(c) for c in (last_known, sponsor, posted)] == [True, True, False]
    assert not ChangeFilter(Severity.ADMIN).admits(posted)


def test_change_counts_add_up() -> None:
    assert ChangeCount(1, 1) + ChangeCount(3, 2) == ChangeCount(4, 3)


@pytest.mark.parametrize(
    ("field", "noun"), [("conditions", "Condition"), ("collaborators", "Collaborator")]
)
def test_a_name_removed_and_another_added_carry_their_values_and_keys(
    field: str, noun: str
) -> None:
    """A condition (or collaborator) dropped and another named: two changes, each with the name
    as its value and its key — what the export, the history and a subscription's filter read,
    not only the sentence."""
    old = dataclasses.replace(BASE, **{field: ("Multiple Myeloma", "Sarcoma")})
    new = dataclasses.replace(BASE, **{field: ("Sarcoma", "Liposarcoma")})
    got = {(c.kind, c.old, c.new, c.item_key, c.summary) for c in diff(old, new)}
    assert got == {
        (
            ChangeKind.REMOVED,
            "Multiple Myeloma",
            None,
            "Multiple Myeloma",
            f"{noun} removed: Multiple Myeloma",
        ),
        (ChangeKind.ADDED, None, "Liposarcoma", "Liposarcoma", f"{noun} added: Liposarcoma"),
    }
