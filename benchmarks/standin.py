"""A CT.gov Data API v2 stand-in for the benchmark, serving pre-serialized studies from its own
process, so that its cost is not counted as the sync's.

It answers by the rules of ``tests/fakes/ctgov_behaviour.py`` (each with its source: the spec or
observed behaviour), the same rules as ``tests/fakes/ctgov_server.py``, which serves 13 parsed
records to tests and would be the bottleneck at 100,000: full pages always carry a
``nextPageToken``, one id off the spec's pattern refuses the whole request, request heads over
8 KB are refused with 414/431. In short:

- ``GET /api/v2/version``: ``apiVersion`` and ``dataTimestamp``;
- ``GET /api/v2/studies``: ``filter.ids`` (comma or pipe; malformed ids are a 400, unknown ones
  absent), ``filter.advanced=AREA[LastUpdatePostDate]RANGE[from,to]`` (``MIN``/``MAX``),
  ``fields``, ``pageSize`` (default 10, clamped to 1000), ``pageToken``/``nextPageToken`` (bound
  to the query), ``countTotal``/``totalCount`` (first page only); ``sort`` and ``markupFormat``
  are accepted and ignored; ``query.*`` is checked like Essie and matches nothing (the synthetic
  studies carry no texts to search), ``filter.overallStatus`` is refused as unsupported, unknown
  parameters get the API's own 400;
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
import json
import math
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

# The rules of the API live once, in the tests' behaviour module (test equipment, not shipped):
# this process loads it from the checkout, by path, without the rest of the test suite.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fakes import ctgov_behaviour as rules

API_ROOT = rules.API_ROOT
CONTROL_ROOT = "/_bench"


Answer = tuple[int, str, bytes]


def _text(status: int, message: str) -> Answer:
    return status, "text/plain; charset=utf-8", message.encode("utf-8")


def _json(value: Any) -> Answer:
    return 200, "application/json", json.dumps(value).encode("utf-8")


def _of(answer: rules.Answer) -> Answer:
    return answer.status, answer.content_type, answer.body


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
                rules.check_params(params, frozenset())
                with self._lock:
                    self.by_route["version"] += 1
                    return _of(
                        rules.version_answer(
                            self.registry.api_version, self.registry.data_timestamp
                        )
                    )
            if route == "/studies":
                return self._studies(params)
            if route is not None and route.count("/") == 2 and route.startswith("/studies/"):
                return self._study(route.rsplit("/", 1)[1], params)
        except (rules.BadRequest, corpus.UnknownField) as exc:
            with self._lock:
                self.by_route["refused"] += 1
            return _text(400, str(exc))
        with self._lock:
            self.by_route["not found"] += 1
        return _text(404, f"Not Found: {path}")

    def _study(self, raw_id: str, params: dict[str, str]) -> Answer:
        rules.check_params(params, rules.STUDY_PARAMS)
        rules.check_format(params)
        nct = rules.parse_id(raw_id, "nctId")
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
        # No search areas: the synthetic studies carry no texts worth searching, and a search
        # the stand-in cannot answer matches nothing rather than everything.
        query = rules.parse_studies_query(params, searchable=())
        if query.statuses is not None:
            raise rules.BadRequest("overallStatus filters are not supported by the bench stand-in")
        with self._lock:
            self.by_route["studies"] += 1
            if query.ids is not None:
                self.max_ids = max(self.max_ids, len(query.ids))
            self.fields_seen[params.get("fields", "(all)")] += 1
            projection = self._projection(params)
            registry = self.registry
            if query.matches_nothing:
                matching: list[int] = []
            else:
                candidates = (
                    registry.lookup(query.ids)
                    if query.ids is not None
                    else range(registry.served_total)
                )
                matching = list(candidates)
                for low, high in query.ranges:
                    matching = registry.updated_between(matching, low, high)
            page = matching[query.offset : query.offset + query.page_size]
            body = rules.studies_page(
                query, matching, lambda chunk: [registry.study_bytes(i, projection) for i in chunk]
            )
            self.studies_out += len(page)
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
        head = len(self.raw_requestline) + 2
        head += sum(len(name) + len(value) + 4 for name, value in self.headers.items())
        too_large = rules.head_refusal(len(self.raw_requestline), head)
        if too_large is not None and not split.path.startswith(CONTROL_ROOT + "/"):
            self.close_connection = True
            status, content_type, body = _of(too_large)
        elif split.path.startswith(CONTROL_ROOT + "/"):
            status, content_type, body = self.server.api.control(method, split.path, split.query)
        elif method != "GET":
            status, content_type, body = _text(405, "Method Not Allowed")
        else:
            status, content_type, body = self.server.api.answer(split.path, split.query)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
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
