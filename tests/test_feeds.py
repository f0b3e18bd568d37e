"""The Atom feed: valid XML, RFC 4287's required elements, ids stable across exports."""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest

from tests.history_samples import DATA_TS, NOW, at, watch_set
from trialwatch.feeds import ATOM_NS, entry_id, feed_id, render_atom_feed
from trialwatch.models import Category, ChangeKind, FieldChange, Severity
from trialwatch.records import RecordedChange
from trialwatch.vocabulary import history_url, study_url

A = "{" + ATOM_NS + "}"
# RFC 4151: "tag:" authority "," date ":" specific
TAG_RE = re.compile(r"tag:[a-z0-9.@-]+,\d{4}(-\d{2}(-\d{2})?)?:[A-Za-z0-9._~!$&'()*+,;=:@/-]+")
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def events() -> list[RecordedChange]:
    return [e for h in watch_set() for e in h.changes]


def feed(items: list[RecordedChange] | None = None, **kwargs: object) -> ET.Element:
    document = render_atom_feed(
        events() if items is None else items,
        generated_at=kwargs.pop("generated_at", NOW),  # type: ignore[arg-type]
        data_timestamp=DATA_TS,
        labels={"NCT02606461": "SEAL"},
        **kwargs,  # type: ignore[arg-type]
    )
    assert document.startswith(b"<?xml version='1.0' encoding='utf-8'?>\n")
    return ET.fromstring(document)  # noqa: S314 (our own output, parsed to check it)


def ids(root: ET.Element) -> list[str]:
    return [e.findtext(A + "id") or "" for e in root.iter(A + "entry")]


def test_the_feed_has_what_rfc_4287_requires() -> None:
    root = feed(self_url="https://example.org/trialwatch.atom")

    assert root.tag == A + "feed"
    assert TAG_RE.fullmatch(root.findtext(A + "id") or "")
    assert root.findtext(A + "title")
    assert RFC3339.fullmatch(root.findtext(A + "updated") or "")
    assert root.findtext(f"{A}author/{A}name") == "trialwatch"
    assert root.findtext(A + "subtitle") == f"CT.gov data as of {DATA_TS}"
    (self_link,) = root.findall(A + "link")
    assert self_link.get("rel") == "self"
    entries = root.findall(A + "entry")
    assert len(entries) == 12
    for entry in entries:
        assert TAG_RE.fullmatch(entry.findtext(A + "id") or "")
        assert entry.findtext(A + "title")
        assert RFC3339.fullmatch(entry.findtext(A + "updated") or "")
        assert entry.find(A + "content") is not None or entry.find(A + "summary") is not None
    assert len(set(ids(root))) == len(entries)


def test_entries_are_newest_first_and_link_to_the_study_page() -> None:
    root = feed()

    entries = root.findall(A + "entry")
    updated = [e.findtext(A + "updated") or "" for e in entries]
    assert updated == sorted(updated, reverse=True)
    assert root.findtext(A + "updated") == updated[0]
    first = entries[0]
    links = {link.get("rel"): link.get("href") for link in first.findall(A + "link")}
    assert links == {"alternate": study_url("NCT05923112"), "related": history_url("NCT05923112")}
    seal = next(e for e in entries if "SEAL (NCT02606461)" in (e.findtext(A + "title") or ""))
    assert (seal.findtext(A + "title") or "").startswith("SEAL (NCT02606461): ")
    summary = seal.findtext(A + "summary") or ""
    categories = {c.get("scheme"): c.get("term") for c in seal.findall(A + "category")}
    assert set(categories) == {
        "tag:trialwatch.example,2026:category",
        "tag:trialwatch.example,2026:severity",
        "tag:trialwatch.example,2026:origin",
    }
    assert categories["tag:trialwatch.example,2026:origin"] == "live"
    assert summary.startswith("[") and summary.endswith("(CT.gov data as of 2026-09-01T08:00:00)")


def test_a_change_from_the_registrys_history_says_so() -> None:
    event = dataclasses.replace(events()[0], origin="registry", data_timestamp=None)
    (entry,) = feed([event]).findall(A + "entry")
    origin = [
        c.get("term") for c in entry.findall(A + "category") if "origin" in c.get("scheme", "")
    ]
    assert origin == ["registry"]
    assert (entry.findtext(A + "summary") or "").endswith(" (registry)")


def test_two_exports_share_entry_ids_and_a_new_change_adds_one() -> None:
    first = ids(feed())
    again = ids(feed(generated_at=NOW + timedelta(days=3)))
    more = events()
    newer = dataclasses.replace(more[0], id=99, detected_at=at("2026-11-23"))
    grown = ids(feed([*more, newer]))

    assert first == again
    assert grown[1:] == first
    assert grown[0] not in first


def test_ids_do_not_depend_on_wording_or_values_only_on_the_events_identity() -> None:
    event = events()[0]
    reworded = dataclasses.replace(
        event, change=dataclasses.replace(event.change, summary="another wording", old="x")
    )

    assert entry_id(reworded) == entry_id(event)
    assert entry_id(dataclasses.replace(event, id=event.id + 1000)) != entry_id(event)
    later = dataclasses.replace(event, detected_at=event.detected_at + timedelta(seconds=1))
    assert entry_id(later) != entry_id(event)  # a rebuilt database reusing row ids


def test_the_feed_updated_time_does_not_move_without_new_changes() -> None:
    one = render_atom_feed(events(), generated_at=NOW, data_timestamp=DATA_TS)
    two = render_atom_feed(events(), generated_at=NOW + timedelta(days=1), data_timestamp=DATA_TS)

    assert one == two


def test_an_empty_feed_is_still_a_valid_feed() -> None:
    root = feed([])

    assert root.findall(A + "entry") == []
    assert root.findtext(A + "updated") == "2026-11-23T14:00:00Z"


def test_hostile_text_stays_text_and_the_xml_stays_valid() -> None:
    event = events()[0]
    evil = dataclasses.replace(
        event,
        change=dataclasses.replace(
            event.change, summary='<script>alert("x")</script> & \x00\x1b\ufffe]]>'
        ),
    )

    root = feed([evil])

    entry = root.find(A + "entry")
    assert entry is not None
    title = entry.findtext(A + "title") or ""
    assert '<script>alert("x")</script> & ]]>' in title
    content = entry.findtext(A + "content") or ""
    assert "&lt;script&gt;" in content and "<script>" not in content  # escaped inside type=html


def test_the_authority_is_checked_and_used() -> None:
    assert feed_id("example.org") == "tag:example.org,2026:feed/changes"
    assert entry_id(events()[0], "ops@example.org").startswith(
        "tag:ops@example.org,2026:change/NCT02606461/1-"
    )
    for bad in ("", "exa mple.org", "tag:x", "a,b"):
        with pytest.raises(ValueError, match="not a domain name or email address"):
            feed_id(bad)


def test_an_admin_line_is_never_an_entry() -> None:
    told = events()[0]
    posted = dataclasses.replace(
        told,
        id=told.id + 1000,
        change=FieldChange(
            "last_update_posted",
            Category.ADMINISTRATIVE,
            Severity.ADMIN,
            ChangeKind.CHANGED,
            "Last update posted: 2026-01-02 → 2026-02-03",
        ),
    )
    assert ids(feed([told, posted])) == [entry_id(told)]
