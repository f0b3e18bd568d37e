"""The real ``trialwatch`` command, shipped config, CT.gov stand-in on loopback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.e2e import REPO, Run, spawn, sqlite_dump, trialwatch, user_env
from tests.fakes.ctgov_server import FakeCtGov
from tests.records import complete

pytestmark = pytest.mark.e2e
SEAL = "NCT02606461"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "trialwatch.db"


def _run(api: FakeCtGov, db: Path, *args: str, **env: str) -> Run:
    return trialwatch(*args, env=user_env(api.base_url, db, **env), cwd=db.parent.parent)


def test_the_thirteen_trials_baseline_change_and_idle_poll(api: FakeCtGov, db: Path) -> None:
    assert len(api.nct_ids) == 13

    first = _run(api, db, "sync")
    assert first.code == 0, first.err
    assert "Synced 13 trials" in first.out
    assert "13 new" in first.out
    assert api.count("/version") == 1
    assert api.count_lookups() == 1  # 13 ids, one request (pageSize >= 13)
    assert api.count_searches() == 1  # the shipped [[queries]] for Selinexor (its baseline)
    studies_call = next(r for r in api.requests if r.path.endswith("/studies"))
    assert len(studies_call.params["filter.ids"].split(",")) == 13

    api.update_study(SEAL, complete)
    api.clear_requests()
    second = _run(api, db, "sync")
    assert second.code == 0, second.err
    assert len(api.requests) == 3  # /version, the 13 ids, the Selinexor search
    assert "1 change in 1 trial;" in second.out
    assert "Overall status: Active, not recruiting → Completed" in second.out

    exported = _run(api, db, "export", "--format", "json")
    assert exported.code == 0, exported.err
    doc = json.loads(exported.out)
    schema = json.loads((REPO / "docs" / "export.schema.json").read_text())
    jsonschema.validate(doc, schema)
    assert doc["data_timestamp"] == api.data_timestamp
    by_id = {t["nct_id"]: t for t in doc["trials"]}
    assert len(by_id) == 13
    seal = by_id[SEAL]
    assert seal["label"] == "SEAL"
    assert seal["overall_status"] == "COMPLETED"
    assert seal["last_change_summary"] == "Overall status: Active, not recruiting → Completed"
    assert seal["url"] == f"https://clinicaltrials.gov/study/{SEAL}"
    changed = [t for t in doc["trials"] if t["last_changed_at"] is not None]
    assert [t["nct_id"] for t in changed] == [SEAL]

    before = sqlite_dump(db)
    api.clear_requests()
    idle = _run(api, db, "sync")
    assert idle.code == 0, idle.err
    assert "Nothing to do" in idle.out
    assert [r.path for r in api.requests] == ["/api/v2/version"]
    assert sqlite_dump(db) == before

    history = _run(api, db, "history", SEAL.lower())
    assert history.code == 0, history.err
    assert "Active, not recruiting → Completed" in history.out
    assert "tab=history" in history.out

    status = _run(api, db, "status")
    assert status.code == 0, status.err
    seal_line = next(line for line in status.out.splitlines() if line.startswith(SEAL))
    assert "Completed" in seal_line


def test_export_to_a_file(api: FakeCtGov, db: Path, tmp_path: Path) -> None:
    assert _run(api, db, "sync").code == 0
    target = tmp_path / "statuses.json"
    run = _run(api, db, "export", "--format", "json", "--output", str(target))
    assert run.code == 0, run.err
    assert run.out == ""
    doc = json.loads(target.read_text())
    assert {t["nct_id"] for t in doc["trials"]} == set(api.nct_ids)
    assert not list(tmp_path.glob("*.tmp"))


def test_malformed_nct_id_in_config_exits_2_and_writes_nothing(
    api: FakeCtGov, db: Path, tmp_path: Path
) -> None:
    config = tmp_path / "bad.toml"
    shipped = (REPO / "config" / "trialwatch.toml").read_text()
    config.write_text(shipped.replace('nct_id = "NCT04138381"', 'nct_id = "NCT0413838"'))
    run = _run(api, db, "--config", str(config), "sync")
    assert run.code == 2
    assert "NCT0413838" in run.err
    assert str(config) in run.err
    assert "Traceback" not in run.err
    assert not db.exists()
    assert api.requests == []


def test_every_config_problem_is_reported_at_once(api: FakeCtGov, db: Path, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        """
[api]
base_url = "not a url"
colour = "blue"

[[watchlist]]
nct_id = "NCT02606461"
label = "SEAL"

[[watchlist]]
nct_id = "nct02606461"
label = "SEAL again"

[[watchlist]]
nct_id = "NCT123"
label = "broken"
"""
    )
    run = trialwatch(
        "--config",
        str(config),
        "sync",
        env={
            **user_env(api.base_url, db),
            "TRIALWATCH_API__BASE_URL": "not a url either",
            "TRIALWATCH_EMAIL__SMTP_PORT": "seventy",
        },
        cwd=tmp_path,
    )
    assert run.code == 2
    assert "Traceback" not in run.err
    for needle in (
        "colour",
        "NCT123",
        "listed twice",
        "TRIALWATCH_API__BASE_URL",
        "TRIALWATCH_EMAIL__SMTP_PORT",
        "5 problems",
    ):
        assert needle in run.err, needle
    assert not db.exists()


def test_transient_faults_are_retried(api: FakeCtGov, db: Path) -> None:
    api.inject("status", times=2, path="/studies", status=503)
    api.inject("html", times=1, path="/studies")
    run = _run(api, db, "sync")
    assert run.code == 0, run.err
    assert "Synced 13 trials" in run.out
    assert api.count_lookups() == 4  # three faults, then the answer
    assert api.count_searches() == 1


def test_api_down_is_a_clear_error_and_changes_nothing(api: FakeCtGov, db: Path) -> None:
    assert _run(api, db, "sync").code == 0
    api.update_study(SEAL, complete)
    before = sqlite_dump(db)
    api.fail_all("status", path="/studies", status=503)
    # 503 is throttling too, ridden out for [api] throttle_budget_s; here: down for good.
    run = _run(
        api, db, "sync", TRIALWATCH_API__MAX_ATTEMPTS="2", TRIALWATCH_API__THROTTLE_BUDGET_S="0"
    )
    assert run.code == 1
    assert "Traceback" not in run.err
    assert "503" in run.err
    after = sqlite_dump(db)
    # Only the failed run is recorded; no trial, version or change moved.
    assert after.count("INSERT INTO change_event") == before.count("INSERT INTO change_event") == 0
    assert after.count("INSERT INTO record_version") == before.count("INSERT INTO record_version")
    api.clear_faults()
    recovered = _run(api, db, "sync")
    assert recovered.code == 0, recovered.err
    assert "Overall status: Active, not recruiting → Completed" in recovered.out


def test_garbled_response_and_broken_record(api: FakeCtGov, db: Path) -> None:
    def mutilate(record: dict[str, Any]) -> None:
        del record["protocolSection"]["statusModule"]

    api.update_study("NCT04595994", mutilate)
    api.inject("garbage", times=1, path="/studies")
    run = _run(api, db, "sync")
    assert run.code == 0, run.err
    assert "12 new" in run.out
    assert "1 failed" in run.out
    assert "FAILED NCT04595994" in run.err
    assert "Traceback" not in run.err
    status = _run(api, db, "status", "--wide")  # the whole problem, whatever COLUMNS says
    line = next(ln for ln in status.out.splitlines() if ln.startswith("NCT04595994"))
    assert "statusModule" in line


def test_unreachable_database_is_a_clear_error(api: FakeCtGov, db: Path) -> None:
    run = _run(
        api,
        db,
        "sync",
        TRIALWATCH_DATABASE__URL="postgresql+psycopg://nobody@127.0.0.1:1/nowhere",
    )
    assert run.code == 1
    assert "cannot use database" in run.err
    assert "Traceback" not in run.err
    assert api.requests == []


@pytest.mark.postgres
def test_the_same_commands_on_postgresql(api: FakeCtGov, db: Path, pg_schema_url: str) -> None:
    env = {"TRIALWATCH_DATABASE__URL": pg_schema_url}
    first = _run(api, db, "sync", **env)
    assert first.code == 0, first.err
    assert "13 new" in first.out
    api.update_study(SEAL, complete)
    second = _run(api, db, "sync", **env)
    assert second.code == 0, second.err
    assert "Overall status: Active, not recruiting → Completed" in second.out
    api.clear_requests()
    assert "Nothing to do" in _run(api, db, "sync", **env).out
    assert len(api.requests) == 1
    doc = json.loads(_run(api, db, "export", **env).out)
    assert {t["nct_id"]: t["overall_status"] for t in doc["trials"]}[SEAL] == "COMPLETED"
    status = _run(api, db, "status", "--wide", **env)  # the app's road: the same reads
    assert status.code == 0, status.err
    assert any(SEAL in line and "Completed" in line for line in status.out.splitlines())
    assert "Last successful sync:" in status.out and "dead letters: 0" in status.out
    assert not db.exists()  # nothing went to the SQLite default


def test_no_config_found_is_a_clear_error_not_an_empty_sync(api: FakeCtGov, tmp_path: Path) -> None:
    env = user_env(api.base_url, tmp_path / "data" / "trialwatch.db")
    del env["TRIALWATCH_CONFIG"]
    run = trialwatch("sync", env=env, cwd=tmp_path)  # no ./config/trialwatch.toml here
    assert run.code == 2
    assert "no config file" in run.err
    assert "TRIALWATCH_CONFIG" in run.err
    assert "trialwatch init" in run.err
    assert api.requests == []
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("database", ["none", "empty file"])
def test_nothing_to_watch_is_said_plainly(api: FakeCtGov, db: Path, database: str) -> None:
    config = db.parent.parent / "empty.toml"
    config.write_text("# nothing watched yet\n")
    if database == "empty file":  # a database file with no tables yet (touched, or restored)
        db.parent.mkdir(parents=True)
        db.touch()
    run = _run(api, db, "sync", TRIALWATCH_CONFIG=str(config))
    assert run.code == 2, run.err
    assert "nothing to watch" in run.err
    assert "Traceback" not in run.err
    assert api.count("/version") == 0


@pytest.mark.postgres
def test_nothing_to_watch_on_postgresql_creates_no_table(
    api: FakeCtGov, db: Path, pg_schema_url: str
) -> None:
    """An empty PostgreSQL schema stays empty: the sync asks whether it watches anything
    without creating its tables first."""
    import sqlalchemy as sa

    config = db.parent.parent / "empty.toml"
    config.write_text("# nothing watched yet\n")
    run = _run(
        api, db, "sync", TRIALWATCH_CONFIG=str(config), TRIALWATCH_DATABASE__URL=pg_schema_url
    )
    assert run.code == 2, run.err
    assert "nothing to watch" in run.err
    engine = sa.create_engine(pg_schema_url)
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
    assert api.count("/version") == 0


def test_a_config_with_only_a_query_watch_syncs(api: FakeCtGov, db: Path) -> None:
    config = db.parent.parent / "query-only.toml"
    config.write_text(
        '[[queries]]\nname = "selinexor"\nintervention = "selinexor OR KPT-330"\ntrack = true\n'
    )
    run = _run(api, db, "sync", TRIALWATCH_CONFIG=str(config))
    assert run.code == 0, run.err
    assert api.count_searches() == 1
    # The 13 trials it matched are tracked, fetched as silent baselines.
    assert "Synced 13 trials" in run.out and "13 new" in run.out


def test_a_dead_letter_id_beyond_any_row_is_refused_in_words(api: FakeCtGov, db: Path) -> None:
    run = _run(api, db, "notify", "retry", "99999999999999999999")
    assert run.code == 2
    assert "Invalid value for 'ids'" in run.err and "Traceback" not in run.err


def test_ctrl_c_during_a_sync_says_what_is_kept(api: FakeCtGov, db: Path) -> None:
    """Ctrl-C while a page is on its way: exit 130 (as any command interrupted), with one line
    saying what was kept and what to do, and no traceback. Typer alone exits 130 silently."""
    import signal
    import time

    api.inject("delay", seconds=30, path="/studies")
    proc = spawn("sync", env=user_env(api.base_url, db), cwd=db.parent.parent)
    deadline = time.monotonic() + 30
    while api.count("/studies") == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert api.count("/studies") == 1  # the page is on its way
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "sync interrupted; the pages written so far are kept" in err
    assert "Traceback" not in err
