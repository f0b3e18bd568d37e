"""The backfill: each trial's earlier versions from CT.gov's record history, joined to the
history trialwatch recorded live (``trialwatch backfill``).

Decide, then act. The pure part takes values and returns values:

- :func:`versions_to_fetch`: which versions of the list still need reading (oldest first);
- :func:`join_full` / :func:`join_status`: the registry versions that come before the live
  history, and the changes between them, as :class:`~trialwatch.models.RegistryJoin`.

:func:`run_backfill` does the I/O around it: for each trial it reads the version list, then
each version not kept yet (committed as fetched, so a backfill cut short resumes where it
stopped), then writes the join in one transaction. One trial's failure is named and the others
go on. Nothing here notifies: a backfilled change is history, not news.

Where the registry meets the live history: the registry's versions up to the one whose content
is exactly what trialwatch first stored from a sync (its content hash) come before the live
history; later ones were seen live (their changes are live events already). When no version
has that content (the history's records read differently), the versions submitted before the
day of the first sync come before it, and whatever still differs between the last of them and
that first live version is one more registry step, dated by that day.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import orjson
import structlog

from trialwatch import rawcodec
from trialwatch.diff import diff
from trialwatch.exceptions import FetchError, RecordError
from trialwatch.failpoints import failpoint
from trialwatch.models import (
    Clock,
    LiveStart,
    NewVersion,
    RegistryEntry,
    RegistryEvent,
    RegistryJoin,
    RegistryVersionToStore,
    Snapshot,
    TrialFailure,
)
from trialwatch.normalize import NORMALIZER_VERSION, canonical_bytes, hash_of, normalize

log = structlog.get_logger("trialwatch.backfill")


# --- the pure part -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadVersion:
    """A registry version read and normalized: its list entry and its snapshot to store."""

    entry: RegistryEntry
    snapshot: Snapshot
    new: NewVersion


def versions_to_fetch(
    entries: Sequence[RegistryEntry], fetched: Iterable[int], live: LiveStart
) -> list[int]:
    """The versions still to read, oldest first: those not kept yet, submitted no later than
    the day trialwatch first synced the trial (later ones were seen live)."""
    have = set(fetched)
    last_day = live.first_seen_at.date().isoformat()
    return [e.version for e in entries if e.version not in have and e.date <= last_day]


def read_version(entry: RegistryEntry, raw: bytes, record: Mapping[str, Any]) -> ReadVersion:
    """Normalize one registry version, kept as ``raw`` (compressed; raises RecordError as for
    a live record)."""
    snapshot = normalize(record)
    canonical = canonical_bytes(snapshot)
    new = NewVersion(hash_of(canonical), canonical, raw, NORMALIZER_VERSION)
    return ReadVersion(entry, snapshot, new)


def join_full(nct_id: str, versions: Sequence[ReadVersion], live: LiveStart) -> RegistryJoin:
    """The registry versions before the live history, and each change between consecutive
    ones, dated by the version that brought it (version 0 is the baseline: no events).

    ``versions`` are those read, oldest first (at least version 0). See the module docstring
    for where they meet the live history; no change is ever dated twice.
    """
    ordered = sorted(versions, key=lambda v: v.entry.version)
    match = [i for i, v in enumerate(ordered) if v.new.content_hash == live.content_hash]
    live_day = live.first_seen_at.date().isoformat()
    before = ordered[: match[-1] + 1] if match else [v for v in ordered if v.entry.date < live_day]
    events: list[RegistryEvent] = []
    for old, new in itertools.pairwise(before):
        events.extend(
            RegistryEvent(
                new.entry.version, new.entry.date, c, old.new.content_hash, new.new.content_hash
            )
            for c in diff(old.snapshot, new.snapshot)
        )
    if before and not match:
        last = before[-1]
        events.extend(
            RegistryEvent(last.entry.version, live_day, c, last.new.content_hash, live.content_hash)
            for c in diff(last.snapshot, live.snapshot)
        )
    stored = tuple(
        RegistryVersionToStore(v.entry.version, v.entry.date, v.new)
        for v in before
        if v.new.content_hash != live.content_hash
    )
    return RegistryJoin(nct_id, "full", stored, tuple(events))


def join_status(nct_id: str, entries: Sequence[RegistryEntry], live: LiveStart) -> RegistryJoin:
    """From the version list alone (``--status-only``): each change of overall status between
    the versions submitted before the first sync's day, in the words a live sync uses."""
    live_day = live.first_seen_at.date().isoformat()
    before = [e for e in sorted(entries, key=lambda e: e.version) if e.date < live_day]
    if before and live.snapshot.overall_status is not None:
        # The step from the last of them to what the first sync saw, dated by that day.
        before.append(RegistryEntry(before[-1].version, live_day, live.snapshot.overall_status))
    events: list[RegistryEvent] = []
    for old, new in itertools.pairwise(before):
        if old.status is None or new.status is None or old.status == new.status:
            continue
        # The live snapshot with only its status changed: diff words it as it words live ones.
        was = dataclasses.replace(live.snapshot, overall_status=old.status)
        now = dataclasses.replace(live.snapshot, overall_status=new.status)
        events.extend(RegistryEvent(new.version, new.date, c) for c in diff(was, now))
    return RegistryJoin(nct_id, "status", (), tuple(events))


# --- the use case ------------------------------------------------------------------------------


class HistorySource(Protocol):
    """CT.gov's record history (:class:`trialwatch.registry_history.RegistryHistory`)."""

    @property
    def requests_made(self) -> int: ...

    def version_list(self, nct_id: str) -> tuple[RegistryEntry, ...]: ...

    def version(self, nct_id: str, version: int) -> tuple[dict[str, Any], bytes]: ...


class StoredVersion(Protocol):
    @property
    def entry(self) -> RegistryEntry: ...

    @property
    def raw_record(self) -> bytes | None: ...


class BackfillStore(Protocol):
    def registry_joined(self, ids: Sequence[str]) -> dict[str, str | None]: ...

    def live_start(self, nct_id: str) -> LiveStart | None: ...

    def save_version_list(
        self, nct_id: str, entries: Sequence[RegistryEntry], *, now: datetime
    ) -> None: ...

    def registry_versions(self, nct_id: str) -> Mapping[int, StoredVersion]: ...

    def save_registry_record(
        self, nct_id: str, version: int, raw_record: bytes, *, now: datetime
    ) -> None: ...

    def write_registry_join(self, join: RegistryJoin, *, run_uuid: str, now: datetime) -> int: ...


@dataclass(frozen=True, slots=True)
class BackfillProgress:
    """Where a backfill stands: trials done of all, versions read so far."""

    trials_done: int
    trials: int
    versions: int
    current: str | None


@dataclass(frozen=True, slots=True)
class BackfillResult:
    """What one backfill did."""

    read: tuple[str, ...] = ()  # trials whose history was read and joined now
    already: tuple[str, ...] = ()  # trials read before: nothing to do
    failed: tuple[TrialFailure, ...] = ()
    versions_fetched: int = 0
    events: int = 0
    requests: int = 0
    per_trial: dict[str, int] = field(default_factory=dict)  # events written per trial


def run_backfill(
    *,
    source: HistorySource,
    store: BackfillStore,
    ids: Sequence[str],
    clock: Clock,
    run_id: str,
    status_only: bool = False,
    on_progress: Callable[[BackfillProgress], None] | None = None,
) -> BackfillResult:
    """Read and join the registry history of each of ``ids``; see the module docstring.

    A trial whose history was read already (for ``status_only``: at all; else in full) costs
    no request. A trial never synced, or whose history cannot be read (a fetch error, an answer
    of an unexpected shape, a record that cannot be normalized), is named in ``failed`` and the
    others go on. Storage errors propagate.
    """
    start_requests = source.requests_made
    joined = store.registry_joined(ids)
    read: list[str] = []
    already: list[str] = []
    failed: list[TrialFailure] = []
    per_trial: dict[str, int] = {}
    fetched = 0

    def progress(done: int, current: str | None) -> None:
        if on_progress is not None:
            on_progress(BackfillProgress(done, len(ids), fetched, current))

    for done, nct_id in enumerate(ids):
        progress(done, nct_id)
        state = joined.get(nct_id)
        if state == "full" or (status_only and state == "status"):
            already.append(nct_id)
            continue
        with structlog.contextvars.bound_contextvars(nct_id=nct_id):
            try:
                live = store.live_start(nct_id)
                if live is None:
                    raise _NotSynced(
                        f"{nct_id} has not been synced yet: run `trialwatch sync` first"
                    )
                entries = source.version_list(nct_id)
                store.save_version_list(nct_id, entries, now=clock())
                if status_only:
                    join = join_status(nct_id, entries, live)
                else:
                    versions, count = _read_versions(source, store, nct_id, entries, live, clock)
                    fetched += count
                    join = join_full(nct_id, versions, live)
                failpoint("backfill.before_join")
                per_trial[nct_id] = store.write_registry_join(join, run_uuid=run_id, now=clock())
                read.append(nct_id)
                log.info("backfilled", mode=join.mode, events=per_trial[nct_id])
            except (FetchError, RecordError, _NotSynced) as exc:
                log.warning("backfill failed", error=str(exc))
                failed.append(TrialFailure(nct_id, str(exc)))
    progress(len(ids), None)
    return BackfillResult(
        read=tuple(read),
        already=tuple(already),
        failed=tuple(failed),
        versions_fetched=fetched,
        events=sum(per_trial.values()),
        requests=source.requests_made - start_requests,
        per_trial=per_trial,
    )


class _NotSynced(Exception):  # internal: becomes a TrialFailure
    pass


def _read_versions(
    source: HistorySource,
    store: BackfillStore,
    nct_id: str,
    entries: Sequence[RegistryEntry],
    live: LiveStart,
    clock: Clock,
) -> tuple[list[ReadVersion], int]:
    """Fetch the versions not kept yet (each committed as it arrives), then read every kept
    one that comes before the live history. Returns them and how many were fetched now."""
    kept = store.registry_versions(nct_id)
    have = {n for n, v in kept.items() if v.raw_record is not None}
    wanted = versions_to_fetch(entries, have, live)
    raws = {n: v.raw_record for n, v in kept.items() if v.raw_record is not None}
    for n in wanted:
        _, body = source.version(nct_id, n)
        raw = rawcodec.compress(body)
        store.save_registry_record(nct_id, n, raw, now=clock())
        failpoint("backfill.version_saved")
        raws[n] = raw
    by_number = {e.version: e for e in entries}
    last_day = live.first_seen_at.date().isoformat()
    out: list[ReadVersion] = []
    for n, raw in sorted(raws.items()):
        entry = by_number.get(n)
        if entry is None or raw is None or entry.date > last_day:
            continue
        try:
            out.append(read_version(entry, raw, _loads(rawcodec.decompress(raw))))
        except RecordError as exc:
            raise RecordError(
                f"{nct_id}: the registry's version {n} cannot be read: {exc}"
            ) from exc
    return out, len(wanted)


def _loads(body: bytes) -> dict[str, Any]:
    data = orjson.loads(body)
    if not isinstance(data, dict):
        raise RecordError("not a study object")
    return data
