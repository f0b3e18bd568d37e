"""The outbox queue: claims, backoff, dead letters and digest folding.

Delivery itself (rendering, sending) is :mod:`trialwatch.outbox`'s job; this module only keeps
the queue's state, with compare-and-swap updates so two processes never send one message.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from trialwatch.exceptions import ConcurrentUpdateError
from trialwatch.storage._engine import StoreBase
from trialwatch.storage._schema import ChangeEvent, Notification, SyncRun
from trialwatch.storage._sync import short_hash as _short_hash


class OutboxMixin(StoreBase):
    def due_notifications(
        self, now: datetime, limit: int = 100, *, ignore_backoff: bool = False
    ) -> list[Notification]:
        """Pending notifications whose time has come (all pending ones with ``ignore_backoff``).

        Claimed ones are included: :meth:`claim` decides whether a claim can be taken over.
        """
        query = select(Notification).where(Notification.status == "pending")
        if not ignore_backoff:
            query = query.where(
                sa.or_(
                    col(Notification.next_attempt_at).is_(None),
                    col(Notification.next_attempt_at) <= now,
                )
            )
        with self.session() as s:
            return list(s.exec(query.order_by(col(Notification.id)).limit(limit)))

    def claim(
        self,
        notification: Notification,
        *,
        owner: str,
        now: datetime,
        until: datetime,
        stale: Callable[[Notification], bool],
    ) -> bool:
        """Take a pending notification for sending, atomically (compare-and-swap).

        A notification claimed by someone else is taken only when their lease expired or
        ``stale`` says the claimer is dead. Two flushers can never both win: the UPDATE is
        conditional on the claim we observed, and only one row update can match it.
        """
        observed = notification.claimed_by
        if observed is not None and observed != owner:
            lease_over = (
                notification.claimed_until is not None and notification.claimed_until <= now
            )
            if not lease_over and not stale(notification):
                return False
        table = Notification.__table__  # type: ignore[attr-defined]
        condition = sa.and_(
            table.c.id == notification.id,
            table.c.status == "pending",
            table.c.claimed_by.is_(None) if observed is None else table.c.claimed_by == observed,
        )
        with self.session() as s:
            result = s.execute(
                sa.update(table).where(condition).values(claimed_by=owner, claimed_until=until)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def _finish(self, notification_id: int, owner: str, **values: Any) -> bool:
        table = Notification.__table__  # type: ignore[attr-defined]
        with self.session() as s:
            result = s.execute(
                sa.update(table)
                .where(table.c.id == notification_id, table.c.claimed_by == owner)
                .values(claimed_by=None, claimed_until=None, **values)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def mark_sent(self, notification_id: int, *, owner: str, now: datetime) -> bool:
        return self._finish(notification_id, owner, status="sent", sent_at=now, last_error=None)

    def mark_failed(
        self,
        notification_id: int,
        *,
        owner: str,
        error: str,
        attempts: int,
        retry_at: datetime | None,
    ) -> bool:
        """Record a failed attempt: retry at ``retry_at``, or dead-letter when it is None."""
        if retry_at is None:
            return self._finish(
                notification_id, owner, status="dead", attempts=attempts, last_error=error
            )
        return self._finish(
            notification_id, owner, attempts=attempts, last_error=error, next_attempt_at=retry_at
        )

    def requeue_dead(self, now: datetime, ids: Sequence[int] = ()) -> int:
        """Put dead letters back in the queue (all, or those ids); returns how many."""
        table = Notification.__table__  # type: ignore[attr-defined]
        condition = table.c.status == "dead"
        if ids:
            condition = sa.and_(condition, table.c.id.in_(list(ids)))
        with self.session() as s:
            result = s.execute(
                sa.update(table)
                .where(condition)
                .values(
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    claimed_by=None,
                    claimed_until=None,
                )
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def notifications(self, status: str | None = None) -> list[Notification]:
        with self.session() as s:
            query = select(Notification).order_by(col(Notification.id))
            if status is not None:
                query = query.where(Notification.status == status)
            return list(s.exec(query))

    def outbox_counts(self) -> dict[str, int]:
        with self.session() as s:
            rows = s.exec(
                select(Notification.status, sa.func.count()).group_by(col(Notification.status))
            )
            return {status: int(n) for status, n in rows}

    def queue_notice(
        self, *, key: str, kind: str, recipient: str, payload: dict[str, Any], now: datetime
    ) -> bool:
        """Queue one ready-made email (an admin notice); a key already queued is left alone."""
        with self.session() as s:
            if s.exec(select(Notification.id).where(Notification.key == key)).first() is not None:
                return False
            s.add(
                Notification(
                    key=key,
                    created_at=now,
                    kind=kind,
                    channel="email",
                    recipient=recipient,
                    status="pending",
                    payload_json=json.dumps(payload),
                    next_attempt_at=now,
                )
            )
        return True

    def fold_digests(self, mode: str, *, now: datetime) -> int:
        """Fold every waiting ``mode`` notification into one digest per recipient; returns how
        many digests were created.

        Whatever waits is folded, however often this runs (a second run the same day sends what
        arrived since). Atomic: a concurrent fold of the same items finds them already folded
        (the conditional UPDATE matches fewer rows) and its transaction rolls back.
        """
        table = Notification.__table__  # type: ignore[attr-defined]
        created = 0
        with self.session() as s:
            waiting = list(
                s.exec(
                    select(Notification)
                    .where(Notification.status == "digest_wait", Notification.mode == mode)
                    .order_by(col(Notification.id))
                )
            )
            by_recipient: dict[tuple[str, str], list[Notification]] = {}
            for n in waiting:
                by_recipient.setdefault((n.channel, n.recipient), []).append(n)
            for (channel, recipient), items in sorted(by_recipient.items()):
                ids = [n.id for n in items]
                folded = s.execute(
                    sa.update(table)
                    .where(table.c.id.in_(ids), table.c.status == "digest_wait")
                    .values(status="digested")
                )
                if folded.rowcount != len(ids):  # type: ignore[attr-defined]
                    raise ConcurrentUpdateError("another process folded these digests meanwhile")
                # Derived from the folded notifications' keys (which carry their runs' uuids):
                # unique across databases, so the Message-ID is too.
                key = f"digest-{mode}-{_short_hash(*sorted(n.key for n in items))}"
                change_ids = sorted({i for n in items for i in n.change_ids})
                s.add(
                    Notification(
                        key=key,
                        created_at=now,
                        kind="digest",
                        channel=channel,
                        recipient=recipient,
                        subscription=items[0].subscription,
                        mode=mode,
                        status="pending",
                        change_ids_json=json.dumps(change_ids),
                        next_attempt_at=now,
                    )
                )
                created += 1
        return created

    def run_count(self, run_id: int) -> tuple[int, int] | None:
        """``(changes, trials)`` as the sync counted them for run ``run_id`` (None: no run)."""
        with self.session() as s:
            run = s.get(SyncRun, run_id)
            return None if run is None else (run.change_count, run.changed)

    def changes_by_id(self, ids: Sequence[int]) -> list[ChangeEvent]:
        if not ids:
            return []
        with self.session() as s:
            return list(
                s.exec(
                    select(ChangeEvent)
                    .where(col(ChangeEvent.id).in_(list(ids)))
                    .order_by(col(ChangeEvent.id))
                )
            )
