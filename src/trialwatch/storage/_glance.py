"""The light read path: what ``status`` shows, in plain SQL over a DB-API connection.

One implementation serves both roads. :class:`~trialwatch.storage.Store` runs it over the
pooled connection of its engine (SQLite or PostgreSQL: :meth:`StoreBase.glance`); ``status`` on
a SQLite file runs it over the standard library's :mod:`sqlite3` (:func:`open_glance`), so the
command starts without SQLAlchemy, SQLModel or the tables' classes: on a 20,000-trial database
those imports were most of its time (issue 21). Whatever N, a handful of queries on the trial
rows; no snapshot is decoded.

Nothing here writes. A database this path cannot vouch for — another engine, a URL with
options, a schema that is not this code's, a config watch list not yet applied — gets ``None``
from :func:`open_glance`, and the caller takes the full road, which says what is wrong or
applies what is pending.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from trialwatch.exceptions import StorageError
from trialwatch.models import StatusGlance, TrialLine
from trialwatch.storage._plain import HEAD_REVISION, best_labels, sqlite_path

CONFIG_SOURCE = "config"

# Every watched trial (once, however many sources watch it) with the columns a line needs,
# trial row or not (LEFT JOIN). The statements below are constants; every value is bound.
_LINES = (
    "SELECT w.nct_id, t.current_version_id, t.overall_status, t.last_changed_at, t.last_error,"
    " t.consecutive_misses, t.acronym, t.brief_title"
    " FROM (SELECT DISTINCT nct_id FROM watch) w LEFT JOIN trial t ON t.nct_id = w.nct_id"
)
_TROUBLED = "(t.last_error IS NOT NULL OR t.current_version_id IS NULL)"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A notification that exhausted its attempts: what ``status`` lists of it."""

    id: int
    channel: str
    recipient: str
    subscription: str | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class HealthFacts:
    """What the health check reads from the database (:func:`trialwatch.health.assess`)."""

    last_success_at: datetime | None
    data_timestamp: str | None
    consecutive_failures: int
    last_error: str | None  # the newest run's first error, when that run failed
    outbox: Mapping[str, int]  # notifications by status
    retrying: int  # pending ones that failed at least once


def as_utc(value: object) -> datetime | None:
    """A stored moment as an aware UTC datetime: SQLite hands back SQLAlchemy's text
    (``2026-12-07 04:11:17.123456``, UTC by convention), PostgreSQL an aware datetime."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def trial_line(
    nct_id: str,
    label: str | None,
    row: Sequence[Any] | None,
) -> TrialLine:
    """One watched trial as ``status`` lists it, from the columns of :data:`_LINES` after the
    id (``row`` None: no trial row yet)."""
    version_id, status, changed_at, last_error, misses, acronym, title = row or (None,) * 7
    problem = None
    if last_error:
        problem = last_error + (f" ({misses} syncs in a row)" if (misses or 0) > 1 else "")
    elif version_id is None:
        problem = "not synced yet"
    return TrialLine(
        nct_id=nct_id,
        label=label or acronym or title or nct_id,
        overall_status=status if version_id is not None else None,
        last_changed_at=as_utc(changed_at),
        problem=problem,
    )


class Glance:
    """``status``'s reads over one DB-API connection (``paramstyle`` its driver's: ``qmark``
    for sqlite3, ``pyformat`` or ``format`` for psycopg; ``errors`` its ``Error`` class, turned
    into :class:`StorageError`). Read-only; the caller owns the transaction and closes the
    connection (``on_close``)."""

    def __init__(
        self,
        connection: Any,
        *,
        paramstyle: str = "qmark",
        errors: type[BaseException] = sqlite3.Error,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._connection = connection
        self._mark = "?" if paramstyle == "qmark" else "%s"
        self._errors = errors
        self._on_close = on_close

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            cursor = self._connection.cursor()
            try:
                cursor.execute(sql.replace("?", self._mark), tuple(params))
                return [tuple(row) for row in cursor.fetchall()]
            finally:
                cursor.close()
        except self._errors as exc:  # the driver's: locked, corrupt, gone
            text = str(exc).strip().splitlines()
            raise StorageError(
                f"database error: {text[0] if text else type(exc).__name__}"
            ) from exc

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self._rows(sql, params)
        return rows[0][0] if rows else None

    # --- what the road needs to know before it is taken -------------------------------------

    def revision(self) -> str | None:
        """The schema revision the database says it has (None: no ``alembic_version``)."""
        try:
            value = self._one("SELECT version_num FROM alembic_version")
        except StorageError:  # no such table: not a database this road reads
            return None
        return None if value is None else str(value)

    def config_watches(self) -> dict[str, tuple[str | None, str | None, str | None]]:
        """The ``config`` source's entries: nct_id -> (label, table, reference)."""
        return {
            nct_id: (label, table_ref, reference)
            for nct_id, label, table_ref, reference in self._rows(
                "SELECT nct_id, label, table_ref, reference FROM watch WHERE source = ?",
                (CONFIG_SOURCE,),
            )
        }

    # --- health -----------------------------------------------------------------------------

    def health_facts(self) -> HealthFacts:
        last_ok = self._rows(
            "SELECT id, finished_at, data_timestamp FROM sync_run WHERE status = 'complete'"
            " ORDER BY id DESC LIMIT 1"
        )
        newest = self._rows("SELECT status, errors_json FROM sync_run ORDER BY id DESC LIMIT 1")
        failures = "SELECT count(*) FROM sync_run WHERE status IN ('failed', 'interrupted')"
        consecutive = (
            self._one(failures + " AND id > ?", (last_ok[0][0],))
            if last_ok
            else self._one(failures)
        )
        last_error = None
        if newest and newest[0][0] == "failed" and newest[0][1]:
            errors = json.loads(newest[0][1])
            last_error = errors[0] if errors else None
        outbox = {
            str(status): int(n)
            for status, n in self._rows("SELECT status, count(*) FROM notification GROUP BY status")
        }
        retrying = self._one(
            "SELECT count(*) FROM notification WHERE status = 'pending' AND attempts > 0"
        )
        return HealthFacts(
            last_success_at=as_utc(last_ok[0][1]) if last_ok else None,
            data_timestamp=last_ok[0][2] if last_ok else None,
            consecutive_failures=int(consecutive or 0),
            last_error=last_error,
            outbox=outbox,
            retrying=int(retrying or 0),
        )

    # --- the watch set ------------------------------------------------------------------------

    def watches_anything(self) -> bool:
        """Whether any trial is watched, from any source."""
        return bool(self._one("SELECT EXISTS (SELECT 1 FROM watch)"))

    def status_glance(self, *, list_up_to: int, show: int) -> StatusGlance:
        """Every watched trial when at most ``list_up_to`` are watched, else counts by status
        and the ``show`` latest changes and trials with problems."""
        watched = int(self._one("SELECT count(*) FROM (SELECT DISTINCT nct_id FROM watch) w"))
        by_status: dict[str | None, int] = {
            (status or "UNKNOWN"): int(n)
            for status, n in self._rows(
                "SELECT t.overall_status, count(*) FROM trial t"
                " JOIN (SELECT DISTINCT nct_id FROM watch) w"
                " ON w.nct_id = t.nct_id WHERE t.current_version_id IS NOT NULL"
                " GROUP BY t.overall_status"
            )
        }
        if (unsynced := watched - sum(by_status.values())) > 0:
            by_status[None] = unsynced
        troubled = f"{_LINES} WHERE {_TROUBLED}"
        problem_count = int(self._one(f"SELECT count(*) FROM ({troubled}) p"))  # noqa: S608
        every: list[tuple[Any, ...]] | None
        if watched <= list_up_to:
            every = self._rows(f"{_LINES} ORDER BY w.nct_id")
            latest: list[tuple[Any, ...]] = []
            problems: list[tuple[Any, ...]] = []
            labels = self._labels(None)
        else:
            every = None
            latest = self._rows(
                f"{_LINES} WHERE t.last_changed_at IS NOT NULL"
                " ORDER BY t.last_changed_at DESC, w.nct_id LIMIT ?",
                (show,),
            )
            problems = self._rows(f"{_LINES} WHERE {_TROUBLED} ORDER BY w.nct_id LIMIT ?", (show,))
            labels = self._labels({row[0] for row in [*latest, *problems]})

        def lines(rows: Iterable[tuple[Any, ...]]) -> list[TrialLine]:
            # A watched id with no trial row yet comes back with NULLs in the trial's columns.
            return [trial_line(r[0], labels.get(r[0]), r[1:]) for r in rows]

        return StatusGlance(
            watched=watched,
            by_status=by_status,
            every=None if every is None else lines(every),
            latest=lines(latest),
            problems=lines(problems),
            problem_count=problem_count,
        )

    def _labels(self, ids: set[str] | None) -> dict[str, str]:
        """Each trial's label from its best source (of ``ids``; None: of every trial)."""
        sql = "SELECT nct_id, source, label FROM watch WHERE label IS NOT NULL"
        if ids is None:
            return best_labels(self._rows(sql))
        if not ids:
            return {}
        wanted = sorted(ids)
        marks = ", ".join("?" for _ in wanted)
        return best_labels(self._rows(f"{sql} AND nct_id IN ({marks})", wanted))

    # --- queries and the outbox ---------------------------------------------------------------

    def refused_queries(self) -> dict[str, str]:
        """Query name -> why CT.gov refused its search at the last sync that ran it."""
        return dict(
            self._rows("SELECT query_name, refused FROM query_state WHERE refused IS NOT NULL")
        )

    def dead_letters(self) -> list[DeadLetter]:
        return [
            DeadLetter(*row)
            for row in self._rows(
                "SELECT id, channel, recipient, subscription, last_error FROM notification"
                " WHERE status = 'dead' ORDER BY id"
            )
        ]


def open_glance(url: str, *, timeout_s: float = 5.0) -> Glance | None:
    """``status``'s light road for a plain SQLite file URL whose database has this code's schema,
    over :mod:`sqlite3`; None when it does not apply (another engine, a URL with options, no
    file, another schema, an unreadable file): the full road then answers or explains."""
    path = sqlite_path(url)
    if path is None or "?" in url or not path.is_file():
        return None
    try:
        connection = sqlite3.connect(
            f"file:{quote(str(path))}?mode=rw", uri=True, timeout=timeout_s, isolation_level=None
        )
    except sqlite3.Error:
        return None
    # One snapshot of the database for every read (WAL: a sync writing meanwhile is not seen
    # half-done). ``mode=rw`` never creates the file; nothing here writes.
    glance = Glance(connection, on_close=connection.close)
    try:
        connection.execute("BEGIN")
    except sqlite3.Error:
        glance.close()
        return None
    if glance.revision() != HEAD_REVISION:
        glance.close()
        return None
    return glance
