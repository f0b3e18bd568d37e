"""Turns the changes found by a sync into an email (text + HTML) and a webhook payload. Pure.

Nothing here sends anything, reads the clock or touches the database: times are passed in, and
the only I/O is loading the Jinja2 templates shipped inside the package
(``trialwatch/templates``). Delivery lives in :mod:`trialwatch.notify`.

Everything a third party controls (trial titles, labels, summaries built from registry text) is
treated as hostile: the HTML template autoescapes it, and every single-line text (subject, titles,
summaries) has its control characters replaced by spaces, so a title such as
``"Evil\\r\\nBcc: victim@example.com"`` can never become an extra mail header.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from types import MappingProxyType
from typing import Any

from trialwatch import vocabulary
from trialwatch.diff import ChangeCount, change_count, counted
from trialwatch.models import FieldChange, Severity
from trialwatch.pages import environment
from trialwatch.vocabulary import one_line, plural, truncate, utc_time

SUBJECT_MAX_CHARS = 120
"""Subjects are cut to this length (with "…"); inbox lists show far less anyway."""

CONFIG_HINT = "config/trialwatch.toml"

_NAME_MAX_CHARS = 40  # a label or title in the subject; the body always has it in full
_WEBHOOK_TEXT_TRIALS = 10  # chat messages stay short: the structured part has everything

# Characters that must never reach a single-line field: C0/C1 controls (CR, LF, TAB, NUL, NEL,
# ...), the Unicode line/paragraph separators and the bidi overrides that can make a title read
# differently from what it is.
_MESSAGE_ID_RE = re.compile(r"<[^<>@\s]+@[^<>@\s]+>")
_HEADER_NAME_RE = re.compile(r"[\x21-\x39\x3b-\x7e]+")  # RFC 5322 ftext: printable, no colon
_UNSAFE_KEY_RE = re.compile(r"[^A-Za-z0-9._-]+")
_DOMAIN_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
# Headers build_message sets itself; letting extra_headers repeat them would make two Subjects or
# two Message-IDs, which mail servers treat in surprising ways.
_RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "auto-submitted",
    }
)
_NO_EXTRA_HEADERS: Mapping[str, str] = MappingProxyType({})
# Headers are written without folding (RFC 5322 allows lines up to 998 characters; subjects are
# capped far below): CPython's folder, when it breaks a line before an encoded word such as the
# "→" of a status change, leaves a trailing space, so readers see "recruiting  → Completed".
# The bodies are still encoded under plain email.policy.SMTP (quoted-printable, short lines).
_HEADER_POLICY = SMTP.clone(max_line_length=998)


@dataclass(frozen=True)
class TrialChanges:
    """The changes of one watched trial that one recipient should hear about."""

    nct_id: str
    label: str | None
    brief_title: str | None
    changes: tuple[FieldChange, ...]
    # The registry's "last update posted" date of the record the changes lead to.
    posted: str | None = None


@dataclass(frozen=True)
class ChangeReport:
    """What one email (or webhook post) is about: one sync run, or a digest of several.

    ``period`` is set for digests, e.g. ``"daily digest, 2026-11-20 to 2026-11-21"``; its text
    before the first comma becomes the subject prefix ("Daily digest: ...").
    """

    trials: tuple[TrialChanges, ...]
    data_timestamp: str | None
    generated_at: datetime
    run_id: str | None = None
    period: str | None = None
    # The whole run's count (:func:`trialwatch.diff.change_count`) when this message shows
    # only part of it (a min_severity, a subscription's filter): it leads, "N changes, K shown".
    run_count: ChangeCount | None = None
    # Why part of the run is left out, e.g. "changes below major ([email] min_severity)".
    left_out: str | None = None
    # ``[web] public_url``: each trial then links to its page there too.
    public_url: str | None = None


@dataclass(frozen=True)
class RenderedEmail:
    """A subject (one line, no control characters) and the two bodies of one email."""

    subject: str
    text: str
    html: str


# --- views handed to the templates -------------------------------------------------------------


@dataclass(frozen=True)
class _ChangeView:
    severity: str
    category: str
    summary: str


@dataclass(frozen=True)
class _TrialView:
    nct_id: str
    label: str | None
    brief_title: str | None
    posted: str | None
    url: str
    history_url: str
    page_url: str | None
    severity: str
    total: int
    omitted: int
    changes: tuple[_ChangeView, ...]


# --- public API --------------------------------------------------------------------------------


def render_change_report(report: ChangeReport, *, max_changes: int = 50) -> RenderedEmail:
    """Render one email for ``report``: a one-line subject, a plain-text and an HTML body.

    Trials are ordered most severe first, and so are the changes of each trial. At most
    ``max_changes`` changes are shown in total, the most severe ones across all trials; every
    trial is still listed, and says how many of its changes were left out and where to see them
    (its history page). Does not filter by severity or subscription: the caller decides what
    belongs in ``report``. Raises ``ValueError`` if ``max_changes`` is less than 1.
    """
    if max_changes < 1:
        raise ValueError(f"max_changes must be at least 1, got {max_changes}")
    trials = _sorted_trials(report.trials)
    shown = _select_shown(trials, max_changes)
    views = tuple(_trial_view(trial, shown[i], report.public_url) for i, trial in enumerate(trials))
    total = sum(len(t.changes) for t in trials)
    shown_count = sum(len(v.changes) for v in views)
    lead, left_out = _lead(report, trials)
    subject = _subject(trials, lead, report.period)
    context: dict[str, Any] = {
        "subject": subject,
        "intro": lead,
        "left_out": left_out,
        "period": one_line(report.period) if report.period else None,
        "trials": views,
        "total_changes": total,
        "shown_changes": shown_count,
        "omitted_changes": total - shown_count,
        "data_timestamp": one_line(report.data_timestamp) if report.data_timestamp else None,
        "generated_at": utc_time(report.generated_at),
        "run_id": one_line(report.run_id) if report.run_id else None,
        "config_hint": CONFIG_HINT,
    }
    return _render("change_report", subject, context)


def render_flood_summary(
    report: ChangeReport, *, top_trials: int = 10, max_changes: int = 20
) -> RenderedEmail:
    """One short message for a run that changed too many trials at once (a registry-wide
    edit, a broad query): how many and how severe, then only the most severe trials.

    Every change stays recorded: the message says where to read them all.
    """
    trials = _sorted_trials(report.trials)
    lead, _ = _lead(report, trials)
    by_severity = dict.fromkeys(Severity, 0)
    for trial in trials:
        by_severity[max(c.severity for c in trial.changes)] += 1
    counts = ", ".join(
        f"{by_severity[s]} {s.label}" for s in sorted(Severity, reverse=True) if by_severity[s]
    )
    shown = min(top_trials, len(trials))
    period = (
        f"Summary, {len(trials)} trials changed at once ({counts}); the {shown} most severe "
        "are shown, `trialwatch report --since DATE` lists every change"
    )
    reduced = ChangeReport(
        trials=tuple(trials[:shown]),
        data_timestamp=report.data_timestamp,
        generated_at=report.generated_at,
        run_id=report.run_id,
        period=period,
        run_count=report.run_count or _count(trials),
        left_out=report.left_out,
    )
    rendered = render_change_report(reduced, max_changes=max_changes)
    subject = truncate(f"Summary: {lead}, all at once ({counts})", SUBJECT_MAX_CHARS)
    return RenderedEmail(subject, rendered.text, rendered.html)


def render_test_message(*, generated_at: datetime) -> RenderedEmail:
    """Render the message ``trialwatch notify test`` sends to check that delivery works."""
    subject = "trialwatch test message"
    context: dict[str, Any] = {
        "subject": subject,
        "generated_at": utc_time(generated_at),
        "config_hint": CONFIG_HINT,
    }
    return _render("test_message", subject, context)


def build_message(
    rendered: RenderedEmail,
    *,
    sender: str,
    recipients: Sequence[str],
    message_id: str,
    date: datetime,
    extra_headers: Mapping[str, str] = _NO_EXTRA_HEADERS,
) -> EmailMessage:
    """Build the MIME message: multipart/alternative, the text part first, then the HTML part.

    Both parts are UTF-8, quoted-printable (safe through any relay); headers are encoded by the
    :mod:`email` package under ``email.policy.SMTP`` (CRLF), but not folded below 998 characters
    (see ``_HEADER_POLICY``). ``message_id`` is used exactly as given, so a resend of the same
    notification carries the same Message-ID (see :func:`make_message_id`).
    Adds ``Auto-Submitted: auto-generated`` (RFC 3834) so vacation responders stay quiet.

    Never folds a line break into a header: any header value (subject, addresses, extra headers)
    that contains CR, LF or another control character raises ``ValueError``, as do an empty
    ``recipients``, a malformed ``message_id``, a naive ``date``, an invalid header name, or an
    extra header that would repeat one this function sets. Does not send anything.
    """
    if not recipients:
        raise ValueError("a message needs at least one recipient")
    if not _MESSAGE_ID_RE.fullmatch(message_id):
        raise ValueError(f"malformed Message-ID {message_id!r} (expected <local@domain>)")
    if date.tzinfo is None or date.utcoffset() is None:
        raise ValueError("the Date header needs an aware datetime")
    headers: list[tuple[str, str]] = [
        ("Subject", rendered.subject),
        ("From", sender),
        ("To", ", ".join(recipients)),
        ("Date", format_datetime(date)),
        ("Message-ID", message_id),
        ("Auto-Submitted", "auto-generated"),
    ]
    for name, value in extra_headers.items():
        if not _HEADER_NAME_RE.fullmatch(name):
            raise ValueError(f"invalid header name {name!r}")
        if name.lower() in _RESERVED_HEADERS:
            raise ValueError(f"header {name!r} is set by build_message and cannot be overridden")
        headers.append((name, value))
    for name, value in headers:
        _check_header_value(name, value)
    for recipient in recipients:
        _check_header_value("To", recipient)

    message = EmailMessage(policy=SMTP)
    for name, value in headers:
        message[name] = value
    message.set_content(rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    message.policy = _HEADER_POLICY  # after the bodies are encoded; see _HEADER_POLICY
    return message


def make_message_id(notification_key: str, domain: str) -> str:
    """``("run-42.alice", "example.org")`` -> ``"<trialwatch.run-42.alice@example.org>"``.

    Characters of the key outside ``[A-Za-z0-9._-]`` become ``-`` (so distinct keys that differ
    only in such characters collide: keys should already be made of safe characters). Raises
    ``ValueError`` for a key with no usable character or a domain that is not a host name.
    """
    key = _UNSAFE_KEY_RE.sub("-", notification_key).strip("-")
    if not key:
        raise ValueError(f"notification key {notification_key!r} has no usable character")
    if not _DOMAIN_RE.fullmatch(domain):
        raise ValueError(f"{domain!r} is not a valid Message-ID domain")
    return f"<trialwatch.{key}@{domain}>"


def webhook_payload(report: ChangeReport, rendered: RenderedEmail) -> dict[str, Any]:
    """The JSON body for a generic webhook; Slack and Teams incoming webhooks accept it as is.

    ``"text"`` is the subject and one line per trial (at most ten), with ``&``, ``<`` and ``>``
    escaped as Slack requires, so a title cannot smuggle a ``<!channel>`` mention or a link.
    ``"trialwatch"`` holds the structured data: every change of every trial (not capped like the
    email), trials most severe first. ``old``/``new`` are the plain-JSON values of the diff.
    """
    trials = _sorted_trials(report.trials)
    lines = [rendered.subject]
    for trial in trials[:_WEBHOOK_TEXT_TRIALS]:
        top = trial.changes[0]
        more = len(trial.changes) - 1
        extra = f" (+{plural(more, 'more change')})" if more else ""
        lines.append(
            f"• {_trial_name(trial)}: [{top.severity.label}] {one_line(top.summary)}{extra} "
            f"{vocabulary.study_url(trial.nct_id)}"
        )
    if len(trials) > _WEBHOOK_TEXT_TRIALS:
        lines.append(f"and {plural(len(trials) - _WEBHOOK_TEXT_TRIALS, 'more trial')}")
    if report.data_timestamp:
        lines.append(f"CT.gov data as of {one_line(report.data_timestamp)}")
    text = "\n".join(_slack_escape(line) for line in lines)
    return {
        "text": text,
        "trialwatch": {
            "subject": rendered.subject,
            "period": report.period,
            "run_id": report.run_id,
            "generated_at": report.generated_at.isoformat(),
            "data_timestamp": report.data_timestamp,
            "change_count": sum(len(t.changes) for t in trials),
            "trials": [
                {
                    "nct_id": trial.nct_id,
                    "label": trial.label,
                    "brief_title": trial.brief_title,
                    "last_update_posted": trial.posted,
                    "url": vocabulary.study_url(trial.nct_id),
                    "history_url": vocabulary.history_url(trial.nct_id),
                    "changes": [change.to_json() for change in trial.changes],
                }
                for trial in trials
            ],
        },
    }


# --- ordering and capping ----------------------------------------------------------------------


def _top_severity(trial: TrialChanges) -> Severity:
    return max((c.severity for c in trial.changes), default=Severity.ADMIN)


def _sorted_trials(trials: Sequence[TrialChanges]) -> tuple[TrialChanges, ...]:
    """Drops admin lines and trials left without changes; most severe first, then as given
    (sorting is stable)."""
    told = (replace(t, changes=counted(t.changes)) for t in trials)  # admin lines: never
    ordered = sorted((t for t in told if t.changes), key=lambda t: -_top_severity(t))
    return tuple(
        replace(t, changes=tuple(sorted(t.changes, key=lambda c: -c.severity))) for t in ordered
    )


def _select_shown(trials: Sequence[TrialChanges], max_changes: int) -> list[list[FieldChange]]:
    """The changes to show per trial: the ``max_changes`` most severe across all trials.

    Ranking across trials (rather than filling trial after trial) keeps a critical change of the
    fifth trial from being pushed out by minor changes of the first.
    """
    ranked = sorted(
        ((c.severity, ti, ci) for ti, t in enumerate(trials) for ci, c in enumerate(t.changes)),
        key=lambda item: (-item[0], item[1], item[2]),
    )
    keep = {(ti, ci) for _, ti, ci in ranked[:max_changes]}
    return [
        [c for ci, c in enumerate(t.changes) if (ti, ci) in keep] for ti, t in enumerate(trials)
    ]


def _trial_view(
    trial: TrialChanges, shown: Sequence[FieldChange], public_url: str | None = None
) -> _TrialView:
    return _TrialView(
        nct_id=one_line(trial.nct_id),
        label=one_line(trial.label) if trial.label else None,
        brief_title=one_line(trial.brief_title) if trial.brief_title else None,
        posted=one_line(trial.posted) if trial.posted else None,
        url=vocabulary.study_url(trial.nct_id),
        history_url=vocabulary.history_url(trial.nct_id),
        page_url=vocabulary.trial_page_url(public_url, trial.nct_id) if public_url else None,
        severity=_top_severity(trial).label,
        total=len(trial.changes),
        omitted=len(trial.changes) - len(shown),
        changes=tuple(
            _ChangeView(
                severity=c.severity.label, category=c.category.value, summary=one_line(c.summary)
            )
            for c in shown
        ),
    )


# --- subject -----------------------------------------------------------------------------------


def _subject(trials: Sequence[TrialChanges], lead: str, period: str | None) -> str:
    """One line, at most :data:`SUBJECT_MAX_CHARS`: the count first (the number every surface
    leads with), then the most important change."""
    prefix = f"{_digest_name(period)}: " if period else ""
    if not trials:
        return truncate(f"{prefix}No changes in watched trials", SUBJECT_MAX_CHARS)
    top_trial = trials[0]
    name = _trial_name(top_trial, label_max=_NAME_MAX_CHARS)
    head = f"{prefix}{lead} — {name}: "
    room = max(SUBJECT_MAX_CHARS - len(head), 12)
    return truncate(f"{head}{truncate(_headline(top_trial.changes[0]), room)}", SUBJECT_MAX_CHARS)


def _count(trials: Sequence[TrialChanges]) -> ChangeCount:
    return change_count((t.nct_id, t.changes) for t in trials)


def _lead(report: ChangeReport, trials: Sequence[TrialChanges]) -> tuple[str, str | None]:
    """``("3 changes in 2 trials, 1 shown", "Left out: ...")``: the run's count (when the
    message carries only part of it), how many of them this message shows, and why not all."""
    here = _count(trials)
    whole = report.run_count
    if whole is None or whole.changes <= here.changes:
        return (here.text if here.changes else "No changes in your watched trials."), None
    why = one_line(report.left_out) if report.left_out else "changes outside what you receive"
    note = (
        f"This message shows {here.changes} of the {plural(whole.changes, 'change')}; "
        f"left out: {why}."
    )
    return f"{whole.text}, {here.changes} shown", note


def _headline(change: FieldChange) -> str:
    """A status change reads best as just "old → new"; other summaries keep their field name."""
    old, new = change.old, change.new
    if (
        change.field == "overall_status"
        and isinstance(old, str | None)
        and isinstance(new, str | None)
    ):
        return f"{vocabulary.status_label(old)} → {vocabulary.status_label(new)}"
    return one_line(change.summary)


def _digest_name(period: str) -> str:
    """``"daily digest, 2026-11-20 to 2026-11-21"`` -> ``"Daily digest"``; otherwise "Digest"."""
    head = one_line(period.split(",", 1)[0])
    if "digest" not in head.lower() or len(head) > 30:
        return "Digest"
    return head[:1].upper() + head[1:]


def _trial_name(trial: TrialChanges, *, label_max: int | None = None) -> str:
    """``"SEAL (NCT02606461)"``, or the NCT id alone; only the label is ever shortened."""
    nct_id = one_line(trial.nct_id)
    label = one_line(trial.label) if trial.label else ""
    if not label:
        return nct_id
    if label_max is not None:
        label = truncate(label, label_max)
    return f"{label} ({nct_id})"


# --- text helpers ------------------------------------------------------------------------------


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _check_header_value(name: str, value: str) -> None:
    for ch in value:
        if unicodedata.category(ch) == "Cc" or ch in "\u2028\u2029":
            raise ValueError(
                f"header {name} contains a line break or control character ({ch!r}); "
                "refusing to build a message that could inject headers"
            )


# --- templates ---------------------------------------------------------------------------------


def _render(name: str, subject: str, context: Mapping[str, Any]) -> RenderedEmail:
    env = environment()
    text = env.get_template(f"{name}.txt.j2").render(context)
    html = env.get_template(f"{name}.html.j2").render(context)
    return RenderedEmail(subject=subject, text=text, html=html)
