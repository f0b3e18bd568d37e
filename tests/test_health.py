"""Health, judged from facts (pure), and as the store records them after failures and recovery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import FakeClock, load_record
from tests.fakes.source import FakeSource
from trialwatch.config import HealthSettings
from trialwatch.exceptions import TransientFetchError
from trialwatch.health import Health, assess, render_flood_alert
from trialwatch.models import WatchItem
from trialwatch.storage import Store
from trialwatch.sync import run_sync

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
SETTINGS = HealthSettings()


def _assess(**kw: Any) -> Health:
    facts: dict[str, Any] = {
        "now": NOW,
        "settings": SETTINGS,
        "last_success_at": NOW - timedelta(hours=1),
        "data_timestamp": "2026-11-23T09:00:06",
        "consecutive_failures": 0,
        "last_error": None,
        "outbox": {},
    }
    facts.update(kw)
    return assess(**facts)


def test_a_recent_success_with_nothing_stuck_is_healthy() -> None:
    health = _assess()
    assert health.healthy


def test_never_having_synced_is_not_healthy() -> None:
    fresh = _assess(last_success_at=None, data_timestamp=None)
    assert not fresh.healthy
    assert "no sync has succeeded yet" in fresh.problems[0]
    failed_once = _assess(
        last_success_at=None, data_timestamp=None, consecutive_failures=1, last_error="DNS"
    )
    assert not failed_once.healthy
    assert "DNS" in failed_once.problems[0]


def test_a_dead_letter_is_unhealthy_and_a_retry_is_a_warning() -> None:
    dead = _assess(outbox={"dead": 1, "sent": 3})
    assert not dead.healthy
    assert "notify retry" in dead.problems[0]
    retrying = _assess(outbox={"pending": 1}, retrying=1)
    assert retrying.healthy
    assert retrying.warnings == ("1 notification(s) failed for now and will be retried",)


@pytest.mark.parametrize("forced", [True, False])
def test_a_success_after_many_failures_is_a_recovery(
    store: Store, clock: FakeClock, forced: bool
) -> None:
    """Eight failed syncs, then one success (forced or not): health is good again at once."""
    ids = ["NCT01213277", "NCT02967393"]
    source = FakeSource([load_record(f"{i}.json") for i in ids])
    watch = [WatchItem(i) for i in ids]
    run_sync(source=source, store=store, watchlist=watch, clock=clock)
    source.fail_after_version = TransientFetchError("503")
    source.data_timestamp = "2026-11-21T09:00:06"
    for _ in range(8):
        clock.advance(hours=1)
        with pytest.raises(TransientFetchError):
            run_sync(source=source, store=store, watchlist=watch, clock=clock)
    assert store.consecutive_failures() == 8
    source.fail_after_version = None
    run_sync(source=source, store=store, watchlist=watch, clock=clock, force=forced)
    assert store.consecutive_failures() == 0
    # An idle poll afterwards keeps it so, and writes nothing.
    assert run_sync(source=source, store=store, watchlist=watch, clock=clock).skipped
    assert store.consecutive_failures() == 0


def test_the_flood_note_says_why_in_one_safe_subject_and_escaped_html() -> None:
    payload = render_flood_alert(
        finished_at=datetime(2026, 11, 26, 7, 0, tzinfo=UTC),
        data_timestamp="2026-11-26T09:00:06<script>",
        flooded_trials=1200,
        max_trials=50,
        max_fraction=0.2,
    )
    assert payload["subject"] == "trialwatch: 1200 trials changed at once; summaries sent"
    assert "flood_max_trials = 50 or flood_max_fraction = 0.2" in payload["text"]
    assert "<script>" not in payload["html"] and "&lt;script&gt;" in payload["html"]
    assert payload["html"].count("<p>") == 2
