"""Delivery edges: SMTP and webhooks. The only module that talks to mail servers or webhooks.

Each transport delivers one thing and reports failure as exactly one of two exceptions, so the
outbox can decide without knowing SMTP or HTTP:

* :class:`~trialwatch.exceptions.TemporaryDeliveryError` -- may pass later: retry with backoff
  (SMTP 4xx, timeouts, refused or dropped connections, DNS failures, HTTP 429/5xx);
* :class:`~trialwatch.exceptions.PermanentDeliveryError` -- will fail the same way until someone
  changes something: dead-letter it (SMTP 5xx, authentication refused, no STARTTLS, a TLS
  certificate that does not verify, HTTP 4xx).

Error messages name what failed in plain words and the host involved; they never contain the
SMTP password or a webhook URL's path (incoming-webhook URLs carry their secret in the path).
Nothing here retries, logs or sleeps: that is the caller's job.
"""

from __future__ import annotations

import contextlib
import smtplib
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Literal

import httpx

from trialwatch.exceptions import DeliveryError, PermanentDeliveryError, TemporaryDeliveryError
from trialwatch.redact import Scrubber

SmtpSecurity = Literal["none", "starttls", "ssl"]

_SNIPPET_CHARS = 200  # of a server's error text, enough to diagnose, short enough for a log line


@dataclass(frozen=True)
class SmtpSettings:
    """How to reach the SMTP server. The password is left out of ``repr`` so it cannot be logged.

    ``security``: ``"ssl"`` is TLS from the first byte (port 465), ``"starttls"`` upgrades a plain
    connection and refuses to go on if the server does not offer it (port 587), ``"none"`` sends
    in clear text (only for a relay on localhost). ``helo_name`` is the name given in EHLO;
    ``None`` lets :mod:`smtplib` use this machine's fully qualified name.
    """

    host: str
    port: int
    security: SmtpSecurity
    username: str | None
    password: str | None = field(repr=False)
    timeout_s: float
    helo_name: str | None = None

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("SMTP host is empty")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"SMTP port {self.port} is out of range 1-65535")
        if self.security not in ("none", "starttls", "ssl"):
            raise ValueError(f"unknown SMTP security {self.security!r} (none, starttls, ssl)")
        if self.timeout_s <= 0:
            raise ValueError("SMTP timeout must be positive")


RefusedRecipients = dict[str, tuple[int, str]]
"""Recipient address -> (SMTP code, server text), for recipients the server refused."""


class SmtpTransport:
    """Sends email through one SMTP server, one connection per :meth:`send`.

    A connection per message keeps failure handling simple (no half-broken session to reuse)
    and is cheap at trialwatch's volume: one message per recipient per sync run.
    Certificates are verified for ``"ssl"`` and ``"starttls"`` with
    ``ssl.create_default_context()``, unless another ``ssl_context`` is passed (tests do, to
    trust their own certificate authority).
    """

    def __init__(self, settings: SmtpSettings, *, ssl_context: ssl.SSLContext | None = None):
        self.settings = settings
        self._ssl_context = ssl_context if ssl_context is not None else ssl.create_default_context()

    def __repr__(self) -> str:
        s = self.settings
        return f"SmtpTransport({s.host}:{s.port}, security={s.security!r})"

    def send(
        self,
        message: EmailMessage,
        *,
        from_addr: str | None = None,
        to_addrs: list[str] | None = None,
    ) -> RefusedRecipients:
        """Connect, (upgrade to TLS,) (log in,) send ``message``, and say goodbye.

        The envelope sender and recipients default to the message's From and To/Cc/Bcc headers
        (Bcc is not transmitted). Returns the recipients the server refused while accepting the
        others: an empty dict means everyone got it. The message then counts as sent for the
        accepted ones, so do not resend it; reporting the refused ones is the caller's job.
        If every recipient is refused, raises :class:`PermanentDeliveryError`, or
        :class:`TemporaryDeliveryError` when any refusal was a 4xx (a retry may reach them).
        Other failures raise as described in the module docstring. Once the server has accepted
        the message, a failure while saying goodbye is ignored: raising would cause a duplicate.
        """
        s = self.settings
        client: smtplib.SMTP
        if s.security == "ssl":
            client = smtplib.SMTP_SSL(
                local_hostname=s.helo_name, timeout=s.timeout_s, context=self._ssl_context
            )
        else:
            client = smtplib.SMTP(local_hostname=s.helo_name, timeout=s.timeout_s)
        stage = "connecting"
        try:
            try:
                # smtplib takes the TLS server name (for certificate checks, with "ssl" and
                # "starttls") from `_host`, which only its constructor sets; the constructor
                # also connects, outside this error handling, so set it here.
                client._host = s.host  # type: ignore[attr-defined]
                client.connect(s.host, s.port)
                stage = "EHLO"
                client.ehlo_or_helo_if_needed()
                if s.security == "starttls":
                    stage = "starting TLS"
                    if not client.has_extn("starttls"):
                        raise PermanentDeliveryError(
                            f"SMTP server {s.host}:{s.port} does not offer STARTTLS, and "
                            "security is 'starttls' (refusing to send in clear text)"
                        )
                    client.starttls(context=self._ssl_context)
                    client.ehlo()
                if s.username is not None:
                    stage = "authenticating"
                    client.login(s.username, s.password or "")
                stage = "sending"
                refused = client.send_message(message, from_addr=from_addr, to_addrs=to_addrs)
            except DeliveryError:
                raise
            except (smtplib.SMTPException, OSError) as exc:
                raise self._classify(exc, stage) from exc
            # The message is already accepted: a failing goodbye must not look like a failure.
            with contextlib.suppress(smtplib.SMTPException, OSError):
                client.quit()
        finally:
            client.close()
        return {addr: (code, _text(reply)) for addr, (code, reply) in refused.items()}

    def _classify(self, exc: BaseException, stage: str) -> DeliveryError:
        """The delivery error, in plain words, for an exception raised while at ``stage``."""
        s = self.settings
        where = f"{s.host}:{s.port}"
        message: str
        permanent: bool
        # Order matters: gaierror, SSL errors and ConnectionRefusedError are all OSErrors, and
        # SMTPAuthenticationError and friends are SMTPResponseExceptions.
        if isinstance(exc, socket.gaierror):
            permanent = False
            message = f"cannot resolve SMTP host {s.host!r} (DNS): {exc.strerror or exc}"
        elif isinstance(exc, ssl.SSLCertVerificationError):
            permanent = True
            message = f"TLS certificate verification failed for {s.host}: {exc.verify_message}"
        elif isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
            permanent = False
            message = f"SMTP server {where} closed the TLS connection ({stage})"
        elif isinstance(exc, ssl.SSLError):
            # A handshake that fails outright (wrong protocol on the port, no shared cipher)
            # fails the same way on every retry: usually `security` does not fit the port.
            permanent = True
            message = (
                f"TLS with {where} failed ({stage}): {exc.reason or exc}; check `security` "
                "(port 465 usually means 'ssl', port 587 'starttls')"
            )
        elif isinstance(exc, ConnectionRefusedError):
            permanent = False
            message = f"connection refused by {where} (is the SMTP server running?)"
        elif _caused_by_timeout(exc):
            permanent = False
            message = f"SMTP server {where} did not answer within {s.timeout_s:g}s ({stage})"
        elif isinstance(exc, smtplib.SMTPServerDisconnected):
            permanent = False
            message = f"SMTP server {where} closed the connection unexpectedly ({stage})"
        elif isinstance(exc, smtplib.SMTPRecipientsRefused):
            codes = [code for code, _ in exc.recipients.values()]
            # Any 4xx among the refusals: a retry may reach those recipients.
            permanent = not any(400 <= code < 500 for code in codes)
            details = "; ".join(
                f"{code} {_text(reply)} ({addr})" for addr, (code, reply) in exc.recipients.items()
            )
            noun = "recipient" if len(exc.recipients) == 1 else "recipients"
            message = f"{noun} refused: {details}"
        elif isinstance(exc, smtplib.SMTPAuthenticationError):
            permanent = not _is_4xx(exc.smtp_code)
            message = (
                f"authentication refused for user {s.username!r} "
                f"({exc.smtp_code} {_text(exc.smtp_error)})"
            )
        elif isinstance(exc, smtplib.SMTPSenderRefused):
            permanent = not _is_4xx(exc.smtp_code)
            message = (
                f"sender address {exc.sender!r} refused: {exc.smtp_code} {_text(exc.smtp_error)}"
            )
        elif isinstance(exc, smtplib.SMTPDataError):
            permanent = not _is_4xx(exc.smtp_code)
            message = f"message refused: {exc.smtp_code} {_text(exc.smtp_error)}"
        elif isinstance(exc, smtplib.SMTPConnectError):
            permanent = not _is_4xx(exc.smtp_code)
            message = (
                f"SMTP server {where} refused the session: {exc.smtp_code} {_text(exc.smtp_error)}"
            )
        elif isinstance(exc, smtplib.SMTPResponseException):
            # Codes outside 4xx/5xx (smtplib uses -1 for a garbled reply) are taken as passing.
            permanent = exc.smtp_code >= 500
            message = (
                f"SMTP server {where} answered {exc.smtp_code} {_text(exc.smtp_error)} ({stage})"
            )
        elif isinstance(exc, smtplib.SMTPNotSupportedError):
            permanent = True
            if stage == "authenticating":
                message = (
                    f"SMTP server {where} does not offer authentication, but a username is set"
                )
            else:
                message = f"SMTP server {where} does not support a needed feature: {exc}"
        elif isinstance(exc, smtplib.SMTPException):
            # smtplib's remaining errors ("no suitable authentication method", ...) are about
            # what the server supports, which a retry does not change.
            permanent = True
            message = f"SMTP error with {where} ({stage}): {exc}"
        else:
            permanent = False
            message = f"network error talking to SMTP server {where} ({stage}): {exc}"
        message = self._scrub(message)
        return PermanentDeliveryError(message) if permanent else TemporaryDeliveryError(message)

    def _scrub(self, text: str) -> str:
        """Belt and braces: a server echoing the password back must not put it in our logs."""
        password = self.settings.password
        return text.replace(password, "***") if password else text


def _caused_by_timeout(exc: BaseException) -> bool:
    """smtplib reports a read timeout as SMTPServerDisconnected; the timeout is its context."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _is_4xx(code: int) -> bool:
    return 400 <= code < 500


def _text(reply: bytes | str) -> str:
    """A server reply as one short line of text."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    text = " ".join(text.split())
    return text if len(text) <= _SNIPPET_CHARS else text[: _SNIPPET_CHARS - 1] + "…"


class WebhookTransport:
    """Posts JSON to one webhook URL (Slack, Teams or anything that takes a JSON POST).

    The URL is a secret (Slack and Teams put the token in its path): it appears nowhere but in
    the request itself; ``repr`` and error messages show only scheme and host, and what the
    receiver answers passes through :class:`~trialwatch.redact.Scrubber` (an echo of the path,
    a query value or the ``Authorization`` header the URL's userinfo made). Redirects are not
    followed (a webhook that moved answers 3xx, which is reported as permanent). Holds no
    connection between posts: each :meth:`post` opens and closes its own, so there is nothing to
    close. A ``transport`` passed in (tests use ``httpx.MockTransport``) belongs to the caller and
    is not closed.
    """

    def __init__(
        self, url: str, *, timeout_s: float, transport: httpx.BaseTransport | None = None
    ) -> None:
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            raise ValueError("webhook URL is not a valid URL") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError("webhook URL must be an http:// or https:// URL with a host")
        self._url = url
        self._timeout_s = timeout_s
        self._transport = transport
        port = f":{parsed.port}" if parsed.port is not None else ""
        self.display_url = f"{parsed.scheme}://{parsed.host}{port}"
        self._scrub = Scrubber([url])

    def __repr__(self) -> str:
        return f"WebhookTransport({self.display_url})"

    def post(self, payload: Mapping[str, Any]) -> None:
        """POST ``payload`` as JSON. Returns on any 2xx; raises a delivery error otherwise.

        Timeouts, connection errors, 408, 429 and 5xx are temporary; other answers (4xx, and
        3xx since redirects are not followed) are permanent. Does not retry.
        """
        try:
            response = self._post(payload)
        except httpx.TimeoutException:
            # `from None`: httpx exceptions carry the request, whose URL holds the secret.
            raise TemporaryDeliveryError(
                f"webhook {self.display_url} did not answer in time"
            ) from None
        except httpx.TransportError as exc:
            detail = _text(self._scrub(str(exc) or type(exc).__name__))
            raise TemporaryDeliveryError(
                f"cannot reach webhook {self.display_url}: {detail}"
            ) from None
        status = response.status_code
        if 200 <= status < 300:
            return
        # Scrubbed whole, then cut: a cut first could leave half a token that no longer matches.
        body = _text(self._scrub(response.text)) if response.text else ""
        message = f"webhook {self.display_url} answered {status} {response.reason_phrase}"
        if body:
            message += f": {body}"
        if status in (408, 429) or status >= 500:
            raise TemporaryDeliveryError(message)
        raise PermanentDeliveryError(message)

    def _post(self, payload: Mapping[str, Any]) -> httpx.Response:
        options: dict[str, Any] = {
            "timeout": self._timeout_s,
            "follow_redirects": False,
            "headers": {"User-Agent": "trialwatch"},
        }
        if self._transport is not None:
            # Closing this client would close the caller's transport; it holds nothing else.
            return httpx.Client(transport=self._transport, **options).post(self._url, json=payload)
        with httpx.Client(**options) as client:
            return client.post(self._url, json=payload)
