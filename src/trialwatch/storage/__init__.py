"""Storage: trialwatch's database, split by job (after lemon24/reader's ``_storage``).

    _schema.py    the tables, as of the newest schema revision
    _engine.py    engine, sessions, error wrapping, the schema check on open, ``lock(name)``
    _lock.py      locks the database holds (``sync``, ``daemon``, ``migration``)
    _watch.py     the watch set (which sources watch which trials)
    _sync.py      the sync's writes: a run, its pages, its end (the transaction shape)
    _discovery.py query watches' answers, and what a paper printed (``watch import``)
    _outbox.py    the outbox queue: claims, backoff, dead letters, digest folding
    _health.py    the health record: failed runs, the admin alert's state
    _queries.py   reads for status, history, export
    _registry.py  the registry's record history a backfill read, joined to the live one
    migrate.py    Alembic migrations (``trialwatch db upgrade``), imported only when used
    migrations/   the migration scripts, one per schema revision

:class:`Store` composes the parts; callers depend on the small Protocol they need (see
``sync.SyncStore``, ``outbox.OutboxStore``), not on this class. Add new methods to the part
whose job they are. Only this package imports SQLAlchemy; it holds the database's locks too.
"""

from __future__ import annotations

from trialwatch.storage._discovery import DiscoveryMixin
from trialwatch.storage._engine import StoreBase, open_engine, sqlite_path
from trialwatch.storage._health import HealthMixin
from trialwatch.storage._outbox import OutboxMixin
from trialwatch.storage._queries import QueriesMixin
from trialwatch.storage._registry import RegistryMixin, StoredRegistryVersion
from trialwatch.storage._schema import (
    HEAD_REVISION,
    RELEASES,
    ChangeEvent,
    HealthState,
    Notification,
    PrintedEntry,
    QueryMatch,
    RecordVersion,
    RegistryRead,
    RegistryVersion,
    SyncRun,
    Trial,
    Watch,
    made_by,
)
from trialwatch.storage._sync import RunRef, SyncWritesMixin
from trialwatch.storage._watch import WatchChange, WatchEntry, WatchMixin


class Store(
    WatchMixin,
    DiscoveryMixin,
    SyncWritesMixin,
    OutboxMixin,
    HealthMixin,
    QueriesMixin,
    RegistryMixin,
    StoreBase,
):
    """The database behind trialwatch: open it with :meth:`open`, close it with :meth:`close`."""

    @classmethod
    def open(cls, url: str, *, create: bool = True) -> Store:
        """Connect and check the schema (a new database gets the newest one).

        Raises DatabaseUnavailableError, or SchemaOutdatedError naming the upgrade command.
        """
        return cls(open_engine(url, create=create))


__all__ = [
    "HEAD_REVISION",
    "RELEASES",
    "ChangeEvent",
    "HealthState",
    "Notification",
    "PrintedEntry",
    "QueryMatch",
    "RecordVersion",
    "RegistryRead",
    "RegistryVersion",
    "RunRef",
    "Store",
    "StoredRegistryVersion",
    "SyncRun",
    "Trial",
    "Watch",
    "WatchChange",
    "WatchEntry",
    "made_by",
    "sqlite_path",
]
