"""Query watches and printed baselines: what ``[[queries]]`` returned, what a paper printed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import select
from sqlmodel import Session

from trialwatch.models import FieldChange, Route, StudySummary
from trialwatch.storage._engine import batches
from trialwatch.storage._schema import PrintedEntry, QueryMatch, QueryState, Watch
from trialwatch.storage._sync import RunRef, SyncWritesMixin, event_row
from trialwatch.storage._watch import WatchChange, add_watch_rows

_QM = QueryMatch.__table__  # type: ignore[attr-defined]
_QS = QueryState.__table__  # type: ignore[attr-defined]
_P = PrintedEntry.__table__  # type: ignore[attr-defined]
_W = Watch.__table__  # type: ignore[attr-defined]


class DiscoveryMixin(SyncWritesMixin):
    # -- query watches --------------------------------------------------------------------

    def query_baseline(self, name: str, params_hash: str) -> dict[str, bool] | None:
        """nct_id -> present in the last answer; None when the query has no baseline for this
        search yet (new, or its search was edited)."""
        with self.session() as s:
            state = s.execute(select(_QS.c.params_hash).where(_QS.c.query_name == name)).first()
            if state is None or state[0] != params_hash:
                return None
            rows = s.execute(
                select(_QM.c.nct_id, _QM.c.present).where(_QM.c.query_name == name)
            ).all()
        return {r.nct_id: bool(r.present) for r in rows}

    def write_query(
        self,
        run: RunRef,
        page: int,
        *,
        name: str,
        params_hash: str,
        matches: Sequence[StudySummary],
        changes: Sequence[tuple[str, FieldChange, tuple[Route, ...]]],
        track: bool,
        now: datetime,
        data_timestamp: str | None,
    ) -> tuple[str, ...]:
        """Record one query's answer in ONE transaction: its matches, its baseline, its events
        and the notifications they owe; with ``track`` the watch set follows the matches.

        Returns the ids this call started watching (to be fetched by the same sync). Raises
        ConcurrentUpdateError (writing nothing) when another process closed the run.
        """
        source = f"query:{name}"
        present = {m.nct_id for m in matches}
        with self.session() as s:
            self._fence_run(s, run)
            known = {
                r.nct_id for r in s.execute(select(_QM.c.nct_id).where(_QM.c.query_name == name))
            }
            s.execute(
                sa.update(_QM)
                .where(
                    _QM.c.query_name == name, _QM.c.nct_id.not_in(present) if present else sa.true()
                )
                .values(present=False)
            )
            fresh, seen = [], []
            for m in matches:
                row = {
                    "brief_title": m.brief_title,
                    "phases": ",".join(m.phases) or None,
                    "overall_status": m.overall_status,
                    "lead_sponsor": m.lead_sponsor,
                    "first_posted": m.first_posted,
                }
                if m.nct_id in known:
                    seen.append({"b_id": m.nct_id, **row})
                else:
                    fresh.append(
                        {
                            "query_name": name,
                            "nct_id": m.nct_id,
                            "present": True,
                            "first_seen_at": now,
                            "last_seen_at": now,
                            **row,
                        }
                    )
            if fresh:
                s.execute(sa.insert(_QM), fresh)
            if seen:
                s.execute(
                    sa.update(_QM)
                    .where(_QM.c.query_name == name, _QM.c.nct_id == sa.bindparam("b_id"))
                    .values(
                        present=True,
                        last_seen_at=now,
                        brief_title=sa.bindparam("brief_title"),
                        phases=sa.bindparam("phases"),
                        overall_status=sa.bindparam("overall_status"),
                        lead_sponsor=sa.bindparam("lead_sponsor"),
                        first_posted=sa.bindparam("first_posted"),
                    ),
                    seen,
                )
            state = s.execute(select(_QS.c.params_hash).where(_QS.c.query_name == name)).first()
            if state is None:
                s.execute(
                    sa.insert(_QS).values(
                        query_name=name,
                        params_hash=params_hash,
                        matched=len(present),
                        baselined_at=now,
                        checked_at=now,
                    )
                )
            else:
                values: dict[str, Any] = {
                    "matched": len(present),
                    "checked_at": now,
                    "refused": None,
                }
                if state[0] != params_hash:
                    values.update(params_hash=params_hash, baselined_at=now)
                s.execute(sa.update(_QS).where(_QS.c.query_name == name).values(**values))

            started: tuple[str, ...] = ()
            if track:
                watched_by_me = {
                    r.nct_id for r in s.execute(select(_W.c.nct_id).where(_W.c.source == source))
                }
                gone = sorted(watched_by_me - present)
                if gone:
                    s.execute(sa.delete(_W).where(_W.c.source == source, _W.c.nct_id.in_(gone)))
                new = sorted(present - watched_by_me)
                if new:
                    started = add_watch_rows(s, new, source=source, now=now).added

            rows = [
                event_row(run, nct_id, change, now=now, data_timestamp=data_timestamp)
                for nct_id, change, _ in changes
            ]
            self._insert_events(s, run, page, rows, [r for _, _, r in changes], now)
        return started

    def mark_query_refused(self, name: str, reason: str, *, now: datetime) -> None:
        """Record that CT.gov refused query ``name``'s search (its baseline, if any, is kept;
        one it never answered gets an empty one, so its first answer is a silent baseline)."""
        with self.session() as s:
            updated = s.execute(
                sa.update(_QS).where(_QS.c.query_name == name).values(refused=reason)
            )
            if not updated.rowcount:  # type: ignore[attr-defined]
                s.execute(
                    sa.insert(_QS).values(
                        query_name=name,
                        params_hash="",  # matches no search: the first answer baselines it
                        matched=0,
                        baselined_at=now,
                        checked_at=now,
                        refused=reason,
                    )
                )

    # -- what a paper printed -------------------------------------------------------------

    def import_watches(
        self,
        ids: Sequence[str],
        printed: Iterable[tuple[str, str | None, str | None, str | None]],
        *,
        origin: str,
        now: datetime,
        printed_on: str | None = None,
    ) -> tuple[WatchChange, int]:
        """``watch import``: watch ``ids`` (source ``import``) and store what the text printed
        beside them as (nct_id, status enum, status as printed, title) — the "as printed"
        baseline, which a later import of the same trial replaces — in one transaction: an
        import is all or nothing. Returns the watch change and how many entries were stored."""
        with self.session() as s:
            change = add_watch_rows(s, ids, source="import", now=now, labels=None)
            return change, _save_printed_rows(
                s, printed, origin=origin, now=now, printed_on=printed_on
            )

    def printed_entries(self, *, unreported_only: bool = False) -> list[PrintedEntry]:
        from sqlmodel import col
        from sqlmodel import select as sm_select

        with self.session() as s:
            query = sm_select(PrintedEntry).order_by(col(PrintedEntry.nct_id))
            if unreported_only:
                query = query.where(col(PrintedEntry.reported_at).is_(None))
            return list(s.exec(query))

    def mark_printed_reported(self, ids: Sequence[str], *, now: datetime) -> None:
        if not ids:
            return
        with self.session() as s:
            s.execute(sa.update(_P).where(_P.c.nct_id.in_(list(ids))).values(reported_at=now))


def _save_printed_rows(
    s: Session,
    entries: Iterable[tuple[str, str | None, str | None, str | None]],
    *,
    origin: str,
    now: datetime,
    printed_on: str | None = None,
) -> int:
    """Store ``entries`` (each replacing what an earlier import stored for its trial), read
    :data:`ROWS_PER_STATEMENT` at a time; returns how many were stored."""
    kept = (
        (n, st, text, title)
        for n, st, text, title in entries
        # With the paper's publication day, every trial it names is kept (for --since-print).
        if st or text or title or printed_on
    )
    stored = 0
    for chunk in batches(kept):
        s.execute(sa.delete(_P).where(_P.c.nct_id.in_([e[0] for e in chunk])))  # (see _watch)
        s.execute(
            sa.insert(_P),
            [
                {
                    "nct_id": n,
                    "status": st,
                    "status_text": text,
                    "title": title,
                    "printed_on": printed_on,
                    "origin": origin,
                    "imported_at": now,
                    "reported_at": None,
                }
                for n, st, text, title in chunk
            ],
        )
        stored += len(chunk)
    return stored
