"""Records prepared by worker processes are the records prepared here, whatever happens to
the workers: the same answers in the same order, a dead worker costs only time, and a worker
whose parent is killed does not outlive it."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FakeClock
from tests.fakes.ctgov_server import load_records
from tests.fakes.source import FakeSource
from tests.records import change_events, distinct_records, edit_status
from trialwatch import rawcodec
from trialwatch.models import WatchItem
from trialwatch.prepare import Prepared, prepare_all, prepare_here
from trialwatch.storage import Store
from trialwatch.sync import run_sync
from trialwatch.workers import CHUNK, PreparePool, default_workers

REPO = Path(__file__).resolve().parent.parent


def _jobs() -> list[bytes]:
    records = load_records()
    bodies = [json.dumps(r).encode() for r in records]
    # One of each kind of unreadable record among them: not JSON, not an object, no status.
    broken = [b"{not json", b"[1, 2]", json.dumps({"protocolSection": {}}).encode()]
    return bodies * 6 + broken


def test_workers_answer_what_this_process_answers_in_order() -> None:
    jobs = _jobs()
    with PreparePool(workers=2, min_parallel=1) as pool:
        answers = pool(jobs)()
        assert pool.started
    assert answers == prepare_all(jobs)
    assert [isinstance(a, str) for a in answers[-3:]] == [True, True, True]
    first = answers[0]
    assert isinstance(first, Prepared) and rawcodec.decompress(first.raw) == jobs[0]


def test_a_prepared_record_crosses_the_process_boundary_whole() -> None:
    """Prepared pickles by its values (its own __reduce__): every field must come back, the
    ones a new field would add included."""
    import dataclasses
    import pickle

    values = {f.name: f"{f.name}-value" for f in dataclasses.fields(Prepared)}
    values.update(canonical=b'{"x": 1}', raw=b"\x28\xb5\x2f\xfd")
    prepared = Prepared(**values)
    assert pickle.loads(pickle.dumps(prepared)) == prepared  # noqa: S301 - our own bytes


def test_a_small_page_starts_no_process() -> None:
    jobs = _jobs()[:5]
    with PreparePool(workers=2) as pool:
        assert pool(jobs)() == prepare_here(jobs)()
        assert not pool.started


def test_no_workers_means_this_process_only() -> None:
    jobs = _jobs()
    with PreparePool(workers=0, min_parallel=1) as pool:
        assert pool(jobs)() == prepare_all(jobs)
        assert not pool.started
    with pytest.raises(ValueError, match="workers"):
        PreparePool(workers=-1)


def _warmed(pool: PreparePool, jobs: list[bytes]) -> None:
    """Until a worker has answered: this process does not wait for one that is starting."""
    deadline = time.monotonic() + 60
    while not pool.warm and time.monotonic() < deadline:
        assert pool(jobs[:10])() == prepare_all(jobs[:10])
        time.sleep(0.05)
    assert pool.warm


def test_a_worker_killed_mid_way_costs_time_not_answers() -> None:
    # Enough for the worker to be busy still when it is killed (~0.15 s of shares), even
    # when this process is descheduled between the hand-out and the kill.
    jobs = _jobs() * 60
    with PreparePool(workers=1, min_parallel=1) as pool:
        _warmed(pool, jobs)  # the worker is up
        executor = pool._executor  # to find the worker to kill
        assert executor is not None
        (worker,) = executor._processes
        answers = pool(jobs)
        os.kill(worker, signal.SIGKILL)
        assert answers() == prepare_all(jobs)
        assert not pool.started  # the pool is given up: the rest is prepared here
        assert pool(jobs[:10])() == prepare_all(jobs[:10])


def test_a_worker_dead_between_two_pages_costs_time_not_the_sync() -> None:
    """In the order the pipelined sync uses: page k+1 is handed out before page k's answers
    are read, so a worker that died in between fails the hand-out, not only the answers."""
    jobs = _jobs() * 5
    with PreparePool(workers=1, min_parallel=1) as pool:
        _warmed(pool, jobs)
        first = pool(jobs)
        executor = pool._executor
        assert executor is not None
        (worker,) = executor._processes
        assert first() == prepare_all(jobs)
        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + 30  # until the pool knows: then the hand-out itself fails
        while not executor._broken and time.monotonic() < deadline:
            time.sleep(0.05)
        assert executor._broken
        second = pool(jobs)
        third = pool(jobs[:7])
        assert second() == prepare_all(jobs)
        assert third() == prepare_all(jobs[:7])
        assert not pool.started


class _GateFuture(Future[Any]):
    """A share's future whose answer, once asked for, lets the held worker go on."""

    def __init__(self, gate: threading.Event) -> None:
        super().__init__()
        self._gate = gate

    def result(self, timeout: float | None = None) -> Any:
        self._gate.set()
        return super().result(timeout)


class _HeldWorker(Executor):
    """One worker thread that takes shares in order, as a process pool's worker does. It
    answers the first ``free`` shares at once, then is held in the next until this process asks
    for an answer (or the pool stops): by then every later share is still waiting."""

    def __init__(self, free: int = 0) -> None:
        self.gate = threading.Event()
        self.holding = threading.Event()  # held in a share now
        self.free = free
        self.ran: list[int] = []
        self._queue: queue.Queue[tuple[_GateFuture, Callable[..., Any], tuple[Any, ...]] | None]
        self._queue = queue.Queue()
        self._thread = threading.Thread(target=self._work, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> _GateFuture:
        future = _GateFuture(self.gate)
        self._queue.put((future, fn, args))
        return future

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue  # taken back by the syncing process
            if len(self.ran) == self.free:
                self.gate.clear()  # an earlier answer asked for does not let this one go
                self.holding.set()
                self.gate.wait(timeout=30)
            self.ran.append(len(args[0]))
            future.set_result(fn(*args))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.gate.set()
        self._queue.put(None)
        if wait:
            self._thread.join(timeout=30)


def _held_pool(held: _HeldWorker) -> PreparePool:
    class Pool(PreparePool):
        def _start(self) -> Any:
            self._executor = held  # type: ignore[assignment]
            return held

    return Pool(workers=1, min_parallel=1)


def test_this_process_takes_the_shares_a_busy_worker_has_not_started() -> None:
    """A worker busy with a share (a slow page) leaves the rest of the page to this process,
    which prepares them rather than waiting; the answers are the same, in order."""
    jobs = _jobs() * 20
    held = _HeldWorker(free=1)
    with _held_pool(held) as pool:
        first = pool(jobs[:10])  # one share, answered at once
        deadline = time.monotonic() + 30
        while not pool.warm and time.monotonic() < deadline:
            time.sleep(0.01)
        assert first() == prepare_all(jobs[:10])
        page = pool(jobs)
        assert held.holding.wait(timeout=30)
        answers = page()
        assert held.ran == [8, CHUNK]  # then the share it had started, and no other
    assert answers == prepare_all(jobs)


def test_a_worker_still_starting_is_not_waited_for() -> None:
    """Until a worker has answered anything (a new interpreter takes ~0.5 s to start), even
    the shares it has already taken are prepared here: the page does not wait for it."""
    jobs = _jobs() * 20
    held = _HeldWorker(free=0)
    with _held_pool(held) as pool:
        page = pool(jobs)
        assert held.holding.wait(timeout=30)
        answers = page()
        assert held.ran == []  # nothing was waited for: the held share is still held
        assert not pool.warm
    assert answers == prepare_all(jobs)


def test_ctrl_c_is_left_to_the_syncing_process() -> None:
    """A terminal's Ctrl-C reaches the whole process group: the workers leave it to the sync
    (which stops them), rather than die mid-page with a traceback."""
    jobs = _jobs()
    with PreparePool(workers=1, min_parallel=1) as pool:
        assert pool(jobs)() == prepare_all(jobs)
        executor = pool._executor
        assert executor is not None
        (worker,) = executor._processes
        os.kill(worker, signal.SIGINT)  # pending before the worker reads its next job
        assert pool(jobs)() == prepare_all(jobs)
        assert pool.started  # the same worker answered: not broken, not replaced
        assert list(executor._processes) == [worker]


def test_ctrl_c_while_a_worker_starts_prints_no_traceback(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The worker is still importing (spawn: a new interpreter, before its initializer runs)
    when the terminal's Ctrl-C reaches it: it must neither die nor print a traceback."""
    jobs = _jobs()
    with PreparePool(workers=2, min_parallel=1) as pool:
        answers = pool(jobs)
        executor = pool._executor
        assert executor is not None
        for worker in list(executor._processes):
            os.kill(worker, signal.SIGINT)  # within milliseconds of the spawn
        assert answers() == prepare_all(jobs)
        assert pool.started  # no worker died: the pool was not given up
    err = capfd.readouterr().err
    assert "KeyboardInterrupt" not in err and "Traceback" not in err, err


def test_workers_do_not_outlive_a_killed_parent(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import json, os, signal, sys
        from tests.fakes.ctgov_server import load_records
        from trialwatch.workers import PreparePool

        pool = PreparePool(workers=2, min_parallel=1)
        jobs = [json.dumps(r).encode() for r in load_records()] * 4
        pool(jobs)()
        print(json.dumps(sorted(pool._executor._processes)), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == -signal.SIGKILL, run.stderr
    workers = json.loads(run.stdout.splitlines()[-1])  # after any log line
    assert workers
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init) counts as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def test_auto_leaves_a_core_to_this_process() -> None:
    workers = default_workers()
    assert 0 <= workers <= 4
    assert workers == max(0, min(4, len(os.sched_getaffinity(0)) - 1))


def test_a_sync_with_workers_records_what_a_sync_without_records(tmp_path: Path) -> None:
    """Across pages (pipelined by one): baselines, changes and an unreadable record alike."""

    def run(pool: PreparePool | None, name: str) -> tuple[list[Any], list[Any]]:
        records = distinct_records(40)
        source = FakeSource(records)
        store = Store.open(f"sqlite:///{tmp_path / name}.db")
        clock = FakeClock()
        watch = [WatchItem(nct_id=_id(r)) for r in records]
        results = []
        try:
            for day in ("2026-11-20", "2026-11-21"):
                if day == "2026-11-21":  # a day of edits, and one record gone bad
                    for i, nct in enumerate(sorted(source.records)[::3]):
                        edit_status(source, nct, "COMPLETED" if i % 2 else "SUSPENDED", day)
                    broken = sorted(source.records)[1]
                    source.records[broken]["protocolSection"]["statusModule"] = "garbled"
                source.data_timestamp = f"{day}T09:00:06"
                result = run_sync(
                    source=source,
                    store=store,
                    clock=clock,
                    watchlist=watch,
                    batch_size=7,
                    prepare=pool,
                )
                results.append((result.checked, result.changed, result.baselined, result.failed))
                clock.advance(days=1)
            return results, change_events(store)
        finally:
            store.close()

    with PreparePool(workers=1, min_parallel=2) as pool:
        with_workers = run(pool, "pool")
        assert pool.started
    assert with_workers == run(None, "here")
    (first, second), events = with_workers
    assert first[2] == 40 and second[1] > 0 and len(second[3]) == 1 and events


def _id(record: dict[str, Any]) -> str:
    return str(record["protocolSection"]["identificationModule"]["nctId"])


def test_a_run_of_one_page_starts_no_worker(tmp_path: Path) -> None:
    """A day's incremental sync or a recheck is one page: a worker takes longer to start than
    such a page takes to prepare, so none is started; a run of two pages starts one."""
    records = distinct_records(12)
    for batch_size, starts in ((12, False), (11, True)):
        store = Store.open(f"sqlite:///{tmp_path / f'pages-of-{batch_size}.db'}")
        try:
            with PreparePool(workers=1, min_parallel=2) as pool:
                result = run_sync(
                    source=FakeSource(records),
                    store=store,
                    clock=FakeClock(),
                    watchlist=[WatchItem(nct_id=_id(r)) for r in records],
                    batch_size=batch_size,
                    prepare=pool,
                )
                assert pool.started is starts
            assert result.checked == 12 and result.baselined == 12
        finally:
            store.close()


def test_a_first_sync_of_several_pages_starts_its_workers_before_its_first_page(
    tmp_path: Path,
) -> None:
    """The first page of a first sync finds its workers started (CT.gov takes a second or two
    a page); later syncs start them only for a page with enough moved records."""
    calls: list[str] = []

    class Recording:
        def warm_up(self) -> None:
            calls.append("warm up")

        def __call__(self, jobs: Any) -> Any:
            calls.append(f"prepare {len(jobs)}")
            return prepare_here(jobs)

    records = distinct_records(12)
    store = Store.open(f"sqlite:///{tmp_path / 'warm.db'}")
    try:
        for _ in range(2):
            run_sync(
                source=FakeSource(records),
                store=store,
                clock=FakeClock(),
                watchlist=[WatchItem(nct_id=_id(r)) for r in records],
                batch_size=5,
                force=True,
                prepare=Recording(),
            )
    finally:
        store.close()
    assert calls == ["warm up", "prepare 5", "prepare 5", "prepare 2"] + ["prepare 0"] * 3


def test_warming_up_starts_a_worker_that_then_answers() -> None:
    jobs = _jobs() * 5
    with PreparePool(workers=0) as none:
        none.warm_up()  # no workers: nothing to start
        assert not none.started
    with PreparePool(workers=1, min_parallel=1) as pool:
        pool.warm_up()
        assert pool.started
        deadline = time.monotonic() + 60
        while not pool.warm and time.monotonic() < deadline:
            time.sleep(0.02)
        assert pool.warm  # started, and answering before any page was given
        assert pool(jobs)() == prepare_all(jobs)
