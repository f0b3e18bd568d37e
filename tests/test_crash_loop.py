"""The crash-point loop: kill -9 at every instant that matters, recover, count lost and doubled.

The real ``trialwatch sync`` runs against the CT.gov stand-in and a real SMTP server, with a
batch of 4 so that the 13 watched trials span 4 pages. Each cycle publishes a status change on
one trial of every page (a new ``dataTimestamp``), runs ``sync`` with a failpoint that makes it
SIGKILL itself at a chosen instant (see trialwatch.failpoints), or kills it from the SMTP server
(at MAIL FROM, or after the message's final "." and before the 250 reply); then plain ``sync``
runs until the installation is quiet (no run left running, every notification sent, the new
data read), and one more plain ``sync`` at the end must find nothing to do. Then it counts, for
every published change:

- lost: no change event recorded for it, or no accepted email reporting it;
- doubled: more than one change event, or more than one accepted email reporting it — except in
  the documented SMTP window, where a resend must carry the same Message-ID: there, distinct
  Message-IDs are counted (the copies with a Message-ID already seen are listed as "resent").

An event recorded twice for one version, an event for a trial that did not change, or an email
line that reports no change published in the cycle counts as doubled too. The table of points
is printed at the end of the session; the test asserts 0 lost and 0 doubled, on SQLite and on
PostgreSQL.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.e2e import Run, spawn, trialwatch, user_env
from tests.fakes.ctgov_server import FakeCtGov
from tests.fakes.smtp_server import FakeSmtp, ReceivedMessage, Stage
from trialwatch.vocabulary import status_label

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

RECIPIENT = "a@example.org"
BATCH = 4
# Every one of them is at least "major": each change is owed to the recipient.
STATUSES = (
    "RECRUITING",
    "ACTIVE_NOT_RECRUITING",
    "SUSPENDED",
    "COMPLETED",
    "ENROLLING_BY_INVITATION",
    "NOT_YET_RECRUITING",
    "TERMINATED",
)
# Killed from the SMTP server (not a failpoint): at MAIL FROM, before any of the message is
# sent; after the message's final "." and before the 250 (the documented window).
SMTP_MAIL = "smtp:at-mail-from"
SMTP_WINDOW = "smtp:after-dot-before-250"
TABLE_PROPERTY = "crash_loop_table"

# (what the process was doing, the failpoints of the killed runs in order). Each killed run
# must die by SIGKILL; a second entry kills the run that would have recovered the first.
POINTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("fetching page 1", ("sync.fetched:1",)),
    ("fetching page 2", ("sync.fetched:2",)),
    ("writing page 1 (before commit)", ("sync.page_writing:1",)),
    ("writing page 3 (before commit)", ("sync.page_writing:3",)),
    ("writing the last page", ("sync.page_writing:4",)),
    ("between pages 1 and 2", ("sync.page_committed:1",)),
    ("between pages 3 and 4", ("sync.page_committed:3",)),
    ("before the run ends", ("sync.before_finish:1",)),
    ("after the commit, before sending", ("deliver.before_send:1",)),
    ("sending, before the message is complete", (SMTP_MAIL,)),
    ('after ".", before the 250 reply', (SMTP_WINDOW,)),
    ("between pages, then its recovery too", ("sync.page_committed:2", "sync.before_finish:1")),
)

_SECTION = re.compile(r"^== (?:.*\()?(NCT\d{8})\)? ==$")
_CHANGE = re.compile(r"^  \[\w+\] (.+)$")


@dataclass(frozen=True)
class Change:
    nct_id: str
    old: str
    new: str

    @property
    def summary(self) -> str:
        return f"Overall status: {status_label(self.old)} → {status_label(self.new)}"


@dataclass
class Tally:
    point: str
    changes: int = 0
    lost: int = 0
    doubled: int = 0
    resent: int = 0  # messages received again with the same Message-ID
    syncs: int = 0  # plain syncs it took to be quiet again
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Event:
    nct_id: str
    field: str
    item_key: str | None
    old: Any
    new: Any
    to_version_id: int | None
    data_timestamp: str | None


class Installation:
    """One user's trialwatch: the shipped config, a 4-study batch, email to the fake SMTP."""

    def __init__(self, cwd: Path, api: FakeCtGov, smtp: FakeSmtp, db_url: str) -> None:
        self.cwd = cwd
        self.env = user_env(
            api.base_url,
            cwd / "data" / "trialwatch.db",
            TRIALWATCH_DATABASE__URL=db_url,
            TRIALWATCH_API__BATCH_SIZE=str(BATCH),
            TRIALWATCH_EMAIL__ENABLED="true",
            TRIALWATCH_EMAIL__SMTP_HOST=smtp.host,
            TRIALWATCH_EMAIL__SMTP_PORT=str(smtp.port),
            TRIALWATCH_EMAIL__SECURITY="none",
            TRIALWATCH_EMAIL__SENDER="trialwatch@example.org",
            TRIALWATCH_EMAIL__TO=json.dumps([RECIPIENT]),
            TRIALWATCH_EMAIL__TIMEOUT_S="5",
            TRIALWATCH_OUTBOX__BACKOFF_INITIAL_S="0.01",
            TRIALWATCH_OUTBOX__BACKOFF_MAX_S="0.05",
        )
        self.engine = sa.create_engine(db_url)

    def run(self, *args: str) -> Run:
        result = trialwatch(*args, env=self.env, cwd=self.cwd)
        assert "Traceback" not in result.err, result.err
        return result

    def killed_run(self, failpoint: str, smtp: FakeSmtp) -> None:
        """``sync`` that must die by SIGKILL at ``failpoint`` (or in the SMTP window)."""
        env = dict(self.env)
        killer = None
        if failpoint in (SMTP_MAIL, SMTP_WINDOW):
            killer = _KillFromTheServer(smtp, "MAIL" if failpoint == SMTP_MAIL else "DATA")
        else:
            env["TRIALWATCH_FAILPOINTS"] = failpoint
        proc = spawn("sync", env=env, cwd=self.cwd)
        if killer is not None:
            killer.arm(proc.pid)
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"{failpoint}: never reached; the sync was still running after 60 s")
        finally:
            if killer is not None:
                killer.disarm()
        assert proc.returncode == -signal.SIGKILL, (
            f"{failpoint}: expected death by SIGKILL, got exit {proc.returncode}\n{out}\n{err}"
        )

    def recover(self, data_timestamp: str) -> tuple[int, dict[str, Any]]:
        """Plain ``sync`` until the installation is quiet (3 at most): how many it took, and
        what is still not quiet after the last.

        Quiet, read in the database: no run left ``running``, every notification sent, and the
        last complete run read ``data_timestamp`` (the next sync would have nothing to do).
        The loop ends with one more plain ``sync`` that must say so (see :func:`_loop`).
        """
        syncs, leftovers = 0, {"not synced": True}
        while leftovers and syncs < 3:
            run = self.run("sync")
            assert run.code == 0, run.out + run.err
            syncs += 1
            leftovers = self.leftovers(data_timestamp)
        return syncs, leftovers

    def events(self) -> list[Event]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT nct_id, field, item_key, old_json, new_json, to_version_id, "
                    "data_timestamp FROM change_event ORDER BY id"
                )
            ).all()
        return [
            Event(
                r.nct_id,
                r.field,
                r.item_key,
                json.loads(r.old_json) if r.old_json else None,
                json.loads(r.new_json) if r.new_json else None,
                r.to_version_id,
                r.data_timestamp,
            )
            for r in rows
        ]

    def leftovers(self, data_timestamp: str) -> dict[str, Any]:
        """Notifications not sent, runs not ended, registry data not read yet: a quiet
        installation has none."""
        with self.engine.connect() as conn:
            notes = conn.execute(
                sa.text(
                    "SELECT status, count(*) FROM notification WHERE status <> 'sent' "
                    "GROUP BY status"
                )
            ).all()
            runs = conn.execute(
                sa.text("SELECT count(*) FROM sync_run WHERE status = 'running'")
            ).scalar_one()
            read = conn.execute(
                sa.text(
                    "SELECT data_timestamp FROM sync_run WHERE status = 'complete' "
                    "ORDER BY id DESC LIMIT 1"
                )
            ).scalar_one_or_none()
        found: dict[str, Any] = {f"notification {s}": int(n) for s, n in notes}
        if runs:
            found["run running"] = int(runs)
        if read != data_timestamp:
            found["last complete run read"] = read
        return found


class _KillFromTheServer:
    """Kills the sender the first time the server is about to answer ``at`` (MAIL, or DATA
    after the final "." when the server has the message).

    SIGKILL is acted on before the process returns to user space, and the reply is only sent
    once the callback returns: the killed sender can never have read it.
    """

    def __init__(self, smtp: FakeSmtp, at: Stage) -> None:
        self.smtp = smtp
        self.at: Stage = at
        self.pid: int | None = None
        self.ready = threading.Event()
        self.fired = False
        smtp.before_reply(self._kill, at=at)

    def arm(self, pid: int) -> None:
        self.pid = pid
        self.ready.set()

    def disarm(self) -> None:
        self.smtp.before_reply(None, at=self.at)

    def _kill(self) -> None:
        if self.fired or not self.ready.wait(10) or self.pid is None:
            return
        self.fired = True
        os.kill(self.pid, signal.SIGKILL)


def changes_in(message: EmailMessage) -> list[tuple[str, str]]:
    """(trial, change summary) for every change line of the message's plain-text part."""
    body = message.get_body(preferencelist=("plain",))
    assert isinstance(body, EmailMessage)
    found: list[tuple[str, str]] = []
    trial = None
    for line in str(body.get_content()).splitlines():
        if section := _SECTION.match(line):
            trial = section.group(1)
        elif trial and (change := _CHANGE.match(line)):
            found.append((trial, change.group(1)))
    return found


def count(
    tally: Tally,
    published: list[Change],
    events: list[Event],
    data_timestamp: str,
    messages: list[ReceivedMessage],
    *,
    window: bool,
    reported: dict[tuple[Any, ...], int],
) -> None:
    """Count what the cycle lost and doubled (see the module docstring)."""
    cycle_events = [e for e in events if e.data_timestamp == data_timestamp]
    changed = {c.nct_id for c in published}
    transitions = {(c.nct_id, c.old, c.new) for c in published}
    for event in cycle_events:
        if event.nct_id not in changed or (
            event.field == "overall_status"
            and (event.nct_id, event.old, event.new) not in transitions
        ):
            tally.doubled += 1
            tally.notes.append(f"spurious event {event.nct_id} {event.field}: {event.new}")
    # One version's change recorded twice, whenever (the version id says which record it was).
    for key, n in Counter(
        (e.nct_id, e.field, e.item_key, json.dumps(e.new), e.to_version_id) for e in events
    ).items():
        if n > 1 and reported.get(key, 1) < n:
            tally.doubled += n - reported.get(key, 1)
            tally.notes.append(f"event recorded {n} times: {key}")
            reported[key] = n

    ids = Counter(str(received.message["Message-ID"]) for received in messages)
    tally.resent += sum(n - 1 for n in ids.values())
    lines: list[tuple[str, str, str]] = []  # (trial, summary, Message-ID)
    for received in messages:
        if list(received.rcpt_tos) != [RECIPIENT]:
            tally.notes.append(f"unexpected recipients {received.rcpt_tos}")
        message_id = str(received.message["Message-ID"])
        lines += [(t, s, message_id) for t, s in changes_in(received.message)]
    expected = {(c.nct_id, c.summary) for c in published}
    for trial, summary, _ in lines:
        if (trial, summary) not in expected:
            tally.doubled += 1
            tally.notes.append(f"unexpected email line {trial}: {summary}")

    for change in published:
        tally.changes += 1
        recorded = [
            e
            for e in cycle_events
            if (e.nct_id, e.field, e.old, e.new)
            == (change.nct_id, "overall_status", change.old, change.new)
        ]
        copies = [m for t, s, m in lines if (t, s) == (change.nct_id, change.summary)]
        messages_reporting = len(set(copies)) if window else len(copies)
        if not recorded or not copies:
            tally.lost += 1
            tally.notes.append(
                f"lost {change.summary} of {change.nct_id}: "
                f"{len(recorded)} events, {len(copies)} emails"
            )
        elif len(recorded) > 1 or messages_reporting > 1:
            tally.doubled += 1
            tally.notes.append(
                f"doubled {change.summary} of {change.nct_id}: "
                f"{len(recorded)} events, {len(copies)} emails ({len(set(copies))} Message-IDs)"
            )


def table(database: str, tallies: list[Tally], seconds: float) -> str:
    width = max(len(t.point) for t in tallies)
    rows = [
        f"crash-point loop on {database} ({seconds:.0f} s)",
        f"{'killed while':<{width}}  changes  lost  doubled  resent  recovery syncs",
    ]
    for t in tallies:
        rows.append(
            f"{t.point:<{width}}  {t.changes:>7}  {t.lost:>4}  {t.doubled:>7}  {t.resent:>6}"
            f"  {t.syncs:>14}"
        )
        rows += [f"    {note}" for note in t.notes]
    total_lost = sum(t.lost for t in tallies)
    total_doubled = sum(t.doubled for t in tallies)
    changes = sum(t.changes for t in tallies)
    rows.append(f"{'total':<{width}}  {changes:>7}  {total_lost:>4}  {total_doubled:>7}")
    rows.append("resent: messages received again, with the same Message-ID")
    return "\n".join(rows)


@pytest.mark.timeout(600)  # ~25 runs of the command per database
@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_no_change_is_lost_or_doubled_whenever_the_process_dies(
    database: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    api: FakeCtGov,
    smtp: FakeSmtp,
    record_property: Any,
) -> None:
    started = time.monotonic()
    db_url = (
        f"sqlite:///{tmp_path / 'data' / 'trialwatch.db'}"
        if database == "sqlite"
        else str(request.getfixturevalue("pg_schema_url"))
    )
    user = Installation(tmp_path, api, smtp, db_url)
    try:
        tallies = _loop(user, api, smtp)
    finally:
        user.engine.dispose()
    report = table(database, tallies, time.monotonic() - started)
    record_property(TABLE_PROPERTY, report)  # printed at the end of the session (conftest.py)
    assert sum(t.lost for t in tallies) == 0, report
    assert sum(t.doubled for t in tallies) == 0, report
    assert all(not t.notes for t in tallies), report


def _loop(user: Installation, api: FakeCtGov, smtp: FakeSmtp) -> list[Tally]:
    baseline = user.run("sync")
    assert baseline.code == 0, baseline.err
    assert smtp.messages == []  # a baseline notifies nobody
    watched = sorted(api.nct_ids)
    assert len(watched) == 13
    pages = [watched[i : i + BATCH] for i in range(0, len(watched), BATCH)]
    status = {i: api.study(i)["protocolSection"]["statusModule"]["overallStatus"] for i in watched}

    tallies: list[Tally] = []
    duplicates: dict[tuple[Any, ...], int] = {}  # doubled events already counted
    for cycle, (point, failpoints) in enumerate(POINTS):
        tally = Tally(point)
        # One status change on one trial of every page, so every page has something to write.
        published: list[Change] = []
        for page in pages:
            nct_id = page[cycle % len(page)]
            new = next(
                s for s in STATUSES[cycle % len(STATUSES) :] + STATUSES if s != status[nct_id]
            )
            published.append(Change(nct_id, status[nct_id], new))
            status[nct_id] = new
            api.update_study(nct_id, _set_status(new))
        before = len(smtp.messages)

        for failpoint in failpoints:
            user.killed_run(failpoint, smtp)
        tally.syncs, leftovers = user.recover(api.data_timestamp)
        if leftovers:
            tally.notes.append(f"not quiet after {tally.syncs} syncs: {leftovers}")
        count(
            tally,
            published,
            user.events(),
            api.data_timestamp,
            smtp.messages[before:],
            window=SMTP_WINDOW in failpoints,
            reported=duplicates,
        )
        tallies.append(tally)

    # Quiet means quiet: one more plain sync fetches nothing, records nothing, sends nothing.
    last = Tally("(after the loop: a plain sync)", syncs=1)
    events, messages = len(user.events()), len(smtp.messages)
    run = user.run("sync")
    if run.code != 0 or not run.out.startswith("Nothing to do") or "Delivered" in run.out:
        last.notes.append(f"a sync after recovery was not idle: {run.out}{run.err}")
    last.doubled = len(user.events()) - events + len(smtp.messages) - messages
    tallies.append(last)
    return tallies


def _set_status(status: str) -> Any:
    def mutate(record: dict[str, Any]) -> None:
        record["protocolSection"]["statusModule"]["overallStatus"] = status

    return mutate
