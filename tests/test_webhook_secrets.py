"""A webhook receiver that echoes what it was sent: the secret pieces of its URL never reach the
logs, ``status`` or the database. A real loopback HTTP receiver; the real command."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.e2e import SHIPPED_CONFIG, sqlite_dump, trialwatch, user_env
from tests.fakes.ctgov_server import FakeCtGov
from tests.records import complete
from trialwatch.redact import Scrubber, url_secrets

SEAL = "NCT02606461"
# Every piece a receiver could echo: path segments, a query value, user and password.
PIECES = ("T0SEG", "B0SEG", "PATHTOKEN", "QUERYTOKEN", "hookuser", "hookpass")


class _Echo(BaseHTTPRequestHandler):
    """Answers every POST 404 with the path and the Authorization header, as Express's
    default handler and a debugging endpoint do."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = (
            f"Cannot POST {self.path}\n"
            f"Authorization: {self.headers.get('Authorization')}\n"
            f"<pre>{self.path.replace('/', '&#x2F;')}</pre>"
        ).encode()
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield (
            f"http://hookuser:hookpass@{host}:{port}/services/T0SEG/B0SEG/PATHTOKEN"
            "?token=QUERYTOKEN&v=2"
        )
    finally:
        server.shutdown()
        server.server_close()


def _leaks(text: str) -> list[str]:
    basic = base64.b64encode(b"hookuser:hookpass").decode()
    return [p for p in (*PIECES, basic) if p in text]


def test_the_scrubber_hides_every_piece_raw_decoded_or_as_basic_credentials() -> None:
    url = "https://u%40x:p%2Fw@hooks.example/services/T0/B0/s%20cret?token=a%2Bb&x=1#frag"
    scrub = Scrubber([url])
    basic = base64.b64encode(b"u@x:p/w").decode()
    echoed = (
        f"Cannot POST /services/T0/B0/s cret?token=a+b; token a%2Bb; user u@x; pw p/w; "
        f"Authorization: Basic {basic}; hooks.example stays"
    )
    shown = scrub(echoed)
    for piece in ("T0", "B0", "s cret", "s%20cret", "a+b", "a%2Bb", "u@x", "p/w", basic):
        assert piece not in shown, piece
    assert "hooks.example stays" in shown
    assert "hooks.example" not in url_secrets(url)
    assert Scrubber(())("unchanged") == "unchanged"


def test_a_token_echoed_cut_short_is_hidden_and_a_path_word_is_not_cut() -> None:
    """A receiver answering 'token prefix SECRETTOK' gave 9 of the token's 14 characters to
    the logs, status and the database (the whole pieces were hidden, not a start of one)."""
    scrub = Scrubber(["http://127.0.0.1:8796/services/T000/B000/SECRETTOKEN123"])
    shown = scrub("Cannot POST …; token prefix SECRETTOK; ends TOKEN123; short SECRETT")
    assert "SECRETTOK" not in shown and "TOKEN123" not in shown
    assert "SECRETT" in shown  # under eight characters: too short to hide, or to be the token
    # The path's words are pieces too, hidden whole, never by their starts.
    assert scrub("the service answered") == "the service answered"
    assert "…" in scrub("/services/")
    # Nor a mixed-case word of a URL's path (Teams' IncomingWebhook): no digit, no token.
    teams = Scrubber(
        ["https://x.webhook.office.com/webhookb2/a1b2/IncomingWebhook/9f8e7d6c5b4a3/x"]
    )
    line = "Webhook delivery to Teams failed: IncomingWebhook rejected the card"
    assert teams(line) == line.replace("IncomingWebhook", "…")
    assert teams("token 9f8e7d6c rejected") == "token … rejected"  # a start of the token


@pytest.mark.e2e
def test_an_echoing_receiver_puts_no_secret_in_logs_status_or_database(
    api: FakeCtGov, tmp_path: Path, echo: str
) -> None:
    config = tmp_path / "trialwatch.toml"
    config.write_text(
        SHIPPED_CONFIG.read_text()
        + f'\n[[subscriptions]]\nname = "team"\nwebhook_url = "{echo}"\n'
        + 'min_severity = "minor"\n'
    )
    db = tmp_path / "data" / "trialwatch.db"
    env = user_env(
        api.base_url, db, TRIALWATCH_CONFIG=str(config), TRIALWATCH_LOGGING__LEVEL="debug"
    )
    first = trialwatch("sync", env=env, cwd=tmp_path)
    assert first.code == 0, first.err
    api.update_study(SEAL, complete)
    second = trialwatch("sync", env=env, cwd=tmp_path)
    assert second.code == 1, second.err  # a dead letter: the receiver was reached and refused
    assert "answered 404 Not Found: Cannot POST" in second.err
    status = trialwatch("status", env=env, cwd=tmp_path)
    assert "dead #" in status.out and "Cannot POST" in status.out
    flushed = trialwatch("notify", "retry", env=env, cwd=tmp_path)
    assert flushed.code in (0, 1), flushed.err
    shown = "\n".join(r.out + r.err for r in (first, second, status, flushed))
    assert _leaks(shown) == []
    assert _leaks(sqlite_dump(db)) == []
