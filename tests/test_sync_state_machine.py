"""A Hypothesis state machine over the sync: random edits, faults, crashes and syncs.

Whatever the interleaving, every status a sync observed is recorded exactly once as a change
from the previously observed one, the stored state matches the last successful sync, and each
change is owed to the recipient by exactly one notification: nothing lost, nothing doubled.
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
from trialwatch.models import FieldChange, WatchItem
from trialwatch.storage import ChangeEvent, Route, Store
from trialwatch.sync import run_sync

IDS = ["NCT01213277", "NCT02967393", "NCT05915845"]
STATUSES = ["RECRUITING", "ACTIVE_NOT_RECRUITING", "COMPLETED", "SUSPENDED", "TERMINATED"]


class Crash(Exception):
    """Stands for the process dying in the middle of the write transaction."""


class SyncMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp()
        self.store = Store.open(f"sqlite:///{self.dir}/tw.db")
        self.source = FakeSource([load_record(f"{i}.json") for i in IDS])
        self.now = datetime(2026, 11, 23, tzinfo=UTC)
        self.day = 0
        self.watch = [WatchItem(i, i) for i in IDS]
        # What a perfect observer would have recorded.
        self.observed: dict[str, str] = {}  # last status stored per trial
        self.expected_transitions: list[tuple[str, str, str]] = []
        self.crash_next_write = False
        self.fail_next_fetch = False

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _router(self, nct_id: str, label: str | None, change: FieldChange) -> list[Route]:
        if self.crash_next_write:
            raise Crash
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

    @rule()
    def process_will_crash_while_writing(self) -> None:
        self.crash_next_write = True

    @rule(force=st.booleans())
    def sync(self, force: bool) -> None:
        self.now += timedelta(hours=1)
        if self.fail_next_fetch:
            self.source.fail_after_version = TransientFetchError("503")
        try:
            run_sync(
                source=self.source,
                store=self.store,
                watchlist=self.watch,
                clock=lambda: self.now,
                force=force,
                router=self._router,
            )
        except TransientFetchError:
            return
        except Crash:
            return  # the transaction rolled back: nothing of this sync exists
        finally:
            self.source.fail_after_version = None
            self.fail_next_fetch = False
            self.crash_next_write = False
        for nct_id in IDS:
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
        assert recorded == self.expected_transitions

    @invariant()
    def every_change_is_owed_exactly_once(self) -> None:
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
