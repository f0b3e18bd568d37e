"""Records prepared on the other cores: a pool of worker processes for a large sync.

Three quarters of a first sync's CPU time is pure work on each record's bytes — parse, normalize,
hash, compress (:func:`trialwatch.prepare.prepare_one`) — which another process does as well as
this one, while this one fetches pages and writes them. :class:`PreparePool` is a
:data:`~trialwatch.prepare.Preparer`: a page with fewer than ``min_parallel`` records to prepare (a
13-trial watch set, a quiet day) is prepared here and no process is started; a larger one is
shared out between the workers and this process (which takes a smaller share: it also fetches
and writes), and the answers come back in order. The sync hands page k+1 out before it writes
page k, so the workers prepare while this process writes.

The workers start at the first large page (``spawn``: safe beside the daemon's threads; about a
third of a second) and stop when the sync ends. Nothing a worker does touches the database or
the network, so a worker that dies costs time, not correctness: the page is prepared here again
and the rest of the sync goes on without the pool. A worker whose parent is killed (``kill -9``)
notices within half a second and exits: no orphans.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType
from typing import Any, Final, Self

from trialwatch.prepare import Prepared, prepare_all, prepare_here

__all__ = ["CHUNK", "MIN_PARALLEL", "PreparePool", "default_workers"]


# Below this many records a page is prepared here: starting a process (~0.3 s) or shipping the
# records to it would cost more than it saves.
MIN_PARALLEL: Final = 64
CHUNK: Final = 64  # records per share handed to a worker
MAX_AUTO_WORKERS: Final = 4
_PARENT_CHECK_S: Final = 0.5


def default_workers() -> int:
    """Worker processes for ``[sync] workers = "auto"``: one per core but this process's, at
    most :data:`MAX_AUTO_WORKERS`; 0 on a single core."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(0, min(MAX_AUTO_WORKERS, cores - 1))


class PreparePool:
    """A :data:`~trialwatch.prepare.Preparer` that shares large pages out to worker processes.

    ``with PreparePool(workers=1) as prepare: run_sync(..., prepare=prepare)``. ``workers=0``
    prepares everything in this process.
    """

    def __init__(self, workers: int, *, min_parallel: int = MIN_PARALLEL) -> None:
        if workers < 0:
            raise ValueError(f"workers must be >= 0, got {workers}")
        self._workers = workers
        self._min_parallel = max(1, min_parallel)
        self._executor: ProcessPoolExecutor | None = None
        self._broken = False
        # Whether a worker has answered yet: until then they are still starting (a new
        # interpreter importing, ~0.5 s), and this process does not wait for them.
        self._warm = False

    @property
    def started(self) -> bool:
        """Whether worker processes were started (only a large page starts them)."""
        return self._executor is not None

    @property
    def warm(self) -> bool:
        """Whether a worker has answered a share yet (until then they are starting up)."""
        return self._warm

    def warm_up(self) -> None:
        """Start the workers now, before the first page arrives (a sync of several pages calls
        this once it knows): a page from CT.gov takes a second or two, a worker ~0.3 s to
        start, so the first page's shares find it ready. Harmless when there are none."""
        if self._workers == 0 or self._broken or self._executor is not None:
            return
        try:
            with _sigint_blocked():
                self._start().submit(int).add_done_callback(self._answered_nothing)
        except (BrokenProcessPool, RuntimeError, OSError) as exc:
            self._give_up(exc)

    def _answered_nothing(self, future: Future[int]) -> None:
        if not future.cancelled() and future.exception() is None:
            self._warm = True

    def __call__(self, jobs: Sequence[bytes]) -> Callable[[], list[Prepared | str]]:
        """Start preparing ``jobs``; the function returned gives the answers, in order.

        The workers get their shares at once; this process prepares its own (a smaller one: it
        also fetches and writes) when the answers are asked for, by which time the sync has
        fetched the next page and handed it out too.
        """
        if self._workers == 0 or self._broken or len(jobs) < self._min_parallel:
            return prepare_here(jobs)
        mine = len(jobs) // (2 * self._workers + 2)
        # In shares of at most CHUNK records: a share waits pickled in this process until a
        # worker takes it, and its answers arrive pickled; small shares keep both small.
        size = min(CHUNK, math.ceil((len(jobs) - mine) / self._workers))
        # Each share is kept here until a worker has answered it, to be prepared here should
        # the worker die first; then it is let go of (the records of a page live as long as
        # they are needed, not until the page is decided).
        shares: dict[Future[list[Prepared | str]], Sequence[bytes]] = {}

        def answered(future: Future[list[Prepared | str]]) -> None:
            if not future.cancelled() and future.exception() is None:
                shares.pop(future, None)
                self._warm = True

        try:
            # The workers are spawned by the first submit. SIGINT is blocked meanwhile, and the
            # workers inherit the mask: a Ctrl-C while one is still starting (importing, before
            # its initializer can ignore it) stays pending in it, and is dropped there by
            # _worker_init; here it is delivered when the mask is restored.
            with _sigint_blocked():
                executor = self._executor or self._start()
                futures: list[Future[list[Prepared | str]]] = []
                for start in range(mine, len(jobs), size):
                    share = jobs[start : start + size]
                    future = executor.submit(prepare_all, share)
                    shares[future] = share
                    future.add_done_callback(answered)  # at once when already answered
                    futures.append(future)
        except (BrokenProcessPool, RuntimeError, OSError) as exc:
            # A worker died since the last page (the OOM killer?), or none could start.
            self._give_up(exc)
            return prepare_here(jobs)
        held = [jobs[:mine]]

        def answers() -> list[Prepared | str]:
            # Given once (see Preparer): the records and the futures' answers are let go.
            prepared = prepare_all(held.pop())
            # Then the shares no worker has taken yet, from the last back: this process helps
            # rather than waits whenever the workers are behind (their start, a slow page).
            stolen: dict[Future[list[Prepared | str]], list[Prepared | str]] = {}
            for future in reversed(futures):
                if not future.cancel():
                    break  # taken: every earlier share is taken too (they go in order)
                stolen[future] = prepare_all(shares[future])
            try:
                for future in futures:
                    if future in stolen:
                        prepared.extend(stolen.pop(future))
                        continue
                    # A share already taken by a worker that has answered nothing yet (still
                    # starting) is prepared here too rather than waited for: the same answer,
                    # and the worker's, when it comes, is dropped.
                    share = None if self._warm or future.done() else shares.get(future)
                    if share is not None:
                        future.cancel()
                        prepared.extend(prepare_all(share))
                        continue
                    try:
                        prepared.extend(future.result())
                    except BrokenProcessPool as exc:
                        if not self._broken:
                            self._give_up(exc)
                        prepared.extend(prepare_all(shares[future]))
            finally:
                futures.clear()
                shares.clear()
            return prepared

        return answers

    def _start(self) -> ProcessPoolExecutor:
        self._executor = ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init,
            initargs=(os.getpid(),),
        )
        _log().info("workers.started", workers=self._workers)
        return self._executor

    def _give_up(self, exc: BaseException) -> None:
        """No more workers for this sync: the rest is prepared here (slower, not wrong)."""
        _log().warning("workers.broken", error=str(exc) or type(exc).__name__)
        self._broken = True
        self.close()

    def close(self) -> None:
        """Stop the workers (what they were given is dropped); harmless when none started."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _worker_init(parent: int) -> None:
    """In a worker: leave Ctrl-C to the syncing process (a terminal sends it to the whole
    process group; the sync stops the pool itself, and a worker would print a traceback), and
    exit as soon as that process is gone (even by kill -9, which leaves a worker waiting for
    work forever)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Started with SIGINT blocked (see PreparePool.__call__): one sent meanwhile is dropped now.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="trialwatch-parent-watch", daemon=True).start()


def _log() -> Any:
    """This module's logger, for the syncing process (which has structlog loaded already). A
    worker process imports this module for :func:`_worker_init` and never logs: importing
    structlog there (with rich, which its console renderer loads) would cost each worker
    ~0.1 s of its start."""
    import structlog

    return structlog.get_logger("trialwatch.workers")
