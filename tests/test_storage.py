"""Storage on SQLite and PostgreSQL: time, locks that die with their holder, outbox claims."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import FakeClock
from trialwatch.exceptions import ConcurrentUpdateError, DatabaseUnavailableError, LockHeldError
from trialwatch.outbox import claimer_is_dead, process_space
from trialwatch.storage import Notification, Store


def _queue(store: Store, now: datetime, key: str = "n1") -> Notification:
    with store.session() as s:
        n = Notification(
            key=key,
            created_at=now,
            channel="email",
            recipient="a@example.org",
            change_ids_json="[]",
            next_attempt_at=now,
        )
        s.add(n)
    [found] = [n for n in store.notifications() if n.key == key]
    return found


def test_datetimes_come_back_aware_utc(store: Store, clock: FakeClock) -> None:
    _queue(store, clock.now)
    [n] = store.notifications()
    assert n.created_at == clock.now
    assert n.created_at is not None and n.created_at.tzinfo is not None


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        _queue(store, datetime(2026, 1, 1))  # a naive datetime: the point of the test


def test_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(DatabaseUnavailableError, match="cannot use database") as info:
        Store.open("postgresql+psycopg://nobody:secret@127.0.0.1:1/nowhere")
    assert "secret" not in str(info.value)


def test_a_lock_is_exclusive_and_reusable(store: Store) -> None:
    first, second = store.lock("sync"), store.lock("sync")
    assert first.try_acquire()
    assert not second.try_acquire()
    assert not second.acquire(0.3)
    with pytest.raises(LockHeldError, match="already running a sync"), second.hold(0):
        pass
    first.release()
    with second.hold(0):
        assert second.held
    assert not second.held
    other_name = store.lock("daemon")
    assert other_name.try_acquire()  # names are independent
    other_name.release()


def test_a_lock_dies_with_its_holder(store: Store, db_url: str) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from trialwatch.storage import Store
                lock = Store.open({db_url!r}).lock("sync")
                assert lock.try_acquire()
                print("held", flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        lock = store.lock("sync")
        assert not lock.try_acquire()
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        assert lock.acquire(10)
        lock.release()
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def test_only_one_of_many_concurrent_claimers_wins(store: Store, clock: FakeClock) -> None:
    n = _queue(store, clock.now)
    winners: list[str] = []
    barrier = threading.Barrier(6)

    def claim(owner: str) -> None:
        barrier.wait()
        if store.claim(
            n,
            owner=owner,
            now=clock.now,
            until=clock.now + timedelta(minutes=5),
            stale=lambda _n: False,
        ):
            winners.append(owner)

    threads = [threading.Thread(target=claim, args=(f"host:{i}:x",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1


def test_claims_expire_or_pass_on_when_the_claimer_died(store: Store, clock: FakeClock) -> None:
    n = _queue(store, clock.now)
    lease = timedelta(minutes=5)
    assert store.claim(n, owner="a", now=clock.now, until=clock.now + lease, stale=lambda _n: False)
    [held] = store.notifications()
    assert not store.claim(
        held, owner="b", now=clock.now, until=clock.now + lease, stale=lambda _n: False
    )
    assert store.claim(
        held, owner="b", now=clock.now, until=clock.now + lease, stale=lambda _n: True
    )  # the claimer is known dead
    [held] = store.notifications()
    clock.advance(minutes=6)
    assert store.claim(
        held, owner="c", now=clock.now, until=clock.now + lease, stale=lambda _n: False
    )  # the lease ran out
    assert not store.mark_sent(n.id or 0, owner="b", now=clock.now)  # b lost it
    assert store.mark_sent(n.id or 0, owner="c", now=clock.now)
    [done] = store.notifications()
    assert done.status == "sent"
    assert done.claimed_by is None


def test_claimer_is_dead_only_judges_its_own_process_space() -> None:
    space = process_space()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    n = Notification(key="k", channel="email", recipient="x", claimed_by=f"{space}:{dead.pid}:ab")
    assert claimer_is_dead(n)
    n.claimed_by = f"{space}:{os.getpid()}:ab"
    assert not claimer_is_dead(n)
    # Same hostname, other boot or pid namespace (a container, a cloned VM): pids mean
    # nothing there, so only the lease can free the claim.
    n.claimed_by = f"0000000000000000:{dead.pid}:ab"
    assert not claimer_is_dead(n)


def test_failed_attempts_retry_then_dead_letter_and_requeue(store: Store, clock: FakeClock) -> None:
    n = _queue(store, clock.now)
    assert n.id is not None
    until = clock.now + timedelta(minutes=5)
    assert store.claim(n, owner="me", now=clock.now, until=until, stale=lambda _n: False)
    store.mark_failed(
        n.id,
        owner="me",
        error="451 try later",
        attempts=1,
        retry_at=clock.now + timedelta(minutes=1),
    )
    assert store.due_notifications(clock.now) == []
    clock.advance(minutes=2)
    [due] = store.due_notifications(clock.now)
    assert store.claim(due, owner="me", now=clock.now, until=until, stale=lambda _n: False)
    store.mark_failed(n.id, owner="me", error="550 no such user", attempts=2, retry_at=None)
    assert store.outbox_counts() == {"dead": 1}
    assert store.requeue_dead(clock.now) == 1
    [again] = store.due_notifications(clock.now)
    assert again.attempts == 0


def test_digests_fold_what_waits_each_time(store: Store, clock: FakeClock) -> None:
    def wait(key: str, ids: list[int]) -> None:
        with store.session() as s:
            s.add(
                Notification(
                    key=key,
                    created_at=clock.now,
                    channel="email",
                    recipient="a@example.org",
                    mode="daily",
                    status="digest_wait",
                    change_ids_json=json.dumps(ids),
                )
            )

    wait("w0", [1, 2])
    wait("w1", [2, 3])
    assert store.fold_digests("daily", now=clock.now) == 1
    assert store.fold_digests("daily", now=clock.now) == 0  # nothing waits any more
    [digest] = [n for n in store.notifications() if n.kind == "digest"]
    assert digest.change_ids == [1, 2, 3]
    assert digest.status == "pending"
    wait("w2", [4])  # arrives after the first digest, the same day
    assert store.fold_digests("daily", now=clock.now) == 1
    digests = [n for n in store.notifications() if n.kind == "digest"]
    assert [d.change_ids for d in digests] == [[1, 2, 3], [4]]
    assert len({d.key for d in digests}) == 2
    assert store.outbox_counts() == {"digested": 3, "pending": 2}


def test_concurrent_digest_folds_create_one_digest(store: Store, clock: FakeClock) -> None:
    with store.session() as s:
        for i in range(5):
            s.add(
                Notification(
                    key=f"w{i}",
                    created_at=clock.now,
                    channel="email",
                    recipient="a@example.org",
                    mode="weekly",
                    status="digest_wait",
                    change_ids_json=json.dumps([i]),
                )
            )
    barrier = threading.Barrier(4)
    created: list[int] = []
    errors: list[Exception] = []

    def fold() -> None:
        barrier.wait()
        try:
            created.append(store.fold_digests("weekly", now=clock.now))
        except ConcurrentUpdateError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=fold) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(created) == 1
    [digest] = [n for n in store.notifications() if n.kind == "digest"]
    assert digest.change_ids == [0, 1, 2, 3, 4]


def test_alert_transitions_queue_one_message_each(store: Store, clock: FakeClock) -> None:
    def render(unhealthy: bool, episode: str) -> dict[str, str]:
        return {"subject": f"{unhealthy}-{episode}", "text": "t", "html": "h"}

    args = {"recipient": "admin@example.org", "render": render}
    assert store.transition_alert(unhealthy=False, now=clock.now, **args) is None
    assert store.transition_alert(unhealthy=True, now=clock.now, **args) == "alert"
    clock.advance(minutes=1)
    assert store.transition_alert(unhealthy=True, now=clock.now, **args) is None
    assert store.transition_alert(unhealthy=False, now=clock.now, **args) == "recovery"
    assert store.transition_alert(unhealthy=False, now=clock.now, **args) is None
    assert sorted(n.kind for n in store.notifications()) == ["alert", "recovery"]


def test_a_new_sqlite_database_is_private(tmp_path: Path) -> None:
    """It holds who gets which alert: created 0600, in a folder created 0700."""
    path = tmp_path / "fresh" / "data" / "trialwatch.db"
    Store.open(f"sqlite:///{path}").close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    # An existing folder keeps the mode its owner gave it.
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    Store.open(f"sqlite:///{shared / 'tw.db'}").close()
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755


def test_a_read_only_folder_names_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "data"
    folder.mkdir(mode=0o500)
    real_access = os.access

    def access(path: str | os.PathLike[str], mode: int) -> bool:
        # Root may write anywhere: the folder's permissions are what a user would meet.
        if Path(path) == folder and mode & os.W_OK:
            return False
        return real_access(path, mode)

    monkeypatch.setattr("trialwatch.storage._engine.os.access", access)
    try:
        with pytest.raises(DatabaseUnavailableError, match=rf"{folder} is not writable"):
            Store.open(f"sqlite:///{folder / 'tw.db'}")
        assert not (folder / "tw.db").exists()
    finally:
        folder.chmod(0o700)


def test_an_unusable_folder_is_named_not_unable_to_open_database_file(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("not a folder", encoding="utf-8")
    with pytest.raises(
        DatabaseUnavailableError,
        match=rf"cannot create the database folder "
        rf"{blocker / 'db'}",
    ):
        Store.open(f"sqlite:///{blocker / 'db' / 'tw.db'}")
