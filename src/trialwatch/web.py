"""``trialwatch serve``: the read-only web page of the watch set (Starlette, run by uvicorn).

Every page is server-side HTML from the one Jinja environment the HTML reports use, readable on
a phone, and works without script (there is none: the Content-Security-Policy forbids it). The
registry's text is untrusted and is escaped everywhere (autoescape). Nothing here writes: every
route is a GET (or HEAD) that reads through :class:`trialwatch.app.App`.

Access: without ``[web] token_file`` the page is open to whoever reaches it, which is why
:func:`check_bind` refuses any address but loopback then. With a token, each request carries it
in an ``Authorization: Bearer`` header or in the cookie a one-time login link sets
(:func:`login_link`); the token itself never travels in a URL. A separate read-only feed token
(``[web] feed_token_file``) may: feed readers can send neither headers nor cookies.

Caching: each page's ETag and Last-Modified come from the database's last write
(:meth:`App.last_write`), so a reload or a feed reader's poll costs a few indexed queries.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from trialwatch import __version__
from trialwatch.exceptions import UserError
from trialwatch.history import data_as_of, history_entries, stamp
from trialwatch.models import Severity
from trialwatch.overview import SORTS, SOURCE_KINDS, OverviewQuery, WatchRow
from trialwatch.pages import environment
from trialwatch.period import period_report
from trialwatch.records import Period, TrialHistory, parse_day
from trialwatch.vocabulary import (
    date_label,
    history_url,
    one_line,
    phases_label,
    plural,
    status_label,
    study_url,
)

if TYPE_CHECKING:
    from trialwatch.app import App
    from trialwatch.config import WebSettings

__all__ = [
    "CSP",
    "SESSION_COOKIE",
    "TokenNeededError",
    "check_bind",
    "create_web_app",
    "login_link",
    "make_server",
    "serve",
]

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}
SESSION_COOKIE = "trialwatch_session"
LOGIN_LINK_MINUTES = 15
TIMELINE_PAGE = 100  # trials a timeline page draws (an SVG each: about 1.5 ms of CPU apiece)
FEED_ENTRIES = 500  # the newest change events the feed carries (feed readers keep the rest)
_DEFAULT_CHANGES_DAYS = 30


class TokenNeededError(UserError):
    """Serving on an address other than loopback without ``[web] token_file``."""


def check_bind(host: str, settings: WebSettings) -> None:
    """Refuse to serve the page beyond this machine without a token (raises
    :class:`TokenNeededError` saying what to set)."""
    from trialwatch.config import is_loopback

    if not is_loopback(host) and settings.token_file is None:
        raise TokenNeededError(
            f"serving on {host} needs a token: anyone who reaches that address could read the "
            "watch set. Set [web] token_file (a file holding a long random token, e.g. from "
            "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`), or serve on "
            "127.0.0.1 behind a reverse proxy that authenticates"
        )


def _session_value(token: str) -> str:
    # The cookie holds a value derived from the token, not the token: it is useless elsewhere.
    return hmac.new(token.encode(), b"trialwatch-session", hashlib.sha256).hexdigest()


def _login_signature(token: str, expires: int, nonce: str) -> str:
    message = f"trialwatch-login:{expires}:{nonce}".encode()
    return hmac.new(token.encode(), message, hashlib.sha256).hexdigest()[:32]


def login_link(base_url: str, token: str, *, now: datetime, nonce: str) -> str:
    """A link that signs its opener in once (a cookie), valid for :data:`LOGIN_LINK_MINUTES`.
    It carries a signature made with the token, never the token itself."""
    expires = int((now + timedelta(minutes=LOGIN_LINK_MINUTES)).timestamp())
    code = f"{expires}.{nonce}.{_login_signature(token, expires, nonce)}"
    return f"{base_url.rstrip('/')}/login?{urlencode({'code': code})}"


class _Guard:
    """Who may read: everyone (no token configured), or holders of the token or session."""

    def __init__(self, token: str | None, feed_token: str | None, clock: Callable[[], datetime]):
        self.token = token
        self.feed_token = feed_token
        self.clock = clock
        self._used: set[str] = set()
        self._lock = threading.Lock()

    def allows(self, request: Request, *, feed: bool = False) -> bool:
        if self.token is None:
            return True
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and _same(value.strip(), self.token):
            return True
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie and _same(cookie, _session_value(self.token)):
            return True
        given = request.query_params.get("token")
        return bool(feed and self.feed_token and given and _same(given, self.feed_token))

    def redeem(self, code: str) -> bool:
        """Whether ``code`` is a valid login link's, not expired, and not used before."""
        if self.token is None:
            return False
        expires_text, _, rest = code.partition(".")
        nonce, _, signature = rest.partition(".")
        if not expires_text.isdigit() or not nonce or not signature:
            return False
        expires = int(expires_text)
        if expires < self.clock().timestamp():
            return False
        if not _same(signature, _login_signature(self.token, expires, nonce)):
            return False
        with self._lock:
            if code in self._used:
                return False
            self._used.add(code)
        return True


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _severity_choices() -> list[str]:
    return [s.label for s in sorted(Severity, reverse=True)]


def _status_classes() -> str:
    """One CSS class per registry status, in the timeline's colours (no inline styles: the
    Content-Security-Policy allows only the stylesheet)."""
    from trialwatch.timeline import STATUS_COLORS

    return "\n".join(
        f".st-{name} {{ background: {bg}; color: {fg}; }}"
        for name, (bg, fg) in sorted(STATUS_COLORS.items())
    )


def create_web_app(app: App, settings: WebSettings) -> Starlette:
    """The ASGI application over ``app`` (whose store it reads, one request at a time)."""
    env = environment()
    guard = _Guard(settings.token(), settings.feed_token(), app.clock)
    # The store's reads are short; serializing them keeps SQLite's single connection story
    # simple and a burst of requests from starving a sync of the database.
    reads = threading.Lock()
    stylesheet = env.get_template("web.css.j2").render(status_classes=_status_classes())
    css_etag = '"' + hashlib.sha256(stylesheet.encode()).hexdigest()[:20] + '"'
    started = app.clock()

    def secure(response: Response) -> Response:
        for name, value in _SECURITY_HEADERS.items():
            response.headers[name] = value
        return response

    def page(
        request: Request, template: str, context: dict[str, Any], status: int = 200
    ) -> Response:
        html = env.get_template(template).render(
            request_path=request.url.path, version=__version__, **context
        )
        return secure(Response(html, status, media_type="text/html; charset=utf-8"))

    def denied(request: Request) -> Response:
        response = page(
            request,
            "web_denied.html.j2",
            {"title": "A token is needed", "login": guard.token is not None},
            status=401,
        )
        response.headers["www-authenticate"] = 'Bearer realm="trialwatch"'
        response.headers["cache-control"] = "no-store"
        return response

    def cached(
        request: Request,
        render: Callable[[], Response],
        *,
        feed: bool = False,
    ) -> Response:
        """Answer 304 when the reader's copy is current, else render with validators."""
        if not guard.allows(request, feed=feed):
            return denied(request)
        with reads:
            written, watched = app.last_write()
        today = app.clock().astimezone(UTC).date()
        # The day is part of the tag: "next expected date" and the timeline's today move
        # with it even when nothing is written.
        identity = (
            f"{__version__}|{written}|{watched}|{today}|{request.url.path}|{request.url.query}"
        )
        etag = '"' + hashlib.sha256(identity.encode()).hexdigest()[:24] + '"'
        last_modified = format_datetime(written or started, usegmt=True)
        headers = {
            "etag": etag,
            "last-modified": last_modified,
            "cache-control": "private, no-cache",
            "vary": "Authorization, Cookie",
        }
        if _not_modified(request, etag, written or started):
            return secure(Response(status_code=304, headers=headers))
        with reads:
            response = render()
        response.headers.update(headers)
        return secure(response)

    def not_found(request: Request, message: str) -> Response:
        return page(request, "web_error.html.j2", {"title": "Not found", "message": message}, 404)

    def bad_request(request: Request, message: str) -> Response:
        return page(
            request, "web_error.html.j2", {"title": "Not understood", "message": message}, 400
        )

    # -- routes -------------------------------------------------------------------------------

    def index(request: Request) -> Response:
        params = request.query_params
        try:
            query = OverviewQuery(
                status=params.get("status") or None,
                severity=Severity.parse(params["severity"]) if params.get("severity") else None,
                source=_choice(params.get("source"), SOURCE_KINDS, "source"),
                sort=_choice(params.get("sort"), SORTS, "sort") or "changed",
                page=_positive(params.get("page"), "page"),
                page_size=settings.page_size,
            )
        except ValueError as exc:
            return bad_request(request, str(exc))

        def render() -> Response:
            today = app.clock().astimezone(UTC).date()
            result = app.watch_overview(query, today=today)
            return page(
                request,
                "web_index.html.j2",
                {
                    "title": "Watched trials",
                    "stamp": stamp(app.data_timestamp(), app.clock()),
                    "result": result,
                    "rows": [_row_view(r) for r in result.rows],
                    "query": query,
                    "statuses": [(s, status_label(s)) for s in result.statuses],
                    "severities": _severity_choices(),
                    "sources": SOURCE_KINDS,
                    "sorts": SORTS,
                    "prev_url": _page_url(request, result.page - 1) if result.page > 1 else None,
                    "next_url": _page_url(request, result.page + 1)
                    if result.page < result.pages
                    else None,
                },
            )

        return cached(request, render)

    def trial(request: Request) -> Response:
        key = request.path_params["key"]

        def render() -> Response:
            found = app.resolve_trial(key)
            if not found:
                return not_found(request, f"{key!r} is not a watched trial's id or label.")
            if len(found) > 1:
                return page(
                    request,
                    "web_choose.html.j2",
                    {"title": f"{key} names several trials", "ids": found},
                    300,
                )
            history = app.trial_history(found[0])
            if history is None:
                return not_found(request, f"{key!r} is not a watched trial's id or label.")
            try:
                context = _trial_context(history, request, app.clock())
            except ValueError as exc:
                return bad_request(request, str(exc))
            return page(request, "web_trial.html.j2", context)

        return cached(request, render)

    def changes(request: Request) -> Response:
        params = request.query_params
        try:
            today = app.clock().astimezone(UTC).date()
            since = (
                parse_day(params["since"])
                if params.get("since")
                else today - timedelta(days=_DEFAULT_CHANGES_DAYS)
            )
            until = parse_day(params["until"]) if params.get("until") else None
            period = Period(since, until)
            minimum = Severity.parse(params.get("min_severity") or "admin")
        except ValueError as exc:
            return bad_request(request, str(exc))

        def render() -> Response:
            histories, watched = app.changed_histories(period)
            report = period_report(
                histories,
                period,
                generated_at=app.clock(),
                data_timestamp=app.data_timestamp(),
                watched=watched,
                keep_records=False,  # the page lists changes in words: no timeline
            )
            trials: list[dict[str, Any]] = []
            for t in report.trials:
                shown = [e for e in t.changes if e.change.severity >= minimum]
                if not shown:
                    continue
                trials.append(
                    {
                        "name": t.name,
                        "nct_id": t.nct_id,
                        "title": t.history.brief_title,
                        "severity": t.severity.label if t.severity is not None else "",
                        "summary": t.summary,
                        "note": t.before_history,
                        "changes": [
                            {
                                "day": e.detected_at.astimezone(UTC).date().isoformat(),
                                "severity": e.change.severity.label,
                                "summary": one_line(e.change.summary),
                            }
                            for e in sorted(
                                shown,
                                key=lambda e: (e.change.severity, e.detected_at),
                                reverse=True,
                            )
                        ],
                    }
                )
            count = sum(len(t["changes"]) for t in trials)
            return page(
                request,
                "web_changes.html.j2",
                {
                    "title": f"Changes, {period.label}",
                    "intro": (
                        f"{plural(count, 'change')} of {minimum.label} severity or more in "
                        f"{plural(len(trials), 'trial')} of {plural(watched, 'watched trial')}."
                    ),
                    "stamp": stamp(report.data_timestamp, report.generated_at),
                    "trials": trials,
                    "since": since.isoformat(),
                    "until": until.isoformat() if until else "",
                    "min_severity": minimum.label,
                    "severities": _severity_choices(),
                },
            )

        return cached(request, render)

    def timeline(request: Request) -> Response:
        try:
            number = _positive(request.query_params.get("page"), "page")
        except ValueError as exc:
            return bad_request(request, str(exc))

        def render() -> Response:
            from trialwatch.timeline import timeline_context

            histories, watched = app.watched_histories(page=number, page_size=TIMELINE_PAGE)
            pages = max(1, -(-watched // TIMELINE_PAGE))
            now = app.clock()
            return page(
                request,
                "web_timeline.html.j2",
                {
                    "title": "Timeline of watched trials",
                    "stamp": stamp(app.data_timestamp(), now),
                    "timeline": timeline_context(histories, today=now.astimezone(UTC).date()),
                    "trials": [(h.nct_id, h.name) for h in histories],
                    "prev_url": _page_url(request, number - 1) if number > 1 else None,
                    "next_url": _page_url(request, number + 1) if number < pages else None,
                },
            )

        return cached(request, render)

    def feed(request: Request) -> Response:
        def render() -> Response:
            from trialwatch.feeds import DEFAULT_TAG_AUTHORITY, render_atom_feed

            events, labels = app.recent_changes(FEED_ENTRIES)
            base = settings.public_url or str(request.base_url).rstrip("/")
            token = request.query_params.get("token")
            self_url = f"{base}/feed.atom" + (f"?{urlencode({'token': token})}" if token else "")
            body = render_atom_feed(
                events,
                generated_at=app.clock(),
                data_timestamp=app.data_timestamp(),
                labels=labels,
                self_url=self_url,
                authority=app.settings.web.feed_authority or DEFAULT_TAG_AUTHORITY,
            )
            return Response(body, media_type="application/atom+xml; charset=utf-8")

        return cached(request, render, feed=True)

    def export_json(request: Request) -> Response:
        def render() -> Response:
            from trialwatch.export import write_json_export

            out = io.StringIO()
            write_json_export(
                out,
                app.trial_states(),
                generated_at=app.clock(),
                data_timestamp=app.data_timestamp(),
            )
            return Response(out.getvalue(), media_type="application/json")

        return cached(request, render)

    def export_csv(request: Request) -> Response:
        def render() -> Response:
            from trialwatch.export import write_csv_export

            out = io.StringIO(newline="")
            write_csv_export(
                out,
                app.trial_states(),
                generated_at=app.clock(),
                data_timestamp=app.data_timestamp(),
            )
            return Response(
                out.getvalue(),
                media_type="text/csv; charset=utf-8",
                headers={"content-disposition": 'attachment; filename="trialwatch.csv"'},
            )

        return cached(request, render)

    def healthz(request: Request) -> Response:
        # For a proxy's or an orchestrator's health check: no token needed, no registry text.
        with reads:
            health = app.health()
        body = {
            "healthy": health.healthy,
            "problems": list(health.problems),
            "warnings": list(health.warnings),
            "last_success_at": health.last_success_at.isoformat()
            if health.last_success_at
            else None,
            "data_timestamp": health.data_timestamp,
            "consecutive_failures": health.consecutive_failures,
            "queued": health.queued,
            "dead": health.dead,
        }
        response = Response(
            json.dumps(body, indent=2) + "\n",
            200 if health.healthy else 503,
            media_type="application/json",
            headers={"cache-control": "no-store"},
        )
        return secure(response)

    def css(request: Request) -> Response:
        headers = {"etag": css_etag, "cache-control": "public, max-age=3600"}
        if request.headers.get("if-none-match") == css_etag:
            return secure(Response(status_code=304, headers=headers))
        return secure(Response(stylesheet, media_type="text/css; charset=utf-8", headers=headers))

    def login(request: Request) -> Response:
        code = request.query_params.get("code", "")
        if guard.token is None:
            return secure(RedirectResponse("/", 303))
        if not guard.redeem(code):
            return denied(request)
        response = RedirectResponse("/", 303)
        response.set_cookie(
            SESSION_COOKIE,
            _session_value(guard.token),
            max_age=90 * 24 * 3600,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https"
            or (settings.public_url or "").startswith("https:"),
        )
        response.headers["cache-control"] = "no-store"
        return secure(response)

    routes = [
        Route("/", index, methods=["GET", "HEAD"]),
        Route("/trial/{key:str}", trial, methods=["GET", "HEAD"]),
        Route("/changes", changes, methods=["GET", "HEAD"]),
        Route("/timeline", timeline, methods=["GET", "HEAD"]),
        Route("/feed.atom", feed, methods=["GET", "HEAD"]),
        Route("/export.json", export_json, methods=["GET", "HEAD"]),
        Route("/export.csv", export_csv, methods=["GET", "HEAD"]),
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/static/trialwatch.css", css, methods=["GET", "HEAD"]),
        Route("/login", login, methods=["GET"]),
    ]

    async def missing(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        title = "Not found" if status == 404 else "Not allowed"
        message = (
            "No page here." if status == 404 else "This page is read-only: it only answers GET."
        )
        return page(request, "web_error.html.j2", {"title": title, "message": message}, status)

    return Starlette(routes=routes, exception_handlers={404: missing, 405: missing})


def _not_modified(request: Request, etag: str, written: datetime) -> bool:
    match = request.headers.get("if-none-match")
    if match is not None:
        return etag in {t.strip() for t in match.split(",")} or match.strip() == "*"
    since = request.headers.get("if-modified-since")
    if since:
        try:
            moment = parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
        return written.replace(microsecond=0) <= moment
    return False


def _choice(value: str | None, choices: tuple[str, ...], name: str) -> str | None:
    if not value:
        return None
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r} (choose from {', '.join(choices)})")
    return value


def _positive(value: str | None, name: str) -> int:
    if not value:
        return 1
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name} must be a whole number from 1 up, not {value!r}")
    return int(value)


def _page_url(request: Request, number: int) -> str:
    params = dict(request.query_params)
    params["page"] = str(number)
    return f"{request.url.path}?{urlencode(params)}"


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True, slots=True)
class _RowView:
    # Attributes, not a dict: Jinja looks names up as attributes first, and a dict's miss
    # costs an exception per cell (a fifth of a 1,000-row page's time).
    nct_id: str
    label: str
    title: str | None
    status: str
    status_label: str
    sources: list[str]
    changed: str
    last_change: str
    severity: str
    moved: bool
    problem: str | None
    next: str


def _row_view(row: WatchRow) -> _RowView:
    next_date = row.next_date
    return _RowView(
        nct_id=row.nct_id,
        label=row.label,
        title=row.title,
        status=row.status or "",
        status_label=status_label(row.status) if row.status else "not synced yet",
        sources=sorted({s.split(":", 1)[0] for s in row.sources}),
        changed=_when(row.last_changed_at),
        last_change=one_line(row.last_change) if row.last_change else "",
        severity=row.severity.label if row.severity is not None else "",
        moved=row.moved_since_print,
        problem=row.problem,
        next=f"{next_date[0]}: {date_label(next_date[1].date, next_date[1].type)}"
        if next_date
        else "",
    )


def _trial_context(history: TrialHistory, request: Request, now: datetime) -> dict[str, Any]:
    """What ``web_trial.html.j2`` shows of one trial (raises ``ValueError`` for a bad
    ``from``/``to`` choice of versions)."""
    from trialwatch.diff import diff
    from trialwatch.timeline import time_scale, trial_svg

    today = now.astimezone(UTC).date()
    latest = history.latest
    facts: list[tuple[str, str]] = [("Trial", history.nct_id)]
    if latest is not None:
        facts += [
            ("Sponsor", latest.lead_sponsor or "not given"),
            ("Phase", phases_label(latest.phases) if latest.phases else "not given"),
        ]
        for name, attr in (
            ("Start", "start_date"),
            ("Primary completion", "primary_completion_date"),
            ("Completion", "completion_date"),
        ):
            value = getattr(latest, attr)
            facts.append((name, date_label(value.date, value.type) if value else "not given"))
        if latest.enrollment is not None and latest.enrollment.count is not None:
            kind = (latest.enrollment.type or "").lower()
            facts.append(("Enrollment", f"{latest.enrollment.count} {kind}".strip()))
        if latest.why_stopped:
            facts.append(("Why stopped", latest.why_stopped))
    entries = []
    for entry in history_entries(history):
        entries.append(
            {
                "day": _when(entry.at),
                "data": data_as_of(entry.data_timestamp) if entry.data_timestamp else "",
                "baseline": entry.baseline,
                "changes": [
                    {"severity": e.change.severity.label, "summary": one_line(e.change.summary)}
                    for e in entry.changes
                ],
            }
        )
    versions = list(history.versions)
    by_id = {v.version_id: v for v in versions}
    compare = None
    chosen = (request.query_params.get("from"), request.query_params.get("to"))
    if len(versions) >= 2:
        older_id = int(chosen[0]) if chosen[0] and chosen[0].isdigit() else versions[-2].version_id
        newer_id = int(chosen[1]) if chosen[1] and chosen[1].isdigit() else versions[-1].version_id
        if older_id not in by_id or newer_id not in by_id:
            raise ValueError("choose two versions this trial has (the lists on its page)")
        older, newer = by_id[older_id], by_id[newer_id]
        compare = {
            "from": older_id,
            "to": newer_id,
            "from_label": _when(older.first_seen_at),
            "to_label": _when(newer.first_seen_at),
            "changes": [
                {"severity": c.severity.label, "summary": one_line(c.summary)}
                for c in diff(older.snapshot, newer.snapshot)
            ],
        }
    return {
        "title": history.label or history.nct_id,
        "name": history.name,
        "nct_id": history.nct_id,
        "brief_title": latest.brief_title if latest else None,
        "status": latest.overall_status if latest else "",
        "status_label": status_label(latest.overall_status) if latest else "not synced yet",
        "facts": facts,
        "study_url": study_url(history.nct_id),
        "history_url": history_url(history.nct_id),
        "entries": entries,
        "versions": [
            {"id": v.version_id, "label": f"{_when(v.first_seen_at)} (#{v.version_id})"}
            for v in reversed(versions)
        ],
        "compare": compare,
        "svg": trial_svg(history, time_scale([history], today=today), today=today)
        if versions
        else None,
        "since": _when(history.first_recorded_at),
    }


def serve(
    app: App,
    settings: WebSettings,
    *,
    host: str,
    port: int,
) -> None:
    """Serve until interrupted (SIGINT/SIGTERM end uvicorn's loop). Raises
    :class:`TokenNeededError` before binding when the address needs a token."""
    check_bind(host, settings)
    server = make_server(app, settings, host=host, port=port)
    server.run()


def make_server(app: App, settings: WebSettings, *, host: str, port: int) -> Any:
    """A uvicorn server of the page, not started (the daemon runs it in a thread)."""
    import uvicorn

    config = uvicorn.Config(
        create_web_app(app, settings),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        server_header=False,
        # Behind a reverse proxy on this machine, the client's address and scheme come from
        # its X-Forwarded-* headers (uvicorn trusts them from 127.0.0.1 only).
        proxy_headers=True,
        lifespan="off",
    )
    return uvicorn.Server(config)
