"""What every command shares: the root Typer, settings and app loading, errors to exit codes.

Imports here stay light (typer and the standard library): ``trialwatch --version`` and
``--help`` must answer without loading SQLAlchemy, pydantic, httpx or jinja2. Each command
imports what it needs when it runs.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from trialwatch import __version__
from trialwatch.vocabulary import clip

if TYPE_CHECKING:
    from trialwatch.app import App
    from trialwatch.config import Settings
    from trialwatch.statusview import StatusView

EXIT_FAILURE = 1
EXIT_CONFIG = 2

cli = typer.Typer(
    name="trialwatch",
    help=(
        "Watch ClinicalTrials.gov records and hear, once, when they change.\n\n"
        "Example: trialwatch sync && trialwatch status"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


class _State:
    config: Path | None = None
    verbose: bool = False
    # This process exists to run one command (the console script, ``python -m trialwatch``),
    # not a test calling the command line among others: see _app_from.
    own_process: bool = False


state = _State()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"trialwatch {__version__}")
        raise typer.Exit()


@cli.callback()
def _main(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Settings file (default: $TRIALWATCH_CONFIG, else ./config/trialwatch.toml). "
            "Accepted before or after the command.",
        ),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Show the technical cause of failures, and log at the configured level "
            "(one-shot commands otherwise log warnings and errors only).",
        ),
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    state.config = config
    state.verbose = verbose


def fail(message: str, code: int) -> NoReturn:
    typer.echo(f"trialwatch: {message}", err=True)
    raise typer.Exit(code)


def describe(exc: BaseException) -> str:
    """An error's one plain line, and its technical cause too with ``--verbose``."""
    text = str(exc)
    if state.verbose:
        detail = getattr(exc, "detail", None)
        cause = exc.__cause__
        if detail:
            text += f"\n  cause: {detail}"
        elif cause is not None:
            text += f"\n  cause: {type(cause).__name__}: {cause}"
    return text


def load(*, daemon: bool = False, logging: bool = True) -> Settings:
    """The settings, with logging configured (unless ``logging`` is False: see
    :func:`configure_logs`)."""
    from trialwatch.config import load_settings
    from trialwatch.exceptions import ConfigError

    try:
        settings = load_settings(state.config, os.environ)
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    if logging:
        configure_logs(settings, daemon=daemon)
    return settings


def _nothing_to_watch() -> str:
    from trialwatch.config import config_path

    path = config_path(state.config, os.environ)
    where = f"the watchlist in {path} is empty" if path.exists() else f"no {path} here"
    return (
        f"nothing to watch: {where}. Add trials with `trialwatch watch add NCT…` or "
        "`trialwatch watch import FILE`, or point --config or TRIALWATCH_CONFIG at your "
        "settings file."
    )


def configure_logs(settings: Settings, *, daemon: bool = False) -> None:
    """A one-shot command logs warnings and errors only (its summary is the output a user or
    cron reads) unless ``--verbose``; the daemon logs at the configured level, its lines being
    its record. (``status``'s light road logs nothing and skips this: structlog's import.)"""
    from trialwatch.logs import configure_logging
    from trialwatch.routing import webhook_scrubber

    scrub = webhook_scrubber(settings.subscriptions)
    level: str = settings.logging.level
    if not daemon and not state.verbose:
        level = _at_least_warning(level)
    configure_logging(level, settings.logging.format, scrub=scrub or None)


def _at_least_warning(level: str) -> str:
    order = ["debug", "info", "warning", "error", "critical"]
    name = level.lower()
    return name if name in order and order.index(name) >= order.index("warning") else "warning"


@contextmanager
def open_app(
    *,
    need_watchlist: bool = False,
    may_upgrade: bool = False,
    daemon: bool = False,
    create: bool = True,
) -> Iterator[App]:
    """Settings -> app, mapping every expected failure to a message and an exit code.
    ``create=False`` (commands that only read): a missing SQLite file is said, exit 1, and
    none is created."""
    settings = load(daemon=daemon)
    if not create:
        _refuse_missing_database(settings)
    with _app_from(settings, may_upgrade=may_upgrade, need_watches=need_watchlist) as app:
        yield app


@contextmanager
def open_status() -> Iterator[StatusView]:
    """``status``'s view: the light road over a SQLite file when it can answer (no SQLAlchemy,
    no structlog), else the app (:func:`open_app`, read-only)."""
    from trialwatch.exceptions import TrialwatchError
    from trialwatch.statusview import open_light_status

    settings = load(logging=False)
    _refuse_missing_database(settings)
    try:
        light = open_light_status(settings)
    except TrialwatchError as exc:
        fail(describe(exc), EXIT_FAILURE)
    if light is None:
        configure_logs(settings)
        with _app_from(settings, may_upgrade=False) as app:
            yield app
        return
    startup_over()
    try:
        yield light
    except TrialwatchError as exc:
        fail(describe(exc), EXIT_FAILURE)
    finally:
        light.close()


def _refuse_missing_database(settings: Settings) -> None:
    """A command that only reads says a missing SQLite file is missing, and creates none."""
    from trialwatch.statusview import missing_database

    if (missing := missing_database(settings)) is not None:
        fail(
            f"no database at {missing} yet (nothing was created): `trialwatch sync` makes it, "
            "or point [database] url or TRIALWATCH_DATABASE__URL at yours",
            EXIT_FAILURE,
        )


@contextmanager
def _app_from(
    settings: Settings, *, may_upgrade: bool, need_watches: bool = False
) -> Iterator[App]:
    from trialwatch.app import build_app
    from trialwatch.exceptions import (
        ConfigError,
        NothingToWatchError,
        SchemaOutdatedError,
        TrialwatchError,
    )

    # Before the app is built: building it may upgrade the schema ([database] auto_upgrade),
    # a migration that makes garbage of its own on a large database.
    startup_over()
    try:
        # sync and daemon (may_upgrade) apply the config's watchlist under the sync lock.
        app = build_app(
            settings,
            may_upgrade=may_upgrade,
            apply_config_watchlist=not may_upgrade,
            need_watches=need_watches,
        )
    except NothingToWatchError:
        fail(_nothing_to_watch(), EXIT_CONFIG)
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    except TrialwatchError as exc:
        fail(describe(exc), EXIT_CONFIG if isinstance(exc, SchemaOutdatedError) else EXIT_FAILURE)
    try:
        yield app
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    except TrialwatchError as exc:  # UserError among them: its own words, exit 1
        fail(describe(exc), EXIT_FAILURE)
    finally:
        app.close()


def startup_over() -> None:
    """The command has imported what it needs: garbage collection resumes (the console script
    turns it off meanwhile, see ``trialwatch.__main__``), over what is made from now on.

    What is loaded by now (SQLAlchemy, pydantic, typer, the app: ~90,000 objects) is nearly
    all kept as long as the process runs. Frozen, the garbage collector's full passes no
    longer walk it each time: 0.14 -> 0.02 s of collections in a day's sync of 10,000 trials.
    The price: garbage already waiting in a cycle now (the settings' validation) is kept too,
    once, a bounded amount. Only in a process of its own: in a test run it would keep the
    garbage of every test before it."""
    if state.own_process:
        gc.freeze()
        gc.enable()


def when(value: datetime | None) -> str:
    from trialwatch.vocabulary import utc_time

    return "-" if value is None else utc_time(value)


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    width: int | None = None,
    flexible: Sequence[int] | None = None,
) -> str:
    """Rows under headers, columns two spaces apart. Within ``width`` characters when given:
    the widest of the ``flexible`` columns (default: any) gives a character at a time (its
    cells clipped with an ellipsis), down to its header's width or 8, whichever is more."""
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    if width is not None:
        floors = [max(len(h), 8) for h in headers]
        may_shrink = range(len(headers)) if flexible is None else flexible
        while sum(widths) + 2 * (len(widths) - 1) > width:
            shrinkable = [i for i in may_shrink if widths[i] > floors[i]]
            if not shrinkable:
                break
            widest = max(shrinkable, key=lambda i: widths[i])
            widths[widest] -= 1
        rows = [[clip(c, w) for c, w in zip(r, widths, strict=True)] for r in rows]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def terminal_width() -> int | None:
    """The width to fit: ``COLUMNS`` when set, else the terminal's; None (no limit) when the
    output is not a terminal, so a file or a pipe gets whole lines."""
    import shutil
    import sys

    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def fit(text: str, width: int | None) -> str:
    """``text`` wrapped to ``width`` (unchanged when None), continuation lines indented."""
    if width is None or len(text) <= width:
        return text
    import textwrap

    return textwrap.fill(text, width, subsequent_indent="  ", break_on_hyphens=False)


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move ``--config PATH`` / ``-c PATH`` / ``--verbose`` found after the command to the
    front, so they work wherever the user types them (``trialwatch sync --config x``)."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        if arg in ("--config", "-c") and i + 1 < len(argv):
            front += [arg, argv[i + 1]]
            i += 2
            continue
        if arg.startswith("--config=") or arg in ("--verbose", "-v"):
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


def echo_err(message: str) -> None:
    typer.echo(message, err=True)
