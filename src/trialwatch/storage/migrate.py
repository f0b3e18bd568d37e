"""Schema migrations with Alembic: ``trialwatch db upgrade`` and ``trialwatch db current``.

Imported only by the ``db`` commands and by an opted-in automatic upgrade
(``[database] auto_upgrade``); opening the database checks the revision without Alembic.
On SQLite the database file is copied beside itself before anything changes.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.exc import DBAPIError

from trialwatch.exceptions import DatabaseUnavailableError, StorageError
from trialwatch.storage._engine import (
    V010_REVISION,
    first_line,
    make_engine,
    newer_message,
    schema_revision,
    sqlite_path,
)
from trialwatch.storage._schema import HEAD_REVISION

MIGRATIONS = Path(__file__).with_name("migrations")


@dataclass(frozen=True, slots=True)
class UpgradeResult:
    before: str | None  # None: the database was empty
    after: str
    backup: Path | None  # the copy made first (SQLite)

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def current(url: str) -> str | None:
    """The database's schema revision (None when it has no tables yet)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return schema_revision(conn)
    except DBAPIError as exc:
        raise DatabaseUnavailableError(f"cannot use database: {first_line(exc.orig)}") from exc
    finally:
        engine.dispose()


def backup_sqlite(path: Path, revision: str, now: datetime) -> Path:
    """A consistent copy of a SQLite database (WAL included), beside it."""
    target = path.with_name(f"{path.stem}.rev{revision}-{now:%Y%m%dT%H%M%S}{path.suffix}.bak")
    source = sqlite3.connect(path)
    try:
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
        finally:
            copy.close()
    finally:
        source.close()
    target.chmod(path.stat().st_mode & 0o777)
    return target


def upgrade(url: str, *, now: datetime, backup: bool = True) -> UpgradeResult:
    """Bring the database to the newest schema, keeping every row. Idempotent.

    A 0.1.0 database (tables, no revision) is stamped 0001 first. All steps run in one
    transaction where the engine allows it (PostgreSQL, and SQLite's DDL too).
    """
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            before = schema_revision(conn)
        if before == HEAD_REVISION:
            return UpgradeResult(before, HEAD_REVISION, None)
        if before is not None and before > HEAD_REVISION:
            raise StorageError(newer_message(before, engine.url.render_as_string()))
        copy = None
        path = sqlite_path(str(engine.url))
        if backup and before is not None and path is not None and path.exists():
            copy = backup_sqlite(path, before, now)
        config = _config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            tables = set(sa.inspect(conn).get_table_names())
            if before == V010_REVISION and "alembic_version" not in tables:
                command.stamp(config, V010_REVISION)
            command.upgrade(config, "head")
        return UpgradeResult(before, HEAD_REVISION, copy)
    except DBAPIError as exc:
        raise StorageError(f"the upgrade failed, nothing changed: {first_line(exc.orig)}") from exc
    finally:
        engine.dispose()
