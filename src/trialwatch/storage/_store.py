"""The store: one class composing the storage parts (see the package's docstring)."""

from __future__ import annotations

from trialwatch.storage._discovery import DiscoveryMixin
from trialwatch.storage._engine import StoreBase, open_engine
from trialwatch.storage._health import HealthMixin
from trialwatch.storage._outbox import OutboxMixin
from trialwatch.storage._queries import QueriesMixin
from trialwatch.storage._registry import RegistryMixin
from trialwatch.storage._sync import SyncWritesMixin
from trialwatch.storage._watch import WatchMixin


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
