"""The timeline picture: each trial's dates, their slips and its status history, as SVG. Pure.

Two drawings share one axis and one set of marks: :func:`trial_svg`, one small picture per trial
(inside each card of the period report), and :func:`gantt_svg`, every trial as one row of one
picture across the page (the ``timeline`` command). What follows describes the first.

For every trial one ``<svg>`` (so a printed page breaks between trials, never through one), all
drawn on one shared time axis (:class:`TimeScale`, exposed so tests can compute where things must
be). Each SVG has a row of status spans (one color per status, the status's name written in the
span when it fits, and a legend in words beside the picture), then one row per date (start,
primary completion, completion): the current date as a filled circle when it is actual and a
hollow one when it is estimated, and every recorded slip as an arrow from the old date to the
new, one below the other in the order they were recorded.

Sizes are in viewBox units and the SVG is ``width:100%``, so it shrinks to a phone's width and
grows to a page's; no script, no external resource. Partial dates are placed at their first day
(``2027-06`` at 1 June 2027, ``2027`` at 1 January 2027). Status spans run from the sync that
first saw the status to the one that saw the next (the last to ``today``): what trialwatch
recorded, not when the registry says the change was made.
"""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from trialwatch.history import stamp, xml_text
from trialwatch.models import PartialDate
from trialwatch.pages import environment
from trialwatch.records import DATE_FIELDS, RecordedChange, TrialHistory
from trialwatch.vocabulary import date_label, one_line, status_label

__all__ = [
    "DATE_ROW_LABELS",
    "MIN_SPAN_WIDTH",
    "STATUS_COLORS",
    "VIEW_WIDTH",
    "Slip",
    "StatusSpan",
    "TimeScale",
    "gantt_svg",
    "partial_date_start",
    "render_timeline_page",
    "slips",
    "status_spans",
    "time_scale",
    "timeline_context",
    "trial_svg",
]

SVG_NS = "http://www.w3.org/2000/svg"
VIEW_WIDTH = 400.0  # narrow on purpose: text stays readable when a phone shrinks the picture
PLOT_LEFT = 6.0
PLOT_RIGHT = VIEW_WIDTH - 6.0
MIN_SPAN_WIDTH = 2.0  # a status seen for a day is still drawn (the current one often is)

_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif"
_INK = "#1c1917"
_MUTED = "#78716c"
_GRID = "#e7e5e4"
_LATER = "#b45309"  # a slip: the date moved later
_EARLIER = "#0f766e"  # the date moved earlier
_SLIP_STEP = 6.0  # vertical distance between successive slips of one date
_CHAR_EM = 0.58  # a generous average character width, in ems, to decide what fits on a line
_LEADING = 1.25
_LABEL_SIZE = 12.0
_HALO = {
    "stroke": "#fafaf9",
    "stroke_width": "3",
    "paint_order": "stroke",
    "stroke_linejoin": "round",
}

DATE_ROW_LABELS: dict[str, str] = {
    "start_date": "Start",
    "primary_completion_date": "Primary completion",
    "completion_date": "Completion",
}

# Color per overall status (fill, text on it). Every status is also written in words: in the
# span when it fits, in its tooltip, and in the legend.
STATUS_COLORS: dict[str, tuple[str, str]] = {
    "NOT_YET_RECRUITING": ("#a7f3d0", _INK),
    "RECRUITING": ("#16a34a", "#ffffff"),
    "ENROLLING_BY_INVITATION": ("#65a30d", "#ffffff"),
    "ACTIVE_NOT_RECRUITING": ("#2563eb", "#ffffff"),
    "SUSPENDED": ("#f59e0b", _INK),
    "COMPLETED": ("#44403c", "#ffffff"),
    "TERMINATED": ("#dc2626", "#ffffff"),
    "WITHDRAWN": ("#9333ea", "#ffffff"),
}
_OTHER_STATUS = ("#d6d3d1", _INK)


def partial_date_start(value: str | None) -> date | None:
    """The first day of a CT.gov partial date (``yyyy``, ``yyyy-MM``, ``yyyy-MM-dd``); ``None``
    when it is missing or malformed."""
    if not value:
        return None
    parts = value.split("-")
    if len(parts) > 3 or not all(p.isascii() and p.isdigit() for p in parts):
        return None
    try:
        numbers = [int(p) for p in parts] + [1] * (3 - len(parts))
        return date(numbers[0], numbers[1], numbers[2])
    except ValueError:
        return None


def _utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


# --- the shared axis ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimeScale:
    """Days from ``start`` to ``end`` mapped linearly onto ``left`` .. ``right``."""

    start: date
    end: date
    left: float = PLOT_LEFT
    right: float = PLOT_RIGHT

    def x(self, day: date) -> float:
        """Where ``day`` sits (a ``datetime`` counts as its UTC day), to 0.01 of a unit."""
        if isinstance(day, datetime):
            day = _utc_day(day)
        span = (self.end - self.start).days or 1
        return round(self.left + (day - self.start).days / span * (self.right - self.left), 2)

    def ticks(self) -> list[date]:
        """1 January of every year, or of every 2nd/5th/10th... year on a long axis (≤ 10)."""
        for step in (1, 2, 5, 10, 20, 50, 100):
            first = self.start.year + (-self.start.year) % step
            years = range(first, self.end.year + 1, step)
            if len(years) <= 10:
                break
        return [date(y, 1, 1) for y in years]


def _dates_of(history: TrialHistory) -> list[date]:
    found: list[date] = [_utc_day(v.first_seen_at) for v in history.versions]
    latest = history.latest
    if latest is not None:
        for name in DATE_FIELDS:
            value: PartialDate | None = getattr(latest, name)
            day = partial_date_start(value.date) if value else None
            if day:
                found.append(day)
    for slip in slips(history):
        found += [slip.old_day, slip.new_day]
    return found


def time_scale(histories: Sequence[TrialHistory], *, today: date) -> TimeScale:
    """The axis every trial is drawn on: whole years around every date shown and ``today``."""
    days = [today]
    for history in histories:
        days += _dates_of(history)
    return TimeScale(start=date(min(days).year, 1, 1), end=date(max(days).year + 1, 1, 1))


# --- what is drawn -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Slip:
    """A recorded move of one date: from ``old`` to ``new`` (CT.gov partial dates)."""

    field: str
    old: str
    new: str
    old_day: date
    new_day: date
    detected_at: datetime
    summary: str


def _partial(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("date"), str):
        return value["date"]  # type: ignore[no-any-return]
    return None


def slips(history: TrialHistory) -> list[Slip]:
    """Every recorded change of a date field that moved the date, oldest first. A change of its
    type only (estimated -> actual) or from/to no date is not a slip."""
    found = []
    for event in history.changes:
        slip = _slip(event)
        if slip is not None:
            found.append(slip)
    return found


def _slip(event: RecordedChange) -> Slip | None:
    change = event.change
    if change.field not in DATE_FIELDS:
        return None
    old, new = _partial(change.old), _partial(change.new)
    old_day, new_day = partial_date_start(old), partial_date_start(new)
    if old is None or new is None or old_day is None or new_day is None or old_day == new_day:
        return None
    return Slip(
        field=change.field,
        old=old,
        new=new,
        old_day=old_day,
        new_day=new_day,
        detected_at=event.detected_at,
        summary=one_line(change.summary),
    )


@dataclass(frozen=True, slots=True)
class StatusSpan:
    """The overall status recorded from ``start`` until ``end`` (UTC days)."""

    status: str | None
    start: date
    end: date


def status_spans(history: TrialHistory, *, today: date) -> list[StatusSpan]:
    """The status history from the recorded versions, consecutive equal statuses merged; the
    last span runs to ``today``."""
    spans: list[StatusSpan] = []
    for version in history.versions:
        status = version.snapshot.overall_status
        day = _utc_day(version.first_seen_at)
        if spans and spans[-1].status == status:
            continue
        if spans:
            spans[-1] = StatusSpan(spans[-1].status, spans[-1].start, day)
        spans.append(StatusSpan(status, day, day))
    if spans:
        spans[-1] = StatusSpan(spans[-1].status, spans[-1].start, max(today, spans[-1].start))
    return spans


# --- SVG ---------------------------------------------------------------------------------------


def _num(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: Any) -> ET.Element:
    element = ET.SubElement(
        parent,
        tag,
        {
            k.rstrip("_").replace("_", "-"): _num(v) if isinstance(v, float) else str(v)
            for k, v in attrs.items()
        },
    )
    if text is not None:
        element.text = xml_text(text)
    return element


def _months(old: date, new: date) -> int:
    return (new.year - old.year) * 12 + new.month - old.month


def _moved(trial_slips: Sequence[Slip]) -> str:
    """``"slipped 14 months in 3 steps"``: the net move of one date over its recorded slips."""
    months = _months(trial_slips[0].old_day, trial_slips[-1].new_day)
    if months == 0:
        days = (trial_slips[-1].new_day - trial_slips[0].old_day).days
        amount, unit = abs(days), ("day" if abs(days) == 1 else "days")
    else:
        amount, unit = abs(months), ("month" if abs(months) == 1 else "months")
    steps = f" in {len(trial_slips)} steps" if len(trial_slips) > 1 else ""
    if amount == 0:
        return f"moved and moved back{steps}"
    way = "slipped" if trial_slips[-1].new_day > trial_slips[0].old_day else "moved earlier"
    return f"{way} {amount} {unit}{steps}"


def _wrap(text: str, size: float, width: float = PLOT_RIGHT - PLOT_LEFT) -> list[str]:
    """``text`` cut at spaces into lines that fit ``width`` at font ``size`` (estimated)."""
    return textwrap.wrap(xml_text(text), max(int(width / (size * _CHAR_EM)), 8)) or [""]


def _text_lines(
    parent: ET.Element, text: str, y: float, *, size: float, **attrs: Any
) -> tuple[ET.Element, float]:
    """Write ``text`` wrapped to the plot width, first baseline at ``y``; returns the element
    and the y just below its last line."""
    lines = _wrap(text, size)
    # A halo in the page's color keeps the words readable over year lines and today's line.
    element = _el(parent, "text", None, x=PLOT_LEFT, y=y, font_size=_num(size), **_HALO, **attrs)
    for i, line in enumerate(lines):
        span = _el(element, "tspan", line, x=PLOT_LEFT)
        if i:
            span.set("dy", _num(size * _LEADING))
    return element, y + (len(lines) - 1) * size * _LEADING + size * 0.4


def trial_svg(history: TrialHistory, scale: TimeScale, *, today: date) -> str:
    """One trial's picture as an ``<svg>`` element (no XML declaration, ready to inline)."""
    rows: list[tuple[str, PartialDate | None, list[Slip]]] = []
    latest = history.latest
    all_slips = slips(history)
    for name in DATE_FIELDS:
        current: PartialDate | None = getattr(latest, name) if latest is not None else None
        rows.append((name, current, [s for s in all_slips if s.field == name]))
    spans = status_spans(history, today=today)
    description = _description(history, rows, spans)

    svg = ET.Element(
        "svg",
        {
            "xmlns": SVG_NS,
            "class": "trial-timeline",
            "data-nct": history.nct_id,
            "role": "img",
            "aria-label": xml_text(description),
            "width": "100%",
            "preserveAspectRatio": "xMinYMin meet",
            "font-family": _FONT,
            "font-size": _num(_LABEL_SIZE),
            "fill": _INK,
        },
    )
    _el(svg, "title", description)
    grid = _el(svg, "g", class_="grid")  # first, so the year lines lie behind everything
    _, y = _text_lines(svg, history.name, 14.0, size=13.5, font_weight="bold")

    # The status row: its path in words (the colors are not the only way to read it).
    first = history.first_recorded_at
    path = " → ".join(status_label(span.status) for span in spans) or "(none recorded)"
    since = f" · recorded since {_utc_day(first).isoformat()}" if first else ""
    _, y = _text_lines(svg, f"Status: {path}{since}", y + 14, size=_LABEL_SIZE)
    top = band_y = y + 4
    band_h = 14.0
    band = _el(svg, "g", class_="status-row")
    for span in spans:
        x0, x1 = scale.x(span.start), scale.x(span.end)
        width = max(x1 - x0, MIN_SPAN_WIDTH)
        fill, ink = STATUS_COLORS.get(span.status or "", _OTHER_STATUS)
        words = status_label(span.status)
        rect = _el(
            band,
            "rect",
            class_="status-span",
            data_status=span.status or "",
            data_start=span.start.isoformat(),
            data_end=span.end.isoformat(),
            x=x0,
            y=band_y,
            width=width,
            height=band_h,
            fill=fill,
        )
        _el(rect, "title", f"{words}: {span.start.isoformat()} to {span.end.isoformat()}")
        if len(words) * 10 * _CHAR_EM + 6 <= width:
            _el(band, "text", words, x=x0 + 3, y=band_y + 10.5, fill=ink, font_size="10")
    y = band_y + band_h

    # One row per date: its current value in words, the slips, the marker.
    for name, current, date_slips in rows:
        row = _el(svg, "g", class_="date-row", data_field=name)
        shown = date_label(current.date, current.type) if current else "(none)"
        label = f"{DATE_ROW_LABELS[name]}: {shown}"
        if date_slips:
            label += f" — {_moved(date_slips)}"
        _, y = _text_lines(row, label, y + 16, size=_LABEL_SIZE)
        line_y = y + 8
        for i, slip in enumerate(date_slips):
            _draw_slip(row, slip, scale, line_y + i * _SLIP_STEP)
        marker_y = line_y + max(len(date_slips) - 1, 0) * _SLIP_STEP
        day = partial_date_start(current.date) if current else None
        if current is not None and day is not None:
            _draw_marker(row, current, scale.x(day), marker_y)
        y = marker_y + 5

    # The axis: year lines and labels, and today.
    axis_y = y + 6
    for tick in scale.ticks():
        x = scale.x(tick)
        _el(grid, "line", x1=x, x2=x, y1=top, y2=axis_y, stroke=_GRID, stroke_width="1")
        _el(
            svg,
            "text",
            str(tick.year),
            x=x,
            y=axis_y + 11,
            fill=_MUTED,
            font_size="10",
            text_anchor=_anchor(x, 12),
        )
    now_x = scale.x(today)
    _el(
        grid,
        "line",
        class_="today",
        x1=now_x,
        x2=now_x,
        y1=top - 3,
        y2=axis_y + 14,
        stroke=_INK,
        stroke_width="1",
        stroke_dasharray="3 2",
    )
    _el(
        svg,
        "text",
        "today",
        x=now_x,
        y=axis_y + 24,
        font_size="10",
        font_weight="bold",
        text_anchor=_anchor(now_x, 14),
    )
    height = axis_y + 28
    svg.set("viewBox", f"0 0 {_num(VIEW_WIDTH)} {_num(height)}")
    return ET.tostring(svg, encoding="unicode", short_empty_elements=True)


_GANTT_BAR_H = 10.0
_PLANNED = "#e7e5e4"  # the trial's span from start to completion, behind its marks


def gantt_svg(histories: Sequence[TrialHistory], scale: TimeScale, *, today: date) -> str:
    """Every trial as one row of one ``<svg>`` across the full width, Gantt-like: its name and
    status in words, a bar from start to completion with the three dates marked (actual filled,
    estimated hollow; primary completion a diamond), the recorded status history as a band
    under the bar, and each recorded slip as an arrow below it; year lines and today behind.
    """
    svg = ET.Element(
        "svg",
        {
            "xmlns": SVG_NS,
            "class": "gantt",
            "role": "img",
            "aria-label": f"Timeline of {len(histories)} trials",
            "width": "100%",
            "preserveAspectRatio": "xMinYMin meet",
            "font-family": _FONT,
            "font-size": "10",
            "fill": _INK,
        },
    )
    grid = _el(svg, "g", class_="grid")
    top = 14.0
    _gantt_axis(svg, scale, 10.0)
    y = top
    for history in histories:
        y = _gantt_row(svg, history, scale, y, today=today)
    bottom = y + 4
    for tick in scale.ticks():
        x = scale.x(tick)
        _el(grid, "line", x1=x, x2=x, y1=top, y2=bottom, stroke=_GRID, stroke_width="1")
    now_x = scale.x(today)
    _el(
        grid,
        "line",
        class_="today",
        x1=now_x,
        x2=now_x,
        y1=top - 2,
        y2=bottom,
        stroke=_INK,
        stroke_width="1",
        stroke_dasharray="3 2",
    )
    _gantt_axis(svg, scale, bottom + 11)
    _el(
        svg,
        "text",
        "today",
        x=now_x,
        y=bottom + 22,
        font_size="9",
        font_weight="bold",
        text_anchor=_anchor(now_x, 14),
    )
    svg.set("viewBox", f"0 0 {_num(VIEW_WIDTH)} {_num(bottom + 26)}")
    return ET.tostring(svg, encoding="unicode", short_empty_elements=True)


def _gantt_axis(svg: ET.Element, scale: TimeScale, y: float) -> None:
    for tick in scale.ticks():
        x = scale.x(tick)
        _el(
            svg,
            "text",
            str(tick.year),
            x=x,
            y=y,
            fill=_MUTED,
            font_size="9",
            text_anchor=_anchor(x, 12),
        )


def _gantt_row(
    svg: ET.Element, history: TrialHistory, scale: TimeScale, y: float, *, today: date
) -> float:
    latest = history.latest
    all_slips = slips(history)
    current = {name: getattr(latest, name) if latest else None for name in DATE_FIELDS}
    spans = status_spans(history, today=today)
    rows = [(n, current[n], [s for s in all_slips if s.field == n]) for n in DATE_FIELDS]
    row = _el(svg, "g", class_="gantt-row", data_nct=history.nct_id)
    _el(row, "title", _description(history, rows, spans))
    status = status_label(latest.overall_status) if latest else "not recorded yet"
    _, y = _text_lines(row, history.name, y + 12, size=10.5, font_weight="bold")
    moved = "; ".join(
        f"{DATE_ROW_LABELS[n].lower()} {_moved(found)}" for n, _, found in rows if found
    )
    words = f"{status}" + (f" · {moved}" if moved else "")
    _, y = _text_lines(row, words, y + 12, size=9.5, fill=_MUTED)
    bar_y = y + 5
    days = {n: partial_date_start(v.date) if v else None for n, v in current.items()}
    start, end = days["start_date"], days["completion_date"] or days["primary_completion_date"]
    if start and end and end > start:
        _el(
            row,
            "rect",
            class_="planned",
            x=scale.x(start),
            y=bar_y,
            width=scale.x(end) - scale.x(start),
            height=_GANTT_BAR_H,
            fill=_PLANNED,
            rx="2",
        )
    band_y = bar_y + _GANTT_BAR_H + 1.5
    for span in spans:
        x0 = scale.x(span.start)
        fill, _ = STATUS_COLORS.get(span.status or "", _OTHER_STATUS)
        rect = _el(
            row,
            "rect",
            class_="status-span",
            data_status=span.status or "",
            x=x0,
            y=band_y,
            width=max(scale.x(span.end) - x0, MIN_SPAN_WIDTH),
            height=4,
            fill=fill,
        )
        _el(rect, "title", f"{status_label(span.status)}: {span.start} to {span.end}")
    mid = bar_y + _GANTT_BAR_H / 2
    for name, value in current.items():
        day = days[name]
        if value is None or day is None:
            continue
        if name == "primary_completion_date":
            _draw_diamond(row, value, scale.x(day), mid)
        else:
            _draw_marker(row, value, scale.x(day), mid)
    y = band_y + 4
    for i, slip in enumerate(all_slips):
        _draw_slip(row, slip, scale, y + 6 + i * _SLIP_STEP)
    if all_slips:
        y += 6 + (len(all_slips) - 1) * _SLIP_STEP + 4
    return y + 4


def _draw_diamond(parent: ET.Element, value: PartialDate, x: float, y: float) -> None:
    """Primary completion: a diamond, filled when actual, hollow when estimated."""
    actual = value.type == "ACTUAL"
    points = (
        f"{_num(x)},{_num(y - 5)} {_num(x + 5)},{_num(y)} {_num(x)},{_num(y + 5)} "
        f"{_num(x - 5)},{_num(y)}"
    )
    kind = "actual" if actual else "estimated" if value.type == "ESTIMATED" else "untyped"
    mark = _el(
        parent,
        "polygon",
        class_=f"date-marker primary {kind}",
        points=points,
        fill=_INK if actual else "#ffffff",
        stroke=_INK,
        stroke_width="1.5",
    )
    _el(mark, "title", "Primary completion: " + date_label(value.date, value.type))


def _anchor(x: float, half_width: float) -> str:
    """Centered text, unless that would run off either edge of the picture."""
    if x - half_width < 0:
        return "start"
    if x + half_width > VIEW_WIDTH:
        return "end"
    return "middle"


def _draw_slip(parent: ET.Element, slip: Slip, scale: TimeScale, y: float) -> None:
    x1, x2 = scale.x(slip.old_day), scale.x(slip.new_day)
    color = _LATER if x2 > x1 else _EARLIER
    group = _el(
        parent,
        "g",
        class_="slip",
        data_field=slip.field,
        data_from=slip.old,
        data_to=slip.new,
    )
    _el(group, "title", f"{slip.summary} (recorded {_utc_day(slip.detected_at).isoformat()})")
    _el(
        group,
        "line",
        class_="slip-origin",
        x1=x1,
        x2=x1,
        y1=y - 3.5,
        y2=y + 3.5,
        stroke=_MUTED,
        stroke_width="1.5",
    )
    _el(group, "line", class_="slip-line", x1=x1, x2=x2, y1=y, y2=y, stroke=color, stroke_width="2")
    back = -5.0 if x2 > x1 else 5.0
    points = (
        f"{_num(x2)},{_num(y)} {_num(x2 + back)},{_num(y - 3.5)} {_num(x2 + back)},{_num(y + 3.5)}"
    )
    _el(group, "polygon", class_="slip-head", points=points, fill=color)


def _draw_marker(parent: ET.Element, value: PartialDate, x: float, y: float) -> None:
    kind = {"ACTUAL": "actual", "ESTIMATED": "estimated"}.get(value.type or "", "untyped")
    attrs: dict[str, Any] = {"class_": f"date-marker {kind}", "cx": x, "cy": y, "r": "4.5"}
    if kind == "actual":
        attrs |= {"fill": _INK, "stroke": _INK, "stroke_width": "1.5"}
    elif kind == "estimated":
        attrs |= {"fill": "#ffffff", "stroke": _INK, "stroke_width": "1.8"}
    else:
        attrs |= {
            "fill": "#ffffff",
            "stroke": _MUTED,
            "stroke_width": "1.5",
            "stroke_dasharray": "2 1.5",
        }
    circle = _el(parent, "circle", **attrs)
    _el(circle, "title", date_label(value.date, value.type))


def _description(
    history: TrialHistory,
    rows: Sequence[tuple[str, PartialDate | None, list[Slip]]],
    spans: Sequence[StatusSpan],
) -> str:
    """The picture in words, for screen readers and tooltips."""
    parts = []
    for name, current, date_slips in rows:
        shown = date_label(current.date, current.type) if current else "none"
        moved = f" ({_moved(date_slips)})" if date_slips else ""
        parts.append(f"{DATE_ROW_LABELS[name].lower()} {shown}{moved}")
    if spans:
        parts.append("status " + " → ".join(status_label(s.status) for s in spans))
    return f"{history.name}: " + "; ".join(parts)


# --- the page ----------------------------------------------------------------------------------


def timeline_context(histories: Sequence[TrialHistory], *, today: date) -> dict[str, Any]:
    """What the ``_timeline.html.j2`` macro draws: a legend and one SVG per trial."""
    scale = time_scale(histories, today=today)
    return _legend(histories, today=today) | {
        "axis": f"{scale.start.year}–{scale.end.year - 1}",
        "svgs": [trial_svg(h, scale, today=today) for h in histories],
    }


def _legend(histories: Sequence[TrialHistory], *, today: date) -> dict[str, Any]:
    """The legend's words: the marks' colors and each status drawn, once."""
    statuses: dict[str, None] = {}
    for history in histories:
        for span in status_spans(history, today=today):
            statuses.setdefault(span.status or "", None)
    legend = [
        {
            "label": status_label(s or None),
            "color": STATUS_COLORS.get(s, _OTHER_STATUS)[0],
        }
        for s in statuses
    ]
    return {"statuses": legend, "later": _LATER, "earlier": _EARLIER}


def render_timeline_page(
    histories: Sequence[TrialHistory],
    *,
    generated_at: datetime,
    data_timestamp: str | None,
) -> str:
    """``trialwatch timeline``: a standalone HTML page of the picture (no script, prints on A4);
    ``today`` on the axis is ``generated_at``'s UTC day."""
    today = _utc_day(generated_at)
    context = {
        "title": "Timeline of watched trials",
        "stamp": stamp(data_timestamp, generated_at),
        "timeline": _legend(histories, today=today),
        "gantt": gantt_svg(histories, time_scale(histories, today=today), today=today),
    }
    return environment().get_template("timeline.html.j2").render(context)
