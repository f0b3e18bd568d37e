"""Who gets what: routes a change to recipients by the subscriptions. Pure."""

from __future__ import annotations

from collections.abc import Iterable

from trialwatch.config import EmailSettings, Subscription
from trialwatch.models import FieldChange
from trialwatch.storage import Route


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
        routes: list[Route] = []
        if self.email.enabled and change.severity >= self.email.min_severity:
            routes.extend(Route("email", addr, "immediate", None) for addr in self.email.to)
        for sub in self.subscriptions:
            if not _matches(sub, nct_id, label, change):
                continue
            if self.email.enabled:
                routes.extend(Route("email", addr, sub.mode, sub.name) for addr in sub.to)
            if sub.webhook_url is not None:
                routes.append(
                    Route("webhook", sub.webhook_url.get_secret_value(), sub.mode, sub.name)
                )
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
