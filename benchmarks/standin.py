"""A CT.gov Data API v2 stand-in for the benchmark, serving pre-serialized studies from its own
process, so that its cost is not counted as the sync's.

It answers like the real API (and like ``tests/fakes/ctgov_server.py``, which serves 13 parsed
records to tests and would be the bottleneck at 100,000):

- ``GET /api/v2/version``: ``apiVersion`` and ``dataTimestamp``;
- ``GET /api/v2/studies``: ``filter.ids`` (comma or pipe; malformed ids are a 400, unknown ones
  absent), ``filter.advanced=AREA[LastUpdatePostDate]RANGE[from,to]`` (``MIN``/``MAX``),
  ``fields``, ``pageSize`` (default 10, clamped to 1000), ``pageToken``/``nextPageToken`` (bound
  to the query), ``countTotal``/``totalCount`` (first page only); ``sort`` and ``markupFormat``
  are accepted and ignored; other known parameters are refused with a 400 that says the stand-in
  does not support them, unknown ones with the API's own 400;
- ``GET /api/v2/studies/{nctId}`` (with ``fields``): one study, or a ``text/plain`` 404.

``fields`` takes area, piece and dotted names (see :class:`corpus.Fields`).

Control, not counted as requests: ``GET /_bench/stats`` (requests by route, bytes and studies
served, the largest ``filter.ids``, ``fields`` seen, CPU seconds used), ``POST /_bench/reset``,
``POST /_bench/change?percent=P`` (P % of the watched studies change for real, dated a new day),
``POST /_bench/registry-day?updated=U&watched=W`` (U studies change on a new day, W of them
watched), ``POST /_bench/mission?nct=NCT...&status=S`` (with ``--mission``: one of the
Selinexor review's 13 trials takes status S, dated the next published day),
``GET /_bench/info?fields=F`` (served sizes).

By hand (e.g. for an acceptance run of ``trialwatch`` against 100,000 studies)::

    python benchmarks/standin.py --watched 100000 --port 8000 --write-ids ids.txt
    trialwatch watch import ids.txt   # TRIALWATCH_API__BASE_URL=http://127.0.0.1:8000/api/v2
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import math
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode, urlsplit

import corpus

API_ROOT = "/api/v2"
CONTROL_ROOT = "/_bench"
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 1000

_NCT_ID = re.compile(r"NCT\d{8}", re.IGNORECASE)
_ADVANCED = re.compile(
    r"\s*AREA\[LastUpdatePostDate\]\s*RANGE\[\s*([^,\]]+?)\s*,\s*([^\]]+?)\s*\]\s*", re.IGNORECASE
)
_SPEC_PARAMS = frozenset(
    {
        "format",
        "markupFormat",
        "query.cond",
        "query.term",
        "query.locn",
        "query.titles",
        "query.intr",
        "query.outc",
        "query.spons",
        "query.lead",
        "query.id",
        "query.patient",
        "filter.overallStatus",
        "filter.geo",
        "filter.ids",
        "filter.advanced",
        "filter.synonyms",
        "postFilter.overallStatus",
        "postFilter.geo",
        "postFilter.ids",
        "postFilter.advanced",
        "postFilter.synonyms",
        "aggFilters",
        "geoDecay",
        "fields",
        "sort",
        "countTotal",
        "pageSize",
        "pageToken",
    }
)
_SUPPORTED = frozenset(
    {
        "format",
        "markupFormat",
        "filter.ids",
        "filter.advanced",
        "fields",
        "sort",
        "countTotal",
        "pageSize",
        "pageToken",
    }
)
_PAGING = frozenset({"pageToken", "pageSize", "countTotal"})


class _BadRequest(Exception):
    """A 400 with this ``text/plain`` message."""


Answer = tuple[int, str, bytes]


def _text(status: int, message: str) -> Answer:
    return status, "text/plain; charset=utf-8", message.encode("utf-8")


def _json(value: Any) -> Answer:
    return 200, "application/json", json.dumps(value).encode("utf-8")


class StandInApi:
    """The registry behind the HTTP server, under one lock, with request counters."""

    def __init__(self, registry: corpus.Registry) -> None:
        self.registry = registry
        self._lock = threading.Lock()
        self._reset_counters()

    def _reset_counters(self) -> None:
        self.by_route: Counter[str] = Counter()
        self.bytes_out = 0
        self.studies_out = 0
        self.max_ids = 0
        self.fields_seen: Counter[str] = Counter()

    # -- the API -------------------------------------------------------------------------------

    def answer(self, path: str, query: str) -> Answer:
        params = dict(parse_qsl(query, keep_blank_values=True))
        route = path[len(API_ROOT) :].rstrip("/") if path.startswith(API_ROOT + "/") else None
        try:
            if route == "/version":
                with self._lock:
                    self.by_route["version"] += 1
                    return _json(
                        {
                            "apiVersion": self.registry.api_version,
                            "dataTimestamp": self.registry.data_timestamp,
                        }
                    )
            if route == "/studies":
                return self._studies(params)
            if route is not None and route.count("/") == 2 and route.startswith("/studies/"):
                return self._study(route.rsplit("/", 1)[1], params)
        except (_BadRequest, corpus.UnknownField) as exc:
            with self._lock:
                self.by_route["refused"] += 1
            return _text(400, str(exc))
        with self._lock:
            self.by_route["not found"] += 1
        return _text(404, f"Not Found: {path}")

    def _study(self, raw_id: str, params: dict[str, str]) -> Answer:
        for name in params:
            if name not in {"format", "markupFormat", "fields"}:
                raise _BadRequest(f"`{name}` is unknown parameter")
        _check_format(params)
        nct = _parse_id(raw_id, "nctId")
        with self._lock:
            self.by_route["study"] += 1
            projection = self._projection(params)
            found = self.registry.lookup([nct])
            if not found:
                return _text(404, f"Study {nct} not found")
            body = self.registry.study_bytes(found[0], projection)
            self.bytes_out += len(body)
            self.studies_out += 1
        return 200, "application/json", body

    def _studies(self, params: dict[str, str]) -> Answer:
        for name in params:
            if name not in _SPEC_PARAMS:
                raise _BadRequest(f"`{name}` is unknown parameter")
            if name not in _SUPPORTED:
                raise _BadRequest(f"`{name}` is not supported by the benchmark stand-in")
        _check_format(params)
        page_size = _page_size(params.get("pageSize"))
        count_total = params.get("countTotal", "false").lower()
        if count_total not in ("true", "false"):
            raise _BadRequest(f"countTotal must be true or false, got `{count_total}`")
        ids = None
        if "filter.ids" in params:
            raw = [i.strip() for i in re.split(r"[,|]", params["filter.ids"])]
            ids = [_parse_id(i, "filter.ids") for i in raw]
        low, high = "", "\uffff"
        if "filter.advanced" in params:
            match = _ADVANCED.fullmatch(params["filter.advanced"])
            if match is None:
                raise _BadRequest(
                    "filter.advanced: the stand-in understands only "
                    "AREA[LastUpdatePostDate]RANGE[from,to]"
                )
            low = "" if match.group(1).upper() == "MIN" else match.group(1)
            high = "\uffff" if match.group(2).upper() == "MAX" else match.group(2)
        digest = hashlib.sha256(
            json.dumps(sorted((k, v) for k, v in params.items() if k not in _PAGING)).encode()
        ).hexdigest()[:16]
        offset = _parse_token(params["pageToken"], digest) if "pageToken" in params else 0

        with self._lock:
            self.by_route["studies"] += 1
            if ids is not None:
                self.max_ids = max(self.max_ids, len(ids))
            self.fields_seen[params.get("fields", "(all)")] += 1
            projection = self._projection(params)
            registry = self.registry
            candidates = registry.lookup(ids) if ids is not None else range(registry.served_total)
            if "filter.advanced" in params:
                matching = registry.updated_between(candidates, low, high)
            else:
                matching = list(candidates)
            page = matching[offset : offset + page_size]
            # One join of the cached bytes, separators included: a page is copied once.
            parts = [b'{"studies":[']
            for number, index in enumerate(page):
                if number:
                    parts.append(b",")
                parts.append(registry.study_bytes(index, projection))
            self.studies_out += len(page)
        parts.append(b"]")
        if count_total == "true" and "pageToken" not in params:
            parts.append(b',"totalCount":%d' % len(matching))
        if offset + page_size < len(matching):
            token = f"{offset + page_size}:{digest}".encode()
            parts.append(b',"nextPageToken":"%s"' % base64.urlsafe_b64encode(token).rstrip(b"="))
        parts.append(b"}")
        body = b"".join(parts)
        with self._lock:
            self.bytes_out += len(body)
        return 200, "application/json", body

    def _projection(self, params: dict[str, str]) -> Any:
        return self.registry.fields.resolve(params.get("fields"))

    # -- control -------------------------------------------------------------------------------

    def control(self, method: str, path: str, query: str) -> Answer:
        params = dict(parse_qsl(query))
        action = path[len(CONTROL_ROOT) :]
        try:
            if method == "GET" and action == "/stats":
                return _json(self.stats())
            if method == "GET" and action == "/info":
                return _json(self.info(params.get("fields")))
            if method == "POST" and action == "/reset":
                with self._lock:
                    self._reset_counters()
                return _json({"ok": True})
            if method == "POST" and action == "/change":
                return _json(self.change(float(params.get("percent", "1"))))
            if method == "POST" and action == "/mission":
                with self._lock:
                    before = self.registry.edit_mission(params["nct"], params["status"])
                return _json({"nct": params["nct"], "before": before, "status": params["status"]})
            if method == "POST" and action == "/registry-day":
                updated = int(params.get("updated", "1000"))
                return _json(self.registry_day(updated, int(params.get("watched", "10"))))
        except (ValueError, KeyError, corpus.UnknownField) as exc:
            return _text(400, str(exc))
        return _text(404, f"no control {method} {action}")

    def stats(self) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        with self._lock:
            return {
                "requests": sum(self.by_route.values()),
                "by_route": dict(self.by_route),
                "bytes": self.bytes_out,
                "studies": self.studies_out,
                "max_ids": self.max_ids,
                "fields": dict(self.fields_seen),
                "data_timestamp": self.registry.data_timestamp,
                "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
                "rss_mib": round(usage.ru_maxrss / 1024, 1),
            }

    def info(self, fields: str | None) -> dict[str, Any]:
        with self._lock:
            projection = self.registry.fields.resolve(fields)
            sizes = list(corpus.served_sizes(self.registry, projection))
            return {
                "studies": self.registry.total,
                "watched": self.registry.watched,
                "shapes": len(self.registry.shapes),
                "fields": fields,
                "mean_bytes": round(statistics.fmean(sizes)),
                "median_bytes": round(statistics.median(sizes)),
                "min_bytes": min(sizes),
                "max_bytes": max(sizes),
            }

    def change(self, percent: float) -> dict[str, Any]:
        with self._lock:
            count = math.ceil(self.registry.watched * percent / 100)
            chosen = self.registry.pick(count, watched=True)
            day = self.registry.publish(chosen)
            return {
                "changed": len(chosen),
                "ids": [corpus.nct_id(i) for i in chosen],
                "day": day,
                "data_timestamp": self.registry.data_timestamp,
            }

    def registry_day(self, updated: int, watched: int) -> dict[str, Any]:
        with self._lock:
            mine = self.registry.pick(watched, watched=True)
            others = self.registry.pick(updated - len(mine), watched=False)
            day = self.registry.publish([*mine, *others])
            return {
                "updated": len(mine) + len(others),
                "watched": len(mine),
                "ids": [corpus.nct_id(i) for i in mine],
                "day": day,
                "data_timestamp": self.registry.data_timestamp,
            }


def _check_format(params: dict[str, str]) -> None:
    if params.get("format", "json") != "json":
        raise _BadRequest("format: the stand-in serves json only")


def _parse_id(raw: str, name: str) -> str:
    if not _NCT_ID.fullmatch(raw):
        raise _BadRequest(f"{name}: `{raw}` is not a valid NCT ID")
    return raw.upper()


def _page_size(value: str | None) -> int:
    if value is None:
        return DEFAULT_PAGE_SIZE
    try:
        size = int(value)
    except ValueError:
        raise _BadRequest(f"pageSize: `{value}` is not an integer") from None
    if size < 0:
        raise _BadRequest(f"pageSize must be >= 0, got {size}")
    return min(size, MAX_PAGE_SIZE) if size else DEFAULT_PAGE_SIZE


def _parse_token(token: str, digest: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
        offset_text, token_digest = raw.split(":")
        offset = int(offset_text)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _BadRequest(f"pageToken `{token}` is invalid") from None
    if token_digest != digest or offset < 0:
        raise _BadRequest(f"pageToken `{token}` does not belong to this query")
    return offset


# -- HTTP ------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: StandInApi


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "BenchCtGov/1.0"

    def setup(self) -> None:
        super().setup()
        # Status line, headers and body in as few sends as possible: no Nagle delay per answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._serve("POST")

    def _serve(self, method: str) -> None:
        split = urlsplit(self.path)
        if split.path.startswith(CONTROL_ROOT + "/"):
            status, content_type, body = self.server.api.control(method, split.path, split.query)
        elif method != "GET":
            status, content_type, body = _text(405, "Method Not Allowed")
        else:
            status, content_type, body = self.server.api.answer(split.path, split.query)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(
    watched: int,
    extra: int,
    seed: int,
    host: str,
    port: int,
    ids_file: Path | None = None,
    mission: bool = False,
) -> None:
    """Build the registry, bind, print one JSON line (``base_url`` ...), serve until SIGTERM."""
    started = time.perf_counter()
    records = corpus.mission_records() if mission else []
    registry = corpus.Registry(watched, extra, seed=seed, mission=records)
    if ids_file is not None:
        ids_file.write_text("".join(f"{corpus.nct_id(i)}\n" for i in range(watched)))
    server = _Server((host, port), _Handler)
    server.api = StandInApi(registry)
    bound_port = server.server_address[1]
    ready = {
        "base_url": f"http://{host}:{bound_port}{API_ROOT}",
        "control_url": f"http://{host}:{bound_port}{CONTROL_ROOT}",
        "studies": registry.total,
        "setup_s": round(time.perf_counter() - started, 2),
    }
    print(json.dumps(ready), flush=True)

    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever(poll_interval=0.05)
    server.server_close()


class StandIn:
    """Runs this file in a subprocess and talks to its control endpoints.

    ``with StandIn(watched=5000, extra=1000) as api: api.base_url ...``
    """

    def __init__(self, *, watched: int, extra: int, seed: int = 1, mission: bool = False) -> None:
        self._args = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--watched",
            str(watched),
            "--extra",
            str(extra),
            "--seed",
            str(seed),
            "--port",
            "0",
            *(["--mission"] if mission else []),
        ]
        self._proc: subprocess.Popen[bytes] | None = None
        self.base_url = ""
        self.control_url = ""
        self.setup_s = 0.0

    def __enter__(self) -> Self:
        self._proc = subprocess.Popen(self._args, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait()
            raise RuntimeError(f"the stand-in exited ({self._proc.returncode}) before serving")
        ready = json.loads(line)
        self.base_url = ready["base_url"]
        self.control_url = ready["control_url"]
        self.setup_s = ready["setup_s"]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def _call(self, method: str, action: str, **params: Any) -> Any:
        url = f"{self.control_url}{action}" + (f"?{urlencode(params)}" if params else "")
        request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(request, timeout=600) as response:
            return json.loads(response.read())

    def stats(self) -> dict[str, Any]:
        return dict(self._call("GET", "/stats"))

    def reset(self) -> None:
        self._call("POST", "/reset")

    def info(self, fields: str | None) -> dict[str, Any]:
        return dict(self._call("GET", "/info", **({"fields": fields} if fields else {})))

    def change(self, percent: float) -> dict[str, Any]:
        return dict(self._call("POST", "/change", percent=percent))

    def registry_day(self, updated: int, watched: int) -> dict[str, Any]:
        return dict(self._call("POST", "/registry-day", updated=updated, watched=watched))

    def edit_mission(self, nct: str, status: str) -> dict[str, Any]:
        """Mission study ``nct`` takes ``status`` at the next published day (:meth:`change`)."""
        return dict(self._call("POST", "/mission", nct=nct, status=status))

    def get(self, path: str, **params: Any) -> bytes:
        """A GET on the API itself (it is counted like any other request)."""
        url = f"{self.base_url}{path}" + (f"?{urlencode(params)}" if params else "")
        with urllib.request.urlopen(url, timeout=600) as response:
            return bytes(response.read())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/standin.py",
        description="Serve synthetic studies like the ClinicalTrials.gov Data API v2, on loopback. "
        "Example: python benchmarks/standin.py --watched 100000 --port 8000",
    )
    parser.add_argument("--watched", type=int, default=2000, help="watched studies (ids 0..N-1)")
    parser.add_argument("--extra", type=int, default=1000, help="unwatched studies besides")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--write-ids", type=Path, help="write the watched ids to this file")
    parser.add_argument(
        "--mission",
        action="store_true",
        help="also serve the Selinexor review's 13 trials (tests/data/selinexor) under their ids",
    )
    args = parser.parse_args(argv)
    serve(args.watched, args.extra, args.seed, args.host, args.port, args.write_ids, args.mission)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
