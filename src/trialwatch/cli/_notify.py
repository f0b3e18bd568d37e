"""``notify``: deliver, retry, digest and test notifications."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from trialwatch.cli._common import EXIT_CONFIG, EXIT_FAILURE, cli, fail, open_app

if TYPE_CHECKING:
    from trialwatch.outbox import FlushResult

notify_cli = typer.Typer(
    help=(
        "Deliver, retry and test notifications (email and webhooks).\n\n"
        "Example: trialwatch notify test && trialwatch notify flush"
    ),
    no_args_is_help=True,
)
cli.add_typer(notify_cli, name="notify")


def _print_flush(result: FlushResult) -> None:
    typer.echo(
        f"Delivered {result.sent}; {result.retrying} will be retried; "
        f"{result.dead} dead-lettered; {result.busy} being sent by another process."
    )
    for error in result.errors:
        typer.echo(f"  error: {error}", err=True)


@notify_cli.command("flush")
def notify_flush() -> None:
    """Deliver every queued notification now, without waiting for its retry time.

    Example: trialwatch notify flush
    """
    with open_app() as app:
        result = app.flush(ignore_backoff=True)
        _print_flush(result)
        if result.retrying or result.dead:
            raise typer.Exit(EXIT_FAILURE)


@notify_cli.command("retry")
def notify_retry(
    ids: Annotated[
        list[int] | None,
        typer.Argument(help="Dead letters to retry (default: all).", min=1, max=2**63 - 1),
    ] = None,
) -> None:
    """Re-queue dead letters (after fixing what made them fail) and deliver them.

    Example: trialwatch notify retry
    """
    with open_app() as app:
        count = app.requeue_dead(ids or ())
        typer.echo(f"Re-queued {count} dead letter(s).")
        if count:
            _print_flush(app.flush(ignore_backoff=True))


@notify_cli.command("digest")
def notify_digest(
    mode: Annotated[str, typer.Argument(help="daily or weekly.")] = "daily",
) -> None:
    """Send the daily or weekly digest now (the daemon does this on its schedule).

    Example: trialwatch notify digest weekly
    """
    if mode not in {"daily", "weekly"}:
        fail(f"unknown digest {mode!r} (daily or weekly)", EXIT_CONFIG)
    with open_app() as app:
        created = app.fold_digests(mode)
        typer.echo(f"Prepared {created} {mode} digest(s).")
        _print_flush(app.flush())


@notify_cli.command("test")
def notify_test() -> None:
    """Send a test email to the configured recipients and say clearly what failed.

    Example: TRIALWATCH_EMAIL__TO='["me@example.org"]' trialwatch notify test
    """
    from trialwatch.exceptions import DeliveryError

    with open_app() as app:
        email = app.settings.email
        typer.echo(
            f"Sending a test message via {email.smtp_host}:{email.smtp_port} "
            f"({email.security}) from {email.sender} ..."
        )
        try:
            recipients = app.send_test_message()
        except DeliveryError as exc:
            fail(f"test message NOT sent: {exc}", EXIT_FAILURE)
        typer.echo(f"Test message accepted for {', '.join(recipients)}.")
        if not email.enabled:
            typer.echo("Note: [email] enabled is false: change reports are not emailed yet.")
