"""Shared fixtures: databases (SQLite always, PostgreSQL when configured), clocks, data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.fakes.ctgov_server import FakeCtGov
from tests.fakes.smtp_server import FakeSmtp
from trialwatch.storage import Store

DATA = Path(__file__).parent / "data"
RECORDS = DATA / "records"
SELINEXOR = DATA / "selinexor"
PG_ENV = "TRIALWATCH_TEST_DATABASE_URL"


def load_record(name: str) -> dict[str, Any]:
    path = RECORDS / name if (RECORDS / name).exists() else SELINEXOR / name
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def selinexor_records() -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(SELINEXOR.glob("NCT*.json"))]


class FakeClock:
    """A clock the test moves by hand; returns aware UTC datetimes."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 23, 14, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _pg_url() -> str | None:
    return os.environ.get(PG_ENV) or None


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    base = _pg_url()
    if base is None:
        pytest.skip(
            f"PostgreSQL tests need {PG_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1/test)"
        )
    schema = f"tw_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'trialwatch.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture
def api() -> Iterator[FakeCtGov]:
    """The CT.gov stand-in on loopback, serving the review's 13 trials (modules may override)."""
    with FakeCtGov.load_dir(SELINEXOR) as fake:
        yield fake


@pytest.fixture
def smtp() -> Iterator[FakeSmtp]:
    """A real SMTP server on loopback."""
    with FakeSmtp() as server:
        yield server


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store.open(db_url)
    yield s
    s.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the crash-point loop's tables (tests/test_crash_loop.py) after the run, whatever
    its outcome: a test's own output would be lost when it runs on an xdist worker."""
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", None) != "call":
                continue
            for name, value in getattr(report, "user_properties", ()):
                if name == "crash_loop_table":
                    terminalreporter.write_line("")
                    terminalreporter.write_line(str(value))


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM files), for real TLS servers
    on loopback: SMTP over TLS, the registry's history over https."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a test certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
