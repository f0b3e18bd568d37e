"""Who gets what: routes a change to recipients by the subscriptions. Pure.

The sync calls the router before it writes, and storage persists the routes it returns: who
hears about a change is decided here, nowhere else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from trialwatch.config import EmailSettings, Subscription
from trialwatch.diff import counts
from trialwatch.models import FieldChange, Route
from trialwatch.redact import Scrubber


def webhook_reference(url: str) -> str:
    """What the outbox stores for a webhook: a reference, never the secret URL itself.

    The URL is resolved from the settings when the message is sent (see
    :func:`resolve_webhook`); a migration keeps a frozen copy of this function.
    """
    return "webhook:" + hashlib.sha256(url.encode()).hexdigest()[:16]


def webhook_scrubber(subscriptions: Iterable[Subscription]) -> Scrubber:
    """The scrubber hiding every secret piece of the configured webhook URLs (see redact)."""
    return Scrubber(
        sub.webhook_url.get_secret_value() for sub in subscriptions if sub.webhook_url is not None
    )


def resolve_webhook(reference: str, subscriptions: Iterable[Subscription]) -> str | None:
    """The URL of the configured subscription a stored reference names (None: not any more)."""
    for sub in subscriptions:
        if sub.webhook_url is not None:
            url = sub.webhook_url.get_secret_value()
            if webhook_reference(url) == reference:
                return url
    return None


class SubscriptionRouter:
    """Callable ``(nct_id, label, change) -> routes`` built from the email settings.

    The default recipients (``[email] to``) get every change at or above ``[email] min_severity``
    immediately; each ``[[subscriptions]]`` entry adds recipients with its own filter and mode.
    Email routes exist only when ``[email] enabled``; webhooks do not depend on it.
    """

    def __init__(self, email: EmailSettings, subscriptions: Iterable[Subscription]) -> None:
        self.email = email
        self.subscriptions = tuple(subscriptions)

    def __call__(self, nct_id: str, label: str | None, change: FieldChange) -> list[Route]:
        if not counts(change):  # an admin line is recorded, never sent, whatever min_severity
            return []
        routes: list[Route] = []
        if self.email.enabled and change.severity >= self.email.min_severity:
            routes.extend(Route("email", addr, "immediate", None) for addr in self.email.to)
        for sub in self.subscriptions:
            if not _matches(sub, nct_id, label, change):
                continue
            if self.email.enabled:
                routes.extend(Route("email", addr, sub.mode, sub.name) for addr in sub.to)
            if sub.webhook_url is not None:
                url = sub.webhook_url.get_secret_value()
                routes.append(Route("webhook", webhook_reference(url), sub.mode, sub.name))
        return routes


def _matches(sub: Subscription, nct_id: str, label: str | None, change: FieldChange) -> bool:
    if change.severity < sub.min_severity:
        return False
    if sub.categories and change.category not in sub.categories:
        return False
    if not sub.trials:
        return True
    wanted = {t.strip().casefold() for t in sub.trials}
    return nct_id.casefold() in wanted or (label is not None and label.casefold() in wanted)
