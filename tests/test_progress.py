"""The progress bar of long syncs: on a terminal (or when asked), never in logs or pipes."""

from __future__ import annotations

import io
import sys

import pytest

from trialwatch.cli._sync import PROGRESS_ABOVE, _progress
from trialwatch.sync import Progress


def test_no_bar_when_not_on_a_terminal_or_never(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a pipe: JSON logs go there
    with _progress("auto") as update:
        assert update is None
    with _progress("never") as update:
        assert update is None
    assert sys.stderr.getvalue() == ""


def test_a_bar_for_long_syncs_only(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    with _progress("always") as update:
        assert update is not None
        update(Progress(pages=1, studies=13, total=13))  # a small sync: nothing drawn
    assert err.getvalue() == ""
    with _progress("always") as update:
        assert update is not None
        for page in range(1, 5):
            update(Progress(pages=page, studies=page * 500, total=PROGRESS_ABOVE * 10))
    drawn = err.getvalue()
    assert "syncing" in drawn and "2000/3000" in drawn
