"""A trial's eligibility criteria text, read as a list of criteria. Pure.

CT.gov keeps the criteria as one markdown text: an "Inclusion Criteria:" heading, an "Exclusion
Criteria:" heading, and under each a list whose bullets are ``*``, ``-``, ``•`` or numbers, as
the sponsor typed them. Sponsors re-submit the same list with another bullet style, renumbered,
reflowed onto other lines or with markdown escapes added; none of that is a change of who may
enrol. So the text is split into criteria, each criterion without its bullet and with its
line breaks collapsed, and :func:`criterion_key` is what two criteria are compared by.
No I/O, no state.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

__all__ = ["Criteria", "criterion_key", "split_criteria"]


class Criteria(NamedTuple):
    """The criteria of one text, each section in the order written."""

    inclusion: tuple[str, ...] = ()
    exclusion: tuple[str, ...] = ()
    # Criteria under neither heading: text before any heading, or a text with no headings.
    other: tuple[str, ...] = ()


# "Inclusion Criteria:", "INCLUSION CRITERIA", "Key Exclusion Criteria:", "**Exclusion
# criteria**:", "Inclusion Criteria: text on the same line".
_HEADING = re.compile(
    r"[#*_\\\s]*(?:key\s+|main\s+|major\s+)?(inclusion|exclusion)\s+criteria\b[*_\\\s]*"
    r"(?::[*_\\\s]*(?P<rest>.*))?",
    re.IGNORECASE,
)
# A bullet or a number that starts an item: "*", "-", "+", "•", "◦", "▪", "–", "1.", "1)",
# "(1)", "a.", "a)", "(a)", "i)", markdown-escaped or not ("\*", "1\."). A word such as "Age"
# never matches: a marker is followed by white space or ends the line (an empty item).
_MARKER = re.compile(
    r"(?:\\?[*\-+•·◦○▪■□►➢–—]|\\?\(?(?:[0-9]{1,3}|[a-zA-Z]|[ivxIVX]{1,4})\\?[.)])"
    r"(?:\s+|$)(?P<text>.*)"
)
_SECTIONS = {"inclusion": 0, "exclusion": 1}


def split_criteria(text: str) -> Criteria:
    """The criteria of a CT.gov eligibility text, by section, as written.

    A criterion starts at a bullet or number, or at a line after a blank line; a line right
    after another, without a bullet, continues its criterion (text reflowed) and is joined to
    it with a space. Headings and bullets are not kept; nested lists give one criterion per
    item. The text itself is left as it is (escapes, spacing): the caller normalizes each
    criterion and drops those left empty.
    """
    # Each section: its criteria, each a list of the lines it was written on.
    sections: tuple[list[list[str]], ...] = ([], [], [])
    current = sections[2]
    open_item: list[str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            open_item = None
            continue
        heading = _HEADING.fullmatch(line)
        if heading:
            current = sections[_SECTIONS[heading.group(1).casefold()]]
            rest = heading.group("rest")
            open_item = None
            if not rest:
                continue
            line = rest
        marker = _MARKER.fullmatch(line)
        if marker:
            line = marker.group("text")
        if marker or open_item is None:
            open_item = [line]
            current.append(open_item)
        else:
            open_item.append(line)
    inclusion, exclusion, other = (
        tuple(" ".join(lines) for lines in section) for section in sections
    )
    return Criteria(inclusion, exclusion, other)


def criterion_key(text: str) -> str:
    """What two criteria are compared by: no case, accents' composition or end punctuation.

    "Prior XPO1 inhibitor;" and "prior XPO1 inhibitor." are one criterion written twice.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(folded.split()).rstrip(" .;,")
