"""A fake ClinicalTrials.gov Data API v2: a real HTTP server on loopback, for end-to-end tests.

:class:`FakeCtGov` is the test front end of :mod:`tests.fakes.ctgov_behaviour`, where every rule
of the API it obeys is written down with its source (the spec, or what other clients observed):
full pages that always carry a ``nextPageToken``, one malformed id refusing a whole ``filter.ids``
request, bare brackets refused in free-text query areas, query areas ANDed, merged registrations
answered by their surviving study, unknown parameters refused, ``/version`` with or without
``dataTimestamp``, request heads over 8 KB refused with 414 or 431. The benchmark's stand-in
(``benchmarks/standin.py``) is the other front end over the same rules.

This module adds what only tests need: parsed records held in memory (``fields`` projection of
the top-level pieces, the protocol modules and a few leaf fields, :data:`FIELD_PATHS`), changes
made while it runs (:meth:`FakeCtGov.update_study`, with or without moving the study's
``LastUpdatePostDate``, ...), injected faults (:meth:`FakeCtGov.inject`, :meth:`FakeCtGov.fail_all`,
:meth:`FakeCtGov.throttle`) and a record of every request (:attr:`FakeCtGov.requests`).

By hand, for demos: ``python -m tests.fakes.ctgov_server --data tests/data/records --port 8000``."""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import logging
import re
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

import orjson

from tests.fakes import ctgov_behaviour as rules
from tests.fakes.ctgov_history import HISTORY_ROOT, RecordHistory

__all__ = [
    "API_ROOT",
    "FAULT_KINDS",
    "FIELD_PATHS",
    "QUERY_AREAS",
    "FakeCtGov",
    "RecordedRequest",
    "clone_record",
    "load_records",
]

API_ROOT = rules.API_ROOT
QUERY_AREAS = rules.QUERY_AREAS
FAULT_KINDS = ("status", "html", "garbage", "truncate", "delay", "reset", "short")
RECORDS_DIR = Path(__file__).resolve().parents[1] / "data" / "records"

# How tests name studies: NCT and 8 digits (the server's own, wider pattern is rules.parse_id's).
_NCT_ID = re.compile(r"NCT[0-9]{8}", re.IGNORECASE)
_RECORD_FILE = re.compile(r"NCT\d{8}\.json")
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S"
_FAULT_OPTS: dict[str, frozenset[str]] = {
    "status": frozenset({"status", "body", "headers"}),
    "html": frozenset({"status"}),
    "garbage": frozenset(),
    "truncate": frozenset({"abort"}),
    "delay": frozenset({"seconds"}),
    "reset": frozenset(),
    "short": frozenset({"nct_id"}),
}
_PS = "protocolSection"
_ID = (_PS, "identificationModule")
_STATUS = (_PS, "statusModule")
FIELD_PATHS: dict[str, tuple[str, ...]] = {
    # The pieces at the top of a study record.
    "protocolsection": (_PS,),
    "derivedsection": ("derivedSection",),
    "resultssection": ("resultsSection",),
    "documentsection": ("documentSection",),
    "annotationsection": ("annotationSection",),
    "hasresults": ("hasResults",),
    # The protocol modules.
    **{
        name.lower(): (_PS, name)
        for name in (
            "identificationModule",
            "statusModule",
            "sponsorCollaboratorsModule",
            "oversightModule",
            "descriptionModule",
            "conditionsModule",
            "designModule",
            "armsInterventionsModule",
            "outcomesModule",
            "eligibilityModule",
            "contactsLocationsModule",
            "referencesModule",
            "ipdSharingStatementModule",
        )
    },
    # Leaf fields, named as CT.gov's data structure names them; a date field is the ``date`` of
    # its struct (``StudyFirstPostDate`` -> ``studyFirstPostDateStruct.date``), as CT.gov serves.
    "nctid": (*_ID, "nctId"),
    "nctidalias": (*_ID, "nctIdAliases"),
    "brieftitle": (*_ID, "briefTitle"),
    "officialtitle": (*_ID, "officialTitle"),
    "acronym": (*_ID, "acronym"),
    "overallstatus": (*_STATUS, "overallStatus"),
    "studyfirstpostdate": (*_STATUS, "studyFirstPostDateStruct", "date"),
    "lastupdatepostdate": (*_STATUS, "lastUpdatePostDateStruct", "date"),
    "leadsponsorname": (_PS, "sponsorCollaboratorsModule", "leadSponsor", "name"),
    "phase": (_PS, "designModule", "phases"),
    "studytype": (_PS, "designModule", "studyType"),
    "condition": (_PS, "conditionsModule", "conditions"),
}
"""``fields`` names the fake understands (case-insensitive) -> their path in a study record."""
_MAINTENANCE_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>ClinicalTrials.gov - Maintenance</title></head>\n"
    b"<body><h1>ClinicalTrials.gov is undergoing maintenance</h1>\n"
    b"<p>Please try again later.</p></body></html>\n"
)
_GARBAGE = b'{"studies": [{"protocolSection": {"identificationModule": {"nctId": \xff\xfe]]}, ,'

_ABSENT: Any = object()

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the fake received (faulted ones included). ``headers`` keys are lower-case."""

    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]


@dataclass(slots=True)
class _Fault:
    kind: str
    opts: dict[str, Any]
    path: str | None
    times: int | None  # None: until clear_faults()

    def matches(self, path: str) -> bool:
        return self.path is None or path.endswith(self.path)


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()
    dropped: bool = False  # a "short" fault left a study off this page


def _text(status: int, message: str, *headers: tuple[str, str]) -> _Response:
    return _Response(status, message.encode("utf-8"), "text/plain; charset=utf-8", headers)


def _from(answer: rules.Answer) -> _Response:
    return _Response(answer.status, answer.body, answer.content_type, answer.headers)


def _json(value: Any, status: int = 200) -> _Response:
    return _Response(status, orjson.dumps(value), "application/json; charset=utf-8")


class FakeCtGov:
    """The fake API. ``with FakeCtGov(records) as api:`` serves at :attr:`base_url` until exit.

    All state (studies, data timestamp, faults, recorded requests) sits under one lock, so tests
    may change it while a client is talking to the server. Records are deep-copied on the way in
    and out: callers never share a dict with the server.
    """

    def __init__(
        self,
        studies: Iterable[Mapping[str, Any]] = (),
        data_timestamp: str = "2026-11-20T09:00:06",
        api_version: str = "2.0.5",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._lock = threading.RLock()
        self._studies: dict[str, dict[str, Any]] = {}
        # Derived from _studies, rebuilt on demand after a change: alias -> canonical id, and
        # per study the lower-cased texts each query.* parameter searches.
        self._alias_index: dict[str, str] | None = None
        self._texts: dict[str, dict[str, tuple[str, ...]]] = {}
        self._data_timestamp = _check_timestamp(data_timestamp)
        self._api_version = api_version
        self._omit_timestamp = False
        self._faults: list[_Fault] = []
        # /api/int: the record history (its own module; put versions with history.put).
        self.history = RecordHistory()
        self._requests: list[RecordedRequest] = []
        self._host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        for record in studies:
            self.put_study(record)

    @classmethod
    def load_dir(cls, path: str | Path = RECORDS_DIR, **kwargs: Any) -> FakeCtGov:
        """A fake (not started) serving every ``NCTnnnnnnnn.json`` in ``path``.

        Dated variants such as ``NCT05923112.versionHolder-2023-06-28.json`` are older versions
        of a study, not studies of their own, and are skipped. ``kwargs`` go to the constructor.
        """
        return cls(load_records(path), **kwargs)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind and serve in a background thread. Idempotent."""
        if self._server is None:
            server = _Server((self._host, self._port), _Handler)
            server.fake = self
            self._server = server
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.01},
                name=f"FakeCtGov:{server.server_address[1]}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open connections (clients then see the API as unreachable)."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeCtGov is not running; use start() or a with block")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/api/v2`` (only while running)."""
        return f"http://{self._host}:{self.port}{API_ROOT}"

    # -- data ------------------------------------------------------------------------------------

    def put_study(self, record: Mapping[str, Any]) -> None:
        """Add or replace a study (a deep copy of ``record``), keyed by its ``nctId``."""
        nct_id = _record_id(record)
        with self._lock:
            self._studies[nct_id] = _copy(dict(record))
            self._changed(nct_id)

    def update_study(
        self,
        nct_id: str,
        mutate: Callable[[dict[str, Any]], None],
        *,
        bump: bool = True,
        posted: bool = True,
    ) -> dict[str, Any]:
        """Apply ``mutate`` to a deep copy of the study, then store it; return a copy.

        With ``bump`` (the default), the registry "publishes" the change like a daily refresh:
        ``data_timestamp`` advances by one day and the study's ``lastUpdatePostDateStruct``
        becomes that day (ACTUAL), overriding whatever ``mutate`` set there. With
        ``posted=False`` the refresh happens but ``LastUpdatePostDate`` does not move: the
        registry changes some records itself (observed: it computes UNKNOWN status for studies
        not verified in two years, NCT05915845 is UNKNOWN with its last update posted
        2023-06-23), so a listing by that date misses the change. ``mutate`` must not change
        the ``nctId``. Raises ``KeyError`` for an unknown study.
        """
        key = nct_id.strip().upper()
        with self._lock:
            record = _copy(self._studies[key])
            mutate(record)
            if _record_id(record) != key:
                raise ValueError(f"update_study must not change the nctId of {key}")
            if bump:
                self._data_timestamp = _advance(self._data_timestamp)
            if bump and posted:
                status = record.setdefault("protocolSection", {}).setdefault("statusModule", {})
                status["lastUpdatePostDateStruct"] = {
                    "date": self._data_timestamp[:10],
                    "type": "ACTUAL",
                }
            self._studies[key] = record
            self._changed(key)
            return _copy(record)

    def merge_study(self, retired: str, into: str) -> dict[str, Any]:
        """Merge a duplicate registration, as the registry does: ``retired`` leaves public view,
        its id joins ``into``'s ``identificationModule.nctIdAliases``, and the change is
        published (a new data day, ``into``'s last update posted that day). From then on the
        retired id answers with the surviving study (observed: NCT02300909 lists NCT02380456).
        Returns a copy of the surviving study. Raises ``KeyError`` for an unknown study.
        """
        old, new = retired.strip().upper(), into.strip().upper()
        with self._lock:
            del self._studies[old]
            self._changed(old)

            def alias(record: dict[str, Any]) -> None:
                ident = record["protocolSection"]["identificationModule"]
                ident["nctIdAliases"] = sorted({*ident.get("nctIdAliases", ()), old})

            return self.update_study(new, alias)

    def remove_study(self, nct_id: str) -> None:
        """Take a study out of public view. Raises ``KeyError`` for an unknown study."""
        key = nct_id.strip().upper()
        with self._lock:
            del self._studies[key]
            self._changed(key)

    def _changed(self, nct_id: str) -> None:
        self._alias_index = None
        self._texts.pop(nct_id, None)

    def study(self, nct_id: str) -> dict[str, Any]:
        """A deep copy of the stored study. Raises ``KeyError`` for an unknown study."""
        with self._lock:
            return _copy(self._studies[nct_id.strip().upper()])

    @property
    def nct_ids(self) -> list[str]:
        with self._lock:
            return list(self._studies)

    def set_data_timestamp(self, ts: str) -> None:
        """Set what ``/version`` reports as ``dataTimestamp`` (``yyyy-MM-ddTHH:mm:ss``)."""
        with self._lock:
            self._data_timestamp = _check_timestamp(ts)

    @property
    def data_timestamp(self) -> str:
        with self._lock:
            return self._data_timestamp

    def omit_data_timestamp(self, omit: bool = True) -> None:
        """Serve ``/version`` without ``dataTimestamp`` (spec: only ``apiVersion`` is required)."""
        with self._lock:
            self._omit_timestamp = omit

    # -- requests --------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def count(self, path_suffix: str = "") -> int:
        """How many recorded requests have a path ending with ``path_suffix`` (all by default).

        ``count("/studies")`` counts list requests only (not ``/studies/NCT...``).
        """
        with self._lock:
            return sum(1 for r in self._requests if r.path.endswith(path_suffix))

    def count_lookups(self) -> int:
        """How many ``/studies`` requests asked for ids (``filter.ids``): the watch set's."""
        with self._lock:
            return sum(
                1
                for r in self._requests
                if r.path.endswith("/studies") and "filter.ids" in r.params
            )

    def count_searches(self) -> int:
        """How many ``/studies`` requests were searches (``query.*``): the ``[[queries]]``'."""
        with self._lock:
            return sum(
                1
                for r in self._requests
                if r.path.endswith("/studies") and any(k.startswith("query.") for k in r.params)
            )

    # -- faults ----------------------------------------------------------------------------------

    def inject(self, kind: str, *, times: int = 1, path: str | None = None, **opts: Any) -> None:
        """Queue a fault for the next ``times`` requests whose path ends with ``path`` (any path
        when None). Queued faults are used first-in first-out, before any :meth:`fail_all`.

        Kinds and options:

        - ``"status"``: answer ``status`` (default 503) with a text/plain ``body`` and extra
          ``headers`` (e.g. ``{"Retry-After": "1"}``).
        - ``"html"``: a 200 (or ``status``) text/html maintenance page.
        - ``"garbage"``: a 200 application/json whose body is not JSON (nor UTF-8).
        - ``"truncate"``: the real answer cut in half; with ``abort=True`` the full
          Content-Length is announced and the connection dropped mid-body.
        - ``"delay"``: wait ``seconds`` (default 1.0), then answer normally.
        - ``"reset"``: close the connection (TCP reset) without answering.
        - ``"short"``: a short read: a ``/studies`` page leaves out the study ``nct_id`` (by
          default its first study) while ``totalCount`` and paging still count it. With
          ``nct_id``, the fault waits for a page that holds that study; without, it is used by
          the next matching request (another path answers normally).
        """
        if times < 1:
            raise ValueError("times must be >= 1")
        fault = _make_fault(kind, path, times, opts)
        with self._lock:
            self._faults.append(fault)

    def throttle(
        self, *, status: int = 429, retry_after: str | None = None, times: int | None = 1
    ) -> None:
        """Throttle the next ``times`` requests (every request until :meth:`clear_faults` with
        ``times=None``): ``status`` 429 or 503, with ``Retry-After`` only when given, as
        :func:`~tests.fakes.ctgov_behaviour.throttled` says the real server does."""
        answer = rules.throttled(status, retry_after)
        opts: dict[str, Any] = {
            "status": status,
            "body": answer.body.decode(),
            "headers": dict(answer.headers),
        }
        if times is None:
            self.fail_all("status", **opts)
        else:
            self.inject("status", times=times, **opts)

    def fail_all(self, kind: str, *, path: str | None = None, **opts: Any) -> None:
        """Apply a fault to every matching request until :meth:`clear_faults` ("API down")."""
        fault = _make_fault(kind, path, None, opts)
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            queued = (f for f in self._faults if f.times is not None and f.matches(path))
            fault = next(queued, None) or next(
                (f for f in self._faults if f.times is None and f.matches(path)), None
            )
            if fault is not None and fault.times is not None:
                fault.times -= 1
                if fault.times == 0:
                    self._faults.remove(fault)
            return fault

    def _refund(self, fault: _Fault) -> None:
        """Give back one use of ``fault``, at the head of the queue."""
        with self._lock:
            if fault.times is None:
                return
            if fault in self._faults:
                fault.times += 1
            else:
                fault.times = 1
                self._faults.insert(0, fault)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    # -- the API ---------------------------------------------------------------------------------

    def _answer(self, path: str, query: str, *, short: str | bool = False) -> _Response:
        params = dict(parse_qsl(query, keep_blank_values=True))
        if path.startswith(HISTORY_ROOT + "/"):  # the record history: ctgov_history.py
            return _Response(*self.history.answer(path, params))
        if path != API_ROOT and not path.startswith(API_ROOT + "/"):
            return _text(404, f"Not Found: {path}")
        route = path[len(API_ROOT) :].rstrip("/")
        try:
            if route == "/version":
                rules.check_params(params, frozenset())  # spec: /version has no parameters
                with self._lock:
                    timestamp = None if self._omit_timestamp else self._data_timestamp
                    return _from(rules.version_answer(self._api_version, timestamp))
            if route == "/studies":
                return self._list_studies(params, short=short)
            if route in ("/studies/metadata", "/studies/search-areas", "/studies/enums"):
                return _text(404, f"{route} is not implemented by the fake")
            if route.startswith("/studies/") and route.count("/") == 2:
                return self._one_study(route.rsplit("/", 1)[1], params, query)
        except rules.BadRequest as exc:
            return _text(400, str(exc))
        return _text(404, f"Not Found: {path}")

    def _one_study(self, raw_id: str, params: dict[str, str], query: str) -> _Response:
        rules.check_params(params, rules.STUDY_PARAMS)
        rules.check_format(params)
        nct_id = rules.parse_id(raw_id)
        paths = _parse_fields(params.get("fields"))
        with self._lock:
            record = self._studies.get(nct_id)
            if record is not None:
                return _json(_project(record, paths))
            canonical = self._aliases().get(nct_id)
            if canonical is not None:
                # Spec, /studies/{nctId}: "301 Moved Permanently" when nctId is an alias.
                location = f"{API_ROOT}/studies/{canonical}" + (f"?{query}" if query else "")
                return _text(301, f"Moved Permanently: {location}", ("Location", location))
        # Spec: 404 with a text/plain body.
        return _text(404, f"Study {nct_id} not found")

    def _list_studies(self, params: dict[str, str], *, short: str | bool = False) -> _Response:
        query = rules.parse_studies_query(params)
        paths = _parse_fields(query.fields)
        dropped = False

        def render(chunk: Sequence[tuple[str, dict[str, Any]]]) -> Iterator[bytes]:
            nonlocal dropped
            for index, (nct_id, record) in enumerate(chunk):
                if (short is True and index == 0) or (short is not True and nct_id == short):
                    dropped = True  # a short read: left off, still counted and paged
                    continue
                # Serialized here, under the lock, straight from the stored records: no copies.
                yield orjson.dumps(_project(record, paths))

        with self._lock:
            if query.matches_nothing:
                candidates: Iterable[tuple[str, dict[str, Any]]] = ()
            elif query.ids is None:
                candidates = self._studies.items()
            else:
                # Spec, filter.ids: "searched in NCTId and NCTIdAlias": an alias answers with
                # its surviving study, under that study's own nctId (observed for merged ones).
                aliases = self._aliases()
                wanted = {aliases.get(i, i) for i in query.ids}
                candidates = ((k, r) for k, r in self._studies.items() if k in wanted)
            matching = [
                (nct_id, record)
                for nct_id, record in candidates
                if (query.statuses is None or _status(record) in query.statuses)
                and rules.in_range(_last_update(record), query.ranges)
                and all(
                    rules.matches(expr, self._search_texts(nct_id, record, area))
                    for area, expr in query.searches
                )
            ]
            body = rules.studies_page(query, matching, render)
        return _Response(200, body, "application/json; charset=utf-8", dropped=dropped)

    def _aliases(self) -> dict[str, str]:
        """alias -> canonical id; call with the lock held."""
        if self._alias_index is None:
            self._alias_index = {
                alias: nct_id for nct_id, r in self._studies.items() for alias in _aliases(r)
            }
        return self._alias_index

    def _search_texts(self, nct_id: str, record: Mapping[str, Any], area: str) -> tuple[str, ...]:
        """The texts the query area searches in the study, cached; call with the lock held."""
        texts = self._texts.setdefault(nct_id, {})
        haystack = texts.get(area)
        if haystack is None:
            haystack = texts[area] = rules.study_texts(record, area)
        return haystack


# -- HTTP plumbing -------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeCtGov

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def track(self, connection: socket.socket, *, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        # Keep-alive connections outlive serve_forever(); a stopped API must not keep answering.
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or hang up mid-answer are part of the game, not an error.
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError | ValueError):
            log.debug("connection from %s ended: %r", client_address, exc)
        else:
            log.exception("FakeCtGov failed to answer %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "FakeCtGov/1.0"

    # Buffer writes so status line, headers and body leave in one send: split small writes meet
    # Nagle's algorithm and delayed ACKs and cost ~40 ms per response.
    wbufsize = -1

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        self.server.track(self.connection, add=False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("FakeCtGov: " + format, *args)

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_OPTIONS(self) -> None:
        self._serve()

    def _serve(self) -> None:
        fake = self.server.fake
        split = urlsplit(self.path)
        fake._record(
            RecordedRequest(
                method=self.command,
                path=split.path,
                params=dict(parse_qsl(split.query, keep_blank_values=True)),
                headers={k.lower(): v for k, v in self.headers.items()},
            )
        )
        # Observed limits of common front servers (see rules.MAX_HEAD_BYTES).
        head = len(self.raw_requestline) + sum(
            len(name) + len(value) + 4 for name, value in self.headers.items()
        )
        too_large = rules.head_refusal(len(self.raw_requestline), head + 2)
        if too_large is not None:
            self.close_connection = True
            self._send(_from(too_large))
            return
        if self.command != "GET":
            # We never read request bodies: close rather than misparse one as the next request.
            self._send(_text(405, "Method Not Allowed", ("Allow", "GET"), ("Connection", "close")))
            return
        fault = fake._take_fault(split.path)
        kind = fault.kind if fault is not None else None
        opts = fault.opts if fault is not None else {}
        if kind == "reset":
            self._reset()
            return
        if kind == "delay":
            time.sleep(float(opts.get("seconds", 1.0)))
        if kind == "status":
            status = int(opts.get("status", 503))
            headers = tuple((str(k), str(v)) for k, v in dict(opts.get("headers", {})).items())
            body = str(opts.get("body", f"{status} {self.responses.get(status, ('',))[0]}"))
            response = _text(status, body.strip(), *headers)
        elif kind == "html":
            status = int(opts.get("status", 200))
            response = _Response(status, _MAINTENANCE_PAGE, "text/html; charset=utf-8")
        elif kind == "garbage":
            response = _Response(200, _GARBAGE, "application/json; charset=utf-8")
        elif kind == "short":
            response = fake._answer(split.path, split.query, short=opts.get("nct_id") or True)
            if fault is not None and opts.get("nct_id") and not response.dropped:
                fake._refund(fault)  # not on this page: wait for the one that holds it
        else:
            response = fake._answer(split.path, split.query)
        if kind == "truncate":
            cut = response.body[: len(response.body) // 2]
            if opts.get("abort"):
                self._send(response, body=cut)
                self._reset()
                return
            response = _Response(response.status, cut, response.content_type, response.headers)
        self._send(response)

    def _send(self, response: _Response, *, body: bytes | None = None) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body if body is None else body)
        self.wfile.flush()

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout makes close() send a TCP RST instead of a polite FIN.
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()


# -- helpers -------------------------------------------------------------------------------------


def load_records(path: str | Path = RECORDS_DIR) -> list[dict[str, Any]]:
    """The study records in ``path``: every ``NCTnnnnnnnn.json``, sorted by file name."""
    files = sorted(p for p in Path(path).glob("NCT*.json") if _RECORD_FILE.fullmatch(p.name))
    return [json.loads(p.read_text(encoding="utf-8")) for p in files]


def clone_record(record: Mapping[str, Any], nct_id: str, **overrides: Any) -> dict[str, Any]:
    """A DERIVED study: a deep copy of a real ``record`` re-numbered as ``nct_id``.

    For tests that need more studies than the real records provide (e.g. 13 in one request).
    The clone drops ``nctIdAliases`` (an alias belongs to one study only). ``overrides`` set a
    few common fields: ``brief_title``, ``overall_status``, ``last_update_posted``
    (``yyyy-MM-dd``) and ``has_results``.
    """
    known = {"brief_title", "overall_status", "last_update_posted", "has_results"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"clone_record: unknown overrides {unknown} (known: {sorted(known)})")
    clone = _copy(dict(record))
    protocol = clone.setdefault("protocolSection", {})
    ident = protocol.setdefault("identificationModule", {})
    ident["nctId"] = _parse_id(nct_id, "nct_id", error=ValueError)
    ident.pop("nctIdAliases", None)
    status = protocol.setdefault("statusModule", {})
    if "brief_title" in overrides:
        ident["briefTitle"] = overrides["brief_title"]
    if "overall_status" in overrides:
        status["overallStatus"] = overrides["overall_status"]
    if "last_update_posted" in overrides:
        status["lastUpdatePostDateStruct"] = {
            "date": overrides["last_update_posted"],
            "type": "ACTUAL",
        }
    if "has_results" in overrides:
        clone["hasResults"] = bool(overrides["has_results"])
    return clone


def _copy(value: Any) -> Any:
    """A deep copy of plain JSON data; ~10x faster than ``copy.deepcopy`` on study records."""
    try:
        return orjson.loads(orjson.dumps(value))
    except TypeError:  # not plain JSON (a tuple key, a huge int...): copy it the slow way
        return copy.deepcopy(value)


def _make_fault(kind: str, path: str | None, times: int | None, opts: dict[str, Any]) -> _Fault:
    if kind not in _FAULT_OPTS:
        raise ValueError(f"unknown fault kind {kind!r} (choose from {', '.join(FAULT_KINDS)})")
    unknown = sorted(set(opts) - _FAULT_OPTS[kind])
    if unknown:
        raise TypeError(f"fault {kind!r} takes no option(s) {unknown}")
    if kind == "short" and opts.get("nct_id") is not None:
        opts = {**opts, "nct_id": _parse_id(str(opts["nct_id"]), "nct_id", error=ValueError)}
    return _Fault(kind=kind, opts=dict(opts), path=path, times=times)


def _record_id(record: Mapping[str, Any]) -> str:
    try:
        raw = record["protocolSection"]["identificationModule"]["nctId"]
    except (KeyError, TypeError):
        raise ValueError(
            "a study record needs protocolSection.identificationModule.nctId"
        ) from None
    return _parse_id(str(raw), "nctId", error=ValueError)


def _aliases(record: Mapping[str, Any]) -> set[str]:
    ident = record.get("protocolSection", {}).get("identificationModule", {})
    return {str(a).upper() for a in ident.get("nctIdAliases", ())}


def _status(record: Mapping[str, Any]) -> str | None:
    value = record.get("protocolSection", {}).get("statusModule", {}).get("overallStatus")
    return str(value) if value is not None else None


def _last_update(record: Mapping[str, Any]) -> str:
    status = record.get("protocolSection", {}).get("statusModule", {})
    return str(status.get("lastUpdatePostDateStruct", {}).get("date", ""))


def _project(record: Mapping[str, Any], paths: tuple[tuple[str, ...], ...] | None) -> Any:
    """The study as ``fields`` asks: whole (None) or only the named paths.

    Shares values with ``record``: serialize the result at once, under the lock.
    """
    if paths is None:
        return record
    out: dict[str, Any] = {}
    taken: set[tuple[str, ...]] = set()
    for path in paths:  # shortest first: a path inside one already taken is skipped
        if any(path[:n] in taken for n in range(1, len(path))):
            continue
        value: Any = record
        for key in path:
            value = value.get(key, _ABSENT) if isinstance(value, dict) else _ABSENT
        if value is _ABSENT:
            continue
        taken.add(path)
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return out


def _parse_id(raw: str, name: str = "nctId", error: type[Exception] = ValueError) -> str:
    if not _NCT_ID.fullmatch(raw.strip()):
        raise error(f"{name}: `{raw}` is not a valid NCT ID")
    return raw.strip().upper()


def _parse_fields(value: str | None) -> tuple[tuple[str, ...], ...] | None:
    if value is None:
        return None
    paths: set[tuple[str, ...]] = set()
    for item in rules.split_list(value, "fields"):
        path = FIELD_PATHS.get(item.strip().lower())
        if path is None:
            raise rules.BadRequest(f"fields: `{item}` is unknown or not supported by the fake")
        paths.add(path)
    return tuple(sorted(paths, key=lambda p: (len(p), p)))


def _check_timestamp(ts: str) -> str:
    datetime.strptime(ts, _TIMESTAMP_FORMAT)  # raises ValueError when malformed
    return ts


def _advance(ts: str) -> str:
    return (datetime.strptime(ts, _TIMESTAMP_FORMAT) + timedelta(days=1)).strftime(
        _TIMESTAMP_FORMAT
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.ctgov_server",
        description="Serve study records like the ClinicalTrials.gov Data API v2, on loopback.",
    )
    parser.add_argument("--data", type=Path, default=RECORDS_DIR, help="dir of NCT*.json records")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--data-timestamp", default="2026-11-20T09:00:06")
    args = parser.parse_args(argv)
    fake = FakeCtGov.load_dir(
        args.data, data_timestamp=args.data_timestamp, host=args.host, port=args.port
    )
    with fake:
        print(
            f"serving {len(fake.nct_ids)} studies at {fake.base_url} (Ctrl-C to stop)", flush=True
        )
        print(f"  try: curl '{fake.base_url}/studies?pageSize=2&fields=NCTId'", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
