"""The web page's promises that need no browser: headers, tokens, caching, paging, refusals;
over a real database (SQLite, and PostgreSQL when configured) filled by real syncs."""

from __future__ import annotations

import copy
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import FakeClock, selinexor_records
from tests.fakes.source import FakeSource
from tests.records import complete, slip
from trialwatch.app import App
from trialwatch.config import Settings, WebSettings
from trialwatch.messages import ChangeReport, TrialChanges, render_change_report
from trialwatch.models import Severity, WatchItem
from trialwatch.overview import OverviewQuery, WatchRow, next_expected, select_page
from trialwatch.storage import Store
from trialwatch.sync import run_sync
from trialwatch.web import CSP, TokenNeededError, check_bind, login_link, make_server

SEAL = "NCT02606461"
SLIP = "NCT04595994"  # primary completion 2027-06-30 est. -> 2028-08-31 est.
TOKEN = "s3cret-token-" + "x" * 20
FEED_TOKEN = "feed-token-" + "y" * 20
PAGES = ("/", f"/trial/{SEAL}", "/trial/seal", "/changes", "/timeline", "/feed.atom")


class Watch:
    """The review's 13 trials synced, then SEAL completes a day later."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.records = {
            r["protocolSection"]["identificationModule"]["nctId"]: r for r in selinexor_records()
        }
        self.source = FakeSource(list(self.records.values()), data_timestamp="2026-11-23T09:00:06")
        self.clock = FakeClock(datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
        self.watch = [WatchItem(i, "SEAL" if i == SEAL else None, None) for i in self.records]
        self.sync()
        self.clock.advance(days=1)
        record = copy.deepcopy(self.records[SEAL])
        complete(record)
        self.source.put(record)
        slipped = copy.deepcopy(self.records[SLIP])
        slip(slipped)
        self.source.put(slipped)
        self.source.data_timestamp = "2026-11-24T09:00:06"
        self.sync()

    def sync(self) -> None:
        run_sync(
            source=self.source, store=self.store, watchlist=self.watch, clock=self.clock, force=True
        )


@pytest.fixture
def watch(store: Store) -> Watch:
    return Watch(store)


def _client(watch: Watch, **web: Any) -> Iterator[httpx.Client]:
    """A client of the page served by uvicorn on a free loopback port, in a thread."""
    settings = Settings(web=WebSettings(**web))
    app = App(settings=settings, store=watch.store, clock=watch.clock)
    server = make_server(app, settings.web, host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=5)


@pytest.fixture
def client(watch: Watch) -> Iterator[httpx.Client]:
    yield from _client(watch)


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_strict_about_what_it_loads_and_carries_no_script(
    client: httpx.Client, path: str
) -> None:
    answer = client.get(path)
    assert answer.status_code == 200
    assert answer.headers["content-security-policy"] == CSP
    assert "script-src 'none'" in CSP and "'unsafe-inline'" not in CSP
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "<script" not in answer.text
    assert " style=" not in answer.text  # the policy would block inline styles


def test_seals_page_tells_the_completion_in_the_emails_words(client: httpx.Client) -> None:
    page = client.get(f"/trial/{SEAL}").text
    assert "Active, not recruiting → Completed" in page
    assert f"https://clinicaltrials.gov/study/{SEAL}?tab=history" in page
    versions = re.findall(r'<option value="(\d+)"', page)
    assert len(set(versions)) == 2
    _, newer = sorted(set(versions), key=int)
    same = client.get(f"/trial/{SEAL}?from={newer}&to={newer}").text
    assert "No difference." in same
    assert client.get(f"/trial/{SEAL}?from=999999&to={newer}").status_code == 400
    assert client.get("/trial/NCT99999999").status_code == 404


def test_the_changes_page_filters_by_severity(client: httpx.Client) -> None:
    everything = client.get("/changes?since=2026-11-01").text
    assert "Active, not recruiting → Completed" in everything
    assert "Primary completion" in everything
    critical = client.get("/changes?since=2026-11-01&min_severity=critical").text
    assert "Active, not recruiting → Completed" in critical
    assert "Primary completion" not in critical
    assert client.get("/changes?since=yesterday").status_code == 400
    assert client.get("/changes?min_severity=loud").status_code == 400


def test_a_reload_costs_a_304_until_the_database_is_written(
    watch: Watch, client: httpx.Client
) -> None:
    first = client.get("/")
    assert first.headers["last-modified"] == "Tue, 24 Nov 2026 10:00:00 GMT"
    again = client.get("/", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    since = client.get("/", headers={"If-Modified-Since": first.headers["last-modified"]})
    assert since.status_code == 304
    # The CT.gov timestamp does not move the validators; a write to the database does.
    watch.clock.advance(hours=1)
    watch.store.add_watches(["NCT01213277"], source="cli", now=watch.clock())
    after = client.get("/", headers={"If-None-Match": first.headers["etag"]})
    assert after.status_code == 200
    assert after.headers["etag"] != first.headers["etag"]


def test_nothing_can_be_written(client: httpx.Client) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert client.request(method, "/").status_code == 405


def test_healthz_is_what_status_check_says(watch: Watch, client: httpx.Client) -> None:
    healthy = client.get("/healthz")
    assert healthy.status_code == 200 and healthy.json()["healthy"] is True
    watch.clock.advance(days=10)  # the stored data grows older than [health] allows
    stale = client.get("/healthz")
    assert stale.status_code == 503
    assert "hours old" in stale.json()["problems"][0]


def test_the_watch_set_pages_beyond_its_page_size(watch: Watch) -> None:
    for client in _client(watch, page_size=10):
        first = client.get("/").text
        assert "13 of 13 trials, page 1 of 2" in first
        assert first.count("<tr>") == 11  # the header and ten trials
        assert 'href="/?page=2" rel="next"' in first
        second = client.get("/?page=2").text
        assert second.count("<tr>") == 4
        assert client.get("/?page=0").status_code == 400
        assert client.get("/?sort=sideways").status_code == 400


def test_with_a_token_nothing_is_shown_without_it(watch: Watch, tmp_path: Path) -> None:
    (tmp_path / "t").write_text(TOKEN)
    (tmp_path / "f").write_text(FEED_TOKEN)
    for client in _client(watch, token_file=tmp_path / "t", feed_token_file=tmp_path / "f"):
        assert client.get("/").status_code == 401
        assert "SEAL" not in client.get("/").text
        assert client.get("/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert client.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get(f"/feed.atom?token={FEED_TOKEN}").status_code == 200
        assert client.get(f"/export.json?token={FEED_TOKEN}").status_code == 401
        assert client.get("/healthz").status_code == 200  # for health checks; no registry text

        base = str(client.base_url).rstrip("/")
        link = login_link(base, TOKEN, now=watch.clock(), nonce="n1")
        assert TOKEN not in link
        signed_in = client.get(link, follow_redirects=False)
        assert signed_in.status_code == 303
        assert "httponly" in signed_in.headers["set-cookie"].lower()
        assert TOKEN not in signed_in.headers["set-cookie"]
        assert client.get("/").status_code == 200  # the cookie now
        client.cookies.clear()
        assert client.get(link, follow_redirects=False).status_code == 401  # once only
        old = login_link(base, TOKEN, now=watch.clock() - timedelta(hours=1), nonce="n2")
        assert client.get(old, follow_redirects=False).status_code == 401  # expired
        forged = link.replace("n1", "n3")
        assert client.get(forged, follow_redirects=False).status_code == 401


def test_a_token_is_needed_beyond_loopback(tmp_path: Path) -> None:
    check_bind("127.0.0.1", WebSettings())
    check_bind("::1", WebSettings())
    with pytest.raises(TokenNeededError, match="needs a token"):
        check_bind("0.0.0.0", WebSettings())
    (tmp_path / "t").write_text(TOKEN)
    check_bind("0.0.0.0", WebSettings(token_file=tmp_path / "t"))
    (tmp_path / "short").write_text("abc")
    with pytest.raises(ValueError, match="at least 16 characters"):
        WebSettings(token_file=tmp_path / "short")
    with pytest.raises(ValueError, match="needs a token"):
        WebSettings(host="0.0.0.0")


def test_emails_link_to_the_trials_page_when_public_url_is_set() -> None:
    from trialwatch.models import Category, ChangeKind, FieldChange

    status_change = FieldChange(
        field="overall_status",
        category=Category.STATUS,
        severity=Severity.CRITICAL,
        kind=ChangeKind.CHANGED,
        summary="Overall status: Active, not recruiting → Completed",
        old="ACTIVE_NOT_RECRUITING",
        new="COMPLETED",
    )
    report = ChangeReport(
        trials=(TrialChanges(SEAL, "SEAL", None, (status_change,)),),
        data_timestamp=None,
        generated_at=datetime(2026, 11, 24, tzinfo=UTC),
        public_url="https://trials.example.org/watch",
    )
    rendered = render_change_report(report)
    assert f"https://trials.example.org/watch/trial/{SEAL}" in rendered.text
    assert f'href="https://trials.example.org/watch/trial/{SEAL}"' in rendered.html
    plain = render_change_report(ChangeReport(report.trials, None, report.generated_at))
    assert "/trial/" not in plain.text


def _row(nct_id: str, **kw: Any) -> WatchRow:
    base: dict[str, Any] = {
        "label": nct_id,
        "title": None,
        "status": "RECRUITING",
        "sources": ("config",),
        "last_changed_at": None,
        "last_change": None,
        "severity": None,
    }
    return WatchRow(nct_id=nct_id, **{**base, **kw})


def test_the_table_filters_sorts_and_pages_as_asked() -> None:
    moment = datetime(2026, 11, 24, tzinfo=UTC)
    rows = [
        _row("NCT1", label="b", status="COMPLETED", sources=("query:selinexor",)),
        _row("NCT2", label="a", last_changed_at=moment, severity=Severity.CRITICAL),
        _row("NCT3", label="c", last_changed_at=moment - timedelta(days=1)),
    ]
    assert [r.nct_id for r in select_page(rows, OverviewQuery()).rows] == ["NCT2", "NCT3", "NCT1"]
    same_sync = [
        _row("NCT4", label="a", last_changed_at=moment, severity=Severity.MINOR),
        _row("NCT5", label="z", last_changed_at=moment, severity=Severity.CRITICAL),
    ]
    assert [r.nct_id for r in select_page(same_sync, OverviewQuery()).rows] == ["NCT5", "NCT4"]
    by_label = select_page(rows, OverviewQuery(sort="label"))
    assert [r.label for r in by_label.rows] == ["a", "b", "c"]
    assert [r.nct_id for r in select_page(rows, OverviewQuery(source="query")).rows] == ["NCT1"]
    assert [
        r.nct_id for r in select_page(rows, OverviewQuery(severity=Severity.CRITICAL)).rows
    ] == ["NCT2"]
    assert [r.nct_id for r in select_page(rows, OverviewQuery(status="COMPLETED")).rows] == ["NCT1"]
    paged = select_page(rows, OverviewQuery(page=9, page_size=2))
    assert (paged.page, paged.pages, len(paged.rows), paged.matching) == (2, 2, 1, 3)


def test_the_next_expected_date_is_the_first_still_ahead() -> None:
    from trialwatch.models import PartialDate

    snapshot = {
        "start_date": PartialDate("2020-01", "ACTUAL"),
        "primary_completion_date": PartialDate("2026-11", "ACTUAL"),
        "completion_date": PartialDate("2027-06-30", "ESTIMATED"),
    }
    assert next_expected(snapshot, date(2026, 11, 24)) == (
        "Completion",
        PartialDate("2027-06-30", "ESTIMATED"),
    )
    assert next_expected(snapshot, date(2026, 10, 1)) == (
        "Primary completion",
        PartialDate("2026-11", "ACTUAL"),
    )
    assert next_expected(None, date(2026, 10, 1)) is None
