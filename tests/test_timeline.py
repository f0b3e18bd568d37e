"""The timeline picture: parse the SVG and check every slip and status span is where the data
says, on the shared scale the module exposes."""

from __future__ import annotations

import dataclasses
import itertools
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.history_samples import NOW, SEAL_V1, actual, at, est, record, seal, watch_set
from trialwatch.records import TrialHistory
from trialwatch.timeline import (
    MIN_SPAN_WIDTH,
    PLOT_LEFT,
    PLOT_RIGHT,
    STATUS_COLORS,
    TimeScale,
    gantt_svg,
    partial_date_start,
    render_timeline_page,
    slips,
    status_spans,
    time_scale,
    timeline_context,
    trial_svg,
)
from trialwatch.vocabulary import status_label

SVG = "{http://www.w3.org/2000/svg}"
TODAY = NOW.date()


def parse(history: TrialHistory, scale: TimeScale | None = None) -> tuple[ET.Element, TimeScale]:
    scale = scale or time_scale([history], today=TODAY)
    # Our own output, parsed to check it: not untrusted XML.
    return ET.fromstring(trial_svg(history, scale, today=TODAY)), scale  # noqa: S314


def classed(root: ET.Element, tag: str, name: str) -> list[ET.Element]:
    return [e for e in root.iter(SVG + tag) if name in (e.get("class") or "").split()]


def num(element: ET.Element, name: str) -> float:
    return float(element.get(name) or "nan")


# --- dates and the scale -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("2027", date(2027, 1, 1)),
        ("2027-06", date(2027, 6, 1)),
        ("2027-06-15", date(2027, 6, 15)),
        ("2027-02-30", None),
        ("2027-6", date(2027, 6, 1)),
        ("June 2027", None),
        ("", None),
        (None, None),
        ("2027-06-15-01", None),
    ],
)
def test_partial_dates_sit_at_their_first_day(text: str | None, day: date | None) -> None:
    assert partial_date_start(text) == day


def test_the_scale_spans_whole_years_around_every_date_and_today() -> None:
    histories = watch_set()

    scale = time_scale(histories, today=TODAY)

    assert scale.start == date(2019, 1, 1)  # SEAL started 2019-03
    assert scale.end == date(2029, 1, 1) + timedelta(days=365)  # QUIET completes 2029-06
    assert scale.x(scale.start) == PLOT_LEFT
    assert scale.x(scale.end) == PLOT_RIGHT
    days = [scale.start + timedelta(days=n) for n in range(0, 4000, 97)]
    xs = [scale.x(d) for d in days]
    assert xs == sorted(xs)
    assert scale.x(datetime(2026, 3, 2, 23, 30, tzinfo=UTC)) == scale.x(date(2026, 3, 2))


def test_ticks_are_first_januaries_at_most_ten() -> None:
    assert TimeScale(date(2019, 1, 1), date(2031, 1, 1)).ticks() == [
        date(y, 1, 1) for y in range(2020, 2031, 2)
    ]
    long = TimeScale(date(1990, 1, 1), date(2040, 1, 1)).ticks()
    assert len(long) <= 10 and all(d.month == 1 and d.day == 1 for d in long)


# --- what is drawn where --------------------------------------------------------------------------


def test_each_recorded_slip_is_drawn_from_the_old_date_to_the_new() -> None:
    root, scale = parse(seal())

    drawn = [
        (g.get("data-field"), line)
        for g in classed(root, "g", "slip")
        for line in classed(g, "line", "slip-line")
    ]
    expected = [
        ("primary_completion_date", date(2025, 1, 1), date(2025, 7, 1)),
        ("primary_completion_date", date(2025, 7, 1), date(2026, 3, 1)),
        ("completion_date", date(2025, 6, 1), date(2026, 2, 1)),
        ("completion_date", date(2026, 2, 1), date(2026, 8, 1)),
    ]
    assert len(drawn) == len(expected)
    for (field, line), (want_field, old, new) in zip(drawn, expected, strict=True):
        assert field == want_field
        assert num(line, "x1") == pytest.approx(scale.x(old), abs=0.01)
        assert num(line, "x2") == pytest.approx(scale.x(new), abs=0.01)
        assert num(line, "y1") == num(line, "y2")  # horizontal: only the date moved
    # Successive slips of one date stack downwards, in the order they were recorded.
    pcd = [num(line, "y1") for field, line in drawn if field == "primary_completion_date"]
    assert pcd == sorted(pcd) and len(set(pcd)) == len(pcd)


def test_a_slip_arrow_points_the_way_the_date_moved() -> None:
    root, scale = parse(watch_set()[1])  # moved earlier when terminated

    (group, *_) = [
        g for g in classed(root, "g", "slip") if g.get("data-field") == "completion_date"
    ]
    (line,) = classed(group, "line", "slip-line")
    (head,) = classed(group, "polygon", "slip-head")
    tip_x = float((head.get("points") or "").split()[0].split(",")[0])
    assert num(line, "x2") < num(line, "x1")
    assert tip_x == pytest.approx(scale.x(date(2026, 10, 1)), abs=0.01)
    assert group.get("data-from") == "2028-06" and group.get("data-to") == "2026-10-01"


def test_status_spans_sit_where_each_status_was_recorded() -> None:
    root, scale = parse(seal())

    rects = classed(root, "rect", "status-span")
    expected = [
        ("RECRUITING", date(2026, 1, 5), date(2026, 3, 2)),
        ("ACTIVE_NOT_RECRUITING", date(2026, 3, 2), date(2026, 9, 1)),
        ("COMPLETED", date(2026, 9, 1), TODAY),
    ]
    assert [r.get("data-status") for r in rects] == [s for s, _, _ in expected]
    for rect, (status, start, end) in zip(rects, expected, strict=True):
        assert num(rect, "x") == pytest.approx(scale.x(start), abs=0.01)
        width = max(scale.x(end) - scale.x(start), MIN_SPAN_WIDTH)
        assert num(rect, "width") == pytest.approx(width, abs=0.02)
        assert rect.get("fill") == STATUS_COLORS[status][0]
        (title,) = rect.iter(SVG + "title")
        assert (title.text or "").startswith(status_label(status))


def test_statuses_are_told_in_words_not_by_color_alone() -> None:
    root, _ = parse(seal())

    words = " ".join("".join(t.itertext()) for t in root.iter(SVG + "text"))
    assert "Status: Recruiting → Active, not recruiting → Completed" in words
    page = render_timeline_page(watch_set(), generated_at=NOW, data_timestamp=None)
    for status in ("Recruiting", "Active, not recruiting", "Completed", "Terminated"):
        assert f"</svg>{status}</li>" in page  # the legend names every color shown


def test_actual_dates_are_filled_and_estimated_ones_hollow() -> None:
    root, scale = parse(watch_set()[2])  # QUIET: estimated start and primary completion

    markers: dict[str | None, ET.Element] = {}
    for row in classed(root, "g", "date-row"):
        for circle in classed(row, "circle", "date-marker"):
            markers[row.get("data-field")] = circle
    assert set(markers) == {"start_date", "primary_completion_date"}  # no completion date
    start = markers["start_date"]
    assert "estimated" in (start.get("class") or "")
    assert start.get("fill") == "#ffffff"
    assert num(start, "cx") == pytest.approx(scale.x(date(2027, 1, 1)), abs=0.01)

    root, _ = parse(seal())
    filled = [c for c in classed(root, "circle", "date-marker") if "actual" in c.get("class", "")]
    assert len(filled) == 3 and all(c.get("fill") != "#ffffff" for c in filled)


def test_type_only_changes_and_missing_dates_are_not_slips() -> None:
    history = record(
        "NCT00000005",
        None,
        [
            (at("2026-01-05"), SEAL_V1),
            (at("2026-02-05"), dataclasses.replace(SEAL_V1, start_date=est("2019-03"))),
            (at("2026-03-05"), dataclasses.replace(SEAL_V1, completion_date=None)),
        ],
    )

    assert slips(history) == []
    root, _ = parse(history)
    assert classed(root, "g", "slip") == []


def test_the_svg_scales_to_its_container_and_prints_on_a4() -> None:
    root, _ = parse(seal())

    assert root.get("width") == "100%"
    assert (root.get("viewBox") or "").startswith("0 0 400 ")
    assert root.get("role") == "img" and "SEAL (NCT02606461)" in (root.get("aria-label") or "")
    page = render_timeline_page(watch_set(), generated_at=NOW, data_timestamp="2026-11-22T09:00:05")
    assert "<script" not in page
    assert "@page { size: A4" in page and "break-inside: avoid" in page
    assert "CT.gov data as of 2026-11-22T09:00:05" in page
    # One picture, one row per trial, across the full width (legend marks aside).
    assert page.count("<svg xmlns=") == 1
    assert page.count('class="gantt-row"') == len(watch_set())


def test_the_gantt_draws_each_trial_as_one_row_on_one_axis() -> None:
    histories = watch_set()
    scale = time_scale(histories, today=TODAY)
    root = ET.fromstring(gantt_svg(histories, scale, today=TODAY))  # noqa: S314 (our own output)

    rows = classed(root, "g", "gantt-row")
    assert [r.get("data-nct") for r in rows] == [h.nct_id for h in histories]
    assert (root.get("viewBox") or "").startswith("0 0 400 ")
    for history, row in zip(histories, rows, strict=True):
        latest = history.latest
        assert latest is not None
        start = partial_date_start(latest.start_date.date if latest.start_date else None)
        [bar] = classed(row, "rect", "planned") or [None]
        if bar is not None and start is not None:
            assert float(bar.get("x") or 0) == scale.x(start)
        assert len(classed(row, "g", "slip")) == len(slips(history))
        assert len(classed(row, "rect", "status-span")) == len(status_spans(history, today=TODAY))
        words = " ".join("".join(t.itertext()) for t in row.iter(SVG + "text"))
        assert history.name in words
        assert status_label(latest.overall_status) in words
    # Rows follow one another down the picture, never overlapping.
    tops = [min(float(t.get("y") or 0) for t in r.iter(SVG + "text")) for r in rows]
    assert tops == sorted(tops) and len(set(tops)) == len(tops)


def test_hostile_labels_stay_text() -> None:
    history = dataclasses.replace(seal(), label='<b onload="x">&\x00\x1b\ufffe')

    root, _ = parse(history)

    (name, *_) = root.iter(SVG + "text")
    assert "".join(name.itertext()) == '<b onload="x">& (NCT02606461)'


def test_a_trial_not_recorded_yet_is_an_empty_row_not_an_error() -> None:
    root, _ = parse(TrialHistory(nct_id="NCT09999999", label="NEW"))

    assert classed(root, "rect", "status-span") == []
    assert "Status: (none recorded)" in " ".join("".join(t.itertext()) for t in root.iter())


def test_status_spans_merge_versions_with_the_same_status() -> None:
    history = seal()
    spans = status_spans(history, today=TODAY)

    assert [s.status for s in spans] == ["RECRUITING", "ACTIVE_NOT_RECRUITING", "COMPLETED"]
    assert spans[1].end == date(2026, 9, 1)  # the 2026-06-10 version did not end it


def test_the_context_lists_each_status_once_for_the_legend() -> None:
    context = timeline_context(watch_set(), today=TODAY)

    labels = [s["label"] for s in context["statuses"]]
    assert len(labels) == len(set(labels))
    assert {"Recruiting", "Completed", "Terminated", "Not yet recruiting"} <= set(labels)


# --- a property: wherever the dates go, the picture follows ---------------------------------------

_MONTHS = st.integers(0, 12 * 30 - 1).map(lambda n: f"{2005 + n // 12}-{n % 12 + 1:02d}")


@settings(max_examples=40, deadline=None)
@given(dates=st.lists(_MONTHS, min_size=1, max_size=6))
def test_every_slip_is_drawn_where_its_dates_are(dates: list[str]) -> None:
    steps = [
        (
            at("2026-01-05") + timedelta(days=9 * i),
            dataclasses.replace(SEAL_V1, completion_date=actual(d)),
        )
        for i, d in enumerate(dates)
    ]
    history = record("NCT02606461", "SEAL", steps)
    root, scale = parse(history)

    lines = [line for g in classed(root, "g", "slip") for line in classed(g, "line", "slip-line")]
    moves = [(a, b) for a, b in itertools.pairwise(dates) if a != b]
    assert len(lines) == len(moves)
    for line, (old, new) in zip(lines, moves, strict=True):
        assert num(line, "x1") == pytest.approx(scale.x(partial_date_start(old) or TODAY), abs=0.01)
        assert num(line, "x2") == pytest.approx(scale.x(partial_date_start(new) or TODAY), abs=0.01)
        assert PLOT_LEFT <= num(line, "x1") <= PLOT_RIGHT
