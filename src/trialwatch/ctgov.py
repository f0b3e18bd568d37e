"""The ClinicalTrials.gov Data API v2 client — the only module that speaks to CT.gov
(webhook delivery, the other HTTP, is :mod:`trialwatch.notify`'s).

:class:`CtGovClient` asks ``GET /version`` and ``GET /studies`` (by ids, by search, by last
update) and turns the answers into the value types of :mod:`trialwatch.models`. It knows the
API's traps (OpenAPI spec v2.0.5 and observed behaviour): ``pageSize`` defaults to 10, pages are
chained with ``nextPageToken``, ids that do not exist are silently absent, an alias id comes back
under its canonical ``nctId``, a page can arrive short of what ``totalCount`` counted, and a 200
can be an HTML maintenance page. It is polite (at least ``min_interval_s`` between two
requests), retries what can heal (timeouts, 5xx, 429, refused or broken connections, garbled
answers) with jittered exponential backoff, honours ``Retry-After``, and says at once what
cannot heal (a host name that does not resolve, no route to the network, a TLS certificate that
is not trusted).

It raises only :class:`~trialwatch.exceptions.FetchError` subclasses, each one plain line with
the technical cause in ``detail`` and ``__cause__``: :class:`ApiUnreachableError` (not reached),
:class:`ApiUnavailableError` (reached, still failing when retries ran out),
:class:`ShortReadError` (a listing arrived short), and :class:`ApiRequestError` (a request
refused, or a malformed id). It never touches storage, never diffs, never decides what to poll.
"""

from __future__ import annotations

import email.utils
import errno
import hashlib
import json
import logging
import random
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Any, Final, Self, TypeVar

import httpcore
import httpx
import msgspec
import orjson
from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    wait_random_exponential,
)

from trialwatch import __version__, vocabulary
from trialwatch.exceptions import (
    ApiRequestError,
    ApiUnavailableError,
    ApiUnreachableError,
    ShortReadError,
    TransientFetchError,
)
from trialwatch.ids import fold_nct_id, is_canonical, nct_id_problem
from trialwatch.models import (
    ApiVersion,
    FoundStudy,
    MissingStudy,
    StudyResult,
    StudySummary,
    compact_json,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_USER_AGENT",
    "MAX_PAGE_SIZE",
    "OVERALL_STATUSES",
    "SEARCH_PARAMS",
    "STUDY_FIELDS",
    "SUMMARY_FIELDS",
    "UPDATED_FIELDS",
    "CtGovClient",
    "record_fingerprint",
]

DEFAULT_BASE_URL: Final = "https://clinicaltrials.gov/api/v2"
# A request unanswered this long, retries included, is reported (with the default 30 s timeout:
# after the first silent try, about 30 s, never past a minute).
DEFAULT_SILENCE_BUDGET_S: Final = 45.0
DEFAULT_USER_AGENT: Final = f"trialwatch/{__version__} (+https://github.com/trialwatch/trialwatch)"
MAX_PAGE_SIZE: Final = 1000
# Politeness: third-party guides put CT.gov's limit near 50 requests a minute per address, and
# robots.txt asks for a 1-second crawl delay: 1.2 s between request starts is 50 a minute.
DEFAULT_MIN_INTERVAL_S: Final = 1.2
# A request head (request line and headers) must stay within 8 KB: the common limit of front
# servers (Apache's 8,190-byte request line, nginx's 8 KB buffers, CloudFront); past it they
# answer 414, 431 or a plain 400. The batch is cut to what fits (see _fit_batch).
MAX_HEAD_BYTES: Final = 8192
# CT.gov pages are a few MB (a study averages ~17 KB, the largest ~3.6 MB, and a batch asks only
# its protocol section): an answer past this is not CT.gov's, and reading on would only fill
# memory. It is refused, not retried.
DEFAULT_MAX_ANSWER_BYTES: Final = 128 * 1024 * 1024
# How long a run rides out throttling (429/503) without a usable Retry-After: clients report
# throttles lasting about a minute; at least 2 minutes, with waits growing to backoff_max_s.
DEFAULT_THROTTLE_BUDGET_S: Final = 180.0
# Ids per filter.ids request. A full sync of N studies costs ceil(N / batch) requests, paced at
# about one a second, so the batch is as large as a safe URL allows. Servers and proxies commonly
# accept request URLs up to 8 KB (8,190 bytes for Apache's request line, 8 KB for nginx's buffers
# and CloudFront); ids are sent with literal commas, so a batch of n ids makes a first-page URL of
# 127 + 12 n bytes with the default base URL and STUDY_FIELDS, and a next page adds a pageToken
# (~60 bytes). 500 ids: 6,127 bytes (6,186 with a token), 1.8 KB under the bound for a longer
# base_url or a proxy's absolute-form request line; 650 would be the most that fits. A server
# that still answers 414 URI Too Long gets the batch in halves.
DEFAULT_BATCH_SIZE: Final = 500
# derivedSection churns daily without any change a user cares about, and resultsSection can weigh
# megabytes; ProtocolSection plus the hasResults flag is everything the snapshot needs.
STUDY_FIELDS: Final = "ProtocolSection,HasResults"
# A search hit needs only what a "new matching trial" event shows (field names: CT.gov's data
# structure, which the spec points to; a date field comes back as {"date": ...} in its struct).
SUMMARY_FIELDS: Final = (
    "NCTId,BriefTitle,Acronym,Phase,OverallStatus,LeadSponsorName,"
    "StudyFirstPostDate,LastUpdatePostDate"
)
# An update listing needs the id, and the aliases so that a watch list holding an old id matches.
UPDATED_FIELDS: Final = "NCTId,NCTIdAlias"
SEARCH_PARAMS: Final = frozenset(
    {"query.term", "query.intr", "query.cond", "query.spons", "filter.overallStatus"}
)
OVERALL_STATUSES: Final = vocabulary.OVERALL_STATUSES
# No listing of CT.gov (~600,000 studies) needs more pages than this at 1000 a page; it only
# stops a server that keeps inventing tokens before its totalCount bounds the paging.
_MAX_LISTING_PAGES: Final = 100_000
# A listing stops after this many pages in a row that bring no new study (the count not met).
_MAX_STALLED_PAGES: Final = 3
# A 400 for filter.ids is split down to the id it refuses; more refusals than this in one batch
# are not about ids (a parameter CT.gov stopped accepting, a proxy refusing everything).
_MAX_REFUSED_PER_BATCH: Final = 8
_MAX_REDIRECTS: Final = 5

# The end of the exchange under way (time.monotonic()), read by every socket read: httpx's
# timeouts bound each read, so a server dripping its status line and headers a byte a second
# passes them and would hold the sync (and its lock) for as long as it pleases.
_EXCHANGE_ENDS: ContextVar[float | None] = ContextVar("trialwatch_exchange_ends", default=None)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose reads stop at the exchange's deadline (headers included)."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        ends = _EXCHANGE_ENDS.get()
        if ends is not None:
            left = ends - time.monotonic()
            if left <= 0:
                raise httpcore.ReadTimeout("the exchange's deadline passed")
            timeout = left if timeout is None else min(timeout, left)
        return self._stream.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, timeout)

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's socket backend, its streams bounded by :data:`_EXCHANGE_ENDS`."""

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._backend.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def _deadline_transport(verify: ssl.SSLContext | bool = True) -> httpx.HTTPTransport:
    """httpx's own transport, its sockets read under the exchange's deadline. httpx does not
    take a network backend, so it is set on the pool it made (tested end to end by a server
    dripping its headers: a change in httpx that drops it fails that test)."""
    transport = httpx.HTTPTransport(verify=verify)
    pool = getattr(transport, "_pool", None)
    if isinstance(pool, httpcore.ConnectionPool):
        pool._network_backend = _DeadlineBackend(pool._network_backend)
    return transport


def _plain_http_transport() -> httpx.HTTPTransport:
    """The transport for ``http://`` URLs. httpx gives every transport a TLS context, by default
    one that loads the CA bundle (~0.1 s); this one's is bare, never used over plain HTTP, and
    fails closed if it were (it requires a certificate and trusts no authority)."""
    return _deadline_transport(verify=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))


class _BuiltOnFirstUse(httpx.BaseTransport):
    """A transport made when its first request comes, for ``https://`` URLs: the CA bundle is
    loaded (~0.1 s of each command) only by a client that sends a request over TLS. A client
    of a plain-HTTP mirror may still read the record history over https (``[api]
    history_url``); it then verifies it as any https request is verified."""

    def __init__(self, make: Callable[[], httpx.BaseTransport]) -> None:
        self._make = make
        self._lock = threading.Lock()  # a sync fetches in a thread of its own
        self._transport: httpx.BaseTransport | None = None

    @property
    def built(self) -> bool:
        return self._transport is not None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            if self._transport is None:
                self._transport = self._make()
            transport = self._transport
        return transport.handle_request(request)

    def close(self) -> None:
        with self._lock:
            transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()


# The most attempts a throttle is ridden out for, whatever the waits add up to.
_MAX_THROTTLED: Final = 50
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
# A token CT.gov sends back is ~20-60 characters; the head is sized with room for a long one.
_TOKEN_ALLOWANCE: Final = "t" * 96
# Parameters trialwatch sends beside filter.ids: a 400 naming one of them is not about the ids.
_OTHER_PARAMS: Final = ("fields", "pageSize", "countTotal", "format", "pageToken", "markupFormat")

_NCT_ID: Final = re.compile(r"NCT\d{8}")
_RETRY_AFTER_SECONDS: Final = re.compile(r"\d+(?:\.\d+)?")
_ERROR_BODY_LIMIT: Final = 300
# What getaddrinfo says when a name does not resolve, on glibc, musl, macOS and Windows; the
# exception chain normally shows a socket.gaierror too, the words are for wrapped errors.
_DNS_FAILURES: Final = (
    "Name or service not known",
    "Temporary failure in name resolution",
    "No address associated with hostname",
    "nodename nor servname provided",
    "Name does not resolve",
    "getaddrinfo failed",
)
_NO_ROUTE: Final = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH})

log = logging.getLogger(__name__)

_T = TypeVar("_T")


class _Page(msgspec.Struct):
    """A ``/studies`` page whose studies stay as the bytes they were served as.

    msgspec checks the whole page and cuts each study out of it without building it (~5 µs a
    study, against ~80 µs for parsing the page into dicts), so a study whose fingerprint has not
    moved is never parsed at all.
    """

    studies: list[msgspec.Raw]
    nextPageToken: str | None = None  # CT.gov's names
    totalCount: int | None = None


class _ListingPage(msgspec.Struct):
    """A ``/studies`` page of a listing (a search, an update listing): small studies, parsed."""

    studies: list[Any]
    nextPageToken: str | None = None
    totalCount: int | None = None


class _Ident(msgspec.Struct):
    nctId: Any = None
    nctIdAliases: Any = None


class _Protocol(msgspec.Struct):
    identificationModule: _Ident | None = None


class _Head(msgspec.Struct):
    """Only what attributes a study to the ids asked for; the rest of it is skipped."""

    protocolSection: _Protocol | None = None


_PAGE_DECODER: Final = msgspec.json.Decoder(_Page)
_LISTING_DECODER: Final = msgspec.json.Decoder(_ListingPage)
_HEAD_DECODER: Final = msgspec.json.Decoder(_Head)
_P = TypeVar("_P", _Page, _ListingPage)


class _NotJson(ValueError):
    """The body is not JSON at all."""


class _BadShape(ValueError):
    """The body is JSON, not in the shape asked for; the message says how."""


class _RetryableError(TransientFetchError):
    """One failed attempt worth retrying.

    ``kind`` says what went wrong, for the plain message given once retries run out (see
    :func:`_exhausted`); ``status``: the HTTP status, if any; ``retry_after``: the wait the
    server asked for, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after


class CtGovClient:
    """A synchronous client of the ClinicalTrials.gov Data API v2.

    Use it as a context manager (or call :meth:`close`). Not thread-safe: one client per thread.
    ``sleep`` and ``monotonic`` are injectable so tests never really wait; every wait (pacing and
    retry backoff) goes through ``sleep``.
    """

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout_s: float = 30,
        min_interval_s: float = DEFAULT_MIN_INTERVAL_S,
        max_attempts: int = 5,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        max_retry_after_s: float = 120.0,
        batch_size: int = DEFAULT_BATCH_SIZE,
        user_agent: str | None = None,
        throttle_budget_s: float = DEFAULT_THROTTLE_BUDGET_S,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        deadline_s: float | None = None,
        silence_budget_s: float = DEFAULT_SILENCE_BUDGET_S,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Check the settings and open a connection pool; sends no request.

        Raises ``ValueError`` for settings that cannot work (a programming or config error, not a
        fetch failure): a base URL that is not http(s), non-positive timeouts or attempts, a
        ``batch_size`` outside 1..1000.

        ``throttle_budget_s``: how long to keep waiting out 429/503 answers without a usable
        ``Retry-After`` (other failures keep ``max_attempts``). ``max_answer_bytes``: the most an
        answer may weigh. ``deadline_s``: the most one exchange (connect, headers, whole body)
        may take; by default four times ``timeout_s``, which bounds a single read.
        ``silence_budget_s``: how long a request may go unanswered (timeouts, retries included)
        before the server is reported as not answering: no retry starts that could end past it.
        """
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"base_url must be an http(s) URL, got {_redact(url)!r}")
        if "?" in base_url or "#" in base_url:
            # Each request's path is added after the base URL: after a query or a fragment it
            # would be no path at all (…/api/v2#x + studies?… asks for /api/v2).
            raise ValueError(f"base_url must have no query or fragment, got {_redact(url)!r}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        if min_interval_s < 0:
            raise ValueError(f"min_interval_s must be >= 0, got {min_interval_s}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        if backoff_initial_s < 0 or backoff_max_s < 0 or max_retry_after_s < 0:
            raise ValueError("backoff_initial_s, backoff_max_s and max_retry_after_s must be >= 0")
        if not 1 <= batch_size <= MAX_PAGE_SIZE:
            raise ValueError(f"batch_size must be between 1 and {MAX_PAGE_SIZE}, got {batch_size}")
        if (
            throttle_budget_s < 0
            or max_answer_bytes < 1
            or (deadline_s is not None and deadline_s <= 0)
        ):
            raise ValueError("throttle_budget_s, max_answer_bytes and deadline_s must be positive")

        self._display_base = _redact(url).rstrip("/")
        # How people name the API in messages: "clinicaltrials.gov", or "127.0.0.1:8000".
        self._host = _host_named(url)
        self._timeout_s = timeout_s
        self._min_interval_s = min_interval_s
        self._max_attempts = max_attempts
        self._max_retry_after_s = max_retry_after_s
        self._throttle_budget_s = throttle_budget_s
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._max_answer_bytes = max_answer_bytes
        self._deadline_s = 4 * timeout_s if deadline_s is None else deadline_s
        self._silence_budget_s = silence_budget_s
        self._scheme = url.scheme
        self._host_port = (url.host, url.port)
        self._sleep = sleep
        self._monotonic = monotonic
        self._jitter = wait_random_exponential(multiplier=backoff_initial_s, max=backoff_max_s)
        self._last_start: float | None = None
        self._requests_made = 0
        self._http = httpx.Client(
            # httpx joins "/studies" onto the base path whether or not base_url ends with "/".
            base_url=base_url,
            timeout=httpx.Timeout(timeout_s),
            headers={
                "User-Agent": user_agent or DEFAULT_USER_AGENT,
                "Accept": "application/json",
            },
            transport=transport if transport is not None else _plain_http_transport(),
            mounts=None
            if transport is not None
            else {"https://": _BuiltOnFirstUse(_deadline_transport)},
            # Redirects are followed by hand, and only on the same scheme and host: an answer
            # from elsewhere (a captive portal, a hijacked name) is not CT.gov's.
            follow_redirects=False,
        )
        # What a request's path is joined onto: the text before "x" when httpx joins "x" onto
        # the base URL (its raw path with a trailing "/": "http://host:8000/" for a bare
        # "http://host:8000", "https://clinicaltrials.gov/api/v2/"), so that a path joined
        # here is the URL httpx would have made of it.
        self._base_path = str(self._http.build_request("GET", "x").url)[:-1]
        self._batch_size = self._fit_batch(batch_size)

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool. Idempotent."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def requests_made(self) -> int:
        """How many HTTP requests this client has sent, retries included."""
        return self._requests_made

    # -- endpoints -------------------------------------------------------------------------------

    def version(self) -> ApiVersion:
        """``GET /version``: the API version and the timestamp of the data currently served.

        Raises :class:`ApiUnreachableError` at once when the host name does not resolve (offline)
        or TLS is refused, :class:`ApiUnreachableError` or :class:`ApiUnavailableError` once
        retries are exhausted, :class:`ApiRequestError` on a 4xx other than 429. Does not cache:
        every call is a request.
        """
        data = self._get("/version", {}, _json_decoder(_version_problem))
        # The spec requires only apiVersion: without a dataTimestamp nothing says the data is
        # unchanged, and the sync is a normal full one.
        return ApiVersion(api_version=data["apiVersion"], data_timestamp=data.get("dataTimestamp"))

    def get_body(self, url: str) -> bytes:
        """``GET`` an absolute ``url`` (another interface of the same registry, such as its
        record history) with this client's pacing, retries and transport; return the body of
        its 2xx answer as served, unchecked: its shape is the caller's to check.

        Raises as :meth:`version` does (429/5xx and broken connections are retried; a 4xx is
        :class:`ApiRequestError` at once).
        """
        return self._get(url, {}, bytes)

    def iter_studies(self, ids: Sequence[str]) -> Iterator[StudyResult]:
        """Fetch the studies ``ids`` and account for every one of them.

        Ids are checked (``NCTnnnnnnnn``, case-insensitive, upper-cased) and de-duplicated in order
        *now*, before any request: a malformed id raises :class:`ApiRequestError` naming it. The
        returned iterator is lazy: it sends ``GET /studies`` for ``batch_size`` ids at a time
        (``pageSize`` set to the batch size, ``nextPageToken`` followed to the end), keeps one
        page in memory, and yields a :class:`FoundStudy` per requested id the API returned — under
        its own id or, for an alias, under the canonical study listing it in ``nctIdAliases`` —
        then, after each batch, a :class:`MissingStudy` per requested id it did not return.
        Each :class:`FoundStudy` carries the :func:`record_fingerprint` of its record. Each
        :class:`MissingStudy` says whether its absence is ``confirmed``: the batch asks
        ``countTotal=true``, and an absence is confirmed only when the registry's ``totalCount``
        (first page) is no more than the distinct studies that arrived over all pages of the
        batch; a registry that counted more than it sent (a short read) or gave no count leaves
        the batch's absences unconfirmed.
        Studies the API returns that were not asked for, or that carry no usable ``nctId``, are
        skipped. Records carry only ``protocolSection`` and ``hasResults`` (see
        :data:`STUDY_FIELDS`). Fetch failures surface from the iterator, part-way through; what
        was yielded before them stays valid.
        """
        if isinstance(ids, str):
            # A lone string is a Sequence[str] too, of one-letter "ids"; refuse it loudly.
            raise TypeError("ids must be a sequence of NCT ids, not a single string")
        wanted = _normalize_ids(ids)
        return self._iter_batches(wanted)

    def search(self, params: Mapping[str, str]) -> tuple[StudySummary, ...]:
        """Every study matching a registry search, as :class:`StudySummary` values.

        ``params`` are CT.gov's own search parameters, among :data:`SEARCH_PARAMS`: at least one
        of ``query.term``, ``query.intr``, ``query.cond``, ``query.spons`` (Essie expressions,
        e.g. ``"selinexor OR KPT-330"``), and optionally ``filter.overallStatus`` (statuses
        separated by ``,`` or ``|``). Anything else, an empty value or an unknown status raises
        ``ValueError`` now, before any request (the settings should have refused it).

        Pages of 1000 with :data:`SUMMARY_FIELDS` are followed to the end, then the distinct
        studies that arrived are checked against the registry's ``totalCount``: fewer (a
        short read), or no count at all, raises :class:`ShortReadError` and returns nothing.
        Hits come in the registry's order, each once. Never returns a partial result: any
        failure raises.
        """
        query = _search_params(params)
        hits = self._listing(query, SUMMARY_FIELDS, "a search")
        return tuple(_summary(nct_id, study) for nct_id, study in hits)

    def updated_since(self, day: date) -> frozenset[str]:
        """The ids of every study whose ``LastUpdatePostDate`` is ``day`` or later.

        ``day`` is a registry posting date (US Eastern), inclusive: pass the data day of the last
        complete sync, so that a day seen twice costs nothing and none is skipped. Sends
        ``filter.advanced=AREA[LastUpdatePostDate]RANGE[day,MAX]`` with :data:`UPDATED_FIELDS`,
        1000 a page, to the end, then checks the studies that arrived against ``totalCount``
        like :meth:`search` (a short read raises :class:`ShortReadError`). The set holds each
        study's ``nctId`` and its ``nctIdAliases``, so that it intersects with a watch list
        that holds an old id. About 800-1,150 studies are updated per weekday: one or two pages.
        """
        if isinstance(day, datetime) or not isinstance(day, date):
            raise TypeError(f"day must be a datetime.date, got {type(day).__name__}")
        query = {"filter.advanced": f"AREA[LastUpdatePostDate]RANGE[{day.isoformat()},MAX]"}
        ids: set[str] = set()
        for nct_id, study in self._listing(query, UPDATED_FIELDS, "an update listing"):
            ids.add(nct_id)
            aliases = _get_path(study, "protocolSection", "identificationModule", "nctIdAliases")
            for alias in aliases if isinstance(aliases, list) else ():
                if (valid := _valid_id(alias)) is not None:
                    ids.add(valid)
        return frozenset(ids)

    # -- internals -------------------------------------------------------------------------------

    def _listing(self, query: Mapping[str, str], fields: str, what: str) -> list[tuple[str, Any]]:
        """Page through ``GET /studies`` for ``query`` and return (nctId, study) per distinct
        study, in order, once the registry's ``totalCount`` says that all of them arrived."""
        params = {
            **query,
            "fields": fields,
            "pageSize": str(MAX_PAGE_SIZE),
            "countTotal": "true",
            "format": "json",
        }
        total: int | None = None
        studies: dict[str, Any] = {}
        pages = stalled = 0
        for page in self._iter_pages(params, _decode_listing, max_pages=_MAX_LISTING_PAGES):
            pages += 1
            before = len(studies)
            for study in page.studies:
                nct_id = _study_id(study)
                if nct_id is None:
                    log.warning("skipping a study without a usable nctId in a /studies page")
                    continue
                studies.setdefault(nct_id, study)
            if pages == 1:
                total = page.totalCount
                if total is None:
                    break  # nothing to check the rest against: do not page on for nothing
            if total is not None and len(studies) >= total:
                # Everything counted arrived; a full last page still carries a token (observed)
                # whose page is empty: not asked.
                break
            # Pages that bring nothing new, one after another, while the count is not met: a
            # server inventing tokens (each new, so the repeat check never fires) would hold
            # the sync's lock for up to _MAX_LISTING_PAGES requests.
            stalled = stalled + 1 if len(studies) == before else 0
            if stalled >= _MAX_STALLED_PAGES:
                break
        if total is None or len(studies) < total:
            counted = "gave no count" if total is None else f"counted {total}"
            raise ShortReadError(
                f"{self._host} sent {len(studies)} studies for {what} but {counted}; "
                "the answer was not used: try again later",
                expected=total,
                received=len(studies),
                detail=f"GET {self._display_base}/studies with {_describe(query)}: "
                f"totalCount {total}, {len(studies)} distinct studies over {pages} pages",
            )
        if len(studies) > total:
            log.warning(
                "GET %s/studies with %s: %d distinct studies arrived, %d counted",
                self._display_base,
                _describe(query),
                len(studies),
                total,
            )
        return list(studies.items())

    def _iter_batches(self, wanted: list[str]) -> Iterator[StudyResult]:
        for start in range(0, len(wanted), self._batch_size):
            refused: list[str] = []
            batch = wanted[start : start + self._batch_size]
            yield from self._iter_batch_or_halves(batch, refused, whole=len(batch))

    def _iter_batch_or_halves(
        self, batch: list[str], refused: list[str], *, whole: int
    ) -> Iterator[StudyResult]:
        """The batch; or, when CT.gov refuses it, its halves, until the refusal is found.

        A 414 or 431 (the request head too large) or a 400 that names no other parameter is
        split in halves: a head that was too large fits in halves, and a 400 for ``filter.ids``
        (one id off the spec's pattern refuses the whole request) comes down to the id it
        refuses, which is answered as a :class:`MissingStudy` with ``refused`` set while the
        rest of the batch is fetched. More than :data:`_MAX_REFUSED_PER_BATCH` refused ids in a
        batch, or every id of a batch of several (``whole``: its size), raise the refusal: it is
        not about ids (each was checked against the spec's pattern before it was sent), and an
        id marked refused is left out of every later sync.
        """
        results = self._iter_batch(batch)
        try:
            # Nothing of a batch is yielded before its first page arrives, so a refusal of that
            # page leaves nothing half-said: the halves can be asked instead.
            first = next(results)
        except StopIteration:
            return
        except ApiRequestError as exc:
            status = exc.status_code
            body = getattr(exc, "body", "")
            if status not in (400, 414, 431) or (status == 400 and _names_other_param(body)):
                raise
            if len(batch) == 1:
                if status != 400:
                    raise
                refused.append(batch[0])
                if len(refused) > _MAX_REFUSED_PER_BATCH or len(refused) == whole > 1:
                    how_many = (
                        f"every id of a batch of {whole}"
                        if len(refused) == whole
                        else f"more than {_MAX_REFUSED_PER_BATCH} ids of one batch"
                    )
                    raise ApiRequestError(
                        f"{self._host} refused {how_many} ({', '.join(refused)}): that is not "
                        f"about the ids; last answer: {exc}",
                        status_code=status,
                    ) from exc
                log.warning("%s refused to look up %s: %s", self._host, batch[0], exc)
                reason = (
                    f"refused by ClinicalTrials.gov (HTTP 400: {body})"
                    if body
                    else ("refused by ClinicalTrials.gov (HTTP 400)")
                )
                yield MissingStudy(requested_id=batch[0], confirmed=False, refused=reason)
                return
            log.warning(
                "GET %s/studies for %d ids was refused (HTTP %d); asking for them in halves to "
                "find what it refuses",
                self._display_base,
                len(batch),
                status,
            )
            half = len(batch) // 2
            yield from self._iter_batch_or_halves(batch[:half], refused, whole=whole)
            yield from self._iter_batch_or_halves(batch[half:], refused, whole=whole)
            return
        yield first
        yield from results

    def _fit_batch(self, batch_size: int) -> int:
        """``batch_size``, or fewer ids when that many would make a request head over
        :data:`MAX_HEAD_BYTES` with this base URL and User-Agent (a page token included)."""

        def head(n: int) -> int:
            params = {
                "filter.ids": ",".join(["NCT00000001"] * n),
                "fields": STUDY_FIELDS,
                "pageSize": str(min(MAX_PAGE_SIZE, n + 1)),
                "countTotal": "true",
                "format": "json",
                "pageToken": _TOKEN_ALLOWANCE,
            }
            request = self._http.build_request("GET", f"/studies?{_encode(params)}")
            target = request.url.raw_path.decode("ascii", "replace")
            line = len(f"GET {target} HTTP/1.1\r\n")
            return line + sum(len(k) + len(v) + 4 for k, v in request.headers.raw) + 2

        fitted = batch_size
        while fitted > 1 and head(fitted) > MAX_HEAD_BYTES:
            fitted -= max(1, -(-(head(fitted) - MAX_HEAD_BYTES) // 12))
        if fitted < batch_size:
            log.warning(
                "[api] batch_size %d would make requests over 8 KB with this base_url; "
                "using %d ids per request",
                batch_size,
                fitted,
            )
        return fitted

    def _iter_batch(self, batch: list[str]) -> Iterator[StudyResult]:
        pending = dict.fromkeys(batch)  # an ordered set of ids not returned yet
        asked = frozenset(batch)
        params = {
            "filter.ids": ",".join(batch),
            "fields": STUDY_FIELDS,
            # The default is 10: without this a batch of 13 silently loses 3 studies. One more
            # than the batch: a page filled to pageSize always carries a nextPageToken, whose
            # page is empty (observed), so an exactly full page would cost a request for nothing.
            "pageSize": str(min(MAX_PAGE_SIZE, len(batch) + 1)),
            # The registry's own count is what tells "it has no such id" from "it left one off".
            "countTotal": "true",
            "format": "json",
        }
        total: int | None = None
        arrived: set[str] = set()
        # All studies fit on the first page, but a server may return fewer per page (and even
        # empty pages); the bound only stops a server that keeps inventing new tokens.
        pages = self._iter_pages(params, _decode_page, max_pages=2 * len(batch) + 10)
        for index, page in enumerate(pages):
            if index == 0:  # countTotal answers on the first page only
                total = page.totalCount
            heads: list[tuple[memoryview, _Ident, str]] = []
            for raw in page.studies:
                # A view into the page: a study kept is copied out of it (FoundStudy.body),
                # one found unchanged is not, and the page goes with the last view.
                body = memoryview(raw)
                ident = _head_ident(body)
                nct_id = _study_id_of(ident)
                if ident is None or nct_id is None:
                    log.warning("skipping a study without a usable nctId in a /studies page")
                    continue
                heads.append((body, ident, nct_id))
            # A study answers its own id before another study's alias list may claim it, in
            # whatever order the page has them.
            own = {nct_id for _, _, nct_id in heads if nct_id in pending}
            for body, ident, nct_id in heads:
                # Only a study that names an id asked (its own, or an alias: a merged
                # registration the registry counted) counts toward the registry's count: one
                # nobody asked for must not make a study still to come look absent.
                if nct_id in asked or not asked.isdisjoint(_aliases(ident)):
                    arrived.add(nct_id)
                yield from _attribute(body, ident, nct_id, pending, taken=own)
            if total is not None and len(arrived) >= total:
                break  # all the registry counted has arrived: a token now leads to nothing
        confirmed = total is not None and len(arrived) >= total
        if pending and not confirmed:
            log.warning(
                "GET %s/studies: a short read: CT.gov counted %s studies for %d ids but sent %d; "
                "%d ids not returned are unconfirmed",
                self._display_base,
                "no" if total is None else total,
                len(batch),
                len(arrived),
                len(pending),
            )
        for requested_id in pending:
            yield MissingStudy(requested_id=requested_id, confirmed=confirmed)

    def _iter_pages(
        self, params: Mapping[str, str], decode: Callable[[bytearray], _P], *, max_pages: int
    ) -> Iterator[_P]:
        """``GET /studies`` with ``params``, then each ``nextPageToken`` with the same params,
        yielding each page, as ``decode`` reads it, as it arrives."""
        seen_tokens: set[str] = set()
        token: str | None = None
        for _ in range(max_pages):
            page_params = params if token is None else {**params, "pageToken": token}
            page = self._get("/studies", page_params, decode)
            yield page
            token = page.nextPageToken or None
            if token is None:
                return
            if token in seen_tokens:
                raise ApiUnavailableError(
                    f"{self._host} sent pages that never end; try again later",
                    detail=f"GET {self._display_base}/studies: the API sent the same "
                    "nextPageToken twice",
                )
            seen_tokens.add(token)
        raise ApiUnavailableError(
            f"{self._host} sent pages that never end; try again later",
            detail=f"GET {self._display_base}/studies: paging did not end after {max_pages} pages",
        )

    def _get(self, path: str, params: Mapping[str, str], decode: Callable[[bytearray], _T]) -> _T:
        """GET ``path`` with retries; return its body as ``decode`` reads it (``decode`` raises
        :class:`_NotJson` or :class:`_BadShape` for a body to retry)."""
        what = f"GET {self._shown(path)}"
        retrying = Retrying(
            stop=self._stop,
            wait=self._wait,
            retry=retry_if_exception_type(_RetryableError),
            sleep=self._sleep,
            before_sleep=lambda state: self._log_retry(what, state),
            reraise=False,
        )
        try:
            result: _T = retrying(self._attempt, path, params, decode)
            return result
        except RetryError as exc:
            attempts = exc.last_attempt.attempt_number
            last = exc.last_attempt.exception()
            if not isinstance(last, _RetryableError):  # pragma: no cover - only those retry
                raise
            noun = "attempt" if attempts == 1 else "attempts"
            detail = f"{what} failed after {attempts} {noun}: {last}"
            when = f"after {attempts} {noun}"
            idle = float(retrying.statistics.get("idle_for", 0.0))
            if _throttled(last) and idle >= 60:
                when += f" over {_duration(idle)}"
            raise _exhausted(last, *self._asked(path), when, detail) from last

    def _attempt(
        self, path: str, params: Mapping[str, str], decode: Callable[[bytearray], _T]
    ) -> _T:
        """Send one request (following same-host redirects); classify the outcome as data,
        retryable, or refused."""
        self._pace()
        self._requests_made += 1
        query = f"?{_encode(params)}" if params else ""
        # The absolute URL, parsed once: httpx parses a relative one, joins it onto the base URL
        # and parses the result again, each check a loop over every character (0.3 to 0.7 ms
        # for a batch of 500 ids, a 7 KB query, every request of a sweep).
        target: str | httpx.URL = httpx.URL(
            path + query if "://" in path else self._base_path + path.lstrip("/") + query
        )
        deadline = self._monotonic() + self._deadline_s
        ends = _EXCHANGE_ENDS.set(time.monotonic() + self._deadline_s)
        try:
            for _ in range(_MAX_REDIRECTS + 1):
                with self._http.stream("GET", target) as response:
                    location = self._redirect(response, path)
                    if location is None:
                        content = self._read(response, path, deadline)
                        break
                target = location
            else:
                raise ApiRequestError(
                    f"GET {self._shown(path)}: more than {_MAX_REDIRECTS} redirects"
                )
        except httpx.TimeoutException as exc:
            kind = "connect-timeout" if isinstance(exc, httpx.ConnectTimeout) else "timeout"
            raise _RetryableError(
                f"timed out after {self._timeout_s:g}s ({type(exc).__name__})", kind=kind
            ) from exc
        except httpx.ProxyError as exc:
            raise _RetryableError(f"{type(exc).__name__}: {exc}", kind="proxy") from exc
        except httpx.ConnectError as exc:
            unreachable = _cannot_heal(exc, *self._asked(path))
            if unreachable is not None:
                # Retrying a name that does not resolve only makes an offline run slow.
                detail = f"GET {self._shown(path)}: {type(exc).__name__}: {exc}"
                raise ApiUnreachableError(unreachable, detail=detail) from exc
            kind = "refused" if _refused(exc) else "connect"
            raise _RetryableError(f"{type(exc).__name__}: {exc}", kind=kind) from exc
        except httpx.RequestError as exc:
            # Reset connections, a body cut off mid-way, a server that hangs up.
            raise _RetryableError(f"{type(exc).__name__}: {exc}", kind="broken") from exc
        finally:
            _EXCHANGE_ENDS.reset(ends)

        status = response.status_code
        content_type = response.headers.get("Content-Type", "")
        try:
            return decode(content)
        except _NotJson as exc:
            if "html" in content_type.lower():
                reason = f"HTTP {status} with an HTML page instead of JSON (maintenance?)"
                raise _RetryableError(reason, kind="html") from exc
            reason = f"HTTP {status} with a body that is not valid JSON ({content_type!r})"
            raise _RetryableError(reason, kind="garbled") from exc
        except _BadShape as exc:
            raise _RetryableError(
                f"HTTP {status} with unexpected JSON: {exc}", kind="garbled"
            ) from exc

    def _redirect(self, response: httpx.Response, path: str) -> str | None:
        """Where a redirect leads, when it stays on this scheme and host; None when ``response``
        is no redirect. A redirect elsewhere raises :class:`ApiRequestError`: its answer would
        not be CT.gov's (and an empty one would make every trial look withdrawn)."""
        if response.status_code not in _REDIRECTS or "Location" not in response.headers:
            return None
        url = response.url.join(response.headers["Location"])
        # The rule holds for the host asked: the API's own, or the one an absolute URL names
        # (a `[api] history_url` the user set on another host is that host's to redirect on).
        if "://" in path:
            asked = httpx.URL(path)
            scheme, host_port = asked.scheme, (asked.host, asked.port)
        else:
            scheme, host_port = self._scheme, self._host_port
        if url.scheme != scheme or (url.host, url.port) != host_port:
            raise ApiRequestError(
                f"GET {self._shown(path)} was redirected to {_redact(url)}, another "
                "host or scheme; not followed: check `[api] base_url`"
                + (" and `[api] history_url`" if "://" in path else ""),
                status_code=response.status_code,
            )
        return str(url)

    def _read(self, response: httpx.Response, path: str, deadline: float) -> bytearray:
        """The whole body of a successful answer, within the size cap and the exchange's
        deadline; a failed answer raises (retryable or refused)."""
        status = response.status_code
        if status == 429 or status >= 500 or status < 200 or status >= 300:
            body = self._read_capped(response, path, deadline, limit=64 * 1024)
            self._refuse(response, path, status, body)
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self._max_answer_bytes:
            raise self._too_large(path, f"it announced {int(declared):,} bytes")
        return self._read_capped(response, path, deadline, limit=self._max_answer_bytes)

    def _read_capped(
        self, response: httpx.Response, path: str, deadline: float, *, limit: int
    ) -> bytearray:
        # One buffer, grown in place: chunks joined at the end would hold a 5 MB page twice,
        # and the page decoder cuts the studies out of a bytearray without copying it.
        body = bytearray()
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                if limit < self._max_answer_bytes:
                    break  # an error page: its first bytes say enough
                raise self._too_large(path, f"more than {limit:,} bytes arrived")
            body += chunk
            if self._monotonic() > deadline:
                # A read timeout bounds each read; a body dripping a byte at a time passes it
                # and would hold the sync (and its lock) for as long as it pleases.
                raise _RetryableError(
                    f"the answer took longer than {self._deadline_s:g}s to arrive "
                    f"({size:,} bytes so far)",
                    kind="timeout",
                )
        return body

    def _too_large(self, path: str, how: str) -> ApiUnavailableError:
        cap = f"{self._max_answer_bytes / (1024 * 1024):g} MiB"
        return ApiUnavailableError(
            f"{self._host} sent an answer too large for GET {self._shown(path)} ({how}, "
            f"the cap is {cap}); stopped reading it: not CT.gov's data, or something in between "
            "is wrong",
            detail=f"GET {self._shown(path)}: {how}; cap {self._max_answer_bytes} bytes",
        )

    def _refuse(self, response: httpx.Response, path: str, status: int, body: bytearray) -> None:
        """Raise what a non-2xx answer means: retryable (429, 5xx), or refused (4xx)."""
        if status == 429 or status >= 500:
            retry_after = (
                _parse_retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
                if status in (429, 503)
                else None
            )
            if retry_after is not None and retry_after > self._max_retry_after_s:
                # Retrying early would be impolite and futile; waiting holds the sync's lock
                # for as long as the server says. Say when to come back instead.
                raise ApiUnavailableError(
                    f"{self._host} asked us to come back in {_duration(retry_after)} (HTTP "
                    f"{status} with Retry-After), more than `[api] max_retry_after_s` = "
                    f"{self._max_retry_after_s:g}s; gave up: try again later",
                    detail=f"GET {self._shown(path)}: HTTP {status}, Retry-After "
                    f"{response.headers.get('Retry-After')!r}",
                )
            raise _RetryableError(
                f"HTTP {status} {response.reason_phrase}".rstrip(),
                kind="throttled" if status == 429 else "status",
                status=status,
                retry_after=retry_after,
            )
        text = _shorten(body.decode("utf-8", "replace"))
        if status == 404 and path == "/version":
            # Every server of the v2 API answers /version: a 404 there means base_url points
            # somewhere else (most often the site's root, without /api/v2).
            raise _Refusal(
                f"{self._display_base}/version was not found (HTTP 404): `[api] base_url` must be "
                f"the API's root, ending in /api/v2 (e.g. {DEFAULT_BASE_URL})",
                status_code=status,
                body=text,
            )
        if 400 <= status < 500:
            error = _Refusal(
                f"GET {self._shown(path)} was refused: HTTP {status}"
                + (f": {text}" if text else ""),
                status_code=status,
                body=text,
            )
            raise error
        raise _RetryableError(
            f"unexpected HTTP {status} {response.reason_phrase}".rstrip(),
            kind="status",
            status=status,
        )

    def _asked(self, path: str) -> tuple[str, str]:
        """The host a request to ``path`` went to, as messages name it, and the setting that
        names it: the API's own, or the one of an absolute URL (the record history's)."""
        if "://" not in path:
            return self._host, "`[api] base_url`"
        return _host_named(httpx.URL(path)), "`[api] history_url`"

    def _shown(self, path: str) -> str:
        """How a request is named in messages: an absolute URL as it is (redacted), else the
        path on the base URL."""
        if "://" in path:
            return _redact(httpx.URL(path))
        return f"{self._display_base}{path}"

    def _pace(self) -> None:
        # Politeness: robots.txt asks for a 1-second crawl delay, so starts are spaced out.
        if self._min_interval_s > 0 and self._last_start is not None:
            wait = self._last_start + self._min_interval_s - self._monotonic()
            if wait > 0:
                self._sleep(wait)
        self._last_start = self._monotonic()

    def _stop(self, state: RetryCallState) -> bool:
        """Throttling (429/503) is ridden out for ``throttle_budget_s`` of waiting; anything
        else (HTML pages, refused connections, timeouts, other 5xx) stops after
        ``max_attempts``, so that an offline run still fails in seconds."""
        exc = state.outcome.exception() if state.outcome is not None else None
        attempts_spent = state.attempt_number >= self._max_attempts
        if isinstance(exc, _RetryableError) and exc.kind in ("timeout", "connect-timeout"):
            # A server that accepts and never answers: 5 tries of 30 s would keep the user
            # waiting minutes for a message. Stop where another try could end past the budget.
            since = state.seconds_since_start or 0.0
            return attempts_spent or since + self._timeout_s > self._silence_budget_s
        if isinstance(exc, _RetryableError) and _throttled(exc):
            # The budget is in seconds waited; the attempt bound keeps a tiny backoff_max_s (or
            # a sleep that returns at once) from turning it into thousands of requests.
            budget_spent = state.idle_for >= self._throttle_budget_s
            return attempts_spent and (budget_spent or state.attempt_number >= _MAX_THROTTLED)
        return attempts_spent

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, _RetryableError) and _throttled(exc):
            # Doubling from backoff_initial_s up to backoff_max_s (~60 s), jittered by at most
            # a quarter so that clients throttled together do not come back together.
            base = min(
                self._backoff_max_s, self._backoff_initial_s * 2 ** (state.attempt_number - 1)
            )
            backoff = float(base * (0.75 + 0.25 * random.random()))
            if exc.retry_after is None:
                return backoff
            # Never early (a Retry-After above max_retry_after_s was refused when it came), and
            # never sooner than our own backoff: a Retry-After of 0, or a date already past, is
            # no reason to come straight back to a server that is turning us away.
            return max(exc.retry_after, backoff)
        return float(self._jitter(state))

    def _log_retry(self, what: str, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        if isinstance(exc, _RetryableError) and _throttled(exc):
            # Said on the terminal (warnings go to stderr): a long wait must not look like a hang.
            log.warning(
                "%s is busy or throttling us (%s); waiting %s before trying again "
                "(%s waited so far; giving up after about %s)",
                self._host,
                exc,
                _duration(wait),
                _duration(state.idle_for),
                _duration(self._throttle_budget_s),
            )
            return
        log.warning(
            "%s failed (attempt %d of %d): %s; retrying in %.1fs",
            what,
            state.attempt_number,
            self._max_attempts,
            exc,
            wait,
        )


class _Refusal(ApiRequestError):
    """A 4xx answer; ``body`` is the server's own text (shortened)."""

    def __init__(self, message: str, *, status_code: int, body: str) -> None:
        super().__init__(message, status_code=status_code)
        self.body = body


def _throttled(exc: _RetryableError) -> bool:
    return exc.status in (429, 503)


def _names_other_param(body: str) -> bool:
    """Whether a 400's text is about something other than the ids: it names a parameter
    trialwatch sends besides ``filter.ids``, or calls a parameter unknown."""
    if "filter.ids" in body:
        return False
    if "unknown parameter" in body:
        return True
    return any(re.search(rf"(?<![\w.]){re.escape(name)}(?![\w.])", body) for name in _OTHER_PARAMS)


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def record_fingerprint(record: bytes | memoryview | Mapping[str, Any]) -> str:
    """A 128-bit hex digest of a record exactly as served: equal digests, equal records.

    ``record`` is the study's JSON as it arrived, byte for byte (a parsed record is written
    compactly first, in its own key order): SHA-256, cut to 128 bits, which CPUs with SHA
    extensions hash at ~1 GB/s (~9 µs for ~10 KB, half of blake2b's time there); the client
    takes the bytes straight from the page, so an unchanged study is never parsed. It covers
    every key and value the client fetched (``protocolSection`` and ``hasResults``, see
    :data:`STUDY_FIELDS`) and nothing it does not (``derivedSection``, ``resultsSection``). It
    is not a content hash: reordered keys, a change of spacing or escaping, or a posting date
    whose type flips from ESTIMATED to ACTUAL move it without any change a user cares about.
    Use it to skip normalizing a record that has not moved, never to decide that something
    changed.
    """
    body = record if isinstance(record, bytes | memoryview) else compact_json(record)
    return hashlib.sha256(body).hexdigest()[:32]


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then its causes and contexts, each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _refused(exc: BaseException) -> bool:
    # Linux and macOS say "Connection refused", Windows "...the target machine actively refused it".
    return any(
        isinstance(e, ConnectionRefusedError)
        or "onnection refused" in str(e)
        or "actively refused" in str(e)
        for e in _chain(exc)
    )


def _host_named(url: httpx.URL) -> str:
    """How messages name a URL's server: ``"clinicaltrials.gov"``, ``"127.0.0.1:8000"``."""
    return url.host + (f":{url.port}" if url.port is not None else "")


def _cannot_heal(exc: httpx.ConnectError, host: str, setting: str) -> str | None:
    """The plain message for a connection failure that retrying will not mend; None if it may.

    A host name that does not resolve or a network with no route will not come back within a
    minute of backoff, and a certificate that is not trusted or a server that does not speak
    TLS never will: say so at once. Refused connections may be a restart: they are retried.
    """
    chain = list(_chain(exc))
    text = " ".join(str(e) for e in chain)
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain) or (
        "CERTIFICATE_VERIFY_FAILED" in text
    ):
        return (
            f"could not open a secure connection to {host}: its certificate is not trusted; "
            "a proxy or TLS interception may be in the way"
        )
    if "WRONG_VERSION_NUMBER" in text:
        return (
            f"could not open a secure connection to {host}: it does not speak TLS there; "
            f"check {setting} (http or https?) or a proxy"
        )
    if (
        any(isinstance(e, socket.gaierror) for e in chain)
        or any(words in text for words in _DNS_FAILURES)
        or any(isinstance(e, OSError) and e.errno in _NO_ROUTE for e in chain)
        or "Network is unreachable" in text
        or "No route to host" in text
    ):
        return f"could not reach {host}: check the network or {setting}"
    return None


def _exhausted(
    last: _RetryableError, host: str, setting: str, attempts: str, detail: str
) -> TransientFetchError:
    """The error for retries run out, ``last`` being the final attempt's failure: one plain
    line saying what happened and what to do, the technical ``detail`` kept beside it."""
    status = f"HTTP {last.status}" if last.status is not None else ""
    unreachable = {
        "refused": f"could not reach {host}: the connection was refused {attempts}; "
        f"check {setting}, or try again later",
        "connect": f"could not reach {host} {attempts}: check the network or {setting}",
        "connect-timeout": f"could not reach {host}: no answer to connect {attempts}; "
        f"check the network, a firewall or {setting}",
        "proxy": f"could not reach {host} through the proxy {attempts}; "
        "check the proxy settings (HTTPS_PROXY, ALL_PROXY)",
    }
    unavailable = {
        "timeout": f"{host} did not answer in time {attempts}; try again later",
        "broken": f"the connection to {host} kept breaking off {attempts}; "
        "check the network or a proxy, or try again later",
        "status": f"{host} is down or failing: {status} {attempts}; try again later",
        "throttled": f"{host} asked us to slow down: {status} {attempts}; "
        "try again later, or raise `[api] min_interval_s`",
        "html": f"{host} sent a web page instead of data {attempts} (maintenance?); "
        "try again later",
        "garbled": f"{host} sent something that is not the data asked for {attempts}; "
        "try again later",
    }
    if last.kind in unreachable:
        return ApiUnreachableError(unreachable[last.kind], detail=detail)
    message = unavailable.get(last.kind, f"{host} kept failing {attempts}; try again later")
    return ApiUnavailableError(message, detail=detail)


def _normalize_ids(ids: Sequence[str]) -> list[str]:
    """The ids checked by :mod:`trialwatch.ids` (the registry's rule: one id it refuses would
    make it refuse the whole request), folded and de-duplicated in order."""
    wanted: dict[str, None] = {}
    for raw in ids:
        problem = nct_id_problem(raw) if isinstance(raw, str) else "not a string"
        if problem is not None:
            raise ApiRequestError(f"{raw!r} is not an NCT id: {problem}")
        wanted[raw if is_canonical(raw) else fold_nct_id(raw)] = None
    return list(wanted)


def _encode(params: Mapping[str, str]) -> str:
    """A query string with literal commas: 12 bytes per id in filter.ids instead of 14 (httpx
    writes %2C), so that a batch fits in a shorter URL. Commas are legal in a query (RFC 3986)
    and are the separator CT.gov documents."""
    return urllib.parse.urlencode(params, quote_via=urllib.parse.quote, safe=",")


def _search_params(params: Mapping[str, str]) -> dict[str, str]:
    """Checked search parameters, statuses upper-cased and comma-separated; ValueError else."""
    if isinstance(params, str) or not isinstance(params, Mapping):
        raise TypeError("params must be a mapping of CT.gov search parameters")
    allowed = ", ".join(sorted(SEARCH_PARAMS))
    unknown = sorted(set(params) - SEARCH_PARAMS)
    if unknown:
        raise ValueError(f"unknown search parameter(s) {', '.join(unknown)} (allowed: {allowed})")
    query: dict[str, str] = {}
    for name, value in params.items():
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"search parameter {name} must be a non-empty string")
        query[name] = value.strip()
    if not any(name.startswith("query.") for name in query):
        raise ValueError(f"a search needs at least one query.* parameter (allowed: {allowed})")
    if "filter.overallStatus" in query:
        statuses = [s.strip().upper() for s in re.split(r"[,|]", query["filter.overallStatus"])]
        bad = [s for s in statuses if s not in OVERALL_STATUSES]
        if bad:
            choices = ", ".join(sorted(OVERALL_STATUSES))
            raise ValueError(f"unknown overall status {bad[0]!r} (choose from {choices})")
        query["filter.overallStatus"] = ",".join(dict.fromkeys(statuses))
    return query


def _describe(query: Mapping[str, str]) -> str:
    return ", ".join(f"{name}={value!r}" for name, value in query.items())


def _summary(nct_id: str, study: Any) -> StudySummary:
    def text(*path: str) -> str | None:
        value = _get_path(study, "protocolSection", *path)
        return value if isinstance(value, str) else None

    phases = _get_path(study, "protocolSection", "designModule", "phases")
    return StudySummary(
        nct_id=nct_id,
        brief_title=text("identificationModule", "briefTitle"),
        acronym=text("identificationModule", "acronym"),
        phases=tuple(p for p in phases if isinstance(p, str)) if isinstance(phases, list) else (),
        overall_status=text("statusModule", "overallStatus"),
        lead_sponsor=text("sponsorCollaboratorsModule", "leadSponsor", "name"),
        first_posted=text("statusModule", "studyFirstPostDateStruct", "date"),
        last_update_posted=text("statusModule", "lastUpdatePostDateStruct", "date"),
    )


def _study_id(study: Any) -> str | None:
    """The study's ``nctId``, upper-cased; None when it has no usable one."""
    return _valid_id(_get_path(study, "protocolSection", "identificationModule", "nctId"))


def _valid_id(value: Any) -> str | None:
    if not isinstance(value, str) or not _NCT_ID.fullmatch(value.strip().upper()):
        return None
    return value.strip().upper()


def _head_ident(body: bytes | memoryview) -> _Ident | None:
    """The ``identificationModule`` of a study served as ``body``, without parsing the rest;
    None when the study is not an object or has no readable module."""
    try:
        head = _HEAD_DECODER.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        # Not an object, a module of another shape, or bytes that are not UTF-8 in the id.
        return None
    return head.protocolSection.identificationModule if head.protocolSection else None


def _study_id_of(ident: _Ident | None) -> str | None:
    return None if ident is None else _valid_id(ident.nctId)


def _attribute(
    body: memoryview, ident: _Ident, nct_id: str, pending: dict[str, None], *, taken: set[str]
) -> Iterator[FoundStudy]:
    """Yield a FoundStudy per pending id the study answers (own id, aliases); unmark them.
    An alias in ``taken`` (ids that studies of the page answer as their own) is not answered."""
    aliases = _aliases(ident)
    answered = [
        i
        for i in dict.fromkeys([nct_id, *aliases])
        if i in pending and (i == nct_id or i not in taken)
    ]
    if not answered:
        log.debug("ignoring %s: not requested, or already returned", nct_id)
        return
    fingerprint = record_fingerprint(body)
    for requested_id in answered:
        del pending[requested_id]
        yield FoundStudy(requested_id, nct_id, fingerprint=fingerprint, body=body)


def _aliases(ident: _Ident) -> list[str]:
    """The ids a study lists as its own former registrations, upper-cased; [] when none."""
    raw_aliases = ident.nctIdAliases
    listed = raw_aliases if isinstance(raw_aliases, list) else []
    return [a.strip().upper() for a in listed if isinstance(a, str)]


def _get_path(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _json_decoder(problem: Callable[[Any], str | None]) -> Callable[[bytearray], Any]:
    """A decoder for a small JSON answer whose shape ``problem`` checks."""

    def decode(content: bytearray) -> Any:
        try:
            data = orjson.loads(content)
        except (ValueError, RecursionError) as exc:
            raise _NotJson(str(exc)) from exc
        shape = problem(data)
        if shape is not None:
            raise _BadShape(shape)
        return data

    return decode


def _decode_page(content: bytearray) -> _Page:
    return _checked_page(_PAGE_DECODER, content)


def _decode_listing(content: bytearray) -> _ListingPage:
    return _checked_page(_LISTING_DECODER, content)


def _checked_page(decoder: msgspec.json.Decoder[_P], content: bytearray) -> _P:
    try:
        page = decoder.decode(content)
    except msgspec.ValidationError as exc:  # JSON, in another shape: "... - at `$.studies`"
        raise _BadShape(str(exc)) from exc
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        # UnicodeDecodeError: bytes that are not UTF-8 in a string msgspec had to read.
        tolerated = _page_with_lone_surrogates(decoder, content)
        if tolerated is None:
            raise _NotJson(str(exc)) from exc
        page = tolerated
    if page.totalCount is not None and page.totalCount < 0:
        raise _BadShape(f"totalCount must be a count, got {page.totalCount}")
    return page


_LONE_SURROGATE_ESCAPE: Final = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def _page_with_lone_surrogates(decoder: msgspec.json.Decoder[_P], content: bytearray) -> _P | None:
    """A page that msgspec (and orjson) refuse for a ``\\ud800``-style escape in one study: JSON
    text can escape half of a surrogate pair alone, Unicode cannot hold it. Read by the standard
    library, which keeps it, then written again with U+FFFD in its place (as the normalizer reads
    one) and decoded as any page: the other studies of the page are checked as usual, instead
    of every study of the batch going unchecked at every poll. Such a page's studies are the
    bytes written again, not as served: their fingerprints move while it lasts, which costs a
    normalization and reports nothing. None when the page is not JSON for that reason."""
    if not _LONE_SURROGATE_ESCAPE.search(content):
        return None
    try:
        data = json.loads(content)
    except (ValueError, RecursionError):
        return None
    try:
        text = json.dumps(_without_surrogates(data), ensure_ascii=False, separators=(",", ":"))
        return decoder.decode(text.encode())
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeError, RecursionError):
        return None


def _without_surrogates(value: Any) -> Any:
    """``value`` (parsed JSON) with each lone surrogate replaced by U+FFFD, in keys too."""
    if isinstance(value, str):
        # The standard library joins an escaped pair into one character: what is left is alone.
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    return value


def _version_problem(data: Any) -> str | None:
    if not isinstance(data, dict):
        return f"/version must answer an object, got {type(data).__name__}"
    if not isinstance(data.get("apiVersion"), str):
        return "/version answer has no string 'apiVersion'"
    if "dataTimestamp" in data and not isinstance(data["dataTimestamp"], str):
        return "/version answer has a 'dataTimestamp' that is not a string"
    return None


def _parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait per a ``Retry-After`` header (seconds or HTTP-date); None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if _RETRY_AFTER_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _shorten(text: str) -> str:
    return vocabulary.clip(" ".join(text.split()), _ERROR_BODY_LIMIT)


def _redact(url: httpx.URL) -> str:
    """``url`` without userinfo, query or fragment: safe to put in messages and logs."""
    host = f"[{url.host}]" if ":" in url.host else url.host
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{host}{port}{url.path}"
