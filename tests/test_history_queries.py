"""The history reads: trials, their versions and their change events as history values, on a
real database (SQLite, and PostgreSQL when configured) filled by real syncs."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest

from tests.conftest import FakeClock, load_record
from tests.fakes.source import FakeSource
from tests.records import complete, grow, slip, status_module
from trialwatch import app as app_module
from trialwatch.app import App
from trialwatch.config import Settings
from trialwatch.exceptions import UserError
from trialwatch.models import WatchItem
from trialwatch.period import period_report, render_period_report
from trialwatch.records import Period, TrialHistory
from trialwatch.storage import Store
from trialwatch.sync import run_sync

SEAL = "NCT02606461"  # status: Active, not recruiting -> Completed
SLIP = "NCT04595994"  # primary completion 2027-06-30 est. -> 2028-08-31 est.
GROW = "NCT04811196"  # enrollment 56 -> 80 (estimated)
QUIET = "NCT03110562"  # nothing changes
IDS = [SEAL, SLIP, GROW, QUIET]
LABELS = {SEAL: "SEAL", SLIP: None, GROW: "METSSAR", QUIET: "BOSTON"}
DAY = [date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 26)]


class Registry:
    """A fake registry and a clock: a baseline on day 0, then one refresh a day."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.source = FakeSource([load_record(f"{i}.json") for i in IDS])
        self.clock = FakeClock(datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
        self.watch = [WatchItem(i, LABELS[i], None) for i in IDS]
        self.sync()

    def sync(self) -> None:
        run_sync(
            source=self.source,
            store=self.store,
            watchlist=self.watch,
            clock=self.clock,
            force=True,
        )

    def refresh(self, nct_id: str, mutate: Callable[[dict[str, Any]], None]) -> None:
        self.clock.advance(days=1)
        record = copy.deepcopy(self.source.records[nct_id])
        mutate(record)
        self.source.put(record)
        self.source.data_timestamp = self.clock.now.strftime("%Y-%m-%dT09:00:00")
        self.sync()


@pytest.fixture
def registry(store: Store) -> Registry:
    reg = Registry(store)
    reg.refresh(SEAL, complete)
    reg.refresh(SLIP, slip)
    reg.refresh(GROW, grow)
    return reg


def _fields(history: TrialHistory) -> list[str]:
    return [e.change.field for e in history.changes]


def test_one_trial_has_every_version_and_change_with_its_name(
    store: Store, registry: Registry
) -> None:
    history = store.trial_history(SEAL)

    assert history is not None
    assert history.label == "SEAL"
    assert history.watched_since == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert [v.snapshot.overall_status for v in history.versions] == [
        "ACTIVE_NOT_RECRUITING",
        "COMPLETED",
    ]
    assert history.first_recorded_at == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert history.versions[1].data_timestamp == "2026-11-24T09:00:00"
    status = [e for e in history.changes if e.change.field == "overall_status"]
    assert len(status) == 1
    event = status[0]
    assert (event.change.old, event.change.new) == ("ACTIVE_NOT_RECRUITING", "COMPLETED")
    assert event.detected_at == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert event.data_timestamp == "2026-11-24T09:00:00"
    assert (event.from_version_id, event.to_version_id) == (
        history.versions[0].version_id,
        history.versions[1].version_id,
    )


def test_an_unknown_trial_has_no_history(store: Store, registry: Registry) -> None:
    assert store.trial_history("NCT09999999") is None


def test_a_trial_without_a_label_goes_by_its_acronym(store: Store, registry: Registry) -> None:
    history = store.trial_history(SLIP)
    trial = store.trial(SLIP)
    assert history is not None and trial is not None
    assert history.label == trial.acronym


def test_the_config_label_wins_over_a_cli_label(store: Store, registry: Registry) -> None:
    store.add_watches([SEAL], source="cli", now=registry.clock.now, labels={SEAL: "seal (cli)"})
    history = store.trial_history(SEAL)
    assert history is not None and history.label == "SEAL"


def test_histories_come_in_the_order_asked_across_batches(store: Store, registry: Registry) -> None:
    asked = [QUIET, "NCT09999999", GROW, SEAL, SLIP]

    got = list(store.histories(asked, batch=2))

    assert [h.nct_id for h in got] == [QUIET, GROW, SEAL, SLIP]
    assert [len(h.versions) for h in got] == [1, 2, 2, 2]


def test_the_trials_changed_in_a_period_are_the_watched_ones_with_events_in_it(
    store: Store, registry: Registry
) -> None:
    assert store.changed_trial_ids(Period(DAY[0])) == sorted([SEAL, SLIP, GROW])
    assert store.changed_trial_ids(Period(DAY[1], DAY[1])) == [SEAL]
    assert store.changed_trial_ids(Period(DAY[2], DAY[3])) == sorted([SLIP, GROW])
    assert store.changed_trial_ids(Period(date(2026, 12, 1))) == []

    store.remove_watches([SLIP])  # the config holds it: still watched
    assert SLIP in store.changed_trial_ids(Period(DAY[0]))
    registry.watch = [w for w in registry.watch if w.nct_id != SLIP]
    store.sync_config_watchlist(registry.watch, now=registry.clock.now)
    assert SLIP not in store.changed_trial_ids(Period(DAY[0]))


def test_a_text_report_loads_only_the_period_s_changes_and_the_ends_of_the_record(
    store: Store, registry: Registry
) -> None:
    registry.refresh(SEAL, lambda r: status_module(r).update(whyStopped="Sponsor decision"))
    period = Period(DAY[2])

    light = {
        h.nct_id: h
        for h in store.histories(
            store.changed_trial_ids(period), changes_in=period, all_versions=False
        )
    }
    full = {h.nct_id: h for h in store.histories(light)}

    assert sorted(light) == sorted([SEAL, SLIP, GROW])
    seal, whole = light[SEAL], full[SEAL]
    assert len(whole.versions) == 3
    assert [v.version_id for v in seal.versions] == [
        whole.versions[0].version_id,
        whole.versions[-1].version_id,
    ]
    assert seal.first_recorded_at == whole.first_recorded_at
    assert seal.latest == whole.latest
    assert "overall_status" in _fields(whole)
    assert "overall_status" not in _fields(seal)
    assert all(period.contains(e.detected_at) for e in seal.changes)

    # What the report says is the same either way.
    def text(histories: list[TrialHistory]) -> str:
        report = period_report(
            histories, period, generated_at=registry.clock.now, data_timestamp=None
        )
        return render_period_report(report, "text")

    assert text(list(light.values())) == text(list(full.values()))


def test_changes_stream_oldest_first_with_names_and_since(store: Store, registry: Registry) -> None:
    every = list(store.iter_changes(batch=1))
    ids = [e.id for e, _ in every]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    assert {e.nct_id for e, _ in every} == {SEAL, SLIP, GROW}
    names = {e.nct_id: label for e, label in every}
    assert names[SEAL] == "SEAL" and names[GROW] == "METSSAR"
    trial = store.trial(SLIP)
    assert trial is not None and names[SLIP] == trial.acronym

    since = datetime(2026, 11, 25, tzinfo=UTC)
    later = list(store.iter_changes(since=since))
    assert {e.nct_id for e, _ in later} == {SLIP, GROW}
    assert [e.id for e, _ in later] == [e.id for e, _ in every if e.detected_at >= since]


def test_changes_of_a_trial_no_longer_watched_are_left_out_of_the_stream(
    store: Store, registry: Registry
) -> None:
    registry.watch = [w for w in registry.watch if w.nct_id != SEAL]
    store.sync_config_watchlist(registry.watch, now=registry.clock.now)

    assert SEAL not in {e.nct_id for e, _ in store.iter_changes()}
    assert store.trial_history(SEAL) is not None  # its history is kept and still readable


# --- what the commands read (App.report_histories, App.timeline_ids), and their limits ---


def test_a_report_reads_the_changed_trials_and_lists_the_others_while_few(
    store: Store, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    period = Period(DAY[2])  # the slip and the enrollment change

    histories = list(App(Settings(), store).report_histories(period, picture=False))

    assert [h.nct_id for h in histories] == [SLIP, GROW, SEAL, QUIET]
    assert all(len(h.changes) == (h.nct_id in (SLIP, GROW)) for h in histories)
    text = _text_report(store, histories, period)
    assert "2 changes in 2 trials (of 4 watched trials)." in text
    assert "No recorded changes:\n  SEAL (NCT02606461)" in text

    monkeypatch.setattr(app_module, "QUIET_LISTED_MAX", 1)
    few = list(App(Settings(), store).report_histories(period, picture=False))

    assert [h.nct_id for h in few] == [SLIP, GROW]
    text = _text_report(store, few, period)
    assert "2 changes in 2 trials (of 4 watched trials)." in text
    assert "No recorded changes:" not in text
    assert "No recorded changes in the 2 other watched trials." in text


def test_a_picture_reads_whole_histories_up_to_its_limit(
    store: Store, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    period = Period(DAY[2])
    whole = {h.nct_id: h for h in App(Settings(), store).report_histories(period, picture=True)}
    assert "overall_status" in _fields(whole[SEAL])  # before the period: its status span
    assert len(whole[SEAL].versions) == 2
    assert App(Settings(), store).timeline_ids() == sorted(IDS)

    monkeypatch.setattr(app_module, "PICTURE_MAX_TRIALS", 1)
    with pytest.raises(
        UserError, match=r"2 trials changed in the period \(since 2026-11-25\); an HTML report"
    ):
        App(Settings(), store).report_histories(period, picture=True)
    assert len(list(App(Settings(), store).report_histories(period, picture=False))) == 4
    with pytest.raises(UserError, match="the watch set has 4 trials; a timeline draws at most 1"):
        App(Settings(), store).timeline_ids()


def _text_report(store: Store, histories: list[TrialHistory], period: Period) -> str:
    report = period_report(
        histories,
        period,
        generated_at=datetime(2026, 11, 27, tzinfo=UTC),
        data_timestamp=None,
        watched=store.watched_count(),
    )
    return render_period_report(report, "text")
