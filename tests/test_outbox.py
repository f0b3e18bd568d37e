"""The outbox in-process: real database (SQLite and PostgreSQL), real SMTP server on loopback."""

from __future__ import annotations

import copy
import json
import threading
from pathlib import Path
from typing import Any

import httpx

from tests import storage_reads
from tests.conftest import FakeClock, load_record
from tests.fakes.smtp_server import FakeSmtp
from tests.fakes.source import FakeSource
from trialwatch.config import EmailSettings, OutboxSettings, Subscription
from trialwatch.models import WatchItem
from trialwatch.notify import SmtpSettings, SmtpTransport, WebhookTransport
from trialwatch.outbox import Outbox, backoff_s
from trialwatch.routing import SubscriptionRouter, resolve_webhook
from trialwatch.storage import Notification, Store
from trialwatch.sync import run_sync

IDS = ["NCT01213277", "NCT02967393", "NCT05915845"]
CLINICIAN = "clinician@example.org"


def _email(smtp: FakeSmtp) -> EmailSettings:
    return EmailSettings(
        enabled=True,
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        security="none",
        sender="trialwatch@example.org",
        to=(CLINICIAN,),
    )


def _outbox(store: Store, clock: FakeClock, smtp: FakeSmtp, **kw: Any) -> Outbox:
    email = _email(smtp)
    transport = SmtpTransport(
        SmtpSettings(
            host=smtp.host,
            port=smtp.port,
            security="none",
            username=None,
            password=None,
            timeout_s=5,
        )
    )
    return Outbox(
        store,
        clock=clock,
        email=email,
        settings=OutboxSettings(backoff_initial_s=60, backoff_max_s=3600, max_attempts=3),
        email_sender=lambda: transport,
        webhook_sender=kw.pop("webhook_sender", lambda url: WebhookTransport(url, timeout_s=1)),
        **kw,
    )


def _changes_queued(store: Store, clock: FakeClock, router: Any) -> None:
    source = FakeSource([load_record(f"{i}.json") for i in IDS])
    watch = [WatchItem(i, f"Trial {i[-4:]}") for i in IDS]
    run_sync(source=source, store=store, watchlist=watch, clock=clock, router=router)
    for nct_id in IDS:
        record = copy.deepcopy(source.records[nct_id])
        record["protocolSection"]["statusModule"]["overallStatus"] = "TERMINATED"
        source.put(record)
    source.data_timestamp = "2026-11-21T09:00:06"
    run_sync(source=source, store=store, watchlist=watch, clock=clock, router=router)


def _many(store: Store, clock: FakeClock, n: int) -> None:
    _changes_queued(
        store,
        clock,
        SubscriptionRouter(
            EmailSettings(enabled=True, to=tuple(f"r{i}@example.org" for i in range(n))), ()
        ),
    )


def test_two_flushers_at_once_never_send_a_notification_twice(
    store: Store, clock: FakeClock, smtp: FakeSmtp
) -> None:
    _many(store, clock, 12)
    assert store.outbox_counts() == {"pending": 12}
    outboxes = [_outbox(store, clock, smtp, owner=f"host:{i}:x") for i in range(2)]
    barrier = threading.Barrier(2)
    results = []

    def flush(outbox: Outbox) -> None:
        barrier.wait()
        results.append(outbox.flush())

    threads = [threading.Thread(target=flush, args=(o,)) for o in outboxes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    received = smtp.wait_for(12)
    assert sorted(r for m in received for r in m.rcpt_tos) == sorted(
        f"r{i}@example.org" for i in range(12)
    )
    assert sum(r.sent for r in results) == 12
    assert store.outbox_counts() == {"sent": 12}
    assert len({m.message["Message-ID"] for m in received}) == 12


def test_one_report_per_recipient_grouping_all_trials(
    store: Store, clock: FakeClock, smtp: FakeSmtp
) -> None:
    _changes_queued(store, clock, SubscriptionRouter(_email(smtp), ()))
    result = _outbox(store, clock, smtp).flush()
    assert result.sent == 1
    [received] = smtp.wait_for(1)
    subject = received.message["Subject"]
    assert subject.startswith("3 changes in 3 trials — ")
    text = received.message.get_body(("plain",)).get_content()
    for nct_id in IDS:
        assert nct_id in text
    assert text.count("→ Terminated") == 3


def test_temporary_failures_back_off_then_dead_letter(
    store: Store, clock: FakeClock, smtp: FakeSmtp
) -> None:
    _changes_queued(store, clock, SubscriptionRouter(_email(smtp), ()))
    outbox = _outbox(store, clock, smtp)
    smtp.respond_with("451 4.3.0 Try again later")
    assert outbox.flush().retrying == 1
    assert outbox.flush().sent == 0  # not due yet: backing off
    assert smtp.messages == []
    [pending] = store.notifications("pending")
    assert pending.next_attempt_at is not None and pending.next_attempt_at > clock.now
    assert "451" in (pending.last_error or "")
    for _ in range(2):
        clock.advance(hours=3)
        outbox.flush()
    assert store.outbox_counts() == {"dead": 1}  # max_attempts=3
    smtp.recover()
    assert store.requeue_dead(clock.now) == 1
    assert outbox.flush().sent == 1
    assert len(smtp.wait_for(1)) == 1


def test_backoff_grows_and_is_capped() -> None:
    settings = OutboxSettings(backoff_initial_s=60, backoff_max_s=600)
    waits = [backoff_s(n, settings) for n in (1, 2, 3, 10)]
    assert 48 <= waits[0] <= 72
    assert 96 <= waits[1] <= 144
    assert 480 <= waits[3] <= 720


def test_webhooks_go_through_the_same_outbox(
    store: Store, clock: FakeClock, smtp: FakeSmtp
) -> None:
    posted: list[dict[str, Any]] = []
    answers = iter([503, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        posted.append(json.loads(request.content))
        return httpx.Response(next(answers))

    url = "https://hooks.example/services/T0/B0/SECRETPATH"
    sub = Subscription.model_validate({"webhook_url": url, "min_severity": "critical"})
    router = SubscriptionRouter(EmailSettings(enabled=False), (sub,))
    _changes_queued(store, clock, router)
    [note] = store.notifications()
    assert note.channel == "webhook"
    # Secrets at rest: the outbox keeps a reference to the subscription, never its URL.
    assert "SECRETPATH" not in note.recipient and note.recipient.startswith("webhook:")

    outbox = _outbox(
        store,
        clock,
        smtp,
        webhook_sender=lambda u: WebhookTransport(
            u, timeout_s=1, transport=httpx.MockTransport(handler)
        ),
        resolve_webhook=lambda ref: resolve_webhook(ref, (sub,)),
    )
    first = outbox.flush()
    assert first.retrying == 1
    assert all("SECRETPATH" not in e for e in first.errors)
    clock.advance(hours=1)
    assert outbox.flush().sent == 1
    assert len(posted) == 2
    assert posted[0] == posted[1]  # the retry is the same message (same key)
    payload = posted[1]
    assert "text" in payload
    trials = payload["trialwatch"]["trials"]
    assert {t["nct_id"] for t in trials} == set(IDS)
    assert payload["trialwatch"]["message_key"] == note.key
    assert smtp.messages == []


def test_alerts_are_delivered_from_their_stored_payload(
    store: Store, clock: FakeClock, smtp: FakeSmtp
) -> None:
    def render(unhealthy: bool, episode: str) -> dict[str, str]:
        return {
            "subject": "trialwatch alert: 3 consecutive syncs failed",
            "text": "failing\n",
            "html": "<p>failing</p>",
        }

    store.transition_alert(
        unhealthy=True, now=clock.now, recipient="admin@example.org", render=render
    )
    assert _outbox(store, clock, smtp).flush().sent == 1
    [received] = smtp.wait_for(1)
    assert list(received.rcpt_tos) == ["admin@example.org"]
    assert received.message["Subject"] == "trialwatch alert: 3 consecutive syncs failed"


def test_disabled_email_keeps_messages_queued(store: Store, clock: FakeClock) -> None:
    with store.session() as s:
        s.add(
            Notification(
                key="k",
                created_at=clock.now,
                channel="email",
                recipient=CLINICIAN,
                next_attempt_at=clock.now,
            )
        )
    outbox = Outbox(
        store,
        clock=clock,
        email=EmailSettings(enabled=False),
        settings=OutboxSettings(),
        email_sender=None,
        webhook_sender=lambda u: WebhookTransport(u, timeout_s=1),
    )
    result = outbox.flush()
    assert result.retrying == 1
    assert "not enabled" in result.errors[0]


def test_raw_records_are_kept_compressed_and_retrievable(store: Store, clock: FakeClock) -> None:
    record = load_record("NCT02967393.json")
    run_sync(
        source=FakeSource([record]),
        store=store,
        watchlist=[WatchItem("NCT02967393", "x")],
        clock=clock,
    )
    [version] = storage_reads.versions(store, "NCT02967393")
    assert version.id is not None
    assert storage_reads.raw_record(store, version.id) == record
    assert len(version.raw_record) < len(json.dumps(record)) / 2


def test_a_failure_outside_the_transport_dead_letters_and_the_queue_goes_on(
    store: Store, clock: FakeClock, smtp: FakeSmtp
) -> None:
    _many(store, clock, 2)
    first, _second = store.notifications()
    outbox = _outbox(store, clock, smtp)
    working = outbox.email_sender
    assert working is not None
    calls = 0

    def first_call_fails() -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a setting that only fails when used")
        return working()

    outbox.email_sender = first_call_fails
    result = outbox.flush()
    assert (result.dead, result.sent) == (1, 1)
    assert "RuntimeError" in result.errors[0]
    [dead] = store.notifications("dead")
    assert dead.id == first.id
    assert dead.claimed_by is None  # settled, not stranded
    assert len(smtp.wait_for(1)) == 1
    assert store.requeue_dead(clock.now) == 1
    assert outbox.flush().sent == 1
    assert len(smtp.wait_for(2)) == 2


def test_message_ids_differ_between_databases(
    tmp_path: Path, clock: FakeClock, smtp: FakeSmtp
) -> None:
    ids = []
    for name in ("a", "b"):
        other = Store.open(f"sqlite:///{tmp_path / name}.db")
        _changes_queued(other, clock, SubscriptionRouter(_email(smtp), ()))
        assert _outbox(other, clock, smtp).flush().sent == 1
        other.close()
    ids = [m.message["Message-ID"] for m in smtp.wait_for(2)]
    assert len(set(ids)) == 2
