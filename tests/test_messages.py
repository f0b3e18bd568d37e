"""Rendering change reports: subjects, bodies, capping, escaping, MIME building, webhooks."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trialwatch.diff import ChangeCount
from trialwatch.messages import (
    SUBJECT_MAX_CHARS,
    ChangeReport,
    RenderedEmail,
    TrialChanges,
    build_message,
    make_message_id,
    render_change_report,
    render_test_message,
    webhook_payload,
)
from trialwatch.models import Category, ChangeKind, FieldChange, Severity

NOW = datetime(2026, 11, 21, 14, 5, tzinfo=UTC)
DATA_TS = "2026-11-20T09:00:05"
EVIL = '<script>alert(1)</script> & "x"'

STATUS = FieldChange(
    field="overall_status",
    category=Category.STATUS,
    severity=Severity.CRITICAL,
    kind=ChangeKind.CHANGED,
    summary="Overall status: Active, not recruiting → Completed",
    old="ACTIVE_NOT_RECRUITING",
    new="COMPLETED",
)
ENROLLMENT = FieldChange(
    field="enrollment",
    category=Category.ENROLLMENT,
    severity=Severity.MINOR,
    kind=ChangeKind.CHANGED,
    summary="Enrollment: 120 est. → 118 actual",
    old={"count": 120, "type": "ESTIMATED"},
    new={"count": 118, "type": "ACTUAL"},
)
SITE = FieldChange(
    field="locations",
    category=Category.SITES,
    severity=Severity.MAJOR,
    kind=ChangeKind.ADDED,
    summary="Site added: Mayo Clinic, Rochester",
    new={"facility": "Mayo Clinic", "city": "Rochester"},
    item_key="Mayo Clinic|Rochester",
)
DATE = FieldChange(
    field="primary_completion_date",
    category=Category.DATES,
    severity=Severity.MAJOR,
    kind=ChangeKind.CHANGED,
    summary="Primary completion: 2026-06 est. → 2027-01 est.",
    old={"date": "2026-06", "type": "ESTIMATED"},
    new={"date": "2027-01", "type": "ESTIMATED"},
)


def trial(
    *changes: FieldChange,
    nct_id: str = "NCT02606461",
    label: str | None = "SEAL",
    title: str | None = "Study of Everolimus After Liver transplant",
) -> TrialChanges:
    return TrialChanges(nct_id=nct_id, label=label, brief_title=title, changes=changes)


def report(*trials: TrialChanges, period: str | None = None) -> ChangeReport:
    return ChangeReport(
        trials=trials, data_timestamp=DATA_TS, generated_at=NOW, run_id="run-7", period=period
    )


def minor(n: int) -> FieldChange:
    return FieldChange(
        field="conditions",
        category=Category.DESIGN,
        severity=Severity.MINOR,
        kind=ChangeKind.ADDED,
        summary=f"Condition added: condition {n}",
        new=f"condition {n}",
        item_key=f"condition {n}",
    )


def built(rendered: RenderedEmail, **overrides: object) -> EmailMessage:
    kwargs: dict[str, object] = {
        "sender": "trialwatch@example.org",
        "recipients": ["alice@example.org"],
        "message_id": "<trialwatch.n-1@example.org>",
        "date": NOW,
    }
    kwargs.update(overrides)
    return build_message(rendered, **kwargs)  # type: ignore[arg-type]


def reparse(message: EmailMessage) -> EmailMessage:
    parsed = message_from_bytes(message.as_bytes(), policy=default_policy)
    assert isinstance(parsed, EmailMessage)
    return parsed


# --- subjects ---------------------------------------------------------------------------------


def test_single_status_change_subject() -> None:
    rendered = render_change_report(report(trial(STATUS)))
    assert (
        rendered.subject
        == "1 change in 1 trial — SEAL (NCT02606461): Active, not recruiting → Completed"
    )


def test_several_changes_in_one_trial_subject_leads_with_the_most_severe() -> None:
    rendered = render_change_report(report(trial(ENROLLMENT, STATUS, SITE)))
    assert rendered.subject == (
        "3 changes in 1 trial — SEAL (NCT02606461): Active, not recruiting → Completed"
    )


def test_non_status_change_keeps_its_summary_and_no_label_uses_the_nct_id() -> None:
    rendered = render_change_report(report(trial(ENROLLMENT, DATE, label=None)))
    assert rendered.subject == (
        "2 changes in 1 trial — NCT02606461: Primary completion: 2026-06 est. → 2027-01 est."
    )


def test_several_trials_subject_counts() -> None:
    rendered = render_change_report(
        report(trial(ENROLLMENT, DATE), trial(SITE, nct_id="NCT01213277", label="ABC"))
    )
    assert rendered.subject == (
        "3 changes in 2 trials — SEAL (NCT02606461): Primary completion: 2026-06 est. → "
        "2027-01 est."
    )


def test_several_trials_subject_names_a_critical_change_first() -> None:
    rendered = render_change_report(
        report(trial(ENROLLMENT, nct_id="NCT01213277", label="ABC"), trial(STATUS, SITE))
    )
    assert rendered.subject == (
        "3 changes in 2 trials — SEAL (NCT02606461): Active, not recruiting → Completed"
    )


def test_digest_subject() -> None:
    rendered = render_change_report(
        report(trial(STATUS), period="daily digest, 2026-11-20 to 2026-11-21")
    )
    assert rendered.subject == (
        "Daily digest: 1 change in 1 trial — SEAL (NCT02606461): Active, not recruiting → Completed"
    )
    assert "daily digest, 2026-11-20 to 2026-11-21" in rendered.text


def test_long_titles_are_truncated_in_the_subject_only() -> None:
    label = "A very long label " * 10
    summary = "Official title: " + "word " * 60
    change = FieldChange(
        "official_title", Category.ADMINISTRATIVE, Severity.MAJOR, ChangeKind.CHANGED, summary
    )
    rendered = render_change_report(report(trial(change, label=label)))

    assert len(rendered.subject) <= SUBJECT_MAX_CHARS
    assert "…" in rendered.subject
    assert rendered.subject.startswith("1 change in 1 trial — A very long label")
    assert "(NCT" in rendered.subject  # the id survives even though the label is cut
    assert " ".join(label.split()) in rendered.text  # the body keeps it whole


def test_cr_lf_in_label_and_title_never_leave_the_line() -> None:
    evil = "Evil\r\nBcc: victim@example.com"
    rendered = render_change_report(report(trial(STATUS, label=evil, title=evil)))

    assert "\r" not in rendered.subject
    assert "\n" not in rendered.subject
    assert rendered.subject.startswith("1 change in 1 trial — Evil Bcc: victim@example.com (NCT")

    message = reparse(built(rendered))
    expected = "Subject From To Date Message-ID Auto-Submitted MIME-Version Content-Type"
    assert sorted(message.keys()) == sorted(expected.split())
    assert message["Bcc"] is None
    assert message["Subject"] == rendered.subject
    assert message["To"] == "alice@example.org"


@given(
    label=st.text(max_size=200) | st.none(),
    title=st.text(max_size=300) | st.none(),
    summary=st.text(min_size=1, max_size=300),
)
def test_subject_is_always_one_short_line(
    label: str | None, title: str | None, summary: str
) -> None:
    change = FieldChange(
        "why_stopped", Category.STATUS, Severity.MAJOR, ChangeKind.CHANGED, summary
    )
    subject = render_change_report(report(trial(change, label=label, title=title))).subject

    assert len(subject) <= SUBJECT_MAX_CHARS
    assert not any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in subject)


POSTED = FieldChange(
    "last_update_posted",
    Category.ADMINISTRATIVE,
    Severity.ADMIN,
    ChangeKind.CHANGED,
    "Last update posted: 2026-11-01 → 2026-11-21",
    "2026-11-01",
    "2026-11-21",
)


def test_admin_lines_are_never_in_an_email_nor_counted() -> None:
    rendered = render_change_report(
        report(trial(STATUS, POSTED), trial(POSTED, nct_id="NCT01213277", label="ABC"))
    )
    assert rendered.subject.startswith("1 change in 1 trial — SEAL")
    assert rendered.text.splitlines()[0] == "1 change in 1 trial"
    for body in (rendered.text, rendered.html):
        assert "Last update posted" not in body
        assert "ABC" not in body


def test_a_message_showing_part_of_a_run_leads_with_the_run_and_says_how_many_it_shows() -> None:
    part = replace(
        report(trial(STATUS)),
        run_count=ChangeCount(changes=4, trials=3),
        left_out="changes below major ([email] min_severity)",
    )
    rendered = render_change_report(part)
    assert rendered.subject.startswith("4 changes in 3 trials, 1 shown — SEAL (NCT02606461)")
    lines = rendered.text.splitlines()
    assert lines[0] == "4 changes in 3 trials, 1 shown"
    assert lines[1] == (
        "This message shows 1 of the 4 changes; left out: changes below major "
        "([email] min_severity)."
    )
    assert "4 changes in 3 trials, 1 shown" in rendered.html
    # The whole run in one message: the run's count alone, nothing "shown" to explain.
    whole = replace(report(trial(STATUS)), run_count=ChangeCount(changes=1, trials=1))
    assert render_change_report(whole).text.splitlines()[0] == "1 change in 1 trial"


# --- bodies -----------------------------------------------------------------------------------


def test_body_groups_by_trial_most_severe_first_with_links_and_footer() -> None:
    rendered = render_change_report(
        report(
            trial(ENROLLMENT, nct_id="NCT01213277", label="ABC", title="Another study"),
            trial(ENROLLMENT, SITE, STATUS),
        )
    )

    for body in (rendered.text, rendered.html):
        # SEAL has the critical change, so it comes first although listed second.
        assert body.index("NCT02606461") < body.index("NCT01213277")
        seal = body[body.index("NCT02606461") : body.index("NCT01213277")]
        assert seal.index("Completed") < seal.index("Site added") < seal.index("Enrollment")
        assert "https://clinicaltrials.gov/study/NCT02606461" in body
        assert "https://clinicaltrials.gov/study/NCT02606461?tab=history" in body
        assert "Study of Everolimus After Liver transplant" in body
        assert f"CT.gov data as of {DATA_TS}" in body
        assert "config/trialwatch.toml" in body
        assert "[[subscriptions]]" in body
        assert "critical" in body
        assert "minor" in body
    assert "[critical] Overall status: Active, not recruiting → Completed" in rendered.text
    assert rendered.html.lstrip().startswith("<!DOCTYPE html>")
    assert "<style" not in rendered.html  # inline styles only
    assert 'href="https://clinicaltrials.gov/study/NCT02606461?tab=history"' in rendered.html


def test_missing_data_timestamp_is_said_plainly() -> None:
    rendered = render_change_report(
        ChangeReport(trials=(trial(STATUS),), data_timestamp=None, generated_at=NOW)
    )
    assert "CT.gov data timestamp unknown" in rendered.text
    assert "2026-11-21 14:05 UTC" in rendered.text


def test_cap_keeps_the_most_severe_changes_and_says_how_many_more() -> None:
    crowded = trial(*(minor(n) for n in range(30)), nct_id="NCT01213277", label="ABC")
    important = trial(ENROLLMENT, SITE, STATUS, minor(99))
    rendered = render_change_report(report(crowded, important), max_changes=5)

    text = rendered.text
    assert "Showing the 5 most important changes below, and 29 more changes" in text
    # SEAL (critical, so first) keeps all four; ABC's thirty minor ones get what is left.
    seal, abc = text.split("== ABC (NCT01213277) ==")
    assert "not shown" not in seal
    assert seal.count("[") == 4
    assert abc.count("[minor]") == 1
    assert "... and 29 more changes not shown: see the history page below." in abc
    assert "and 29 more changes" in rendered.html
    assert abc.count("Condition added") == 1


def test_cap_per_trial_counts_are_exact() -> None:
    rendered = render_change_report(
        report(
            trial(STATUS, SITE, DATE),
            trial(*(minor(n) for n in range(4)), nct_id="NCT01213277", label="ABC"),
        ),
        max_changes=3,
    )
    # SEAL shows its three changes; ABC shows none and says so.
    assert "4 changes not shown: see the history page below." in rendered.text
    assert "4 changes not shown" in rendered.html
    assert "Condition added" not in rendered.text


def test_max_changes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_changes"):
        render_change_report(report(trial(STATUS)), max_changes=0)


def test_markup_in_titles_is_escaped_in_html_and_plain_in_text() -> None:
    site = FieldChange(
        "locations", Category.SITES, Severity.MAJOR, ChangeKind.ADDED, f"Site added: {EVIL}"
    )
    rendered = render_change_report(report(trial(STATUS, site, label=EVIL, title=EVIL)))

    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;x&#34;" in rendered.html
    assert EVIL in rendered.text  # plain text has no markup to inject into
    assert "<script>" not in rendered.text.replace(EVIL, "")


class _Elements(HTMLParser):
    """Every element of an HTML document with its style, its ancestors and its own text."""

    VOID = frozenset({"br", "img", "meta", "hr", "input", "link", "col"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, str]] = []
        self.texts: list[tuple[str, list[tuple[str, str]]]] = []  # (text, ancestors innermost last)
        self.elements: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        style = (dict(attrs).get("style") or "").replace(" ", "")
        self.elements.append((tag, style))
        if tag not in self.VOID:
            self.stack.append((tag, style))

    def handle_endtag(self, tag: str) -> None:
        while self.stack and self.stack.pop()[0] != tag:
            pass

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.texts.append((data, list(self.stack)))


WRAPS = ("overflow-wrap:anywhere", "word-break:break-word")


def test_a_long_unbroken_token_wraps_instead_of_widening_the_card() -> None:
    # Issue 12: one URL in "why stopped" widened the card past a phone's screen and cut every
    # row at its right edge. Every element that shows registry text must wrap such a token,
    # and the change table must not grow with its content.
    token = "https://example.org/" + "x" * 300
    why = FieldChange(
        "why_stopped", Category.STATUS, Severity.MAJOR, ChangeKind.CHANGED, f"Why stopped: {token}"
    )
    rendered = render_change_report(
        report(trial(STATUS, why, label=token, title=token), period=f"digest, {token}")
    )

    parser = _Elements()
    parser.feed(rendered.html)
    holding = [(text, ancestors) for text, ancestors in parser.texts if "x" * 50 in text]
    assert len(holding) == 4  # the period, the label, the title, the summary
    for text, ancestors in holding:
        tag, style = ancestors[-1]  # the element the text sits in, not just some ancestor
        assert all(w in style for w in WRAPS), (tag, style, text[:30])
        for cell_tag, cell_style in ancestors:
            if cell_tag == "table":
                assert "table-layout:fixed" in cell_style and "width:100%" in cell_style
    cards = [style for tag, style in parser.elements if tag == "div" and "border-left" in style]
    assert cards and all("max-width:100%" in c and "box-sizing:border-box" in c for c in cards)
    cells = [style for tag, style in parser.elements if tag == "td"]
    # Every cell either is the fixed-width badge column or wraps what it holds.
    assert cells and all("width:76px" in c or all(w in c for w in WRAPS) for c in cells)


def test_test_message() -> None:
    rendered = render_test_message(generated_at=NOW)
    assert rendered.subject == "trialwatch test message"
    assert "2026-11-21 14:05 UTC" in rendered.text
    assert "2026-11-21 14:05 UTC" in rendered.html
    assert "config/trialwatch.toml" in rendered.text


def test_times_are_shown_in_utc() -> None:
    eastern = NOW.astimezone(timezone(timedelta(hours=-5)))
    assert "2026-11-21 14:05 UTC" in render_test_message(generated_at=eastern).text


# --- MIME -------------------------------------------------------------------------------------


def test_build_message_round_trip() -> None:
    rendered = render_change_report(report(trial(STATUS)))
    message = built(
        rendered,
        recipients=["alice@example.org", "bob@example.org"],
        extra_headers={"X-Trialwatch-Run": "run-7"},
    )
    parsed = reparse(message)

    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    # The wire has CRLF line ends; the parser keeps them.
    assert parts[0].get_content().replace("\r\n", "\n") == rendered.text
    assert parts[1].get_content().replace("\r\n", "\n") == rendered.html
    assert "→" in parts[0].get_content()
    assert parsed["Subject"] == (
        "1 change in 1 trial — SEAL (NCT02606461): Active, not recruiting → Completed"
    )
    assert parsed["Message-ID"] == "<trialwatch.n-1@example.org>"
    assert parsed["From"] == "trialwatch@example.org"
    assert parsed["To"] == "alice@example.org, bob@example.org"
    assert parsed["Date"].datetime == NOW
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["X-Trialwatch-Run"] == "run-7"
    raw = message.as_bytes()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    raw.decode("ascii")  # 7-bit clean: quoted-printable bodies, RFC 2047 subject


@pytest.mark.parametrize(
    "overrides",
    [
        {"rendered": RenderedEmail("Hi\r\nBcc: victim@example.com", "t", "<p>h</p>")},
        {"sender": "a@example.org\r\nBcc: victim@example.com"},
        {"recipients": ["a@example.org\nBcc: victim@example.com"]},
        {"extra_headers": {"X-Run": "1\r\nBcc: victim@example.com"}},
        {"extra_headers": {"Bad Name": "1"}},
        {"extra_headers": {"Message-ID": "<other@example.org>"}},
        {"message_id": "<a@b>\r\nBcc: victim@example.com"},
        {"message_id": "not-an-id"},
        {"recipients": []},
        {"date": datetime(2026, 11, 21, 14, 5)},  # naive
    ],
)
def test_build_message_refuses_unsafe_input(overrides: dict[str, object]) -> None:
    rendered = overrides.pop("rendered", RenderedEmail("s", "t", "<p>h</p>"))
    assert isinstance(rendered, RenderedEmail)
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        built(rendered, **overrides)


def test_make_message_id() -> None:
    assert make_message_id("run-42.alice", "example.org") == "<trialwatch.run-42.alice@example.org>"
    assert (
        make_message_id("42/alice@x <y>", "example.org") == "<trialwatch.42-alice-x-y@example.org>"
    )
    with pytest.raises(ValueError, match="key"):
        make_message_id("///", "example.org")
    with pytest.raises(ValueError, match="domain"):
        make_message_id("k", "example.org>\r\nBcc: x")


# --- webhook ----------------------------------------------------------------------------------


def test_webhook_payload_shape() -> None:
    r = report(trial(ENROLLMENT, nct_id="NCT01213277", label=None, title=None), trial(SITE, STATUS))
    rendered = render_change_report(r)
    payload = webhook_payload(r, rendered)

    assert json.loads(json.dumps(payload)) == payload  # plain JSON
    assert payload["text"].startswith(rendered.subject + "\n")
    assert "https://clinicaltrials.gov/study/NCT02606461" in payload["text"]
    data = payload["trialwatch"]
    assert data["data_timestamp"] == DATA_TS
    assert [t["nct_id"] for t in data["trials"]] == ["NCT02606461", "NCT01213277"]
    seal = data["trials"][0]
    assert seal["label"] == "SEAL"
    assert seal["url"] == "https://clinicaltrials.gov/study/NCT02606461"
    assert seal["history_url"] == "https://clinicaltrials.gov/study/NCT02606461?tab=history"
    assert seal["changes"][0] == {
        "field": "overall_status",
        "category": "status",
        "severity": "critical",
        "kind": "changed",
        "summary": "Overall status: Active, not recruiting → Completed",
        "old": "ACTIVE_NOT_RECRUITING",
        "new": "COMPLETED",
        "item_key": None,
    }
    assert seal["changes"][1]["new"] == {"facility": "Mayo Clinic", "city": "Rochester"}


def test_webhook_text_cannot_ping_or_link() -> None:
    r = report(trial(STATUS, label="<!channel> & <https://evil.example|click>"))
    payload = webhook_payload(r, render_change_report(r))
    assert "<!channel>" not in payload["text"]
    assert "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;" in payload["text"]
    assert payload["trialwatch"]["trials"][0]["label"].startswith("<!channel>")


def test_the_email_says_when_ct_gov_posted_the_change_and_keeps_dates_whole() -> None:
    posted = replace(trial(DATE), posted="2026-11-19")
    rendered = render_change_report(report(posted))
    assert "Posted on ClinicalTrials.gov: 2026-11-19" in rendered.text
    assert '<span style="white-space:nowrap;">2026-11-19</span>' in rendered.html
    # A date in a change's words is not split across lines on a narrow screen either.
    assert '<span style="white-space:nowrap;">2026-06</span> est.' in rendered.html
    assert '<span style="white-space:nowrap;">2027-01</span> est.' in rendered.html
    payload = webhook_payload(report(posted), rendered)
    assert payload["trialwatch"]["trials"][0]["last_update_posted"] == "2026-11-19"


def test_dates_are_kept_whole_and_the_rest_still_escaped() -> None:
    from trialwatch.pages import unbroken_dates

    text = str(unbroken_dates('<b> from March 2027 to 2027-03-01 14:00 UTC & "x"'))
    assert text == (
        '&lt;b&gt; from <span style="white-space:nowrap;">March 2027</span> to '
        '<span style="white-space:nowrap;">2027-03-01 14:00 UTC</span> &amp; &#34;x&#34;'
    )
