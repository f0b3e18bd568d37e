"""Made the 0.1.0 database fixture (`trialwatch-0.1.0.db`) with the 0.1.0 code, for provenance.

Run once, from a checkout of release 0.1.0 (commit 5a12576), as
``PYTHONPATH=. .venv/bin/python tests/data/db/make_v010_db.py``. It records what a real user's
database holds after a while: a baseline of the review's 13 trials, one status change (SEAL
completing), a failed sync, an email that was sent, a webhook that became a dead letter, a
daily digest still waiting, and an open health alert. Kept as a script, not run by the tests.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import SecretStr

from tests.conftest import FakeClock, selinexor_records
from tests.fakes.source import FakeSource
from trialwatch.config import EmailSettings, OutboxSettings, Subscription
from trialwatch.exceptions import FetchError, PermanentDeliveryError
from trialwatch.models import WatchItem
from trialwatch.outbox import Outbox
from trialwatch.routing import SubscriptionRouter
from trialwatch.storage import Store
from trialwatch.sync import run_sync

OUT = Path(__file__).with_name("trialwatch-0.1.0.db")


class AcceptingSmtp:
    def __init__(self) -> None:
        self.sent: list[object] = []

    def send(self, message: object) -> None:
        self.sent.append(message)


class RefusingWebhook:
    def post(self, payload: object) -> None:
        raise PermanentDeliveryError("webhook answered 410 Gone")


def main() -> None:
    OUT.unlink(missing_ok=True)
    clock = FakeClock(datetime(2026, 11, 2, 14, 0, tzinfo=UTC))
    store = Store.open(f"sqlite:///{OUT}")
    records = selinexor_records()
    source = FakeSource(records, data_timestamp="2026-11-02T09:00:06")
    watch = []
    for record in records:
        ident = record["protocolSection"]["identificationModule"]
        watch.append(WatchItem(ident["nctId"], ident.get("acronym") or ident["nctId"], "Table 1"))
    email = EmailSettings(
        enabled=True,
        smtp_host="127.0.0.1",
        security="none",
        sender="trialwatch@example.org",
        to=("clinician@example.org",),
    )
    subs = [
        Subscription(name="team", webhook_url=SecretStr("https://hooks.example.org/T0/B0/secret")),
        Subscription(name="weekly-analyst", to=("analyst@example.org",), mode="daily"),
    ]
    router = SubscriptionRouter(email, subs)
    run_sync(source=source, store=store, watchlist=watch, clock=clock, router=router)

    clock.advance(days=1)
    source.fail_with = FetchError("GET /version failed after 5 attempts: 503")
    try:
        run_sync(source=source, store=store, watchlist=watch, clock=clock, router=router)
    except FetchError:
        pass
    source.fail_with = None

    clock.advance(days=1)
    seal = copy.deepcopy(source.records["NCT02606461"])
    status = seal["protocolSection"]["statusModule"]
    status["overallStatus"] = "COMPLETED"
    status["completionDateStruct"] = {"date": "2026-10-30", "type": "ACTUAL"}
    source.put(seal)
    source.data_timestamp = "2026-11-04T09:00:06"
    run_sync(source=source, store=store, watchlist=watch, clock=clock, router=router)

    outbox = Outbox(
        store,
        clock=clock,
        email=email,
        settings=OutboxSettings(max_attempts=1),
        email_sender=AcceptingSmtp,
        webhook_sender=lambda url: RefusingWebhook(),
    )
    outbox.flush()
    store.transition_alert(
        unhealthy=True,
        now=clock(),
        recipient=None,
        render=lambda unhealthy, episode: {},
    )
    store.close()
    print(OUT, "written;", timedelta(0))


if __name__ == "__main__":
    main()
