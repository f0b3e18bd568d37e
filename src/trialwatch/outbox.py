"""Delivering the outbox: exactly once per notification, whatever fails.

The sync writes notifications in the same transaction as the changes they report. Delivery
happens afterwards, here:

- a notification is *claimed* with a compare-and-swap (see :meth:`Store.claim`), so two
  processes flushing at once never send the same one twice;
- it is marked ``sent`` only after the server accepted it. A crash between acceptance and
  marking can resend it once, with the same ``Message-ID`` (derived from the notification's
  key), so the duplicate is recognisable;
- temporary failures are retried with exponential backoff; permanent ones (and temporary ones
  past ``max_attempts``) become dead letters that ``trialwatch notify retry`` re-queues;
- a claim held by a process that died (same host, pid gone) or whose lease ran out is taken over.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from trialwatch.config import EmailSettings, OutboxSettings
from trialwatch.diff import ChangeCount
from trialwatch.exceptions import (
    DeliveryError,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from trialwatch.messages import (
    ChangeReport,
    RenderedEmail,
    TrialChanges,
    build_message,
    make_message_id,
    render_change_report,
    render_flood_summary,
    webhook_payload,
)
from trialwatch.models import Clock, Snapshot
from trialwatch.redact import NO_SECRETS

if TYPE_CHECKING:
    from datetime import datetime

    from trialwatch.storage import ChangeEvent, Notification

log = structlog.get_logger("trialwatch.outbox")


class OutboxStore(Protocol):
    """What delivery needs from storage: the queue, and the changes a message reports."""

    def due_notifications(
        self, now: datetime, limit: int = ..., *, ignore_backoff: bool = ...
    ) -> list[Notification]: ...

    def claim(
        self,
        notification: Notification,
        *,
        owner: str,
        now: datetime,
        until: datetime,
        stale: Callable[[Notification], bool],
    ) -> bool: ...

    def mark_sent(self, notification_id: int, *, owner: str, now: datetime) -> bool: ...

    def mark_failed(
        self,
        notification_id: int,
        *,
        owner: str,
        error: str,
        attempts: int,
        retry_at: datetime | None,
    ) -> bool: ...

    def changes_by_id(self, ids: Sequence[int]) -> list[ChangeEvent]: ...

    def run_count(self, run_id: int) -> tuple[int, int] | None: ...

    def trial_titles(self, ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]: ...

    def current_snapshots(self, ids: Sequence[str]) -> dict[str, Snapshot]: ...


class EmailSender(Protocol):
    def send(self, message: EmailMessage) -> Any: ...


class WebhookSender(Protocol):
    def post(self, payload: dict[str, Any]) -> None: ...


@dataclass
class FlushResult:
    sent: int = 0
    retrying: int = 0
    dead: int = 0
    busy: int = 0  # claimed by another live process
    errors: list[str] = field(default_factory=list)


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii") as fh:
            return fh.read().strip()
    except OSError:
        return "?"


@functools.cache
def process_space() -> str:
    """Names the space in which a pid means one process: host, boot and pid namespace.

    A hostname alone is not enough: containers with ``--network host`` and cloned machines
    share one, yet their pids are unrelated. Only a claim made in the same space can be judged
    by looking the pid up; any other claim waits for its lease to run out.
    """
    try:
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        namespace = "?"
    raw = f"{socket.gethostname()}|{_read('/proc/sys/kernel/random/boot_id')}|{namespace}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def process_owner() -> str:
    """Who claims: process space, pid and a nonce (a recycled pid never looks like the owner)."""
    return f"{process_space()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def claimer_is_dead(notification: Notification) -> bool:
    """True when the claim was made in this process space by a process that no longer exists."""
    if not notification.claimed_by:
        return False
    try:
        space, pid_text, _nonce = notification.claimed_by.rsplit(":", 2)
        pid = int(pid_text)
    except ValueError:
        return False
    if space != process_space():
        return False  # another machine or container: only its lease can tell
    if pid == os.getpid():
        return False  # this process: its own claims are never stale while it runs
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def backoff_s(attempts: int, settings: OutboxSettings, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: initial * 2^(attempts-1), capped, +-20 %."""
    base = min(settings.backoff_max_s, settings.backoff_initial_s * 2 ** max(0, attempts - 1))
    jitter: float = (rng or random).random()
    return float(base * (0.8 + 0.4 * jitter))


def sender_domain(email: EmailSettings) -> str:
    return email.sender.rsplit("@", 1)[-1] or "trialwatch.invalid"


class Outbox:
    """Renders and delivers pending notifications through the given channels."""

    def __init__(
        self,
        store: OutboxStore,
        *,
        clock: Clock,
        email: EmailSettings,
        settings: OutboxSettings,
        email_sender: Callable[[], EmailSender] | None,
        webhook_sender: Callable[[str], WebhookSender],
        owner: str | None = None,
        resolve_webhook: Callable[[str], str | None] = lambda reference: None,
        scrub: Callable[[str], str] = NO_SECRETS,
        public_url: str | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.email = email
        self.settings = settings
        self.email_sender = email_sender
        self.webhook_sender = webhook_sender
        self.owner = owner or process_owner()
        self.resolve_webhook = resolve_webhook
        # Every error recorded, logged or returned passes through it: the settings' webhook
        # secrets never reach the database, the logs or `status` (see trialwatch.redact).
        self.scrub = scrub
        self.public_url = public_url

    def flush(
        self,
        *,
        limit: int = 1000,
        ignore_backoff: bool = False,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> FlushResult:
        """Deliver what is due (everything pending with ``ignore_backoff``); returns counts.

        Never raises for a delivery failure: failures are recorded on the notification.
        """
        result = FlushResult()
        due = self.store.due_notifications(self.clock(), limit, ignore_backoff=ignore_backoff)
        for notification in due:
            if should_stop():
                break
            now = self.clock()
            until = now + timedelta(seconds=self.settings.lease_s)
            if not self.store.claim(
                notification, owner=self.owner, now=now, until=until, stale=claimer_is_dead
            ):
                result.busy += 1
                continue
            self._deliver_one(notification, result)
        return result

    def _deliver_one(self, notification: Notification, result: FlushResult) -> None:
        assert notification.id is not None
        bound = log.bind(
            notification_id=notification.id, channel=notification.channel, kind=notification.kind
        )
        try:
            if notification.channel == "email":
                self._send_email(notification)
            elif notification.channel == "webhook":
                self._post_webhook(notification)
            else:
                raise PermanentDeliveryError(f"unknown channel {notification.channel!r}")
        except Exception as exc:  # noqa: BLE001 - whatever fails, the claim must be settled
            self._failed(notification, exc, result, bound)
            return
        if not self.store.mark_sent(notification.id, owner=self.owner, now=self.clock()):
            # Our lease ran out mid-send and another process took the claim: it may send this
            # message again (same Message-ID). Rare; worth knowing about.
            bound.warning("delivery.claim_lost", lease_s=self.settings.lease_s)
        result.sent += 1
        bound.info("delivery.sent")

    def _failed(
        self, notification: Notification, exc: Exception, result: FlushResult, bound: Any
    ) -> None:
        """Record a failed attempt on the notification: retry later, or dead-letter it.

        Delivery errors are classified by the transport. Anything else (a setting that only
        fails when used, a template bug) is a dead letter: visible in ``status``, re-queued by
        ``notify retry`` once fixed — never a stuck claim that blocks the queue.
        """
        assert notification.id is not None
        if not isinstance(exc, DeliveryError):
            shown = self.scrub(str(exc))
            if shown == str(exc):
                bound.exception("delivery.error")
            else:  # the traceback would repeat the secret: the scrubbed line only
                bound.error("delivery.error", error=f"{type(exc).__name__}: {shown}")
            exc = PermanentDeliveryError(f"cannot deliver: {type(exc).__name__}: {shown}")
        error = self.scrub(str(exc))
        attempts = notification.attempts + 1
        permanent = isinstance(exc, PermanentDeliveryError)
        give_up = permanent or attempts >= self.settings.max_attempts
        retry_at = None
        if not give_up:
            retry_at = self.clock() + timedelta(seconds=backoff_s(attempts, self.settings))
        self.store.mark_failed(
            notification.id,
            owner=self.owner,
            error=error,
            attempts=attempts,
            retry_at=retry_at,
        )
        if give_up:
            result.dead += 1
            bound.error("delivery.dead", error=error, attempts=attempts)
        else:
            result.retrying += 1
            bound.warning(
                "delivery.retry",
                error=error,
                attempts=attempts,
                retry_at=retry_at.isoformat() if retry_at else None,
            )
        result.errors.append(error)

    # -- rendering ----------------------------------------------------------------------

    def report_for(self, notification: Notification) -> ChangeReport:
        """The change report a notification owes, rebuilt from the stored change events."""
        events = self.store.changes_by_id(notification.change_ids)
        trials: dict[str, list[Any]] = {}
        for event in events:
            trials.setdefault(event.nct_id, []).append(event.to_change())
        titles = self.store.trial_titles(list(trials))
        snapshots = self.store.current_snapshots(list(trials))
        data_timestamp = max((e.data_timestamp or "" for e in events), default="") or None
        period = None
        run_count = None
        if notification.kind != "digest" and notification.run_id is not None:
            counted = self.store.run_count(notification.run_id)
            run_count = ChangeCount(*counted) if counted is not None else None
        if notification.kind == "digest":
            first = min((e.detected_at for e in events if e.detected_at), default=None)
            last = max((e.detected_at for e in events if e.detected_at), default=None)
            if first and last:
                period = f"{notification.mode} digest, {first:%Y-%m-%d} to {last:%Y-%m-%d}"
        return ChangeReport(
            trials=tuple(
                TrialChanges(
                    nct_id=nct_id,
                    label=titles.get(nct_id, (None, None))[0],
                    brief_title=titles.get(nct_id, (None, None))[1],
                    changes=tuple(changes),
                    posted=snapshots[nct_id].last_update_posted if nct_id in snapshots else None,
                )
                for nct_id, changes in trials.items()
            ),
            data_timestamp=data_timestamp,
            generated_at=notification.created_at or self.clock(),
            run_id=str(notification.run_id) if notification.run_id else None,
            period=period,
            run_count=run_count,
            left_out=self._left_out(notification),
            public_url=self.public_url,
        )

    def _left_out(self, notification: Notification) -> str:
        """Why a message about one run may show only part of it: what this recipient gets."""
        if notification.subscription:
            return f"changes outside subscription {notification.subscription!r}"
        return f"changes below {self.email.min_severity.label} ([email] min_severity)"

    def _rendered(self, notification: Notification) -> tuple[RenderedEmail, ChangeReport | None]:
        if notification.payload_json:
            payload = json.loads(notification.payload_json)
            return RenderedEmail(payload["subject"], payload["text"], payload["html"]), None
        report = self.report_for(notification)
        if notification.kind == "summary":
            return render_flood_summary(report), report
        return render_change_report(report, max_changes=self.email.max_changes), report

    def _send_email(self, notification: Notification) -> None:
        if self.email_sender is None:
            raise TemporaryDeliveryError("email is not enabled ([email] enabled = false)")
        rendered, _ = self._rendered(notification)
        message = build_message(
            rendered,
            sender=self.email.sender,
            recipients=[notification.recipient],
            message_id=make_message_id(notification.key, sender_domain(self.email)),
            date=notification.created_at or self.clock(),
        )
        self.email_sender().send(message)

    def _post_webhook(self, notification: Notification) -> None:
        rendered, report = self._rendered(notification)
        if report is None:
            payload: dict[str, Any] = {"text": f"{rendered.subject}\n\n{rendered.text}"}
        else:
            payload = webhook_payload(report, rendered)
        payload.setdefault("trialwatch", {})["message_key"] = notification.key
        # The outbox keeps a reference, not the secret URL: resolve it from the settings now.
        recipient = notification.recipient
        url = self.resolve_webhook(recipient) if recipient.startswith("webhook:") else recipient
        if url is None:
            raise PermanentDeliveryError(
                f"the webhook of subscription {notification.subscription or '(unnamed)'} is no "
                "longer in the settings; restore it and run `trialwatch notify retry`"
            )
        self.webhook_sender(url).post(payload)


__all__ = [
    "EmailSender",
    "FlushResult",
    "Outbox",
    "OutboxStore",
    "WebhookSender",
    "backoff_s",
    "claimer_is_dead",
    "process_owner",
]
