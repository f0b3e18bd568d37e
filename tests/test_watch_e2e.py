"""The watch set and upgrades as a user meets them: the real command, the CT.gov stand-in."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DATA
from tests.e2e import Run, sqlite_dump, trialwatch, user_env
from tests.fakes.ctgov_server import FakeCtGov

pytestmark = pytest.mark.e2e
SEAL = "NCT02606461"


def _user(tmp_path: Path, api: FakeCtGov, **extra: str) -> dict[str, str]:
    """A user with a config of their own that lists no trial: the watch set is theirs."""
    config = tmp_path / "config" / "trialwatch.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[logging]\nformat = "json"\n', encoding="utf-8")
    return user_env(
        api.base_url,
        tmp_path / "data" / "trialwatch.db",
        TRIALWATCH_CONFIG=str(config),
        TRIALWATCH_HEALTH__MAX_DATA_AGE_HOURS="1000000",
        **extra,
    )


def _run(env: dict[str, str], tmp_path: Path, *args: str) -> Run:
    run = trialwatch(*args, env=env, cwd=tmp_path)
    assert "Traceback" not in run.err, run.err
    return run


# A review's text as it is pasted: ids split across lines, repeated in prose, odd spacing.
MESSY = """Selinexor in rare cancers — watch list (pasted from the PDF)

| NCT number | Study title                                   | Status     |
| NCT0319    | Selinexor in advanced thymic epithelial tumor | Recruiting |
| 3437       | after primary chemotherapy                    |            |
| NCT04138381| Selinexor alone and with imatinib in GIST     | Completed  |
| nct 0459 5994 | Selinexor plus gemcitabine in sarcoma      | Active, not recruiting |

As SEAL (NCT02606461) showed, and NCT02606461 again in the discussion, selinexor ...
Also see NCT0304-
2819 and the food-effect study NCT01896505. Not an id: NCT1234567, nor PMID 31234567.
"""


def test_import_sync_remove_and_history(api: FakeCtGov, tmp_path: Path) -> None:
    env = _user(tmp_path, api, TRIALWATCH_API__BATCH_SIZE="4")
    text = tmp_path / "review.txt"
    text.write_text(MESSY, encoding="utf-8")
    wanted = [
        "NCT01896505",
        "NCT02606461",
        "NCT03042819",
        "NCT03193437",
        "NCT04138381",
        "NCT04595994",
    ]

    dry = _run(env, tmp_path, "watch", "import", str(text), "--dry-run")
    assert dry.code == 0, dry.err
    assert "6 NCT number(s) found: 6 would be added, 0 already watched; nothing changed" in dry.out
    assert "NCT1234567" in dry.err  # skipped, and said why
    assert not (tmp_path / "data").exists()  # --dry-run: not even a database

    imported = _run(env, tmp_path, "watch", "import", str(text))
    assert imported.code == 0, imported.err
    assert "6 NCT number(s) found: 6 added, 0 already watched" in imported.out
    listed = _run(env, tmp_path, "watch", "list")
    assert [line.split()[0] for line in listed.out.splitlines()[2:8]] == wanted
    assert "import" in listed.out and "not synced yet" in listed.out

    # ⌈6/4⌉ + 1 requests: /version and two batches of ids.
    synced = _run(env, tmp_path, "sync")
    assert synced.code == 0, synced.err
    assert "6 new" in synced.out
    assert api.count("/version") == 1 and api.count("/studies") == 2
    assert (
        sorted(
            i
            for r in api.requests
            if r.path.endswith("/studies")
            for i in r.params["filter.ids"].split(",")
        )
        == wanted
    )

    # Adding one more is fetched at once, CT.gov refreshed or not: one request for it.
    api.clear_requests()
    added = _run(env, tmp_path, "watch", "add", "nct0160 7905", "--label", "Phase 1")
    assert added.code == 0 and "Watching NCT01607905." in added.out
    assert "was already watched" in _run(env, tmp_path, "watch", "add", SEAL).out
    again = _run(env, tmp_path, "sync")
    assert "Rechecked 1 trial (" in again.out and "1 new" in again.out
    assert api.count("/studies") == 1

    # Bad ids: a clear error, exit 2, nothing written.
    db = tmp_path / "data" / "trialwatch.db"
    before = sqlite_dump(db)
    bad = _run(env, tmp_path, "watch", "add", "NCT0260646", "NCT02606461")
    assert bad.code == 2
    assert "not NCT numbers" in bad.err and "NCT0260646" in bad.err
    assert sqlite_dump(db) == before

    # Remove keeps the history: `history` by label still shows it.
    removed = _run(env, tmp_path, "watch", "remove", SEAL)
    assert removed.code == 0 and "its history is kept" in removed.out
    assert SEAL not in _run(env, tmp_path, "watch", "list").out
    history = _run(env, tmp_path, "history", "SEAL")
    assert history.code == 0, history.err
    assert SEAL in history.out and "first recorded" in history.out


@pytest.mark.parametrize(
    ("label", "problem"),
    [("x" * 121, "(got 121)"), ("SEAL\x1b[31m", "with control characters"), ("  ", "(got 0)")],
)
def test_a_label_the_config_would_refuse_is_refused_by_watch_add(
    api: FakeCtGov, tmp_path: Path, label: str, problem: str
) -> None:
    """The config caps a label at 120 characters; `watch add --label` took 5,000, and control
    characters, into every table, email and page."""
    env = user_env(api.base_url, tmp_path / "data" / "trialwatch.db")
    run = _run(env, tmp_path, "watch", "add", "NCT02606461", "--label", label)
    assert run.code == 2, run.err
    assert "--label: give 1 to 120 printable characters" in run.err and problem in run.err
    assert "Traceback" not in run.err


def test_a_010_database_is_upgraded_by_db_upgrade_with_its_history(
    api: FakeCtGov, tmp_path: Path
) -> None:
    db = tmp_path / "data" / "trialwatch.db"
    db.parent.mkdir()
    shutil.copy(DATA / "db" / "trialwatch-0.1.0.db", db)
    env = user_env(api.base_url, db, TRIALWATCH_HEALTH__MAX_DATA_AGE_HOURS="1000000")
    before = db.read_bytes()

    for command in (["status"], ["sync"], ["history", SEAL], ["export"]):
        refused = _run(env, tmp_path, *command)
        assert refused.code == 2, (command, refused.err)
        assert "trialwatch db upgrade" in refused.err
        assert "0.1.0" in refused.err
    assert db.read_bytes() == before  # nothing was written

    assert "0001" in _run(env, tmp_path, "db", "current").out
    upgraded = _run(env, tmp_path, "db", "upgrade")
    assert upgraded.code == 0, upgraded.err
    assert "Backed up the database to" in upgraded.out
    assert "Upgraded schema 0001 to" in upgraded.out
    assert "up to date" in _run(env, tmp_path, "db", "current").out

    history = _run(env, tmp_path, "history", SEAL)
    assert "Overall status: Active, not recruiting → Completed" in history.out

    def as_recorded(record: dict[str, Any]) -> None:  # what the 0.1.0 database saw last
        status = record["protocolSection"]["statusModule"]
        status["overallStatus"] = "COMPLETED"
        status["completionDateStruct"] = {"date": "2026-10-30", "type": "ACTUAL"}

    api.update_study(SEAL, as_recorded)
    # The first sync under this release reads the old records again and re-baselines them
    # silently: no change events for that, and it says so once.
    synced = _run(env, tmp_path, "sync", "--force")
    assert synced.code == 0, synced.err
    assert "re-baselined silently" in synced.out
    assert "Overall status" not in synced.out
    assert "re-baselined" not in _run(env, tmp_path, "sync", "--force").out


def test_auto_upgrade_lets_sync_upgrade_by_itself(api: FakeCtGov, tmp_path: Path) -> None:
    db = tmp_path / "data" / "trialwatch.db"
    db.parent.mkdir()
    shutil.copy(DATA / "db" / "trialwatch-0.1.0.db", db)
    env = user_env(api.base_url, db, TRIALWATCH_DATABASE__AUTO_UPGRADE="true")
    assert _run(env, tmp_path, "status").code == 2  # only sync and daemon upgrade
    synced = _run(env, tmp_path, "sync")
    assert synced.code == 0, synced.err
    assert list(db.parent.glob("*.bak"))  # backed up first
