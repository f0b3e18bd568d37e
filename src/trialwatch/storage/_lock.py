"""Locks that the database itself holds, released if the holder dies.

- SQLite: an exclusive ``flock`` on a file beside the database (``trialwatch.db.sync.lock``);
  the kernel drops it when the process exits, however it exits (kill -9 included).
- PostgreSQL: a session-level advisory lock on a dedicated connection; the server drops it when
  that connection goes away.

Used for "one sync at a time per database" (``sync``), "one active daemon per database"
(``daemon``: a second daemon waits as a standby instead of syncing or sending) and one schema
upgrade at a time (``migration``). Callers take one with ``store.lock(name)``; only storage
touches SQLAlchemy.

A held lock can be lost without its holder doing anything, so a long holder (the daemon) asks
:meth:`DatabaseLock.why_lost` before it acts and on a heartbeat:

- PostgreSQL drops the lock with its session: a server restart, a cut connection,
  ``pg_terminate_backend``, ``idle_session_timeout``. Another process can take it at once.
- SQLite's ``flock`` cannot be taken away while the file stays open, but it locks an inode, not a
  path: when the lock file is deleted or replaced (a cleanup, a restored data folder), the next
  process creates a new file at the same path and locks that one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from trialwatch.exceptions import LockHeldError, StorageError


class DatabaseLock:
    """A named, non-reentrant lock on one database. ``acquire`` never blocks longer than asked."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.name = name
        self._file: IO[bytes] | None = None
        self._conn: Any = None
        self._key = _key(f"trialwatch:{name}")
        # The daemon asks why_lost() from its main thread and from job threads; a connection
        # (or a file) must not be used by two threads at once.
        self._mutex = threading.RLock()

    @property
    def held(self) -> bool:
        return self._file is not None or self._conn is not None

    def _lock_path(self) -> Path | None:
        database = self.engine.url.database
        if not database or database == ":memory:":
            return None
        return Path(f"{database}.{self.name}.lock")

    def try_acquire(self) -> bool:
        with self._mutex:
            return self._try_acquire()

    def _try_acquire(self) -> bool:
        if self.held:
            raise RuntimeError(f"lock {self.name!r} is already held by this object")
        if self.engine.dialect.name == "sqlite":
            path = self._lock_path()
            if path is None:
                self._file = open(os.devnull, "rb")  # noqa: SIM115 - in-memory db: one process
                return True
            handle = open(path, "a+b")  # noqa: SIM115 - kept open while the lock is held
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return False
            if _file_lost(handle, path) is not None:
                handle.close()  # the file was replaced between open() and flock(): not a lock
                return False
            self._file = handle
            return True
        try:
            conn = self.engine.connect()
            # Advisory locks are per database: scope the key by schema, so two installations
            # in different schemas of one database do not block each other.
            schema = conn.execute(sa.text("SELECT current_schema()")).scalar()
            self._key = _key(f"trialwatch:{schema}:{self.name}")
            got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key})
            ok = bool(got.scalar())
            conn.commit()
        except sa.exc.OperationalError as exc:
            raise StorageError(f"cannot take the {self.name} lock: {exc.orig}") from exc
        if not ok:
            conn.close()
            return False
        self._conn = conn
        return True

    def acquire(
        self,
        wait_s: float = 0.0,
        *,
        sleep: Callable[[float], None] = time.sleep,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> bool:
        """Try for up to ``wait_s`` seconds; True when held."""
        deadline = time.monotonic() + wait_s
        while True:
            if self.try_acquire():
                return True
            if time.monotonic() >= deadline or should_stop():
                return False
            sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def why_lost(self) -> str | None:
        """None while this object holds its lock; else why it does not (it stays to be released).

        One query on PostgreSQL (does this session still hold the advisory lock?), two ``stat``
        calls on SQLite (is the locked file still the one at the lock's path?). Never raises for
        a database or file error: not being able to tell counts as lost.
        """
        with self._mutex:
            if self._file is not None:
                path = self._lock_path()
                return None if path is None else _file_lost(self._file, path)
            if self._conn is None:
                return "the lock is not held"
            try:
                # A bigint key shows in pg_locks as two oids: high half, low half, objsubid 1.
                held = self._conn.execute(
                    sa.text(
                        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
                        " AND granted AND pid = pg_backend_pid() AND objsubid = 1"
                        " AND classid = CAST(:hi AS oid) AND objid = CAST(:lo AS oid))"
                    ),
                    {"hi": (self._key >> 32) & 0xFFFFFFFF, "lo": self._key & 0xFFFFFFFF},
                ).scalar()
                self._conn.rollback()
            except sa.exc.SQLAlchemyError as exc:
                cause = getattr(exc, "orig", None) or exc
                return f"its database connection failed: {str(cause).strip()}"
            if not held:
                return "the database no longer holds it for this connection"
            return None

    def release(self) -> None:
        with self._mutex:
            self._release()

    def _release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError, ValueError):
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._conn is not None:
            try:
                self._conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
                self._conn.commit()
            except sa.exc.SQLAlchemyError:
                pass  # closing the connection releases it anyway
            finally:
                self._conn.close()
                self._conn = None

    @contextmanager
    def hold(
        self, wait_s: float = 0.0, *, what: str = "another trialwatch process"
    ) -> Iterator[None]:
        """Hold the lock for a block, or raise LockHeldError with a clear message."""
        if not self.acquire(wait_s):
            raise LockHeldError(
                f"{what} is already running a {self.name} on this database "
                f"(waited {wait_s:g}s); try again when it has finished"
            )
        try:
            yield
        finally:
            self.release()


def _file_lost(handle: IO[bytes], path: Path) -> str | None:
    """Why ``handle`` no longer locks the file at ``path`` (None when it still does)."""
    try:
        ours = os.fstat(handle.fileno())
        there = os.stat(path)
    except FileNotFoundError:
        return f"its lock file {path} was removed"
    except (OSError, ValueError) as exc:
        return f"its lock file {path} cannot be checked: {exc}"
    if (ours.st_dev, ours.st_ino) != (there.st_dev, there.st_ino):
        return f"its lock file {path} was replaced by another file"
    return None


def _key(text: str) -> int:
    """A signed 64-bit advisory-lock key derived from ``text``."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)
