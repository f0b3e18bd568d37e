"""A Hypothesis state machine over the sync: random edits, faults, crashes and syncs.

The sync writes page by page (one trial per page here). A crash inside a page's transaction
leaves that page unwritten; a kill after a page leaves the run ``running`` until the next sync
closes it. Whatever the interleaving, every status a committed page observed is recorded
exactly once as a change from the previously committed one, the stored state matches what
was committed, and each change is owed to the recipient by exactly one notification: nothing
lost, nothing doubled.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlmodel import col, select

from tests.conftest import load_record
from tests.fakes.source import FakeSource
from trialwatch.exceptions import TransientFetchError
from trialwatch.models import FieldChange, Route, WatchItem
from trialwatch.storage import ChangeEvent, Store
from trialwatch.sync import run_sync

IDS = ["NCT01213277", "NCT02967393", "NCT05915845"]
STATUSES = ["RECRUITING", "ACTIVE_NOT_RECRUITING", "COMPLETED", "SUSPENDED", "TERMINATED"]


class Crash(Exception):
    """Stands for the process dying in the middle of a page's write transaction."""


class Killed(BaseException):
    """Stands for kill -9 between two pages: nothing of the sync runs after it."""


class FaultyStore:
    """The real store, with a crash or a kill injected at one page of the next sync."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.fault: tuple[str, int] | None = None
        self.committed: list[str] = []  # trials whose page committed during the last sync

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def write_page(self, run: Any, page: int, outcomes: Any, **kw: Any) -> int:
        if self.fault == ("kill", page):
            raise Killed
        if self.fault == ("crash", page):
            with self.store.session() as s:
                writing = [o for o in outcomes if o.kind != "unchanged"]
                if writing:
                    self.store._write_page(s, run, page, writing, kw["now"], kw["data_timestamp"])
                raise Crash
        written = self.store.write_page(run, page, outcomes, **kw)
        self.committed += [o.nct_id for o in outcomes]
        return written

    def finish_run(self, run: Any, totals: Any) -> None:
        if self.fault is not None and self.fault[0] == "kill":
            raise Killed
        self.store.finish_run(run, totals)


class SyncMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp()
        self.real = Store.open(f"sqlite:///{self.dir}/tw.db")
        self.store = FaultyStore(self.real)
        self.source = FakeSource([load_record(f"{i}.json") for i in IDS])
        self.now = datetime(2026, 11, 23, tzinfo=UTC)
        self.day = 0
        self.watch = [WatchItem(i, i) for i in IDS]
        # What a perfect observer would have recorded.
        self.observed: dict[str, str] = {}  # last status stored per trial
        self.expected_transitions: list[tuple[str, str, str]] = []
        self.fail_next_fetch = False

    def teardown(self) -> None:
        self.real.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _router(self, nct_id: str, label: str | None, change: FieldChange) -> list[Route]:
        return [Route("email", "someone@example.org", "immediate", None)]

    @rule(trial=st.sampled_from(IDS), status=st.sampled_from(STATUSES))
    def registry_edits(self, trial: str, status: str) -> None:
        record = copy.deepcopy(self.source.records[trial])
        record["protocolSection"]["statusModule"]["overallStatus"] = status
        self.source.put(record)
        self.day += 1
        self.source.data_timestamp = f"2026-12-{self.day % 28 + 1:02d}T09:00:{self.day % 60:02d}"

    @rule()
    def api_will_fail(self) -> None:
        self.fail_next_fetch = True

    @rule(how=st.sampled_from(["crash", "kill"]), page=st.integers(0, len(IDS) - 1))
    def process_will_die_at(self, how: str, page: int) -> None:
        self.store.fault = (how, page)

    @rule(force=st.booleans())
    def sync(self, force: bool) -> None:
        self.now += timedelta(hours=1)
        if self.fail_next_fetch:
            self.source.fail_after_version = TransientFetchError("503")
        self.store.committed = []
        try:
            run_sync(
                source=self.source,
                store=self.store,  # type: ignore[arg-type]
                watchlist=self.watch,
                clock=lambda: self.now,
                force=force,
                router=self._router,
                batch_size=1,
            )
        except (TransientFetchError, Crash, Killed):
            pass  # what committed before the failure stays; the rest was never written
        finally:
            self.source.fail_after_version = None
            self.fail_next_fetch = False
            self.store.fault = None
        for nct_id in self.store.committed:
            status = self.source.records[nct_id]["protocolSection"]["statusModule"]["overallStatus"]
            before = self.observed.get(nct_id)
            if before is not None and before != status:
                self.expected_transitions.append((nct_id, before, status))
            self.observed[nct_id] = status

    @precondition(lambda self: bool(self.observed))
    @invariant()
    def stored_state_is_the_last_observed(self) -> None:
        for nct_id, status in self.observed.items():
            trial = self.store.trial(nct_id)
            assert trial is not None
            assert trial.overall_status == status

    @invariant()
    def every_transition_recorded_exactly_once(self) -> None:
        with self.store.session() as s:
            events = list(s.exec(select(ChangeEvent).order_by(col(ChangeEvent.id))))
        recorded = [
            (e.nct_id, _json(e.old_json), _json(e.new_json))
            for e in events
            if e.field == "overall_status"
        ]
        assert sorted(recorded) == sorted(self.expected_transitions)
        for nct_id in IDS:  # and in order, per trial
            assert [r for r in recorded if r[0] == nct_id] == [
                t for t in self.expected_transitions if t[0] == nct_id
            ]

    @invariant()
    def every_change_is_owed_exactly_once(self) -> None:
        # Held notifications (a killed run's) count: the next sync releases them as they are.
        owed = [i for n in self.store.notifications() for i in n.change_ids]
        assert len(owed) == len(set(owed))
        with self.store.session() as s:
            routed = set(s.exec(select(ChangeEvent.id)))
        assert set(owed) == routed


def _json(value: str | None) -> Any:
    import json

    return None if value is None else json.loads(value)


SyncMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
TestSync = SyncMachine.TestCase
