"""The one template environment of every HTML page and message trialwatch renders.

The report page, the timeline page and the emails (HTML and plain text) all render through
:func:`environment`; a new page adds its template to ``templates/`` and renders through it too.
jinja2 is imported on first use, so commands that print plain text do not pay for it.
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING

from trialwatch.vocabulary import plural

if TYPE_CHECKING:
    import jinja2
    from markupsafe import Markup

__all__ = ["environment", "unbroken_dates"]


@cache
def environment() -> jinja2.Environment:
    """The template environment: built on first use, then shared (it caches templates)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("trialwatch", "templates"),
        # Only the plain-text templates are unescaped; anything else, including a future
        # template with an unexpected name, is escaped.
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.j2", "html"),
            disabled_extensions=("txt.j2",),
            default_for_string=True,
            default=True,
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["plural"] = plural
    env.filters["unbroken_dates"] = unbroken_dates
    return env


_DATE = re.compile(
    r"\d{4}-\d{2}(?:-\d{2})?(?:[T ]\d{2}:\d{2}(?::\d{2})?)?(?: UTC)?"
    r"|(?:January|February|March|April|May|June|July|August|September|October|November"
    r"|December) (?:\d{1,2}, )?\d{4}"
)


def unbroken_dates(text: str) -> Markup:
    """``text`` escaped for HTML, each date in it (``2027-03-01``, ``2026-11-20 14:00 UTC``,
    ``March 2027``) kept on one line: a narrow screen breaks long text between words, and with
    ``overflow-wrap: anywhere`` inside a token too, which split a date across two lines."""
    from markupsafe import Markup, escape

    out: list[str] = []
    last = 0
    for match in _DATE.finditer(text):
        out.append(escape(text[last : match.start()]))
        out.append(f'<span style="white-space:nowrap;">{escape(match.group(0))}</span>')
        last = match.end()
    out.append(escape(text[last:]))
    return Markup("".join(out))  # noqa: S704 - every piece above is escaped
