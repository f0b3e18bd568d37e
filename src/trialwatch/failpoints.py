"""Failpoints: named places where a test can make this process die as ``kill -9`` would.

``TRIALWATCH_FAILPOINTS="sync.page_committed:2,deliver.before_send"`` makes the process SIGKILL
itself the 2nd time it passes ``sync.page_committed`` (the 1st time when no count is given).
Used by the crash-point loop (tests/test_crash_loop.py) to prove that whatever instant the
process dies at, no detected change is lost or doubled. Unset (always, outside tests), a
failpoint costs one truth test.
"""

from __future__ import annotations

import os
import signal

ENV = "TRIALWATCH_FAILPOINTS"


def _parse(spec: str) -> dict[str, int]:
    points: dict[str, int] = {}
    for item in spec.split(","):
        name, _, count = item.strip().partition(":")
        if name:
            points[name] = int(count) if count.isdigit() else 1
    return points


_POINTS = _parse(os.environ.get(ENV, ""))
_HITS: dict[str, int] = {}


def failpoint(name: str) -> None:
    """Die here (SIGKILL, no cleanup, no flush) if the environment asks for it."""
    if not _POINTS or name not in _POINTS:
        return
    _HITS[name] = _HITS.get(name, 0) + 1
    if _HITS[name] == _POINTS[name]:
        os.kill(os.getpid(), signal.SIGKILL)
