"""``db upgrade`` when the disk is short, the process is killed mid-backup, two upgrades race,
and the database holds secrets: the real command, real files, real SQLite and PostgreSQL."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import DATA
from tests.e2e import REPO, TRIALWATCH
from trialwatch.exceptions import StorageError
from trialwatch.routing import webhook_reference
from trialwatch.storage import HEAD_REVISION
from trialwatch.storage.migrate import current, upgrade

V010 = DATA / "db" / "trialwatch-0.1.0.db"
SECRET_URL = "https://hooks.example.org/T0/B0/secret"
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture
def old_db(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / "trialwatch.db"
    shutil.copy(V010, path)
    return path


def _env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIALWATCH_")}
    env.update(
        {
            "TRIALWATCH_CONFIG": str(REPO / "config" / "trialwatch.toml"),
            "TRIALWATCH_DATABASE__URL": url,
            **extra,
        }
    )
    return env


def _upgrade_cmd(url: str, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(TRIALWATCH), "db", "upgrade"],
        env=_env(url, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_backup_of_a_010_database_holds_no_webhook_secret(old_db: Path) -> None:
    assert b"T0/B0/secret" in old_db.read_bytes()  # what 0.1.0 kept in its outbox
    old_db.chmod(0o640)
    result = upgrade(f"sqlite:///{old_db}", now=NOW)
    assert result.backup is not None
    raw = result.backup.read_bytes()
    assert b"secret" not in raw and b"hooks.example.org" not in raw  # not in free pages either
    assert (result.backup.stat().st_mode & 0o777) == 0o640
    conn = sqlite3.connect(result.backup)
    try:
        rows = conn.execute("SELECT recipient FROM notification WHERE channel = 'webhook'")
        assert rows.fetchall() == [(webhook_reference(SECRET_URL),)]
        # Everything else is the 0.1.0 database as it was: it can be restored and upgraded.
        assert conn.execute("SELECT count(*) FROM change_event").fetchone() == (2,)
    finally:
        conn.close()
    assert current(f"sqlite:///{result.backup}") == "0001"


def test_a_recorded_delivery_error_loses_the_configured_secrets_in_the_copy(
    old_db: Path,
) -> None:
    conn = sqlite3.connect(old_db)
    conn.execute(
        "UPDATE notification SET last_error = 'webhook https://hooks.example.org answered 404:"
        " Cannot POST /T0/B0/secret; Authorization: Bearer tok3n' WHERE channel = 'webhook'"
    )
    conn.commit()
    conn.close()

    def scrub(text: str) -> str:
        return text.replace("tok3n", "…")

    result = upgrade(f"sqlite:///{old_db}", now=NOW, scrub=scrub)
    assert result.backup is not None
    raw = result.backup.read_bytes()
    assert b"secret" not in raw and b"tok3n" not in raw


def test_too_little_free_space_is_said_before_anything_is_written(old_db: Path) -> None:
    before = sorted(os.listdir(old_db.parent))
    before.append("trialwatch.db.migration.lock")  # the lock's file stays, like the sync's
    with pytest.raises(StorageError) as refused:
        upgrade(f"sqlite:///{old_db}", now=NOW, free=lambda folder: 100_000)
    assert "not enough free space" in str(refused.value)
    assert "0.1 MiB is free" in str(refused.value)
    assert sorted(os.listdir(old_db.parent)) == sorted(before)  # no partial copy
    assert current(f"sqlite:///{old_db}") == "0001"  # nothing changed


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 256 KiB file system (tmpfs): room for the 0.1.0 database, not for its copy."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_db_upgrade_on_a_full_disk_is_one_plain_line_and_leaves_no_partial_copy(
    small_disk: Path,
) -> None:
    db = small_disk / "trialwatch.db"
    shutil.copy(V010, db)
    proc = _upgrade_cmd(f"sqlite:///{db}")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    assert "Traceback" not in err
    assert err.startswith("trialwatch: not enough free space in")
    assert "Upgraded" not in out
    assert not [p for p in os.listdir(small_disk) if p.endswith((".bak", ".partial"))]
    assert current(f"sqlite:///{db}") == "0001"


def test_a_kill_mid_backup_leaves_no_file_named_like_a_good_backup(old_db: Path) -> None:
    url = f"sqlite:///{old_db}"
    proc = _upgrade_cmd(url, TRIALWATCH_FAILPOINTS="upgrade.backup_written")
    proc.communicate(timeout=60)
    assert proc.returncode == -9
    assert not list(old_db.parent.glob("*.bak"))
    assert current(url) == "0001"
    again = _upgrade_cmd(url)
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    [bak] = old_db.parent.glob("*.bak")
    assert f"Backed up the database to {bak}" in out
    assert current(f"sqlite:///{bak}") == "0001"


def _race(url: str) -> list[tuple[int, str, str]]:
    procs = [_upgrade_cmd(url) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs, strict=True)]


def _one_upgraded(results: list[tuple[int, str, str]]) -> None:
    for _, _out, err in results:
        assert "Traceback" not in err and "constraint" not in err.lower(), err
    assert [code for code, _, _ in results] == [0, 0], results
    said = sorted(out.splitlines()[-1].split(" ")[0] for _, out, _ in results)
    assert said == ["Already", "Upgraded"], results


def test_two_upgrades_at_once_on_sqlite_upgrade_once(old_db: Path) -> None:
    _one_upgraded(_race(f"sqlite:///{old_db}"))
    assert current(f"sqlite:///{old_db}") == HEAD_REVISION
    assert len(list(old_db.parent.glob("*.bak"))) == 1


@pytest.mark.postgres
def test_two_upgrades_at_once_on_postgresql_upgrade_once(pg_schema_url: str) -> None:
    from alembic import command

    from trialwatch.storage.migrate import _config

    engine = sa.create_engine(pg_schema_url)
    try:
        with engine.begin() as conn:
            config = _config()
            config.attributes["connection"] = conn
            command.upgrade(config, "0003")
    finally:
        engine.dispose()
    _one_upgraded(_race(pg_schema_url))
    assert current(pg_schema_url) == HEAD_REVISION
