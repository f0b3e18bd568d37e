"""The one template environment of every HTML page and message trialwatch renders.

The report page, the timeline page and the emails (HTML and plain text) all render through
:func:`environment`; a new page adds its template to ``templates/`` and renders through it too.
jinja2 is imported on first use, so commands that print plain text do not pay for it.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from trialwatch.vocabulary import plural

if TYPE_CHECKING:
    import jinja2

__all__ = ["environment"]


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
    return env
