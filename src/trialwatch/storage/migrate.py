"""Schema migrations with Alembic: ``trialwatch db upgrade`` and ``trialwatch db current``.

Imported only by the ``db`` commands and by an opted-in automatic upgrade
(``[database] auto_upgrade``); opening the database checks the revision without Alembic.
On SQLite the database file is copied beside itself (scrubbed of secrets) before anything
changes; two upgrades at once take turns on the ``migration`` lock.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.exc import DBAPIError

from trialwatch.exceptions import DatabaseUnavailableError, LockHeldError, StorageError
from trialwatch.failpoints import failpoint
from trialwatch.redact import NO_SECRETS, Scrubber
from trialwatch.routing import webhook_reference
from trialwatch.storage._engine import (
    V010_REVISION,
    StoreBase,
    first_line,
    make_engine,
    newer_message,
    schema_revision,
)
from trialwatch.storage._plain import HEAD_REVISION, sqlite_path

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


# Beyond the copy itself: SQLite's journal while the copy is scrubbed, and room to breathe.
_BACKUP_MARGIN = 2
_MIB = 1024 * 1024


def free_bytes(directory: Path) -> int:
    """Free space in ``directory`` for this process (what a write there may use)."""
    return shutil.disk_usage(directory).free


def backup_sqlite(
    path: Path,
    revision: str,
    now: datetime,
    *,
    scrub: Callable[[str], str] = NO_SECRETS,
    free: Callable[[Path], int] = free_bytes,
) -> Path:
    """A consistent copy of a SQLite database (WAL included), beside it, without its secrets.

    Checks first that the folder has room for the copy (twice the database, for the journal
    while it is scrubbed), and says so plainly when not, before writing a byte. The copy is
    written under a temporary name (``mkstemp``: ``.trialwatch.db.XXXX.partial``) and renamed
    to its ``….bak`` name only once complete, flushed and scrubbed: a kill or a full disk
    mid-way never leaves a file named like a good backup, and a failure removes the partial
    copy. Scrubbed: the webhook URLs 0.1.0 kept in its outbox become the references a newer
    release keeps (what migration 0002 does to the database itself), and every recorded
    delivery error is passed through ``scrub`` (the settings' webhook secrets). Deleted text is
    overwritten (``secure_delete``), not left in free pages. The copy gets the database's mode.
    """
    target = path.with_name(f"{path.stem}.rev{revision}-{now:%Y%m%dT%H%M%S}{path.suffix}.bak")
    size = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    needed = size * _BACKUP_MARGIN + _MIB
    available = free(path.parent)
    if available < needed:
        raise StorageError(
            f"not enough free space in {path.parent} to back up the database before upgrading: "
            f"the copy needs about {_mib(needed)}, {_mib(available)} is free. Free some space "
            "and run `trialwatch db upgrade` again; nothing was changed"
        )
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    partial = Path(name)
    try:
        source = sqlite3.connect(path)
        try:
            copy = sqlite3.connect(partial)
            try:
                source.backup(copy)
                _scrub_copy(copy, scrub)
            finally:
                copy.close()
        finally:
            source.close()
        with partial.open("rb+") as fh:
            os.fsync(fh.fileno())
        failpoint("upgrade.backup_written")  # complete, not yet under its name
        partial.chmod(path.stat().st_mode & 0o777)
        partial.replace(target)
    except (sqlite3.Error, OSError) as exc:
        partial.unlink(missing_ok=True)
        Path(f"{partial}-journal").unlink(missing_ok=True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StorageError(
            f"cannot back up the database to {path.parent}: {reason}; the partial copy was "
            "removed and nothing was changed"
        ) from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        Path(f"{partial}-journal").unlink(missing_ok=True)
        raise
    return target


def _scrub_copy(copy: sqlite3.Connection, scrub: Callable[[str], str]) -> None:
    tables = {r[0] for r in copy.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "notification" not in tables:
        return
    copy.execute("PRAGMA secure_delete = ON")  # what is replaced is zeroed, not left behind
    with copy:
        rows = copy.execute(
            "SELECT id, channel, recipient, last_error FROM notification"
            " WHERE channel = 'webhook' OR last_error IS NOT NULL"
        ).fetchall()
        for row_id, channel, recipient, error in rows:
            own = Scrubber([recipient]) if channel == "webhook" else NO_SECRETS
            new_recipient = recipient
            if channel == "webhook" and not recipient.startswith("webhook:"):
                new_recipient = webhook_reference(recipient)
            new_error = None if error is None else scrub(own(error))
            if (new_recipient, new_error) != (recipient, error):
                copy.execute(
                    "UPDATE notification SET recipient = ?, last_error = ? WHERE id = ?",
                    (new_recipient, new_error, row_id),
                )


def _mib(n: int) -> str:
    return f"{n / _MIB:.1f} MiB"


def upgrade(
    url: str,
    *,
    now: datetime,
    backup: bool = True,
    scrub: Callable[[str], str] = NO_SECRETS,
    lock_wait_s: float = 600.0,
    free: Callable[[Path], int] = free_bytes,
) -> UpgradeResult:
    """Bring the database to the newest schema, keeping every row. Idempotent.

    Holds the database's ``migration`` lock from before it reads the revision to the end, so
    two upgrades at once run one after the other: the second finds the schema current and
    says so (waiting up to ``lock_wait_s`` for the first). A 0.1.0 database (tables, no
    revision) is stamped 0001 first. All steps run in one transaction where the engine allows
    it (PostgreSQL, and SQLite's DDL too). On SQLite, :func:`backup_sqlite` copies the file
    first; ``scrub`` hides the settings' secrets in that copy.
    """

    engine = make_engine(url)
    lock = StoreBase(engine).lock("migration")
    try:
        if not lock.acquire(lock_wait_s):
            raise LockHeldError(
                f"another `trialwatch db upgrade` has been upgrading this database for over "
                f"{lock_wait_s:g}s; try again when it has finished"
            )
        with engine.connect() as conn:
            before = schema_revision(conn)
        if before == HEAD_REVISION:
            return UpgradeResult(before, HEAD_REVISION, None)
        if before is not None and before > HEAD_REVISION:
            raise StorageError(newer_message(before, engine.url.render_as_string()))
        copy = None
        path = sqlite_path(str(engine.url))
        if backup and before is not None and path is not None and path.exists():
            copy = backup_sqlite(path, before, now, scrub=scrub, free=free)
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
        lock.release()
        engine.dispose()
