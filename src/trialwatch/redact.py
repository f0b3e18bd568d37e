"""The one scrubber of secret URLs: what a webhook URL holds never reaches text stored or shown.

Slack, Teams and most webhook services put the token in the URL's path; others in a query value
(``?token=``) or its userinfo (``https://user:key@host``, sent as an ``Authorization: Basic``
header). A receiver may echo any of them back (``Cannot POST /services/T0/B0/SECRET``, a
debugging endpoint printing the headers), alone, percent-decoded, or cut short. So the scrubber
hides every piece of the URL that could be a secret, each on its own: the whole URL, every path
segment, every query value, the user name, the password and the Basic credential they make —
raw and percent-decoded, longest first. It keeps scheme, host and port (what ``display_url``
shows), and pieces of one character, which hide nothing and would mangle the text around them.
A piece that looks like a token (see :func:`_token_like`) is hidden cut short too: any start or
end of it of :data:`CUT_SHORT_MIN` characters or more (``token prefix SECRETTOK``). Words
such as ``services`` are not cut: their starts are ordinary words in other text.

Used by the webhook transport on what a receiver answers, by the outbox on every delivery error
it records or logs, by the log renderer on every event, by ``status`` on what it shows (rows a
release before this one recorded), and by ``db upgrade`` on the backup of a 0.1.0 database.
Pure: no I/O.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote, urlsplit

MASK = "…"
CUT_SHORT_MIN = 8
"""The shortest start or end of a token-like piece that is hidden on its own."""


def url_secrets(url: str) -> tuple[str, ...]:
    """The pieces of ``url`` that may be secret (see the module's docstring), longest first."""
    pieces = {url}
    try:
        parts = urlsplit(url)
        username, password = parts.username, parts.password
    except ValueError:  # not even a URL: hide the whole text and every /-separated part
        pieces.update(url.split("/"))
        return _ordered(pieces)
    pieces.update(parts.path.split("/"))
    pieces.add(parts.path)
    if parts.query:
        pieces.add(parts.query)
        pieces.update(v for _, v in parse_qsl(parts.query, keep_blank_values=True))
        pieces.update(p.partition("=")[2] for p in parts.query.split("&"))
    if parts.fragment:
        pieces.add(parts.fragment)
    if username is not None:
        pieces.add(username)
        user, pw = unquote(username), unquote(password or "")
        pieces.add(base64.b64encode(f"{user}:{pw}".encode()).decode("ascii"))
    if password is not None:
        pieces.add(password)
    pieces.update({unquote(p) for p in pieces} | {unquote(p.replace("+", " ")) for p in pieces})
    return _ordered(pieces)


def _ordered(pieces: set[str]) -> tuple[str, ...]:
    return tuple(sorted((p for p in pieces if len(p) > 1), key=lambda p: (-len(p), p)))


class Scrubber:
    """Hides every secret piece of the given URLs in a text; ``Scrubber(())`` changes nothing."""

    def __init__(self, urls: Iterable[str]) -> None:
        pieces: set[str] = set()
        for url in urls:
            pieces.update(url_secrets(url))
        self._pieces = _ordered(pieces)
        # Each token's starts and ends, longest first: a receiver may echo a token cut short.
        cuts = {
            cut
            for piece in self._pieces
            if _token_like(piece)
            for size in range(CUT_SHORT_MIN, len(piece))
            for cut in (piece[:size], piece[-size:])
        }
        self._cuts = _ordered(cuts - set(self._pieces))

    def __bool__(self) -> bool:
        return bool(self._pieces)

    def __call__(self, text: str) -> str:
        for piece in self._pieces:
            if piece in text:
                text = text.replace(piece, MASK)
        for cut in self._cuts:
            if cut in text:
                text = text.replace(cut, MASK)
        return text


def _token_like(piece: str) -> bool:
    """A piece of 12 characters or more, with no separator, holding digits and letters: what
    webhook services put in their URLs (``B0123ABCD/XXXXXXXXXXXXXXXXXXXXXXXX``), and not
    what a path's words are (``services``, ``IncomingWebhook``: their starts are words)."""
    return (
        len(piece) >= 12
        and not any(c in piece for c in "/?&=#:@ ")
        and any(c.isdigit() for c in piece)
        and any(c.isalpha() for c in piece)
    )


NO_SECRETS = Scrubber(())
