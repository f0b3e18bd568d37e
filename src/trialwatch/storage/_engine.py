"""The engine, sessions, errors, and the schema check made every time the database is opened.

The same code runs on SQLite (the embedded default, in WAL mode) and PostgreSQL
(``postgresql+psycopg://``): only portable SQLAlchemy is used. Operational database errors are
wrapped in :class:`StorageError`; programming errors are not.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlmodel import Session

from trialwatch import __version__
from trialwatch.exceptions import (
    DatabaseUnavailableError,
    SchemaOutdatedError,
    StorageError,
)
from trialwatch.storage._glance import Glance
from trialwatch.storage._lock import DatabaseLock
from trialwatch.storage._plain import HEAD_REVISION, RELEASES, made_by, sqlite_path
from trialwatch.storage._schema import metadata

V010_REVISION = RELEASES["0.1.0"]
"""The schema of release 0.1.0, which had no migrations (and so no ``alembic_version``)."""


def normalize_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _prepare_sqlite_file(path: Path) -> None:
    """Create the database's folder (0700) and file (0600) when trialwatch creates them: the
    file holds who gets which alerts. Existing folders and files keep their modes."""
    folder = path.parent
    if not folder.exists():
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseUnavailableError(
                f"cannot create the database folder {folder}: {exc.strerror or exc}"
            ) from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DatabaseUnavailableError(
            f"the database folder {folder} is not writable: trialwatch keeps its SQLite "
            "database (and its journal) there; fix its permissions or set [database] url"
        )
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            raise DatabaseUnavailableError(f"the database file {path} is not readable and writable")
        return
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, stat.S_IRUSR | stat.S_IWUSR)
        os.close(fd)
    except FileExistsError:
        pass
    except OSError as exc:
        raise DatabaseUnavailableError(
            f"cannot create the database file {path}: {exc.strerror or exc}"
        ) from exc


def make_engine(url: str) -> Engine:
    """Build an engine; SQLite gets WAL, a busy timeout and foreign keys."""
    try:
        url = normalize_url(url)
        path = sqlite_path(url)
        if url.startswith("sqlite"):
            if path is not None:
                _prepare_sqlite_file(path)
            engine = sa.create_engine(url, connect_args={"timeout": 30})

            @sa.event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
                # The driver's own transaction handling starts a transaction only at the first
                # write, so reads before it are not isolated. Take it over (see _begin).
                dbapi_conn.isolation_level = None
                cursor = dbapi_conn.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.execute("PRAGMA busy_timeout=30000")
                cursor.close()

            @sa.event.listens_for(engine, "begin")
            def _begin(conn: Any) -> None:
                # Every transaction takes SQLite's write lock up front: what it reads cannot
                # change under it before it writes (one writer at a time, readers wait briefly).
                conn.exec_driver_sql("BEGIN IMMEDIATE")

            return engine
        engine = sa.create_engine(url, connect_args={"connect_timeout": 10})
        sa.event.listen(engine, "connect", _postgresql_session)
        _ping_when_idle(engine)
        return engine
    except (ArgumentError, ImportError, ValueError) as exc:
        raise DatabaseUnavailableError(f"cannot open database: {exc}") from exc


# Where the server can: record versions (several KB of JSON each) are compressed with lz4
# rather than pglz, the default. pglz was most of the server's work in a first sync (about
# 190 µs a version against 75 µs, on this project's records); lz4 needs PostgreSQL 14 built
# with it, which pg_settings says. Stored values of either kind stay readable.
_LZ4_IF_AVAILABLE = (
    "SELECT set_config('default_toast_compression', 'lz4', false) FROM pg_settings"
    " WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"
)


PING_AFTER_IDLE_S = 10.0
"""A pooled PostgreSQL connection idle this long is pinged before it is used again."""


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before reusing it, if it has been idle a while.

    A connection left in the pool between a daemon's polls may have been closed by the
    server or the network; a ping finds out and the pool connects again. Pinging at every
    checkout (``pool_pre_ping``) was a round trip for each of a sync's sessions, a few per
    page, on connections used milliseconds before.
    """

    @sa.event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_from"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_from = record.info.get("idle_from")
        if idle_from is None or time.monotonic() - idle_from < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # any failure: the pool replaces the connection
            raise sa.exc.DisconnectionError(f"ping failed: {exc}") from exc


def _postgresql_session(dbapi_conn: Any, _record: Any) -> None:
    """Settings of each new PostgreSQL connection (made before any transaction of its own)."""
    with dbapi_conn.cursor() as cursor:
        cursor.execute(_LZ4_IF_AVAILABLE)
        # JIT compiles a query the planner costs above jit_above_cost (100,000: a scan of a
        # large watch set's tables qualifies) to machine code first, ~100 ms of the server's
        # CPU each time, for statements that run in milliseconds: not for this kind of work.
        cursor.execute("SET jit = off")
    dbapi_conn.commit()


def one_of(column: Any, values: Iterable[Any], dialect: str) -> sa.ColumnElement[bool]:
    """``column IN (values)``; on PostgreSQL ``column = ANY(%s)``, one array parameter.

    An IN list of a page's 500 ids is 500 parameters: a statement text of its own for each
    length, which SQLAlchemy renders and psycopg parses again at every execution (no longer
    cached beyond 4 KB of text: 20 ms of the client's CPU a query here) and the server plans
    anew. One array keeps the statement the same, so every cache holds it.
    """
    if dialect == "postgresql":
        array = sa.bindparam(None, list(values), type_=array_of(column))
        return column == sa.any_(array)  # type: ignore[no-any-return]
    return column.in_(list(values))  # type: ignore[no-any-return]


ROWS_PER_STATEMENT = 500
"""Ids one statement looks up (an IN list) or rows one insert carries, in a write of any number
of them (``watch import`` of 100,000 ids) that stays one transaction. Built whole, 100,000 rows
were held three times at once (the rows, SQLAlchemy's parameters, the driver's): 215 MiB peak
RSS. 500 ids stay under the 999 variables of SQLite before 3.32."""

_T = TypeVar("_T")


def batches(items: Iterable[_T], size: int = ROWS_PER_STATEMENT) -> Iterator[list[_T]]:
    """``items`` ``size`` at a time, read as they are needed (the last batch may be short)."""
    rest = iter(items)
    while batch := list(islice(rest, size)):
        yield batch


def array_of(column: Any) -> sa.ARRAY[Any]:
    """The type of a PostgreSQL array of ``column``'s values. Strings are ``text[]``: a cast to
    ``varchar(16)[]`` would cut a longer value to 16 characters (and match another id)."""
    kind = column.type
    if isinstance(kind, sa.types.TypeDecorator) and isinstance(kind.impl_instance, sa.String):
        kind = kind.impl_instance  # sqlmodel's strings
    return sa.ARRAY(sa.Text() if isinstance(kind, sa.String) else kind)


def first_line(exc: object) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def schema_revision(conn: sa.Connection) -> str | None:
    """The recorded schema revision; ``"0001"`` for a 0.1.0 database; None when empty.

    Cheap on purpose (one or two small queries, no Alembic): it runs on every open.
    """
    tables = set(sa.inspect(conn).get_table_names())
    if "alembic_version" in tables:
        row = conn.execute(sa.text("SELECT version_num FROM alembic_version")).first()
        if row is not None:
            return str(row[0])
    if "trial" in tables:
        return V010_REVISION
    return None


def create_schema(conn: sa.Connection) -> None:
    """A new, empty database: the newest tables at once, stamped with their revision."""
    metadata.create_all(conn)
    conn.execute(
        sa.text(
            "CREATE TABLE IF NOT EXISTS alembic_version "
            "(version_num VARCHAR(32) NOT NULL, "
            "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
        )
    )
    conn.execute(sa.text("DELETE FROM alembic_version"))
    conn.execute(
        sa.text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": HEAD_REVISION}
    )


def outdated_message(revision: str, where: str) -> str:
    return (
        f"the database {where} has schema revision {revision} (made by {made_by(revision)}); "
        f"this trialwatch ({__version__}) needs schema {HEAD_REVISION}. Run `trialwatch db "
        "upgrade` (it backs up a SQLite file first), or set [database] auto_upgrade = true to "
        "let sync and daemon do it"
    )


def newer_message(revision: str, where: str) -> str:
    return (
        f"the database {where} has schema revision {revision}, newer than this trialwatch "
        f"({__version__}, schema {HEAD_REVISION}) knows: it was made by {made_by(revision)}; "
        "upgrade trialwatch"
    )


class StoreBase:
    """Connection and sessions: what every part of the store shares."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # PostgreSQL reads that need no transaction of their own run without one: psycopg
        # sends BEGIN and COMMIT as round trips of their own (see reading()).
        self._reads = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if engine.dialect.name == "postgresql"
            else engine
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def glance(self) -> Iterator[Glance]:
        """``status``'s reads (:mod:`._glance`) over one pooled connection of this engine: the
        same SQL the light road runs over :mod:`sqlite3`, on SQLite and PostgreSQL alike."""
        dialect = self.engine.dialect
        try:
            with self.engine.connect() as conn:
                yield Glance(
                    conn.connection.dbapi_connection,
                    paramstyle=dialect.paramstyle,
                    errors=dialect.loaded_dbapi.Error,
                )
        except DBAPIError as exc:  # checking the connection out failed
            raise StorageError(f"database error: {first_line(exc.orig)}") from exc

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on any error."""
        with self._session(self.engine) as session:
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for reads whose statements need not see one snapshot together (each is
        consistent on its own), and that write nothing.

        On PostgreSQL each statement commits on its own (autocommit): no BEGIN and no COMMIT,
        two round trips fewer for each page a sync reads. SQLite keeps its transaction (its
        statements are calls in this process).
        """
        with self._session(self._reads) as session:
            yield session

    @contextmanager
    def _session(self, bind: Engine) -> Iterator[Session]:
        session = Session(bind, expire_on_commit=False)
        try:
            with session.begin():
                yield session
        except DBAPIError as exc:  # the driver's errors: connection lost, disk full, conflicts
            raise StorageError(f"database error: {first_line(exc.orig)}") from exc
        finally:
            session.close()

    def lock(self, name: str) -> DatabaseLock:
        """A named lock the database holds (``sync``, ``daemon``, ``migration``): released if
        the holder dies. Not taken yet: see :class:`DatabaseLock`."""
        return DatabaseLock(self.engine, name)

    def close(self) -> None:
        self.engine.dispose()


def open_engine(url: str, *, create: bool = True) -> Engine:
    """Connect, check that the database answers and that its schema is this code's.

    A new database gets the newest schema (``create``). A database on an older schema raises
    :class:`SchemaOutdatedError` naming the command that upgrades it (the ``db`` commands use
    :func:`trialwatch.storage.migrate.make_engine` instead, to read and upgrade it).
    """
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            revision = schema_revision(conn)
            if revision is None and create:
                create_schema(conn)
                revision = HEAD_REVISION
        if revision is not None and revision != HEAD_REVISION:
            where = engine.url.render_as_string(hide_password=True)
            if revision > HEAD_REVISION:
                raise SchemaOutdatedError(newer_message(revision, where))
            raise SchemaOutdatedError(outdated_message(revision, where))
    except (OperationalError, DBAPIError) as exc:
        engine.dispose()
        raise DatabaseUnavailableError(
            f"cannot use database {engine.url.render_as_string(hide_password=True)}: "
            f"{first_line(exc.orig) if exc.orig is not None else exc}"
        ) from exc
    except BaseException:
        engine.dispose()
        raise
    return engine
