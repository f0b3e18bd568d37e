"""``status``'s reads (storage's ``Glance``): on SQLite and PostgreSQL through the store's
engine, and over the standard library's sqlite3 (the light road), the same answers."""

from __future__ import annotations

import os
from datetime import UTC
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import FakeClock, load_record
from tests.fakes.source import FakeSource
from trialwatch.config import Settings
from trialwatch.exceptions import StorageError, TransientFetchError
from trialwatch.models import WatchItem
from trialwatch.statusview import LightStatus, open_light_status
from trialwatch.storage import HEAD_REVISION, DeadLetter, Store, open_glance
from trialwatch.sync import run_sync

SYNCED = ["NCT01213277", "NCT02967393"]
GONE = "NCT09999999"  # watched, never returned by the registry


def _world(store: Store, clock: FakeClock) -> FakeSource:
    """Two trials synced (one labelled twice: the config's label wins), one the registry never
    returns, then a failed sync; a dead letter, a retrying one and a refused query."""
    source = FakeSource([load_record(f"{i}.json") for i in SYNCED])
    watch = [WatchItem(SYNCED[0], "From config"), WatchItem(SYNCED[1]), WatchItem(GONE)]
    store.sync_config_watchlist(watch, now=clock())
    store.add_watches([SYNCED[0]], source="cli", now=clock(), labels={SYNCED[0]: "From cli"})
    run_sync(source=source, store=store, watchlist=watch, clock=clock)
    clock.advance(hours=1)
    changed = load_record(f"{SYNCED[1]}.json")
    changed["protocolSection"]["statusModule"]["overallStatus"] = "TERMINATED"
    source.put(changed)
    source.data_timestamp = "2026-11-21T09:00:06"
    run_sync(source=source, store=store, watchlist=watch, clock=clock)  # GONE missed twice
    clock.advance(hours=1)
    source.fail_after_version = TransientFetchError("503 from CT.gov")
    source.data_timestamp = "2026-11-22T09:00:06"
    with pytest.raises(TransientFetchError):
        run_sync(source=source, store=store, watchlist=watch, clock=clock)
    for key, status, attempts in (("a", "dead", 5), ("b", "pending", 2), ("c", "sent", 1)):
        store.queue_notice(
            key=key, kind="alert", recipient="admin@example.org", payload={}, now=clock()
        )
        with store.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE notification SET status = :s, attempts = :a, last_error = :e"
                    " WHERE key = :k"
                ),
                {"s": status, "a": attempts, "e": f"{key}: 550 mailbox full", "k": key},
            )
    store.mark_query_refused("xpo1", "CT.gov refused the query: bad bracket", now=clock())
    return source


def test_the_glance_reads_health_lines_queries_and_dead_letters(
    store: Store, clock: FakeClock
) -> None:
    _world(store, clock)
    with store.glance() as glance:
        assert glance.revision() == HEAD_REVISION
        facts = glance.health_facts()
        every = glance.status_glance(list_up_to=50, show=10)
        summed = glance.status_glance(list_up_to=2, show=1)
        refused = glance.refused_queries()
        dead = glance.dead_letters()
        config = glance.config_watches()
    assert facts.consecutive_failures == 1
    assert facts.last_error is not None and "503 from CT.gov" in facts.last_error
    assert facts.data_timestamp is not None and facts.last_success_at is not None
    assert facts.last_success_at.tzinfo == UTC
    assert facts.outbox == {"dead": 1, "pending": 1, "sent": 1}
    assert facts.retrying == 1

    assert every.watched == 3 and every.every is not None
    lines = {line.nct_id: line for line in every.every}
    assert lines[SYNCED[0]].label == "From config"  # the config's label beats the cli's
    assert lines[SYNCED[1]].label not in (None, SYNCED[1])  # the registry's acronym or title
    assert lines[SYNCED[0]].overall_status is not None and lines[SYNCED[0]].problem is None
    gone = lines[GONE]
    assert gone.overall_status is None and gone.label == GONE
    assert gone.problem is not None and gone.problem.endswith("(2 syncs in a row)")
    assert every.problem_count == 1
    assert sum(every.by_status.values()) == 3 and every.by_status[None] == 1

    assert summed.every is None and summed.watched == 3
    assert [p.nct_id for p in summed.problems] == [GONE]
    assert [line.nct_id for line in summed.latest] == [SYNCED[1]]
    assert summed.latest[0].last_changed_at is not None

    assert refused == {"xpo1": "CT.gov refused the query: bad bracket"}
    assert dead == [
        DeadLetter(dead[0].id, "email", "admin@example.org", None, "a: 550 mailbox full")
    ]
    assert config == {
        SYNCED[0]: ("From config", None, None),
        SYNCED[1]: (None, None, None),
        GONE: (None, None, None),
    }


def test_the_light_road_answers_as_the_store_does(tmp_path: Path, clock: FakeClock) -> None:
    url = f"sqlite:///{tmp_path / 'trialwatch.db'}"
    store = Store.open(url)
    try:
        _world(store, clock)
        with store.glance() as glance:
            expected = (
                glance.health_facts(),
                glance.status_glance(list_up_to=50, show=10),
                glance.status_glance(list_up_to=2, show=1),
                glance.refused_queries(),
                glance.dead_letters(),
            )
    finally:
        store.close()
    light = open_glance(url)
    assert light is not None
    try:
        got = (
            light.health_facts(),
            light.status_glance(list_up_to=50, show=10),
            light.status_glance(list_up_to=2, show=1),
            light.refused_queries(),
            light.dead_letters(),
        )
    finally:
        light.close()
    assert got == expected


def test_the_light_road_declines_what_it_cannot_vouch_for(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "trialwatch.db"
    url = f"sqlite:///{path}"
    assert open_glance(url) is None  # no file: the full road says so
    store = Store.open(url)
    watch = [WatchItem(SYNCED[0], "SEAL")]
    store.sync_config_watchlist(watch, now=clock())
    store.close()
    assert open_glance(f"{url}?timeout=3") is None  # options only the engine knows
    assert open_glance("postgresql+psycopg://postgres@127.0.0.1/test") is None

    settings = Settings.model_validate(
        {"database": {"url": url}, "watchlist": [{"nct_id": SYNCED[0], "label": "SEAL"}]}
    )
    light = open_light_status(settings, clock=clock)
    assert isinstance(light, LightStatus)
    light.close()
    relabelled = settings.model_copy(
        update={"watchlist": [settings.watchlist[0].model_copy(update={"label": "Seal"})]}
    )
    assert open_light_status(relabelled, clock=clock) is None  # the app applies it first

    with sa.create_engine(url).begin() as conn:  # a database another release wrote
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0005'"))
    assert open_glance(url) is None  # the full road names the upgrade


def test_a_broken_database_is_a_storage_error_not_a_traceback(
    tmp_path: Path, clock: FakeClock
) -> None:
    url = f"sqlite:///{tmp_path / 'trialwatch.db'}"
    Store.open(url).close()
    with sa.create_engine(url).begin() as conn:
        conn.execute(sa.text("DROP TABLE notification"))
    glance = open_glance(url)
    assert glance is not None
    with pytest.raises(StorageError, match="database error: no such table: notification"):
        glance.health_facts()
    glance.close()


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///a.db",
        "sqlite:////tmp/a b.db",
        "sqlite:///tmp/a%20b.db",
        "sqlite+pysqlite:///x/y.db?timeout=3",
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:///",
        "sqlite://localhost/a.db",
        "postgresql+psycopg://postgres@127.0.0.1/test",
    ],
)
def test_the_sqlite_file_is_read_from_the_url_as_sqlalchemy_reads_it(url: str) -> None:
    """``sqlite_path`` needs no SQLAlchemy (the light road); it must agree with ``make_url``."""
    from trialwatch.storage import sqlite_path

    database = sa.engine.make_url(url).database if url.startswith("sqlite") else None
    expected = Path(database) if database and database != ":memory:" else None
    assert sqlite_path(url) == expected


def _count_engines(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The URL of each engine the store opens from now on (the test's own open none)."""
    from trialwatch.storage import _store

    opened: list[str] = []
    real_open = _store.open_engine

    def open_engine(url: str, **kwargs: bool) -> sa.Engine:
        opened.append(url)
        return real_open(url, **kwargs)

    monkeypatch.setattr(_store, "open_engine", open_engine)
    return opened


@pytest.mark.parametrize("watched", [True, False])
def test_a_sync_of_imported_trials_opens_the_database_once(
    db_url: str, watched: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no [[watchlist]] in its config, a sync first asks the database whether it
    watches anything. SQLite answers over sqlite3; PostgreSQL through the store, which the
    sync then uses: one engine and one schema check on either engine, not two (~40-50 ms of
    every such sync on PostgreSQL). Nothing watched: the store is closed, and the command
    says so."""
    import typer

    from trialwatch.cli import _common

    store = Store.open(db_url)
    if watched:
        store.add_watches([SYNCED[0]], source="import", now=FakeClock()())
    store.close()
    config = tmp_path / "trialwatch.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n')
    monkeypatch.setattr(_common.state, "config", config)
    for name in [n for n in os.environ if n.startswith("TRIALWATCH_")]:
        monkeypatch.delenv(name)
    opened = _count_engines(monkeypatch)
    closed: list[Store] = []
    real_close = Store.close

    def close(self: Store) -> None:
        closed.append(self)
        real_close(self)

    monkeypatch.setattr(Store, "close", close)
    if not watched:
        with pytest.raises(typer.Exit) as exit_, _common.open_app(need_watchlist=True):
            pass
        assert exit_.value.exit_code == _common.EXIT_CONFIG
        assert len(opened) == (0 if db_url.startswith("sqlite") else 1)
        assert len(closed) == len(opened)  # the store opened to ask is closed
        return
    with _common.open_app(need_watchlist=True, may_upgrade=True) as app:
        assert app.store.watched_count() == 1
    assert len(opened) == 1
    assert len(closed) == 1


def test_an_unreachable_database_is_tried_once_to_learn_what_it_watches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that does not answer is said at once: the sync does not try it a second time
    (each try waits out the connect timeout) after asking whether it watches anything."""
    import typer

    from trialwatch.cli import _common

    config = tmp_path / "trialwatch.toml"
    # Nothing listens on port 9 of loopback: refused at once.
    config.write_text('[database]\nurl = "postgresql+psycopg://postgres@127.0.0.1:9/test"\n')
    monkeypatch.setattr(_common.state, "config", config)
    for name in [n for n in os.environ if n.startswith("TRIALWATCH_")]:
        monkeypatch.delenv(name)
    opened = _count_engines(monkeypatch)
    with pytest.raises(typer.Exit) as exit_, _common.open_app(need_watchlist=True):
        pass
    assert exit_.value.exit_code == _common.EXIT_FAILURE
    assert len(opened) == 1


def test_whether_anything_is_watched_is_read_without_the_store(tmp_path: Path) -> None:
    """A sync with nothing in its config's watch list asks the database whether it watches
    anything (imported, added) before it opens the store: over sqlite3, the same answer."""
    from trialwatch.app import open_if_watching

    def database_watches_anything(settings: Settings) -> bool:
        watches, store = open_if_watching(settings)
        assert store is None  # SQLite is asked over sqlite3
        return watches

    db = tmp_path / "trialwatch.db"
    settings = Settings.model_validate({"database": {"url": f"sqlite:///{db}"}})
    assert database_watches_anything(settings) is False  # no file: none is created
    assert not db.exists()
    store = Store.open(f"sqlite:///{db}")
    try:
        glance = open_glance(f"sqlite:///{db}")
        assert glance is not None
        assert glance.watches_anything() is False
        glance.close()
        assert database_watches_anything(settings) is False
        store.add_watches([SYNCED[0]], source="import", now=FakeClock()())
        glance = open_glance(f"sqlite:///{db}")
        assert glance is not None
        assert glance.watches_anything() is True
        glance.close()
        assert database_watches_anything(settings) is True
    finally:
        store.close()
