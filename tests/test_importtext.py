"""Reading NCT numbers, and the status and title a paper printed beside them, out of any text."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trialwatch.importtext import ImportedTrial, ImportResult, Skipped, parse_status, read_import

DATA = Path(__file__).parent / "data" / "import"
TEXTS = ["review_pipes.txt", "review_columns.txt", "watchlist.csv", "email.txt"]
REVIEWS = ["review_pipes.txt", "review_columns.txt"]

TABLE_1 = ("NCT01607905", "NCT03110562", "NCT02025985", "NCT01607892", "NCT02606461")
TABLE_2 = (
    "NCT04811196",
    "NCT03193437",
    "NCT04138381",
    "NCT04595994",
    "NCT03042819",
    "NCT02323880",
    "NCT01986348",
    "NCT01896505",
)
# Table 2's statuses as the texts print them (each text spells them its own way).
PRINTED_STATUS = {
    "NCT04811196": "RECRUITING",
    "NCT03193437": "ACTIVE_NOT_RECRUITING",
    "NCT04138381": "NOT_YET_RECRUITING",  # "Active, not yet recruiting"
    "NCT04595994": "NOT_YET_RECRUITING",
    "NCT03042819": "ACTIVE_NOT_RECRUITING",
    "NCT02323880": "COMPLETED",
    "NCT01986348": "UNKNOWN",
    "NCT01896505": "TERMINATED",
}
TABLE_2_TITLES = {
    "NCT04811196": "Selinexor dosing schedules in advanced soft tissue sarcoma (METSSAR)",
    "NCT03193437": "Selinexor in advanced thymic epithelial tumor after primary chemotherapy",
    "NCT04138381": "Selinexor alone and with imatinib in metastatic/unresectable GIST",
    "NCT04595994": "Selinexor plus gemcitabine in advanced soft-tissue sarcoma and osteosarcoma",
    "NCT03042819": "Selinexor and doxorubicin in advanced soft tissue sarcomas",
    "NCT02323880": "Selinexor in children with relapsed or refractory solid tumors or CNS tumors",
    "NCT01986348": "Selinexor in recurrent gliomas",
    "NCT01896505": "Food and formulation effects on the PK of KPT-330 in sarcoma",
}
# Table 1 gives the population where Table 2 gives a title.
TABLE_1_POPULATIONS = {
    "NCT01607905": "Advanced solid tumors",
    "NCT03110562": "Multiple myeloma, 1–3 prior therapies",
    "NCT02025985": "Advanced gynecologic malignancies",
    "NCT01607892": "Relapsed or refractory non-Hodgkin lymphoma",
    "NCT02606461": "Dedifferentiated liposarcoma",
}
TITLES = {
    "review_pipes.txt": {**TABLE_1_POPULATIONS, **TABLE_2_TITLES},
    "review_columns.txt": {**TABLE_1_POPULATIONS, **TABLE_2_TITLES},
    # The spreadsheet's title column names two Table 1 trials and leaves three empty.
    "watchlist.csv": {
        **dict.fromkeys(TABLE_1),
        "NCT03110562": "BOSTON",
        "NCT02606461": "SEAL",
        **TABLE_2_TITLES,
    },
    # Table 1 is in a sentence there: nothing beside the numbers.
    "email.txt": {**dict.fromkeys(TABLE_1), **TABLE_2_TITLES},
}


def read(name: str) -> ImportResult:
    return read_import((DATA / name).read_text(encoding="utf-8"))


def ids(text: str) -> tuple[str, ...]:
    return read_import(text).nct_ids


# -- the review, four ways ------------------------------------------------------------------------


@pytest.mark.parametrize("name", TEXTS)
def test_every_text_gives_exactly_the_review_s_13_trials_once(name: str) -> None:
    result = read(name)
    assert sorted(result.nct_ids) == sorted(TABLE_1 + TABLE_2)


@pytest.mark.parametrize("name", TEXTS)
def test_table_2_s_printed_statuses_are_read_and_nothing_from_prose(name: str) -> None:
    # The prose around the tables repeats ids beside status words ("NCT04811196 is
    # recruiting", "NCT03042819 is completed"): none of that counts.
    statuses = {t.nct_id: t.printed_status for t in read(name).trials}
    assert statuses == {**dict.fromkeys(TABLE_1), **PRINTED_STATUS}


@pytest.mark.parametrize("name", TEXTS)
def test_titles_are_read_where_the_text_gives_them(name: str) -> None:
    titles = {t.nct_id: t.printed_title for t in read(name).trials}
    assert titles == TITLES[name]


def test_the_status_is_kept_as_printed_beside_its_meaning() -> None:
    trials = {t.nct_id: t for t in read("review_columns.txt").trials}
    # Wrapped over two lines in its cell, one word a line.
    assert trials["NCT03193437"].printed_status_text == "Active, not recruiting"
    assert trials["NCT04138381"].printed_status_text == "Active, not yet recruiting"
    assert trials["NCT03042819"].printed_status_text == "Active, Not Recruiting"
    assert trials["NCT01986348"].printed_status_text == "Unknown"
    assert trials["NCT01607905"].printed_status_text is None


def test_windows_line_ends_change_nothing() -> None:
    text = (DATA / "review_columns.txt").read_text(encoding="utf-8")
    assert read_import(text.replace("\n", "\r\n")) == read_import(text)


def test_ids_come_in_order_of_first_appearance_with_their_line() -> None:
    result = read("review_columns.txt")
    assert result.nct_ids == (
        # The abstract names three (SEAL's number broken by a hyphenation), Table 1 two more.
        "NCT03110562",
        "NCT01607905",
        "NCT02606461",
        "NCT02025985",
        "NCT01607892",
        *TABLE_2,
    )
    lines = {t.nct_id: t.line for t in result.trials}
    assert lines["NCT02606461"] == 12  # "(NCT0260-" ends line 12
    assert lines["NCT04138381"] == 54  # "NCT0413" / "8381" in its table cell


def test_what_is_skipped_is_said_with_the_reason() -> None:
    # A footnote mark run into the number by the PDF's text layer.
    assert read("review_columns.txt").skipped == (Skipped("NCT020259855", "9 digits", 26),)
    [skipped] = read("email.txt").skipped
    assert str(skipped) == "NCT1234567: 7 digits (line 25)"
    assert read("review_pipes.txt").skipped == read("watchlist.csv").skipped == ()


# -- NCT numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "NCT01607905",
        "nct 0160 7905",
        "NCT-01607905",
        "Nct01607905.",
        "(NCT01607905)",
        "NCT: 01607905",
        "NCT 0160-7905",
        "NCT0160 - 7905",
        "NCT0160\n7905",
        "NCT0160-\n7905",
        "NCT\n01607905",
        "> NCT0160\n> 7905",
        "NCT\u00a001607905",
        "NCT０１６０７９０５",  # full-width digits
        "NCT0160\u00ad\n7905",  # a soft hyphen at the break
        "NCT01607905a",  # a footnote mark
        "https://clinicaltrials.gov/study/NCT01607905?tab=history",
        "NCT01607905 2014",  # a year after it is not part of it
        "NCT 0160 7905 12 patients",
    ],
)
def test_one_number_however_it_is_written(text: str) -> None:
    result = read_import(f"registered as {text} in 2012")
    assert result.nct_ids == ("NCT01607905",)
    assert result.skipped == ()


@pytest.mark.parametrize(
    "text",
    [
        "01607905",  # 8 digits without NCT
        "PMID 33189178",
        "EudraCT 2015-003594-14",
        "ISRCTN16079051",
        "xNCT01607905",  # part of another word
        "KCT0001607905",
    ],
)
def test_no_number_without_nct_before_it(text: str) -> None:
    assert read_import(f"see {text} for details") == ImportResult((), ())


@pytest.mark.parametrize(
    ("text", "skipped"),
    [
        ("NCT1234567", "NCT1234567: 7 digits"),
        ("NCT123456789", "NCT123456789: 9 digits"),
        ("NCT0160790 2014", "NCT0160790: 7 digits"),  # the year does not make it 8
        ("NCT 1 trial", "NCT1: 1 digit"),
        ("NCT0160  7905", "NCT0160: 4 digits"),  # two spaces part columns, not digits
    ],
)
def test_a_number_of_the_wrong_length_is_skipped_and_says_why(text: str, skipped: str) -> None:
    result = read_import(f"one was {text}, we think")
    assert result.nct_ids == ()
    assert [f"{s.text}: {s.reason}" for s in result.skipped] == [skipped]


def test_repeats_are_one_trial_at_its_first_line_and_one_skip() -> None:
    result = read_import("NCT02606461\nnct02606461 and NCT1234567\nNCT-0260-6461, NCT1234567")
    assert result.trials == (ImportedTrial("NCT02606461", 1),)
    assert result.skipped == (Skipped("NCT1234567", "7 digits", 2),)


# -- statuses and titles --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("Recruiting", "RECRUITING"),
        ("  recruiting ", "RECRUITING"),
        ("Active, not recruiting", "ACTIVE_NOT_RECRUITING"),
        ("ACTIVE,NOT  RECRUITING", "ACTIVE_NOT_RECRUITING"),
        ("Active - not recruiting", "ACTIVE_NOT_RECRUITING"),
        ("active_not_recruiting", "ACTIVE_NOT_RECRUITING"),
        ("Active, not re-\ncruiting", "ACTIVE_NOT_RECRUITING"),
        ("Active, not yet recruiting", "NOT_YET_RECRUITING"),
        ("Not yet recruiting", "NOT_YET_RECRUITING"),
        ("Completed", "COMPLETED"),
        ("Completed*", "COMPLETED"),
        ("Completed (has results)", "COMPLETED"),
        ("Completed Has Results", "COMPLETED"),
        ("Terminated (slow accrual)", "TERMINATED"),
        ("Enrolling by invitation", "ENROLLING_BY_INVITATION"),
        ("Suspended", "SUSPENDED"),
        ("Withdrawn", "WITHDRAWN"),
        ("Unknown status", "UNKNOWN"),
        ("Unknown", "UNKNOWN"),
        ("Status unknown", "UNKNOWN"),
        ("Ongoing", None),
        ("recruiting since 2021", None),
        ("Not recruiting", None),
        ("", None),
    ],
)
def test_statuses_as_people_write_them(text: str, status: str | None) -> None:
    assert parse_status(text) == status


def test_a_status_column_that_names_no_status_keeps_the_words() -> None:
    [trial] = read_import(
        "| NCT number | Title | Status |\n| NCT04811196 | METSSAR | Ongoing |"
    ).trials
    assert (trial.printed_status, trial.printed_status_text) == (None, "Ongoing")
    assert trial.printed_title == "METSSAR"


def test_a_table_without_a_header_row() -> None:
    text = (
        "NCT04811196   Selinexor dosing schedules in sarcoma   Recruiting\n"
        "NCT03193437   Selinexor in thymic epithelial tumor    Terminated\n"
        "NCT02606461   SEAL                                    Completed\n"
    )
    trials = read_import(text).trials
    assert [(t.printed_status, t.printed_title) for t in trials] == [
        ("RECRUITING", "Selinexor dosing schedules in sarcoma"),
        ("TERMINATED", "Selinexor in thymic epithelial tumor"),
        ("COMPLETED", None),  # one word is a name, not a title
    ]


def test_a_csv_cut_by_semicolons() -> None:
    text = "NCT number;Title;Status\nNCT04811196;Selinexor dosing schedules;Recruiting\n"
    [trial] = read_import(text).trials
    assert (trial.printed_status, trial.printed_title) == (
        "RECRUITING",
        "Selinexor dosing schedules",
    )


def test_a_cell_may_say_more_than_the_number_in_a_pipe_table() -> None:
    [trial] = read_import("| SEAL (NCT02606461) | Phase 2/3 | Active, not recruiting |").trials
    assert trial.printed_status == "ACTIVE_NOT_RECRUITING"


def test_the_same_number_twice_on_a_row_is_one_row() -> None:
    text = "| NCT02606461 | SEAL | https://clinicaltrials.gov/study/NCT02606461 | Completed |"
    [trial] = read_import(text).trials
    assert (trial.printed_status, trial.printed_title) == ("COMPLETED", None)  # a link: no title


def test_a_list_of_numbers_on_one_line_is_not_a_table_row() -> None:
    result = read_import(
        "NCT04811196, NCT03193437, Recruiting\nNCT02606461, NCT01607905, Completed"
    )
    assert len(result.trials) == 4
    assert all(t.printed_status is None for t in result.trials)


def test_a_sentence_with_commas_is_not_a_csv_row() -> None:
    text = (
        "NCT03042819, which combined selinexor with doxorubicin, completed accrual.\n"
        "NCT04811196, the METSSAR study, is recruiting.\n"
    )
    assert [(t.printed_status, t.printed_title) for t in read_import(text).trials] == [
        (None, None),
        (None, None),
    ]


def test_a_table_after_prose_does_not_inherit_an_earlier_table_s_header() -> None:
    text = (
        "| Study | NCT number | Status |\n"
        "| SEAL | NCT02606461 | Completed |\n"
        "\n"
        "Table 2 lists the other trials, without a header row.\n"
        "| Recruiting | NCT04811196 | Selinexor dosing schedules in sarcoma |\n"
    )
    trials = {t.nct_id: t for t in read_import(text).trials}
    assert trials["NCT02606461"].printed_status == "COMPLETED"
    assert trials["NCT04811196"].printed_status == "RECRUITING"
    assert trials["NCT04811196"].printed_title == "Selinexor dosing schedules in sarcoma"


# -- any text: exactly the ids put into it --------------------------------------------------------

FILLER = st.sampled_from(
    [
        "selinexor",
        "phase",
        "trial",
        "2",
        "57",
        "12345678",  # 8 digits, no NCT
        "2021-05-01",
        "(n = 57)",
        "PMID",
        "33189178",
        "EudraCT",
        "2015-003594-14",
        "recruiting",
        "Completed",
        "Active, not recruiting",
        "Status:",
        "number",
        "e.g.",
        "KPT-330",
        "0160 7905",
        "distinct",
        "ACT01607905",
        "NCTC",
        "—",
        ";",
        ",",
        "NCT1234567.",  # skipped, never found (the full stop ends it)
        "NCT123456789",  # skipped
    ]
)


@st.composite
def written_id(draw: st.DrawFn) -> tuple[str, str]:
    """An NCT number and one way a person, a PDF or an e-mail client wrote it."""
    digits = f"{draw(st.integers(1, 99_999_999)):08d}"
    prefix = draw(st.sampled_from(["NCT", "nct", "Nct", "nCt"]))
    after = draw(st.sampled_from(["", " ", "-", ": ", "\n", "-\n"]))
    cut = draw(st.integers(0, 8))
    gap = draw(st.sampled_from([" ", "-", " - ", "\n", "-\n", "\n> ", "\u00ad\n"]))
    body = digits if cut in (0, 8) else f"{digits[:cut]}{gap}{digits[cut:]}"
    before = draw(st.sampled_from([" ", "\n", " (", "\n> "]))
    end = draw(st.sampled_from([" ", "\n", ". ", ", ", ") ", ".\n"]))
    return f"NCT{digits}", f"{before}{prefix}{after}{body}{end}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.lists(FILLER, max_size=12), st.sampled_from([" ", "\n"]), written_id()),
        max_size=12,
    ),
    st.lists(FILLER, max_size=6),
)
def test_any_text_gives_exactly_the_ids_written_into_it(
    parts: list[tuple[list[str], str, tuple[str, str]]], tail: list[str]
) -> None:
    text = ""
    expected: list[str] = []
    for words, joint, (nct_id, written) in parts:
        text += joint.join(words) + written
        if nct_id not in expected:
            expected.append(nct_id)
    text += " ".join(tail)
    result = read_import(text)
    assert result.nct_ids == tuple(expected), text
    assert {s.text for s in result.skipped} <= {"NCT1234567", "NCT123456789"}, text


# -- a paper's own layout: one cell per line ------------------------------------------------------

CELLS = "review_cells.txt"
# What review_cells.txt prints: some as the registry has them now (tests/data/selinexor), some not.
CELLS_PRINTED = {
    "NCT01607905": ("COMPLETED", "Completed", "Advanced hematological cancers"),
    "NCT03110562": (
        "ACTIVE_NOT_RECRUITING",
        "Active, not recruiting",
        "Multiple myeloma after 1–3 prior therapies",
    ),
    "NCT02025985": ("COMPLETED", "Completed", "Advanced gynecologic malignancies"),
    "NCT01607892": ("COMPLETED", "Completed", "Advanced or metastatic solid tumors"),
    "NCT02606461": ("RECRUITING", "Recruiting", "Dedifferentiated liposarcoma"),
    "NCT04811196": (
        "RECRUITING",
        "Recruiting",
        "Different dosing schedules of selinexor in soft tissue sarcoma patients (METSSAR)",
    ),
    "NCT03193437": (
        "ACTIVE_NOT_RECRUITING",
        "Active, not recruiting",
        "Selinexor in advanced thymic epithelial tumors after primary chemotherapy",
    ),
    "NCT04138381": (  # its number hyphenated in its cell, its status wrapped
        "ACTIVE_NOT_RECRUITING",
        "Active, not recruiting",
        "Selinexor and imatinib in advanced gastrointestinal stromal tumor",
    ),
    "NCT04595994": (
        "RECRUITING",
        "Recruiting",
        "Selinexor in relapsed or refractory Ewing sarcoma",
    ),
    "NCT03042819": (
        "COMPLETED",
        "Completed",
        "Selinexor and doxorubicin in advanced soft tissue sarcomas",
    ),
    "NCT02323880": (
        "RECRUITING",
        "Recruiting",
        "Selinexor in younger patients with recurrent or refractory solid tumors or "
        "high-grade gliomas",
    ),
    "NCT01986348": ("COMPLETED", "Completed", "Selinexor in recurrent gliomas"),
    "NCT01896505": (
        "RECRUITING",
        "Recruiting",
        "Selinexor in advanced rare solid tumors: food and formulation effects on pharmacokinetics",
    ),
}


def _printed(result: ImportResult) -> dict[str, tuple[str | None, str | None, str | None]]:
    return {
        t.nct_id: (t.printed_status, t.printed_status_text, t.printed_title) for t in result.trials
    }


def test_a_table_of_one_cell_per_line_gives_its_ids_statuses_and_titles() -> None:
    result = read(CELLS)
    # The abstract names three first; the prose hyphenates one (NCT0202- / 5985).
    assert result.nct_ids == (
        "NCT03110562",
        "NCT01607905",
        "NCT02606461",
        "NCT02025985",
        "NCT01607892",
        *TABLE_2,
    )
    assert result.skipped == ()
    # Not the prose's "SEAL ... is active, not recruiting", nor the abstract's "which is
    # recruiting": the table's words, its wrapped titles joined, a wrapped status joined.
    assert _printed(result) == CELLS_PRINTED


def _unindented_header(text: str) -> str:
    cells = "\tStudy\n\tPhase\n\tPopulation\n\tTreatment\n\tStatus\n\tNCT Number"
    assert cells in text
    return text.replace(cells, cells.replace("\t", ""))


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(lambda t: t.replace("\t", "    "), id="indented-by-spaces"),
        pytest.param(lambda t: t.replace(" \t", "\t"), id="tabs-only"),
        pytest.param(lambda t: re.sub(r"\n\n+(?=[ \t])", "\n", t), id="no-blank-lines-in-tables"),
        pytest.param(lambda t: re.sub(r"\n(?=[ \t])", "\n\n", t), id="cells-a-blank-line-apart"),
        pytest.param(lambda t: t.replace("\n\n", "\n\n\n\n"), id="longer-runs-of-blank-lines"),
        pytest.param(
            lambda t: t.replace("in this review.\n", "in this review.\n\n"), id="caption-apart"
        ),
        pytest.param(_unindented_header, id="header-cells-not-indented"),
        pytest.param(lambda t: t.replace("\n", "\r\n"), id="windows-line-ends"),
    ],
)
def test_one_cell_per_line_however_the_converter_spaced_it(variant: Callable[[str], str]) -> None:
    text = variant((DATA / CELLS).read_text(encoding="utf-8"))
    assert _printed(read_import(text)) == CELLS_PRINTED


def test_one_cell_per_line_rows_without_the_header_s_width_still_give_their_ids() -> None:
    text = (
        "Table 2. Registered trials\n"
        "\tNCT Number\n\tStudy Title\n\tStatus\n\n"
        "\tNCT04811196\n\tSelinexor dosing schedules\n\n"  # the status cell left out
        "\tNCT04595994\n\tSelinexor in Ewing sarcoma\n\tRecruiting\n\n"
        "The trials were chosen by hand.\n"
        "\tNCT03193437\n\tThymic tumors\n\tCompleted\n"  # not under a header: no table
    )
    result = read_import(text)
    assert result.nct_ids == ("NCT04811196", "NCT04595994", "NCT03193437")
    assert _printed(result) == {
        "NCT04811196": (None, None, "Selinexor dosing schedules"),
        "NCT04595994": ("RECRUITING", "Recruiting", "Selinexor in Ewing sarcoma"),
        "NCT03193437": (None, None, None),
    }


def test_prose_in_short_lines_is_not_a_header() -> None:
    text = "We list each NCT number\nwith its status\n\n\tNCT04811196\n\tRecruiting\n"
    [trial] = read_import(text).trials
    assert trial.printed_status is None


@pytest.mark.parametrize(
    ("text", "found"),
    [
        # Quadratic in the run of spaces (minutes, not milliseconds) while a pattern could split
        # the run between two of its parts.
        ("NCT" + " " * 50_000 + "x", ()),
        ("NCT0160" + " " * 50_000 + "x", ()),
        ("| NCT01607905" + " " * 50_000 + "x |", ("NCT01607905",)),
        ("a\tNCT " + " \n" * 50_000 + "x", ()),
        # Long runs of lines that each could begin a table of one cell per line.
        ("Table 1\n\tNCT Number\n\tStatus\n" + "\tshort\n" * 50_000, ()),
        ("NCT Number\n\n" * 20_000, ()),
        ("\tNCT Number\n\tStatus\n\n" + "\tNCT01607905\n\tCompleted\n" * 10_000, ("NCT01607905",)),
        # Headers over rows not of their width: each gives up after a few rows, not at the end.
        (
            ("\tNCT Number\n\tStatus\n\n" + "\tNCT01607905\n\tA\n\tB\n\n" * 20) * 200,
            ("NCT01607905",),
        ),
    ],
)
def test_text_that_could_make_a_reader_backtrack_is_read_in_one_pass(
    text: str, found: tuple[str, ...]
) -> None:
    # The figures on large files are in benchmarks/bench_import.py.
    assert read_import(text).nct_ids == found


def test_the_placeholder_id_is_skipped_with_its_reason_and_the_rest_is_read() -> None:
    result = read_import("NCT00000000, NCT09999991 and NCT０２３００９０９")
    assert result.nct_ids == ("NCT09999991", "NCT02300909")
    assert [(s.text, s.reason) for s in result.skipped] == [
        ("NCT00000000", "a placeholder, not a registered trial (CT.gov refuses NCT00000000)")
    ]
