"""``serve``: the read-only web page of the watch set, for a team to open in a browser."""

from __future__ import annotations

import secrets
from typing import Annotated

import typer

from trialwatch.cli._common import EXIT_CONFIG, cli, echo_err, fail, load, open_app


@cli.command()
def serve(
    host: Annotated[
        str | None,
        typer.Option(
            "--host",
            help="Address to listen on (default: [web] host, 127.0.0.1). Any address but "
            "loopback needs [web] token_file.",
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", "-p", min=0, max=65535, help="Port (default: [web] port, 8080)."),
    ] = None,
    login_link: Annotated[
        bool,
        typer.Option(
            "--login-link",
            help="Print a one-time link that signs a browser in (with [web] token_file), "
            "valid 15 minutes, and exit.",
        ),
    ] = False,
) -> None:
    """Serve a read-only web page of the watch set: every trial's status and last change,
    each trial's recorded history, the changes of a period, the timeline, the Atom feed and
    the exports, over the same database as every other command. Stop it with Ctrl-C.

    Example: trialwatch serve --port 8080   (then open http://127.0.0.1:8080/)
    """
    from trialwatch.web import TokenNeededError, check_bind

    settings = load()
    web = settings.web
    host = host or web.host
    port = web.port if port is None else port
    try:
        check_bind(host, web)
    except TokenNeededError as exc:
        fail(str(exc), EXIT_CONFIG)
    if login_link:
        _print_login_link(host, port)
        return
    from trialwatch.web import serve as run_server

    with open_app() as app:
        shown = f"[{host}]" if ":" in host else host
        echo_err(f"Serving the watch set on http://{shown}:{port}/ (read-only; Ctrl-C stops)")
        run_server(app, web, host=host, port=port)


def _print_login_link(host: str, port: int) -> None:
    from datetime import UTC, datetime

    from trialwatch.web import login_link

    web = load().web
    token = web.token()
    if token is None:
        fail("a login link needs [web] token_file (without a token nobody needs to sign in)", 2)
    base = web.public_url or f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    typer.echo(login_link(base, token, now=datetime.now(UTC), nonce=secrets.token_urlsafe(12)))
