"""The client against the real registry's unkind habits (issues #16 and #22): refused ids, heads
too large, throttles that last minutes, answers without end or that drip, redirects elsewhere.

Unit tests use httpx.MockTransport; end-to-end ones the faithful stand-in (FakeCtGov) or a raw
loopback socket where a server must misbehave below HTTP. Waits go through a fake sleep."""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.ctgov_server import FakeCtGov, load_records
from trialwatch.config import ApiSettings
from trialwatch.ctgov import DEFAULT_USER_AGENT, MAX_HEAD_BYTES, CtGovClient
from trialwatch.exceptions import (
    ApiRequestError,
    ApiUnavailableError,
    ApiUnreachableError,
    TransientFetchError,
)
from trialwatch.models import FoundStudy, MissingStudy

RECORDS = load_records()
IDS = [r["protocolSection"]["identificationModule"]["nctId"] for r in RECORDS]
BASE = "https://clinicaltrials.gov/api/v2"


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


def client_for(
    handler: Callable[[httpx.Request], httpx.Response], sleeps: Sleeps, **kw: Any
) -> CtGovClient:
    options: dict[str, Any] = {"base_url": BASE, "min_interval_s": 0, **kw}
    return CtGovClient(
        transport=httpx.MockTransport(handler),
        sleep=sleeps.sleep,
        monotonic=sleeps.monotonic,
        **options,
    )


def page(ids: list[str], total: int | None = None) -> httpx.Response:
    studies = [{"protocolSection": {"identificationModule": {"nctId": i}}} for i in ids]
    body: dict[str, Any] = {"studies": studies}
    body["totalCount"] = len(ids) if total is None else total
    return httpx.Response(200, json=body)


# -- attributing studies to the ids asked -------------------------------------------------------
# Where the spec and the facts are silent, the server is assumed less kind than we would like:
# a study nobody asked for, and an alias list naming another study of the same page.


def test_a_study_nobody_asked_for_does_not_count_toward_the_registry_count() -> None:
    asked, stray = ["NCT00000001", "NCT00000002"], "NCT00000099"
    sent: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        token = request.url.params.get("pageToken")
        sent.append(token)
        if token is None:  # the first page: one asked, one not, and the count of the two asked
            response = page([asked[0], stray], total=2)
            return httpx.Response(200, json={**response.json(), "nextPageToken": "p2"})
        return page([asked[1]], total=2)

    with client_for(handler, Sleeps()) as client:
        results = list(client.iter_studies(asked))
    assert sorted(r.requested_id for r in results if isinstance(r, FoundStudy)) == asked
    assert [r for r in results if isinstance(r, MissingStudy)] == []
    assert sent == [None, "p2"]  # the count of the asked was not reached on the first page


def test_a_study_listing_an_asked_id_as_an_alias_counts_though_it_answers_nothing() -> None:
    """The retired id's own record and the surviving study (which lists it) both on the page:
    the registry counts both. The survivor answers no id (the retired one is answered by its
    own record), but it is no stranger: counted, an absent id asked beside them is confirmed
    absent, not left 'unconfirmed' by a count that seemed short."""
    retired, survivor, absent = "NCT00000001", "NCT00000003", "NCT00000002"
    studies = [
        {"protocolSection": {"identificationModule": {"nctId": retired}}},
        {
            "protocolSection": {
                "identificationModule": {"nctId": survivor, "nctIdAliases": [retired]}
            }
        },
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"studies": studies, "totalCount": 2})

    with client_for(handler, Sleeps()) as client:
        results = list(client.iter_studies([retired, absent]))
    assert {r.requested_id: r.nct_id for r in results if isinstance(r, FoundStudy)} == {
        retired: retired
    }
    [missing] = [r for r in results if isinstance(r, MissingStudy)]
    assert (missing.requested_id, missing.confirmed) == (absent, True)


@pytest.mark.parametrize("order", ["lister first", "own record first"])
def test_a_study_answers_its_own_id_before_another_lists_it_as_an_alias(order: str) -> None:
    lister, listed = "NCT00000001", "NCT00000002"
    studies = [
        {"protocolSection": {"identificationModule": {"nctId": lister, "nctIdAliases": [listed]}}},
        {"protocolSection": {"identificationModule": {"nctId": listed}}},
    ]
    if order == "own record first":
        studies.reverse()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"studies": studies, "totalCount": 2})

    with client_for(handler, Sleeps()) as client:
        results = list(client.iter_studies([lister, listed]))
    served_as = {r.requested_id: r.nct_id for r in results if isinstance(r, FoundStudy)}
    assert served_as == {lister: lister, listed: listed}  # no merge read into the order


# -- refused ids and heads too large ----------------------------------------------------------


def test_a_refused_id_is_found_by_halves_and_the_rest_of_the_batch_is_fetched() -> None:
    # One id the server refuses makes it refuse every request that holds it (spec's pattern).
    bad = "NCT00000007"
    wanted = [f"NCT{n:08d}" for n in range(1, 17)]
    sent: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        ids = request.url.params["filter.ids"].split(",")
        sent.append(ids)
        if bad in ids:
            return httpx.Response(400, text="filter.ids: a value does not match the pattern")
        return page(ids)

    with client_for(handler, Sleeps()) as client:
        results = list(client.iter_studies(wanted))
    found = [r.requested_id for r in results if isinstance(r, FoundStudy)]
    refused = [r for r in results if isinstance(r, MissingStudy)]
    assert sorted(found) == sorted(set(wanted) - {bad})
    assert [r.requested_id for r in refused] == [bad]
    assert refused[0].refused is not None and "refused by ClinicalTrials.gov" in refused[0].refused
    assert refused[0].confirmed is False
    assert len(sent) == 1 + 2 * 4  # the batch, then two halves at each of 4 levels


def test_a_400_about_another_parameter_is_not_split() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(400, text="`fields` has an unknown field name")

    with client_for(handler, Sleeps()) as client, pytest.raises(ApiRequestError):
        list(client.iter_studies(IDS))
    assert len(calls) == 1


def test_many_refusals_in_one_batch_are_not_about_ids() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, text="Bad Request")

    wanted = [f"NCT{n:08d}" for n in range(1, 33)]
    with client_for(handler, Sleeps()) as client, pytest.raises(ApiRequestError, match="not about"):
        list(client.iter_studies(wanted))


@pytest.mark.parametrize("watched", [2, 3, 8])
def test_a_small_batch_refused_id_by_id_is_not_about_ids(watched: int) -> None:
    """Something between us and CT.gov (a proxy, a captive portal) answering every request
    with a bare 400: a watch set of a few trials would have had each id marked refused, and
    left out of every later sync for good. Every id of a batch of several refused, one by one,
    is the refusal said instead (each id matched the spec's pattern before it was sent)."""
    calls: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.params["filter.ids"].split(","))
        return httpx.Response(400, text="Bad Request")

    wanted = [f"NCT{n:08d}" for n in range(1, watched + 1)]
    with (
        client_for(handler, Sleeps()) as client,
        pytest.raises(ApiRequestError, match=f"every id of a batch of {watched}"),
    ):
        list(client.iter_studies(wanted))
    assert sorted(ids[0] for ids in calls if len(ids) == 1) == wanted  # each was asked alone


def test_one_watched_id_refused_is_still_marked_refused() -> None:
    """A watch set of one cannot tell a refused id from a proxy refusing everything: the id
    is marked refused (shown by `status`, one notice), as a refusal among others is."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, text="Bad Request")

    with client_for(handler, Sleeps()) as client:
        results = list(client.iter_studies(["NCT00000001"]))
    assert [r.refused is not None for r in results if isinstance(r, MissingStudy)] == [True]


@pytest.mark.parametrize("status", [414, 431, 400])
def test_a_head_too_large_halves_the_batch(status: int) -> None:
    wanted = [f"NCT{n:08d}" for n in range(1, 9)]

    def handler(request: httpx.Request) -> httpx.Response:
        ids = request.url.params["filter.ids"].split(",")
        if len(ids) > 2:
            return httpx.Response(status, text="Request Header Fields Too Large")
        return page(ids)

    with client_for(handler, Sleeps()) as client:
        results = list(client.iter_studies(wanted))
    assert sorted(r.requested_id for r in results if isinstance(r, FoundStudy)) == wanted


def test_the_batch_is_cut_so_that_the_request_head_stays_within_8_kb() -> None:
    wanted = [f"NCT{n:08d}" for n in range(1, 651)]
    with FakeCtGov(RECORDS) as api:
        # A long User-Agent (a contact) and the largest batch the settings allow: the stand-in
        # refuses heads over 8 KB with 414/431, the client must not send one.
        with CtGovClient(
            base_url=api.base_url,
            min_interval_s=0,
            batch_size=650,
            user_agent="trialwatch/0.1 (mailto:" + "x" * 300 + "@example.org)",
            sleep=lambda s: None,
        ) as client:
            results = list(client.iter_studies(wanted))
        assert len(results) == 650
        heads = [
            len(f"GET {r.path}") + sum(len(k) + len(v) + 4 for k, v in r.headers.items())
            for r in api.requests
        ]
    assert max(heads) <= MAX_HEAD_BYTES
    assert api.count_lookups() == 2  # 650 ids did not fit in one request


# -- throttles, Retry-After, pacing ---------------------------------------------------------------


def test_a_throttle_without_retry_after_is_ridden_out_for_minutes_saying_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers = iter([httpx.Response(429)] * 8 + [httpx.Response(200, json={"apiVersion": "2"})])
    sleeps = Sleeps()
    with client_for(lambda r: next(answers), sleeps) as client:
        version = client.version()  # default max_attempts (5) would have given up
    assert version.api_version == "2"
    assert sum(sleeps.waits) >= 120
    assert max(sleeps.waits) <= 60
    assert "waiting" in caplog.text and "before trying again" in caplog.text


def test_a_throttle_that_outlasts_the_budget_fails_in_plain_words() -> None:
    sleeps = Sleeps()
    with (
        client_for(lambda r: httpx.Response(503), sleeps) as client,
        pytest.raises(ApiUnavailableError) as caught,
    ):
        client.version()
    assert 180 <= sum(sleeps.waits) <= 180 + 60
    assert "try again later" in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_maintenance_pages_keep_the_short_budget() -> None:
    html = httpx.Response(
        200, text="<html>maintenance</html>", headers={"Content-Type": "text/html"}
    )
    sleeps = Sleeps()
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return html

    with client_for(handler, sleeps, max_attempts=3) as client, pytest.raises(TransientFetchError):
        client.version()
    assert len(calls) == 3
    assert sum(sleeps.waits) < 30


def test_default_pacing_is_at_most_50_requests_a_minute() -> None:
    assert 60 / ApiSettings().min_interval_s <= 50


def test_the_user_agent_is_configurable_and_names_trialwatch_by_default() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["User-Agent"])
        return httpx.Response(200, json={"apiVersion": "2.0.5", "dataTimestamp": "x"})

    with client_for(handler, Sleeps()) as client:
        client.version()
    with client_for(handler, Sleeps(), user_agent="acme-watch (mailto:ops@acme.example)") as c:
        c.version()
    assert seen[0] == DEFAULT_USER_AGENT and "trialwatch/" in seen[0]
    assert seen[1] == "acme-watch (mailto:ops@acme.example)"
    with pytest.raises(ValueError, match="printable ASCII"):
        ApiSettings(user_agent="bad\r\nheader")


def test_version_without_a_data_timestamp_is_a_version() -> None:
    with FakeCtGov(RECORDS[:1]) as api, CtGovClient(base_url=api.base_url, min_interval_s=0) as c:
        api.omit_data_timestamp()
        version = c.version()
    assert version.api_version == "2.0.5"
    assert version.data_timestamp is None


# -- hostile answers (#22) ------------------------------------------------------------------------


class RawServer:
    """A loopback server that answers every connection with ``respond(socket)``."""

    def __init__(self, respond: Callable[[socket.socket], None]) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._respond = respond
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/api/v2"

    def _serve(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            self._respond(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sock.close()


@pytest.fixture
def endless() -> Iterator[RawServer]:
    def respond(conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
        )
        chunk = b'{"studies": [' + b" " * 65536
        while True:
            conn.sendall(chunk)

    with RawServer(respond) as server:
        yield server


def test_an_endless_answer_is_cut_off_at_the_cap_and_said_plainly(endless: RawServer) -> None:
    with (
        CtGovClient(
            base_url=endless.base_url, min_interval_s=0, max_answer_bytes=2 * 1024 * 1024
        ) as client,
        pytest.raises(ApiUnavailableError) as caught,
    ):
        list(client.iter_studies(IDS[:2]))
    assert "too large" in str(caught.value) and "2 MiB" in str(caught.value)


def test_an_announced_size_over_the_cap_is_refused_before_reading() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"{}" * 10, headers={"Content-Length": "999999999"})

    with (
        client_for(handler, Sleeps(), max_answer_bytes=1000) as c,
        pytest.raises(ApiUnavailableError, match="announced 999,999,999 bytes"),
    ):
        c.version()


def test_a_dripping_answer_meets_the_exchange_deadline() -> None:
    def respond(conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        for _ in range(100):
            time.sleep(0.2)
            conn.sendall(b" ")

    with RawServer(respond) as server:
        started = time.monotonic()
        with (
            CtGovClient(
                base_url=server.base_url, min_interval_s=0, timeout_s=1, max_attempts=2
            ) as client,
            pytest.raises(ApiUnavailableError, match="did not answer in time"),
        ):
            client.version()  # each read arrives within timeout_s; the whole never does
        elapsed = time.monotonic() - started
    assert elapsed < 4 * 1 * 2 + 5  # two exchanges of at most 4 x timeout_s, and a backoff


def test_dripping_headers_meet_the_exchange_deadline_too() -> None:
    """The status line and headers a byte at a time: each read arrives within timeout_s, so
    only a deadline on every socket read (not just the body's) ends the exchange."""

    def respond(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Pad: ")
        for _ in range(300):  # a minute of drip, far past two exchanges' deadlines
            time.sleep(0.2)
            conn.sendall(b"a")

    with RawServer(respond) as server:
        started = time.monotonic()
        with (
            CtGovClient(
                base_url=server.base_url, min_interval_s=0, timeout_s=1, max_attempts=2
            ) as client,
            pytest.raises(ApiUnavailableError, match="did not answer in time"),
        ):
            client.version()
        elapsed = time.monotonic() - started
    assert elapsed < 4 * 1 * 2 + 5  # two exchanges of at most 4 x timeout_s, and a backoff


@pytest.mark.parametrize(
    "location",
    ["https://elsewhere.example/api/v2/version", "http://clinicaltrials.gov/api/v2/version"],
)
def test_a_redirect_to_another_host_or_scheme_is_not_followed(location: str) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(302, headers={"Location": location})

    with client_for(handler, Sleeps()) as c, pytest.raises(ApiRequestError, match="not followed"):
        c.version()
    assert calls == [f"{BASE}/version"]


def test_plain_http_is_not_redirected_to_https() -> None:
    """A redirect from a plain-HTTP base to https on the same host is another scheme: refused,
    as a redirect from https to http is (the test above)."""
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(302, headers={"Location": "https://127.0.0.1:8000/api/v2/version"})

    with (
        client_for(handler, Sleeps(), base_url="http://127.0.0.1:8000/api/v2") as c,
        pytest.raises(ApiRequestError, match="not followed"),
    ):
        c.version()
    assert calls == ["http://127.0.0.1:8000/api/v2/version"]


def _https_transport(client: CtGovClient) -> Any:
    """The client's transport for https URLs (built at its first request)."""
    # httpx keeps its mounts by URL pattern; the client mounts one transport on https.
    (transport,) = (t for p, t in client._http._mounts.items() if p.scheme == "https")
    return transport


def _tls_context(transport: Any) -> ssl.SSLContext:
    # httpx's transport -> httpcore's pool -> its TLS context.
    return transport._pool._ssl_context  # type: ignore[no-any-return]


def test_the_ca_bundle_is_loaded_by_the_first_https_request_only() -> None:
    """Loading the CA bundle cost each command ~0.1 s: a client of a plain-HTTP base that sends
    nothing over https never loads it, and its plain transport's TLS context trusts no
    authority and requires a certificate (fails closed)."""
    server = FakeCtGov(load_records()).start()
    try:
        with CtGovClient(base_url=server.base_url, min_interval_s=0) as client:
            assert server.base_url.startswith("http://")
            client.version()
            assert not _https_transport(client).built
            plain = _tls_context(client._http._transport)
            assert plain.verify_mode == ssl.CERT_REQUIRED and plain.check_hostname
            assert plain.cert_store_stats()["x509_ca"] == 0
    finally:
        server.stop()


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[str]:
    """An https server on loopback answering every GET with ``{"ok": 1}``; yields its URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"ok": 1}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_plain_http_base_reads_the_history_over_verified_https(
    tls_server: str, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mirror's base URL over plain HTTP with the record history over https (``[api]
    history_url``): the https request is made, and verified against the trusted authorities
    (here the test's own, named by SSL_CERT_FILE as a user would name a private CA)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    with CtGovClient(base_url="http://127.0.0.1:9/api/v2", min_interval_s=0) as client:
        assert client.get_body(f"{tls_server}/api/int/studies/NCT02606461") == b'{"ok": 1}'
        https = _https_transport(client)
        assert https.built
        context = _tls_context(https._transport)
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_https_is_refused_from_an_authority_nobody_trusts(tls_server: str) -> None:
    """The same server, its certificate trusted by nobody (the CA bundle as shipped): refused,
    in words that name the history's host, not the API's."""
    with (
        CtGovClient(base_url="http://127.0.0.1:9/api/v2", min_interval_s=0, max_attempts=1) as c,
        pytest.raises(ApiUnreachableError, match="certificate is not trusted") as refused,
    ):
        c.get_body(f"{tls_server}/api/int/studies/NCT02606461")
    assert str(refused.value).startswith(
        f"could not open a secure connection to {tls_server.removeprefix('https://')}:"
    )


def test_an_unreachable_history_host_is_named_with_its_setting() -> None:
    """A history URL on another host that refuses connections: the message names that host and
    `[api] history_url`, not the API's base URL."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with (
        CtGovClient(
            base_url="http://127.0.0.1:9/api/v2",
            min_interval_s=0,
            max_attempts=1,
            backoff_initial_s=0,
        ) as c,
        pytest.raises(TransientFetchError) as failed,
    ):
        c.get_body(f"http://127.0.0.1:{port}/api/int/studies/NCT02606461")
    assert f"could not reach 127.0.0.1:{port}" in str(failed.value)
    assert "`[api] history_url`" in str(failed.value)


def test_a_redirect_on_the_same_host_is_followed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/version"):
            return httpx.Response(301, headers={"Location": "/api/v2/version2"})
        return httpx.Response(200, json={"apiVersion": "2.0.5", "dataTimestamp": "t"})

    with client_for(handler, Sleeps()) as client:
        assert client.version().data_timestamp == "t"


def test_a_redirect_elsewhere_marks_no_trial_missing() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "https://portal.example/studies"})

    results: list[Any] = []
    with client_for(handler, Sleeps()) as client, pytest.raises(ApiRequestError):
        results.extend(client.iter_studies(IDS))
    assert results == []  # the run fails; no trial is said to be gone


def test_a_throttle_with_tiny_waits_still_ends() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(429)

    with (
        client_for(handler, Sleeps(), backoff_initial_s=0.001, backoff_max_s=0.001) as client,
        pytest.raises(ApiUnavailableError),
    ):
        client.version()
    assert len(calls) == 50


# --- get_body: the registry's other interfaces (its record history) through the same client ---


def test_get_body_reads_api_int_on_the_apis_host_following_its_redirects() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        if request.url.path.endswith("/history"):
            return httpx.Response(301, headers={"Location": "/api/int/studies/NCT1/history2"})
        return httpx.Response(200, content=b"<html>unchecked</html>")

    url = "https://clinicaltrials.gov/api/int/studies/NCT1/history"
    with client_for(handler, Sleeps()) as client:
        assert client.get_body(url) == b"<html>unchecked</html>"  # the caller checks its shape
        assert client.requests_made == 1
    assert calls == [url, "https://clinicaltrials.gov/api/int/studies/NCT1/history2"]


def test_get_body_on_a_history_url_of_another_host_keeps_to_that_host() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        if request.url.path == "/int/studies/NCT1/history":
            return httpx.Response(302, headers={"Location": "/int/v/NCT1/history"})
        if request.url.path == "/int/studies/NCT2/history":
            return httpx.Response(302, headers={"Location": "https://clinicaltrials.gov/x"})
        return httpx.Response(200, content=b"{}")

    with client_for(handler, Sleeps()) as client:
        # The user set `[api] history_url` there: its own redirects are followed ...
        assert client.get_body("https://mirror.example/int/studies/NCT1/history") == b"{}"
        # ... and a redirect away from it is not, even to the API's host.
        with pytest.raises(ApiRequestError, match="history_url"):
            client.get_body("https://mirror.example/int/studies/NCT2/history")
    assert calls[:2] == [
        "https://mirror.example/int/studies/NCT1/history",
        "https://mirror.example/int/v/NCT1/history",
    ]


def test_get_body_keeps_the_size_cap_and_retries() -> None:
    answers = iter([httpx.Response(503), httpx.Response(200, content=b"x" * 2048)])

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers)

    sleeps = Sleeps()
    with client_for(handler, sleeps, max_answer_bytes=1024) as client:
        with pytest.raises(ApiUnavailableError, match="too large"):
            client.get_body("https://clinicaltrials.gov/api/int/studies/NCT1/history")
        assert client.requests_made == 2
    assert len(sleeps.waits) == 1  # the 503 was retried after a pause
