"""The one exception tree of trialwatch.

Everything trialwatch raises on purpose derives from :class:`TrialwatchError`; a traceback that
reaches the user is a bug. Operational failures are wrapped with their cause
(``raise FetchError(...) from exc``); programming errors are not wrapped.

    TrialwatchError
    ├── UserError                    the user can fix it; shown without a traceback
    │   ├── ConfigError (ValueError) every problem of the settings at once
    │   │   └── NothingToWatchError  a sync, with no trial in the config or the database
    │   ├── SchemaOutdatedError      the database needs `trialwatch db upgrade`
    │   └── LockHeldError            another process is syncing this database
    ├── FetchError                   talking to ClinicalTrials.gov failed
    │   ├── TransientFetchError      timeouts, 429, 5xx, a 200 that is not the expected JSON
    │   │   ├── ApiUnreachableError  no network, a name that does not resolve, refused, TLS refused
    │   │   ├── ApiUnavailableError  reached, but kept failing until the retries ran out
    │   │   ├── ShortReadError       a listing arrived with fewer studies than the registry counted
    │   │   └── StaleDataError       CT.gov's data is older than what the last complete sync read
    │   ├── ApiRequestError          a 4xx the API will answer the same way every time
    │   └── RegistryHistoryError     the record history answered in a shape not expected
    ├── RecordError (ValueError)     one study record cannot be normalized
    ├── StorageError                 the database failed
    │   ├── DatabaseUnavailableError (UserError)  it cannot be reached or opened at all
    │   └── ConcurrentUpdateError    another process wrote the same rows meanwhile
    └── DeliveryError                a notification could not be delivered
        ├── TemporaryDeliveryError   try again later (SMTP 4xx, timeouts, refused)
        └── PermanentDeliveryError   will not succeed as is (SMTP 5xx, auth refused)

Each class hangs under its first base; further bases are named in parentheses. The drawing is
checked against the classes by ``tests/test_architecture.py``.
"""

from __future__ import annotations

from collections.abc import Sequence


class TrialwatchError(Exception):
    """Root of every error trialwatch raises on purpose."""


class UserError(TrialwatchError):
    """An error the user can fix; the CLI shows its message without a traceback."""


class ConfigError(UserError, ValueError):
    """The settings are invalid. Carries every problem found, each naming where it came from."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        noun = "problem" if len(self.problems) == 1 else "problems"
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid configuration ({len(self.problems)} {noun}):\n{lines}")


class NothingToWatchError(ConfigError):
    """Neither the config nor the database watches a trial: a sync would have nothing to do."""

    def __init__(self) -> None:
        super().__init__(
            ["nothing to watch: neither the config's [[watchlist]] nor the database names a trial"]
        )


class SchemaOutdatedError(UserError):
    """The database's schema is older (or newer) than this trialwatch; nothing was written."""


class FetchError(TrialwatchError):
    """Talking to the ClinicalTrials.gov API failed."""


class TransientFetchError(FetchError):
    """A failure worth retrying: timeout, connection error, 429, 5xx, or a garbled 200."""


class ApiUnreachableError(TransientFetchError):
    """ClinicalTrials.gov could not be reached at all: no network, a host name that does not
    resolve, a refused connection, a certificate that is not trusted (a proxy or TLS
    interception). The message is one plain line for people; ``detail`` keeps the technical
    cause (as does ``__cause__``) for ``--verbose`` and logs."""

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail


class ApiUnavailableError(TransientFetchError):
    """ClinicalTrials.gov was reached but kept failing until the retries ran out: 5xx, 429,
    timeouts, broken connections, an HTML or garbled 200. One plain line; ``detail`` as above."""

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail


class ShortReadError(TransientFetchError):
    """A listing arrived short: the registry said ``expected`` studies match (``None``: it gave
    no count to check against) but only ``received`` distinct studies arrived. The partial
    answer is not used; a later try may get it whole. One plain line; ``detail`` as above."""

    def __init__(
        self, message: str, *, expected: int | None, received: int, detail: str | None = None
    ) -> None:
        super().__init__(message)
        self.expected = expected
        self.received = received
        self.detail = detail


class StaleDataError(TransientFetchError):
    """CT.gov's ``dataTimestamp`` is older than the one of the last complete sync: a replica
    behind its load balancer that has not caught up. Its records would undo changes already
    recorded (and the next answer redo them), so nothing of it is compared; a later try may
    reach a current server."""


class ApiRequestError(FetchError):
    """The API refused the request (4xx other than 429); retrying will not help."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class RegistryHistoryError(FetchError):
    """CT.gov's record history (an undocumented interface) answered one trial in a shape
    trialwatch does not expect: that trial's backfill stops, closed, and the message says
    which trial and what was unexpected."""


class RecordError(TrialwatchError, ValueError):
    """A study record is malformed or drifts from the schema so far it cannot be normalized."""


class StorageError(TrialwatchError):
    """The database failed."""


class DatabaseUnavailableError(StorageError, UserError):
    """The database cannot be reached or opened."""


class ConcurrentUpdateError(StorageError):
    """Another process committed the same rows while this transaction ran; it wrote nothing."""


class LockHeldError(UserError):
    """Another trialwatch process holds the sync lock for this database."""


class DeliveryError(TrialwatchError):
    """A notification could not be delivered."""


class TemporaryDeliveryError(DeliveryError):
    """Delivery failed in a way that may pass: retry later with backoff."""


class PermanentDeliveryError(DeliveryError):
    """Delivery failed in a way that will not pass by itself: dead-letter it."""
