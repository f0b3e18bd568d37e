"""A real SMTP server on loopback for tests, built on aiosmtpd. Not a mock of smtplib.

``FakeSmtp`` listens on ``127.0.0.1`` on a port chosen once, so it can be stopped and started
again on the same port ("SMTP down, then back"). It records every accepted message, can be told
to answer MAIL/RCPT/DATA with an error for a while, can require a username and password (AUTH
PLAIN/LOGIN over plain TCP, which is fine on loopback) and can speak implicit TLS or STARTTLS
with a certificate the test provides. :meth:`FakeSmtp.before_reply` runs a test's callback
before the server answers MAIL, RCPT or DATA (after the message's final "."), e.g. to kill the
sender at that instant.

    with FakeSmtp() as smtp:
        ...send to smtp.host, smtp.port...
        [received] = smtp.wait_for(1)
        assert received.rcpt_tos == ("alice@example.org",)
"""

from __future__ import annotations

import email.policy
import socket
import ssl
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.parser import BytesParser
from types import TracebackType
from typing import Any, Literal, NamedTuple, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

Stage = Literal["MAIL", "RCPT", "DATA"]

ACCEPTED = "250 2.0.0 OK: queued"


class ReceivedMessage(NamedTuple):
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    raw: bytes


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the usual bind-to-0 trick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class _Reply:
    def __init__(self, reply: str, times: int | None) -> None:
        self.reply = reply
        self.remaining = times


class FakeSmtp:
    """A real SMTP server on ``127.0.0.1`` for tests; see the module docstring.

    ``username``/``password`` turn on AUTH: MAIL is refused with 530 until the client logs in,
    and a wrong password gets aiosmtpd's ``535 5.7.8``. ``ssl_context`` (a server context)
    makes it speak TLS from the first byte, ``starttls_context`` offers STARTTLS.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        starttls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port if port is not None else free_port(self.host)
        self._credentials = (
            (username.encode(), password.encode())
            if username is not None and password is not None
            else None
        )
        self._ssl_context = ssl_context
        self._starttls_context = starttls_context
        self._lock = threading.Condition()
        self._messages: list[ReceivedMessage] = []
        self._replies: dict[Stage, _Reply] = {}
        self._refused_recipients: dict[str, str] = {}
        self._before_reply: dict[Stage, Callable[[], None]] = {}
        self._controller: Controller | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Listen (again) on :attr:`port`. Received messages and reply settings are kept."""
        if self._controller is not None:
            raise RuntimeError("FakeSmtp is already running")
        kwargs: dict[str, Any] = {}
        if self._credentials is not None:
            # Not auth_required=True: aiosmtpd warns when that is combined with plain TCP, and
            # warnings are errors here. handle_MAIL enforces it instead.
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        if self._starttls_context is not None:
            kwargs["tls_context"] = self._starttls_context
        controller = Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            ssl_context=self._ssl_context,
            # A fixed name: the default asks the resolver for this machine's FQDN.
            server_hostname="fake-smtp.test",
            **kwargs,
        )
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        """Stop listening: connections are refused until :meth:`start`."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- what it received ---------------------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A copy of the messages accepted so far, oldest first."""
        with self._lock:
            return list(self._messages)

    def wait_for(self, n: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Wait until at least ``n`` messages arrived and return them; ``TimeoutError`` if not."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"FakeSmtp got {len(self._messages)} messages, expected {n}")
                self._lock.wait(left)
            return list(self._messages)

    # --- controlling its answers --------------------------------------------------------------

    def respond_with(self, reply: str, *, times: int | None = None, at: Stage = "DATA") -> None:
        """Answer ``at`` (MAIL, RCPT or DATA) with ``reply``, e.g. ``"451 4.3.0 Try again later"``.

        For the next ``times`` such commands (RCPT counts once per recipient), or until
        :meth:`recover` when ``times`` is ``None``.
        """
        code = reply[:3]
        if not (code.isdigit() and code[0] in "45" and reply[3:4] in ("", " ")):
            raise ValueError(f"{reply!r} is not a 4xx/5xx SMTP reply")
        with self._lock:
            self._replies[at] = _Reply(reply, times)

    def refuse_recipient(self, address: str, reply: str = "550 5.1.1 No such user") -> None:
        """Always refuse RCPT for ``address`` (until :meth:`recover`), accepting the others."""
        with self._lock:
            self._refused_recipients[address.lower()] = reply

    def recover(self) -> None:
        """Forget every error reply: accept everything again."""
        with self._lock:
            self._replies.clear()
            self._refused_recipients.clear()

    def before_reply(self, callback: Callable[[], None] | None, *, at: Stage = "DATA") -> None:
        """Call ``callback`` before answering ``at``; ``None`` removes it.

        At DATA it runs once the message's final "." has been read and the message recorded
        (the server has it), before the 250 goes out: a test that kills the sender there opens
        the one window in which a sent message is not known to be sent. At MAIL it runs before
        the sender has sent any of the message (RCPT: once per accepted recipient). It runs on the
        server's thread; the reply waits.
        """
        with self._lock:
            if callback is None:
                self._before_reply.pop(at, None)
            else:
                self._before_reply[at] = callback

    # --- called from the server's thread ------------------------------------------------------

    def _reply_for(self, stage: Stage, address: str | None = None) -> str | None:
        with self._lock:
            if address is not None and address.lower() in self._refused_recipients:
                return self._refused_recipients[address.lower()]
            pending = self._replies.get(stage)
            if pending is None:
                return None
            if pending.remaining is not None:
                pending.remaining -= 1
                if pending.remaining <= 0:
                    del self._replies[stage]
            return pending.reply

    def _needs_auth(self, session: Session) -> bool:
        return self._credentials is not None and not session.authenticated

    def _record(self, envelope: Envelope) -> None:
        raw = envelope.original_content or b""
        if isinstance(raw, str):  # only with decode_data=True, which is not used here
            raw = raw.encode("utf-8")
        parsed = BytesParser(policy=email.policy.default).parsebytes(raw)
        assert isinstance(parsed, EmailMessage)
        received = ReceivedMessage(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            message=parsed,
            raw=raw,
        )
        with self._lock:
            self._messages.append(received)
            self._lock.notify_all()

    def _run_before_reply(self, stage: Stage) -> None:
        with self._lock:
            callback = self._before_reply.get(stage)
        if callback is not None:
            callback()

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and self._credentials is not None
            and (auth_data.login, auth_data.password) == self._credentials
        )
        # handled=False: let aiosmtpd send its standard 535 on failure.
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


class _Handler:
    """aiosmtpd hooks; they run on the server's event-loop thread."""

    def __init__(self, fake: FakeSmtp) -> None:
        self._fake = fake

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self._fake._needs_auth(session):
            return "530 5.7.0 Authentication required"
        reply = self._fake._reply_for("MAIL")
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        self._fake._run_before_reply("MAIL")
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = self._fake._reply_for("RCPT", address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        self._fake._run_before_reply("RCPT")
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = self._fake._reply_for("DATA")
        if reply is not None:
            return reply
        self._fake._record(envelope)
        self._fake._run_before_reply("DATA")
        return ACCEPTED
