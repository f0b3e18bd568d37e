"""The health record: failed runs since the last complete one, and the admin alert's state."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from trialwatch.storage._engine import StoreBase
from trialwatch.storage._schema import HealthState, Notification, SyncRun


class HealthMixin(StoreBase):
    def last_complete_run(self, kind: str | None = None) -> SyncRun | None:
        """The newest complete run (of that ``kind``: full, incremental, recheck)."""
        with self.session() as s:
            query = select(SyncRun).where(SyncRun.status == "complete")
            if kind is not None:
                query = query.where(SyncRun.kind == kind)
            return s.exec(query.order_by(col(SyncRun.id).desc()).limit(1)).first()

    def recent_runs(self, limit: int = 20) -> list[SyncRun]:
        with self.session() as s:
            return list(s.exec(select(SyncRun).order_by(col(SyncRun.id).desc()).limit(limit)))

    def consecutive_failures(self) -> int:
        """Failed sync runs since the last complete one (interrupted ones count as failed)."""
        with self.session() as s:
            last_ok = s.exec(
                select(sa.func.max(SyncRun.id)).where(SyncRun.status == "complete")
            ).one()
            query = (
                select(sa.func.count())
                .select_from(SyncRun)
                .where(col(SyncRun.status).in_(["failed", "interrupted"]))
            )
            if last_ok is not None:
                query = query.where(col(SyncRun.id) > last_ok)
            return int(s.exec(query).one())

    def transition_alert(
        self,
        *,
        unhealthy: bool,
        now: datetime,
        recipient: str | None,
        render: Callable[[bool, str], dict[str, Any]],
    ) -> str | None:
        """Open or close the health alert, queueing its message in the SAME transaction.

        Returns ``"alert"`` or ``"recovery"`` when a transition happened, else None. Because the
        state change and the queued message commit together, an alert is sent once per episode
        (not every tick) and a recovery notice once when it heals, whatever crashes.
        """
        with self.session() as s:
            row = s.get(HealthState, "alert_episode")
            if unhealthy == (row is not None):
                return None
            if unhealthy:
                # Unique across databases too: the key becomes the alert's Message-ID.
                episode = f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
                s.add(HealthState(key="alert_episode", value=episode, updated_at=now))
                kind = "alert"
            else:
                assert row is not None
                episode = row.value
                s.delete(row)
                kind = "recovery"
            if recipient:
                s.add(
                    Notification(
                        key=f"{kind}-{episode}",
                        created_at=now,
                        kind=kind,
                        channel="email",
                        recipient=recipient,
                        status="pending",
                        payload_json=json.dumps(render(unhealthy, episode)),
                        next_attempt_at=now,
                    )
                )
            return kind
