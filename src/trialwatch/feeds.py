"""An Atom feed (RFC 4287) of recorded changes, for feed readers. Pure.

A feed reader shows an entry once per entry id, however often it re-reads the feed, so ids are
derived only from what identifies a change event and never changes: the trial, the event's row
id, and a digest of the moment it was detected, its field, item and kind (so a rebuilt database
that reuses row ids does not hide new changes behind old ids). They are ``tag:`` URIs
(RFC 4151): ``tag:trialwatch.example,2026:change/NCT02606461/42-3f9a0c1b2d4e``. The authority
and date in them must stay fixed for the life of a feed: change them and every reader shows
every entry again.

The document is built with :mod:`xml.etree.ElementTree`, which escapes text and attributes;
characters XML 1.0 cannot carry at all are removed first (:func:`trialwatch.history.xml_text`).
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from datetime import datetime

from trialwatch import __version__
from trialwatch.diff import counts
from trialwatch.history import data_as_of, iso, origin_mark, xml_text
from trialwatch.records import RecordedChange
from trialwatch.vocabulary import clip, history_url, study_url

__all__ = [
    "ATOM_NS",
    "DEFAULT_TAG_AUTHORITY",
    "TAG_DATE",
    "entry_id",
    "feed_id",
    "render_atom_feed",
]

ATOM_NS = "http://www.w3.org/2005/Atom"
DEFAULT_TAG_AUTHORITY = "trialwatch.example"
"""The tagging entity of ids when none is configured. A deployment that owns a domain may use
it instead, once, before its feed is first read."""
TAG_DATE = "2026"
"""The date part of every tag URI: fixed, so ids never change."""

_TITLE_MAX_CHARS = 200
# RFC 4151 taggingEntity: a DNS name or an email address.
_AUTHORITY_RE = re.compile(
    r"(?:[A-Za-z0-9._%+-]+@)?[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
_SPECIFIC_UNSAFE_RE = re.compile(r"[^A-Za-z0-9._~!$&'()*+,;=:@/-]")


def _check_authority(authority: str) -> str:
    if not _AUTHORITY_RE.fullmatch(authority):
        raise ValueError(f"{authority!r} is not a domain name or email address for tag: ids")
    return authority.lower()


def feed_id(authority: str = DEFAULT_TAG_AUTHORITY, name: str = "changes") -> str:
    """``tag:trialwatch.example,2026:feed/changes``. Raises ``ValueError`` for a bad authority."""
    return f"tag:{_check_authority(authority)},{TAG_DATE}:feed/{_specific(name)}"


def entry_id(event: RecordedChange, authority: str = DEFAULT_TAG_AUTHORITY) -> str:
    """The stable id of one change event's entry (see the module docstring)."""
    identity = json.dumps(
        [
            event.nct_id,
            iso(event.detected_at),
            event.change.field,
            event.change.item_key,
            event.change.kind.value,
        ],
        ensure_ascii=False,
    )
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:12]
    nct_id = _specific(event.nct_id)
    return f"tag:{_check_authority(authority)},{TAG_DATE}:change/{nct_id}/{event.id}-{digest}"


def _specific(text: str) -> str:
    return _SPECIFIC_UNSAFE_RE.sub("-", text) or "-"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: xml_text(v) for k, v in attrs.items()})
    if text is not None:
        element.text = xml_text(text)
    return element


def render_atom_feed(
    events: Iterable[RecordedChange],
    *,
    generated_at: datetime,
    data_timestamp: str | None,
    labels: Mapping[str, str | None] | None = None,
    title: str = "trialwatch: changes in watched trials",
    authority: str = DEFAULT_TAG_AUTHORITY,
    self_url: str | None = None,
) -> bytes:
    """The feed as UTF-8 XML: one entry per change event that counts, newest first.

    ``updated`` is the newest entry's detection time (``generated_at`` for an empty feed), so
    re-exporting without new changes does not make the feed look updated. Entries link to the
    study page (``alternate``) and the registry's history tab (``related``). The CT.gov data
    timestamp is the feed's subtitle, and each entry says the one it reflects. ``labels``
    maps NCT ids to watchlist labels. Raises ``ValueError`` for an unusable ``authority``.
    """
    labels = labels or {}
    told = (e for e in events if counts(e.change))  # an admin line is never an entry
    ordered = sorted(told, key=lambda e: (e.detected_at, e.id), reverse=True)
    feed = ET.Element("feed", {"xmlns": ATOM_NS})
    _sub(feed, "id", feed_id(authority))
    _sub(feed, "title", title)
    _sub(feed, "subtitle", data_as_of(data_timestamp))
    _sub(feed, "updated", iso(ordered[0].detected_at if ordered else generated_at))
    author = _sub(feed, "author")
    _sub(author, "name", "trialwatch")
    _sub(feed, "generator", "trialwatch", version=__version__)
    if self_url:
        _sub(feed, "link", rel="self", type="application/atom+xml", href=self_url)
    for event in ordered:
        _entry(feed, event, labels.get(event.nct_id), authority)
    ET.indent(feed, space="  ")
    document: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def _entry(feed: ET.Element, event: RecordedChange, label: str | None, authority: str) -> None:
    change = event.change
    name = f"{label} ({event.nct_id})" if label else event.nct_id
    entry = _sub(feed, "entry")
    _sub(entry, "id", entry_id(event, authority))
    _sub(entry, "title", clip(f"{name}: {change.summary}", _TITLE_MAX_CHARS))
    _sub(entry, "updated", iso(event.detected_at))
    _sub(entry, "published", iso(event.detected_at))
    _sub(entry, "link", rel="alternate", type="text/html", href=study_url(event.nct_id))
    _sub(entry, "link", rel="related", type="text/html", href=history_url(event.nct_id))
    scheme = f"tag:{_check_authority(authority)},{TAG_DATE}:"
    _sub(entry, "category", term=change.category.value, scheme=scheme + "category")
    _sub(entry, "category", term=change.severity.label, scheme=scheme + "severity")
    # live | registry (read from CT.gov's record history, dated by the registry's version).
    _sub(entry, "category", term=event.origin, scheme=scheme + "origin")
    data = f"CT.gov data as of {event.data_timestamp}" if event.data_timestamp else ""
    stamp = f" ({data})" if data else ""
    mark = origin_mark(event)
    _sub(entry, "summary", f"[{change.severity.label}] {change.summary}{mark}{stamp}")
    # type="html": the markup below is escaped once more by ElementTree, as RFC 4287 wants.
    body = (
        f"<p><strong>{html.escape(change.severity.label)}</strong> · "
        f"{html.escape(xml_text(change.summary))}</p>"
        f"<p>{html.escape(xml_text(name))}: "
        f'<a href="{html.escape(study_url(event.nct_id))}">study page</a> · '
        f'<a href="{html.escape(history_url(event.nct_id))}">record history</a></p>'
        + (f"<p>{html.escape(xml_text(data))}.</p>" if data else "")
    )
    _sub(entry, "content", body, type="html")
