"""What a new user trips on (issue 23), run as cron would: the real command, off a terminal,
the shipped config pointed at a loopback stand-in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e import Run, trialwatch, user_env
from tests.fakes.ctgov_server import FakeCtGov

pytestmark = pytest.mark.e2e


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "trialwatch.db"


def _run(api: FakeCtGov, db: Path, *args: str, **env: str) -> Run:
    return trialwatch(*args, env=user_env(api.base_url, db, **env), cwd=db.parent.parent)


def _log_levels(stderr: str) -> list[str]:
    return [json.loads(line)["level"] for line in stderr.splitlines() if line.startswith("{")]


def test_a_one_shot_sync_off_a_terminal_logs_no_info_lines(api: FakeCtGov, db: Path) -> None:
    run = _run(api, db, "sync")
    assert run.code == 0, run.err
    assert "Synced 13 trials" in run.out
    assert run.err == ""

    verbose = _run(api, db, "sync", "--force", "--verbose")
    assert verbose.code == 0, verbose.err
    assert "info" in _log_levels(verbose.err)  # --verbose logs at the configured level


def test_a_trial_is_named_by_acronym_colon_head_or_prefix_in_any_case(
    api: FakeCtGov, db: Path
) -> None:
    assert _run(api, db, "sync").code == 0
    for key in ("METSSAR", "metssar", "Metss"):
        run = _run(api, db, "history", key)
        assert run.code == 0, run.err
        assert "NCT04811196" in run.out
    timeline = _run(api, db, "timeline", "SEAL", "metssar", "--output", str(db.parent / "t.html"))
    assert timeline.code == 0, timeline.err

    ambiguous = _run(api, db, "diff", "selinexor")
    assert ambiguous.code == 2
    assert "names 4 trials" in ambiguous.err
    assert "Selinexor and doxorubicin in advanced soft tissue sarcomas" in ambiguous.err


def test_status_fits_80_columns_unless_wide(api: FakeCtGov, db: Path) -> None:
    api.remove_study("NCT04595994")  # a trial with a problem to show
    assert _run(api, db, "sync").code == 0
    narrow = _run(api, db, "status", COLUMNS="80")
    assert narrow.code == 0, narrow.err
    table = narrow.out.split("\n\n")[0].splitlines()
    assert len(table) == 15  # headers, rule, 13 trials
    assert max(len(line) for line in narrow.out.splitlines()) <= 80, narrow.out
    assert "…" in narrow.out  # the widest columns were clipped, not wrapped
    wide = _run(api, db, "status", "--wide", COLUMNS="80")
    assert max(len(line) for line in wide.out.splitlines()) > 80
    assert "METSSAR: selinexor dosing schedules in sarcoma" in wide.out


def test_read_only_commands_create_no_database(api: FakeCtGov, tmp_path: Path) -> None:
    db = tmp_path / "nothing" / "here" / "trialwatch.db"
    for args in (("status",), ("history", "SEAL"), ("export",), ("watch", "list")):
        run = trialwatch(*args, env=user_env(api.base_url, db), cwd=tmp_path)
        assert run.code == 1, (args, run.err)
        assert "no database at" in run.err
        assert "Traceback" not in run.err
    assert not (tmp_path / "nothing").exists()
    assert api.requests == []


def test_db_current_on_a_mistyped_path_creates_nothing(api: FakeCtGov, tmp_path: Path) -> None:
    db = tmp_path / "typo" / "trialwatch.db"
    run = trialwatch("db", "current", env=user_env(api.base_url, db), cwd=tmp_path)
    assert run.code == 0, run.err
    assert f"no database at {db} yet (nothing was created)" in run.out
    assert "needs schema" in run.out
    assert not (tmp_path / "typo").exists()


def test_removing_a_config_listed_trial_is_a_usage_error(api: FakeCtGov, db: Path) -> None:
    run = _run(api, db, "watch", "remove", "NCT02606461")
    assert run.code == 2
    assert "config file's [[watchlist]]" in run.out


def test_a_base_url_without_api_v2_is_named(api: FakeCtGov, db: Path) -> None:
    root = api.base_url.removesuffix("/api/v2")
    assert root != api.base_url
    run = _run(api, db, "sync", TRIALWATCH_API__BASE_URL=root)
    assert run.code != 0
    assert "/api/v2" in run.err
    assert "refused" not in run.err


def test_a_dry_run_import_says_which_ids_are_already_watched(
    api: FakeCtGov, db: Path, tmp_path: Path
) -> None:
    assert _run(api, db, "sync").code == 0
    ids = tmp_path / "ids.txt"
    ids.write_text("NCT02606461\nNCT01234567\n")
    run = _run(api, db, "watch", "import", str(ids), "--dry-run")
    assert run.code == 0, run.err
    assert "already watched: NCT02606461" in run.out
    assert "would watch NCT01234567" in run.out
    assert "1 would be added, 1 already watched" in run.out


def test_the_atom_feed_takes_its_authority_and_self_link_from_the_config(
    api: FakeCtGov, db: Path
) -> None:
    assert _run(api, db, "sync").code == 0
    env = {
        "TRIALWATCH_WEB__FEED_AUTHORITY": "trials.example.org",
        "TRIALWATCH_WEB__PUBLIC_URL": "https://watch.example.org/tw",
    }
    run = _run(api, db, "export", "--format", "atom", **env)
    assert run.code == 0, run.err
    assert "<id>tag:trials.example.org,2026:feed/changes</id>" in run.out
    assert 'rel="self"' in run.out
    assert 'href="https://watch.example.org/tw/feed.atom"' in run.out
    assert "trialwatch.example" not in run.out

    bad = _run(api, db, "export", "--format", "atom", TRIALWATCH_WEB__FEED_AUTHORITY="not a domain")
    assert bad.code == 2
