"""Storage: trialwatch's database, split by job (after lemon24/reader's ``_storage``).

    _plain.py     what needs no SQLAlchemy: the schema revision, releases, labels, SQLite paths
    _glance.py    the light read path: what ``status`` shows, over a plain DB-API connection
    _schema.py    the tables, as of the newest schema revision
    _engine.py    engine, sessions, error wrapping, the schema check on open, ``lock(name)``
    _lock.py      locks the database holds (``sync``, ``daemon``, ``migration``)
    _watch.py     the watch set (which sources watch which trials)
    _sync.py      the sync's writes: a run, its pages, its end (the transaction shape)
    _discovery.py query watches' answers, and what a paper printed (``watch import``)
    _outbox.py    the outbox queue: claims, backoff, dead letters, digest folding
    _health.py    the health record: failed runs, the admin alert's state
    _queries.py   reads for history, export and the web page
    _registry.py  the registry's record history a backfill read, joined to the live one
    _store.py     :class:`Store`, composing the parts above
    migrate.py    Alembic migrations (``trialwatch db upgrade``), imported only when used
    migrations/   the migration scripts, one per schema revision

:class:`Store` composes the parts; callers depend on the small Protocol they need (see
``sync.SyncStore``, ``outbox.OutboxStore``), not on this class. Add new methods to the part
whose job they are. Only this package imports SQLAlchemy; it holds the database's locks too.

The package imports its parts lazily (PEP 562): ``from trialwatch.storage import Store`` loads
SQLAlchemy, ``from trialwatch.storage import open_glance`` does not, so ``status`` on a SQLite
database starts without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trialwatch.storage._glance import DeadLetter, Glance, open_glance
    from trialwatch.storage._plain import HEAD_REVISION, RELEASES, made_by, sqlite_path
    from trialwatch.storage._registry import StoredRegistryVersion
    from trialwatch.storage._schema import (
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
    )
    from trialwatch.storage._store import Store
    from trialwatch.storage._sync import RunRef
    from trialwatch.storage._watch import WatchChange, WatchEntry

_HOMES: dict[str, str] = {
    "DeadLetter": "_glance",
    "Glance": "_glance",
    "open_glance": "_glance",
    "HEAD_REVISION": "_plain",
    "RELEASES": "_plain",
    "made_by": "_plain",
    "sqlite_path": "_plain",
    "StoredRegistryVersion": "_registry",
    **dict.fromkeys(
        (
            "ChangeEvent",
            "HealthState",
            "Notification",
            "PrintedEntry",
            "QueryMatch",
            "RecordVersion",
            "RegistryRead",
            "RegistryVersion",
            "SyncRun",
            "Trial",
            "Watch",
        ),
        "_schema",
    ),
    "Store": "_store",
    "RunRef": "_sync",
    "WatchChange": "_watch",
    "WatchEntry": "_watch",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # looked up once
    return value


__all__ = [
    "HEAD_REVISION",
    "RELEASES",
    "ChangeEvent",
    "DeadLetter",
    "Glance",
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
    "open_glance",
    "sqlite_path",
]
