"""Helpers to run the real ``trialwatch`` command as a user would, against loopback fakes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHIPPED_CONFIG = REPO / "config" / "trialwatch.toml"
TRIALWATCH = Path(sys.executable).parent / "trialwatch"


@dataclass
class Run:
    code: int
    out: str
    err: str


def user_env(api_url: str, db_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a user pointing the shipped config at loopback stand-ins."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIALWATCH_")}
    env.update(
        {
            "TRIALWATCH_CONFIG": str(SHIPPED_CONFIG),
            "TRIALWATCH_API__BASE_URL": api_url,
            "TRIALWATCH_API__MIN_INTERVAL_S": "0",
            "TRIALWATCH_API__BACKOFF_INITIAL_S": "0.01",
            "TRIALWATCH_API__BACKOFF_MAX_S": "0.05",
            "TRIALWATCH_API__TIMEOUT_S": "5",
            "TRIALWATCH_DATABASE__URL": f"sqlite:///{db_path}",
            "TRIALWATCH_LOGGING__FORMAT": "json",
        }
    )
    env.update(extra)
    return env


def trialwatch(*args: str, env: Mapping[str, str], cwd: Path, timeout: float = 60) -> Run:
    proc = subprocess.run(
        [str(TRIALWATCH), *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def spawn(*args: str, env: Mapping[str, str], cwd: Path) -> subprocess.Popen[str]:
    """Start the command and return at once, so the test has its pid (to kill it at an instant
    of its choosing). Read its output and exit code with ``communicate()``."""
    return subprocess.Popen(
        [str(TRIALWATCH), *args],
        env=dict(env),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def sqlite_dump(db_path: Path) -> str:
    """Every row of the database as SQL text: equal dumps mean nothing was written."""
    conn = sqlite3.connect(db_path)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()
