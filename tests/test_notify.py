"""Delivery edges against a real SMTP server on loopback (FakeSmtp) and a fake HTTP transport."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from tests.fakes.smtp_server import FakeSmtp, free_port
from trialwatch.exceptions import PermanentDeliveryError, TemporaryDeliveryError
from trialwatch.messages import RenderedEmail, build_message, make_message_id
from trialwatch.notify import SmtpSettings, SmtpTransport, WebhookTransport

SENDER = "trialwatch@example.org"
PASSWORD = "s3cret-Passw0rd"
WEBHOOK_URL = "https://hooks.example.com/services/T000/B000/XXXXSECRETXXXX"


def settings(
    smtp: FakeSmtp | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    security: str = "none",
    username: str | None = None,
    password: str | None = None,
    timeout_s: float = 5.0,
) -> SmtpSettings:
    return SmtpSettings(
        host=host if host is not None else (smtp.host if smtp else "127.0.0.1"),
        port=port if port is not None else (smtp.port if smtp else 25),
        security=security,  # type: ignore[arg-type]
        username=username,
        password=password,
        timeout_s=timeout_s,
        helo_name="trialwatch.test",
    )


def message(*recipients: str) -> EmailMessage:
    rendered = RenderedEmail(
        subject="SEAL (NCT02606461): Active, not recruiting → Completed",
        text="Overall status: Active, not recruiting → Completed\n",
        html="<p>Overall status: Active, not recruiting → Completed</p>\n",
    )
    return build_message(
        rendered,
        sender=SENDER,
        recipients=recipients or ("alice@example.org",),
        message_id=make_message_id("run-1.alice", "example.org"),
        date=datetime(2026, 11, 21, 14, 5, tzinfo=UTC),
    )


# --- SMTP: success ----------------------------------------------------------------------------


def test_send_delivers_over_smtp_with_envelope_recipients(smtp: FakeSmtp) -> None:
    refused = SmtpTransport(settings(smtp)).send(message("alice@example.org", "bob@example.org"))

    assert refused == {}
    [received] = smtp.wait_for(1)
    assert received.mail_from == SENDER
    assert received.rcpt_tos == ("alice@example.org", "bob@example.org")
    assert received.message["Message-ID"] == "<trialwatch.run-1.alice@example.org>"
    assert received.message["Subject"] == "SEAL (NCT02606461): Active, not recruiting → Completed"
    assert received.message.get_content_type() == "multipart/alternative"


def test_explicit_envelope_overrides_headers(smtp: FakeSmtp) -> None:
    SmtpTransport(settings(smtp)).send(
        message("alice@example.org"), from_addr="bounces@example.org", to_addrs=["x@example.org"]
    )

    [received] = smtp.wait_for(1)
    assert (received.mail_from, received.rcpt_tos) == ("bounces@example.org", ("x@example.org",))


def test_partial_refusal_returns_refused_and_delivers_to_the_rest(smtp: FakeSmtp) -> None:
    smtp.refuse_recipient("ghost@example.org", "550 5.1.1 No such user")

    refused = SmtpTransport(settings(smtp)).send(message("alice@example.org", "ghost@example.org"))

    assert refused == {"ghost@example.org": (550, "5.1.1 No such user")}
    [received] = smtp.wait_for(1)
    assert received.rcpt_tos == ("alice@example.org",)


def test_auth_with_right_password_delivers() -> None:
    with FakeSmtp(username="bob", password=PASSWORD) as smtp:
        SmtpTransport(settings(smtp, username="bob", password=PASSWORD)).send(message())
        assert len(smtp.wait_for(1)) == 1


# --- SMTP: failures ---------------------------------------------------------------------------


def test_451_at_data_is_temporary_and_passes_after_recovery(smtp: FakeSmtp) -> None:
    smtp.respond_with("451 4.3.0 Try again later", times=1)
    transport = SmtpTransport(settings(smtp))

    with pytest.raises(TemporaryDeliveryError, match=r"message refused: 451 4\.3\.0 Try again"):
        transport.send(message())
    assert smtp.messages == []

    transport.send(message())
    assert len(smtp.wait_for(1)) == 1


def test_550_recipient_refused_is_permanent(smtp: FakeSmtp) -> None:
    smtp.respond_with("550 5.1.1 No such user", at="RCPT")

    with pytest.raises(PermanentDeliveryError, match=r"recipient refused: 550 5\.1\.1 No such"):
        SmtpTransport(settings(smtp)).send(message())


def test_all_recipients_4xx_is_temporary(smtp: FakeSmtp) -> None:
    smtp.respond_with("450 4.2.1 Mailbox busy", at="RCPT")

    with pytest.raises(TemporaryDeliveryError, match="recipients refused: 450"):
        SmtpTransport(settings(smtp)).send(message("a@example.org", "b@example.org"))


def test_550_at_data_is_permanent(smtp: FakeSmtp) -> None:
    smtp.respond_with("554 5.7.1 Message rejected as spam")

    with pytest.raises(PermanentDeliveryError, match="message refused: 554"):
        SmtpTransport(settings(smtp)).send(message())


def test_sender_refused_4xx_is_temporary(smtp: FakeSmtp) -> None:
    smtp.respond_with("421 4.7.0 Too many connections", at="MAIL")

    with pytest.raises(TemporaryDeliveryError):
        SmtpTransport(settings(smtp)).send(message())


def test_server_down_then_back_on_the_same_port(smtp: FakeSmtp) -> None:
    transport = SmtpTransport(settings(smtp))
    smtp.stop()

    with pytest.raises(TemporaryDeliveryError) as excinfo:
        transport.send(message())
    assert str(excinfo.value) == f"connection refused by 127.0.0.1:{smtp.port} " + (
        "(is the SMTP server running?)"
    )

    smtp.start()
    transport.send(message())
    assert len(smtp.wait_for(1)) == 1


def test_wrong_password_is_permanent_and_never_shows_the_password() -> None:
    wrong = "wrong-" + PASSWORD
    with FakeSmtp(username="bob", password=PASSWORD) as smtp:
        with pytest.raises(PermanentDeliveryError) as excinfo:
            SmtpTransport(settings(smtp, username="bob", password=wrong)).send(message())
        assert smtp.messages == []

    text = str(excinfo.value)
    assert text.startswith("authentication refused for user 'bob' (535")
    assert wrong not in text
    assert PASSWORD not in text
    assert wrong not in repr(settings(username="bob", password=wrong))


def test_auth_required_but_no_credentials_is_permanent() -> None:
    with (
        FakeSmtp(username="bob", password=PASSWORD) as smtp,
        pytest.raises(PermanentDeliveryError, match="530"),
    ):
        SmtpTransport(settings(smtp)).send(message())


def test_starttls_not_offered_is_permanent(smtp: FakeSmtp) -> None:
    with pytest.raises(PermanentDeliveryError, match="does not offer STARTTLS"):
        SmtpTransport(settings(smtp, security="starttls")).send(message())
    assert smtp.messages == []


def test_server_that_never_greets_times_out_as_temporary() -> None:
    # Accepts TCP connections (in the backlog) but never says a word.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        transport = SmtpTransport(settings(port=port, timeout_s=0.3))
        with pytest.raises(TemporaryDeliveryError, match=r"did not answer within 0\.3s"):
            transport.send(message())


def _invalid_tld_fails_fast() -> bool:
    """True when resolving a ``.invalid`` name fails locally, quickly (RFC 6761)."""
    outcome: list[bool] = []

    def resolve() -> None:
        try:
            socket.getaddrinfo("nonexistent.invalid", 25)
        except socket.gaierror:
            outcome.append(True)
        else:
            outcome.append(False)

    worker = threading.Thread(target=resolve, daemon=True)
    worker.start()
    worker.join(3.0)
    return outcome == [True]


def test_dns_failure_is_temporary_and_says_dns() -> None:
    if not _invalid_tld_fails_fast():
        pytest.skip("the resolver here does not fail fast for .invalid names")
    transport = SmtpTransport(settings(host="nonexistent.invalid", port=2525))

    with pytest.raises(TemporaryDeliveryError, match=r"cannot resolve SMTP host 'nonexistent\."):
        transport.send(message())
    with pytest.raises(TemporaryDeliveryError, match=r"\(DNS\)"):
        transport.send(message())


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="port"):
        settings(port=0)
    with pytest.raises(ValueError, match="security"):
        settings(security="tls")


# --- SMTP over TLS, with a certificate made for the test ---------------------------------------


# ``certificate`` (tests/conftest.py): a self-signed certificate for 127.0.0.1.


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


def _trusting(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


def test_implicit_tls_with_trusted_certificate_delivers(certificate: tuple[Path, Path]) -> None:
    with FakeSmtp(ssl_context=_server_context(certificate)) as smtp:
        transport = SmtpTransport(
            settings(smtp, security="ssl"), ssl_context=_trusting(certificate)
        )
        transport.send(message())
        assert len(smtp.wait_for(1)) == 1


def test_starttls_with_trusted_certificate_delivers(certificate: tuple[Path, Path]) -> None:
    with FakeSmtp(starttls_context=_server_context(certificate)) as smtp:
        transport = SmtpTransport(
            settings(smtp, security="starttls"), ssl_context=_trusting(certificate)
        )
        transport.send(message())
        assert len(smtp.wait_for(1)) == 1


def test_untrusted_certificate_is_permanent(certificate: tuple[Path, Path]) -> None:
    with FakeSmtp(ssl_context=_server_context(certificate)) as smtp:
        # The default context: the system's CAs, which do not know the test certificate.
        with pytest.raises(
            PermanentDeliveryError, match=r"TLS certificate verification failed for 127\.0\.0\.1"
        ):
            SmtpTransport(settings(smtp, security="ssl")).send(message())
        assert smtp.messages == []


# --- webhooks ---------------------------------------------------------------------------------


def webhook(handler: httpx.MockTransport) -> WebhookTransport:
    return WebhookTransport(WEBHOOK_URL, timeout_s=5.0, transport=handler)


def test_webhook_posts_json_and_accepts_2xx() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="ok")

    webhook(httpx.MockTransport(answer)).post({"text": "hello", "trialwatch": {"trials": []}})

    [request] = seen
    assert request.method == "POST"
    assert str(request.url) == WEBHOOK_URL
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {"text": "hello", "trialwatch": {"trials": []}}


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, TemporaryDeliveryError),
        (503, TemporaryDeliveryError),
        (429, TemporaryDeliveryError),
        (404, PermanentDeliveryError),
        (400, PermanentDeliveryError),
        (301, PermanentDeliveryError),
    ],
)
def test_webhook_status_classification(status: int, error: type[Exception]) -> None:
    # Slack echoes nothing secret, but a careless server might: the body repeats the URL.
    transport = webhook(httpx.MockTransport(lambda _: httpx.Response(status, text=WEBHOOK_URL)))

    with pytest.raises(error) as excinfo:
        transport.post({"text": "x"})

    text = str(excinfo.value)
    assert text.startswith(f"webhook https://hooks.example.com answered {status}")
    assert "/services" not in text
    assert "SECRET" not in text


def test_webhook_connection_error_and_timeout_are_temporary_without_the_path() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect to {request.url}", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    for handler in (refuse, slow):
        with pytest.raises(TemporaryDeliveryError) as excinfo:
            webhook(httpx.MockTransport(handler)).post({"text": "x"})
        text = str(excinfo.value)
        assert "https://hooks.example.com" in text
        assert "SECRET" not in text
        assert excinfo.value.__cause__ is None
        assert excinfo.value.__suppress_context__


def test_webhook_repr_and_bad_url_hide_the_secret() -> None:
    transport = webhook(httpx.MockTransport(lambda _: httpx.Response(200)))
    assert repr(transport) == "WebhookTransport(https://hooks.example.com)"
    with pytest.raises(ValueError, match="http") as excinfo:
        WebhookTransport("ftp://hooks.example.com/SECRET", timeout_s=1.0)
    assert "SECRET" not in str(excinfo.value)


def test_webhook_against_a_closed_port_is_temporary() -> None:
    port = free_port()
    transport = WebhookTransport(f"http://127.0.0.1:{port}/hook/SECRET", timeout_s=2.0)
    with pytest.raises(TemporaryDeliveryError, match=rf"http://127\.0\.0\.1:{port}") as excinfo:
        transport.post({"text": "x"})
    assert "SECRET" not in str(excinfo.value)
