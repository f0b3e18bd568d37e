"""``trialwatch backfill`` as a user runs it, against the stand-in serving SEAL's earlier
versions (tests/registry_versions.py) and a real SMTP server on loopback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.e2e import spawn, sqlite_dump
from tests.fakes.ctgov_server import FakeCtGov
from tests.fakes.smtp_server import FakeSmtp
from tests.registry_versions import SEAL, seal_versions
from tests.test_email_e2e import User

pytestmark = pytest.mark.e2e

OTHER = "NCT02025985"  # another of the review's trials (STORM)


@pytest.fixture
def user(tmp_path: Path, api: FakeCtGov, smtp: FakeSmtp) -> User:
    api.history.put(SEAL, seal_versions())
    user = User(tmp_path, api, smtp.port)
    first = user.run("sync")
    assert first.code == 0, first.err
    return user


def _changes(user: User) -> list[dict[str, object]]:
    run = user.run("export", "--format", "jsonl", "--changes")
    assert run.code == 0, run.err
    return [json.loads(line) for line in run.out.splitlines()]


def _status_events(user: User, nct_id: str = SEAL) -> list[tuple[str, object, object, str]]:
    return [
        (str(c["detected_at"])[:10], c["old"], c["new"], str(c["origin"]))
        for c in _changes(user)
        if c["nct_id"] == nct_id and c["field"] == "overall_status"
    ]


EXPECTED_STATUS = [
    ("2018-03-05", "NOT_YET_RECRUITING", "RECRUITING", "registry"),
    ("2026-05-12", "RECRUITING", "ACTIVE_NOT_RECRUITING", "registry"),
]


def test_seal_history_from_registration_dated_by_the_registry(
    user: User, api: FakeCtGov, smtp: FakeSmtp
) -> None:
    api.clear_requests()
    run = user.run("backfill", "SEAL")
    assert run.code == 0, run.err
    # The version list, then versions 0..3: one request each.
    assert api.count("/history") == 1
    assert len([r for r in api.requests if "/history/" in r.path]) == 4
    assert _status_events(user) == EXPECTED_STATUS

    history = user.run("history", "SEAL")
    assert history.code == 0, history.err
    for needle in ("Not yet recruiting", "Recruiting", "2019-12-31", "2020-06-22"):
        assert needle in history.out, history.out
    assert "2017-11-10  first recorded (registered (baseline)) · registry version 0" in history.out
    assert "2018-03-05  " in history.out and "(registry)" in history.out

    report = user.run("report", "--since", "2018-01-01", "--until", "2018-12-31")
    assert report.code == 0, report.err
    assert "SEAL" in report.out and "Recruiting" in report.out, report.out
    before = user.run("report", "--since", "2019-01-01", "--until", "2019-12-31")
    assert "Recruiting" not in before.out, before.out

    # History, not news: nothing queued, nothing sent (a sync flushes the outbox).
    assert user.run("sync", "--force").code == 0
    assert smtp.messages == []

    # A second backfill changes nothing and asks nothing.
    dump = sqlite_dump(user.cwd / "data" / "trialwatch.db")
    api.clear_requests()
    again = user.run("backfill", "SEAL")
    assert again.code == 0, again.err
    assert api.count("/api/int") == 0
    assert sqlite_dump(user.cwd / "data" / "trialwatch.db") == dump


def test_a_malformed_answer_for_one_trial_names_it_and_spares_the_others(
    user: User, api: FakeCtGov
) -> None:
    api.history.put(OTHER, [("2014-01-02", api.study(OTHER))])
    api.fail_all("html", path=f"/studies/{OTHER}/history")
    run = user.run("backfill")
    assert run.code == 1
    assert f"FAILED {OTHER}" in run.err and "HTML" in run.err, run.err
    assert _status_events(user) == EXPECTED_STATUS


def test_status_only_reads_one_request_per_trial(user: User, api: FakeCtGov) -> None:
    api.clear_requests()
    run = user.run("backfill", "--status-only", "SEAL")
    assert run.code == 0, run.err
    assert len([r for r in api.requests if r.path.startswith("/api/int")]) == 1
    assert _status_events(user) == EXPECTED_STATUS
    # Then in full: the same status events, not doubled.
    assert user.run("backfill", "SEAL").code == 0
    assert _status_events(user) == EXPECTED_STATUS


def test_killed_mid_backfill_resumes_without_losing_or_doubling(user: User, api: FakeCtGov) -> None:
    env = dict(user.env, TRIALWATCH_FAILPOINTS="backfill.version_saved:2")
    proc = spawn("backfill", "SEAL", env=env, cwd=user.cwd)
    proc.communicate(timeout=60)
    assert proc.returncode == -9
    assert _status_events(user) == []
    api.clear_requests()
    run = user.run("backfill", "SEAL")
    assert run.code == 0, run.err
    # Versions 0 and 1 were kept: only the list and versions 2 and 3 are read again.
    assert sorted(r.path for r in api.requests if "/history/" in r.path) == [
        f"/api/int/studies/{SEAL}/history/2",
        f"/api/int/studies/{SEAL}/history/3",
    ]
    assert _status_events(user) == EXPECTED_STATUS


def test_killed_before_the_join_resumes_once(user: User) -> None:
    env = dict(user.env, TRIALWATCH_FAILPOINTS="backfill.before_join")
    proc = spawn("backfill", "SEAL", env=env, cwd=user.cwd)
    proc.communicate(timeout=60)
    assert proc.returncode == -9
    assert user.run("backfill", "SEAL").code == 0
    assert _status_events(user) == EXPECTED_STATUS


def test_live_changes_after_the_backfill_stay_live(user: User, api: FakeCtGov) -> None:
    assert user.run("backfill", "SEAL").code == 0

    def complete(record: dict[str, object]) -> None:
        status = record["protocolSection"]["statusModule"]  # type: ignore[index]
        status["overallStatus"] = "COMPLETED"  # type: ignore[index]

    api.update_study(SEAL, complete)
    assert user.run("sync", "--force").code == 0
    events = _status_events(user)
    assert events[:2] == EXPECTED_STATUS
    assert [(e[1], e[2], e[3]) for e in events[2:]] == [
        ("ACTIVE_NOT_RECRUITING", "COMPLETED", "live")
    ]


def test_a_trial_not_named_right_is_a_usage_error(user: User) -> None:
    run = user.run("backfill", "NO-SUCH-TRIAL")
    assert run.code == 2 and "NO-SUCH-TRIAL" in run.err


def test_since_print_names_the_version_in_force_on_the_printed_day_and_each_change_since(
    user: User,
) -> None:
    paper = user.cwd / "review.txt"
    paper.write_text("Table 1. SEAL (NCT02606461), selinexor in liposarcoma.\n", encoding="utf-8")
    assert user.run("watch", "import", str(paper), "--printed-on", "2019-06-01").code == 0
    before = user.run("report", "--since-print")
    assert before.code == 0, before.err
    assert "history of it starts later" in before.out and "trialwatch backfill" in before.out

    assert user.run("backfill", "SEAL").code == 0
    run = user.run("report", "--since-print")
    assert run.code == 0, run.err
    story = run.out[run.out.index("Since the paper was published") :].splitlines()
    assert story[1] == (
        "SEAL (NCT02606461): printed 2019-06-01, when registry version 1 of 2018-03-05 was in "
        "force (Recruiting)"
    )
    assert story[2].startswith("  2020-02-10") and "2020-06-22" in story[2]
    assert story[2].endswith("(registry)")
    assert any(
        line.startswith("  2026-05-12") and "Active, not recruiting" in line for line in story
    )
    assert not any("2018-03-05  " in line for line in story)


def test_a_bad_printed_on_day_is_a_usage_error(user: User) -> None:
    paper = user.cwd / "review.txt"
    paper.write_text("NCT02606461\n", encoding="utf-8")
    run = user.run("watch", "import", str(paper), "--printed-on", "June 2019")
    assert run.code == 2 and "--printed-on" in run.err
    # A year mistyped into the future would name today's version as the one in print.
    future = user.run("watch", "import", str(paper), "--printed-on", "2099-01-01")
    assert future.code == 2 and "2099-01-01 has not come yet" in future.err, future.err


def test_diff_takes_the_registrys_version_numbers(user: User) -> None:
    before = user.run("diff", "SEAL", "--from", "v0")
    assert before.code == 2 and "run `trialwatch backfill NCT02606461`" in before.err, before.err
    assert user.run("backfill", "SEAL").code == 0

    slip = user.run("diff", "SEAL", "--from", "v1", "--to", "2")
    assert slip.code == 0, slip.err
    assert "From: registry version 1 of 2018-03-05" in slip.out, slip.out
    assert "To:   registry version 2 of 2020-02-10" in slip.out, slip.out
    assert "Primary completion" in slip.out and "Overall status" not in slip.out, slip.out

    # A version number and a date mix; the day of version 1 is its version.
    mixed = user.run("diff", "SEAL", "--from", "v0", "--to", "2018-03-05", "--format", "json")
    assert mixed.code == 0, mixed.err
    result = json.loads(mixed.out)
    assert (result["from"]["registry_version"], result["to"]["registry_version"]) == (0, 1)
    assert [c["field"] for c in result["changes"] if c["field"] == "overall_status"] == [
        "overall_status"
    ]

    backwards = user.run("diff", "SEAL", "--from", "v2", "--to", "v1")
    assert backwards.code == 2 and "--to 1 is before --from 2" in backwards.err, backwards.err
    missing = user.run("diff", "SEAL", "--from", "v9")
    assert missing.code == 2 and "no registry version 9" in missing.err, missing.err
    assert "Traceback" not in missing.err


def test_the_timeline_draws_the_status_since_registration(user: User) -> None:
    assert user.run("backfill", "SEAL").code == 0
    run = user.run("timeline", "SEAL")
    assert run.code == 0, run.err
    spans = re.findall(
        r'data-status="([A-Z_]+)"[^>]*>\s*<title>[^:<]*: (\S+) to (\S+)</title>', run.out
    )
    assert spans[:2] == [
        ("NOT_YET_RECRUITING", "2017-11-10", "2018-03-05"),
        ("RECRUITING", "2018-03-05", spans[1][2]),
    ], spans
    assert spans[1][2] > "2018-03-05"
    assert "2019-12-31" in run.out or "2020-06-22" in run.out
