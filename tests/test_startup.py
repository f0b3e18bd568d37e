"""The command starts fast because it imports only what the command needs (issue 12).

Timings are measured by benchmarks/bench_startup.py, never asserted here; what the tests hold
is the import graph that makes them: --version and --help load no database, HTTP or template
library, and `status` loads no HTTP, mail or template library.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HEAVY = ("sqlalchemy", "sqlmodel", "httpx", "jinja2", "pydantic", "alembic", "smtplib", "rich")


def _modules_after(argv: list[str], cwd: Path) -> set[str]:
    code = textwrap.dedent(
        f"""
        import json, sys
        from trialwatch.cli import main
        sys.argv = ["trialwatch", *{argv!r}]
        try:
            main()
        except SystemExit:
            pass
        sys.stderr.write("MODULES" + json.dumps(sorted(sys.modules)) + "\\n")
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=False
    )
    line = next(x for x in run.stderr.splitlines() if x.startswith("MODULES"))
    return {m.split(".")[0] for m in json.loads(line[len("MODULES") :])}


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["sync", "--help"]])
def test_version_and_help_import_no_heavy_library(argv: list[str], tmp_path: Path) -> None:
    loaded = _modules_after(argv, tmp_path)
    heavy = set(HEAVY)
    if argv[0] != "--version" and argv != ["--help"]:
        heavy.discard("pydantic")  # typer's own help of a command's options imports it
    assert not loaded & heavy, sorted(loaded & heavy)


def _trialwatch(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trialwatch", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def test_status_takes_the_light_road_on_a_sqlite_file(tmp_path: Path) -> None:
    """Issue 21: on a SQLite database whose config watches are applied, ``status`` reads it
    over the standard library's sqlite3: no SQLAlchemy, SQLModel or structlog is imported."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "trialwatch.toml").write_text(
        '[[watchlist]]\nnct_id = "NCT02606461"\nlabel = "SEAL"\n', encoding="utf-8"
    )
    assert _trialwatch(["db", "upgrade"], tmp_path).returncode == 0  # makes the database
    assert _trialwatch(["status"], tmp_path).returncode == 0  # applies the config
    loaded = _modules_after(["status"], tmp_path)
    heavy = {"sqlalchemy", "sqlmodel", "structlog", "httpx", "jinja2", "smtplib", "alembic"}
    assert not loaded & heavy, sorted(loaded & heavy)
    shown = _trialwatch(["status"], tmp_path)
    assert "NCT02606461  SEAL" in shown.stdout, shown.stdout + shown.stderr


def test_status_takes_the_full_road_when_the_config_changed(tmp_path: Path) -> None:
    """A trial just added to the config file is applied first (the app does it), then shown:
    the light road declines rather than show a watch set the config no longer has."""
    config = tmp_path / "config" / "trialwatch.toml"
    config.parent.mkdir()
    config.write_text('[[watchlist]]\nnct_id = "NCT02606461"\n', encoding="utf-8")
    assert _trialwatch(["db", "upgrade"], tmp_path).returncode == 0
    assert _trialwatch(["status"], tmp_path).returncode == 0
    config.write_text(
        '[[watchlist]]\nnct_id = "NCT02606461"\n[[watchlist]]\nnct_id = "NCT03110562"\n'
        'label = "BOSTON"\n',
        encoding="utf-8",
    )
    loaded = _modules_after(["status"], tmp_path)
    assert "sqlalchemy" in loaded  # the app applied the config's watch list
    assert not loaded & {"httpx", "jinja2", "smtplib", "alembic"}, sorted(
        loaded & {"httpx", "jinja2", "smtplib", "alembic"}
    )
    shown = _trialwatch(["status"], tmp_path)
    assert "NCT03110562  BOSTON" in shown.stdout, shown.stdout + shown.stderr


PURE_CORE = (
    "trialwatch.normalize",
    "trialwatch.diff",
    "trialwatch.routing",
    "trialwatch.messages",
    "trialwatch.records",
    "trialwatch.period",
    "trialwatch.pages",
    "trialwatch.export",
    "trialwatch.health",
    "trialwatch.history",
    "trialwatch.discovery",
    "trialwatch.importtext",
    "trialwatch.timeline",
    "trialwatch.feeds",
    "trialwatch.sync",
    "trialwatch.decision",
    "trialwatch.prepare",
)


@pytest.mark.parametrize("module", PURE_CORE)
def test_the_pure_core_imports_no_database_http_or_mail_library(module: str) -> None:
    code = (
        f"import sys, json; import {module}; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(run.stdout))
    assert not loaded & {"sqlalchemy", "sqlmodel", "httpx", "smtplib", "alembic"}, module


def test_version_names_this_release_wherever_it_is_read(tmp_path: Path) -> None:
    # One place writes the version (trialwatch/__init__.py; pyproject reads it through hatch):
    # the command, the installed package's metadata and the changelog's newest entry agree.
    import importlib.metadata
    import re

    import trialwatch

    run = subprocess.run(
        [sys.executable, "-m", "trialwatch", "--version"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.stdout == f"trialwatch {trialwatch.__version__}\n"
    assert importlib.metadata.version("trialwatch") == trialwatch.__version__
    changelog = (Path(__file__).resolve().parent.parent / "CHANGELOG.md").read_text()
    assert re.findall(r"^## (\S+)", changelog, re.MULTILINE)[0] == trialwatch.__version__


# What pip writes as the console script (its entry point, pyproject's [project.scripts]), with
# a sync's worker pool in place of the command: spawn runs this script again in each worker.
_CONSOLE_SCRIPT = """
import re
import sys
from trialwatch.__main__ import main
if __name__ == '__main__':
    from trialwatch.workers import PreparePool
    with PreparePool(workers=1) as pool:
        executor = pool._start()
        print(executor.submit(eval, "sorted(__import__('sys').modules)").result(timeout=120))
"""


def test_a_worker_process_imports_neither_the_command_line_nor_structlog(
    tmp_path: Path,
) -> None:
    """A worker only prepares records: the command line it was started from (typer, every
    command module) and the logging library are not its start-up's to pay."""
    script = tmp_path / "trialwatch"
    script.write_text(_CONSOLE_SCRIPT)
    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=180
    )
    loaded = set(eval(run.stdout.strip().splitlines()[-1]))  # noqa: S307 - our own output
    assert "trialwatch.prepare" in loaded and "trialwatch.workers" in loaded
    heavy = {"trialwatch.cli", "typer", "structlog", "rich", "sqlalchemy", "httpx"} & loaded
    assert not heavy


def test_the_command_leaves_its_objects_out_of_the_shutdown_collection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The interpreter's last garbage collections walk every live object (0.3 to 0.5 s of each
    command); the entry point freezes them first, whether the command succeeds or exits."""
    import gc

    import trialwatch.__main__
    import trialwatch.cli
    from trialwatch.cli import _common

    def command() -> None:
        raise SystemExit(2)

    monkeypatch.setattr(trialwatch.cli, "main", command)
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))  # main() adds its finder
    # main() marks the process as the command's own: undone after the test, so that no later
    # test's command freezes this test process's garbage.
    monkeypatch.setattr(_common.state, "own_process", False)
    gc.unfreeze()
    try:
        with pytest.raises(SystemExit):
            trialwatch.__main__.main()
        assert gc.get_freeze_count() > 0
        # Off while the command imported, on again whatever it did (this one failed first).
        assert gc.isenabled()
    finally:
        gc.unfreeze()
        gc.enable()  # should that ever fail, not for the rest of the test run


@pytest.mark.parametrize("own_process", [True, False])
def test_a_command_in_its_own_process_freezes_what_it_loaded(
    own_process: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the app is built, what is loaded lives as long as the process: frozen, the
    collector's full passes skip it. Only in a process of its own (the console script): a test
    run calling the command line would keep every earlier test's garbage."""
    import gc

    from trialwatch.cli import _common
    from trialwatch.config import load_settings

    config = tmp_path / "trialwatch.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "tw.db"}"\n')
    monkeypatch.setattr(_common.state, "own_process", own_process)
    gc.unfreeze()
    try:
        with _common._app_from(load_settings(config, env={}), may_upgrade=False):
            assert (gc.get_freeze_count() > 0) is own_process
    finally:
        gc.unfreeze()


def _unreachable_sync_config(tmp_path: Path, database: str = "") -> Path:
    """A config whose sync fails at once, after its imports and its app: nothing listens on
    port 9 of loopback. ``database`` adds lines to its [database] section."""
    config = tmp_path / "trialwatch.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "tw.db"}"\n{database}'
        '[api]\nbase_url = "http://127.0.0.1:9/api/v2"\nmax_attempts = 1\n'
        '[[watchlist]]\nnct_id = "NCT02606461"\n'
    )
    return config


def _python(
    code: str, config: Path, *argv: str, check: bool = True
) -> tuple[dict[str, str], subprocess.CompletedProcess[str]]:
    """Run ``code`` in a fresh interpreter beside ``config``; its ``KEY value`` lines, and the
    run itself (for its stderr)."""
    run = subprocess.run(
        [sys.executable, "-c", code, *argv],
        cwd=config.parent,
        env={**os.environ, "TRIALWATCH_CONFIG": str(config)},
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
    )
    lines = dict(line.split(" ", 1) for line in run.stdout.splitlines() if " " in line)
    return lines, run


_LEAN_COMMAND = """
import io, json, logging, sys
from trialwatch.__main__ import main
sys.argv = ["trialwatch", "sync"]
try:
    main()
except SystemExit as exc:
    print("EXIT", exc.code)
loaded = sorted(sys.modules)
import httpx, structlog
from trialwatch.logs import configure_logging
stream = io.StringIO()
stream.isatty = lambda: True
configure_logging("info", "console", stream)
try:
    1 / 0
except ZeroDivisionError:
    structlog.get_logger("t").exception("boom")
import rich  # still there for what needs it
print("LOGGED", json.dumps(stream.getvalue()))
print("MODULES", json.dumps(loaded))
"""


def test_the_command_loads_neither_httpx_cli_nor_rich_for_structlog(tmp_path: Path) -> None:
    """httpx's own command line (click, rich, pygments) and structlog's rich tracebacks are
    kept out of the console script's process (~8 % of its import instructions); a sync still
    runs, structlog still renders an exception, and rich is still importable."""
    lines, run = _python(_LEAN_COMMAND, _unreachable_sync_config(tmp_path))
    assert lines["EXIT"] == "1", run.stderr  # CT.gov unreachable: an operational failure
    assert "unreachable" in run.stderr.lower() or "127.0.0.1" in run.stderr, run.stderr
    loaded = {m.split(".")[0] for m in json.loads(lines["MODULES"])}
    assert {"httpx", "structlog", "sqlalchemy"} <= loaded
    assert not loaded & {"rich", "click", "pygments", "attr"}, sorted(loaded)
    logged = json.loads(lines["LOGGED"])
    assert "boom" in logged and "ZeroDivisionError" in logged and "Traceback" in logged


_GC_COMMAND = """
import gc, sys
import trialwatch.cli._common as common
import trialwatch.cli._db as db_commands
import trialwatch.sync
from trialwatch.__main__ import main

real_sync, real_over = trialwatch.sync.run_sync, common.startup_over

def run_sync(*args, **kwargs):
    print("AT_WORK", gc.isenabled())
    return real_sync(*args, **kwargs)

def startup_over():
    print("SET_UP", gc.isenabled(), sum(s["collections"] for s in gc.get_stats()) - before)
    real_over()

trialwatch.sync.run_sync = run_sync
common.startup_over = db_commands.startup_over = startup_over
sys.argv = ["trialwatch", *sys.argv[1:]]
before = sum(s["collections"] for s in gc.get_stats())
try:
    main()
except SystemExit as exc:
    print("EXIT", exc.code)
print("AFTER", gc.isenabled())
"""


def test_the_command_imports_without_collections_and_works_with_them(tmp_path: Path) -> None:
    """The console script turns garbage collection off while a command imports and wires
    itself (~10 % of the imports' time: each collection walks every object loaded so far), and
    on again before the command's own work: a sync of 100,000 trials makes garbage."""
    lines, run = _python(_GC_COMMAND, _unreachable_sync_config(tmp_path), "sync")
    assert lines["EXIT"] == "1", run.stderr  # CT.gov unreachable, after the app was opened
    # Not one collection from the command's start until it was set up; on at its work.
    assert lines["SET_UP"] == "False 0", run.stdout
    assert lines["AT_WORK"] == "True", run.stdout
    assert lines["AFTER"] == "True"


@pytest.mark.parametrize("argv", [["status"], ["db", "current"]])
def test_commands_without_the_app_collect_garbage_again_too(
    argv: list[str], tmp_path: Path
) -> None:
    """status's light road and the db commands never build the app: they too turn collection
    back on once they are set up."""
    config = tmp_path / "trialwatch.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "tw.db"}"\n')
    env = {**os.environ, "TRIALWATCH_CONFIG": str(config)}
    subprocess.run(
        [sys.executable, "-m", "trialwatch", "db", "upgrade"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )
    lines, run = _python(_GC_COMMAND, config, *argv, check=False)
    assert lines.get("SET_UP") == "False 0", (run.stdout, run.stderr)
    assert lines["EXIT"] == "0" or "EXIT" not in lines, run.stderr


_UPGRADE_COMMAND = """
import gc, sys
import trialwatch.storage.migrate as migrate
from trialwatch.__main__ import main

real = migrate.upgrade

def upgrade(*args, **kwargs):
    print("UPGRADING", gc.isenabled())
    return real(*args, **kwargs)

migrate.upgrade = upgrade
sys.argv = ["trialwatch", "sync"]
try:
    main()
except SystemExit as exc:
    print("EXIT", exc.code)
"""


def test_a_sync_that_upgrades_the_database_collects_garbage_meanwhile(tmp_path: Path) -> None:
    """With ``[database] auto_upgrade`` a sync migrates an old database before its work: on a
    large one the migration makes garbage of its own, so collection is on by then, as in
    ``db upgrade``."""
    import shutil

    shutil.copy(Path(__file__).parent / "data" / "db" / "trialwatch-0.1.0.db", tmp_path / "tw.db")
    config = _unreachable_sync_config(tmp_path, database="auto_upgrade = true\n")
    lines, run = _python(_UPGRADE_COMMAND, config)
    assert lines.get("UPGRADING") == "True", (run.stdout, run.stderr)
    assert lines["EXIT"] == "1", run.stderr  # upgraded, then CT.gov unreachable
