"""Schema migrations: a 0.1.0 database upgrades with every row kept; old schemas are refused.

The fixture ``tests/data/db/trialwatch-0.1.0.db`` was made by the 0.1.0 code itself (the script
beside it): a baseline of the 13 trials, a failed sync, SEAL completing, a sent email, a dead
webhook, a waiting daily digest and an open health alert.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tests import storage_reads
from tests.conftest import DATA
from trialwatch import __version__
from trialwatch.exceptions import SchemaOutdatedError, StorageError
from trialwatch.routing import webhook_reference
from trialwatch.storage import HEAD_REVISION, RELEASES, Store, made_by
from trialwatch.storage._schema import metadata
from trialwatch.storage.migrate import MIGRATIONS, current, upgrade

V010 = DATA / "db" / "trialwatch-0.1.0.db"
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture
def old_db(tmp_path: Path) -> Path:
    path = tmp_path / "trialwatch.db"
    shutil.copy(V010, path)
    return path


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_head_revision_is_the_newest_migration() -> None:
    newest = max(p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("0*.py"))
    assert newest == HEAD_REVISION


def test_every_release_names_its_schema_and_this_one_writes_the_newest() -> None:
    # The one table that names releases in database messages: a release that forgets its line
    # (or a schema change without a version) fails here.
    assert RELEASES[__version__] == HEAD_REVISION
    assert list(RELEASES.values()) == sorted(RELEASES.values())
    migrations = {p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("0*.py")}
    assert set(RELEASES.values()) <= migrations
    assert made_by("0001") == "trialwatch 0.1.0"
    assert made_by("0003") == "a development version between trialwatch 0.1.0 and 0.2.0"
    assert made_by("9999") == f"a trialwatch newer than {__version__}"


def test_a_010_database_is_refused_until_upgraded(old_db: Path) -> None:
    before = old_db.read_bytes()
    with pytest.raises(SchemaOutdatedError, match=r"trialwatch db upgrade") as refused:
        Store.open(f"sqlite:///{old_db}")
    assert (
        f"schema revision 0001 (made by trialwatch 0.1.0); this trialwatch ({__version__}) "
        f"needs schema {HEAD_REVISION}"
    ) in str(refused.value)
    assert old_db.read_bytes() == before  # nothing was written
    assert current(f"sqlite:///{old_db}") == "0001"


def test_a_010_database_upgrades_with_its_history_outbox_and_dead_letters(old_db: Path) -> None:
    url = f"sqlite:///{old_db}"

    def counts() -> dict[str, object]:
        return {
            table: _rows(old_db, f"SELECT count(*) FROM {table}")[0][0]  # noqa: S608
            for table in ("trial", "record_version", "change_event", "sync_run", "notification")
        }

    counts_before = counts()
    events_before = _rows(old_db, "SELECT id, nct_id, summary FROM change_event ORDER BY id")
    result = upgrade(url, now=NOW)
    assert (result.before, result.after) == ("0001", HEAD_REVISION)
    assert result.backup is not None and result.backup.exists()
    assert result.backup.parent == old_db.parent
    assert _rows(result.backup, "SELECT count(*) FROM change_event") == [(2,)]

    store = Store.open(url)
    try:
        assert counts() == counts_before
        assert [
            (e.id, e.nct_id, e.summary) for e, _ in storage_reads.history(store, "NCT02606461")
        ] == [tuple(r) for r in events_before]
        # The watch set came from 0.1.0's config: every watched trial, with its label and table.
        entries = store.watch_entries()
        assert len(entries) == 13
        assert {e.sources for e in entries} == {("config",)}
        seal = next(e for e in entries if e.nct_id == "NCT02606461")
        assert seal.label == "SEAL" and seal.table == "Table 1"
        # The outbox: sent, dead and waiting notifications are all there ...
        by_status = {n.status: n for n in store.notifications()}
        assert set(by_status) == {"sent", "dead", "digest_wait"}
        # ... and the dead webhook no longer holds its secret URL, only a reference to it.
        dead = by_status["dead"]
        assert dead.recipient == webhook_reference("https://hooks.example.org/T0/B0/secret")
        assert "secret" not in dead.recipient
        assert store.requeue_dead(NOW) == 1  # and can still be retried
        # Every 0.1.0 snapshot was made by normalizer 1, from a record kept as zlib: it reads.
        versions = storage_reads.versions(store, "NCT02606461")
        assert {v.normalizer_version for v in versions} == {1}
        raw = storage_reads.raw_record(store, versions[0].id)
        assert raw["protocolSection"]["identificationModule"]["nctId"] == "NCT02606461"
        assert store.consecutive_failures() == 0
        run = store.last_complete_run()
        assert run is not None and run.data_timestamp == "2026-11-04T09:00:06"
    finally:
        store.close()
    # Running it again is harmless.
    again = upgrade(url, now=NOW)
    assert not again.changed and again.backup is None


def test_upgrading_step_by_step_gives_the_tables_a_new_database_gets(db_url: str) -> None:
    """The migrations and the table definitions never drift apart (on both engines)."""
    result = upgrade(db_url, now=NOW)
    assert (result.before, result.after) == (None, HEAD_REVISION)
    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert diff == []
    Store.open(db_url).close()  # and the store accepts it as current


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tw.db'}"
    Store.open(url).close()
    conn = sqlite3.connect(tmp_path / "tw.db")
    conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaOutdatedError, match="newer than this trialwatch"):
        Store.open(url)
    with pytest.raises(StorageError, match="9999, newer than this trialwatch"):
        upgrade(url, now=NOW)
    # `db current` says so too, instead of advising the upgrade that would refuse.
    env = {**os.environ, "TRIALWATCH_DATABASE__URL": url, "TRIALWATCH_CONFIG": str(tmp_path / "c")}
    (tmp_path / "c").write_text("#\n")
    shown = subprocess.run(
        [sys.executable, "-m", "trialwatch", "db", "current"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.stdout == (
        f"9999, made by a trialwatch newer than {__version__}; newer than this trialwatch "
        f"knows ({__version__}, schema {HEAD_REVISION}): upgrade it\n"
    )
    assert "db upgrade" not in shown.stdout


def test_the_migration_keeps_the_routers_webhook_reference() -> None:
    """0002 carries a frozen copy of webhook_reference: the two must agree."""
    import importlib.util

    path = next((MIGRATIONS / "versions").glob("0002_*.py"))
    spec = importlib.util.spec_from_file_location("m0002", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    url = "https://hooks.example.org/services/T/B/xyz"
    assert module._webhook_reference(url) == webhook_reference(url)


@pytest.mark.postgres
def test_a_010_database_on_postgresql_upgrades_too(pg_schema_url: str) -> None:
    """The same 0.1.0 rows, in a PostgreSQL database laid out as 0.1.0 made it."""
    from alembic import command

    from trialwatch.storage.migrate import _config

    engine = sa.create_engine(pg_schema_url)
    source = sa.create_engine(f"sqlite:///{V010}")
    try:
        with engine.begin() as conn:
            config = _config()
            config.attributes["connection"] = conn
            command.upgrade(config, "0001")
            conn.execute(sa.text("DROP TABLE alembic_version"))  # 0.1.0 had none
            old = sa.MetaData()
            old.reflect(conn)
            with source.connect() as src:
                for name in (
                    "record_version",
                    "sync_run",
                    "health_state",
                    "trial",
                    "change_event",
                    "notification",
                ):
                    table = old.tables[name]
                    rows = [dict(r._mapping) for r in src.execute(sa.select(table))]
                    for row in rows:
                        for key, value in row.items():
                            if isinstance(value, datetime):
                                row[key] = value.replace(tzinfo=UTC)
                    conn.execute(table.insert(), rows)
    finally:
        source.dispose()
        engine.dispose()
    with pytest.raises(SchemaOutdatedError):
        Store.open(pg_schema_url)
    result = upgrade(pg_schema_url, now=NOW)
    assert (result.before, result.after, result.backup) == ("0001", HEAD_REVISION, None)
    store = Store.open(pg_schema_url)
    try:
        assert len(store.watch_entries()) == 13
        assert next(e.summary for e, _ in storage_reads.history(store, "NCT02606461")).startswith(
            "Overall status: Active, not recruiting → Completed"
        )
        assert {n.status for n in store.notifications()} == {"sent", "dead", "digest_wait"}
        assert all("secret" not in n.recipient for n in store.notifications())
    finally:
        store.close()
