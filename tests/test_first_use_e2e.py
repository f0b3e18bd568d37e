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
