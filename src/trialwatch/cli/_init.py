"""``init``: a commented starter config of one's own, for those who installed the package."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trialwatch.cli._common import EXIT_CONFIG, EXIT_FAILURE, cli, fail


@cli.command()
def init(
    path: Annotated[
        Path, typer.Argument(help="Where to write it (default: ./config/trialwatch.toml).")
    ] = Path("config/trialwatch.toml"),
) -> None:
    """Write a commented starter config (the Selinexor review's 13 trials as the example).

    Refuses to overwrite an existing file.

    Example: trialwatch init && trialwatch sync
    """
    from trialwatch.config import starter_config

    text = starter_config()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as fh:
            fh.write(text)
    except FileExistsError:
        fail(
            f"{path} exists already; not overwriting it (remove it first, or pick a PATH)",
            EXIT_CONFIG,
        )
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}", EXIT_FAILURE)
    typer.echo(f"Wrote {path}. Edit it, then run:")
    default = Path("config/trialwatch.toml")
    where = "" if path == default else f" --config {path}"
    typer.echo(f"  trialwatch sync{where}                 # the first sync (a silent baseline)")
    typer.echo(f"  trialwatch watch import FILE{where}    # watch the NCT numbers in any text")
