"""Preparing served records: parse, normalize, hash, compress. Pure, and cheap to import.

Three quarters of a first sync's CPU time is this work on each record's bytes, which another
process does as well as the syncing one: :mod:`trialwatch.workers` imports this module (and
not the sync) in its worker processes. A :class:`Prepared` is plain data so it can cross a
process boundary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from trialwatch import rawcodec
from trialwatch.exceptions import RecordError
from trialwatch.models import Snapshot, parse_record
from trialwatch.normalize import (
    absent_required_modules,
    canonical_of,
    hash_of,
    normalized_dict,
)

__all__ = ["Prepared", "Preparer", "prepare_all", "prepare_here", "prepare_one"]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A record whose fingerprint moved, made ready to compare and store: parsed, normalized,
    hashed and compressed. Plain data, so that another process can make it (see
    :mod:`trialwatch.workers`); the snapshot itself is rebuilt from ``canonical`` only for the
    few records that are diffed."""

    canonical: bytes
    digest: str
    raw: bytes  # the record as served, compressed (see trialwatch.rawcodec)
    brief_title: str | None
    acronym: str | None
    overall_status: str | None
    # Modules every registered study has that this record lacks (normally none): see
    # trialwatch.normalize.vanished_modules.
    absent_modules: tuple[str, ...] = ()

    def snapshot(self) -> Snapshot:
        return Snapshot.from_dict(orjson.loads(self.canonical))

    def __reduce__(self) -> tuple[type[Prepared], tuple[Any, ...]]:
        # Pickled by its values, as a tuple is. A frozen, slotted dataclass otherwise pickles
        # through its generated __getstate__/__setstate__, which read the field list and set
        # each field in Python: 8-14 µs a record more, paid on both sides of the worker pipe
        # for every record of a first sync.
        return (
            type(self),
            (
                self.canonical,
                self.digest,
                self.raw,
                self.brief_title,
                self.acronym,
                self.overall_status,
                self.absent_modules,
            ),
        )


Preparer = Callable[[Sequence[bytes]], Callable[[], list["Prepared | str"]]]
"""Starts preparing records given as they were served and returns the function that gives
the answers, in order: a :class:`Prepared`, or the reason a record cannot be read
(a :class:`RecordError`'s message). The answers are given once: the function lets go of the
records when it gives them, so that the caller alone decides how long they live.
:func:`prepare_here` prepares them when asked, in this process;
``trialwatch.workers.PreparePool`` starts worker processes on them at once, and has a
``warm_up()`` that a sync calls when it knows it will prepare many pages (its first)."""


def prepare_one(body: bytes) -> Prepared | str:
    """Parse, normalize, hash and compress one served record (pure).

    Compressed even when its snapshot turns out not to have moved (registry churn: the
    compressed bytes are then dropped), so that nothing needs the served bytes once they are
    prepared, mostly by a worker: the syncing process does not keep a page's records while
    it decides them."""
    try:
        record = parse_record(body)
        # The plain form, not the Snapshot: most records are only hashed and stored.
        plain = normalized_dict(record)
    except RecordError as exc:
        return str(exc)
    # orjson's bytes are allocated two to eight times their length (its buffer, cut short):
    # a copy of their own size is what a page of prepared records holds.
    canonical = bytes(memoryview(canonical_of(plain)))
    return Prepared(
        canonical=canonical,
        digest=hash_of(canonical),
        raw=rawcodec.compress(body),
        brief_title=plain["brief_title"],
        acronym=plain["acronym"],
        overall_status=plain["overall_status"],
        absent_modules=absent_required_modules(record),
    )


def prepare_all(bodies: Sequence[bytes]) -> list[Prepared | str]:
    """Prepare every record of ``bodies`` now, in this process."""
    return [prepare_one(body) for body in bodies]


def prepare_here(bodies: Sequence[bytes]) -> Callable[[], list[Prepared | str]]:
    """The :data:`Preparer` of this process alone: the work is done when the answer is asked."""
    held: list[Sequence[bytes]] = [bodies]

    def answers() -> list[Prepared | str]:
        return prepare_all(held.pop())

    return answers
