"""Cron expressions read as crontab reads them, for APScheduler 3."""

from __future__ import annotations

from apscheduler.triggers.cron import CronTrigger

__all__ = ["crontab_trigger", "crontab_weekdays"]

_CRONTAB_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def crontab_weekdays(field: str) -> str:
    """A crontab day-of-week field (0 or 7 = Sunday) in APScheduler 3's terms.

    APScheduler 3 reads day numbers as 0 = Monday (its ``from_crontab`` says so in a warning,
    issue 286), so ``1-5`` would mean Tuesday to Saturday. Numbers are therefore expanded into
    day names, which both read the same way; parts already written as names are kept.
    """
    parts = []
    for part in field.split(","):
        if part == "*" or any(c.isalpha() for c in part):
            parts.append(part)
            continue
        span, slash, step_text = part.partition("/")
        try:
            step = int(step_text) if slash else 1
            if span == "*":
                first, last = 0, 6
            elif "-" in span:
                low, high = span.split("-", 1)
                first, last = int(low), int(high)
            else:
                first = int(span)
                last = 7 if slash else first
        except ValueError:
            raise ValueError(f"{field!r} is not a day-of-week field") from None
        if not (0 <= first <= last <= 7) or step < 1:
            raise ValueError(f"{field!r} is not a day-of-week field (days are 0-7, 0 = Sunday)")
        days = sorted({day % 7 for day in range(first, last + 1, step)})
        parts.append(",".join(_CRONTAB_DAYS[day] for day in days))
    return ",".join(parts)


def crontab_trigger(expr: str, *, timezone: str, jitter_s: int | None = None) -> CronTrigger:
    """A CronTrigger reading ``expr`` (minute hour day month weekday) as crontab does.

    Raises ValueError for an expression that is not one.
    """
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"{expr!r} is not a 5-field cron expression")
    minute, hour, day, month, weekday = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=crontab_weekdays(weekday),
        timezone=timezone,
        jitter=jitter_s or None,
    )
