"""Build the 13 selinexor STAND-IN study records in this folder.

These are not downloads from ClinicalTrials.gov (it was out of reach). Each file is one study
object in the CT.gov API v2 shape, with its structure copied from the real records in
``tests/data/records/``. Values are public facts where they were found; everything else is
plausible and assumed (see README.md in this folder for which is which).

Run from anywhere:  python tests/data/selinexor/build_fixtures.py
It rewrites the NCT*.json files next to it (2-space indent, UTF-8, trailing newline).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VERSION_HOLDER = "2026-11-19"

KARYOPHARM = "Karyopharm Therapeutics Inc"

# --- shared building blocks -------------------------------------------------------------------

# City-level coordinates, as CT.gov gives them (GeoNames city centres).
GEO: dict[str, tuple[float, float]] = {
    "New York": (40.71427, -74.00597),
    "Boston": (42.35843, -71.05977),
    "Houston": (29.76328, -95.36327),
    "Toronto": (43.70011, -79.4163),
    "Nashville": (36.16589, -86.78444),
    "Philadelphia": (39.95233, -75.16379),
    "Los Angeles": (34.05223, -118.24368),
    "Seattle": (47.60621, -122.33207),
    "Aurora": (39.72943, -104.83192),
    "Tampa": (27.94752, -82.45843),
    "Indianapolis": (39.76838, -86.15804),
    "Rochester": (44.02163, -92.4699),
    "Columbus": (39.96118, -82.99879),
    "Chicago": (41.85003, -87.65005),
    "Leuven": (50.87959, 4.70093),
    "Copenhagen": (55.67594, 12.56553),
    "Groningen": (53.21917, 6.56667),
    "Rotterdam": (51.9225, 4.47917),
    "London": (51.50853, -0.12574),
    "Milan": (45.46427, 9.18951),
    "Naples": (40.85216, 14.26811),
    "Madrid": (40.4165, -3.70256),
    "Villejuif": (48.7939, 2.35992),
    "Athens": (37.98376, 23.72784),
    "Prague": (50.08804, 14.42076),
    "Warsaw": (52.22977, 21.01178),
    "Chorzów": (50.30582, 18.9742),
}


def loc(
    facility: str,
    city: str,
    country: str,
    *,
    state: str | None = None,
    zip_code: str | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"facility": facility}
    if status:
        out["status"] = status
    out["city"] = city
    if state:
        out["state"] = state
    if zip_code:
        out["zip"] = zip_code
    out["country"] = country
    lat, lon = GEO[city]
    out["geoPoint"] = {"lat": lat, "lon": lon}
    return out


def date(value: str, kind: str | None = "ACTUAL") -> dict[str, str]:
    """A CT.gov date struct; ``kind=None`` leaves the type out, as some real records do."""
    return {"date": value} if kind is None else {"date": value, "type": kind}


def status_module(
    *,
    verified: str,
    status: str,
    start: dict,
    primary: dict,
    completion: dict,
    first_submit: str,
    first_qc: str,
    first_post: dict,
    last_submit: str,
    last_post: dict,
    why_stopped: str | None = None,
    results: tuple[str, str, dict] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"statusVerifiedDate": verified, "overallStatus": status}
    if why_stopped:
        out["whyStopped"] = why_stopped
    out["expandedAccessInfo"] = {"hasExpandedAccess": False}
    out["startDateStruct"] = start
    out["primaryCompletionDateStruct"] = primary
    out["completionDateStruct"] = completion
    out["studyFirstSubmitDate"] = first_submit
    out["studyFirstSubmitQcDate"] = first_qc
    out["studyFirstPostDateStruct"] = first_post
    if results:
        submit, qc, post = results
        out["resultsFirstSubmitDate"] = submit
        out["resultsFirstSubmitQcDate"] = qc
        out["resultsFirstPostDateStruct"] = post
    out["lastUpdateSubmitDate"] = last_submit
    out["lastUpdatePostDateStruct"] = last_post
    return out


def sponsor(
    lead: str,
    lead_class: str,
    collaborators: list[tuple[str, str]] = (),
    party: dict[str, Any] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "responsibleParty": party or {"type": "SPONSOR"},
        "leadSponsor": {"name": lead, "class": lead_class},
    }
    if collaborators:
        out["collaborators"] = [{"name": n, "class": c} for n, c in collaborators]
    return out


def design(
    phases: list[str],
    count: int,
    count_type: str,
    *,
    allocation: str | None,
    model: str,
    masking: str = "NONE",
    who: list[str] | None = None,
) -> dict[str, Any]:
    info: dict[str, Any] = {}
    if allocation:
        info["allocation"] = allocation
    info["interventionModel"] = model
    info["primaryPurpose"] = "TREATMENT"
    mask: dict[str, Any] = {"masking": masking}
    if who:
        mask["whoMasked"] = who
    info["maskingInfo"] = mask
    return {
        "studyType": "INTERVENTIONAL",
        "phases": phases,
        "designInfo": info,
        "enrollmentInfo": {"count": count, "type": count_type},
    }


def arm(label: str, kind: str, description: str, interventions: list[str]) -> dict[str, Any]:
    return {
        "label": label,
        "type": kind,
        "description": description,
        "interventionNames": interventions,
    }


def drug(
    name: str,
    description: str,
    arms: list[str],
    other_names: list[str] | None = None,
    kind: str = "DRUG",
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": kind,
        "name": name,
        "description": description,
        "armGroupLabels": arms,
    }
    if other_names:
        out["otherNames"] = other_names
    return out


SELINEXOR_OTHER_NAMES = ["KPT-330", "XPOVIO"]


def outcome(measure: str, time_frame: str, description: str | None = None) -> dict[str, str]:
    out = {"measure": measure}
    if description:
        out["description"] = description
    out["timeFrame"] = time_frame
    return out


def eligibility(
    criteria: str,
    *,
    min_age: str = "18 Years",
    max_age: str | None = None,
    std_ages: list[str] | None = None,
    sex: str = "ALL",
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "eligibilityCriteria": criteria,
        "healthyVolunteers": False,
        "sex": sex,
        "minimumAge": min_age,
    }
    if max_age:
        out["maximumAge"] = max_age
    out["stdAges"] = std_ages or ["ADULT", "OLDER_ADULT"]
    return out


def browse(meshes: list[tuple[str, str]], ancestors: list[tuple[str, str]] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {"meshes": [{"id": i, "term": t} for i, t in meshes]}
    if ancestors:
        out["ancestors"] = [{"id": i, "term": t} for i, t in ancestors]
    return out


NEOPLASM_ANCESTORS = [("D009370", "Neoplasms by Histologic Type"), ("D009369", "Neoplasms")]
SARCOMA_ANCESTORS = [("D018204", "Neoplasms, Connective and Soft Tissue")] + NEOPLASM_ANCESTORS
SELINEXOR_ONLY_DRUGS = {
    "browseBranches": [
        {"abbrev": "ANeo", "name": "Antineoplastic Agents"},
        {"abbrev": "All", "name": "All Drugs and Chemicals"},
    ]
}


def study(
    *,
    ident: dict,
    status: dict,
    sponsors: dict,
    fda_drug: bool | None,
    summary: str,
    detail: str | None,
    conditions: list[str],
    keywords: list[str] | None,
    design_: dict,
    arms: list[dict],
    interventions: list[dict],
    primary: list[dict],
    secondary: list[dict],
    elig: dict,
    locations: list[dict],
    officials: list[dict] | None = None,
    central_contacts: list[dict] | None = None,
    references: list[dict] | None = None,
    cond_browse: dict,
    drug_browse: dict,
    has_results: bool = False,
    results: dict | None = None,
) -> dict[str, Any]:
    oversight: dict[str, Any] = {"oversightHasDmc": True}
    if fda_drug is not None:
        oversight["isFdaRegulatedDrug"] = fda_drug
        oversight["isFdaRegulatedDevice"] = False
    description = {"briefSummary": summary}
    if detail:
        description["detailedDescription"] = detail
    cond_mod: dict[str, Any] = {"conditions": conditions}
    if keywords:
        cond_mod["keywords"] = keywords
    contacts: dict[str, Any] = {}
    if central_contacts:
        contacts["centralContacts"] = central_contacts
    if officials:
        contacts["overallOfficials"] = officials
    contacts["locations"] = locations
    protocol: dict[str, Any] = {
        "identificationModule": ident,
        "statusModule": status,
        "sponsorCollaboratorsModule": sponsors,
        "oversightModule": oversight,
        "descriptionModule": description,
        "conditionsModule": cond_mod,
        "designModule": design_,
        "armsInterventionsModule": {"armGroups": arms, "interventions": interventions},
        "outcomesModule": {"primaryOutcomes": primary, "secondaryOutcomes": secondary},
        "eligibilityModule": elig,
        "contactsLocationsModule": contacts,
    }
    if references:
        protocol["referencesModule"] = {"references": references}
    out: dict[str, Any] = {"protocolSection": protocol}
    if results:
        out["resultsSection"] = results
    out["derivedSection"] = {
        "miscInfoModule": {"versionHolder": VERSION_HOLDER},
        "conditionBrowseModule": cond_browse,
        "interventionBrowseModule": drug_browse,
    }
    out["hasResults"] = has_results
    return out


STD_SOLID_CRITERIA = (
    "Inclusion Criteria:\n\n"
    "* Histologically or cytologically confirmed {disease}\n"
    "* Measurable disease per RECIST v1.1\n"
    "* ECOG performance status 0-1\n"
    "* Adequate hematologic, hepatic and renal function\n\n"
    "Exclusion Criteria:\n\n"
    "* Prior treatment with a selective inhibitor of nuclear export (SINE) compound\n"
    "* Major surgery within 4 weeks of first dose\n"
    "* Active, uncontrolled infection\n"
    "* Pregnant or breastfeeding"
)


def solid_criteria(disease: str) -> str:
    return STD_SOLID_CRITERIA.format(disease=disease)


# --- the 13 studies ---------------------------------------------------------------------------


def nct01607905() -> dict[str, Any]:
    """Table 1. KCP-330-001, phase 1, advanced hematological malignancies (Karyopharm)."""
    arm_label = "Selinexor"
    return study(
        ident={
            "nctId": "NCT01607905",
            "orgStudyIdInfo": {"id": "KCP-330-001"},
            "organization": {"fullName": KARYOPHARM, "class": "INDUSTRY"},
            "briefTitle": "Safety Study of the Selective Inhibitor of Nuclear Export (SINE) "
            "KPT-330 in Patients With Advanced Hematological Cancer",
            "officialTitle": "A Phase 1 Study of the Safety, Tolerability, Pharmacokinetics and "
            "Pharmacodynamics of the Oral Selective Inhibitor of Nuclear Export "
            "(SINE) KPT-330 in Patients With Advanced Hematological Malignancies",
        },
        status=status_module(
            verified="2019-03",
            status="COMPLETED",
            start=date("2012-06", None),
            primary=date("2016-06"),
            completion=date("2018-10"),
            first_submit="2012-05-25",
            first_qc="2012-05-29",
            first_post=date("2012-05-30", "ESTIMATED"),
            last_submit="2019-03-11",
            last_post=date("2019-03-13"),
        ),
        sponsors=sponsor(KARYOPHARM, "INDUSTRY"),
        fda_drug=None,
        summary="This is a phase 1, open-label, dose-escalation study of oral selinexor (KPT-330) "
        "in patients with relapsed or refractory hematological malignancies, to find the "
        "maximum tolerated dose and recommended phase 2 dose.",
        detail=None,
        conditions=[
            "Multiple Myeloma",
            "Waldenstrom Macroglobulinemia",
            "Non-Hodgkin Lymphoma",
            "Acute Myeloid Leukemia",
            "Chronic Lymphocytic Leukemia",
        ],
        keywords=["SINE", "XPO1", "CRM1"],
        design_=design(["PHASE1"], 286, "ACTUAL", allocation="NA", model="SINGLE_GROUP"),
        arms=[
            arm(
                arm_label,
                "EXPERIMENTAL",
                "Oral selinexor, dose escalation then expansion cohorts by disease type.",
                ["Drug: Selinexor"],
            )
        ],
        interventions=[
            drug(
                "Selinexor",
                "Oral tablets, twice weekly or per cohort schedule.",
                [arm_label],
                SELINEXOR_OTHER_NAMES,
            )
        ],
        primary=[
            outcome("Maximum Tolerated Dose (MTD) of selinexor", "Cycle 1 (28 days)"),
            outcome("Number of participants with dose-limiting toxicities", "Cycle 1 (28 days)"),
        ],
        secondary=[
            outcome("Maximum plasma concentration (Cmax) of selinexor", "Cycle 1 Day 1"),
            outcome("Overall response rate", "Up to 2 years"),
        ],
        elig=eligibility(
            "Inclusion Criteria:\n\n* Relapsed or refractory hematological malignancy with no "
            "available standard therapy\n* ECOG performance status 0-2\n\nExclusion Criteria:\n\n"
            "* Active central nervous system involvement\n* Prior allogeneic transplant within "
            "3 months"
        ),
        locations=[
            loc(
                "MD Anderson Cancer Center",
                "Houston",
                "United States",
                state="Texas",
                zip_code="77030",
            ),
            loc(
                "Dana-Farber Cancer Institute",
                "Boston",
                "United States",
                state="Massachusetts",
                zip_code="02215",
            ),
            loc(
                "Weill Cornell Medical College",
                "New York",
                "United States",
                state="New York",
                zip_code="10065",
            ),
            loc(
                "Ohio State University Comprehensive Cancer Center",
                "Columbus",
                "United States",
                state="Ohio",
                zip_code="43210",
            ),
            loc(
                "Princess Margaret Cancer Centre",
                "Toronto",
                "Canada",
                state="Ontario",
                zip_code="M5G 2M9",
            ),
        ],
        cond_browse=browse(
            [
                ("D009101", "Multiple Myeloma"),
                ("D008258", "Waldenstrom Macroglobulinemia"),
                ("D008228", "Lymphoma, Non-Hodgkin"),
                ("D015470", "Leukemia, Myeloid, Acute"),
                ("D015451", "Leukemia, Lymphocytic, Chronic, B-Cell"),
            ],
            [("D019337", "Hematologic Neoplasms")] + NEOPLASM_ANCESTORS,
        ),
        drug_browse=SELINEXOR_ONLY_DRUGS,
    )


def nct03110562() -> dict[str, Any]:
    """Table 1. BOSTON, phase 3, SVd vs Vd in previously treated multiple myeloma (Karyopharm)."""
    svd, vd = "Selinexor + Bortezomib + Dexamethasone (SVd)", "Bortezomib + Dexamethasone (Vd)"
    return study(
        ident={
            "nctId": "NCT03110562",
            "orgStudyIdInfo": {"id": "KCP-330-023"},
            "organization": {"fullName": KARYOPHARM, "class": "INDUSTRY"},
            "briefTitle": "Bortezomib, Selinexor, and Dexamethasone in Patients With Multiple Myeloma",
            "officialTitle": "A Phase 3 Randomized, Controlled, Open-label Study of Selinexor, "
            "Bortezomib, and Dexamethasone (SVd) Versus Bortezomib and "
            "Dexamethasone (Vd) in Patients With Relapsed or Refractory Multiple "
            "Myeloma (RRMM)",
            "acronym": "BOSTON",
        },
        status=status_module(
            verified="2024-02",
            status="COMPLETED",
            start=date("2017-06-06"),
            primary=date("2020-02-18"),
            completion=date("2023-11-30"),
            first_submit="2017-04-07",
            first_qc="2017-04-07",
            first_post=date("2017-04-12"),
            results=("2021-02-10", "2021-03-22", date("2021-04-15")),
            last_submit="2024-02-05",
            last_post=date("2024-02-07"),
        ),
        sponsors=sponsor(KARYOPHARM, "INDUSTRY"),
        fda_drug=True,
        summary="Global, randomized, open-label phase 3 study comparing once-weekly selinexor with "
        "once-weekly bortezomib and low-dose dexamethasone (SVd) against standard "
        "twice-weekly bortezomib and dexamethasone (Vd) in adults with multiple myeloma "
        "who received 1 to 3 prior lines of therapy.",
        detail="Participants are randomized 1:1 with stratification by prior proteasome inhibitor "
        "therapy, number of prior regimens and R-ISS stage. Participants on Vd with "
        "confirmed progression may cross over to a selinexor-containing regimen.",
        conditions=["Multiple Myeloma"],
        keywords=["Relapsed Refractory Multiple Myeloma", "Selinexor", "XPO1"],
        design_=design(["PHASE3"], 402, "ACTUAL", allocation="RANDOMIZED", model="PARALLEL"),
        arms=[
            arm(
                svd,
                "EXPERIMENTAL",
                "Selinexor 100 mg once weekly, bortezomib 1.3 mg/m2 once "
                "weekly and dexamethasone 20 mg twice weekly, 35-day cycles.",
                ["Drug: Selinexor", "Drug: Bortezomib", "Drug: Dexamethasone"],
            ),
            arm(
                vd,
                "ACTIVE_COMPARATOR",
                "Bortezomib 1.3 mg/m2 twice weekly and dexamethasone "
                "20 mg four times weekly for 24 weeks, then once and twice weekly.",
                ["Drug: Bortezomib", "Drug: Dexamethasone"],
            ),
        ],
        interventions=[
            drug("Selinexor", "Oral tablets.", [svd], SELINEXOR_OTHER_NAMES),
            drug("Bortezomib", "Subcutaneous injection.", [svd, vd], ["Velcade"]),
            drug("Dexamethasone", "Oral tablets.", [svd, vd]),
        ],
        primary=[
            outcome(
                "Progression-Free Survival (PFS)",
                "From randomization until disease progression or death (up to approximately 32 months)",
                "Time from randomization to first IMWG-defined progression or death from any cause, per independent review.",
            )
        ],
        secondary=[
            outcome("Overall Response Rate (ORR)", "Up to approximately 32 months"),
            outcome(
                "Percentage of participants with grade 2 or higher peripheral neuropathy",
                "Up to approximately 32 months",
            ),
            outcome("Overall Survival (OS)", "Up to approximately 5 years"),
        ],
        elig=eligibility(
            "Inclusion Criteria:\n\n* Measurable multiple myeloma per IMWG criteria\n* 1 to 3 prior "
            "anti-myeloma regimens\n* ECOG performance status 0-2\n\nExclusion Criteria:\n\n* Prior "
            "selinexor or other XPO1 inhibitor\n* Bortezomib-refractory disease\n* Grade 2 or "
            "higher peripheral neuropathy at baseline"
        ),
        locations=[
            loc("Alexandra General Hospital", "Athens", "Greece", zip_code="11528"),
            loc("Szpital Specjalistyczny w Chorzowie", "Chorzów", "Poland", zip_code="41-500"),
            loc("Research Site", "Warsaw", "Poland", zip_code="02-776"),
            loc("Research Site", "Warsaw", "Poland", zip_code="02-097"),
            loc("General University Hospital in Prague", "Prague", "Czechia", zip_code="128 08"),
            loc(
                "Sarah Cannon Research Institute",
                "Nashville",
                "United States",
                state="Tennessee",
                zip_code="37203",
            ),
            loc("Universitaire Ziekenhuizen Leuven", "Leuven", "Belgium", zip_code="3000"),
        ],
        officials=[{"name": "Study Director", "affiliation": KARYOPHARM, "role": "STUDY_DIRECTOR"}],
        references=[
            {
                "pmid": "33189178",
                "type": "RESULT",
                "citation": "Grosicki S, Simonova M, Spicka I, et al. Once-per-week selinexor, "
                "bortezomib, and dexamethasone versus twice-per-week bortezomib and "
                "dexamethasone in patients with multiple myeloma (BOSTON): a "
                "randomised, open-label, phase 3 trial. Lancet. 2020;396(10262):1563-1573.",
            }
        ],
        cond_browse=browse(
            [("D009101", "Multiple Myeloma")],
            [
                ("D054219", "Neoplasms, Plasma Cell"),
                ("D010265", "Paraproteinemias"),
                ("D019337", "Hematologic Neoplasms"),
            ]
            + NEOPLASM_ANCESTORS,
        ),
        drug_browse=browse(
            [("D000069286", "Bortezomib"), ("D003907", "Dexamethasone")],
            [("D061988", "Proteasome Inhibitors"), ("D000970", "Antineoplastic Agents")],
        ),
        has_results=True,
        results={
            "participantFlowModule": {
                "groups": [{"id": "FG000", "title": svd}, {"id": "FG001", "title": vd}],
                "periods": [
                    {
                        "title": "Overall Study",
                        "milestones": [
                            {
                                "type": "STARTED",
                                "achievements": [
                                    {"groupId": "FG000", "numSubjects": "195"},
                                    {"groupId": "FG001", "numSubjects": "207"},
                                ],
                            }
                        ],
                    }
                ],
            }
        },
    )


def nct02025985() -> dict[str, Any]:
    """Table 1. Phase 2 selinexor in recurrent gynecological malignancies (Vergote et al.)."""
    a, b, c = (
        "Selinexor 35 mg/m2 twice weekly",
        "Selinexor 50 mg/m2 twice weekly",
        "Selinexor 50 mg/m2 once weekly",
    )
    return study(
        ident={
            "nctId": "NCT02025985",
            "orgStudyIdInfo": {"id": "KCP-330-006"},
            "organization": {"fullName": KARYOPHARM, "class": "INDUSTRY"},
            "briefTitle": "Selinexor (KPT-330) in Patients With Advanced Gynecologic Malignancies",
            "officialTitle": "A Phase 2, Open-Label, Randomized Study of the Selective Inhibitor of "
            "Nuclear Export (SINE) Selinexor (KPT-330) in Patients With Advanced or "
            "Metastatic Ovarian, Endometrial or Cervical Carcinoma",
        },
        status=status_module(
            verified="2018-09",
            status="COMPLETED",
            start=date("2014-01"),
            primary=date("2017-08"),
            completion=date("2018-06"),
            first_submit="2013-12-27",
            first_qc="2013-12-30",
            first_post=date("2014-01-01", "ESTIMATED"),
            last_submit="2018-09-04",
            last_post=date("2018-09-06"),
        ),
        sponsors=sponsor(KARYOPHARM, "INDUSTRY"),
        fda_drug=True,
        summary="Open-label phase 2 study of oral selinexor in patients with heavily pretreated "
        "recurrent ovarian, endometrial or cervical cancer, evaluating disease control "
        "and safety at two twice-weekly doses and one once-weekly dose.",
        detail=None,
        conditions=["Ovarian Cancer", "Endometrial Cancer", "Cervical Cancer"],
        keywords=["Gynecologic Malignancies", "SINE"],
        design_=design(["PHASE2"], 114, "ACTUAL", allocation="RANDOMIZED", model="PARALLEL"),
        arms=[
            arm(
                a,
                "EXPERIMENTAL",
                "Oral selinexor 35 mg/m2 twice weekly, 4-week cycles.",
                ["Drug: Selinexor"],
            ),
            arm(
                b,
                "EXPERIMENTAL",
                "Oral selinexor 50 mg/m2 twice weekly, 4-week cycles.",
                ["Drug: Selinexor"],
            ),
            arm(
                c,
                "EXPERIMENTAL",
                "Oral selinexor 50 mg/m2 once weekly, 4-week cycles.",
                ["Drug: Selinexor"],
            ),
        ],
        interventions=[drug("Selinexor", "Oral tablets.", [a, b, c], SELINEXOR_OTHER_NAMES)],
        primary=[
            outcome(
                "Disease Control Rate (DCR)",
                "Up to 12 months",
                "Complete response, partial response, or stable disease lasting at least 12 weeks.",
            )
        ],
        secondary=[
            outcome("Progression-Free Survival (PFS)", "Up to 24 months"),
            outcome("Overall Survival (OS)", "Up to 24 months"),
        ],
        elig=eligibility(
            solid_criteria("recurrent ovarian, endometrial or cervical carcinoma"), sex="FEMALE"
        ),
        locations=[
            loc("Universitaire Ziekenhuizen Leuven", "Leuven", "Belgium", zip_code="3000"),
            loc("Rigshospitalet", "Copenhagen", "Denmark", zip_code="2100"),
            loc(
                "University Medical Center Groningen",
                "Groningen",
                "Netherlands",
                zip_code="9713 GZ",
            ),
            loc(
                "Princess Margaret Cancer Centre",
                "Toronto",
                "Canada",
                state="Ontario",
                zip_code="M5G 2M9",
            ),
        ],
        officials=[
            {
                "name": "Ignace Vergote, MD, PhD",
                "affiliation": "University Hospitals Leuven",
                "role": "PRINCIPAL_INVESTIGATOR",
            }
        ],
        cond_browse=browse(
            [
                ("D010051", "Ovarian Neoplasms"),
                ("D016889", "Endometrial Neoplasms"),
                ("D002583", "Uterine Cervical Neoplasms"),
            ],
            [
                ("D014594", "Uterine Neoplasms"),
                ("D005833", "Genital Neoplasms, Female"),
                ("D009369", "Neoplasms"),
            ],
        ),
        drug_browse=SELINEXOR_ONLY_DRUGS,
    )


def nct01607892() -> dict[str, Any]:
    """Table 1. KCP-330-002, phase 1, advanced or metastatic solid tumors (Karyopharm)."""
    arm_label = "Selinexor"
    return study(
        ident={
            "nctId": "NCT01607892",
            "orgStudyIdInfo": {"id": "KCP-330-002"},
            "organization": {"fullName": KARYOPHARM, "class": "INDUSTRY"},
            "briefTitle": "Safety Study of the Selective Inhibitor of Nuclear Export (SINE) KPT-330 "
            "in Patients With Advanced or Metastatic Solid Tumor Malignancies",
            "officialTitle": "A Phase 1 Study of the Safety, Tolerability and Pharmacokinetics of "
            "the Oral Selective Inhibitor of Nuclear Export (SINE) KPT-330 in "
            "Patients With Advanced or Metastatic Solid Tumor Malignancies",
        },
        status=status_module(
            verified="2018-05",
            status="COMPLETED",
            start=date("2012-06"),
            primary=date("2015-12"),
            completion=date("2017-12"),
            first_submit="2012-05-25",
            first_qc="2012-05-29",
            first_post=date("2012-05-30", "ESTIMATED"),
            last_submit="2018-05-21",
            last_post=date("2018-05-23"),
        ),
        sponsors=sponsor(KARYOPHARM, "INDUSTRY"),
        fda_drug=None,
        summary="Phase 1, open-label, dose-escalation study of oral selinexor in patients with "
        "advanced or metastatic solid tumors, followed by expansion cohorts including "
        "soft tissue and bone sarcoma.",
        detail=None,
        conditions=[
            "Advanced Solid Tumors",
            "Soft Tissue Sarcoma",
            "Bone Sarcoma",
            "Colorectal Cancer",
        ],
        keywords=["SINE", "XPO1"],
        design_=design(["PHASE1"], 189, "ACTUAL", allocation="NA", model="SINGLE_GROUP"),
        arms=[
            arm(
                arm_label,
                "EXPERIMENTAL",
                "Oral selinexor, dose escalation and expansion.",
                ["Drug: Selinexor"],
            )
        ],
        interventions=[
            drug(
                "Selinexor", "Oral tablets, 2-3 doses per week.", [arm_label], SELINEXOR_OTHER_NAMES
            )
        ],
        primary=[
            outcome("Number of participants with dose-limiting toxicities", "Cycle 1 (28 days)"),
            outcome("Recommended phase 2 dose (RP2D) of selinexor", "Up to 12 months"),
        ],
        secondary=[
            outcome(
                "Area under the plasma concentration-time curve (AUC) of selinexor",
                "Cycle 1 Day 1 and Day 8",
            ),
            outcome("Best overall response per RECIST v1.1", "Up to 24 months"),
        ],
        elig=eligibility(
            solid_criteria("advanced or metastatic solid tumor with no standard therapy")
        ),
        locations=[
            loc(
                "Princess Margaret Cancer Centre",
                "Toronto",
                "Canada",
                state="Ontario",
                zip_code="M5G 2M9",
            ),
            loc(
                "Memorial Sloan Kettering Cancer Center",
                "New York",
                "United States",
                state="New York",
                zip_code="10065",
            ),
            loc(
                "Dana-Farber Cancer Institute",
                "Boston",
                "United States",
                state="Massachusetts",
                zip_code="02215",
            ),
            loc(
                "MD Anderson Cancer Center",
                "Houston",
                "United States",
                state="Texas",
                zip_code="77030",
            ),
        ],
        cond_browse=browse(
            [("D009369", "Neoplasms"), ("D012509", "Sarcoma"), ("D015179", "Colorectal Neoplasms")],
            SARCOMA_ANCESTORS[:2],
        ),
        drug_browse=SELINEXOR_ONLY_DRUGS,
    )


def nct02606461() -> dict[str, Any]:
    """Table 1. SEAL, phase 2/3, selinexor vs placebo in dedifferentiated liposarcoma."""
    sel, pbo = "Selinexor 60 mg", "Placebo"
    return study(
        ident={
            "nctId": "NCT02606461",
            "orgStudyIdInfo": {"id": "KCP-330-020"},
            "secondaryIdInfos": [{"id": "2015-003594-14", "type": "EUDRACT_NUMBER"}],
            "organization": {"fullName": KARYOPHARM, "class": "INDUSTRY"},
            "briefTitle": "Selinexor in Advanced Liposarcoma",
            "officialTitle": "A Phase 2-3, Multicenter, Randomized, Double-Blind Study of Selinexor "
            "(KPT-330) Versus Placebo in Patients With Advanced Unresectable "
            "Dedifferentiated Liposarcoma (DDLS)",
            "acronym": "SEAL",
        },
        status=status_module(
            verified="2026-05",
            status="ACTIVE_NOT_RECRUITING",
            start=date("2015-12-10"),
            primary=date("2020-06-22"),
            completion=date("2026-12-31", "ESTIMATED"),
            first_submit="2015-11-13",
            first_qc="2015-11-13",
            first_post=date("2015-11-17", "ESTIMATED"),
            last_submit="2026-05-12",
            last_post=date("2026-05-14"),
        ),
        sponsors=sponsor(KARYOPHARM, "INDUSTRY"),
        fda_drug=True,
        summary="Randomized, double-blind, placebo-controlled phase 2-3 study of oral selinexor "
        "60 mg twice weekly versus matching placebo in patients with advanced unresectable "
        "dedifferentiated liposarcoma after at least 2 prior systemic therapies.",
        detail="Phase 2 randomized approximately 57 patients 1:1; phase 3 randomized approximately "
        "285 patients 2:1. Patients on placebo with objective progression may cross over "
        "to open-label selinexor.",
        conditions=["Liposarcoma", "Dedifferentiated Liposarcoma"],
        keywords=["DDLS", "Soft Tissue Sarcoma", "Selinexor"],
        design_=design(
            ["PHASE2", "PHASE3"],
            342,
            "ACTUAL",
            allocation="RANDOMIZED",
            model="PARALLEL",
            masking="DOUBLE",
            who=["PARTICIPANT", "INVESTIGATOR"],
        ),
        arms=[
            arm(
                sel,
                "EXPERIMENTAL",
                "Selinexor 60 mg orally twice weekly in 6-week cycles.",
                ["Drug: Selinexor"],
            ),
            arm(
                pbo,
                "PLACEBO_COMPARATOR",
                "Matching placebo orally twice weekly in 6-week "
                "cycles; crossover to selinexor allowed on progression.",
                ["Drug: Placebo"],
            ),
        ],
        interventions=[
            drug("Selinexor", "Oral tablets.", [sel], SELINEXOR_OTHER_NAMES),
            drug("Placebo", "Matching oral tablets.", [pbo]),
        ],
        primary=[
            outcome(
                "Progression-Free Survival (PFS)",
                "Up to approximately 4 years",
                "Time from randomization to progression per RECIST v1.1 (independent central review) or death from any cause.",
            )
        ],
        secondary=[
            outcome("Overall Survival (OS)", "Up to approximately 6 years"),
            outcome(
                "Time to progression on study treatment compared with the last prior therapy",
                "Up to approximately 4 years",
            ),
            outcome(
                "Change from baseline in EORTC QLQ-C30 global health status",
                "Up to approximately 4 years",
            ),
        ],
        elig=eligibility(
            solid_criteria("dedifferentiated liposarcoma with radiologic progression").replace(
                "* ECOG performance status 0-1",
                "* ECOG performance status 0-1\n"
                "* At least 2 and no more than 5 prior systemic therapies",
            ),
            min_age="12 Years",
            std_ages=["CHILD", "ADULT", "OLDER_ADULT"],
        ),
        locations=[
            loc(
                "Memorial Sloan Kettering Cancer Center",
                "New York",
                "United States",
                state="New York",
                zip_code="10065",
            ),
            loc(
                "Dana-Farber Cancer Institute",
                "Boston",
                "United States",
                state="Massachusetts",
                zip_code="02215",
            ),
            loc(
                "Princess Margaret Cancer Centre",
                "Toronto",
                "Canada",
                state="Ontario",
                zip_code="M5G 2M9",
            ),
            loc(
                "The Royal Marsden NHS Foundation Trust",
                "London",
                "United Kingdom",
                zip_code="SW3 6JJ",
            ),
            loc("Gustave Roussy", "Villejuif", "France", zip_code="94805"),
            loc(
                "Fondazione IRCCS Istituto Nazionale dei Tumori", "Milan", "Italy", zip_code="20133"
            ),
        ],
        officials=[
            {
                "name": "Mrinal M. Gounder, MD",
                "affiliation": "Memorial Sloan Kettering Cancer Center",
                "role": "PRINCIPAL_INVESTIGATOR",
            }
        ],
        references=[
            {
                "type": "RESULT",
                "citation": "Gounder MM, Razak AA, Somaiah N, et al. Selinexor in Advanced, "
                "Metastatic Dedifferentiated Liposarcoma: A Multinational, "
                "Randomized, Double-Blind, Placebo-Controlled Trial. J Clin Oncol. 2022.",
            }
        ],
        cond_browse=browse(
            [("D008080", "Liposarcoma")],
            [("D018205", "Neoplasms, Adipose Tissue"), ("D012509", "Sarcoma")] + SARCOMA_ANCESTORS,
        ),
        drug_browse=SELINEXOR_ONLY_DRUGS,
    )


def nct04811196() -> dict[str, Any]:
    """Table 2. METSSAR, phase 1, dosing schedules of selinexor in sarcoma (UHN Toronto)."""
    a, b = "Arm A: dose escalation (MPNST, ESS, LMS)", "Arm B: once-weekly flat dose (any STS)"
    return study(
        ident={
            "nctId": "NCT04811196",
            "orgStudyIdInfo": {"id": "METSSAR"},
            "organization": {"fullName": "University Health Network, Toronto", "class": "OTHER"},
            "briefTitle": "A Study of Different Dosing Schedules of Selinexor in Sarcoma Patients",
            "officialTitle": "A Phase I Study of Low-Dose and Alternative Dosing Schedules of "
            "Selinexor in Patients With Advanced Soft Tissue Sarcoma",
        },
        status=status_module(
            verified="2024-03",
            status="ACTIVE_NOT_RECRUITING",
            start=date("2021-03-29"),
            primary=date("2024-08-01", "ESTIMATED"),
            completion=date("2025-02-01", "ESTIMATED"),
            first_submit="2021-03-18",
            first_qc="2021-03-18",
            first_post=date("2021-03-23"),
            last_submit="2024-03-12",
            last_post=date("2024-03-14"),
        ),
        sponsors=sponsor("University Health Network, Toronto", "OTHER", [(KARYOPHARM, "INDUSTRY")]),
        fda_drug=False,
        summary="Phase 1, open-label, single-centre study testing low doses and different dosing "
        "schedules of selinexor in participants with soft tissue sarcomas that cannot be "
        "treated with standard therapies, to see whether side effects can be reduced "
        "without losing benefit.",
        detail=None,
        conditions=[
            "Soft Tissue Sarcoma",
            "Malignant Peripheral Nerve Sheath Tumors",
            "Endometrial Stromal Sarcoma",
            "Leiomyosarcoma",
        ],
        keywords=None,
        design_=design(["PHASE1"], 56, "ESTIMATED", allocation="NON_RANDOMIZED", model="PARALLEL"),
        arms=[
            arm(
                a,
                "EXPERIMENTAL",
                "Selinexor by mouth 4 days a week, escalating low doses (up to 36 participants).",
                ["Drug: Selinexor"],
            ),
            arm(
                b,
                "EXPERIMENTAL",
                "Flat-dose selinexor by mouth once weekly (up to 20 participants).",
                ["Drug: Selinexor"],
            ),
        ],
        interventions=[drug("Selinexor", "Oral tablets.", [a, b], SELINEXOR_OTHER_NAMES)],
        primary=[
            outcome("Number of participants with dose-limiting toxicities", "Cycle 1 (28 days)"),
            outcome("Incidence of treatment-emergent adverse events (CTCAE v5.0)", "Up to 2 years"),
        ],
        secondary=[outcome("Objective response rate per RECIST v1.1", "Up to 2 years")],
        elig=eligibility(solid_criteria("advanced or metastatic soft tissue sarcoma")),
        locations=[
            loc(
                "Princess Margaret Cancer Centre",
                "Toronto",
                "Canada",
                state="Ontario",
                zip_code="M5G 2M9",
            )
        ],
        cond_browse=browse(
            [
                ("D012509", "Sarcoma"),
                ("D007890", "Leiomyosarcoma"),
                ("D018319", "Neurofibrosarcoma"),
                ("D018203", "Sarcoma, Endometrial Stromal"),
            ],
            SARCOMA_ANCESTORS,
        ),
        drug_browse=SELINEXOR_ONLY_DRUGS,
    )


def nct03193437() -> dict[str, Any]:
    """Table 2. ASSUMED content: phase 2 selinexor in thymic epithelial tumors, terminated."""
    arm_label = "Selinexor"
    return study(
        ident={
            "nctId": "NCT03193437",
            "orgStudyIdInfo": {"id": "IUSCC-0617"},
            "organization": {"fullName": "Indiana University", "class": "OTHER"},
            "briefTitle": "Selinexor in Advanced Thymic Epithelial Tumors",
            "officialTitle": "A Phase II Study of the Selective Inhibitor of Nuclear Export "
            "Selinexor in Patients With Relapsed or Refractory Thymoma and Thymic "
            "Carcinoma",
        },
        status=status_module(
            verified="2019-11",
            status="TERMINATED",
            why_stopped="Slow accrual",
            start=date("2017-09-12"),
            primary=date("2019-10-01"),
            completion=date("2019-10-01"),
            first_submit="2017-06-16",
            first_qc="2017-06-16",
            first_post=date("2017-06-20"),
            last_submit="2019-11-04",
            last_post=date("2019-11-06"),
        ),
        sponsors=sponsor("Indiana University", "OTHER", [(KARYOPHARM, "INDUSTRY")]),
        fda_drug=True,
        summary="Single-arm phase 2 study of oral selinexor in patients with thymoma or thymic "
        "carcinoma that progressed after at least one platinum-based regimen.",
        detail=None,
        conditions=["Thymoma", "Thymic Carcinoma"],
        keywords=["Thymic Epithelial Tumor"],
        design_=design(["PHASE2"], 9, "ACTUAL", allocation="NA", model="SINGLE_GROUP"),
        arms=[
            arm(
                arm_label,
                "EXPERIMENTAL",
                "Selinexor 60 mg orally twice weekly, 28-day cycles.",
                ["Drug: Selinexor"],
            )
        ],
        interventions=[drug("Selinexor", "Oral tablets.", [arm_label], SELINEXOR_OTHER_NAMES)],
        primary=[outcome("Objective Response Rate (ORR) per RECIST v1.1", "Up to 24 months")],
        secondary=[
            outcome("Progression-Free Survival (PFS)", "Up to 24 months"),
            outcome(
                "Number of participants with grade 3 or higher adverse events", "Up to 24 months"
            ),
        ],
        elig=eligibility(
            solid_criteria(
                "thymoma or thymic carcinoma progressing after platinum-based chemotherapy"
            )
        ),
        locations=[
            loc(
                "Indiana University Melvin and Bren Simon Cancer Center",
                "Indianapolis",
                "United States",
                state="Indiana",
                zip_code="46202",
            ),
            loc(
                "University of Colorado Cancer Center",
                "Aurora",
                "United States",
                state="Colorado",
                zip_code="80045",
            ),
        ],
        cond_browse=browse(
            [("D013945", "Thymoma"), ("D013953", "Thymus Neoplasms")], NEOPLASM_ANCESTORS
        ),
        drug_browse=SELINEXOR_ONLY_DRUGS,
    )


def nct04138381() -> dict[str, Any]:
    """Table 2. ASSUMED content: phase 1b selinexor + imatinib in advanced GIST."""
    arm_label = "Selinexor + Imatinib"
    return study(
        ident={
            "nctId": "NCT04138381",
            "orgStudyIdInfo": {"id": "MCC-20211"},
            "organization": {
                "fullName": "H. Lee Moffitt Cancer Center and Research Institute",
                "class": "OTHER",
            },
            "briefTitle": "Selinexor and Imatinib in Advanced Gastrointestinal Stromal Tumor",
            "officialTitle": "A Phase Ib Study of Selinexor in Combination With Imatinib in "
            "Patients With Advanced Gastrointestinal Stromal Tumor After Failure "
            "of Standard Therapies",
        },
        status=status_module(
            verified="2025-10",
            status="ACTIVE_NOT_RECRUITING",
            start=date("2020-01-15"),
            primary=date("2024-12-31"),
            completion=date("2026-06-30", "ESTIMATED"),
            first_submit="2019-10-22",
            first_qc="2019-10-22",
            first_post=date("2019-10-24"),
            last_submit="2025-10-20",
            last_post=date("2025-10-22"),
        ),
        sponsors=sponsor(
            "H. Lee Moffitt Cancer Center and Research Institute",
            "OTHER",
            [(KARYOPHARM, "INDUSTRY")],
        ),
        fda_drug=True,
        summary="Phase Ib dose-finding study of selinexor given with imatinib in patients with "
        "advanced gastrointestinal stromal tumor (GIST) that progressed on prior "
        "tyrosine kinase inhibitors.",
        detail=None,
        conditions=["Gastrointestinal Stromal Tumor"],
        keywords=["GIST", "KIT"],
        design_=design(["PHASE1"], 24, "ACTUAL", allocation="NA", model="SINGLE_GROUP"),
        arms=[
            arm(
                arm_label,
                "EXPERIMENTAL",
                "Selinexor orally once weekly (dose levels 40-80 mg) "
                "with imatinib 400 mg orally daily.",
                ["Drug: Selinexor", "Drug: Imatinib"],
            )
        ],
        interventions=[
            drug("Selinexor", "Oral tablets.", [arm_label], SELINEXOR_OTHER_NAMES),
            drug("Imatinib", "Oral tablets, 400 mg daily.", [arm_label], ["Gleevec"]),
        ],
        primary=[
            outcome("Maximum Tolerated Dose (MTD) of selinexor with imatinib", "Cycle 1 (28 days)")
        ],
        secondary=[
            outcome("Clinical benefit rate at 16 weeks", "16 weeks"),
            outcome("Progression-Free Survival (PFS)", "Up to 2 years"),
        ],
        elig=eligibility(
            solid_criteria("advanced GIST after progression on imatinib and at least one other TKI")
        ),
        locations=[
            loc(
                "H. Lee Moffitt Cancer Center and Research Institute",
                "Tampa",
                "United States",
                state="Florida",
                zip_code="33612",
            ),
            loc(
                "University of Chicago Medical Center",
                "Chicago",
                "United States",
                state="Illinois",
                zip_code="60637",
            ),
            loc("Mayo Clinic", "Rochester", "United States", state="Minnesota", zip_code="55905"),
        ],
        cond_browse=browse(
            [("D046152", "Gastrointestinal Stromal Tumors")],
            [("D005770", "Gastrointestinal Neoplasms")] + SARCOMA_ANCESTORS,
        ),
        drug_browse=browse(
            [("D000068877", "Imatinib Mesylate")],
            [("D047428", "Protein Kinase Inhibitors"), ("D000970", "Antineoplastic Agents")],
        ),
    )


def nct04595994() -> dict[str, Any]:
    """Table 2. ASSUMED content: phase 2 selinexor in relapsed Ewing sarcoma, recruiting."""
    arm_label = "Selinexor"
    return study(
        ident={
            "nctId": "NCT04595994",
            "orgStudyIdInfo": {"id": "INT-SARC-2020-07"},
            "organization": {"fullName": "National Cancer Institute, Naples", "class": "OTHER"},
            "briefTitle": "Selinexor in Relapsed or Refractory Ewing Sarcoma",
            "officialTitle": "A Phase II, Single-Arm Study of Oral Selinexor in Adolescent and Adult "
            "Patients With Relapsed or Refractory Ewing Sarcoma",
        },
        status=status_module(
            verified="2026-09",
            status="RECRUITING",
            start=date("2021-02-01"),
            primary=date("2027-06-30", "ESTIMATED"),
            completion=date("2027-12-31", "ESTIMATED"),
            first_submit="2020-10-15",
            first_qc="2020-10-15",
            first_post=date("2020-10-22"),
            last_submit="2026-09-08",
            last_post=date("2026-09-10"),
        ),
        sponsors=sponsor("National Cancer Institute, Naples", "OTHER", [(KARYOPHARM, "INDUSTRY")]),
        fda_drug=False,
        summary="Single-arm phase 2 study of oral selinexor in patients aged 12 years and older "
        "with Ewing sarcoma that relapsed after, or did not respond to, standard therapy.",
        detail=None,
        conditions=["Ewing Sarcoma"],
        keywords=["EWSR1", "Bone Sarcoma"],
        design_=design(["PHASE2"], 38, "ESTIMATED", allocation="NA", model="SINGLE_GROUP"),
        arms=[
            arm(
                arm_label,
                "EXPERIMENTAL",
                "Selinexor 60 mg orally once weekly, 28-day cycles.",
                ["Drug: Selinexor"],
            )
        ],
        interventions=[drug("Selinexor", "Oral tablets.", [arm_label], SELINEXOR_OTHER_NAMES)],
        primary=[outcome("Progression-Free Survival rate at 6 months", "6 months")],
        secondary=[
            outcome("Objective Response Rate (ORR) per RECIST v1.1", "Up to 24 months"),
            outcome("Overall Survival (OS)", "Up to 36 months"),
        ],
        elig=eligibility(
            solid_criteria("Ewing sarcoma relapsed or refractory after first-line therapy"),
            min_age="12 Years",
            std_ages=["CHILD", "ADULT", "OLDER_ADULT"],
        ),
        central_contacts=[
            {
                "name": "Trial Coordinator",
                "role": "CONTACT",
                "phone": "+39 081 0000000",
                "email": "selinexor.trial@example.org",
            }
        ],
        locations=[
            loc(
                "Istituto Nazionale Tumori IRCCS Fondazione G. Pascale",
                "Naples",
                "Italy",
                zip_code="80131",
                status="RECRUITING",
            ),
            loc(
                "Fondazione IRCCS Istituto Nazionale dei Tumori",
                "Milan",
                "Italy",
                zip_code="20133",
                status="RECRUITING",
            ),
            loc(
                "Hospital Universitario Niño Jesús",
                "Madrid",
                "Spain",
                zip_code="28009",
                status="NOT_YET_RECRUITING",
            ),
        ],
        cond_browse=browse(
            [("D012512", "Sarcoma, Ewing")],
            [("D018213", "Neoplasms, Bone Tissue"), ("D012509", "Sarcoma")] + SARCOMA_ANCESTORS,
        ),
        drug_browse=SELINEXOR_ONLY_DRUGS,
    )


def nct03042819() -> dict[str, Any]:
    """Table 2. ASSUMED content: phase 1b selinexor + doxorubicin in advanced soft tissue sarcoma."""
    arm_label = "Selinexor + Doxorubicin"
    return study(
        ident={
            "nctId": "NCT03042819",
            "orgStudyIdInfo": {"id": "UHN-16-5923"},
            "organization": {"fullName": "University Health Network, Toronto", "class": "OTHER"},
            "briefTitle": "Selinexor and Doxorubicin in Advanced Soft Tissue Sarcoma",
            "officialTitle": "A Phase Ib Study of Selinexor in Combination With Doxorubicin in "
            "Patients With Advanced or Metastatic Soft Tissue Sarcoma",
        },
        status=status_module(
            verified="2021-07",
            status="COMPLETED",
            start=date("2017-03-01"),
            primary=date("2019-12-31"),
            completion=date("2020-12-31"),
            first_submit="2017-02-01",
            first_qc="2017-02-01",
            first_post=date("2017-02-06"),
            last_submit="2021-07-19",
            last_post=date("2021-07-21"),
        ),
        sponsors=sponsor("University Health Network, Toronto", "OTHER", [(KARYOPHARM, "INDUSTRY")]),
        fda_drug=False,
        summary="Phase Ib dose-escalation study of selinexor combined with doxorubicin in patients "
        "with advanced soft tissue sarcoma, to define the recommended phase 2 dose of the "
        "combination.",
        detail=None,
        conditions=["Soft Tissue Sarcoma"],
        keywords=None,
        design_=design(["PHASE1"], 12, "ACTUAL", allocation="NA", model="SINGLE_GROUP"),
        arms=[
            arm(
                arm_label,
                "EXPERIMENTAL",
                "Selinexor orally once weekly with doxorubicin "
                "75 mg/m2 IV every 21 days for up to 6 cycles, then selinexor alone.",
                ["Drug: Selinexor", "Drug: Doxorubicin"],
            )
        ],
        interventions=[
            drug("Selinexor", "Oral tablets.", [arm_label], SELINEXOR_OTHER_NAMES),
            drug("Doxorubicin", "Intravenous infusion every 21 days.", [arm_label], ["Adriamycin"]),
        ],
        primary=[
            outcome(
                "Recommended phase 2 dose (RP2D) of selinexor with doxorubicin", "Cycle 1 (21 days)"
            )
        ],
        secondary=[
            outcome("Objective Response Rate (ORR) per RECIST v1.1", "Up to 18 months"),
            outcome(
                "Number of participants with treatment-related adverse events", "Up to 18 months"
            ),
        ],
        elig=eligibility(
            solid_criteria("advanced or metastatic soft tissue sarcoma, anthracycline-naive")
        ),
        locations=[
            loc(
                "Princess Margaret Cancer Centre",
                "Toronto",
                "Canada",
                state="Ontario",
                zip_code="M5G 2M9",
            ),
            loc("Mount Sinai Hospital", "Toronto", "Canada", state="Ontario", zip_code="M5G 1X5"),
        ],
        cond_browse=browse([("D012509", "Sarcoma")], SARCOMA_ANCESTORS),
        drug_browse=browse(
            [("D004317", "Doxorubicin")],
            [("D018906", "Antibiotics, Antineoplastic"), ("D000970", "Antineoplastic Agents")],
        ),
    )


def nct02323880() -> dict[str, Any]:
    """Table 2. Phase 1 selinexor in younger patients with recurrent/refractory solid tumors or HGG."""
    a, b = "Part A: solid tumors (dose escalation)", "Part B: high-grade glioma"
    return study(
        ident={
            "nctId": "NCT02323880",
            "orgStudyIdInfo": {"id": "ADVL1414"},
            "organization": {"fullName": "National Cancer Institute (NCI)", "class": "NIH"},
            "briefTitle": "Selinexor in Treating Younger Patients With Recurrent or Refractory Solid "
            "Tumors or High-Grade Gliomas",
            "officialTitle": "A Phase 1 Study of Selinexor (KPT-330), a Selective XPO1 Inhibitor, in "
            "Recurrent and Refractory Pediatric Solid Tumors, Including CNS Tumors",
        },
        status=status_module(
            verified="2023-06",
            status="COMPLETED",
            start=date("2015-03-09"),
            primary=date("2020-09-30"),
            completion=date("2022-12-31"),
            first_submit="2014-12-17",
            first_qc="2014-12-17",
            first_post=date("2014-12-23", "ESTIMATED"),
            last_submit="2023-06-15",
            last_post=date("2023-06-20"),
        ),
        sponsors=sponsor(
            "National Cancer Institute (NCI)", "NIH", [("Children's Oncology Group", "OTHER")]
        ),
        fda_drug=True,
        summary="This phase I trial studies the side effects and best dose of selinexor in treating "
        "younger patients with solid tumors or central nervous system (CNS) tumors that "
        "have come back (recurrent) or do not respond to treatment (refractory).",
        detail=None,
        conditions=[
            "Recurrent Malignant Solid Neoplasm",
            "Refractory Malignant Solid Neoplasm",
            "Recurrent Childhood Glioblastoma",
            "WHO Grade 3 Glioma",
            "Refractory Lymphoma",
        ],
        keywords=None,
        design_=design(["PHASE1"], 52, "ACTUAL", allocation="NON_RANDOMIZED", model="SEQUENTIAL"),
        arms=[
            arm(
                a,
                "EXPERIMENTAL",
                "Selinexor orally twice weekly, 28-day cycles, dose escalation.",
                ["Drug: Selinexor"],
            ),
            arm(
                b, "EXPERIMENTAL", "Selinexor at the recommended phase 2 dose.", ["Drug: Selinexor"]
            ),
        ],
        interventions=[
            drug(
                "Selinexor",
                "Given orally (PO).",
                [a, b],
                ["KPT-330", "CRM1 Nuclear Export Inhibitor KPT-330"],
            )
        ],
        primary=[
            outcome("Maximum tolerated dose (MTD) of selinexor", "28 days"),
            outcome("Incidence of adverse events (CTCAE v4)", "Up to 30 days after last dose"),
        ],
        secondary=[
            outcome("Pharmacokinetic parameters of selinexor", "Cycle 1"),
            outcome("Antitumor activity (objective response)", "Up to 2 years"),
        ],
        elig=eligibility(
            "Inclusion Criteria:\n\n* Body surface area (BSA) >= 0.84 m^2\n* Part A: recurrent or "
            "refractory solid tumors, including lymphoma and CNS tumors\n* Part B: recurrent or "
            "refractory high-grade glioma (WHO grade III/IV)\n\nExclusion Criteria:\n\n* Pregnant "
            "or breastfeeding\n* Uncontrolled infection",
            min_age="12 Months",
            max_age="21 Years",
            std_ages=["CHILD", "ADULT"],
        ),
        locations=[
            loc(
                "Dana-Farber Cancer Institute",
                "Boston",
                "United States",
                state="Massachusetts",
                zip_code="02215",
            ),
            loc(
                "Children's Hospital of Philadelphia",
                "Philadelphia",
                "United States",
                state="Pennsylvania",
                zip_code="19104",
            ),
            loc(
                "Children's Hospital Los Angeles",
                "Los Angeles",
                "United States",
                state="California",
                zip_code="90027",
            ),
            loc(
                "Texas Children's Hospital",
                "Houston",
                "United States",
                state="Texas",
                zip_code="77030",
            ),
            loc(
                "Seattle Children's Hospital",
                "Seattle",
                "United States",
                state="Washington",
                zip_code="98105",
            ),
        ],
        cond_browse=browse(
            [
                ("D009369", "Neoplasms"),
                ("D005909", "Glioblastoma"),
                ("D005910", "Glioma"),
                ("D008223", "Lymphoma"),
            ],
            [
                ("D018302", "Neoplasms, Neuroepithelial"),
                ("D009370", "Neoplasms by Histologic Type"),
            ],
        ),
        drug_browse=SELINEXOR_ONLY_DRUGS,
    )


def nct01986348() -> dict[str, Any]:
    """Table 2. Phase 2 selinexor in recurrent glioblastoma (Lassman et al., Clin Cancer Res 2022)."""
    arms_ = {
        "Arm A: pre-surgical selinexor": "Up to 3 doses of selinexor twice weekly before planned resection, then continued after surgery.",
        "Arm B: 50 mg/m2 twice weekly": "Selinexor 50 mg/m2 orally twice weekly.",
        "Arm C: 60 mg twice weekly": "Selinexor 60 mg orally twice weekly.",
    }
    arm_d = "Arm D: 80 mg once weekly"
    labels = list(arms_) + [arm_d]
    return study(
        ident={
            "nctId": "NCT01986348",
            "orgStudyIdInfo": {"id": "KCP-330-004"},
            "organization": {"fullName": KARYOPHARM, "class": "INDUSTRY"},
            "briefTitle": "Selinexor (KPT-330) in Patients With Recurrent Gliomas",
            "officialTitle": "A Phase 2 Study to Evaluate the Efficacy and Safety of the Selective "
            "Inhibitor of Nuclear Export (SINE) Selinexor (KPT-330) in Patients "
            "With Recurrent Glioblastoma",
        },
        status=status_module(
            verified="2021-12",
            status="COMPLETED",
            start=date("2014-02-28"),
            primary=date("2020-05-31"),
            completion=date("2021-06-30"),
            first_submit="2013-11-12",
            first_qc="2013-11-12",
            first_post=date("2013-11-18", "ESTIMATED"),
            last_submit="2021-12-06",
            last_post=date("2021-12-08"),
        ),
        sponsors=sponsor(KARYOPHARM, "INDUSTRY"),
        fda_drug=True,
        summary="Multicenter phase 2 study of oral selinexor monotherapy in adults with recurrent "
        "glioblastoma, assessing intratumoral drug levels in a surgical arm and efficacy "
        "and safety across three dosing schedules.",
        detail=None,
        conditions=["Glioblastoma", "Glioma"],
        keywords=["Recurrent Glioblastoma", "XPO1"],
        design_=design(["PHASE2"], 76, "ACTUAL", allocation="NON_RANDOMIZED", model="PARALLEL"),
        arms=[arm(k, "EXPERIMENTAL", v, ["Drug: Selinexor"]) for k, v in arms_.items()]
        + [arm(arm_d, "EXPERIMENTAL", "Selinexor 80 mg orally once weekly.", ["Drug: Selinexor"])],
        interventions=[drug("Selinexor", "Oral tablets.", labels, SELINEXOR_OTHER_NAMES)],
        primary=[outcome("Six-month progression-free survival rate (PFS6)", "6 months")],
        secondary=[
            outcome("Objective response rate per RANO criteria", "Up to 24 months"),
            outcome("Selinexor concentration in resected tumor tissue (Arm A)", "At surgery"),
            outcome("Overall Survival (OS)", "Up to 36 months"),
        ],
        elig=eligibility(
            "Inclusion Criteria:\n\n* Histologically confirmed glioblastoma with radiographic "
            "recurrence after radiation and temozolomide\n* Karnofsky Performance Status >= 60\n\n"
            "Exclusion Criteria:\n\n* Prior bevacizumab for glioblastoma\n* More than 2 prior "
            "recurrences"
        ),
        locations=[
            loc(
                "Columbia University Medical Center",
                "New York",
                "United States",
                state="New York",
                zip_code="10032",
            ),
            loc(
                "Dana-Farber Cancer Institute",
                "Boston",
                "United States",
                state="Massachusetts",
                zip_code="02215",
            ),
            loc(
                "Massachusetts General Hospital",
                "Boston",
                "United States",
                state="Massachusetts",
                zip_code="02114",
            ),
            loc(
                "University of Colorado",
                "Aurora",
                "United States",
                state="Colorado",
                zip_code="80045",
            ),
            loc("Erasmus MC Cancer Institute", "Rotterdam", "Netherlands", zip_code="3015 GD"),
            loc(
                "University Medical Center Groningen",
                "Groningen",
                "Netherlands",
                zip_code="9713 GZ",
            ),
            loc("Rigshospitalet", "Copenhagen", "Denmark", zip_code="2100"),
        ],
        officials=[
            {
                "name": "Andrew B. Lassman, MD",
                "affiliation": "Columbia University Irving Medical Center",
                "role": "PRINCIPAL_INVESTIGATOR",
            }
        ],
        references=[
            {
                "pmid": "34728525",
                "type": "RESULT",
                "citation": "Lassman AB, Wen PY, van den Bent MJ, et al. A Phase II Study of the "
                "Efficacy and Safety of Oral Selinexor in Recurrent Glioblastoma. "
                "Clin Cancer Res. 2022;28(3):452-460.",
            }
        ],
        cond_browse=browse(
            [("D005909", "Glioblastoma"), ("D005910", "Glioma")],
            [
                ("D018302", "Neoplasms, Neuroepithelial"),
                ("D009370", "Neoplasms by Histologic Type"),
                ("D009369", "Neoplasms"),
            ],
        ),
        drug_browse=SELINEXOR_ONLY_DRUGS,
    )


def nct01896505() -> dict[str, Any]:
    """Table 2. ASSUMED content: early phase 1 selinexor study in advanced rare solid tumors."""
    arm_label = "Selinexor"
    return study(
        ident={
            "nctId": "NCT01896505",
            "orgStudyIdInfo": {"id": "KCP-330-003"},
            "organization": {"fullName": KARYOPHARM, "class": "INDUSTRY"},
            "briefTitle": "Phase 1 Study of Oral Selinexor in Patients With Advanced Rare Solid Tumors",
            "officialTitle": "A Phase 1, Open-Label Study of the Safety and Pharmacokinetics of the "
            "Selective Inhibitor of Nuclear Export (SINE) KPT-330 in Patients With "
            "Advanced Rare Solid Tumors",
        },
        status=status_module(
            verified="2016-02",
            status="COMPLETED",
            start=date("2013-07", None),
            primary=date("2015-06"),
            completion=date("2015-12"),
            first_submit="2013-07-08",
            first_qc="2013-07-08",
            first_post=date("2013-07-11", "ESTIMATED"),
            last_submit="2016-02-16",
            last_post=date("2016-02-18", "ESTIMATED"),
        ),
        sponsors=sponsor(KARYOPHARM, "INDUSTRY"),
        fda_drug=None,
        summary="Open-label phase 1 study of oral selinexor in patients with advanced rare solid "
        "tumors for which no standard therapy exists, assessing safety, tolerability and "
        "pharmacokinetics.",
        detail=None,
        conditions=["Rare Solid Tumors", "Sarcoma", "Neuroendocrine Tumors"],
        keywords=None,
        design_=design(["PHASE1"], 30, "ACTUAL", allocation="NA", model="SINGLE_GROUP"),
        arms=[
            arm(
                arm_label,
                "EXPERIMENTAL",
                "Oral selinexor twice weekly, 28-day cycles.",
                ["Drug: Selinexor"],
            )
        ],
        interventions=[drug("Selinexor", "Oral tablets.", [arm_label], ["KPT-330"])],
        primary=[outcome("Number of participants with adverse events", "Up to 12 months")],
        secondary=[outcome("Maximum plasma concentration (Cmax) of selinexor", "Cycle 1 Day 1")],
        elig=eligibility(solid_criteria("advanced rare solid tumor with no standard therapy")),
        locations=[
            loc(
                "Sarah Cannon Research Institute",
                "Nashville",
                "United States",
                state="Tennessee",
                zip_code="37203",
            ),
            loc(
                "MD Anderson Cancer Center",
                "Houston",
                "United States",
                state="Texas",
                zip_code="77030",
            ),
            loc("Mayo Clinic", "Rochester", "United States", state="Minnesota", zip_code="55905"),
        ],
        cond_browse=browse(
            [("D012509", "Sarcoma"), ("D018358", "Neuroendocrine Tumors")], NEOPLASM_ANCESTORS
        ),
        drug_browse=SELINEXOR_ONLY_DRUGS,
    )


BUILDERS = [
    nct01607905,
    nct03110562,
    nct02025985,
    nct01607892,
    nct02606461,  # Table 1
    nct04811196,
    nct03193437,
    nct04138381,
    nct04595994,
    nct03042819,  # Table 2
    nct02323880,
    nct01986348,
    nct01896505,
]


def main() -> None:
    for build in BUILDERS:
        record = build()
        nct = record["protocolSection"]["identificationModule"]["nctId"]
        text = json.dumps(record, indent=2, ensure_ascii=False) + "\n"
        (HERE / f"{nct}.json").write_text(text, encoding="utf-8")
        print(f"{nct}.json  {len(text.encode('utf-8')):>6} bytes")


if __name__ == "__main__":
    main()
