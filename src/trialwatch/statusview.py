"""What ``status`` shows, from the whole app or from the light road.

``status`` reads health, the watch set at a glance, the refused queries and the dead letters.
:class:`~trialwatch.app.App` answers all of them; so does :class:`LightStatus`, which reads a
SQLite file over the standard library (``storage``'s :class:`~trialwatch.storage.Glance`)
without importing SQLAlchemy, SQLModel or the app: on a 20,000-trial database that start-up was
most of the command's time (issue 21). Both run the same SQL and the same functions below, so
they cannot say different things; the road is chosen by :func:`open_light_status`, which
declines whenever the full road has something to do or to explain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from trialwatch.health import Health, assess
from trialwatch.models import Clock, StatusGlance

if TYPE_CHECKING:
    from trialwatch.config import Settings
    from trialwatch.redact import Scrubber
    from trialwatch.storage import Glance
    from trialwatch.storage._glance import HealthFacts


def utc_now() -> datetime:
    return datetime.now(UTC)


class DeadLetterLine(Protocol):
    """A dead letter as ``status`` lists it (a stored notification has these too)."""

    @property
    def id(self) -> int | None: ...
    @property
    def channel(self) -> str: ...
    @property
    def recipient(self) -> str: ...
    @property
    def subscription(self) -> str | None: ...
    @property
    def last_error(self) -> str | None: ...


class StatusView(Protocol):
    """What ``status`` asks of whichever road it took."""

    def health(self) -> Health: ...
    def status_glance(self, *, list_up_to: int, show: int = 10) -> StatusGlance: ...
    def refused_queries(self) -> dict[str, str]: ...
    def dead_letters(self) -> Sequence[DeadLetterLine]: ...
    @property
    def scrub(self) -> Scrubber: ...


def health_of(facts: HealthFacts, settings: Settings, now: datetime) -> Health:
    """The health check on what the database says (:meth:`Glance.health_facts`)."""
    return assess(
        now=now,
        settings=settings.health,
        last_success_at=facts.last_success_at,
        data_timestamp=facts.data_timestamp,
        consecutive_failures=facts.consecutive_failures,
        last_error=facts.last_error,
        outbox=facts.outbox,
        retrying=facts.retrying,
    )


def configured_refusals(refused: Mapping[str, str], settings: Settings) -> dict[str, str]:
    """The refused queries the config still has (a query since removed is not news)."""
    names = {q.name for q in settings.queries}
    return {name: reason for name, reason in refused.items() if name in names}


@dataclass
class LightStatus:
    """:class:`StatusView` over a :class:`~trialwatch.storage.Glance` and the settings."""

    settings: Settings
    glance: Glance
    clock: Clock = utc_now

    def health(self) -> Health:
        return health_of(self.glance.health_facts(), self.settings, self.clock())

    def status_glance(self, *, list_up_to: int, show: int = 10) -> StatusGlance:
        return self.glance.status_glance(list_up_to=list_up_to, show=show)

    def refused_queries(self) -> dict[str, str]:
        return configured_refusals(self.glance.refused_queries(), self.settings)

    def dead_letters(self) -> Sequence[DeadLetterLine]:
        return self.glance.dead_letters()

    @property
    def scrub(self) -> Scrubber:
        from trialwatch.routing import webhook_scrubber  # only when there is a dead letter

        return webhook_scrubber(self.settings.subscriptions)

    def close(self) -> None:
        self.glance.close()


def missing_database(settings: Settings) -> Path | None:
    """The SQLite file the settings name when it does not exist yet (None otherwise): a
    command that only reads says so rather than create it."""
    from trialwatch.storage import sqlite_path

    path = sqlite_path(settings.database.url)
    return path if path is not None and not path.exists() else None


def open_light_status(settings: Settings, *, clock: Clock = utc_now) -> LightStatus | None:
    """The light road when it can answer exactly as the app would: a plain SQLite file with this
    code's schema, whose ``config`` watches are already the config file's ``[[watchlist]]``
    (else the app applies them first, as every command does). None: take the full road."""
    from trialwatch.storage import open_glance

    glance = open_glance(settings.database.url)
    if glance is None:
        return None
    wanted = {w.nct_id: (w.label, w.table, w.reference) for w in settings.watchlist}
    try:
        applied = glance.config_watches() == wanted
    except Exception:
        glance.close()
        raise
    if not applied:
        glance.close()
        return None
    return LightStatus(settings=settings, glance=glance, clock=clock)
