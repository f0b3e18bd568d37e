"""Is trialwatch healthy? Pure: facts in, an assessment and alert texts out."""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from trialwatch.config import HealthSettings
from trialwatch.vocabulary import utc_time


@dataclass(frozen=True, slots=True)
class Health:
    now: datetime
    last_success_at: datetime | None
    data_timestamp: str | None
    data_age_hours: float | None
    consecutive_failures: int
    last_error: str | None
    queued: int
    dead: int
    problems: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        return not self.problems


def parse_data_timestamp(value: str | None) -> datetime | None:
    """CT.gov's ``dataTimestamp`` (``yyyy-MM-ddTHH:mm:ss``, UTC) as an aware datetime."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def assess(
    *,
    now: datetime,
    settings: HealthSettings,
    last_success_at: datetime | None,
    data_timestamp: str | None,
    consecutive_failures: int,
    last_error: str | None,
    outbox: Mapping[str, int],
    retrying: int = 0,
) -> Health:
    """Unhealthy when no sync ever succeeded, after N consecutive failed syncs, when the data is
    older than allowed, or when notifications are dead letters (a change nobody heard about).
    Notifications being retried after a temporary failure are a warning, not a problem.
    """
    problems = []
    warnings = []
    if last_success_at is None:
        problems.append(
            "no sync has succeeded yet"
            + (f" (last error: {last_error})" if last_error else ": run `trialwatch sync`")
        )
    elif consecutive_failures >= settings.max_consecutive_failures:
        problems.append(
            f"{consecutive_failures} consecutive syncs failed"
            + (f" (last error: {last_error})" if last_error else "")
        )
    stamp = parse_data_timestamp(data_timestamp)
    age = None if stamp is None else (now - stamp).total_seconds() / 3600
    if age is not None and age > settings.max_data_age_hours:
        problems.append(
            f"the stored CT.gov data is {age:.0f} hours old (limit {settings.max_data_age_hours:g})"
        )
    dead = outbox.get("dead", 0)
    if dead:
        problems.append(
            f"{dead} notification(s) could not be delivered (dead letters): fix what failed, "
            "then run `trialwatch notify retry`"
        )
    if retrying:
        warnings.append(f"{retrying} notification(s) failed for now and will be retried")
    return Health(
        now=now,
        last_success_at=last_success_at,
        data_timestamp=data_timestamp,
        data_age_hours=age,
        consecutive_failures=consecutive_failures,
        last_error=last_error,
        queued=outbox.get("pending", 0),
        dead=dead,
        problems=tuple(problems),
        warnings=tuple(warnings),
    )


def render_alert(health: Health, unhealthy: bool, episode: str) -> dict[str, str]:
    """Subject, text and HTML of the admin's alert (or recovery notice)."""
    if unhealthy:
        subject = "trialwatch alert: " + "; ".join(health.problems)
        lines = [
            "trialwatch is not keeping the watchlist up to date:",
            "",
            *(f"- {p}" for p in health.problems),
            "",
            "You will get one more message when it recovers.",
        ]
    else:
        subject = "trialwatch recovered"
        lines = ["trialwatch is syncing normally again."]
    last_success = utc_time(health.last_success_at) if health.last_success_at else "-"
    lines += [
        "",
        f"Last successful sync: {last_success}",
        f"CT.gov data as of: {health.data_timestamp or '-'}",
        f"Queued notifications: {health.queued}; dead letters: {health.dead}",
        f"(alert episode {episode})",
    ]
    return _payload(subject, lines)


def render_flood_alert(
    *,
    finished_at: datetime,
    data_timestamp: str | None,
    flooded_trials: int,
    max_trials: int,
    max_fraction: float,
) -> dict[str, str]:
    """Subject, text and HTML of the note telling the admin why a run sent only summaries."""
    subject = f"trialwatch: {flooded_trials} trials changed at once; summaries sent"
    lines = [
        f"The sync of {finished_at:%Y-%m-%d %H:%M} UTC (CT.gov data as of {data_timestamp}) "
        f"found changes that notify people in {flooded_trials} trials at once: more than "
        f"[outbox] flood_max_trials = {max_trials} or flood_max_fraction = {max_fraction:g} "
        "of the watch set.",
        "",
        "So each recipient got one summary instead of a long report. A registry-wide edit, a "
        "new trialwatch release or a broad query usually explains it. Every change is "
        "recorded: `trialwatch report --since DATE` lists them.",
    ]
    return _payload(subject, lines)


def render_refused_alert(nct_id: str, reason: str) -> dict[str, str]:
    """Subject, text and HTML of the note telling the admin that CT.gov refuses an id."""
    subject = f"trialwatch: {nct_id} is refused by ClinicalTrials.gov"
    lines = [
        f"The watched id {nct_id} cannot be looked up: {reason}.",
        "",
        "It is left out of every sync (the other trials are checked as usual) and shown as "
        "refused by `trialwatch watch list` and `trialwatch status`. Remove it with "
        f"`trialwatch watch remove {nct_id}`, or watch the id you meant.",
    ]
    return _payload(subject, lines)


def render_refused_query_alert(name: str, reason: str) -> dict[str, str]:
    """Subject, text and HTML of the note telling the admin that CT.gov refuses a query."""
    subject = f"trialwatch: ClinicalTrials.gov refuses the query {name!r}"
    lines = [
        f"The [[queries]] entry name = {name!r} was refused: {reason}.",
        "",
        "The watched trials are synced as usual; this query finds nothing new until its search "
        "is fixed in the config (a bare [ or ] outside Essie's AREA[...] and RANGE[...] is the "
        "usual cause). `trialwatch status` names it while it is refused.",
    ]
    return _payload(subject, lines)


def _payload(subject: str, lines: list[str]) -> dict[str, str]:
    text = "\n".join(lines) + "\n"
    # One line only: a problem text can never add a header.
    subject = " ".join(subject.split())[:200]
    body = "".join(f"<p>{html.escape(line)}</p>" if line else "" for line in lines)
    return {"subject": subject, "text": text, "html": f"<html><body>{body}</body></html>"}
