"""Change-report emails end to end: the real command, a CT.gov stand-in, a real SMTP server.

Nothing lost, nothing doubled: whatever fails (SMTP down, 451, 550, kill -9 mid-send), every
change reaches its recipients exactly once — at most one recognisable duplicate (same
Message-ID) when a crash hits between the server taking the message and us marking it sent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import SHIPPED_CONFIG, TRIALWATCH, Run, trialwatch, user_env
from tests.fakes.ctgov_server import FakeCtGov
from tests.fakes.smtp_server import FakeSmtp
from tests.fakes.stalling_smtp import StallingSmtp
from tests.records import complete

pytestmark = pytest.mark.e2e
SEAL = "NCT02606461"
CLINICIAN = "clinician@example.org"
SUBJECT = "1 change in 1 trial — SEAL (NCT02606461): Active, not recruiting → Completed"


class User:
    """A user with the shipped config, email settings from TRIALWATCH_* variables."""

    def __init__(self, tmp_path: Path, api: FakeCtGov, smtp_port: int, **extra: str) -> None:
        self.cwd = tmp_path
        self.env = user_env(
            api.base_url,
            tmp_path / "data" / "trialwatch.db",
            TRIALWATCH_EMAIL__ENABLED="true",
            TRIALWATCH_EMAIL__SMTP_HOST="127.0.0.1",
            TRIALWATCH_EMAIL__SMTP_PORT=str(smtp_port),
            TRIALWATCH_EMAIL__SECURITY="none",
            TRIALWATCH_EMAIL__SENDER="trialwatch@example.org",
            TRIALWATCH_EMAIL__TO=json.dumps([CLINICIAN]),
            TRIALWATCH_EMAIL__TIMEOUT_S="5",
            TRIALWATCH_OUTBOX__BACKOFF_INITIAL_S="0.01",
            TRIALWATCH_OUTBOX__BACKOFF_MAX_S="0.05",
            # The stand-in's data carries a fixed date: its age is not what these tests judge.
            TRIALWATCH_HEALTH__MAX_DATA_AGE_HOURS="1000000",
            **extra,
        )

    def run(self, *args: str) -> Run:
        result = trialwatch(*args, env=self.env, cwd=self.cwd)
        assert "Traceback" not in result.err, result.err
        return result

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(TRIALWATCH), *args],
            env=self.env,
            cwd=self.cwd,
            text=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


def _parts(message: EmailMessage) -> dict[str, str]:
    return {
        part.get_content_type(): str(part.get_content())
        for part in message.walk()
        if part.get_content_maintype() == "text"
    }


def _baseline_then_seal_completes(user: User, api: FakeCtGov) -> Run:
    assert user.run("sync").code == 0
    api.update_study(SEAL, complete)
    return user.run("sync")


def test_seal_completing_sends_exactly_one_email(
    tmp_path: Path, api: FakeCtGov, smtp: FakeSmtp
) -> None:
    user = User(tmp_path, api, smtp.port)
    assert user.run("sync").code == 0
    assert smtp.messages == []  # the baseline notifies nobody

    api.update_study(SEAL, complete)
    assert user.run("sync").code == 0
    [received] = smtp.wait_for(1)
    assert list(received.rcpt_tos) == [CLINICIAN]
    message = received.message
    assert message["Subject"] == SUBJECT
    assert message["To"] == CLINICIAN
    assert message["From"] == "trialwatch@example.org"
    assert message["Message-ID"].startswith("<trialwatch.")
    assert message.get_content_type() == "multipart/alternative"
    parts = _parts(message)
    assert set(parts) == {"text/plain", "text/html"}
    for body in parts.values():
        assert "Active, not recruiting → Completed" in body
        assert f"https://clinicaltrials.gov/study/{SEAL}" in body
        assert f"https://clinicaltrials.gov/study/{SEAL}?tab=history" in body.replace("&amp;", "&")
        assert api.data_timestamp in body

    # Later syncs with nothing new send nothing; neither does a manual flush.
    assert user.run("sync").code == 0
    assert user.run("sync", "--force").code == 0
    assert user.run("notify", "flush").code == 0
    assert len(smtp.messages) == 1


def test_smtp_refusing_451_during_the_sync_delivers_once_after_recovery(
    tmp_path: Path, api: FakeCtGov, smtp: FakeSmtp
) -> None:
    user = User(tmp_path, api, smtp.port)
    smtp.respond_with("451 4.3.0 Try again later")
    run = _baseline_then_seal_completes(user, api)
    # The change is stored; its delivery failed for now: said plainly, exit 1, retried later.
    assert run.code == 1
    assert "Overall status: Active, not recruiting → Completed" in run.out
    assert "451" in run.err
    assert "not delivered yet" in run.err and "retried" in run.err
    assert smtp.messages == []
    status = user.run("status")
    assert "Notifications queued: 1; dead letters: 0" in status.out
    check = user.run("status", "--check")  # a retried temporary failure is a warning
    assert check.code == 0
    assert "warning: 1 notification(s) failed for now and will be retried" in check.out

    smtp.recover()
    assert user.run("sync").code == 0  # the next sync retries what is due
    [received] = smtp.wait_for(1)
    assert received.message["Subject"] == SUBJECT
    assert user.run("notify", "flush").code == 0
    assert user.run("sync").code == 0
    assert len(smtp.messages) == 1


def test_smtp_down_during_the_sync_loses_nothing(
    tmp_path: Path, api: FakeCtGov, smtp: FakeSmtp
) -> None:
    user = User(tmp_path, api, smtp.port)
    smtp.stop()
    run = _baseline_then_seal_completes(user, api)
    assert run.code == 1
    assert "connection refused" in run.err.lower()
    smtp.start()
    flush = user.run("notify", "flush")
    assert flush.code == 0, flush.err
    assert "Delivered 1" in flush.out
    [received] = smtp.wait_for(1)
    assert received.message["Subject"] == SUBJECT
    assert user.run("notify", "flush").code == 0
    assert len(smtp.messages) == 1


def test_550_is_dead_lettered_visible_and_retried_on_request(
    tmp_path: Path, api: FakeCtGov, smtp: FakeSmtp
) -> None:
    user = User(tmp_path, api, smtp.port)
    smtp.respond_with("550 5.1.1 No such user")
    run = _baseline_then_seal_completes(user, api)
    assert run.code == 1
    assert "550" in run.err and "dead letters" in run.err
    status = user.run("status")
    assert "dead letters: 1" in status.out
    assert "550" in status.out
    assert "notify retry" in status.out
    check = user.run("status", "--check")  # a dead letter: a change nobody heard about
    assert check.code == 1
    assert "dead letters" in check.err
    assert user.run("notify", "flush").code == 0  # dead letters are not retried by themselves
    assert smtp.messages == []

    smtp.recover()
    retry = user.run("notify", "retry")
    assert retry.code == 0, retry.err
    assert "Re-queued 1" in retry.out
    [received] = smtp.wait_for(1)
    assert received.message["Subject"] == SUBJECT
    assert "dead letters: 0" in user.run("status").out
    assert user.run("status", "--check").code == 0


def _kill_while_sending(
    user: User, api: FakeCtGov, port: int, stall: str
) -> tuple[StallingSmtp, subprocess.Popen[str]]:
    assert user.run("sync").code == 0
    api.update_study(SEAL, complete)
    stalling = StallingSmtp(port, stall)  # type: ignore[arg-type]
    proc = user.popen("sync")
    waited = stalling.connected if stall == "greeting" else stalling.data_received
    assert waited.wait(20), "trialwatch never started sending"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    stalling.close()
    return stalling, proc


def test_kill_9_while_connecting_then_a_new_run_delivers_once(
    tmp_path: Path, api: FakeCtGov
) -> None:
    smtp = FakeSmtp()
    user = User(tmp_path, api, smtp.port)
    _stalling, proc = _kill_while_sending(user, api, smtp.port, "greeting")
    assert proc.returncode == -signal.SIGKILL
    with smtp:
        flush = user.run("notify", "flush")
        assert flush.code == 0, flush.err
        [received] = smtp.wait_for(1)
        assert received.message["Subject"] == SUBJECT
        assert user.run("sync").code == 0
        assert len(smtp.messages) == 1


def test_kill_9_after_the_server_took_the_message_gives_one_recognisable_duplicate(
    tmp_path: Path, api: FakeCtGov
) -> None:
    smtp = FakeSmtp()
    user = User(tmp_path, api, smtp.port)
    stalling, _proc = _kill_while_sending(user, api, smtp.port, "after_data")
    [first_copy] = stalling.received
    with smtp:
        assert user.run("notify", "flush").code == 0
        [second_copy] = smtp.wait_for(1)
        assert user.run("notify", "flush").code == 0
        assert len(smtp.messages) == 1
    first_id = next(
        line.split(b":", 1)[1].strip()
        for line in first_copy.splitlines()
        if line.lower().startswith(b"message-id:")
    )
    assert second_copy.message["Message-ID"] == first_id.decode()


def test_html_and_header_injection_in_a_record_are_harmless(
    tmp_path: Path, api: FakeCtGov, smtp: FakeSmtp
) -> None:
    user = User(tmp_path, api, smtp.port)
    assert user.run("sync").code == 0

    def evil(record: dict[str, Any]) -> None:
        ident = record["protocolSection"]["identificationModule"]
        ident["briefTitle"] = '<script>alert("x")</script> & Co\r\nBcc: victim@example.com'
        status = record["protocolSection"]["statusModule"]
        status["overallStatus"] = "TERMINATED"
        status["whyStopped"] = "<b>Sponsor</b>\r\nBcc: victim@example.com\r\n\r\n<img src=x>"

    api.update_study(SEAL, evil)
    assert user.run("sync").code == 0
    [received] = smtp.wait_for(1)
    assert list(received.rcpt_tos) == [CLINICIAN]
    message = received.message
    assert message["Bcc"] is None
    for name, value in message.items():
        assert "\r" not in value and "\n" not in value.strip(), name
    html = _parts(message)["text/html"]
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "<img src=x>" not in html
    assert "<b>Sponsor</b>" not in html


def test_a_digest_subscriber_gets_nothing_now_and_one_digest_later(
    tmp_path: Path, api: FakeCtGov, smtp: FakeSmtp
) -> None:
    config = tmp_path / "trialwatch.toml"
    config.write_text(
        SHIPPED_CONFIG.read_text()
        + '\n[[subscriptions]]\nname = "pipeline digest"\nto = ["analyst@example.org"]\n'
        'min_severity = "minor"\nmode = "daily"\n'
    )
    user = User(tmp_path, api, smtp.port, TRIALWATCH_CONFIG=str(config))
    assert _baseline_then_seal_completes(user, api).code == 0
    [immediate] = smtp.wait_for(1)
    assert list(immediate.rcpt_tos) == [CLINICIAN]

    digest = user.run("notify", "digest", "daily")
    assert digest.code == 0, digest.err
    assert "Prepared 1 daily digest" in digest.out
    messages = smtp.wait_for(2)
    assert list(messages[1].rcpt_tos) == ["analyst@example.org"]
    assert "digest" in messages[1].message["Subject"].lower()
    assert "Active, not recruiting → Completed" in _parts(messages[1].message)["text/plain"]
    assert user.run("notify", "digest", "daily").code == 0  # once per period
    assert len(smtp.messages) == 2


def test_the_password_never_appears_in_logs_errors_or_exports(
    tmp_path: Path, api: FakeCtGov
) -> None:
    with FakeSmtp(username="trialwatch", password="right-one") as smtp:
        user = User(
            tmp_path,
            api,
            smtp.port,
            TRIALWATCH_EMAIL__USERNAME="trialwatch",
            TRIALWATCH_EMAIL__PASSWORD="hunter2-wrong",
            TRIALWATCH_LOGGING__LEVEL="debug",
        )
        outputs = [_baseline_then_seal_completes(user, api)]
        outputs += [user.run("status"), user.run("export"), user.run("notify", "test")]
        assert "auth" in outputs[-1].err.lower()
        assert outputs[-1].code == 1
        for run in outputs:
            assert "hunter2" not in run.out + run.err
        assert smtp.messages == []
        assert "dead letters: 1" in user.run("status").out


def test_notify_test_says_what_failed(tmp_path: Path, api: FakeCtGov, smtp: FakeSmtp) -> None:
    user = User(tmp_path, api, smtp.port)
    ok = user.run("notify", "test")
    assert ok.code == 0, ok.err
    [received] = smtp.wait_for(1)
    assert list(received.rcpt_tos) == [CLINICIAN]
    smtp.stop()
    down = user.run("notify", "test")
    assert down.code == 1
    assert "refused" in down.err
    unknown = trialwatch(
        "notify",
        "test",
        env={**user.env, "TRIALWATCH_EMAIL__SMTP_HOST": "smtp.nonexistent.invalid"},
        cwd=tmp_path,
    )
    assert unknown.code == 1
    assert "DNS" in unknown.err or "resolve" in unknown.err
